//! Diagnostics rendered exactly like Fauna's `summary` text.
//!
//! ```text
//! error: Unexpected end of query. Expected statement or expression
//! at *query*:1:5
//!   |
//! 1 | abc(
//!   |     ^
//!   |
//! ```
//!
//! Layout rules (matching Fauna's core): the gutter is as wide as the widest line number;
//! every output line has its trailing whitespace stripped; a span past the last visible
//! character is moved back onto it (so an error at the end of `foo\n   ` points just after
//! `foo`); a span over several lines is drawn as a bracket (` _____^` … `|__^`) without the
//! annotation; a hint on the same line as its parent omits its `at` line; a hint with a
//! suggestion shows the source with the suggestion applied, underlined with `+` (insert),
//! `~` (replace) or `-` (remove). Several diagnostics are separated by a blank line.
//! Columns count characters. A value placeholder (U+FFFF) is shown as `<value>`, as Fauna
//! shows the template holes it substitutes.
//!
//! **Invariants:** rendering never panics, whatever the span (out-of-range and mid-character
//! offsets are clamped); it never reads anything but its arguments.

use crate::ast::Span;
use crate::lexer::PLACEHOLDER;

/// The source name Fauna gives to the query text.
pub const QUERY_SOURCE: &str = "*query*";

/// How a placeholder is displayed in rendered source.
const PLACEHOLDER_TEXT: &str = "<value>";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// What a secondary note says about the main diagnostic; decides its label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HintKind {
    /// `hint: ...`
    Hint,
    /// `cause: ...`
    Cause,
    /// `performance_hint: ...`
    Performance,
    /// A bare stack-trace frame: source only, no label line.
    Trace,
    /// `trace:` followed by the frame.
    NamedTrace,
}

impl HintKind {
    fn name(self) -> &'static str {
        match self {
            HintKind::Hint => "hint",
            HintKind::Cause => "cause",
            HintKind::Performance => "performance_hint",
            HintKind::Trace => "",
            HintKind::NamedTrace => "trace",
        }
    }
}

/// A secondary note attached to a diagnostic, with its own span.
#[derive(Clone, Debug, PartialEq)]
pub struct Hint {
    pub kind: HintKind,
    pub message: String,
    pub span: Span,
    /// Text to put in place of `span` (`Some("")` suggests removing it).
    pub suggestion: Option<String>,
}

impl Hint {
    pub fn new(kind: HintKind, message: impl Into<String>, span: Span) -> Hint {
        Hint {
            kind,
            message: message.into(),
            span,
            suggestion: None,
        }
    }
}

/// One error, warning or info message about a source text.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// `None` renders as `at <no source>`.
    pub span: Option<Span>,
    /// Text printed after the carets (single-line spans only).
    pub annotation: Option<String>,
    pub hints: Vec<Hint>,
}

impl Diagnostic {
    pub fn new(severity: Severity, message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            severity,
            message: message.into(),
            span: Some(span),
            annotation: None,
            hints: Vec::new(),
        }
    }

    /// Renders against the query source (`*query*`).
    pub fn render(&self, src: &str) -> String {
        self.render_in(QUERY_SOURCE, src)
    }

    /// Renders against a named source (`*query*`, `*udf:Name*`, ...).
    pub fn render_in(&self, source_name: &str, src: &str) -> String {
        let text = Text::new(src);
        let mut out = String::new();
        let Some(span) = self.span else {
            push_message_line(&mut out, self.severity.name(), &self.message);
            out.push_str("at <no source>");
            return out;
        };
        let (start, end) = text.range(span);
        let body = Body {
            name: self.severity.name(),
            message: &self.message,
            start,
            end,
            annotation: self.annotation.as_deref().unwrap_or(""),
            underline: '^',
        };
        body.render(&mut out, source_name, &text.chars, None);
        let parent_line = text.line_of(start);
        for hint in &self.hints {
            out.push('\n');
            render_hint(&mut out, source_name, &text, hint, parent_line);
        }
        out
    }
}

