//! `String` methods (reference §4.5), with Fauna's signatures, edge cases and messages.
//!
//! **Invariants:** lengths and indexes count code points, never bytes (a string is UTF-8
//! here and UTF-16 in Fauna, which agree on code points); no method builds a string longer
//! than [`MAX_STRING_BYTES`] (the check runs while building, so a replacement loop cannot
//! allocate far past the limit first); loops over long strings watch the query deadline; no
//! input panics. Regular expressions are in `string/regex.rs`, number parsing in
//! `string/number.rs`, Unicode normalization in `string/casefold.rs`.

mod casefold;
mod number;
mod regex;

use super::params::{Ty, check_deadline, int_param, invalid, out_of_bounds, overload, str_param};
use super::{MethodDef, between, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Interp, NullCause, R, Value, err};

/// The longest string a query may build (16 MiB, as Fauna).
pub const MAX_STRING_BYTES: usize = 16 * 1024 * 1024;

/// Fauna's `value_too_large` for a string of `size` (bytes here; UTF-16 units in Fauna).
fn too_large(size: usize) -> Box<crate::eval::EvalError> {
    err(
        ErrorCode::ValueTooLarge,
        format!("Value too large: string size {size} exceeds limit {MAX_STRING_BYTES}."),
    )
}

/// Checks a freshly built string against the size limit.
pub fn checked_string(s: String) -> R<Value> {
    if s.len() > MAX_STRING_BYTES {
        return Err(too_large(s.len()));
    }
    Ok(Value::string(s))
}

/// Fails before a string of `size` bytes would be built.
fn check_size(size: usize) -> R<()> {
    if size > MAX_STRING_BYTES {
        return Err(too_large(size));
    }
    Ok(())
}

/// The null `indexOf` and friends return when nothing matches.
fn not_found() -> Value {
    Value::Null(NullCause::NoSuchElement("no element found"))
}

pub fn method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "at" => def("at", exactly(1), at),
        "concat" => def("concat", exactly(1), concat),
        "includes" => def("includes", exactly(1), |_, r, a| {
            let pattern = str_param(&a[0], "pattern")?;
            Ok(Value::Bool(recv(r)?.contains(&*pattern)))
        }),
        "startsWith" => def("startsWith", exactly(1), |_, r, a| {
            let prefix = str_param(&a[0], "prefix")?;
            Ok(Value::Bool(recv(r)?.starts_with(&*prefix)))
        }),
        "endsWith" => def("endsWith", exactly(1), |_, r, a| {
            let suffix = str_param(&a[0], "suffix")?;
            Ok(Value::Bool(recv(r)?.ends_with(&*suffix)))
        }),
        "indexOf" => def("indexOf", between(1, 2), index_of),
        "lastIndexOf" => def("lastIndexOf", between(1, 2), last_index_of),
        "slice" => def("slice", between(1, 2), slice),
        "insert" => def("insert", exactly(2), insert),
        "splitAt" => def("splitAt", exactly(1), split_at),
        "split" => def("split", exactly(1), |it, r, a| {
            let s = recv(r)?;
            let sep = str_param(&a[0], "separator")?;
            split_with(it, &s, |section| {
                section.find(&*sep).map(|i| (i, i + sep.len()))
            })
        }),
        "replace" => def("replace", between(2, 3), replace),
        "replaceAll" => def("replaceAll", exactly(2), |it, r, a| {
            let s = recv(r)?;
            let pattern = str_param(&a[0], "pattern")?;
            let replacement = str_param(&a[1], "replacement")?;
            replace_with(it, &s, &replacement, None, |section| {
                section.find(&*pattern).map(|i| (i, i + pattern.len()))
            })
        }),
        "toLowerCase" => def("toLowerCase", exactly(0), |_, r, _| {
            checked_string(recv(r)?.to_lowercase())
        }),
        "toUpperCase" => def("toUpperCase", exactly(0), |_, r, _| {
            checked_string(recv(r)?.to_uppercase())
        }),
        "casefold" => def("casefold", between(0, 1), casefold::casefold),
        "toString" => def("toString", exactly(0), |_, r, _| Ok(r.clone())),
        "parseInt" => def("parseInt", between(0, 1), |_, r, a| {
            number::parse_int(&recv(r)?, &a, true)
        }),
        "parseLong" => def("parseLong", between(0, 1), |_, r, a| {
            number::parse_int(&recv(r)?, &a, false)
        }),
        "parseDouble" => def("parseDouble", exactly(0), |_, r, _| {
            Ok(number::parse_double(&recv(r)?))
        }),
        "parseNumber" => def("parseNumber", exactly(0), |_, r, _| {
            Ok(number::parse_number(&recv(r)?))
        }),
        "includesRegex" => def("includesRegex", exactly(1), regex::includes),
        "indexOfRegex" => def("indexOfRegex", between(1, 2), regex::index_of),
        "matches" => def("matches", exactly(1), |it, r, a| {
            regex::matches(it, r, a, false)
        }),
        "matchIndexes" => def("matchIndexes", exactly(1), |it, r, a| {
            regex::matches(it, r, a, true)
        }),
        "replaceRegex" => def("replaceRegex", between(2, 3), regex::replace),
        "replaceAllRegex" => def("replaceAllRegex", exactly(2), regex::replace_all),
        "splitRegex" => def("splitRegex", exactly(1), regex::split),
        _ => return None,
    })
}

