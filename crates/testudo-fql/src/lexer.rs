//! Character-level scanning: the cursor the parser drives.
//!
//! FQL lexing depends on context (a newline ends a statement in one place and is free in
//! another, `1.x` is a method call while `1.5` is a number, strings embed expressions), so
//! there is no token stream: the parser asks the cursor for exactly what it expects next,
//! which also means no per-token allocation.
//!
//! **Invariants:** the position is always on a `char` boundary of the source; no method
//! panics on any input (every index is checked); scanning never allocates; a method that
//! fails leaves the position where it was unless its doc says otherwise.

/// Words that can never name a variable (`Tokens.invalidIdents` in Fauna's core).
pub(crate) const KEYWORDS: [&str; 13] = [
    "if", "else", "at", "match", "case", "let", "null", "true", "false", "isa", "join", "on", "of",
];

/// The value placeholder the server puts where a template hole was.
pub(crate) const PLACEHOLDER: char = '\u{FFFF}';

pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

pub(crate) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

pub(crate) fn is_ident_rest(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'\''
}

/// Fauna's "display characters": everything but control characters, specials and the
/// invisible formatting characters that can hide code (bidi overrides and friends).
pub(crate) fn is_display(c: char) -> bool {
    !matches!(c,
        '\u{0}'..='\u{8}'
        | '\u{E}'..='\u{1F}'
        | '\u{7F}'
        | '\u{FFF0}'..='\u{FFFF}'
        | '\u{FEFF}'
        | '\u{2000}'..='\u{200F}'
        | '\u{2028}'..='\u{202F}'
        | '\u{2060}'..='\u{206F}')
}

/// Why whitespace skipping stopped on something it could not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WsError {
    /// A non-display character inside a comment, at this byte offset.
    InvalidChar(usize),
    /// A `/*` at this byte offset has no matching `*/`.
    UnterminatedComment(usize),
}

/// The text of a number literal, as scanned (underscores still in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NumText<'s> {
    Int { radix: u32, digits: &'s str },
    Float(&'s str),
}

/// A number literal that cannot be completed: what was expected, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NumError {
    pub pos: usize,
    pub expected: &'static str,
}

enum CommentEnd {
    End(usize),
    Invalid(usize),
    Unterminated,
}

#[derive(Clone, Debug)]
pub(crate) struct Cursor<'s> {
    src: &'s str,
    pos: usize,
    /// Total bytes moved forward, rewinds included: lets tests check the parser does
    /// linear work without timing it.
    advanced: u64,
}