/// Renders one diagnostic against the query source. `hint`, if any, is shown as a
/// `hint:` note on the same span.
pub fn render(src: &str, span: Span, message: &str, hint: Option<&str>, kind: Severity) -> String {
    let mut d = Diagnostic::new(kind, message, span);
    if let Some(h) = hint {
        d.hints.push(Hint::new(HintKind::Hint, h, span));
    }
    d.render(src)
}

/// The `summary` of a query that failed to parse: every error, blank-line separated.
pub fn render_parse_errors(src: &str, errors: &crate::ParseErrors) -> String {
    errors
        .0
        .iter()
        .map(|e| e.to_diagnostic().render(src))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The top-level `message` of a failed validation: "The query failed 1 validation check",
/// "... 2 validation checks".
pub fn validation_failure_message(count: usize) -> String {
    let noun = if count > 1 { "checks" } else { "check" };
    format!("The query failed {count} validation {noun}")
}

/// The short form Fauna uses for `log()` output: `info at *query*:1: message`.
pub fn render_log(source_name: &str, src: &str, span: Span, message: &str) -> String {
    let text = Text::new(src);
    let (start, _) = text.range(span);
    format!("info at {source_name}:{}: {message}", text.line_of(start))
}

/// 1-based line and column (in characters) of a byte offset; offsets past the end or
/// inside a character are clamped.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(src.len());
    while !src.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = src.get(..offset).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, col)
}

/// The source as displayed: characters, with placeholders expanded.
struct Text {
    chars: Vec<char>,
    /// Byte offset of each source char and its index in `chars`, for span mapping.
    map: Vec<(usize, usize)>,
    src_len: usize,
}

impl Text {
    fn new(src: &str) -> Text {
        let mut chars = Vec::with_capacity(src.len());
        let mut map = Vec::with_capacity(src.len());
        for (byte, c) in src.char_indices() {
            map.push((byte, chars.len()));
            if c == PLACEHOLDER {
                chars.extend(PLACEHOLDER_TEXT.chars());
            } else {
                chars.push(c);
            }
        }
        Text {
            chars,
            map,
            src_len: src.len(),
        }
    }

    /// Maps a byte offset to a display-char index (offsets inside a char round down).
    fn index(&self, byte: usize) -> usize {
        if byte >= self.src_len {
            return self.chars.len() + (byte - self.src_len);
        }
        match self.map.binary_search_by(|&(b, _)| b.cmp(&byte)) {
            Ok(i) => self.map[i].1,
            Err(0) => 0,
            Err(i) => self.map[i - 1].1,
        }
    }

    fn range(&self, span: Span) -> (usize, usize) {
        let start = self.index(span.start as usize);
        let end = self.index(span.end as usize).max(start);
        // A placeholder is underlined whole even when the span ends mid-expansion.
        (start, end)
    }

    fn line_of(&self, index: usize) -> usize {
        let upto = index.min(self.chars.len());
        self.chars[..upto].iter().filter(|&&c| c == '\n').count() + 1
    }
}

struct Body<'a> {
    name: &'a str,
    message: &'a str,
    start: usize,
    end: usize,
    annotation: &'a str,
    underline: char,
}

impl Body<'_> {
    fn render(&self, out: &mut String, source_name: &str, chars: &[char], parent: Option<usize>) {
        push_message_line(out, self.name, self.message);
        let (snippet, line, col) =
            annotate(chars, self.start, self.end, self.annotation, self.underline);
        if parent != Some(line) {
            out.push_str(&format!("at {source_name}:{line}:{col}\n"));
        }
        out.push_str(&snippet);
    }
}

fn push_message_line(out: &mut String, name: &str, message: &str) {
    if name.is_empty() {
        return;
    }
    out.push_str(name);
    out.push(':');
    if !message.is_empty() {
        out.push(' ');
        out.push_str(message);
    }
    out.push('\n');
}

