//! Expressions: `if`/`at`/`match`, lambdas and tuples, terms with their postfix chains,
//! prefix operators, the binary-operator Pratt loop, short lambdas and projections.
//!
//! Shape of an expression (Fauna's `expr0`): a head (`if`, `at`, `match`, a lambda, or a
//! term), then for terms a postfix chain (`.f`, `?.f`, `(args)`, `[i]`, `!`), an operator
//! tail whose operands are terms (so `1 + if ...` is an error), and an optional projection
//! `{ ... }` on the same line that applies to the whole operator expression.
//!
//! **Invariants:** a postfix chain containing `?.` is wrapped in exactly one
//! [`ExprKind::OptionalChain`] at its end (after any trailing `!`); a bare short lambda
//! never escapes as an operand: the chain, prefix operator, operator tail or projection
//! around it is moved inside it; every recursion goes through `enter`/`expr0`.

use std::sync::Arc;

use super::precedence::{OpInfo, match_operator};
use super::{Ex, PResult, Parser, Short, Term};
use crate::ParseError;
use crate::ast::{ExprKind, Lambda, Name, ProjField, ProjValue, Span, UnOp};
use crate::diagnostics::{Hint, HintKind};
use crate::lexer::{PLACEHOLDER, is_ident_start, is_keyword};

/// Where the projection `{ * }` ends up: parsed, never evaluated.
const PROJECT_ALL: &str = "projection of all fields";

fn sp(start: usize, end: usize) -> Span {
    Span::new(start, end)
}

fn start_of(ex: &Ex) -> usize {
    ex.outer.start as usize
}

fn end_of(ex: &Ex) -> usize {
    ex.outer.end as usize
}