impl<'s> Cursor<'s> {
    pub(crate) fn new(src: &'s str) -> Cursor<'s> {
        Cursor {
            src,
            pos: 0,
            advanced: 0,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    #[cfg(test)]
    pub(crate) fn advanced(&self) -> u64 {
        self.advanced
    }

    /// Moves to `pos`, which must come from this cursor (so it is a char boundary).
    pub(crate) fn set_pos(&mut self, pos: usize) {
        if pos > self.pos {
            self.advanced += (pos - self.pos) as u64;
        }
        self.pos = pos.min(self.src.len());
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn peek_at(&self, offset: usize) -> Option<u8> {
        self.src.as_bytes().get(self.pos + offset).copied()
    }

    pub(crate) fn byte_at(&self, pos: usize) -> Option<u8> {
        self.src.as_bytes().get(pos).copied()
    }

    pub(crate) fn peek_char(&self) -> Option<char> {
        self.char_at(self.pos)
    }

    pub(crate) fn char_at(&self, pos: usize) -> Option<char> {
        self.src.get(pos..).and_then(|s| s.chars().next())
    }

    /// The end of the character at `pos` (or `pos` itself at the end of the source).
    pub(crate) fn char_end(&self, pos: usize) -> usize {
        pos + self.char_at(pos).map_or(0, char::len_utf8)
    }

    pub(crate) fn starts_with(&self, s: &str) -> bool {
        self.src
            .as_bytes()
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(s.as_bytes()))
    }

    /// Consumes `s` if the source continues with it.
    pub(crate) fn eat(&mut self, s: &str) -> bool {
        if self.starts_with(s) {
            self.set_pos(self.pos + s.len());
            true
        } else {
            false
        }
    }

    pub(crate) fn bump_char(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.set_pos(self.pos + c.len_utf8());
        Some(c)
    }

    /// The bytes from the cursor to the end.
    pub(crate) fn rest(&self) -> &'s [u8] {
        self.src.as_bytes().get(self.pos..).unwrap_or(&[])
    }

    /// Skips a balanced `{ ... }` (cursor on `{`) without parsing it, stepping over
    /// strings (with their interpolations) and comments. Returns `false`, leaving the
    /// cursor where it was, if the braces never close.
    pub(crate) fn skip_braced(&mut self) -> bool {
        enum Ctx {
            Code(usize),
            Str,
        }
        let bytes = self.src.as_bytes();
        let at = |i: usize| bytes.get(i).copied();
        let mut stack = vec![Ctx::Code(0)];
        let mut i = self.pos;
        while i < bytes.len() {
            match stack.last_mut() {
                Some(Ctx::Code(depth)) => match bytes[i] {
                    b'{' => {
                        *depth += 1;
                        i += 1;
                    }
                    b'}' => {
                        *depth = depth.saturating_sub(1);
                        i += 1;
                        if *depth == 0 {
                            stack.pop();
                            if stack.is_empty() {
                                self.set_pos(i);
                                return true;
                            }
                        }
                    }
                    b'"' => {
                        stack.push(Ctx::Str);
                        i += 1;
                    }
                    b'\'' => {
                        i += 1;
                        while i < bytes.len() && bytes[i] != b'\'' {
                            i += if bytes[i] == b'\\' { 2 } else { 1 };
                        }
                        i += 1;
                    }
                    b'/' if at(i + 1) == Some(b'/') => {
                        while i < bytes.len() && bytes[i] != b'\n' {
                            i += 1;
                        }
                    }
                    b'/' if at(i + 1) == Some(b'*') => {
                        let mut probe = self.clone();
                        probe.pos = i;
                        match probe.block_comment_end() {
                            CommentEnd::End(end) => i = end,
                            _ => return false,
                        }
                    }
                    _ => i += 1,
                },
                Some(Ctx::Str) => match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => {
                        stack.pop();
                        i += 1;
                    }
                    b'#' if at(i + 1) == Some(b'{') => {
                        stack.push(Ctx::Code(1));
                        i += 2;
                    }
                    _ => i += 1,
                },
                None => return false,
            }
        }
        false
    }

    pub(crate) fn slice(&self, start: usize, end: usize) -> &'s str {
        self.src.get(start..end).unwrap_or("")
    }

    /// The end of an identifier-shaped word (`[A-Za-z_][A-Za-z0-9_']*`) starting at `pos`.
    pub(crate) fn ident_end(&self, pos: usize) -> Option<usize> {
        let bytes = self.src.as_bytes();
        if !bytes.get(pos).copied().is_some_and(is_ident_start) {
            return None;
        }
        let mut end = pos + 1;
        while bytes.get(end).copied().is_some_and(is_ident_rest) {
            end += 1;
        }
        Some(end)
    }