fn render_hint(out: &mut String, source_name: &str, text: &Text, hint: &Hint, parent: usize) {
    let (start, end) = text.range(hint.span);
    let body = |start, end, underline| Body {
        name: hint.kind.name(),
        message: &hint.message,
        start,
        end,
        annotation: "",
        underline,
    };
    match hint.suggestion.as_deref() {
        None => body(start, end, '^').render(out, source_name, &text.chars, Some(parent)),
        Some("") => body(start, end, '-').render(out, source_name, &text.chars, Some(parent)),
        Some(suggestion) => {
            let underline = if start == end { '+' } else { '~' };
            let (start, end) = (start.min(text.chars.len()), end.min(text.chars.len()));
            let mut patched: Vec<char> = text.chars[..start].to_vec();
            patched.extend(suggestion.chars());
            patched.extend_from_slice(&text.chars[end..]);
            let new_end = start + suggestion.chars().count();
            body(start, new_end, underline).render(out, source_name, &patched, Some(parent));
        }
    }
}

/// Java's `Character.isWhitespace`, which decides what Fauna's `stripTrailing` removes.
fn is_java_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{B}'
            | '\u{C}'
            | '\r'
            | '\u{1C}'..='\u{1F}'
            | ' '
            | '\u{1680}'
            | '\u{2000}'..='\u{2006}'
            | '\u{2008}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

fn strip_trailing(s: &str) -> &str {
    s.trim_end_matches(is_java_whitespace)
}

/// Draws the source lines under a diagnostic; returns them with the 1-based line and
/// column of `start`.
fn annotate(
    chars: &[char],
    start: usize,
    end: usize,
    annotation: &str,
    underline: char,
) -> (String, usize, usize) {
    let mut trimmed_len = chars.len();
    while trimmed_len > 0 && is_java_whitespace(chars[trimmed_len - 1]) {
        trimmed_len -= 1;
    }
    let (start, end) = if start > trimmed_len {
        let diff = start - trimmed_len;
        (trimmed_len, end.saturating_sub(diff).max(trimmed_len))
    } else {
        (start, end)
    };
    // Zero-width spans (errors at the very end) still get one caret.
    let length = (end - start).max(1);
    let trimmed: &[char] = if trimmed_len == 0 {
        &[' ']
    } else {
        &chars[..trimmed_len]
    };

    // Lines of the trimmed text, each with its `\n`.
    let mut lines: Vec<&[char]> = Vec::new();
    let mut line_start = 0;
    for (i, &c) in trimmed.iter().enumerate() {
        if c == '\n' {
            lines.push(&trimmed[line_start..=i]);
            line_start = i + 1;
        }
    }
    if line_start < trimmed.len() {
        lines.push(&trimmed[line_start..]);
    }

    let first = trimmed[..start.min(trimmed.len())]
        .iter()
        .filter(|&&c| c == '\n')
        .count();
    let mut scanned: usize = lines[..first.min(lines.len())]
        .iter()
        .map(|l| l.len())
        .sum();
    let mut rows: Vec<(String, &str, String)> = Vec::new();
    let (mut line_no, mut col) = (first + 1, 1);
    let mut next = first;
    while scanned <= start && next < lines.len() {
        let line = lines[next];
        next += 1;
        let has_next = next < lines.len();
        rows.clear();
        if scanned + line.len() <= start && has_next {
            rows.push(("| ".into(), "", collect(line)));
        } else {
            let indent = start - scanned;
            line_no = next;
            col = indent + 1;
            rows.push((format!("{line_no} | "), "", collect(line)));
            if indent + length <= line.len() || !has_next {
                let mut marks = " ".repeat(indent);
                marks.extend(std::iter::repeat_n(underline, length));
                if !annotation.is_empty() {
                    marks.push(' ');
                    marks.push_str(annotation);
                }
                rows.push(("| ".into(), "", marks));
            } else {
                let mut bracket = "_".repeat(indent);
                bracket.push(underline);
                rows.push(("| ".into(), " _", bracket));
                let mut remaining = length - (line.len() - indent);
                while remaining > 0 {
                    let Some(line) = lines.get(next) else { break };
                    next += 1;
                    rows.push((format!("{next} | "), "| ", collect(line)));
                    if remaining <= line.len() || next >= lines.len() {
                        let mut close = "_".repeat(remaining - 1);
                        close.push('^');
                        rows.push(("| ".into(), "|_", close));
                        remaining = 0;
                    } else {
                        remaining -= line.len();
                    }
                }
            }
        }
        scanned += line.len();
    }
    rows.insert(0, ("| ".into(), "", String::new()));
    rows.push(("| ".into(), "", String::new()));

    let prefix_width = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let gutter_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
    let rendered: Vec<String> = rows
        .iter()
        .map(|(prefix, gutter, line)| {
            let mut row = " ".repeat(prefix_width - prefix.chars().count());
            row.push_str(prefix);
            row.push_str(&" ".repeat(gutter_width - gutter.chars().count()));
            row.push_str(gutter);
            row.push_str(line);
            strip_trailing(&row).to_string()
        })
        .collect();
    (rendered.join("\n"), line_no, col)
}