/// The receiver (the dispatcher guarantees a string; anything else is a bug reported as an
/// internal error, never a panic).
fn recv(v: &Value) -> R<std::rc::Rc<str>> {
    super::args::recv_str(v)
}

/// Code points in `s`.
pub fn cp_len(s: &str) -> usize {
    s.chars().count()
}

/// The byte offset of code point `i` (the end of the string when `i` is its length).
fn byte_at(s: &str, i: usize) -> Option<usize> {
    if i == 0 {
        return Some(0);
    }
    s.char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(s.len()))
        .nth(i)
}

/// A code point index that must name a code point (`0 <= i < length`), as a byte offset.
fn checked_index(s: &str, i: i32) -> R<usize> {
    let len = cp_len(s);
    usize::try_from(i)
        .ok()
        .filter(|&i| i < len)
        .and_then(|i| byte_at(s, i))
        .ok_or_else(|| out_of_bounds(i64::from(i), len))
}

/// A code point index that may also be the length (`0 <= i <= length`), as a byte offset.
fn inclusive_index(s: &str, i: i32) -> R<usize> {
    let len = cp_len(s);
    usize::try_from(i)
        .ok()
        .filter(|&i| i <= len)
        .and_then(|i| byte_at(s, i))
        .ok_or_else(|| out_of_bounds(i64::from(i), len))
}

/// A code point index clamped into `0..=length`, as a byte offset (for `slice`).
fn clamped_index(s: &str, i: i32) -> usize {
    match usize::try_from(i) {
        Ok(i) => byte_at(s, i).unwrap_or(s.len()),
        Err(_) => 0,
    }
}

/// The code point index of byte offset `b`.
fn cp_index(s: &str, b: usize) -> Value {
    let n = s.get(..b).map_or(0, cp_len);
    Value::Int(i32::try_from(n).unwrap_or(i32::MAX))
}

fn at(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv(r)?;
    let i = int_param(&a[0], "index")?;
    let b = checked_index(&s, i)?;
    Ok(Value::string(
        s[b..].chars().next().map(String::from).unwrap_or_default(),
    ))
}

fn concat(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv(r)?;
    let other = str_param(&a[0], "other")?;
    check_size(s.len() + other.len())?;
    Ok(Value::string(format!("{s}{other}")))
}

const SEARCH: &[&[Ty]] = &[&[Ty::Str], &[Ty::Str, Ty::Int]];

fn index_of(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    overload("indexOf", &a, SEARCH)?;
    let s = recv(r)?;
    let pattern = str_param(&a[0], "pattern")?;
    let from = match a.get(1) {
        Some(v) => checked_index(&s, int_param(v, "start")?)?,
        None => 0,
    };
    Ok(match s[from..].find(&*pattern) {
        Some(b) => cp_index(&s, from + b),
        None => not_found(),
    })
}

fn last_index_of(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    overload("lastIndexOf", &a, SEARCH)?;
    let s = recv(r)?;
    let pattern = str_param(&a[0], "pattern")?;
    // A match may start at `end` at the latest (Java's `lastIndexOf(str, from)`).
    let limit = match a.get(1) {
        Some(v) => checked_index(&s, int_param(v, "end")?)?,
        None => s.len(),
    };
    let window = (limit + pattern.len()).min(s.len());
    Ok(match s.get(..window).and_then(|w| w.rfind(&*pattern)) {
        Some(b) if b <= limit => cp_index(&s, b),
        _ => not_found(),
    })
}

fn slice(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    overload("slice", &a, &[&[Ty::Int], &[Ty::Int, Ty::Int]])?;
    let s = recv(r)?;
    let start = clamped_index(&s, int_param(&a[0], "start")?);
    let end = match a.get(1) {
        Some(v) => clamped_index(&s, int_param(v, "end")?),
        None => s.len(),
    };
    Ok(Value::str(s.get(start..end).unwrap_or("")))
}

fn insert(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv(r)?;
    let i = int_param(&a[0], "index")?;
    let other = str_param(&a[1], "other")?;
    let b = inclusive_index(&s, i)?;
    check_size(s.len() + other.len())?;
    Ok(Value::string(format!("{}{}{}", &s[..b], other, &s[b..])))
}

fn split_at(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let s = recv(r)?;
    let b = inclusive_index(&s, int_param(&a[0], "index")?)?;
    Ok(Value::array(vec![Value::str(&s[..b]), Value::str(&s[b..])]))
}

