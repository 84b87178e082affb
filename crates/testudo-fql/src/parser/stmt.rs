//! Statements and bodies: the query, blocks, `let`, objects (which share `{` with
//! blocks), and the checks on stored lambda bodies.
//!
//! A body is statements separated by `;`, newlines or line comments; it must not be empty
//! and must end with an expression ("Missing return expression"). After `{`: `}` makes
//! the empty object; a key (identifier or keyword, `'str'`, or `"str"`) followed on the
//! same line by `:` makes an object; anything else is a block (`{ x }` is a block).
//!
//! **Invariants:** the object/block decision backtracks over at most one word or one
//! single-quoted string; a double-quoted first key is parsed once and, if no `:` follows,
//! reused as the start of the block's first statement (so nesting cannot make it
//! exponential); object keys are unique (duplicates are reported, all of them).

use super::literal::scan_single;
use super::{Ex, PResult, Parser, Term};
use crate::ParseError;
use crate::ast::{Expr, ExprKind, Name, Query, Span, Stmt, TypeExpr};
use crate::diagnostics::{Hint, HintKind};
use crate::lexer::{is_ident_start, is_keyword};

/// What follows `{`: a key (object), or not (block), or a parsed string that was not a
/// key after all (block starting with that string).
enum Probe {
    Key(Name),
    NotKey,
    Term(Term),
}

fn stmt_span(stmt: &Stmt) -> Span {
    match stmt {
        Stmt::Let { span, .. } => *span,
        Stmt::Expr(e) => e.span,
    }
}

