//! Display strings (`toString()`, string `+`, `#{}` interpolation, `log()`) and the debug
//! form used for values inside containers (reference §3.6).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use testudo_model::num::fql_display_double;

use super::value::{Func, Value};
use super::{Interp, R};

impl Interp<'_> {
    /// The display string of a value. Reads a top-level document to print its fields.
    pub fn display(&mut self, v: &Value) -> R<String> {
        Ok(match v {
            Value::Str(s) => s.to_string(),
            Value::Doc(r) => {
                let fields = self.doc_display_fields(*r)?;
                match fields {
                    Some(fields) => debug_fields(fields.iter().map(|(k, v)| (k.as_str(), v))),
                    None => "null".into(),
                }
            }
            _ => scalar_display(v).unwrap_or_else(|| debug_string(v)),
        })
    }

    /// The display string of a value inside a container.
    pub fn debug(&mut self, v: &Value) -> String {
        debug_string(v)
    }
}

fn scalar_display(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null(_) => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Long(l) => l.to_string(),
        Value::Double(d) => fql_display_double(*d),
        Value::Str(s) => s.to_string(),
        Value::Bytes(b) => STANDARD.encode(b),
        Value::Time(t) => t.to_string(),
        Value::Date(d) => d.to_string(),
        Value::Id(id) => id.to_string(),
        _ => return None,
    })
}

fn debug_fields<'a>(fields: impl Iterator<Item = (&'a str, &'a Value)>) -> String {
    let inner: Vec<String> = fields
        .map(|(k, v)| format!("{}: {}", debug_key(k), debug_string(v)))
        .collect();
    if inner.is_empty() {
        "{}".into()
    } else {
        format!("{{ {} }}", inner.join(", "))
    }
}

/// The debug form of any value, without reading anything (nested documents print as
/// `[doc <id> in <collection>]`).
pub fn debug_string(v: &Value) -> String {
    match v {
        Value::Str(s) => quote(s),
        Value::Time(t) => format!("Time(\"{t}\")"),
        Value::Date(d) => format!("Date(\"{d}\")"),
        Value::Bytes(b) => format!("Bytes(\"{}\")", STANDARD.encode(b)),
        Value::Id(id) => format!("ID(\"{id}\")"),
        Value::TxnTime => "[transaction time]".into(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(debug_string).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(o) => debug_fields(o.iter().map(|(k, v)| (k.as_str(), v))),
        Value::Doc(r) => format!("[doc {} in {}]", r.id, r.coll.0),
        Value::Set(_) => "[set]".into(),
        Value::Func(f) => match &**f {
            Func::Lambda(_) => "[function <lambda>]".into(),
            Func::Native(n) => format!("[function {}()]", n.name),
            Func::Udf(u) => format!("[function {}()]", u.name),
        },
        Value::Module(m) => m.name().to_string(),
        _ => scalar_display(v).unwrap_or_default(),
    }
}

fn debug_key(k: &str) -> String {
    let mut chars = k.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident { k.to_string() } else { quote(k) }
}

/// A double-quoted FQL string literal for `s`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
