//! The regex methods of `String` (`includesRegex`, `indexOfRegex`, `matches`,
//! `matchIndexes`, `replaceRegex`, `replaceAllRegex`, `splitRegex`) over Java regex syntax.
//!
//! Fauna compiles patterns with `java.util.regex`; here a pattern is translated to the
//! `regex` crate's syntax first, keeping Java's meaning where the two differ: `\d \w \s` and
//! the POSIX classes `\p{Lower}`... are ASCII-only, `\h \v \R \e \a \cX \0nn \uXXXX \Q..\E`
//! exist, `[:x:]` inside a class is not a POSIX class, `~` and `--` inside a class are
//! literal, inline flags `d u U` are accepted and ignored.
//!
//! What Java has and this engine does not — look-ahead and look-behind, backreferences
//! (`\1`, `\k<name>`), possessive quantifiers (`a*+`), atomic groups (`(?>...)`), `\G`,
//! `\Z`, `\X`, `\N{...}`, Unicode blocks (`\p{InGreek}`) — fails cleanly with
//! `invalid_regex`. Remaining differences: `(?i)` folds Unicode case (Java folds ASCII only
//! unless `(?u)`), `.` excludes only `\n` (Java also excludes `\r`, U+0085, U+2028 and
//! U+2029), and `$` without `(?m)` does not match before a final line terminator.
//!
//! **Invariants:** matching is linear in the text (the `regex` crate has no backtracking),
//! so no pattern can hang a query; patterns are bounded in length, nesting and compiled
//! size; every failure is a typed `invalid_regex`, never a panic. Compiled patterns are
//! cached per thread.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder};
use regex_syntax::ast;

use super::super::params::{Ty, check_deadline, int_param, overload, str_param};
use super::{cp_index, cp_len, not_found, recv, replace_with, split_with};
use crate::api::ErrorCode;
use crate::eval::{Interp, R, Value, err};

/// The longest pattern accepted (in bytes).
const MAX_PATTERN_BYTES: usize = 32 * 1024;
/// The deepest nesting of groups and classes in a pattern.
const MAX_NESTING: u32 = 128;
/// The most memory one compiled pattern (and its lazy DFA) may use.
const MAX_COMPILED_BYTES: usize = 4 * 1024 * 1024;
/// Compiled patterns kept per thread.
const CACHE_ENTRIES: usize = 64;

thread_local! {
    static CACHE: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// A pattern that does not compile: Java's description and the code point index.
#[derive(Debug, PartialEq)]
struct Bad {
    description: String,
    index: usize,
}

fn bad(description: impl Into<String>, index: usize) -> Bad {
    Bad {
        description: description.into(),
        index,
    }
}

/// Compiles a Java pattern (from the cache when it was seen before).
fn compile(pattern: &str) -> R<Regex> {
    if let Some(re) = CACHE.with(|c| c.borrow().get(pattern).cloned()) {
        return Ok(re);
    }
    let re = build(pattern).map_err(|b| {
        err(
            ErrorCode::InvalidRegex,
            format!(
                "Invalid regular expression. {} at index {}",
                b.description, b.index
            ),
        )
    })?;
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(pattern.to_string(), re.clone());
    });
    Ok(re)
}

