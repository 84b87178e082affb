//! The decorated format: a result rendered as FQL literal text, as the shell shows it
//! (`Time("…")`, `Product("123")`, `{ a: 1 }` laid out over indented lines).
//!
//! Layout follows the core's decorator: non-empty arrays and structs put one element per
//! line, indented by two spaces per level; multi-line strings become `<<-END` heredocs;
//! struct keys are bare when they are identifiers and string literals otherwise.
//!
//! **Invariant:** pure text building; never fails, whatever the strings contain.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::num::write_java_double;
use crate::{Output, RefTarget, Time};

pub(super) fn render(value: &Output, txn_time: Time) -> String {
    let mut d = Decorator {
        out: String::new(),
        indent: 0,
        needs_indent: true,
        txn_time,
    };
    d.value(value);
    d.out
}

struct Decorator {
    out: String,
    indent: usize,
    needs_indent: bool,
    txn_time: Time,
}

impl Decorator {
    /// Text at the current position; the first text of a line is indented first.
    fn write(&mut self, s: &str) {
        if self.needs_indent {
            for _ in 0..self.indent {
                self.out.push_str("  ");
            }
            self.needs_indent = false;
        }
        self.out.push_str(s);
        if s.ends_with('\n') {
            self.needs_indent = true;
        }
    }

    fn writeln(&mut self, s: &str) {
        self.write(s);
        self.write("\n");
    }

    /// A string literal: a heredoc when it spans lines, else double-quoted FQL escapes.
    fn str_lit(&mut self, s: &str) {
        self.write("");
        if !s.contains('\n') {
            escape_into(s, &mut self.out);
            return;
        }
        let sigil = if !s.contains("END") {
            Some("END".to_string())
        } else {
            (0..10)
                .map(|i| format!("END{i}"))
                .find(|sigil| !s.contains(sigil.as_str()))
        };
        match sigil {
            Some(sigil) => {
                self.writeln(&format!("<<-{sigil}"));
                self.indent += 1;
                for line in java_lines(s) {
                    self.writeln(line);
                }
                self.indent -= 1;
                self.write(&sigil);
            }
            None => escape_into(s, &mut self.out),
        }
    }

    fn ident(&mut self, key: &str) {
        if is_ident(key) {
            self.write(key);
        } else {
            self.str_lit(key);
        }
    }

    fn call(&mut self, function: &str, arg: &str) {
        self.write(function);
        self.write("(");
        self.str_lit(arg);
        self.write(")");
    }

    fn time(&mut self, t: Time) {
        self.call("Time", &t.to_string());
    }

