//! Literals: numbers (with their Int/Long/Double classification), single- and
//! double-quoted strings with escapes and `#{}` interpolation, and heredocs.
//!
//! Numbers: an integer literal is an Int if it fits in `i32`, else a Long if it fits in
//! `i64`, else a Double; a literal with a fraction or exponent is a Double. A sign written
//! before the digits belongs to the literal (`-2 ** 2` is `(-2) ** 2`). As in Fauna (which
//! goes through `BigDecimal`), `-0.0` is plain `0.0`.
//!
//! Heredocs (`<<-ID` raw, `<<+ID` interpolating): blank lines right after the opener are
//! dropped; every content line keeps its line break; the smallest indentation (spaces and
//! tabs, counting whitespace-only lines) is removed from every line; the body ends at a
//! line whose first word is `ID`.
//!
//! **Invariants:** a string never contains a non-display character from the source (only
//! from escapes); an escape never yields a surrogate or a value past U+10FFFF.

use super::{Ex, PResult, Parser};
use crate::ParseError;
use crate::ast::{ExprKind, Span, TemplatePart, TemplatePartKind};
use crate::diagnostics::{Hint, HintKind};
use crate::lexer::{Cursor, NumText, is_display};

/// Why a quoted string could not be read.
#[derive(Debug)]
pub(crate) enum StrError {
    Expected(usize, &'static [&'static str]),
    InvalidChar(usize),
    InvalidEscape(Span, &'static str),
}

/// Reads a single-quoted string (cursor on the opening `'`) without reporting anything:
/// object-key lookahead uses it to peek.
pub(crate) fn scan_single(cur: &mut Cursor<'_>) -> Result<String, StrError> {
    cur.eat("'");
    let mut out = String::new();
    loop {
        let run = cur.pos();
        while let Some(c) = cur.peek_char() {
            if c == '\'' || c == '\\' || !is_display(c) {
                break;
            }
            cur.bump_char();
        }
        out.push_str(cur.slice(run, cur.pos()));
        match cur.peek_char() {
            None => return Err(StrError::Expected(cur.pos(), &["`'`"])),
            Some('\'') => {
                cur.bump_char();
                return Ok(out);
            }
            Some('\\') => scan_escape(cur, &mut out)?,
            Some(_) => return Err(StrError::InvalidChar(cur.pos())),
        }
    }
}

/// Reads one escape sequence (cursor on the `\`) into `out`.
fn scan_escape(cur: &mut Cursor<'_>, out: &mut String) -> Result<(), StrError> {
    let backslash = cur.pos();
    cur.set_pos(backslash + 1);
    let simple = match cur.peek() {
        Some(b'\\') => Some('\\'),
        Some(b'0') => Some('\0'),
        Some(b'\'') => Some('\''),
        Some(b'"') => Some('"'),
        Some(b'`') => Some('`'),
        Some(b'n') => Some('\n'),
        Some(b'r') => Some('\r'),
        Some(b'v') => Some('\u{B}'),
        Some(b't') => Some('\t'),
        Some(b'b') => Some('\u{8}'),
        Some(b'f') => Some('\u{C}'),
        Some(b'#') => Some('#'),
        _ => None,
    };
    if let Some(c) = simple {
        out.push(c);
        cur.set_pos(cur.pos() + 1);
        return Ok(());
    }
    let hex = |cur: &mut Cursor<'_>, expected: &'static [&'static str]| match cur
        .peek()
        .and_then(|b| (b as char).to_digit(16))
    {
        Some(d) => {
            cur.set_pos(cur.pos() + 1);
            Ok(d)
        }
        None => Err(StrError::Expected(cur.pos(), expected)),
    };
    let code = match cur.peek() {
        Some(b'x') => {
            cur.set_pos(cur.pos() + 1);
            let hi = hex(cur, &["hex digit"])?;
            hi * 16 + hex(cur, &["hex digit"])?
        }
        Some(b'u') => {
            cur.set_pos(cur.pos() + 1);
            if cur.eat("{") {
                let mut code = hex(cur, &["hex digit"])?;
                for _ in 1..6 {
                    match cur.peek().and_then(|b| (b as char).to_digit(16)) {
                        Some(d) => {
                            code = code * 16 + d;
                            cur.set_pos(cur.pos() + 1);
                        }
                        None => break,
                    }
                }
                if !cur.eat("}") {
                    let is_hex = cur.peek().is_some_and(|b| b.is_ascii_hexdigit());
                    let names: &'static [&'static str] = if is_hex {
                        &["`}`"]
                    } else {
                        &["`}`", "hex digit"]
                    };
                    return Err(StrError::Expected(cur.pos(), names));
                }
                code
            } else {
                let mut code = hex(cur, &["`{`", "hex digit"])?;
                for _ in 1..4 {
                    code = code * 16 + hex(cur, &["hex digit"])?;
                }
                code
            }
        }
        _ => return Err(StrError::Expected(cur.pos(), &["escape code"])),
    };
    let span = Span::new(backslash, cur.pos());
    if code > 0x10FFFF {
        return Err(StrError::InvalidEscape(
            span,
            "outside of valid unicode range",
        ));
    }
    match char::from_u32(code) {
        Some(c) => {
            out.push(c);
            Ok(())
        }
        None => Err(StrError::InvalidEscape(span, "surrogates are disallowed")),
    }
}