fn build(pattern: &str) -> Result<Regex, Bad> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(bad(
            format!("Pattern is longer than {MAX_PATTERN_BYTES} bytes"),
            0,
        ));
    }
    let chars: Vec<char> = pattern.chars().collect();
    let out = translate(&chars)?;
    // Parse separately first: the parser's errors carry spans, which map back to the
    // user's pattern.
    let parsed = ast::parse::ParserBuilder::new()
        .nest_limit(MAX_NESTING)
        .build()
        .parse(&out.text);
    let tree = parsed.map_err(|e| ast_error(&e, &out, &chars))?;
    regex_syntax::hir::translate::TranslatorBuilder::new()
        .build()
        .translate(&out.text, &tree)
        .map_err(|e| {
            let index = out.original(e.span().start.offset);
            let description = match e.kind() {
                regex_syntax::hir::ErrorKind::UnicodePropertyNotFound
                | regex_syntax::hir::ErrorKind::UnicodePropertyValueNotFound => {
                    "Unknown character property name".to_string()
                }
                other => capitalized(&other.to_string()),
            };
            bad(description, index)
        })?;
    RegexBuilder::new(&out.text)
        .nest_limit(MAX_NESTING)
        .size_limit(MAX_COMPILED_BYTES)
        .dfa_size_limit(MAX_COMPILED_BYTES)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => bad("Pattern is too large to compile", 0),
            other => bad(capitalized(&other.to_string()), 0),
        })
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn ast_error(e: &ast::Error, out: &Translated, chars: &[char]) -> Bad {
    use ast::ErrorKind as K;
    let index = out.original(e.span().start.offset);
    let description = match e.kind() {
        K::GroupUnclosed => return bad("Unclosed group", chars.len()),
        K::ClassUnclosed => {
            return bad("Unclosed character class", chars.len().saturating_sub(1));
        }
        K::GroupUnopened => "Unmatched closing ')'".to_string(),
        K::RepetitionMissing => match chars.get(index) {
            Some(c) => format!("Dangling meta character '{c}'"),
            None => "Dangling meta character".to_string(),
        },
        K::RepetitionCountUnclosed => "Unclosed counted closure".to_string(),
        K::RepetitionCountInvalid | K::RepetitionCountDecimalEmpty => {
            "Illegal repetition range".to_string()
        }
        K::ClassRangeInvalid | K::ClassRangeLiteral => "Illegal character range".to_string(),
        K::EscapeUnrecognized | K::EscapeUnexpectedEof | K::ClassEscapeInvalid => {
            "Illegal/unsupported escape sequence".to_string()
        }
        K::FlagUnrecognized
        | K::FlagDuplicate { .. }
        | K::FlagRepeatedNegation { .. }
        | K::FlagDanglingNegation
        | K::FlagUnexpectedEof => "Unknown inline modifier".to_string(),
        K::GroupNameDuplicate { .. } => "Named capturing group is already defined".to_string(),
        K::GroupNameEmpty | K::GroupNameInvalid | K::GroupNameUnexpectedEof => {
            "Invalid named capturing group".to_string()
        }
        K::UnsupportedLookAround => "Look-around is not supported".to_string(),
        K::UnsupportedBackreference => "Backreferences are not supported".to_string(),
        K::NestLimitExceeded(_) => "Pattern nests too deeply".to_string(),
        other => capitalized(&other.to_string()),
    };
    bad(description, index)
}

/// A translated pattern, with where each piece of it came from.
#[derive(Default)]
struct Translated {
    text: String,
    /// `(byte offset in text, code point index in the Java pattern)`, ascending.
    origins: Vec<(usize, usize)>,
}

impl Translated {
    fn mark(&mut self, original: usize) {
        self.origins.push((self.text.len(), original));
    }

    fn push(&mut self, s: &str) {
        self.text.push_str(s);
    }

    fn push_char(&mut self, c: char) {
        self.text.push(c);
    }

    /// A literal character, escaped if the `regex` crate would read it as syntax.
    fn literal(&mut self, c: char) {
        let mut buf = [0u8; 4];
        self.text
            .push_str(&regex_syntax::escape(c.encode_utf8(&mut buf)));
    }

    /// The code point index in the Java pattern of a byte offset in the translation.
    fn original(&self, offset: usize) -> usize {
        let i = self.origins.partition_point(|(o, _)| *o <= offset);
        match i.checked_sub(1).and_then(|i| self.origins.get(i)) {
            Some((_, original)) => *original,
            None => 0,
        }
    }
}

const ASCII_SPACE: &str = r"\t\n\x0B\x0C\r ";
const HORIZONTAL_SPACE: &str = r" \t\xA0\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}";
const VERTICAL_SPACE: &str = r"\n\x0B\x0C\r\x{85}\x{2028}\x{2029}";

/// Java's POSIX classes (US-ASCII only, as Java has them by default).
fn posix_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "Lower" => "a-z",
        "Upper" => "A-Z",
        "ASCII" => r"\x00-\x7F",
        "Alpha" => "a-zA-Z",
        "Digit" => "0-9",
        "Alnum" => "a-zA-Z0-9",
        "Punct" => r"!-/:-@\[-`{-\~",
        "Graph" => r"!-\~",
        "Print" => r" -\~",
        "Blank" => r" \t",
        "Cntrl" => r"\x00-\x1F\x7F",
        "XDigit" => "0-9a-fA-F",
        "Space" => ASCII_SPACE,
        _ => return None,
    })
}

