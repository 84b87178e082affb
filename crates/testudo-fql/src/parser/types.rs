//! Type expressions (`let x: T`, function signatures, field definitions), after Fauna's
//! `PartialTypeExprParser.scala`.
//!
//! Bases: names with optional dotted segments and type arguments (`Array<String>`,
//! `Foo.Bar`), singletons (`"a"`, `'a'`, integers, `true`, `false`), objects
//! (`{ a: T, 'b': U, *: Any }`, fields separated by `,`, `;` or newlines), tuples `[A, B]`
//! and parentheses (`(A)` is `A`, `()` and `(A, B)` are tuples, `(x: A, ...B)` are
//! parameter lists). Operators, loosest first: `=>` (right-associative), `|`, `&`,
//! postfix `?`; each must be on the same line as its left operand.
//!
//! Interfaces (`{ a: T, ... }`) have no node of their own: they become an object whose
//! wildcard is `Any`. A parameter list's names are checked but not kept.
//!
//! **Invariants:** no type tree deeper than [`crate::MAX_NESTING`] is built; parameter
//! names and `...` outside a function's parameter list are errors.

use super::{PResult, Parser};
use crate::ParseError;
use crate::ast::{Expr, ExprKind, Name, Span, TypeExpr, TypeKind};
use crate::diagnostics::{Hint, HintKind};
use crate::lexer::{is_ident_rest, is_ident_start, is_keyword};

/// A type and the height of its tree.
pub(crate) struct Ty {
    t: TypeExpr,
    h: usize,
}