/// The value of an integer literal with its sign applied.
fn int_value(radix: u32, digits: &str, negative: bool) -> ExprKind {
    let mut acc: u128 = 0;
    let mut fits = true;
    for b in digits.bytes().filter(|&b| b != b'_') {
        let d = u128::from((b as char).to_digit(radix).unwrap_or(0));
        match acc
            .checked_mul(u128::from(radix))
            .and_then(|v| v.checked_add(d))
        {
            Some(v) => acc = v,
            None => {
                fits = false;
                break;
            }
        }
    }
    if fits && let Ok(v) = i128::try_from(acc) {
        let v = if negative { -v } else { v };
        return match (i32::try_from(v), i64::try_from(v)) {
            (Ok(i), _) => ExprKind::Int(i),
            (_, Ok(l)) => ExprKind::Long(l),
            _ => ExprKind::Double(v as f64),
        };
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    let magnitude = if radix == 10 {
        clean.parse::<f64>().unwrap_or(f64::INFINITY)
    } else {
        clean.chars().fold(0.0, |acc, c| {
            acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0))
        })
    };
    ExprKind::Double(if negative { -magnitude } else { magnitude })
}

fn float_value(text: &str, negative: bool) -> ExprKind {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let v = clean.parse::<f64>().unwrap_or(f64::NAN);
    let v = if negative { -v } else { v };
    // BigDecimal has no negative zero.
    ExprKind::Double(if v == 0.0 { 0.0 } else { v })
}

/// Pieces of a template being built: adjacent texts merge.
#[derive(Default)]
struct Parts {
    parts: Vec<TemplatePart>,
    interpolated: bool,
    height: usize,
}

impl Parts {
    fn text(&mut self, text: &str, span: Span) {
        if text.is_empty() {
            return;
        }
        if let Some(TemplatePart {
            kind: TemplatePartKind::Text(prev),
            span: prev_span,
        }) = self.parts.last_mut()
        {
            prev.push_str(text);
            *prev_span = prev_span.to(span);
            return;
        }
        self.parts.push(TemplatePart {
            kind: TemplatePartKind::Text(text.to_string()),
            span,
        });
    }

    fn expr(&mut self, ex: Ex, span: Span) {
        self.interpolated = true;
        self.height = self.height.max(ex.h);
        self.parts.push(TemplatePart {
            kind: TemplatePartKind::Expr(ex.e),
            span,
        });
    }

    /// `Str` when nothing was interpolated, else `Template`.
    fn finish(self) -> (ExprKind, usize) {
        if self.interpolated {
            return (ExprKind::Template(self.parts), self.height);
        }
        let text = self
            .parts
            .into_iter()
            .map(|p| match p.kind {
                TemplatePartKind::Text(t) => t,
                TemplatePartKind::Expr(_) => String::new(),
            })
            .collect();
        (ExprKind::Str(text), 0)
    }
}