/// Java's `java.lang.Character` classes, as Unicode properties.
fn java_class(name: &str) -> Option<&'static str> {
    Some(match name {
        "javaLowerCase" => "Lowercase",
        "javaUpperCase" => "Uppercase",
        "javaWhitespace" => "White_Space",
        "javaAlphabetic" => "Alphabetic",
        "javaDigit" => "Nd",
        "javaLetter" => "L",
        "javaTitleCase" => "Lt",
        _ => return None,
    })
}

fn translate(chars: &[char]) -> Result<Translated, Bad> {
    let mut out = Translated::default();
    let mut i = 0;
    let mut class_depth = 0usize;
    let mut counted = false;
    let mut after_quantifier = false;
    while let Some(&c) = chars.get(i) {
        out.mark(i);
        let outside = class_depth == 0;
        if outside && after_quantifier && c == '+' {
            return Err(bad("Possessive quantifiers are not supported", i));
        }
        after_quantifier = false;
        match c {
            '\\' => {
                i = escape(chars, i, !outside, &mut out)?;
                continue;
            }
            '[' => {
                class_depth += 1;
                out.push_char('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push_char('^');
                    i += 1;
                }
                // `[:alpha:]` is a POSIX class to the `regex` crate, a plain set to Java.
                if chars.get(i) == Some(&':') {
                    out.push(r"\:");
                    i += 1;
                }
                continue;
            }
            ']' if !outside => {
                class_depth -= 1;
                out.push_char(']');
            }
            '~' if !outside => out.push(r"\~"),
            '-' if !outside && chars.get(i + 1) == Some(&'-') => {
                out.push(r"-\-");
                i += 2;
                continue;
            }
            '(' if outside => {
                i = group(chars, i, &mut out)?;
                continue;
            }
            '{' if outside => {
                counted = true;
                out.push_char('{');
            }
            '}' if outside && counted => {
                counted = false;
                after_quantifier = true;
                out.push_char('}');
            }
            '*' | '+' | '?' if outside => {
                after_quantifier = true;
                out.push_char(c);
            }
            _ => out.push_char(c),
        }
        i += 1;
    }
    Ok(out)
}

/// `(` at `i`: a plain or non-capturing group, a named group, or inline flags.
fn group(chars: &[char], i: usize, out: &mut Translated) -> Result<usize, Bad> {
    if chars.get(i + 1) != Some(&'?') {
        out.push_char('(');
        return Ok(i + 1);
    }
    match (chars.get(i + 2), chars.get(i + 3)) {
        (Some('=' | '!'), _) | (Some('<'), Some('=' | '!')) => {
            Err(bad("Look-around is not supported", i))
        }
        (Some('>'), _) => Err(bad("Atomic groups are not supported", i)),
        (Some('<'), _) => {
            out.push("(?<");
            Ok(i + 3)
        }
        (Some(':'), _) => {
            out.push("(?:");
            Ok(i + 3)
        }
        _ => {
            let mut on = String::new();
            let mut off = String::new();
            let mut negated = false;
            let mut j = i + 2;
            loop {
                match chars.get(j) {
                    Some('-') => negated = true,
                    Some(f @ ('i' | 'm' | 's' | 'x')) => {
                        if negated { &mut off } else { &mut on }.push(*f);
                    }
                    // UNIX_LINES, UNICODE_CASE, UNICODE_CHARACTER_CLASS: no equivalent
                    // switch here; accepted and ignored.
                    Some('d' | 'u' | 'U') => {}
                    Some(')') => {
                        if !(on.is_empty() && off.is_empty()) {
                            out.push(&flag_group(&on, &off));
                            out.push_char(')');
                        }
                        return Ok(j + 1);
                    }
                    Some(':') => {
                        out.push(&flag_group(&on, &off));
                        out.push_char(':');
                        return Ok(j + 1);
                    }
                    _ => return Err(bad("Unknown inline modifier", j)),
                }
                j += 1;
            }
        }
    }
}

fn flag_group(on: &str, off: &str) -> String {
    if off.is_empty() {
        format!("(?{on}")
    } else {
        format!("(?{on}-{off}")
    }
}

fn hex_value(chars: &[char]) -> Option<u32> {
    if chars.is_empty() || chars.len() > 8 {
        return None;
    }
    chars
        .iter()
        .try_fold(0u32, |acc, c| Some(acc * 16 + c.to_digit(16)?))
}

