//! The FQL parser: a hand-written recursive-descent parser over the [`Cursor`], with one
//! precedence table driving one Pratt loop for binary operators.
//!
//! It follows Fauna's grammar (`ExprParser.scala`) rule for rule, including where
//! newlines are significant and the wording of its errors. Errors come in two kinds, as
//! in Fauna: *recorded* errors (duplicate keys, invalid identifiers, bad escapes, ...) are
//! all reported; a plain "Expected ..." failure is reported only when nothing was recorded.
//!
//! **Invariants:** no input makes it panic, loop forever or recurse more than
//! [`MAX_NESTING`] levels; it never builds a tree deeper than [`MAX_NESTING`] (every node
//! is built through [`Parser::node`], which knows its children's heights); it backtracks
//! only over a single word or quoted string (never over a parsed subexpression), so its
//! work is linear in the input.

mod expr;
mod literal;
mod precedence;
mod stmt;
mod types;

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::ast::{Expr, ExprKind, Name, Query, Span, TypeExpr};
use crate::diagnostics::{Hint, HintKind};
use crate::lexer::{Cursor, WsError};
use crate::{MAX_NESTING, ParseError, ParseErrors};

/// The parse was abandoned; the reason is in the parser's error state.
#[derive(Debug)]
pub(crate) struct Fail;

pub(crate) type PResult<T> = Result<T, Fail>;

/// An expression, the height of its tree (a leaf is 1), and its outer span: the span
/// including any parentheses around it, which the tree drops (`(a + b) * c` spans from the
/// `(`), so that spans built from it cover what the user wrote.
#[derive(Debug)]
pub(crate) struct Ex {
    pub(crate) e: Expr,
    pub(crate) h: usize,
    pub(crate) outer: Span,
}

/// Whether a term is a short lambda (`.name`), and how it was written: bare short
/// lambdas absorb the postfix chain, prefix operator and projection around them;
/// parenthesized ones (`(.name)`) are values, except that operator chains still absorb
/// them (`(.a) + 1` is one lambda), as in Fauna.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Short {
    No,
    Bare,
    Paren,
}

#[derive(Debug)]
pub(crate) struct Term {
    pub(crate) ex: Ex,
    pub(crate) short: Short,
}

impl Term {
    pub(crate) fn plain(ex: Ex) -> Term {
        Term {
            ex,
            short: Short::No,
        }
    }
}

pub(crate) struct Parser<'s> {
    pub(crate) cur: Cursor<'s>,
    /// Recorded errors: all of them are reported.
    errors: Vec<ParseError>,
    /// The first "Expected ..." failure: reported only if nothing was recorded.
    fatal: Option<ParseError>,
    depth: usize,
    placeholders: usize,
    next_placeholder: usize,
    /// End of the last decimal integer literal, so that `3.` can say it wanted a digit.
    pub(crate) int_end: Option<usize>,
    /// Whether the last type parsed was a bare name (which `<` could still extend).
    pub(crate) type_was_bare_name: bool,
}

pub(crate) fn parse_query(src: &str, placeholders: usize) -> Result<Query, ParseErrors> {
    let mut p = Parser::new(src, placeholders);
    let r = p.query();
    p.finish(r)
}

pub(crate) fn parse_lambda(src: &str, placeholders: usize) -> Result<Expr, ParseErrors> {
    let mut p = Parser::new(src, placeholders);
    let r = p.lambda_source();
    p.finish(r)
}

pub(crate) fn parse_type(src: &str) -> Result<TypeExpr, ParseErrors> {
    let mut p = Parser::new(src, 0);
    let r = p.type_source();
    p.finish(r)
}

/// `(first occurrence, repeat)` for every name seen before, in source order: a linear scan
/// for the handful of names real code has, a hash map past that so that hostile inputs
/// stay linear.
pub(crate) fn duplicates<'n>(names: impl Iterator<Item = &'n Name>) -> Vec<(Span, Span)> {
    let names: Vec<&Name> = names.collect();
    let mut dups = Vec::new();
    if names.len() <= 16 {
        for (i, name) in names.iter().enumerate() {
            if let Some(first) = names[..i].iter().find(|m| m.text == name.text) {
                dups.push((first.span, name.span));
            }
        }
    } else {
        let mut seen: HashMap<&str, Span> = HashMap::with_capacity(names.len());
        for name in names {
            match seen.entry(name.text.as_str()) {
                Entry::Occupied(first) => dups.push((*first.get(), name.span)),
                Entry::Vacant(slot) => {
                    slot.insert(name.span);
                }
            }
        }
    }
    dups
}

/// Formats Fauna's "Expected a, b, or c" list (sorted, as Fauna sorts it).
fn expected_message(names: &[&str]) -> String {
    let mut names: Vec<&str> = names.to_vec();
    names.sort_unstable();
    names.dedup();
    let list = match names.as_slice() {
        [] => "expression".to_string(),
        [one] => (*one).to_string(),
        [a, b] => format!("{a} or {b}"),
        [init @ .., last] => format!("{}, or {last}", init.join(", ")),
    };
    format!("Expected {list}")
}