    /// The identifier-shaped word at the cursor, keywords included.
    pub(crate) fn word(&self) -> Option<&'s str> {
        self.ident_end(self.pos)
            .map(|end| self.slice(self.pos, end))
    }

    /// Whether the cursor is on the keyword `kw` (a whole word: `iffy` is not `if`).
    pub(crate) fn at_keyword(&self, kw: &str) -> bool {
        self.word() == Some(kw)
    }

    /// Skips spaces, tabs and well-formed block comments; stops before anything else,
    /// including a broken comment. Never fails.
    pub(crate) fn skip_ws_lenient(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.set_pos(self.pos + 1),
                Some(b'/') if self.peek_at(1) == Some(b'*') => match self.block_comment_end() {
                    CommentEnd::End(end) => self.set_pos(end),
                    _ => return,
                },
                _ => return,
            }
        }
    }

    /// Inline whitespace: spaces, tabs and (nested) block comments. Fails on a comment
    /// that is unterminated or holds a non-display character.
    pub(crate) fn skip_ws(&mut self) -> Result<(), WsError> {
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.set_pos(self.pos + 1),
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment()?,
                _ => return Ok(()),
            }
        }
    }

    /// Whitespace including newlines and line comments (the places where FQL lets a
    /// newline through). Returns whether a line break (or line comment) was crossed.
    pub(crate) fn skip_nl(&mut self) -> Result<bool, WsError> {
        let mut crossed = false;
        loop {
            match self.peek() {
                Some(b' ' | b'\t') => self.set_pos(self.pos + 1),
                Some(b'\n' | b'\r') => {
                    crossed = true;
                    self.set_pos(self.pos + 1);
                }
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment()?,
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    crossed = true;
                    self.line_comment()?;
                }
                _ => return Ok(crossed),
            }
        }
    }

    /// A statement separator: inline whitespace around any run of `;`, newlines and line
    /// comments. Consumes nothing and returns `false` when there is none.
    pub(crate) fn skip_blocksep(&mut self) -> Result<bool, WsError> {
        let start = self.pos;
        self.skip_ws()?;
        let mut found = false;
        loop {
            match self.peek() {
                Some(b';' | b'\n' | b'\r') => {
                    found = true;
                    self.set_pos(self.pos + 1);
                }
                Some(b'/') if self.peek_at(1) == Some(b'/') => {
                    found = true;
                    self.line_comment()?;
                }
                Some(b' ' | b'\t') => self.set_pos(self.pos + 1),
                Some(b'/') if self.peek_at(1) == Some(b'*') => self.block_comment()?,
                _ => break,
            }
        }
        if !found {
            self.pos = start;
        }
        Ok(found)
    }

    fn block_comment(&mut self) -> Result<(), WsError> {
        match self.block_comment_end() {
            CommentEnd::End(end) => {
                self.set_pos(end);
                Ok(())
            }
            CommentEnd::Invalid(at) => Err(WsError::InvalidChar(at)),
            CommentEnd::Unterminated => Err(WsError::UnterminatedComment(self.pos)),
        }
    }

    /// Scans a block comment starting at the cursor (which is on `/*`). Comments nest.
    fn block_comment_end(&self) -> CommentEnd {
        let bytes = self.src.as_bytes();
        let mut depth = 0usize;
        let mut i = self.pos;
        while i < bytes.len() {
            match bytes[i] {
                b'/' if bytes.get(i + 1) == Some(&b'*') => {
                    depth += 1;
                    i += 2;
                }
                b'*' if bytes.get(i + 1) == Some(&b'/') => {
                    depth = depth.saturating_sub(1);
                    i += 2;
                    if depth == 0 {
                        return CommentEnd::End(i);
                    }
                }
                b if b < 0x80 => {
                    if !is_display(b as char) {
                        return CommentEnd::Invalid(i);
                    }
                    i += 1;
                }
                _ => match self.char_at(i) {
                    Some(c) if is_display(c) => i += c.len_utf8(),
                    _ => return CommentEnd::Invalid(i),
                },
            }
        }
        CommentEnd::Unterminated
    }

    /// `// ...` up to and including the end of the line.
    fn line_comment(&mut self) -> Result<(), WsError> {
        let mut i = self.pos + 2;
        loop {
            match self.char_at(i) {
                None => break,
                Some('\n') => {
                    i += 1;
                    break;
                }
                Some(c) if is_display(c) => i += c.len_utf8(),
                Some(_) => return Err(WsError::InvalidChar(i)),
            }
        }
        self.set_pos(i);
        Ok(())
    }

    /// Whether a number literal starts here: a digit, or a sign followed (across inline
    /// whitespace and block comments only) by a digit. Returns where the digits begin.
    pub(crate) fn signed_number_start(&self) -> Option<usize> {
        match self.peek() {
            Some(b) if b.is_ascii_digit() => Some(self.pos),
            Some(b'+' | b'-') => {
                let mut probe = self.clone();
                probe.set_pos(self.pos + 1);
                probe.skip_ws_lenient();
                probe.peek().filter(u8::is_ascii_digit).map(|_| probe.pos)
            }
            _ => None,
        }
    }

    /// Scans an unsigned number literal at the cursor (which is on a digit) following
    /// Fauna's `Numbers.scala`: `1.` is the integer `1` followed by `.`, `.5` is not a
    /// number, a decimal integer has no leading zero (`01` is `0` then `1`).
    /// With `allow_float` false only the integer forms are read (`1.5` stops after `1`).
    pub(crate) fn number(&mut self, allow_float: bool) -> Result<NumText<'s>, NumError> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let at = |i: usize| bytes.get(i).copied();
        if at(start) == Some(b'0') {
            let radix = match at(start + 1) {
                Some(b'x' | b'X') => Some((16, "hex digit")),
                Some(b'o' | b'O') => Some((8, "octal digit")),
                Some(b'b' | b'B') => Some((2, "binary digit")),
                _ => None,
            };
            if let Some((radix, expected)) = radix {
                let digits_start = start + 2;
                let mut end = digits_start;
                while at(end).is_some_and(|b| b == b'_' || (b as char).is_digit(radix)) {
                    end += 1;
                }
                let digits = self.slice(digits_start, end);
                if !digits.bytes().any(|b| b != b'_') {
                    return Err(NumError {
                        pos: digits_start,
                        expected,
                    });
                }
                self.set_pos(end);
                return Ok(NumText::Int { radix, digits });
            }
        }
        let mut end = start + 1;
        if at(start) != Some(b'0') {
            while at(end).is_some_and(|b| b.is_ascii_digit() || b == b'_') {
                end += 1;
            }
        }
        let int_end = end;
        let mut float = false;
        if !allow_float {
            self.set_pos(end);
            return Ok(NumText::Int {
                radix: 10,
                digits: self.slice(start, end),
            });
        }
        if at(end) == Some(b'.') && at(end + 1).is_some_and(|b| b.is_ascii_digit()) {
            float = true;
            end += 2;
            while at(end).is_some_and(|b| b.is_ascii_digit() || b == b'_') {
                end += 1;
            }
        }
        if matches!(at(end), Some(b'e' | b'E')) {
            float = true;
            end += 1;
            if matches!(at(end), Some(b'+' | b'-')) {
                end += 1;
            }
            if !at(end).is_some_and(|b| b.is_ascii_digit()) {
                return Err(NumError {
                    pos: end,
                    expected: "digit",
                });
            }
            while at(end).is_some_and(|b| b.is_ascii_digit() || b == b'_') {
                end += 1;
            }
        }
        self.set_pos(end);
        if float {
            Ok(NumText::Float(self.slice(start, end)))
        } else {
            Ok(NumText::Int {
                radix: 10,
                digits: self.slice(start, int_end),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_block_comments_are_one_comment() {
        let mut c = Cursor::new("/* a /* b */ c */x");
        c.skip_ws().unwrap();
        assert_eq!(c.peek(), Some(b'x'));
    }

    #[test]
    fn an_unterminated_comment_is_reported_where_it_opens() {
        let mut c = Cursor::new("  /* a /* b */ c");
        assert_eq!(c.skip_ws(), Err(WsError::UnterminatedComment(2)));
    }

    #[test]
    fn a_placeholder_inside_a_comment_is_an_invalid_character() {
        let mut c = Cursor::new("// a \u{FFFF}\n");
        assert_eq!(c.skip_nl(), Err(WsError::InvalidChar(5)));
        let mut c = Cursor::new("/* \u{FFFF} */");
        assert_eq!(c.skip_ws(), Err(WsError::InvalidChar(3)));
    }

    #[test]
    fn skip_nl_reports_whether_a_line_was_crossed() {
        let mut c = Cursor::new("  /* x */ y");
        assert_eq!(c.skip_nl(), Ok(false));
        let mut c = Cursor::new(" // c\n y");
        assert_eq!(c.skip_nl(), Ok(true));
        assert_eq!(c.peek(), Some(b'y'));
    }

    #[test]
    fn blocksep_needs_a_semicolon_newline_or_line_comment() {
        let mut c = Cursor::new("  x");
        assert_eq!(c.skip_blocksep(), Ok(false));
        assert_eq!(c.pos(), 0);
        let mut c = Cursor::new(" ; \n ;; // c\n  x");
        assert_eq!(c.skip_blocksep(), Ok(true));
        assert_eq!(c.peek(), Some(b'x'));
    }

    fn num(src: &str) -> (Result<NumText<'_>, NumError>, usize) {
        let mut c = Cursor::new(src);
        let r = c.number(true);
        (r, c.pos())
    }

    #[test]
    fn a_dot_not_followed_by_a_digit_ends_an_integer() {
        assert_eq!(
            num("1.toString()"),
            (
                Ok(NumText::Int {
                    radix: 10,
                    digits: "1"
                }),
                1
            )
        );
        assert_eq!(num("1.5.x"), (Ok(NumText::Float("1.5")), 3));
    }

    #[test]
    fn decimal_integers_have_no_leading_zero() {
        assert_eq!(
            num("0123"),
            (
                Ok(NumText::Int {
                    radix: 10,
                    digits: "0"
                }),
                1
            )
        );
        assert_eq!(num("0.5"), (Ok(NumText::Float("0.5")), 3));
    }

    #[test]
    fn radix_prefixes_and_underscores_are_scanned() {
        assert_eq!(
            num("0xFF_ff"),
            (
                Ok(NumText::Int {
                    radix: 16,
                    digits: "FF_ff"
                }),
                7
            )
        );
        assert_eq!(
            num("0o17"),
            (
                Ok(NumText::Int {
                    radix: 8,
                    digits: "17"
                }),
                4
            )
        );
        assert_eq!(
            num("0b1012"),
            (
                Ok(NumText::Int {
                    radix: 2,
                    digits: "101"
                }),
                5
            )
        );
        assert_eq!(
            num("0x_").0,
            Err(NumError {
                pos: 2,
                expected: "hex digit"
            })
        );
        assert_eq!(
            num("1_000_"),
            (
                Ok(NumText::Int {
                    radix: 10,
                    digits: "1_000_"
                }),
                6
            )
        );
    }

    #[test]
    fn exponents_need_a_digit() {
        assert_eq!(num("1e3"), (Ok(NumText::Float("1e3")), 3));
        assert_eq!(num("1.5E-3_0"), (Ok(NumText::Float("1.5E-3_0")), 8));
        assert_eq!(
            num("1ex").0,
            Err(NumError {
                pos: 2,
                expected: "digit"
            })
        );
    }

    #[test]
    fn signs_may_be_separated_from_digits_by_inline_space_only() {
        assert_eq!(Cursor::new("- /* c */ 2").signed_number_start(), Some(10));
        assert_eq!(Cursor::new("-\n2").signed_number_start(), None);
        assert_eq!(Cursor::new("-x").signed_number_start(), None);
    }

    #[test]
    fn display_characters_exclude_controls_and_invisible_formatting() {
        assert!(is_display('a') && is_display('\n') && is_display('\t') && is_display('😍'));
        assert!(!is_display('\u{0}') && !is_display('\u{200B}') && !is_display(PLACEHOLDER));
    }
}