fn code_point(out: &mut Translated, cp: u32, at: usize) -> Result<(), Bad> {
    match char::from_u32(cp) {
        Some(_) => {
            out.push(&format!(r"\x{{{cp:X}}}"));
            Ok(())
        }
        None => Err(bad("Illegal Unicode escape sequence", at)),
    }
}

/// `\` at `i`: returns the index after the escape.
fn escape(chars: &[char], i: usize, in_class: bool, out: &mut Translated) -> Result<usize, Bad> {
    let Some(&e) = chars.get(i + 1) else {
        return Err(bad("Unexpected internal error", chars.len()));
    };
    let next = i + 2;
    let class = |out: &mut Translated, body: &str, negated: bool| {
        out.push(if negated { "[^" } else { "[" });
        out.push(body);
        out.push("]");
    };
    match e {
        'Q' => {
            let mut j = next;
            while let Some(&c) = chars.get(j) {
                if c == '\\' && chars.get(j + 1) == Some(&'E') {
                    return Ok(j + 2);
                }
                out.mark(j);
                out.literal(c);
                j += 1;
            }
            return Ok(j);
        }
        'E' => {}
        'd' | 'D' => class(out, "0-9", e == 'D'),
        'w' | 'W' => class(out, "a-zA-Z_0-9", e == 'W'),
        's' | 'S' => class(out, ASCII_SPACE, e == 'S'),
        'h' | 'H' => class(out, HORIZONTAL_SPACE, e == 'H'),
        'v' | 'V' => class(out, VERTICAL_SPACE, e == 'V'),
        'R' if !in_class => out.push(&format!(r"(?:\r\n|[{VERTICAL_SPACE}])")),
        't' | 'n' | 'r' | 'f' => {
            out.push_char('\\');
            out.push_char(e);
        }
        'a' => out.push(r"\x07"),
        'e' => out.push(r"\x1B"),
        'b' | 'B' | 'A' | 'z' if !in_class => {
            out.push_char('\\');
            out.push_char(e);
        }
        'u' => {
            let digits = chars.get(next..next + 4).unwrap_or(&[]);
            let Some(unit) = (digits.len() == 4).then(|| hex_value(digits)).flatten() else {
                return Err(bad("Illegal Unicode escape sequence", next));
            };
            // A surrogate pair written as two escapes is one code point.
            if (0xD800..0xDC00).contains(&unit)
                && chars.get(next + 4) == Some(&'\\')
                && chars.get(next + 5) == Some(&'u')
                && let Some(low) = chars.get(next + 6..next + 10).and_then(hex_value)
                && (0xDC00..0xE000).contains(&low)
            {
                let cp = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                code_point(out, cp, i)?;
                return Ok(next + 10);
            }
            code_point(out, unit, i)?;
            return Ok(next + 4);
        }
        'x' => {
            if chars.get(next) == Some(&'{') {
                let close = chars[next..]
                    .iter()
                    .position(|&c| c == '}')
                    .map(|p| next + p)
                    .ok_or_else(|| bad("Unclosed hexadecimal escape sequence", next))?;
                let cp = hex_value(&chars[next + 1..close])
                    .filter(|&cp| cp <= 0x10FFFF)
                    .ok_or_else(|| bad("Hexadecimal codepoint is too big", close))?;
                code_point(out, cp, i)?;
                return Ok(close + 1);
            }
            let cp = chars
                .get(next..next + 2)
                .and_then(hex_value)
                .ok_or_else(|| bad("Illegal hexadecimal escape sequence", next))?;
            code_point(out, cp, i)?;
            return Ok(next + 2);
        }
        '0' => {
            let digit = |j: usize| chars.get(j).and_then(|c| c.to_digit(8));
            let Some(first) = digit(next) else {
                return Err(bad("Illegal octal escape sequence", next));
            };
            let mut value = first;
            let mut end = next + 1;
            if let Some(second) = digit(end) {
                value = value * 8 + second;
                end += 1;
                if first <= 3
                    && let Some(third) = digit(end)
                {
                    value = value * 8 + third;
                    end += 1;
                }
            }
            code_point(out, value, i)?;
            return Ok(end);
        }
        'c' => {
            let Some(&x) = chars.get(next) else {
                return Err(bad("Illegal control escape sequence", next));
            };
            code_point(out, (x as u32) ^ 64, i)?;
            return Ok(next + 1);
        }
        '1'..='9' | 'k' => return Err(bad("Backreferences are not supported", i)),
        'p' | 'P' => return property(chars, i, e == 'P', out),
        c if c.is_ascii_alphanumeric() => {
            return Err(bad("Illegal/unsupported escape sequence", i + 1));
        }
        c => out.literal(c),
    }
    Ok(next)
}