fn collect(line: &[char]) -> String {
    line.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(start: usize, end: usize) -> Span {
        Span::new(start, end)
    }

    #[test]
    fn a_single_line_error_is_drawn_with_carets_under_the_span() {
        let out = render(
            "abc(",
            sp(4, 5),
            "Expected `)` or expression",
            None,
            Severity::Error,
        );
        assert_eq!(
            out,
            "error: Expected `)` or expression\nat *query*:1:5\n  |\n1 | abc(\n  |     ^\n  |"
        );
    }

    #[test]
    fn an_empty_span_at_the_end_still_gets_one_caret() {
        let out = render(
            "abc(",
            sp(4, 4),
            "Expected `)` or expression",
            None,
            Severity::Error,
        );
        assert!(out.ends_with("1 | abc(\n  |     ^\n  |"), "{out}");
    }

    #[test]
    fn the_gutter_is_as_wide_as_the_line_number() {
        let src = "1\n2\n3\n4\n5\n6\n7\n8\n9\nlet x = y +";
        let out = render(
            src,
            sp(18, 19),
            "Expected expression",
            None,
            Severity::Error,
        );
        assert_eq!(
            out,
            "error: Expected expression\nat *query*:10:1\n   |\n10 | let x = y +\n   | ^\n   |"
        );
    }

    #[test]
    fn a_span_past_trailing_whitespace_moves_back_onto_the_text() {
        let d = Diagnostic {
            severity: Severity::Error,
            message: "this is at the EOF".into(),
            span: Some(sp(11, 12)),
            annotation: None,
            hints: vec![],
        };
        assert_eq!(
            d.render("foo\n   "),
            "error: this is at the EOF\nat *query*:1:4\n  |\n1 | foo\n  |    ^\n  |"
        );
    }

    #[test]
    fn an_empty_source_renders_a_blank_line() {
        let out = render(
            "",
            sp(0, 1),
            "Unexpected end of query",
            None,
            Severity::Error,
        );
        assert_eq!(
            out,
            "error: Unexpected end of query\nat *query*:1:1\n  |\n1 |\n  | ^\n  |"
        );
    }

    #[test]
    fn a_multi_line_span_is_drawn_as_a_bracket() {
        let src = "AccessProvider.byName(\"anAccessProvider\")!.update({\n  audience: \"https://db.fauna.com/db/yyyyyyyyyy\"\n})\n";
        // The span of the call's arguments: from `(` to just after `)`.
        let d = Diagnostic::new(Severity::Error, "Failed", sp(49, src.len() - 1));
        let expected = [
            "error: Failed".to_string(),
            "at *query*:1:50".into(),
            "  |".into(),
            "1 |   AccessProvider.byName(\"anAccessProvider\")!.update({".into(),
            format!("  |  _{}^", "_".repeat(49)),
            "2 | |   audience: \"https://db.fauna.com/db/yyyyyyyyyy\"".into(),
            "3 | | })".into(),
            "  | |__^".into(),
            "  |".into(),
        ]
        .join("\n");
        assert_eq!(d.render(src), expected);
    }

    #[test]
    fn annotations_follow_the_carets() {
        let mut d = Diagnostic::new(Severity::Error, "Invalid identifier", sp(6, 10));
        d.annotation = Some("`join` is a keyword".into());
        assert_eq!(
            d.render("{ let join = 3; join }"),
            "error: Invalid identifier\nat *query*:1:7\n  |\n1 | { let join = 3; join }\n  |       ^^^^ `join` is a keyword\n  |"
        );
    }

    #[test]
    fn a_hint_on_the_parent_line_omits_its_location() {
        let mut d = Diagnostic::new(Severity::Error, "Duplicate key", sp(8, 9));
        d.hints.push(Hint::new(
            HintKind::Hint,
            "Key originally used here",
            sp(2, 3),
        ));
        assert_eq!(
            d.render("{ a: 2, a: 3 }"),
            "error: Duplicate key\nat *query*:1:9\n  |\n1 | { a: 2, a: 3 }\n  |         ^\n  |\nhint: Key originally used here\n  |\n1 | { a: 2, a: 3 }\n  |   ^\n  |"
        );
    }

    #[test]
    fn suggestions_are_shown_applied() {
        let hint = |span, s: &str| Hint {
            kind: HintKind::Hint,
            message: "this is a hint".into(),
            span,
            suggestion: Some(s.into()),
        };
        let mut d = Diagnostic::new(Severity::Error, "e", sp(0, 1));
        d.hints.push(hint(sp(5, 5), " 123"));
        d.hints.push(hint(sp(6, 11), "foo"));
        d.hints.push(hint(sp(1, 3), ""));
        let out = d.render("hello world");
        assert!(out.contains("1 | hello 123 world\n  |      ++++"), "{out}");
        assert!(out.contains("1 | hello foo\n  |       ~~~"), "{out}");
        assert!(out.contains("1 | hello world\n  |  --"), "{out}");
    }

    #[test]
    fn a_hint_on_another_line_names_its_location() {
        let mut d = Diagnostic::new(Severity::Error, "Missing return expression", sp(19, 20));
        d.hints.push(Hint::new(
            HintKind::Cause,
            "Statement does not return a value",
            sp(4, 17),
        ));
        let out = d.render("{\n  let x = 'foo' \n}");
        assert!(
            out.starts_with("error: Missing return expression\nat *query*:3:1\n"),
            "{out}"
        );
        assert!(
            out.contains("\ncause: Statement does not return a value\nat *query*:2:3\n"),
            "{out}"
        );
    }

    #[test]
    fn a_diagnostic_without_a_span_says_so() {
        let d = Diagnostic {
            severity: Severity::Warning,
            message: "m".into(),
            span: None,
            annotation: None,
            hints: vec![],
        };
        assert_eq!(d.render("x"), "warning: m\nat <no source>");
    }

    #[test]
    fn placeholders_are_shown_as_value_markers() {
        let out = render("\u{FFFF} + 1", sp(0, 3), "m", None, Severity::Error);
        assert!(out.contains("1 | <value> + 1\n  | ^^^^^^^"), "{out}");
        let out = render("\u{FFFF} + x", sp(6, 7), "m", None, Severity::Error);
        assert!(out.contains("at *query*:1:11\n"), "{out}");
    }

    #[test]
    fn out_of_range_and_mid_character_spans_do_not_panic() {
        for (s, e) in [(0, 0), (1, 2), (2, 1), (100, 200), (3, 3)] {
            let _ = render("é😍\n", sp(s, e), "m", Some("h"), Severity::Info);
        }
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("ab\nçd", 6), (2, 3));
        assert_eq!(line_col("ab\nçd", 5), (2, 2));
        assert_eq!(line_col("ab\nçd", 4), (2, 1));
        assert_eq!(line_col("x", 99), (1, 2));
    }

    #[test]
    fn the_validation_message_is_singular_for_one() {
        assert_eq!(
            validation_failure_message(1),
            "The query failed 1 validation check"
        );
        assert_eq!(
            validation_failure_message(3),
            "The query failed 3 validation checks"
        );
    }

    #[test]
    fn log_lines_use_the_short_form() {
        assert_eq!(
            render_log("*query*", "\nlog('x')", sp(1, 9), "x"),
            "info at *query*:2: x"
        );
    }
}