/// A parsed operand: a type, or a parenthesized parameter list (only valid before `=>`).
enum Operand {
    Ty(Ty),
    Params {
        params: Vec<(Option<Name>, Ty)>,
        variadic: Option<Ty>,
        span: Span,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TypeOp {
    Arrow,
    Union,
    Intersection,
    Optional,
}

impl TypeOp {
    fn prec(self) -> u8 {
        match self {
            TypeOp::Arrow => 0,
            TypeOp::Union => 1,
            TypeOp::Intersection => 2,
            TypeOp::Optional => 3,
        }
    }

    fn len(self) -> usize {
        if self == TypeOp::Arrow { 2 } else { 1 }
    }
}

fn span_of(t: &Ty) -> Span {
    t.t.span
}

impl Parser<'_> {
    pub(crate) fn type_source(&mut self) -> PResult<TypeExpr> {
        self.nl()?;
        let t = self.type_expr()?;
        if !self.cur.at_end() {
            let names: &[&str] = if self.type_was_bare_name {
                &["`<`", "end-of-input"]
            } else {
                &["end-of-input"]
            };
            return Err(self.expected(names));
        }
        Ok(t)
    }

    /// A type followed by free newlines.
    pub(crate) fn type_expr(&mut self) -> PResult<TypeExpr> {
        let t = self.type_term()?;
        self.nl()?;
        Ok(t.t)
    }

    fn tnode(&mut self, kind: TypeKind, span: Span, child_h: usize, at: Span) -> PResult<Ty> {
        let h = child_h + 1;
        if h > crate::MAX_NESTING {
            return Err(self.too_deep(at));
        }
        Ok(Ty {
            t: TypeExpr { kind, span },
            h,
        })
    }

    fn type_term(&mut self) -> PResult<Ty> {
        self.enter()?;
        let base = self.type_base()?;
        let operand = self.type_climb(base, 0)?;
        self.leave();
        self.operand_type(operand)
    }

    fn peek_type_op(&self) -> Option<TypeOp> {
        match self.cur.peek() {
            Some(b'?') => Some(TypeOp::Optional),
            Some(b'|') => Some(TypeOp::Union),
            Some(b'&') => Some(TypeOp::Intersection),
            Some(b'=') if self.cur.peek_at(1) == Some(b'>') => Some(TypeOp::Arrow),
            _ => None,
        }
    }

    fn type_climb(&mut self, mut lhs: Operand, min_prec: u8) -> PResult<Operand> {
        while let Some(op) = self.peek_type_op() {
            if op.prec() < min_prec {
                break;
            }
            let at = self.pos();
            let op_span = Span::new(at, at + op.len());
            self.cur.set_pos(at + op.len());
            if op == TypeOp::Optional {
                self.ws()?;
                self.type_was_bare_name = false;
                let base = self.operand_type(lhs)?;
                let span = span_of(&base).to(op_span);
                let h = base.h;
                lhs = Operand::Ty(self.tnode(
                    TypeKind::Optional(Box::new(base.t)),
                    span,
                    h,
                    op_span,
                )?);
                continue;
            }
            self.nl()?;
            let mut rhs = self.type_base()?;
            while let Some(next) = self.peek_type_op() {
                let tighter = next.prec() > op.prec() || (next == op && next == TypeOp::Arrow);
                if !tighter {
                    break;
                }
                let min = if next.prec() > op.prec() {
                    op.prec() + 1
                } else {
                    op.prec()
                };
                self.enter()?;
                rhs = self.type_climb(rhs, min)?;
                self.leave();
            }
            lhs = Operand::Ty(self.type_binary(lhs, op, rhs, op_span)?);
        }
        Ok(lhs)
    }

    fn type_binary(&mut self, lhs: Operand, op: TypeOp, rhs: Operand, at: Span) -> PResult<Ty> {
        let rhs = self.operand_type(rhs)?;
        if op == TypeOp::Arrow {
            let (params, variadic, start, params_h) = match lhs {
                Operand::Params {
                    params,
                    variadic,
                    span,
                } => {
                    let h = params
                        .iter()
                        .map(|(_, t)| t.h)
                        .chain(variadic.iter().map(|t| t.h));
                    let h = h.max().unwrap_or(0);
                    let params = params.into_iter().map(|(_, t)| t.t).collect();
                    (params, variadic.map(|t| t.t), span, h)
                }
                Operand::Ty(Ty {
                    t:
                        TypeExpr {
                            kind: TypeKind::Tuple(elems),
                            span,
                        },
                    h,
                }) => (elems, None, span, h),
                Operand::Ty(t) => {
                    let span = t.t.span;
                    (vec![t.t], None, span, t.h)
                }
            };
            let span = start.to(span_of(&rhs));
            let h = params_h.max(rhs.h);
            let kind = TypeKind::Function {
                params,
                variadic: variadic.map(Box::new),
                ret: Box::new(rhs.t),
            };
            return self.tnode(kind, span, h, at);
        }
        let lhs = self.operand_type(lhs)?;
        let span = span_of(&lhs).to(span_of(&rhs));
        let h = lhs.h.max(rhs.h);
        let (l, r) = (Box::new(lhs.t), Box::new(rhs.t));
        let kind = if op == TypeOp::Union {
            TypeKind::Union(l, r)
        } else {
            TypeKind::Intersection(l, r)
        };
        self.tnode(kind, span, h, at)
    }

    /// A parameter list used as a type: names and `...` are errors there.
    fn operand_type(&mut self, operand: Operand) -> PResult<Ty> {
        match operand {
            Operand::Ty(t) => Ok(t),
            Operand::Params {
                params,
                variadic,
                span,
            } => {
                for (name, _) in &params {
                    if let Some(name) = name {
                        self.soft(ParseError::new(
                            "Only lambda argument types may be named",
                            name.span,
                        ));
                    }
                }
                if let Some(v) = variadic {
                    self.soft(ParseError::new("Invalid variadic argument", v.t.span));
                }
                let name = Name {
                    text: "null".into(),
                    span,
                };
                Ok(Ty {
                    t: TypeExpr {
                        kind: TypeKind::Named { name, args: vec![] },
                        span,
                    },
                    h: 1,
                })
            }
        }
    }

    fn starts_type(&self) -> bool {
        match self.cur.peek() {
            Some(b'(' | b'[' | b'{' | b'\'' | b'"' | b'0'..=b'9') => true,
            Some(b'+' | b'-') => self.cur.signed_number_start().is_some(),
            Some(b) => is_ident_start(b),
            None => false,
        }
    }

    fn type_base(&mut self) -> PResult<Operand> {
        self.type_was_bare_name = false;
        let start = self.pos();
        let operand = match self.cur.peek() {
            Some(b'(') => self.type_parens()?,
            Some(b'[') => Operand::Ty(self.type_tuple()?),
            Some(b'{') => Operand::Ty(self.type_object()?),
            Some(b'\'') => {
                let ex = self.single_string()?;
                Operand::Ty(self.singleton(ex.e)?)
            }
            Some(b'"') => {
                let (text, span) = self.plain_double_string()?;
                Operand::Ty(self.singleton(Expr {
                    kind: ExprKind::Str(text),
                    span,
                })?)
            }
            Some(b'0'..=b'9' | b'+' | b'-') if self.cur.signed_number_start().is_some() => {
                let ex = self.number_literal(false)?;
                Operand::Ty(self.singleton(ex.e)?)
            }
            Some(b) if is_ident_start(b) => {
                let end = self.cur.ident_end(start).unwrap_or(start);
                match self.cur.slice(start, end) {
                    "true" | "false" => {
                        let value = self.cur.slice(start, end) == "true";
                        self.cur.set_pos(end);
                        let e = Expr {
                            kind: ExprKind::Bool(value),
                            span: Span::new(start, end),
                        };
                        Operand::Ty(self.singleton(e)?)
                    }
                    _ => Operand::Ty(self.type_name()?),
                }
            }
            _ => return Err(self.expected(&["type"])),
        };
        self.ws()?;
        Ok(operand)
    }

    fn singleton(&mut self, e: Expr) -> PResult<Ty> {
        let span = e.span;
        self.tnode(TypeKind::Literal(Box::new(e)), span, 1, span)
    }

    /// `Name`, `A.B.C`, `Array<T>`, `Map<K, V>`.
    fn type_name(&mut self) -> PResult<Ty> {
        let start = self.pos();
        let mut end = self.cur.ident_end(start).unwrap_or(start);
        while self.cur.byte_at(end) == Some(b'.')
            && self.cur.byte_at(end + 1).is_some_and(is_ident_rest)
        {
            end += 1;
            while self.cur.byte_at(end).is_some_and(is_ident_rest) {
                end += 1;
            }
        }
        let name = Name {
            text: self.cur.slice(start, end).to_string(),
            span: Span::new(start, end),
        };
        self.cur.set_pos(end);
        if !self.cur.eat("<") {
            self.type_was_bare_name = true;
            return self.tnode(
                TypeKind::Named { name, args: vec![] },
                Span::new(start, end),
                0,
                name_span(start, end),
            );
        }
        self.nl()?;
        let mut args = Vec::new();
        let mut h = 0;
        loop {
            if !self.starts_type() {
                return Err(self.expected(if args.is_empty() {
                    &["type"]
                } else {
                    &["`>`", "type"]
                }));
            }
            let t = self.type_term()?;
            self.nl()?;
            h = h.max(t.h);
            args.push(t.t);
            if self.cur.eat(",") {
                self.nl()?;
                if self.cur.peek() == Some(b'>') {
                    break;
                }
                continue;
            }
            if self.cur.peek() == Some(b'>') {
                break;
            }
            return Err(self.expected(&["`,`", "`>`"]));
        }
        self.cur.set_pos(self.pos() + 1);
        self.type_was_bare_name = false;
        let span = self.span_from(start);
        self.tnode(
            TypeKind::Named { name, args },
            span,
            h,
            name_span(start, end),
        )
    }

    /// `[A, B]`.
    fn type_tuple(&mut self) -> PResult<Ty> {
        let start = self.pos();
        self.cur.set_pos(start + 1);
        self.nl()?;
        let mut elems = Vec::new();
        let mut h = 0;
        loop {
            if self.cur.peek() == Some(b']') {
                break;
            }
            if !self.starts_type() {
                return Err(self.expected(&["`]`", "type"]));
            }
            let t = self.type_term()?;
            self.nl()?;
            h = h.max(t.h);
            elems.push(t.t);
            if self.cur.eat(",") {
                self.nl()?;
                continue;
            }
            if self.cur.peek() == Some(b']') {
                break;
            }
            return Err(self.expected(&["`,`", "`]`"]));
        }
        self.cur.set_pos(self.pos() + 1);
        let span = self.span_from(start);
        self.tnode(TypeKind::Tuple(elems), span, h, Span::new(start, start + 1))
    }

    /// `( ... )`: `()` and `(A, B)` are tuples, `(A)` is `A`; names (`x: A`) or a final
    /// `...A` make a parameter list.
    fn type_parens(&mut self) -> PResult<Operand> {
        let start = self.pos();
        self.cur.set_pos(start + 1);
        self.nl()?;
        let mut elems: Vec<(Option<Name>, bool, Ty)> = Vec::new();
        loop {
            if self.cur.peek() == Some(b')') {
                break;
            }
            let mut name = None;
            if let Some(end) = self.cur.ident_end(self.pos())
                && self.cur.byte_at(end) == Some(b':')
                && !is_keyword(self.cur.slice(self.pos(), end))
            {
                let text = self.cur.slice(self.pos(), end).to_string();
                name = Some(Name {
                    text,
                    span: Span::new(self.pos(), end),
                });
                self.cur.set_pos(end + 1);
                self.nl()?;
            }
            let variadic = self.cur.eat("...");
            if variadic {
                self.nl()?;
            }
            if !self.starts_type() {
                return Err(
                    self.expected(if elems.is_empty() && name.is_none() && !variadic {
                        &["`)`", "type"]
                    } else {
                        &["type"]
                    }),
                );
            }
            let t = self.type_term()?;
            self.nl()?;
            elems.push((name, variadic, t));
            if self.cur.eat(",") {
                self.nl()?;
                continue;
            }
            if self.cur.peek() == Some(b')') {
                break;
            }
            return Err(self.expected(&["`)`", "`,`"]));
        }
        self.cur.set_pos(self.pos() + 1);
        let span = self.span_from(start);

        let last_variadic = elems.last().is_some_and(|(_, v, _)| *v);
        let named = elems.iter().any(|(n, _, _)| n.is_some());
        let mut variadic = None;
        if last_variadic {
            variadic = elems.pop().map(|(_, _, t)| t);
        }
        let mut params = Vec::new();
        for (name, is_variadic, t) in elems {
            if is_variadic {
                self.soft(ParseError::new("Invalid variadic argument", t.t.span));
            } else {
                params.push((name, t));
            }
        }
        if last_variadic || named {
            return Ok(Operand::Params {
                params,
                variadic,
                span,
            });
        }
        if params.len() == 1
            && let Some((_, t)) = params.pop()
        {
            return Ok(Operand::Ty(t));
        }
        let h = params.iter().map(|(_, t)| t.h).max().unwrap_or(0);
        let kind = TypeKind::Tuple(params.into_iter().map(|(_, t)| t.t).collect());
        Ok(Operand::Ty(self.tnode(
            kind,
            span,
            h,
            Span::new(start, start + 1),
        )?))
    }

    /// `{ a: T, 'b': U, *: V }` (also `...` for an interface).
    fn type_object(&mut self) -> PResult<Ty> {
        let start = self.pos();
        self.cur.set_pos(start + 1);
        self.nl()?;
        let mut fields: Vec<(Name, TypeExpr, bool)> = Vec::new();
        let mut wildcard: Option<Ty> = None;
        let mut interface: Option<Span> = None;
        let mut h = 0;
        loop {
            if self.cur.peek() == Some(b'}') {
                break;
            }
            let field_start = self.pos();
            let field_span;
            if self.cur.starts_with("...") {
                self.cur.set_pos(field_start + 3);
                field_span = self.span_from(field_start);
                self.report_misplaced(field_span, &wildcard, interface);
                interface = Some(field_span);
                self.nl()?;
            } else {
                let key = if self.cur.peek() == Some(b'*') {
                    self.cur.set_pos(field_start + 1);
                    None
                } else {
                    Some(self.type_field_key()?)
                };
                self.ws()?;
                if !self.cur.eat(":") {
                    return Err(self.expected_at(field_start, &["`}`"]));
                }
                self.nl()?;
                let t = self.type_term()?;
                h = h.max(t.h);
                field_span = Span::new(field_start, span_of(&t).end as usize);
                self.report_misplaced(field_span, &wildcard, interface);
                if self.cur.peek() == Some(b'=') && self.cur.peek_at(1) != Some(b'>') {
                    self.cur.set_pos(self.pos() + 1);
                    self.nl()?;
                    let default = self.expr0(false)?;
                    self.soft(ParseError::new(
                        "Default values are not allowed here",
                        default.e.span,
                    ));
                }
                match key {
                    Some(name) => fields.push((name, t.t, false)),
                    None => wildcard = Some(t),
                }
            }
            // Separator: `,`, `;`, a newline or a line comment.
            self.ws()?;
            let separated = match self.cur.peek() {
                Some(b',' | b';' | b'\n' | b'\r') => {
                    self.cur.set_pos(self.pos() + 1);
                    true
                }
                Some(b'/') if self.cur.peek_at(1) == Some(b'/') => true,
                _ => false,
            };
            self.nl()?;
            if !separated || !self.starts_type_field() {
                self.cur.eat(",");
                self.nl()?;
                if self.cur.peek() != Some(b'}') {
                    return Err(self.expected(&["`}`"]));
                }
                break;
            }
        }
        self.cur.set_pos(self.pos() + 1);
        let span = self.span_from(start);
        let wildcard = match (wildcard, interface) {
            (Some(w), _) => Some(w),
            (None, Some(at)) => {
                let name = Name {
                    text: "Any".into(),
                    span: at,
                };
                Some(Ty {
                    t: TypeExpr {
                        kind: TypeKind::Named { name, args: vec![] },
                        span: at,
                    },
                    h: 1,
                })
            }
            (None, None) => None,
        };
        if let Some(w) = &wildcard {
            h = h.max(w.h);
        }
        let kind = TypeKind::Object {
            fields,
            wildcard: wildcard.map(|w| Box::new(w.t)),
        };
        self.tnode(kind, span, h, Span::new(start, start + 1))
    }

    fn starts_type_field(&self) -> bool {
        self.cur.starts_with("...")
            || matches!(self.cur.peek(), Some(b'*' | b'\'' | b'"'))
            || self.cur.peek().is_some_and(is_ident_start)
    }

    fn type_field_key(&mut self) -> PResult<Name> {
        let at = self.pos();
        match self.cur.peek() {
            Some(b'\'') => {
                let ex = self.single_string()?;
                match ex.e.kind {
                    ExprKind::Str(text) => Ok(Name {
                        text,
                        span: ex.e.span,
                    }),
                    _ => Err(self.expected_at(at, &["`}`"])),
                }
            }
            Some(b'"') => {
                let (text, span) = self.plain_double_string()?;
                Ok(Name { text, span })
            }
            Some(b) if is_ident_start(b) => {
                let end = self.cur.ident_end(at).unwrap_or(at);
                self.cur.set_pos(end);
                Ok(Name {
                    text: self.cur.slice(at, end).to_string(),
                    span: Span::new(at, end),
                })
            }
            _ => Err(self.expected(&["`}`"])),
        }
    }

    /// A field after the wildcard or the interface marker is an error (Fauna's wording).
    fn report_misplaced(&mut self, field: Span, wildcard: &Option<Ty>, interface: Option<Span>) {
        if let Some(w) = wildcard {
            let hint = Hint::new(HintKind::Hint, "Wildcard defined here", span_of(w));
            let msg = "Wildcard must be the last element in an object";
            self.soft(ParseError::new(msg, field).with_hint(hint));
        }
        if let Some(i) = interface {
            let hint = Hint::new(HintKind::Hint, "Interface defined here", i);
            let msg = "Interface must be the last element in an object";
            self.soft(ParseError::new(msg, field).with_hint(hint));
        }
    }
}

fn name_span(start: usize, end: usize) -> Span {
    Span::new(start, end)
}