/// `\p{Name}`, `\pL`, `\P{...}` at `i`.
fn property(chars: &[char], i: usize, negated: bool, out: &mut Translated) -> Result<usize, Bad> {
    let start = i + 2;
    let (name, end): (String, usize) = match chars.get(start) {
        Some('{') => {
            let close = chars[start..]
                .iter()
                .position(|&c| c == '}')
                .map(|p| start + p)
                .ok_or_else(|| bad("Unclosed character family", chars.len()))?;
            (chars[start + 1..close].iter().collect(), close + 1)
        }
        Some(c) => (c.to_string(), start + 1),
        None => return Err(bad("Illegal character family", start)),
    };
    if name.starts_with("In") && name.len() > 2 {
        return Err(bad("Unicode blocks are not supported", i));
    }
    let name = name
        .strip_prefix("Is")
        .filter(|n| !n.is_empty())
        .unwrap_or(&name);
    if let Some(body) = posix_class(name) {
        out.push(if negated { "[^" } else { "[" });
        out.push(body);
        out.push("]");
        return Ok(end);
    }
    let name = java_class(name).unwrap_or(name);
    if name.is_empty() || name.contains(['{', '}', '\\']) {
        return Err(bad("Unknown character property name", i));
    }
    out.push(if negated { r"\P{" } else { r"\p{" });
    out.push(name);
    out.push("}");
    Ok(end)
}

/// Java `Matcher.find` repeated: after an empty match the search resumes one code point
/// later; a match may begin where the previous one ended. Byte offsets.
fn find_all(it: &Interp<'_>, re: &Regex, s: &str) -> R<Vec<(usize, usize)>> {
    let mut found = Vec::new();
    let mut from = 0;
    while from <= s.len() {
        let Some(m) = re.find_at(s, from) else {
            break;
        };
        found.push((m.start(), m.end()));
        if found.len().is_multiple_of(1024) {
            check_deadline(it)?;
        }
        from = if m.start() == m.end() {
            match s[m.end()..].chars().next() {
                Some(c) => m.end() + c.len_utf8(),
                None => break,
            }
        } else {
            m.end()
        };
    }
    Ok(found)
}

pub fn includes(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv(r)?;
    let re = compile(&str_param(&a[0], "regex")?)?;
    Ok(Value::Bool(re.is_match(&s)))
}

pub fn index_of(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    overload("indexOfRegex", &a, &[&[Ty::Str], &[Ty::Str, Ty::Int]])?;
    let s = recv(r)?;
    let pattern = str_param(&a[0], "regex")?;
    // As in Fauna, the start is checked before the pattern, and the search runs on the rest
    // of the string (so `^` matches at the start).
    let from = match a.get(1) {
        Some(v) => super::checked_index(&s, int_param(v, "start")?)?,
        None => 0,
    };
    let re = compile(&pattern)?;
    Ok(match re.find(&s[from..]) {
        Some(m) => cp_index(&s, from + m.start()),
        None => not_found(),
    })
}

/// `matches` (the matched strings) and `matchIndexes` (`[index, string]` pairs).
pub fn matches(it: &mut Interp<'_>, r: &Value, a: Vec<Value>, with_index: bool) -> R<Value> {
    let s = recv(r)?;
    let re = compile(&str_param(&a[0], "regex")?)?;
    let found = find_all(it, &re, &s)?;
    let (mut byte, mut cp) = (0, 0);
    let mut out = Vec::with_capacity(found.len());
    for (start, end) in found {
        let text = Value::str(&s[start..end]);
        if !with_index {
            out.push(text);
            continue;
        }
        cp += cp_len(&s[byte..start]);
        byte = start;
        out.push(Value::array(vec![
            Value::Int(i32::try_from(cp).unwrap_or(i32::MAX)),
            text,
        ]));
    }
    Ok(Value::array(out))
}

pub fn replace(it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    overload(
        "replaceRegex",
        &a,
        &[&[Ty::Str, Ty::Str], &[Ty::Str, Ty::Str, Ty::Int]],
    )?;
    let s = recv(r)?;
    let re = compile(&str_param(&a[0], "regex")?)?;
    let replacement = str_param(&a[1], "replacement")?;
    let count = match a.get(2) {
        Some(v) => int_param(v, "amount")?,
        None => 1,
    };
    replace_with(it, &s, &replacement, Some(count), |section| {
        re.find(section).map(|m| (m.start(), m.end()))
    })
}

