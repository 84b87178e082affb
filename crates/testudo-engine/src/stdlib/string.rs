//! `String` methods (reference §4.5). Lengths and indexes count code points.

use super::args::{arg, int_arg, recv_str, str_arg};
use super::{MethodDef, between, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Interp, NullCause, R, Value, fail, ops};

/// The longest string a query may build (16 MiB, as Fauna).
pub const MAX_STRING_BYTES: usize = 16 * 1024 * 1024;

/// Checks a freshly built string against the size limit.
pub fn checked_string(s: String) -> R<Value> {
    if s.len() > MAX_STRING_BYTES {
        return fail(
            ErrorCode::ValueTooLarge,
            format!("String is too large: more than {MAX_STRING_BYTES} bytes."),
        );
    }
    Ok(Value::string(s))
}

pub fn method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "at" => def("at", exactly(1), at),
        "concat" => def("concat", exactly(1), |_, r, a| {
            let s = recv_str(r)?;
            let other = str_arg(&arg(&a, 0), "other")?;
            checked_string(format!("{s}{other}"))
        }),
        "includes" => def("includes", exactly(1), |_, r, a| {
            Ok(Value::Bool(
                recv_str(r)?.contains(&*str_arg(&arg(&a, 0), "pattern")?),
            ))
        }),
        "startsWith" => def("startsWith", exactly(1), |_, r, a| {
            Ok(Value::Bool(
                recv_str(r)?.starts_with(&*str_arg(&arg(&a, 0), "prefix")?),
            ))
        }),
        "endsWith" => def("endsWith", exactly(1), |_, r, a| {
            Ok(Value::Bool(
                recv_str(r)?.ends_with(&*str_arg(&arg(&a, 0), "suffix")?),
            ))
        }),
        "indexOf" => def("indexOf", between(1, 2), index_of),
        "lastIndexOf" => def("lastIndexOf", between(1, 2), last_index_of),
        "slice" => def("slice", between(1, 2), slice),
        "insert" => def("insert", exactly(2), insert),
        "splitAt" => def("splitAt", exactly(1), split_at),
        "split" => def("split", exactly(1), |_, r, a| {
            let s = recv_str(r)?;
            let sep = str_arg(&arg(&a, 0), "separator")?;
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::string(c.to_string())).collect()
            } else {
                s.split(&*sep).map(Value::str).collect()
            };
            Ok(Value::array(parts))
        }),
        "replace" => def("replace", between(2, 3), replace),
        "replaceAll" => def("replaceAll", exactly(2), |_, r, a| {
            let s = recv_str(r)?;
            let pattern = str_arg(&arg(&a, 0), "pattern")?;
            let replacement = str_arg(&arg(&a, 1), "replacement")?;
            if pattern.is_empty() {
                return checked_string(s.to_string());
            }
            checked_string(s.replace(&*pattern, &replacement))
        }),
        "toLowerCase" => def("toLowerCase", exactly(0), |_, r, _| {
            Ok(Value::string(recv_str(r)?.to_lowercase()))
        }),
        "toUpperCase" => def("toUpperCase", exactly(0), |_, r, _| {
            Ok(Value::string(recv_str(r)?.to_uppercase()))
        }),
        "toString" => def("toString", exactly(0), |_, r, _| Ok(r.clone())),
        "parseInt" => def("parseInt", between(0, 1), |_, r, a| {
            parse_integer(r, &a, true)
        }),
        "parseLong" => def("parseLong", between(0, 1), |_, r, a| {
            parse_integer(r, &a, false)
        }),
        "parseDouble" => def("parseDouble", exactly(0), |_, r, _| {
            Ok(parse_double(&recv_str(r)?).map_or(
                Value::Null(NullCause::NoSuchElement("an invalid number")),
                Value::Double,
            ))
        }),
        "parseNumber" => def("parseNumber", exactly(0), |_, r, _| {
            let s = recv_str(r)?;
            if let Some(n) = parse_radix(&s, 10) {
                return Ok(ops::narrow(n));
            }
            Ok(parse_double(&s).map_or(
                Value::Null(NullCause::NoSuchElement("an invalid number")),
                Value::Double,
            ))
        }),
        _ => return None,
    })
}

fn char_count(s: &str) -> i64 {
    s.chars().count() as i64
}

/// The byte offset of code point `i` (or the end when `i` is the length).
fn byte_at(s: &str, i: i64) -> Option<usize> {
    let i = usize::try_from(i).ok()?;
    if i == 0 {
        return Some(0);
    }
    s.char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(s.len()))
        .nth(i)
}

fn at(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv_str(r)?;
    let i = int_arg(&arg(&a, 0), "index")?;
    let len = char_count(&s);
    match usize::try_from(i).ok().and_then(|i| s.chars().nth(i)) {
        Some(c) => Ok(Value::string(c.to_string())),
        None => fail(
            ErrorCode::IndexOutOfBounds,
            format!("index {i} out of bounds for length {len}"),
        ),
    }
}