impl Parser<'_> {
    #[cold]
    #[inline(never)]
    fn str_error(&mut self, e: StrError) -> super::Fail {
        match e {
            StrError::Expected(pos, names) => self.expected_at(pos, names),
            StrError::InvalidChar(pos) => self.invalid_char(pos),
            StrError::InvalidEscape(span, why) => {
                self.fail(ParseError::new("Invalid escape", span).with_annotation(why))
            }
        }
    }

    /// A number literal, with its sign if one is written (the cursor is on the sign or
    /// the first digit). Type singletons allow integers only.
    #[inline(never)]
    pub(crate) fn number_literal(&mut self, allow_float: bool) -> PResult<Ex> {
        let start = self.pos();
        let negative = self.cur.peek() == Some(b'-');
        if matches!(self.cur.peek(), Some(b'+' | b'-')) {
            self.cur.set_pos(start + 1);
            self.cur.skip_ws_lenient();
        }
        let text = match self.cur.number(allow_float) {
            Ok(text) => text,
            Err(e) => return Err(self.expected_at(e.pos, &[e.expected])),
        };
        let kind = match text {
            NumText::Int { radix, digits } => {
                if radix == 10 {
                    self.int_end = Some(self.pos());
                }
                int_value(radix, digits, negative)
            }
            NumText::Float(text) => float_value(text, negative),
        };
        Ok(self.leaf(kind, self.span_from(start)))
    }

    #[inline(never)]
    pub(crate) fn single_string(&mut self) -> PResult<Ex> {
        let start = self.pos();
        let mut cur = self.cur.clone();
        match scan_single(&mut cur) {
            Ok(text) => {
                self.cur = cur;
                Ok(self.leaf(ExprKind::Str(text), self.span_from(start)))
            }
            Err(e) => Err(self.str_error(e)),
        }
    }

    /// A double-quoted string. Also returns, when it interpolates, where its first `#{`
    /// is and the span of the first interpolated expression (object keys report them).
    #[inline(never)]
    pub(crate) fn double_string(&mut self) -> PResult<(Ex, Option<(usize, Span)>)> {
        let start = self.pos();
        self.cur.set_pos(start + 1);
        let mut parts = Parts::default();
        let mut text = String::new();
        let mut text_start = self.pos();
        let mut first = None;
        loop {
            let run = self.pos();
            while let Some(c) = self.cur.peek_char() {
                if matches!(c, '"' | '\\' | '#') || !is_display(c) {
                    break;
                }
                self.cur.bump_char();
            }
            text.push_str(self.cur.slice(run, self.pos()));
            match self.cur.peek_char() {
                None => return Err(self.expected(&["`\"`"])),
                Some('"') => break,
                Some('\\') => {
                    let mut cur = self.cur.clone();
                    match scan_escape(&mut cur, &mut text) {
                        Ok(()) => self.cur = cur,
                        Err(e) => return Err(self.str_error(e)),
                    }
                }
                Some('#') if self.cur.peek_at(1) == Some(b'{') => {
                    let hash = self.pos();
                    parts.text(&text, Span::new(text_start, hash));
                    text.clear();
                    let ex = self.interpolation()?;
                    first.get_or_insert((hash, ex.e.span));
                    parts.expr(ex, self.span_from(hash));
                    text_start = self.pos();
                }
                Some('#') => {
                    text.push('#');
                    self.cur.set_pos(self.pos() + 1);
                }
                Some(_) => return Err(self.invalid_char(self.pos())),
            }
        }
        parts.text(&text, Span::new(text_start, self.pos()));
        self.cur.set_pos(self.pos() + 1);
        let (kind, h) = parts.finish();
        let span = self.span_from(start);
        let ex = self.node(kind, span, h, span)?;
        Ok((ex, first))
    }

    /// `#{ expr }` (cursor on `#`).
    fn interpolation(&mut self) -> PResult<Ex> {
        self.cur.set_pos(self.pos() + 2);
        self.nl()?;
        let ex = self.expr(false)?;
        if !self.cur.eat("}") {
            return Err(self.expected(&["`}`"]));
        }
        Ok(ex)
    }

    /// A double-quoted string where `#{` is plain text (singleton types).
    #[inline(never)]
    pub(crate) fn plain_double_string(&mut self) -> PResult<(String, Span)> {
        let start = self.pos();
        self.cur.set_pos(start + 1);
        let mut text = String::new();
        loop {
            let run = self.pos();
            while let Some(c) = self.cur.peek_char() {
                if matches!(c, '"' | '\\') || !is_display(c) {
                    break;
                }
                self.cur.bump_char();
            }
            text.push_str(self.cur.slice(run, self.pos()));
            match self.cur.peek_char() {
                None => return Err(self.expected(&["`\"`"])),
                Some('"') => break,
                Some('\\') => {
                    let mut cur = self.cur.clone();
                    match scan_escape(&mut cur, &mut text) {
                        Ok(()) => self.cur = cur,
                        Err(e) => return Err(self.str_error(e)),
                    }
                }
                Some(_) => return Err(self.invalid_char(self.pos())),
            }
        }
        self.cur.set_pos(self.pos() + 1);
        Ok((text, self.span_from(start)))
    }

    /// The error for `{ "#{k}": v }`, with Fauna's two hints.
    #[cold]
    #[inline(never)]
    pub(crate) fn key_interpolation_error(
        &mut self,
        hash: usize,
        expr: Span,
        key: Span,
    ) -> super::Fail {
        let escape = Hint {
            kind: HintKind::Hint,
            message: "Add a backslash to ignore the interpolation".into(),
            span: Span::new(hash, hash),
            suggestion: Some("\\".into()),
        };
        let dynamic = Hint::new(
            HintKind::Hint,
            "Use Object.fromEntries if you need a dynamic key",
            key,
        );
        let err = ParseError::new("Object keys do not support interpolation", expr)
            .with_hint(escape)
            .with_hint(dynamic);
        self.fail(err)
    }

    /// `<<-ID` / `<<+ID` heredocs (cursor on `<<`).
    #[inline(never)]
    pub(crate) fn heredoc(&mut self) -> PResult<Ex> {
        let start = self.pos();
        let interpolating = self.cur.starts_with("<<+");
        self.cur.set_pos(start + 3);
        self.ws()?;
        let Some(delim_end) = self.cur.ident_end(self.pos()) else {
            return Err(self.expected(&["identifier"]));
        };
        let delim = self.cur.slice(self.pos(), delim_end);
        let delim_name = format!("`{delim}`");
        self.cur.set_pos(delim_end);
        let mut breaks = 0;
        loop {
            let save = self.pos();
            self.cur.skip_ws_lenient();
            if !self.skip_line_breaks() {
                self.cur.set_pos(save);
                break;
            }
            breaks += 1;
        }
        if breaks == 0 {
            return Err(self.expected(&["newline"]));
        }

        let mut lines: Vec<(Parts, usize)> = Vec::new();
        let end = loop {
            let save = self.pos();
            self.cur.skip_ws_lenient();
            if self.cur.word() == Some(delim) {
                break self.pos() + delim.len();
            }
            self.cur.set_pos(save);
            if self.cur.at_end() {
                return Err(self.expected(&[delim_name.as_str()]));
            }
            let mut parts = Parts::default();
            let mut indent = None;
            let mut text_start = self.pos();
            loop {
                let run = self.pos();
                while let Some(c) = self.cur.peek_char() {
                    if matches!(c, '\n' | '\r') || (interpolating && c == '#') || !is_display(c) {
                        break;
                    }
                    self.cur.bump_char();
                }
                let run_text = self.cur.slice(run, self.pos());
                if indent.is_none() && !run_text.is_empty() {
                    indent = Some(
                        run_text
                            .bytes()
                            .take_while(|b| matches!(b, b' ' | b'\t'))
                            .count(),
                    );
                }
                match self.cur.peek_char() {
                    None | Some('\n' | '\r') => {
                        parts.text(
                            self.cur.slice(text_start, self.pos()),
                            self.span_from(text_start),
                        );
                        break;
                    }
                    Some('#') if self.cur.peek_at(1) == Some(b'{') => {
                        let hash = self.pos();
                        parts.text(
                            self.cur.slice(text_start, hash),
                            Span::new(text_start, hash),
                        );
                        indent.get_or_insert(0);
                        let ex = self.interpolation()?;
                        parts.expr(ex, self.span_from(hash));
                        text_start = self.pos();
                    }
                    Some('#') => {
                        indent.get_or_insert(0);
                        self.cur.set_pos(self.pos() + 1);
                    }
                    Some(_) => return Err(self.invalid_char(self.pos())),
                }
            }
            let line_break = self.pos();
            if !self.skip_line_breaks() {
                return Err(self.expected(&[delim_name.as_str()]));
            }
            parts.text(
                self.cur.slice(line_break, self.pos()),
                self.span_from(line_break),
            );
            lines.push((parts, indent.unwrap_or(0)));
        };
        self.cur.set_pos(end);

        let strip = lines.iter().map(|(_, indent)| *indent).min().unwrap_or(0);
        let mut body = Parts::default();
        for (line, _) in lines {
            let mut first = true;
            for part in line.parts {
                match part.kind {
                    TemplatePartKind::Text(text) => {
                        let cut = if first { strip.min(text.len()) } else { 0 };
                        let span =
                            Span::new(part.span.start as usize + cut, part.span.end as usize);
                        body.text(text.get(cut..).unwrap_or(""), span);
                    }
                    TemplatePartKind::Expr(e) => {
                        let (h, outer) = (line.height, e.span);
                        body.expr(Ex { e, h, outer }, part.span);
                    }
                }
                first = false;
            }
        }
        let (kind, h) = body.finish();
        let span = self.span_from(start);
        self.node(kind, span, h, Span::new(start, start + 3))
    }

    /// Consumes a run of `\n`/`\r`; returns whether there was one.
    fn skip_line_breaks(&mut self) -> bool {
        let start = self.pos();
        while matches!(self.cur.peek(), Some(b'\n' | b'\r')) {
            self.cur.set_pos(self.pos() + 1);
        }
        self.pos() > start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_classified_by_the_smallest_type_that_holds_them() {
        assert_eq!(int_value(10, "2147483647", false), ExprKind::Int(i32::MAX));
        assert_eq!(int_value(10, "2147483648", true), ExprKind::Int(i32::MIN));
        assert_eq!(
            int_value(10, "2147483648", false),
            ExprKind::Long(2_147_483_648)
        );
        assert_eq!(
            int_value(10, "9223372036854775808", true),
            ExprKind::Long(i64::MIN)
        );
        assert_eq!(
            int_value(10, "9223372036854775808", false),
            ExprKind::Double(9.223372036854776e18)
        );
        assert_eq!(
            int_value(
                10,
                "1_000_000_000_000_000_000_000_000_000_000_000_000_000",
                false
            ),
            ExprKind::Double(1e39)
        );
        assert_eq!(int_value(16, "ff", true), ExprKind::Int(-255));
        assert_eq!(int_value(2, "1_0", false), ExprKind::Int(2));
    }

    #[test]
    fn floats_have_no_negative_zero() {
        assert_eq!(float_value("0.0", true), ExprKind::Double(0.0));
        assert!(matches!(float_value("0.0", true), ExprKind::Double(v) if v.is_sign_positive()));
        assert_eq!(float_value("1_5.2_5e1", false), ExprKind::Double(152.5));
        assert_eq!(
            float_value("1e400", true),
            ExprKind::Double(f64::NEG_INFINITY)
        );
    }

    fn single(src: &str) -> Result<String, StrError> {
        scan_single(&mut Cursor::new(src))
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(
            single(r"'\\\0\'\n\r\v\t\b\f\#\`'").unwrap(),
            "\\\0'\n\r\u{B}\t\u{8}\u{C}#`"
        );
        assert_eq!(
            single(r"'\xff\u00ff\u{0000ff}\u{101234}'").unwrap(),
            "ÿÿÿ\u{101234}"
        );
        assert_eq!(single("'a\"#`b'").unwrap(), "a\"#`b");
    }

    #[test]
    fn surrogate_and_out_of_range_escapes_are_invalid() {
        assert!(matches!(
            single(r"'\udc00'"),
            Err(StrError::InvalidEscape(s, "surrogates are disallowed")) if s == Span::new(1, 7)
        ));
        assert!(matches!(
            single(r"'\u{11ffff}'"),
            Err(StrError::InvalidEscape(s, "outside of valid unicode range")) if s == Span::new(1, 11)
        ));
    }

    #[test]
    fn malformed_escapes_say_what_was_expected() {
        assert!(matches!(
            single(r"'\u12'"),
            Err(StrError::Expected(5, ["hex digit"]))
        ));
        assert!(matches!(
            single(r"'\uz'"),
            Err(StrError::Expected(3, ["`{`", "hex digit"]))
        ));
        assert!(matches!(
            single(r"'\u{1234'"),
            Err(StrError::Expected(8, ["`}`", "hex digit"]))
        ));
        assert!(matches!(
            single(r"'\u{1234567}'"),
            Err(StrError::Expected(10, ["`}`"]))
        ));
        assert!(matches!(
            single(r"'\3'"),
            Err(StrError::Expected(2, ["escape code"]))
        ));
    }

    #[test]
    fn control_characters_are_rejected_in_strings() {
        assert!(matches!(single("'a\u{0}'"), Err(StrError::InvalidChar(2))));
        assert!(matches!(
            single("'a\u{FFFF}'"),
            Err(StrError::InvalidChar(2))
        ));
    }
}