    fn value(&mut self, value: &Output) {
        match value {
            Output::Null => self.write("null"),
            Output::Bool(b) => self.write(if *b { "true" } else { "false" }),
            Output::Int(n) => self.write(&n.to_string()),
            Output::Long(n) => self.write(&n.to_string()),
            Output::Double(x) if x.is_nan() => self.write("Math.NaN"),
            Output::Double(x) if *x == f64::INFINITY => self.write("Math.Infinity"),
            Output::Double(x) if *x == f64::NEG_INFINITY => self.write("-Math.Infinity"),
            Output::Double(x) => {
                let mut text = Vec::new();
                write_java_double(*x, &mut text);
                self.write(&String::from_utf8_lossy(&text));
            }
            Output::String(s) => self.str_lit(s),
            Output::Bytes(b) => self.call("Bytes", &STANDARD.encode(b)),
            Output::Time(t) => self.time(*t),
            Output::TxnTime => self.time(self.txn_time),
            Output::Date(d) => self.call("Date", &d.to_string()),
            Output::Id(id) => self.str_lit(&id.to_string()),
            Output::Array(items) => self.array(items),
            Output::Object(fields) => {
                self.fields(fields.iter().map(|(k, v)| (k.as_str(), Field::Value(v))))
            }
            Output::Module(name) => self.write(name),
            Output::Doc(doc) => {
                let (key, ident) = match &doc.target {
                    RefTarget::Id { id, .. } => ("id", id.to_string()),
                    RefTarget::Named { name, .. } => ("name", name.clone()),
                };
                let coll = match &doc.target {
                    RefTarget::Id { coll, .. } | RefTarget::Named { coll, .. } => coll.as_str(),
                };
                let ts = doc.ts.map_or(self.txn_time, |ts| ts.to_time());
                let head = [
                    (key, Field::Str(&ident)),
                    ("coll", Field::Raw(coll)),
                    ("ts", Field::Time(ts)),
                ];
                let rest = doc
                    .fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), Field::Value(v)));
                self.fields(head.into_iter().chain(rest));
            }
            Output::Ref(target) => self.doc_ref(target),
            Output::NullDoc { target, cause } => {
                self.doc_ref(target);
                self.write(&format!(" /* {} */", cause.as_str()));
            }
            Output::SetPage { data, after } => {
                let data = Field::Array(data);
                let after = after.as_deref().map(|a| ("after", Field::Str(a)));
                self.fields(std::iter::once(("data", data)).chain(after));
            }
            Output::SetCursor(s) | Output::Stream(s) => self.str_lit(s),
            // The display string of a native function ends in `()`; the decorator omits it.
            Output::Function(s) => match s.strip_suffix("()]") {
                Some(name) => self.str_lit(&format!("{name}]")),
                None => self.str_lit(s),
            },
        }
    }

    fn doc_ref(&mut self, target: &RefTarget) {
        match target {
            RefTarget::Id { coll, id } => {
                self.write(coll);
                self.write(&format!("(\"{id}\")"));
            }
            RefTarget::Named { coll, name } => {
                self.write(coll);
                self.write(".byName(");
                self.str_lit(name);
                self.write(")");
            }
        }
    }

    fn array(&mut self, items: &[Output]) {
        if items.is_empty() {
            self.write("[]");
            return;
        }
        self.writeln("[");
        self.indent += 1;
        for (i, item) in items.iter().enumerate() {
            self.value(item);
            self.writeln(if i + 1 == items.len() { "" } else { "," });
        }
        self.indent -= 1;
        self.write("]");
    }

    fn fields<'v>(&mut self, fields: impl Iterator<Item = (&'v str, Field<'v>)>) {
        let mut fields = fields.peekable();
        if fields.peek().is_none() {
            self.write("{}");
            return;
        }
        self.writeln("{");
        self.indent += 1;
        while let Some((key, value)) = fields.next() {
            self.ident(key);
            self.write(": ");
            match value {
                Field::Value(v) => self.value(v),
                Field::Array(items) => self.array(items),
                Field::Str(s) => self.str_lit(s),
                Field::Raw(s) => self.write(s),
                Field::Time(t) => self.time(t),
            }
            self.writeln(if fields.peek().is_none() { "" } else { "," });
        }
        self.indent -= 1;
        self.write("}");
    }
}

/// A struct field's value: an output value or one of the synthesized document fields.
enum Field<'v> {
    Value(&'v Output),
    Array(&'v [Output]),
    Str(&'v str),
    Raw(&'v str),
    Time(Time),
}

/// FQL string escapes, as the core's decorator writes them (`#` is escaped so the text never
/// reads as an interpolation).
fn escape_into(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        let escaped = match c {
            '\\' => '\\',
            '\0' => '0',
            '\'' => '\'',
            '"' => '"',
            '`' => '`',
            '\n' => 'n',
            '\r' => 'r',
            '\u{b}' => 'v',
            '\t' => 't',
            '\u{8}' => 'b',
            '\u{c}' => 'f',
            '#' => '#',
            _ => {
                out.push(c);
                continue;
            }
        };
        out.push('\\');
        out.push(escaped);
    }
    out.push('"');
}

/// Java's `isIdent` check in the core: a letter, then letters, digits or `_`. Characters
/// outside the BMP are UTF-16 surrogates to Java, which are neither.
fn is_ident(s: &str) -> bool {
    let bmp = |c: char| (c as u32) < 0x1_0000;
    let mut chars = s.chars();
    chars.next().is_some_and(|c| bmp(c) && c.is_alphabetic())
        && chars.all(|c| c == '_' || (bmp(c) && c.is_alphanumeric()))
}

/// Java's `String.lines()`: split at `\n`, `\r` or `\r\n`; no empty last line after a final
/// terminator.
fn java_lines(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find(['\n', '\r']) {
            Some(i) => {
                let line = &rest[..i];
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
        }
    })
}