impl Parser<'_> {
    pub(crate) fn query(&mut self) -> PResult<Query> {
        self.nl()?;
        let (body, _) = self.body(true, None)?;
        let span = match (body.first(), body.last()) {
            (Some(first), Some(last)) => stmt_span(first).to(stmt_span(last)),
            _ => Span::new(0, 0),
        };
        Ok(Query { body, span })
    }

    fn starts_stmt(&self) -> bool {
        self.starts_expr()
    }

    /// Statements up to the end of the query or the `}` of a block (not consumed).
    #[inline(never)]
    fn body(&mut self, is_query: bool, first: Option<Term>) -> PResult<(Vec<Stmt>, usize)> {
        if first.is_none() && !self.starts_stmt() {
            return Err(self.unexpected_end(if is_query { "query" } else { "block" }));
        }
        let mut first = first;
        let mut stmts = Vec::new();
        let mut h = 0;
        loop {
            let (stmt, stmt_h) = match first.take() {
                Some(t) => self.stmt_from(t)?,
                None => self.stmt()?,
            };
            h = h.max(stmt_h);
            stmts.push(stmt);
            if !self.blocksep()? || !self.starts_stmt() {
                break;
            }
        }
        self.nl()?;
        if let Some(Stmt::Let { span, .. }) = stmts.last() {
            let span = *span;
            return Err(self.missing_return(span));
        }
        if is_query {
            if !self.cur.at_end() {
                return Err(self.expected(&["end-of-input"]));
            }
        } else if self.cur.peek() != Some(b'}') {
            return Err(self.expected(&["`}`"]));
        }
        Ok((stmts, h))
    }

    fn stmt(&mut self) -> PResult<(Stmt, usize)> {
        if self.cur.at_keyword("let") {
            return self.let_stmt();
        }
        let ex = self.expr0(false)?;
        Ok((Stmt::Expr(ex.e), ex.h))
    }

    /// A statement whose first term was already parsed (see [`Probe::Term`]).
    #[inline(never)]
    fn stmt_from(&mut self, t: Term) -> PResult<(Stmt, usize)> {
        self.enter()?;
        let t = self.postfix(t)?;
        let t = self.expr_rhs(t)?;
        self.leave();
        Ok((Stmt::Expr(t.ex.e), t.ex.h))
    }

    #[inline(never)]
    fn let_stmt(&mut self) -> PResult<(Stmt, usize)> {
        let start = self.pos();
        self.cur.set_pos(start + 3);
        self.nl()?;
        let name_start = self.pos();
        let Some(name_end) = self.cur.ident_end(name_start) else {
            return Err(self.expected(&["identifier"]));
        };
        let text = self.cur.slice(name_start, name_end);
        let name = Name {
            text: text.to_string(),
            span: Span::new(name_start, name_end),
        };
        if is_keyword(text) {
            return Err(self.invalid_ident(text, name.span));
        }
        self.cur.set_pos(name_end);
        self.nl()?;
        let ty: Option<TypeExpr> = if self.cur.eat(":") {
            self.nl()?;
            Some(self.type_expr()?)
        } else {
            None
        };
        if !self.cur.eat("=") {
            let names: &[&str] = match &ty {
                None => &["`:`", "`=`"],
                Some(_) if self.type_was_bare_name => &["`<`", "`=`"],
                Some(_) => &["`=`"],
            };
            return Err(self.expected(names));
        }
        self.nl()?;
        let value = self.expr0(false)?;
        if name.text == "FQL" || name.text == "_" {
            let span = name.span;
            return Err(self.invalid_ident(&name.text, span));
        }
        let span = Span::new(start, value.outer.end as usize);
        Ok((
            Stmt::Let {
                name,
                ty,
                value: value.e,
                span,
            },
            value.h,
        ))
    }

    // ---- objects and blocks ------------------------------------------------------------

    /// `{}`, `{ key: value, ... }` or `{ statements }` (cursor on `{`).
    #[inline(never)]
    pub(crate) fn object_or_block(&mut self) -> PResult<Ex> {
        let start = self.pos();
        self.cur.set_pos(start + 1);
        self.nl()?;
        if self.cur.eat("}") {
            let span = self.span_from(start);
            return Ok(self.leaf(ExprKind::Object(Vec::new()), span));
        }
        let (stmts, h) = match self.probe_key()? {
            Probe::Key(key) => return self.object_rest(start, key),
            Probe::NotKey => self.body(false, None)?,
            Probe::Term(t) => self.body(false, Some(t))?,
        };
        self.cur.set_pos(self.pos() + 1);
        let span = self.span_from(start);
        self.node(ExprKind::Block(stmts), span, h, self.char_span(start))
    }

    #[inline(never)]
    fn probe_key(&mut self) -> PResult<Probe> {
        let at = self.pos();
        let colon_after = |p: &Self, end: usize| {
            let mut probe = p.cur.clone();
            probe.set_pos(end);
            probe.skip_ws_lenient();
            probe.peek() == Some(b':')
        };
        match self.cur.peek() {
            Some(b) if is_ident_start(b) => {
                let end = self.cur.ident_end(at).unwrap_or(at);
                if colon_after(self, end) {
                    self.cur.set_pos(end);
                    let text = self.cur.slice(at, end).to_string();
                    return Ok(Probe::Key(Name {
                        text,
                        span: Span::new(at, end),
                    }));
                }
                Ok(Probe::NotKey)
            }
            Some(b'\'') => {
                let mut probe = self.cur.clone();
                if let Ok(text) = scan_single(&mut probe) {
                    let end = probe.pos();
                    if colon_after(self, end) {
                        self.cur.set_pos(end);
                        return Ok(Probe::Key(Name {
                            text,
                            span: Span::new(at, end),
                        }));
                    }
                }
                Ok(Probe::NotKey)
            }
            Some(b'"') => {
                let (ex, interpolation) = self.double_string()?;
                let end = self.pos();
                if colon_after(self, end) {
                    if let Some((hash, expr)) = interpolation {
                        return Err(self.key_interpolation_error(hash, expr, ex.e.span));
                    }
                    if let ExprKind::Str(text) = ex.e.kind {
                        return Ok(Probe::Key(Name {
                            text,
                            span: ex.e.span,
                        }));
                    }
                    return Ok(Probe::NotKey);
                }
                self.ws()?;
                Ok(Probe::Term(Term::plain(ex)))
            }
            _ => Ok(Probe::NotKey),
        }
    }

    /// The rest of an object whose first key was read.
    #[inline(never)]
    fn object_rest(&mut self, start: usize, first: Name) -> PResult<Ex> {
        let mut fields: Vec<(Name, Expr)> = Vec::new();
        let mut h = 0;
        let mut key = first;
        loop {
            self.ws()?;
            if !self.cur.eat(":") {
                return Err(self.expected(&["`:`"]));
            }
            self.nl()?;
            let value = self.expr(false)?;
            h = h.max(value.h);
            fields.push((key, value.e));
            if self.cur.eat(",") {
                self.nl()?;
                if self.cur.peek() == Some(b'}') {
                    break;
                }
                key = self.object_key()?;
                continue;
            }
            if self.cur.peek() == Some(b'}') {
                break;
            }
            return Err(self.expected(&["`,`", "`}`"]));
        }
        self.cur.set_pos(self.pos() + 1);
        for (original, dup) in super::duplicates(fields.iter().map(|(k, _)| k)) {
            let hint = Hint::new(HintKind::Hint, "Key originally used here", original);
            self.soft(ParseError::new("Duplicate key", dup).with_hint(hint));
        }
        let span = self.span_from(start);
        self.node(ExprKind::Object(fields), span, h, self.char_span(start))
    }

    /// A key after the first: identifier or keyword, `'str'` or `"str"`.
    #[inline(never)]
    fn object_key(&mut self) -> PResult<Name> {
        let at = self.pos();
        match self.cur.peek() {
            Some(b) if is_ident_start(b) => {
                let end = self.cur.ident_end(at).unwrap_or(at);
                self.cur.set_pos(end);
                Ok(Name {
                    text: self.cur.slice(at, end).to_string(),
                    span: Span::new(at, end),
                })
            }
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
                let (ex, interpolation) = self.double_string()?;
                if let Some((hash, expr)) = interpolation {
                    return Err(self.key_interpolation_error(hash, expr, ex.e.span));
                }
                match ex.e.kind {
                    ExprKind::Str(text) => Ok(Name {
                        text,
                        span: ex.e.span,
                    }),
                    _ => Err(self.expected_at(at, &["`}`"])),
                }
            }
            _ => Err(self.expected(&["`}`"])),
        }
    }

    // ---- stored lambdas ----------------------------------------------------------------

    /// A stored function/predicate body: exactly one statement, a lambda.
    pub(crate) fn lambda_source(&mut self) -> PResult<Expr> {
        self.nl()?;
        if !self.starts_stmt() {
            return Err(self.unexpected_end("query"));
        }
        let mut stmts = Vec::new();
        loop {
            stmts.push(self.stmt()?.0);
            if !self.blocksep()? || !self.starts_stmt() {
                break;
            }
        }
        self.nl()?;
        let whole = Span::new(0, self.pos());
        let single = stmts.len() == 1;
        if let (true, Some(Stmt::Expr(e))) = (single, stmts.pop())
            && matches!(e.kind, ExprKind::Lambda(_) | ExprKind::ShortLambda(_))
        {
            if !self.cur.at_end() {
                return Err(self.expected(&["end-of-input"]));
            }
            return Ok(e);
        }
        let mut err = ParseError::new("Body must be a lambda expression.", whole)
            .with_annotation("Expression is not a lambda.");
        if single {
            err = err.with_hint(Hint {
                kind: HintKind::Hint,
                message: "Declare a lambda.".into(),
                span: Span::new(0, 0),
                suggestion: Some("() => ".into()),
            });
        }
        Err(self.fail(err))
    }
}