impl<'s> Parser<'s> {
    pub(crate) fn new(src: &'s str, placeholders: usize) -> Parser<'s> {
        Parser {
            cur: Cursor::new(src),
            errors: Vec::new(),
            fatal: None,
            depth: 0,
            placeholders,
            next_placeholder: 0,
            int_end: None,
            type_was_bare_name: false,
        }
    }

    fn finish<T>(self, result: PResult<T>) -> Result<T, ParseErrors> {
        if !self.errors.is_empty() {
            return Err(ParseErrors(self.errors));
        }
        match result {
            Ok(v) => Ok(v),
            Err(Fail) => {
                let here = Span::new(self.cur.pos(), self.cur.pos());
                let err = self
                    .fatal
                    .unwrap_or_else(|| ParseError::new("Expected expression", here));
                Err(ParseErrors(vec![err]))
            }
        }
    }

    /// Bytes the cursor moved forward, rewinds included (for linearity tests).
    #[cfg(test)]
    pub(crate) fn work(&self) -> u64 {
        self.cur.advanced()
    }

    // ---- spans -------------------------------------------------------------------------

    pub(crate) fn pos(&self) -> usize {
        self.cur.pos()
    }

    /// The character at `pos` (empty at the end of the source): where errors point.
    pub(crate) fn char_span(&self, pos: usize) -> Span {
        Span::new(pos, self.cur.char_end(pos))
    }

    pub(crate) fn here(&self) -> Span {
        self.char_span(self.pos())
    }

    pub(crate) fn span_from(&self, start: usize) -> Span {
        Span::new(start, self.pos())
    }

    // ---- errors ------------------------------------------------------------------------

    /// Fails with "Expected ..." at the cursor.
    #[cold]
    #[inline(never)]
    pub(crate) fn expected(&mut self, names: &[&str]) -> Fail {
        self.expected_at(self.pos(), names)
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn expected_at(&mut self, pos: usize, names: &[&str]) -> Fail {
        if self.fatal.is_none() {
            self.fatal = Some(ParseError::new(
                expected_message(names),
                self.char_span(pos),
            ));
        }
        Fail
    }

    /// Records an error and abandons the parse.
    #[cold]
    #[inline(never)]
    pub(crate) fn fail(&mut self, err: ParseError) -> Fail {
        self.errors.push(err);
        Fail
    }

    /// Records an error and carries on.
    pub(crate) fn soft(&mut self, err: ParseError) {
        self.errors.push(err);
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn invalid_char(&mut self, pos: usize) -> Fail {
        let span = self.char_span(pos);
        self.fail(ParseError::new("Invalid character", span))
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn invalid_ident(&mut self, name: &str, span: Span) -> Fail {
        let err = ParseError::new("Invalid identifier", span)
            .with_annotation(format!("`{name}` is a keyword"));
        self.fail(err)
    }

    #[cold]
    #[inline(never)]
    fn ws_error(&mut self, e: WsError) -> Fail {
        match e {
            WsError::InvalidChar(pos) => self.invalid_char(pos),
            WsError::UnterminatedComment(pos) => {
                let span = Span::new(pos, pos + 2);
                self.fail(ParseError::new("Unterminated block comment", span))
            }
        }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn unexpected_end(&mut self, what: &str) -> Fail {
        let span = self.here();
        let msg = format!("Unexpected end of {what}. Expected statement or expression");
        self.fail(ParseError::new(msg, span))
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn missing_return(&mut self, stmt: Span) -> Fail {
        let span = self.here();
        let cause = Hint::new(HintKind::Cause, "Statement does not return a value", stmt);
        self.fail(ParseError::new("Missing return expression", span).with_hint(cause))
    }

    // ---- whitespace --------------------------------------------------------------------

    /// Inline whitespace (spaces, tabs, block comments).
    pub(crate) fn ws(&mut self) -> PResult<()> {
        self.cur.skip_ws().map_err(|e| self.ws_error(e))
    }

    /// Whitespace including newlines and line comments; returns whether a line ended.
    pub(crate) fn nl(&mut self) -> PResult<bool> {
        self.cur.skip_nl().map_err(|e| self.ws_error(e))
    }

    /// A statement separator (`;`, newline or line comment, with whitespace around).
    pub(crate) fn blocksep(&mut self) -> PResult<bool> {
        self.cur.skip_blocksep().map_err(|e| self.ws_error(e))
    }

    // ---- nesting -----------------------------------------------------------------------

    /// Enters one level of source nesting; fails past [`MAX_NESTING`].
    pub(crate) fn enter(&mut self) -> PResult<()> {
        self.depth += 1;

        if self.depth > MAX_NESTING {
            let span = self.here();
            return Err(self.too_deep(span));
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn too_deep(&mut self, span: Span) -> Fail {
        let msg = format!("Expression is nested too deeply (the limit is {MAX_NESTING} levels)");
        self.fail(ParseError::new(msg, span))
    }

    /// Builds an expression node over children whose tallest is `child_h` high; fails
    /// (pointing at `at`) if the tree would get deeper than [`MAX_NESTING`].
    pub(crate) fn node(
        &mut self,
        kind: ExprKind,
        span: Span,
        child_h: usize,
        at: Span,
    ) -> PResult<Ex> {
        let h = child_h + 1;
        if h > MAX_NESTING {
            return Err(self.too_deep(at));
        }
        Ok(Ex {
            e: Expr { kind, span },
            h,
            outer: span,
        })
    }

    pub(crate) fn leaf(&mut self, kind: ExprKind, span: Span) -> Ex {
        Ex {
            e: Expr { kind, span },
            h: 1,
            outer: span,
        }
    }

    // ---- placeholders ------------------------------------------------------------------

    /// The next placeholder index, or `None` if the template has no value left.
    pub(crate) fn take_placeholder(&mut self) -> Option<usize> {
        (self.next_placeholder < self.placeholders).then(|| {
            self.next_placeholder += 1;
            self.next_placeholder - 1
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_lists_are_sorted_and_joined_like_fauna() {
        assert_eq!(expected_message(&["expression"]), "Expected expression");
        assert_eq!(expected_message(&["`,`", "`)`"]), "Expected `)` or `,`");
        assert_eq!(
            expected_message(&["`...`", "`,`", "`)`"]),
            "Expected `)`, `,`, or `...`"
        );
        assert_eq!(
            expected_message(&["identifier", "`*`"]),
            "Expected `*` or identifier"
        );
    }

    /// Parses `src` and returns (success, bytes scanned).
    fn work(src: &str) -> (bool, u64) {
        let mut p = Parser::new(src, 0);
        let ok = p.query().is_ok() && p.errors.is_empty();
        (ok, p.work())
    }

    fn assert_linear(src: &str, expect_ok: bool) {
        let (ok, scanned) = work(src);
        assert_eq!(
            ok,
            expect_ok,
            "parse result for input of {} bytes",
            src.len()
        );
        let len = src.len() as u64;
        assert!(
            scanned <= 8 * len + 64,
            "scanned {scanned} bytes for an input of {len}"
        );
    }

    #[test]
    fn nested_groups_are_parsed_in_linear_work() {
        let n = 200;
        assert_linear(&format!("{}1{}", "(".repeat(n), ")".repeat(n)), true);
        assert_linear(&format!("{}1{}", "[".repeat(n), "]".repeat(n)), true);
        assert_linear(&format!("{}1{}", "{ ".repeat(n), " }".repeat(n)), true);
        assert_linear(&format!("{}1{}", "f(".repeat(n), ")".repeat(n)), true);
        assert_linear("((1) + (2)) * ".repeat(n).trim_end_matches("* "), true);
    }

    #[test]
    fn object_or_block_lookahead_never_reparses_nested_strings() {
        let n = 120;
        // Each level starts with a string that could be an object key but is not.
        let src = format!("{}1{}", "{ \"#{ ".repeat(n), " }\" }".repeat(n));
        assert_linear(&src, true);
        let src = format!("{}1{}", "{ 'k' ; ".repeat(n), " }".repeat(n));
        assert_linear(&src, true);
        let src = format!("{}1{}", "{ k: ".repeat(n), " }".repeat(n));
        assert_linear(&src, true);
    }

    #[test]
    fn long_operator_chains_are_parsed_in_linear_work() {
        let n = MAX_NESTING - 2;
        assert_linear(&vec!["1"; n].join(" + "), true);
        assert_linear(&vec!["a"; n].join("\n|| "), true);
        assert_linear(&vec!["2"; n / 2].join(" ** "), true);
        assert_linear(&vec!["x"; n].join("."), true);
        // Past the limit the parse stops early, still in linear work.
        assert_linear(&vec!["1"; 100_000].join(" + "), false);
        assert_linear(&vec!["2"; 100_000].join(" ** "), false);
    }

    #[test]
    fn deep_nesting_is_an_error_at_the_limit() {
        let ok = format!(
            "{}1{}",
            "[".repeat(MAX_NESTING - 1),
            "]".repeat(MAX_NESTING - 1)
        );
        assert!(parse_query(&ok, 0).is_ok());
        let deep = format!(
            "{}1{}",
            "[".repeat(MAX_NESTING + 1),
            "]".repeat(MAX_NESTING + 1)
        );
        let errs = parse_query(&deep, 0).expect_err("too deep");
        assert!(errs.0[0].message.contains("nested too deeply"), "{errs}");
    }
}