/// The code point index of the first match at or after `start`.
fn index_of(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv_str(r)?;
    let pattern = str_arg(&arg(&a, 0), "pattern")?;
    let start = match a.get(1) {
        Some(v) => int_arg(v, "start")?,
        None => 0,
    };
    let len = char_count(&s);
    if start < 0 || start > len {
        return fail(
            ErrorCode::IndexOutOfBounds,
            format!("index {start} out of bounds for length {len}"),
        );
    }
    let from = byte_at(&s, start).unwrap_or(s.len());
    Ok(match s[from..].find(&*pattern) {
        Some(b) => Value::Int(char_count(&s[..from + b]) as i32),
        None => Value::Null(NullCause::NoSuchElement("no match")),
    })
}

fn last_index_of(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv_str(r)?;
    let pattern = str_arg(&arg(&a, 0), "pattern")?;
    let len = char_count(&s);
    let end = match a.get(1) {
        Some(v) => int_arg(v, "end")?,
        None => len,
    };
    if end < 0 || end > len {
        return fail(
            ErrorCode::IndexOutOfBounds,
            format!("index {end} out of bounds for length {len}"),
        );
    }
    // A match may start at `end` at the latest.
    let limit = byte_at(&s, end).unwrap_or(s.len());
    let searchable = &s[..(limit + pattern.len()).min(s.len())];
    Ok(match searchable.rfind(&*pattern) {
        Some(b) if b <= limit => Value::Int(char_count(&s[..b]) as i32),
        _ => Value::Null(NullCause::NoSuchElement("no match")),
    })
}

fn slice(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv_str(r)?;
    let len = char_count(&s);
    let start = int_arg(&arg(&a, 0), "start")?.clamp(0, len);
    let end = match a.get(1) {
        Some(v) => int_arg(v, "end")?.clamp(0, len),
        None => len,
    };
    if end <= start {
        return Ok(Value::str(""));
    }
    let (b0, b1) = (
        byte_at(&s, start).unwrap_or(0),
        byte_at(&s, end).unwrap_or(s.len()),
    );
    Ok(Value::str(&s[b0..b1]))
}

fn insert(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv_str(r)?;
    let i = int_arg(&arg(&a, 0), "index")?;
    let other = str_arg(&arg(&a, 1), "other")?;
    let len = char_count(&s);
    let Some(b) = byte_at(&s, i).filter(|_| i <= len) else {
        return fail(
            ErrorCode::IndexOutOfBounds,
            format!("index {i} out of bounds for length {len}"),
        );
    };
    checked_string(format!("{}{}{}", &s[..b], other, &s[b..]))
}

fn split_at(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv_str(r)?;
    let i = int_arg(&arg(&a, 0), "index")?;
    let len = char_count(&s);
    let Some(b) = byte_at(&s, i).filter(|_| i <= len) else {
        return fail(
            ErrorCode::IndexOutOfBounds,
            format!("index {i} out of bounds for length {len}"),
        );
    };
    Ok(Value::array(vec![Value::str(&s[..b]), Value::str(&s[b..])]))
}

fn replace(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv_str(r)?;
    let pattern = str_arg(&arg(&a, 0), "pattern")?;
    let replacement = str_arg(&arg(&a, 1), "replacement")?;
    let count = match a.get(2) {
        Some(v) => int_arg(v, "amount")?,
        None => 1,
    };
    if count < 1 {
        return fail(
            ErrorCode::InvalidArgument,
            "expected value for `amount` to be greater than zero",
        );
    }
    if pattern.is_empty() {
        return Ok(Value::Str(s));
    }
    let n = usize::try_from(count).unwrap_or(usize::MAX);
    checked_string(s.replacen(&*pattern, &replacement, n))
}

fn parse_radix(s: &str, radix: u32) -> Option<i64> {
    let digits = s.strip_prefix('+').unwrap_or(s);
    if digits.is_empty() || digits.starts_with('+') {
        return None;
    }
    i64::from_str_radix(digits, radix).ok()
}

fn parse_integer(r: &Value, a: &[Value], int: bool) -> R<Value> {
    let s = recv_str(r)?;
    let radix = match a.first() {
        Some(v) => int_arg(v, "radix")?,
        None => 10,
    };
    if !(2..=36).contains(&radix) {
        return fail(
            ErrorCode::InvalidArgument,
            format!("expected value for `radix` to be between 2 and 36, received {radix}"),
        );
    }
    let parsed = parse_radix(&s, radix as u32);
    let invalid = Value::Null(NullCause::NoSuchElement("an invalid number"));
    Ok(match parsed {
        Some(n) if int => i32::try_from(n).map_or(invalid, Value::Int),
        Some(n) => Value::Long(n),
        None => invalid,
    })
}

/// Java's `Double.parseDouble` accepts what Rust accepts plus a trailing `d`/`f`; FQL is
/// stricter in practice: decimal text, optional exponent, `Infinity`, `NaN`.
fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty()
        || t.eq_ignore_ascii_case("inf")
        || t.eq_ignore_ascii_case("+inf")
        || t.eq_ignore_ascii_case("-inf")
    {
        return None;
    }
    match t {
        "Infinity" | "+Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        "NaN" => return Some(f64::NAN),
        _ => {}
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    t.parse::<f64>().ok()
}