fn replace(it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    overload(
        "replace",
        &a,
        &[&[Ty::Str, Ty::Str], &[Ty::Str, Ty::Str, Ty::Int]],
    )?;
    let s = recv(r)?;
    let pattern = str_param(&a[0], "pattern")?;
    let replacement = str_param(&a[1], "replacement")?;
    let count = match a.get(2) {
        Some(v) => int_param(v, "amount")?,
        None => 1,
    };
    replace_with(it, &s, &replacement, Some(count), |section| {
        section.find(&*pattern).map(|i| (i, i + pattern.len()))
    })
}

/// Fauna's splitting loop, shared by `split` and `splitRegex`: `find` is asked for the first
/// match in what is left of the string (so `^` matches at every step, as in Fauna). An empty
/// match splits off one code point, and a last single code point is never followed by an
/// empty piece: `"abc".split("")` is `["a", "b", "c"]` but `"a".split("")` is `["a", ""]`
/// (JavaScript-like results, not Java's `String.split`).
fn split_with(
    it: &mut Interp<'_>,
    s: &str,
    mut find: impl FnMut(&str) -> Option<(usize, usize)>,
) -> R<Value> {
    let mut parts = Vec::new();
    let mut prev = 0;
    let mut steps = 0u32;
    while prev < s.len() {
        steps += 1;
        if steps.is_multiple_of(1024) {
            check_deadline(it)?;
        }
        let section = &s[prev..];
        match find(section) {
            Some((start, end)) if start == end => {
                let width = section.chars().next().map_or(1, char::len_utf8);
                parts.push(Value::str(&section[..width]));
                prev += width;
                let mut rest = s[prev..].chars();
                if rest.next().is_some() && rest.next().is_none() {
                    break;
                }
            }
            Some((start, end)) => {
                parts.push(Value::str(&section[..start]));
                prev += end;
            }
            None => break,
        }
    }
    parts.push(Value::str(&s[prev..]));
    Ok(Value::array(parts))
}

/// Fauna's replacing loop, shared by the literal and regex replacements: up to `count`
/// times (`None`: as often as there are matches), the first match in what is left of the
/// string is replaced by `replacement`, taken literally.
///
/// An empty match does not advance, so in Fauna it repeats until `count` runs out; with no
/// count it never ends (the string grows until it is too large, or, with an empty
/// replacement, the query times out). Here the repetitions are computed at once, the endless
/// growth is reported as `value_too_large` straight away, and an empty replacement of an
/// empty match steps over one code point instead of spinning.
fn replace_with(
    it: &mut Interp<'_>,
    s: &str,
    replacement: &str,
    count: Option<i32>,
    mut find: impl FnMut(&str) -> Option<(usize, usize)>,
) -> R<Value> {
    if count.is_some_and(|c| c < 1) {
        return Err(invalid("count", "must be greater than or equal to 1"));
    }
    let mut remaining = count.map(|c| c as u64);
    let mut out = String::new();
    let mut prev = 0;
    let mut steps = 0u32;
    while remaining != Some(0) {
        steps += 1;
        if steps.is_multiple_of(1024) {
            check_deadline(it)?;
        }
        let section = &s[prev..];
        let Some((start, end)) = find(section) else {
            break;
        };
        check_size(out.len() + start + replacement.len())?;
        out.push_str(&section[..start]);
        out.push_str(replacement);
        prev += end;
        remaining = remaining.map(|n| n - 1);
        let stuck = start == end && find(&s[prev..]) == Some((0, 0));
        if !stuck {
            continue;
        }
        match remaining {
            Some(n) => {
                let extra = usize::try_from(n).unwrap_or(usize::MAX);
                let size = replacement
                    .len()
                    .checked_mul(extra)
                    .and_then(|r| r.checked_add(out.len()))
                    .unwrap_or(usize::MAX);
                check_size(size)?;
                out.push_str(&replacement.repeat(extra));
                remaining = Some(0);
            }
            None if !replacement.is_empty() => {
                // The size at which Fauna's loop would have stopped.
                let rep = replacement.len();
                let steps = MAX_STRING_BYTES.saturating_sub(out.len()) / rep + 1;
                return Err(too_large(out.len() + steps * rep));
            }
            None => match s[prev..].chars().next() {
                Some(c) => {
                    out.push(c);
                    prev += c.len_utf8();
                }
                None => break,
            },
        }
    }
    check_size(out.len() + s.len() - prev)?;
    out.push_str(&s[prev..]);
    Ok(Value::string(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_point_offsets_skip_whole_astral_characters() {
        let s = "f😍o";
        assert_eq!(byte_at(s, 1), Some(1));
        assert_eq!(byte_at(s, 2), Some(5));
        assert_eq!(byte_at(s, 3), Some(6));
        assert_eq!(byte_at(s, 4), None);
        assert_eq!(clamped_index(s, -3), 0);
        assert_eq!(clamped_index(s, 99), 6);
        assert!(checked_index(s, 3).is_err());
        assert!(inclusive_index(s, 3).is_ok());
    }
}