pub fn replace_all(it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv(r)?;
    let re = compile(&str_param(&a[0], "pattern")?)?;
    let replacement = str_param(&a[1], "replacement")?;
    replace_with(it, &s, &replacement, None, |section| {
        re.find(section).map(|m| (m.start(), m.end()))
    })
}

pub fn split(it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv(r)?;
    let re = compile(&str_param(&a[0], "regex")?)?;
    split_with(it, &s, |section| {
        re.find(section).map(|m| (m.start(), m.end()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rust(pattern: &str) -> String {
        let chars: Vec<char> = pattern.chars().collect();
        translate(&chars).unwrap().text
    }

    fn failure(pattern: &str) -> Bad {
        build(pattern).unwrap_err()
    }

    #[test]
    fn java_shorthand_classes_stay_ascii() {
        assert_eq!(rust(r"\d+"), "[0-9]+");
        assert_eq!(rust(r"[\w-]"), "[[a-zA-Z_0-9]-]");
        let re = build(r"^\d+$").unwrap();
        assert!(re.is_match("123"));
        assert!(!re.is_match("١٢٣"));
        assert!(build(r"\p{Lower}+").unwrap().is_match("abc"));
        assert!(!build(r"^\p{Lower}+$").unwrap().is_match("é"));
        assert!(build(r"^\p{IsLatin}+$").unwrap().is_match("é"));
    }

    #[test]
    fn java_escapes_translate() {
        assert!(build(r"\Qa.b\E").unwrap().is_match("a.b"));
        assert!(!build(r"^\Qa.b\E$").unwrap().is_match("axb"));
        assert!(build(r"\u00e9").unwrap().is_match("é"));
        assert!(build(r"\uD83D\uDE0D").unwrap().is_match("😍"));
        assert!(build(r"\0101").unwrap().is_match("A"));
        assert!(build(r"\cJ").unwrap().is_match("\n"));
        assert!(build(r"a\R").unwrap().is_match("a\r\n"));
        assert!(build(r"[[:x]]+").unwrap().is_match(":"));
        assert!(build(r"(?iu)abc").unwrap().is_match("ABC"));
        assert!(build(r"[a~]").unwrap().is_match("~"));
        assert!(build(r"\<").unwrap().is_match("<"));
    }

    #[test]
    fn unsupported_java_features_are_clean_errors() {
        assert_eq!(
            failure("a(?=b)").description,
            "Look-around is not supported"
        );
        assert_eq!(failure("a(?=b)").index, 1);
        assert_eq!(
            failure("(?<!a)b").description,
            "Look-around is not supported"
        );
        assert_eq!(
            failure(r"(a)\1").description,
            "Backreferences are not supported"
        );
        assert_eq!(
            failure("a*+").description,
            "Possessive quantifiers are not supported"
        );
        assert_eq!(
            failure("(?>a)").description,
            "Atomic groups are not supported"
        );
        assert_eq!(
            failure(r"\p{InGreek}").description,
            "Unicode blocks are not supported"
        );
        assert_eq!(
            failure(r"\Z").description,
            "Illegal/unsupported escape sequence"
        );
        assert!(build(r"\p{Bogus}").is_err());
        assert!(build(r"\").is_err());
        assert!(build(r"\x{110000}").is_err());
        assert!(build(r"\uD800").is_err());
    }

    #[test]
    fn syntax_errors_point_into_the_java_pattern() {
        assert_eq!(failure("(ab"), bad("Unclosed group", 3));
        assert_eq!(failure("[ab"), bad("Unclosed character class", 2));
        assert_eq!(failure("*a"), bad("Dangling meta character '*'", 0));
        assert_eq!(
            failure(r"\d\d*?+"),
            bad("Possessive quantifiers are not supported", 6)
        );
        assert_eq!(failure("😍😍)").description, "Unmatched closing ')'");
        assert_eq!(failure("😍😍)").index, 2);
    }

    #[test]
    fn huge_patterns_fail_instead_of_exhausting_memory() {
        assert!(build("(a{1000}){1000}").is_err());
        assert!(build(&"(".repeat(1000)).is_err());
        assert!(build(&"a".repeat(MAX_PATTERN_BYTES + 1)).is_err());
    }
}