impl Parser<'_> {
    /// One expression where a statement may stand (`expr0`). A bare short lambda here is
    /// an error unless `short_ok` (call arguments, tuple elements, projection values).
    pub(crate) fn expr0(&mut self, short_ok: bool) -> PResult<Ex> {
        self.enter()?;
        let t = self.expr0_term()?;
        self.leave();
        if t.short == Short::Bare && !short_ok {
            self.invalid_short_lambda(t.ex.e.span);
        }
        Ok(t.ex)
    }

    #[cold]
    #[inline(never)]
    fn invalid_short_lambda(&mut self, span: Span) {
        self.soft(ParseError::new("Invalid anonymous field access", span));
    }

    /// `expr0` followed by free newlines (`expr`): list elements, conditions, values.
    pub(crate) fn expr(&mut self, short_ok: bool) -> PResult<Ex> {
        let ex = self.expr0(short_ok)?;
        self.nl()?;
        Ok(ex)
    }

    fn expr0_term(&mut self) -> PResult<Term> {
        if let Some(word) = self.cur.word() {
            match word {
                "if" => return self.if_expr().map(Term::plain),
                "at" => return self.at_expr().map(Term::plain),
                "match" => return self.match_expr().map(Term::plain),
                "null" | "true" | "false" => {}
                w if is_keyword(w) => {
                    let span = sp(self.pos(), self.pos() + w.len());
                    return Err(self.invalid_ident(w, span));
                }
                _ => return self.ident_or_lambda(),
            }
        }
        if self.cur.peek() == Some(b'(') {
            let (t, is_lambda) = self.group(true)?;
            if is_lambda {
                return Ok(t);
            }
            let t = self.postfix(t)?;
            return self.expr_rhs(t);
        }
        let t = self.term()?;
        self.expr_rhs(t)
    }

    /// Whether an expression can start at the cursor: decides between parsing one and
    /// reporting what else was expected.
    pub(crate) fn starts_expr(&self) -> bool {
        let Some(b) = self.cur.peek() else {
            return false;
        };
        match b {
            b'0'..=b'9' | b'\'' | b'"' | b'{' | b'[' | b'(' | b'~' | b'!' | b'-' => true,
            b'+' => self.cur.signed_number_start().is_some(),
            b'<' => self.cur.starts_with("<<-") || self.cur.starts_with("<<+"),
            b'.' => self.anon_start_ok(),
            b if is_ident_start(b) => true,
            _ => self.cur.peek_char() == Some(PLACEHOLDER),
        }
    }

    /// `.name`, `.(args)` or `.[i]` (newlines allowed after the dot) starts a short lambda.
    fn anon_start_ok(&self) -> bool {
        let mut probe = self.cur.clone();
        probe.set_pos(self.pos() + 1);
        if probe.skip_nl().is_err() {
            return true;
        }
        probe
            .peek()
            .is_some_and(|b| is_ident_start(b) || b == b'(' || b == b'[')
    }

    // ---- heads -------------------------------------------------------------------------

    #[inline(never)]
    fn if_expr(&mut self) -> PResult<Ex> {
        let start = self.pos();
        self.cur.set_pos(start + 2);
        self.nl()?;
        let cond = self.paren_condition()?;
        let then = self.expr0(false)?;
        let save = self.pos();
        self.nl()?;
        let otherwise = if self.cur.at_keyword("else") {
            self.cur.set_pos(self.pos() + 4);
            self.nl()?;
            Some(self.expr0(false)?)
        } else {
            self.cur.set_pos(save);
            None
        };
        let end = otherwise.as_ref().map_or(end_of(&then), end_of);
        let h = cond
            .h
            .max(then.h)
            .max(otherwise.as_ref().map_or(0, |e| e.h));
        let kind = ExprKind::If {
            cond: Box::new(cond.e),
            then: Box::new(then.e),
            otherwise: otherwise.map(|e| Box::new(e.e)),
        };
        self.node(kind, sp(start, end), h, sp(start, start + 2))
    }

    #[inline(never)]
    fn at_expr(&mut self) -> PResult<Ex> {
        let start = self.pos();
        self.cur.set_pos(start + 2);
        self.nl()?;
        let ts = self.paren_condition()?;
        let body = self.expr0(false)?;
        let span = sp(start, end_of(&body));
        let h = ts.h.max(body.h);
        let kind = ExprKind::At {
            ts: Box::new(ts.e),
            body: Box::new(body.e),
        };
        self.node(kind, span, h, sp(start, start + 2))
    }

    /// `( expr )` after `if`/`at`, and the newlines after it.
    fn paren_condition(&mut self) -> PResult<Ex> {
        if !self.cur.eat("(") {
            return Err(self.expected(&["`(`"]));
        }
        self.nl()?;
        let cond = self.expr(false)?;
        if !self.cur.eat(")") {
            return Err(self.expected(&["`)`"]));
        }
        self.nl()?;
        Ok(cond)
    }

    /// `match scrutinee { case ... }`: parsed only far enough to skip it; never evaluated.
    #[inline(never)]
    fn match_expr(&mut self) -> PResult<Ex> {
        let start = self.pos();
        self.cur.set_pos(start + 5);
        self.nl()?;
        let _scrutinee = self.term()?;
        if self.cur.peek() != Some(b'{') {
            return Err(self.expected(&["`{`"]));
        }
        let brace = self.pos();
        if !self.cur.skip_braced() {
            return Err(self.expected_at(brace, &["`}`"]));
        }
        let span = self.span_from(start);
        self.ws()?;
        Ok(self.leaf(ExprKind::Unsupported("match"), span))
    }

    #[inline(never)]
    fn ident_or_lambda(&mut self) -> PResult<Term> {
        let start = self.pos();
        let Some(end) = self.cur.ident_end(start) else {
            return Err(self.expected(&["expression"]));
        };
        let text = self.cur.slice(start, end);
        let span = sp(start, end);
        self.cur.set_pos(end);
        self.ws()?;
        if self.cur.starts_with("=>") {
            let param = (text != "_").then(|| Name {
                text: text.to_string(),
                span,
            });
            return self.lambda_body(start, vec![param], None).map(Term::plain);
        }
        let ex = self.leaf(ExprKind::Ident(text.to_string()), span);
        let t = self.postfix(Term::plain(ex))?;
        self.expr_rhs(t)
    }

    /// `=> body`, after a lambda's parameters. Duplicate names are reported (all of them).
    fn lambda_body(
        &mut self,
        start: usize,
        params: Vec<Option<Name>>,
        variadic: Option<Option<Name>>,
    ) -> PResult<Ex> {
        let dups = super::duplicates(params.iter().flatten().chain(variadic.iter().flatten()));
        for (original, dup) in dups {
            let hint = Hint::new(HintKind::Hint, "Argument originally defined here", original);
            self.soft(ParseError::new("Duplicate lambda argument", dup).with_hint(hint));
        }
        let arrow = self.pos();
        self.cur.set_pos(arrow + 2);
        self.nl()?;
        let body = self.expr0(false)?;
        let span = sp(start, end_of(&body));
        let h = body.h;
        let lambda = Lambda {
            params,
            variadic,
            body: body.e,
        };
        self.node(
            ExprKind::Lambda(Arc::new(lambda)),
            span,
            h,
            sp(arrow, arrow + 2),
        )
    }

    /// `( ... )`: a tuple, or (where `lambda_ok`) a lambda's parameter list. `(e)` is `e`,
    /// `()` and `(a, b)` are arrays. Returns whether it was a lambda.
    #[inline(never)]
    fn group(&mut self, lambda_ok: bool) -> PResult<(Term, bool)> {
        let start = self.pos();
        self.cur.set_pos(start + 1);
        self.nl()?;
        let (element_or_close, after_element): (&[&str], &[&str]) = if lambda_ok {
            (&["`)`", "`...`", "expression"], &["`)`", "`,`", "`...`"])
        } else {
            (&["`)`", "expression"], &["`)`", "`,`"])
        };
        let mut elems: Vec<Ex> = Vec::new();
        let mut all_idents = true;
        let mut variadic: Option<Option<Name>> = None;
        loop {
            if self.cur.peek() == Some(b')') {
                break;
            }
            if lambda_ok && self.cur.starts_with("...") {
                self.cur.set_pos(self.pos() + 3);
                self.nl()?;
                variadic = Some(self.param_name()?);
                self.nl()?;
                if self.cur.peek() != Some(b')') {
                    return Err(self.expected(&["`)`"]));
                }
                break;
            }
            if !self.starts_expr() {
                return Err(self.expected(element_or_close));
            }
            let ex = self.expr(true)?;
            // A parameter is a bare identifier: `((a)) => 1` is not a lambda.
            if !matches!(ex.e.kind, ExprKind::Ident(_)) || ex.outer != ex.e.span {
                all_idents = false;
            }
            elems.push(ex);
            if self.cur.eat(",") {
                self.nl()?;
                continue;
            }
            if self.cur.peek() == Some(b')') {
                break;
            }
            return Err(self.expected(after_element));
        }
        self.cur.set_pos(self.pos() + 1);
        let span = self.span_from(start);
        self.ws()?;
        if lambda_ok {
            if all_idents && self.cur.starts_with("=>") {
                let params = elems
                    .into_iter()
                    .map(|ex| match ex.e.kind {
                        ExprKind::Ident(text) if text != "_" => Some(Name {
                            text,
                            span: ex.e.span,
                        }),
                        _ => None,
                    })
                    .collect();
                return Ok((
                    Term::plain(self.lambda_body(start, params, variadic)?),
                    true,
                ));
            }
            if variadic.is_some() {
                return Err(self.fail(ParseError::new("invalid variadic tuple", span)));
            }
        }
        if elems.len() == 1
            && let Some(mut ex) = elems.pop()
        {
            ex.outer = span;
            let short = if matches!(ex.e.kind, ExprKind::ShortLambda(_)) {
                Short::Paren
            } else {
                Short::No
            };
            return Ok((Term { ex, short }, false));
        }
        let h = elems.iter().map(|e| e.h).max().unwrap_or(0);
        let kind = ExprKind::Array(elems.into_iter().map(|e| e.e).collect());
        let ex = self.node(kind, span, h, self.char_span(start))?;
        Ok((Term::plain(ex), false))
    }

    /// A lambda parameter name: `_` is `None`; keywords are invalid.
    fn param_name(&mut self) -> PResult<Option<Name>> {
        let start = self.pos();
        let Some(end) = self.cur.ident_end(start) else {
            return Err(self.expected(&["identifier"]));
        };
        let text = self.cur.slice(start, end);
        let span = sp(start, end);
        if is_keyword(text) {
            return Err(self.invalid_ident(text, span));
        }
        self.cur.set_pos(end);
        Ok((text != "_").then(|| Name {
            text: text.to_string(),
            span,
        }))
    }

    // ---- terms -------------------------------------------------------------------------

    /// A term: a primary with its postfix chain, or a prefix operator applied to a term.
    pub(crate) fn term(&mut self) -> PResult<Term> {
        match self.cur.peek() {
            Some(b'-' | b'~' | b'!') if self.cur.signed_number_start().is_none() => self.unary(),
            _ => {
                let t = self.primary()?;
                self.postfix(t)
            }
        }
    }

    #[inline(never)]
    fn unary(&mut self) -> PResult<Term> {
        self.enter()?;
        let start = self.pos();
        let op = match self.cur.peek() {
            Some(b'-') => UnOp::Neg,
            Some(b'~') => UnOp::BitNot,
            _ => UnOp::Not,
        };
        self.cur.set_pos(start + 1);
        let op_span = sp(start, start + 1);
        self.ws()?;
        let operand = self.term()?;
        self.leave();
        let bare = operand.short == Short::Bare;
        let operand = if bare {
            self.unwrap_short(operand.ex)
        } else {
            operand.ex
        };
        let span = sp(start, end_of(&operand));
        let h = operand.h;
        let kind = ExprKind::Unary {
            op,
            operand: Box::new(operand.e),
        };
        let ex = self.node(kind, span, h, op_span)?;
        self.rewrap(ex, bare)
    }

    /// A term without its chain: literal, string, object/block, array, tuple, identifier,
    /// placeholder or the start of a short lambda; then inline whitespace.
    fn primary(&mut self) -> PResult<Term> {
        let Some(b) = self.cur.peek() else {
            return Err(self.expected(&["expression"]));
        };
        let t = match b {
            b'0'..=b'9' => Term::plain(self.number_literal(true)?),
            b'+' | b'-' if self.cur.signed_number_start().is_some() => {
                Term::plain(self.number_literal(true)?)
            }
            b'\'' => Term::plain(self.single_string()?),
            b'"' => Term::plain(self.double_string()?.0),
            b'<' if self.cur.starts_with("<<-") || self.cur.starts_with("<<+") => {
                Term::plain(self.heredoc()?)
            }
            b'{' => Term::plain(self.object_or_block()?),
            b'[' => Term::plain(self.array()?),
            b'(' => self.group(false)?.0,
            b'.' if self.anon_start_ok() => self.anon_start()?,
            b if is_ident_start(b) => self.word_term()?,
            _ if self.cur.peek_char() == Some(PLACEHOLDER) => Term::plain(self.placeholder()?),
            _ => return Err(self.expected(&["expression"])),
        };
        self.ws()?;
        Ok(t)
    }

    #[inline(never)]
    fn word_term(&mut self) -> PResult<Term> {
        let start = self.pos();
        let Some(end) = self.cur.ident_end(start) else {
            return Err(self.expected(&["expression"]));
        };
        let word = self.cur.slice(start, end);
        let span = sp(start, end);
        let kind = match word {
            "null" => ExprKind::Null,
            "true" => ExprKind::Bool(true),
            "false" => ExprKind::Bool(false),
            w if is_keyword(w) => return Err(self.invalid_ident(w, span)),
            w => ExprKind::Ident(w.to_string()),
        };
        self.cur.set_pos(end);
        Ok(Term::plain(self.leaf(kind, span)))
    }

    #[inline(never)]
    fn placeholder(&mut self) -> PResult<Ex> {
        let start = self.pos();
        let Some(n) = self.take_placeholder() else {
            return Err(self.invalid_char(start));
        };
        self.cur.bump_char();
        Ok(self.leaf(ExprKind::Placeholder(n), self.span_from(start)))
    }

    #[inline(never)]
    fn array(&mut self) -> PResult<Ex> {
        let start = self.pos();
        self.cur.set_pos(start + 1);
        self.nl()?;
        let mut elems: Vec<Ex> = Vec::new();
        loop {
            if self.cur.peek() == Some(b']') {
                break;
            }
            // Fauna accepts a lone comma: `[,]` is `[]`.
            if elems.is_empty() && self.cur.eat(",") {
                self.nl()?;
                if self.cur.peek() != Some(b']') {
                    return Err(self.expected(&["`]`"]));
                }
                break;
            }
            if !self.starts_expr() {
                let names: &[&str] = if elems.is_empty() {
                    &["`,`", "`]`", "expression"]
                } else {
                    &["`]`", "expression"]
                };
                return Err(self.expected(names));
            }
            elems.push(self.expr(false)?);
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
        let h = elems.iter().map(|e| e.h).max().unwrap_or(0);
        let kind = ExprKind::Array(elems.into_iter().map(|e| e.e).collect());
        let span = self.span_from(start);
        self.node(kind, span, h, self.char_span(start))
    }

    // ---- short lambdas -----------------------------------------------------------------

    /// `.name`, `.(args)`, `.[i]`: the first link of a short lambda's chain.
    #[inline(never)]
    fn anon_start(&mut self) -> PResult<Term> {
        let dot = self.pos();
        self.cur.set_pos(dot + 1);
        self.nl()?;
        let this = self.leaf(ExprKind::ImplicitArg, sp(dot, dot));
        let first = match self.cur.peek() {
            Some(b'(') => self.call(this, false)?,
            Some(b'[') => self.index(this, false)?,
            _ => self.select(this, false, &["identifier"])?,
        };
        let ex = self.wrap_short(first)?;
        Ok(Term {
            ex,
            short: Short::Bare,
        })
    }

    pub(crate) fn unwrap_short(&mut self, ex: Ex) -> Ex {
        match ex.e.kind {
            ExprKind::ShortLambda(body) => Ex {
                e: Arc::unwrap_or_clone(body),
                h: ex.h.saturating_sub(1),
                outer: ex.outer,
            },
            kind => Ex {
                e: crate::ast::Expr {
                    kind,
                    span: ex.e.span,
                },
                h: ex.h,
                outer: ex.outer,
            },
        }
    }

    fn wrap_short(&mut self, body: Ex) -> PResult<Ex> {
        let span = body.outer;
        let h = body.h;
        self.node(ExprKind::ShortLambda(Arc::new(body.e)), span, h, span)
    }

    /// A term built around an unwrapped bare short lambda goes back inside the lambda.
    fn rewrap(&mut self, ex: Ex, bare: bool) -> PResult<Term> {
        if bare {
            Ok(Term {
                ex: self.wrap_short(ex)?,
                short: Short::Bare,
            })
        } else {
            Ok(Term::plain(ex))
        }
    }

    // ---- postfix chains ----------------------------------------------------------------

    /// `.f`, `?.f`, `?.(args)`, `?.[i]`, `(args)`, `[i]`, `!` after a term. Only `.` and
    /// `?.` may start on a new line.
    pub(crate) fn postfix(&mut self, t: Term) -> PResult<Term> {
        let bare = t.short == Short::Bare;
        let mut short = t.short;
        let mut ex = if bare { self.unwrap_short(t.ex) } else { t.ex };
        let mut optional = false;
        loop {
            let save = self.pos();
            self.nl()?;
            if self.cur.starts_with("?.") {
                self.cur.set_pos(self.pos() + 2);
                self.nl()?;
                optional = true;
                ex = match self.cur.peek() {
                    Some(b'(') => self.call(ex, true)?,
                    Some(b'[') => self.index(ex, true)?,
                    _ => self.select(ex, true, &["`(`", "`[`", "identifier"])?,
                };
            } else if self.cur.peek() == Some(b'.') {
                let dot = self.pos();
                self.cur.set_pos(dot + 1);
                self.nl()?;
                let names: &[&str] = if self.int_end == Some(dot) {
                    &["digit", "identifier"]
                } else {
                    &["identifier"]
                };
                ex = self.select(ex, false, names)?;
            } else {
                self.cur.set_pos(save);
                match self.cur.peek() {
                    Some(b'(') => ex = self.call(ex, false)?,
                    Some(b'[') => ex = self.index(ex, false)?,
                    Some(b'!') if !matches!(self.cur.peek_at(1), Some(b'=' | b'~')) => {
                        let bang = self.pos();
                        self.cur.set_pos(bang + 1);
                        let span = sp(start_of(&ex), bang + 1);
                        let h = ex.h;
                        ex = self.node(
                            ExprKind::NonNull(Box::new(ex.e)),
                            span,
                            h,
                            sp(bang, bang + 1),
                        )?;
                    }
                    _ => break,
                }
            }
            if short == Short::Paren {
                short = Short::No;
            }
            self.ws()?;
        }
        if optional {
            let span = ex.e.span;
            let h = ex.h;
            ex = self.node(ExprKind::OptionalChain(Box::new(ex.e)), span, h, span)?;
        }
        if bare {
            self.rewrap(ex, true)
        } else {
            Ok(Term { ex, short })
        }
    }

    /// The field name after `.` or `?.` (keywords allowed: `arr.at(0)`).
    #[inline(never)]
    fn select(&mut self, recv: Ex, optional: bool, expected: &[&str]) -> PResult<Ex> {
        let start = self.pos();
        let Some(end) = self.cur.ident_end(start) else {
            return Err(self.expected(expected));
        };
        let name = Name {
            text: self.cur.slice(start, end).to_string(),
            span: sp(start, end),
        };
        self.cur.set_pos(end);
        let span = sp(start_of(&recv), end);
        let h = recv.h;
        let kind = ExprKind::Field {
            recv: Box::new(recv.e),
            name,
            optional,
        };
        self.node(kind, span, h, sp(start, end))
    }

    fn call(&mut self, callee: Ex, optional: bool) -> PResult<Ex> {
        let open = self.pos();
        let (args, args_h) = self.arg_list(b')', "`)`")?;
        let span = sp(start_of(&callee), self.pos());
        let h = callee.h.max(args_h);
        let kind = ExprKind::Call {
            callee: Box::new(callee.e),
            args,
            optional,
        };
        self.node(kind, span, h, self.char_span(open))
    }

    fn index(&mut self, recv: Ex, optional: bool) -> PResult<Ex> {
        let open = self.pos();
        let (args, args_h) = self.arg_list(b']', "`]`")?;
        let span = sp(start_of(&recv), self.pos());
        let h = recv.h.max(args_h);
        let kind = ExprKind::Index {
            recv: Box::new(recv.e),
            args,
            optional,
        };
        self.node(kind, span, h, self.char_span(open))
    }

    /// `( a, b, )` or `[ a, b ]` arguments; short lambdas allowed. Cursor on the opener.
    fn arg_list(&mut self, close: u8, close_name: &str) -> PResult<(Vec<crate::ast::Expr>, usize)> {
        self.cur.set_pos(self.pos() + 1);
        self.nl()?;
        let mut args = Vec::new();
        let mut h = 0;
        loop {
            if self.cur.peek() == Some(close) {
                break;
            }
            if !self.starts_expr() {
                return Err(self.expected(&[close_name, "expression"]));
            }
            let arg = self.expr(true)?;
            h = h.max(arg.h);
            args.push(arg.e);
            if self.cur.eat(",") {
                self.nl()?;
                continue;
            }
            if self.cur.peek() == Some(close) {
                break;
            }
            return Err(self.expected(&[close_name, "`,`"]));
        }
        self.cur.set_pos(self.pos() + 1);
        Ok((args, h))
    }

    // ---- operators and projection ------------------------------------------------------

    /// After a term: the operator tail, then a projection on the same line.
    pub(crate) fn expr_rhs(&mut self, t: Term) -> PResult<Term> {
        let t = self.op_chain(t)?;
        if self.cur.peek() == Some(b'{') {
            self.projection(t)
        } else {
            Ok(t)
        }
    }

    /// The operator at the cursor: on this line, or (for `?? || && | ^ &`) at the start
    /// of a following line. Does not move the cursor; returns where the operator is.
    fn peek_operator(&mut self) -> PResult<Option<(&'static OpInfo, usize)>> {
        let here = self.pos();
        if let Some(info) = match_operator(self.cur.rest()) {
            return Ok(Some((info, here)));
        }
        let crossed = self.nl()?;
        let found = if crossed {
            match_operator(self.cur.rest())
                .filter(|i| i.continues_line)
                .map(|i| (i, self.pos()))
        } else {
            None
        };
        self.cur.set_pos(here);
        Ok(found)
    }

    fn op_chain(&mut self, first: Term) -> PResult<Term> {
        if self.peek_operator()?.is_none() {
            return Ok(first);
        }
        let mut short = false;
        let lhs = self.absorb(first, &mut short);
        let ex = self.climb(lhs, 0, &mut short)?;
        self.rewrap(ex, short)
    }

    /// Operands that are short lambdas (bare or parenthesized) make the whole operator
    /// expression one short lambda: `.price > 10 && .stock > 0`.
    fn absorb(&mut self, t: Term, short: &mut bool) -> Ex {
        if t.short == Short::No {
            return t.ex;
        }
        *short = true;
        self.unwrap_short(t.ex)
    }

    /// The Pratt loop: folds operators binding at least as tightly as `min_prec`.
    fn climb(&mut self, mut lhs: Ex, min_prec: u8, short: &mut bool) -> PResult<Ex> {
        while let Some((info, at)) = self.peek_operator()? {
            if info.prec < min_prec {
                break;
            }
            let op_span = sp(at, at + info.text.len());
            self.cur.set_pos(at + info.text.len());
            self.nl()?;
            let t = self.term()?;
            let mut rhs = self.absorb(t, short);
            while let Some((next, _)) = self.peek_operator()? {
                let tighter = next.prec > info.prec || (next.prec == info.prec && next.right_assoc);
                if !tighter {
                    break;
                }
                let min = if next.prec > info.prec {
                    info.prec + 1
                } else {
                    info.prec
                };
                self.enter()?;
                rhs = self.climb(rhs, min, short)?;
                self.leave();
            }
            let span = sp(start_of(&lhs), end_of(&rhs));
            let h = lhs.h.max(rhs.h);
            let kind = ExprKind::Binary {
                op: info.op,
                lhs: Box::new(lhs.e),
                rhs: Box::new(rhs.e),
            };
            lhs = self.node(kind, span, h, op_span)?;
        }
        Ok(lhs)
    }

    /// `recv { a, b: expr, c { d } }` (or `{ * }`, kept as unsupported).
    fn projection(&mut self, recv: Term) -> PResult<Term> {
        let bare = recv.short == Short::Bare;
        let recv = if bare {
            self.unwrap_short(recv.ex)
        } else {
            recv.ex
        };
        let start = start_of(&recv);
        let brace = self.pos();
        let body = self.projection_body()?;
        let span = self.span_from(start);
        let at = self.char_span(brace);
        let ex = match body {
            None => self.node(ExprKind::Unsupported(PROJECT_ALL), span, 0, at)?,
            Some((fields, fields_h)) => {
                let h = recv.h.max(fields_h);
                let kind = ExprKind::Projection {
                    recv: Box::new(recv.e),
                    fields,
                };
                self.node(kind, span, h, at)?
            }
        };
        self.ws()?;
        self.rewrap(ex, bare)
    }

    /// The braces of a projection; `None` for `{ * }`. Also returns the fields' height.
    fn projection_body(&mut self) -> PResult<Option<(Vec<ProjField>, usize)>> {
        self.enter()?;
        self.cur.set_pos(self.pos() + 1);
        self.nl()?;
        if self.cur.eat("*") {
            self.nl()?;
            if !self.cur.eat("}") {
                return Err(self.expected(&["`}`"]));
            }
            self.leave();
            return Ok(None);
        }
        let mut fields = Vec::new();
        let mut h = 0;
        loop {
            let start = self.pos();
            let Some(end) = self.cur.ident_end(start) else {
                let names: &[&str] = if fields.is_empty() {
                    &["`*`", "identifier"]
                } else {
                    &["`}`", "identifier"]
                };
                return Err(self.expected(names));
            };
            let text = self.cur.slice(start, end);
            let name_span = sp(start, end);
            if is_keyword(text) {
                return Err(self.invalid_ident(text, name_span));
            }
            let name = Name {
                text: text.to_string(),
                span: name_span,
            };
            self.cur.set_pos(end);
            self.ws()?;
            let (value, value_end) = if self.cur.eat(":") {
                self.nl()?;
                let e = self.expr0(true)?;
                let value_end = end_of(&e);
                h = h.max(e.h);
                (ProjValue::Expr(e.e), value_end)
            } else if self.cur.peek() == Some(b'{') {
                let brace = self.pos();
                let value = match self.projection_body()? {
                    Some((inner, inner_h)) => {
                        h = h.max(inner_h + 1);
                        ProjValue::Nested(inner)
                    }
                    None => {
                        let span = self.span_from(brace);
                        ProjValue::Expr(self.leaf(ExprKind::Unsupported(PROJECT_ALL), span).e)
                    }
                };
                (value, self.pos())
            } else {
                h = h.max(1);
                (ProjValue::Field, end)
            };
            fields.push(ProjField {
                name,
                value,
                span: sp(start, value_end),
            });
            self.nl()?;
            if self.cur.eat(",") {
                self.nl()?;
                if self.cur.peek() == Some(b'}') {
                    break;
                }
                continue;
            }
            if self.cur.peek() == Some(b'}') {
                break;
            }
            return Err(self.expected(&["`,`", "`}`"]));
        }
        self.cur.set_pos(self.pos() + 1);
        self.leave();
        Ok(Some((fields, h)))
    }
}
