//! Request values: tagged JSON (drivers, and every template `value`) and simple JSON.
//!
//! Tagged input follows the core's `UndecidedValue`: an object with any key starting with
//! `@` must have exactly that one key and a known tag; bare JSON numbers are refused; error
//! messages are lowercase because the server embeds them mid-sentence. Collection names stay
//! names (resolving them needs the schema): `@mod` becomes [`Input::Module`], `@ref`/`@doc`
//! become [`Input::Ref`].
//!
//! **Invariant:** recursion is bounded by [`MAX_DECODE_DEPTH`] whatever the caller's JSON
//! parser allowed; malformed input is always a [`DecodeError`], never a panic.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::Value;

use super::DecodeError;
use crate::input::RefKey;
use crate::num::parse_java_double;
use crate::{Date, DocId, Input, Time};

/// The deepest nesting of arrays and objects a request value may have. `serde_json` already
/// stops parsing at 128 levels; this guards values built any other way.
pub const MAX_DECODE_DEPTH: usize = 512;

/// Standard base64 as Java's basic decoder reads it: padding may be left out, but if present
/// it must be complete; stray bits in the last character are ignored.
const BASE64_PADDED: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);
const BASE64_UNPADDED: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let engine = if s.contains('=') {
        &BASE64_PADDED
    } else {
        &BASE64_UNPADDED
    };
    engine.decode(s).ok()
}

/// Whether documents of the system collection `name` are schema documents addressed by name
/// (`{"@ref": {"name": ..., "coll": {"@mod": "Collection"}}}`) rather than by id. User
/// collections can never take these names.
pub fn is_named_collection(name: &str) -> bool {
    matches!(
        name,
        "Collection" | "Function" | "Role" | "AccessProvider" | "Database"
    )
}

fn too_deep(depth: usize) -> Result<(), DecodeError> {
    if depth > MAX_DECODE_DEPTH {
        Err(DecodeError::new("value is nested too deeply"))
    } else {
        Ok(())
    }
}

/// Simple JSON: numbers are `Int` when they fit 32 bits, `Long` when they fit 64, else
/// `Double`; no tags are interpreted.
pub(super) fn simple(value: &Value, depth: usize) -> Result<Input, DecodeError> {
    too_deep(depth)?;
    Ok(match value {
        Value::Null => Input::Null,
        Value::Bool(b) => Input::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i32::try_from(i).map_or(Input::Long(i), Input::Int),
            None => Input::Double(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Input::String(s.clone()),
        Value::Array(items) => Input::Array(
            items
                .iter()
                .map(|v| simple(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Input::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), simple(v, depth + 1)?)))
                .collect::<Result<_, DecodeError>>()?,
        ),
    })
}

/// Tagged JSON.
pub(super) fn tagged(value: &Value, depth: usize) -> Result<Input, DecodeError> {
    too_deep(depth)?;
    Ok(match value {
        Value::Null => Input::Null,
        Value::Bool(b) => Input::Bool(*b),
        Value::Number(_) => return Err(DecodeError::new("numbers must be tagged")),
        Value::String(s) => Input::String(s.clone()),
        Value::Array(items) => Input::Array(
            items
                .iter()
                .map(|v| tagged(v, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => {
            if !map.keys().any(|k| k.starts_with('@')) {
                return tagged_object(map, depth);
            }
            let mut entries = map.iter();
            match (entries.next(), entries.next()) {
                (Some((tag, inner)), None) => tagged_value(tag, inner, depth)?,
                _ => return Err(DecodeError::new("too many keys in tagged value")),
            }
        }
    })
}

fn tagged_object(map: &serde_json::Map<String, Value>, depth: usize) -> Result<Input, DecodeError> {
    Ok(Input::Object(
        map.iter()
            .map(|(k, v)| Ok((k.clone(), tagged(v, depth + 1)?)))
            .collect::<Result<_, DecodeError>>()?,
    ))
}

fn as_str<'v>(tag: &str, value: &'v Value) -> Result<&'v str, DecodeError> {
    value
        .as_str()
        .ok_or_else(|| DecodeError::new(format!("{tag} requires a string value")))
}

fn tagged_value(tag: &str, inner: &Value, depth: usize) -> Result<Input, DecodeError> {
    let invalid = |what: &str| DecodeError::new(format!("invalid {what}"));
    Ok(match tag {
        "@int" => Input::Int(
            as_str(tag, inner)?
                .parse()
                .map_err(|_| invalid("integer"))?,
        ),
        "@long" => Input::Long(as_str(tag, inner)?.parse().map_err(|_| invalid("long"))?),
        "@double" => {
            Input::Double(parse_java_double(as_str(tag, inner)?).ok_or_else(|| invalid("double"))?)
        }
        "@object" => match inner {
            Value::Object(map) => tagged_object(map, depth)?,
            _ => return Err(DecodeError::new("@object requires an object value")),
        },
        "@time" => Input::Time(Time::parse(as_str(tag, inner)?).ok_or_else(|| invalid("time"))?),
        "@date" => Input::Date(Date::parse(as_str(tag, inner)?).ok_or_else(|| invalid("date"))?),
        "@bytes" => {
            Input::Bytes(decode_base64(as_str(tag, inner)?).ok_or_else(|| invalid("bytes"))?)
        }
        "@mod" => Input::Module(as_str(tag, inner)?.to_owned()),
        "@doc" | "@ref" => doc_ref(tag, tagged(inner, depth + 1)?)?,
        _ => return Err(DecodeError::new(format!("invalid tag '{tag}'"))),
    })
}

/// `@ref`/`@doc`: `{coll: @mod, id: "123"}` or `{coll: @mod, name: "..."}` (other fields,
/// such as a document's `ts` and data, are decoded and ignored), or the legacy `"Coll:id"`.
fn doc_ref(tag: &str, inner: Input) -> Result<Input, DecodeError> {
    let field_error =
        |field: &str, problem: &str| DecodeError::new(format!("{tag} field '{field}' {problem}"));
    match inner {
        Input::Object(fields) => {
            let get = |name: &str| fields.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v);
            let coll = match get("coll") {
                Some(Input::Module(coll)) => coll.clone(),
                Some(_) => return Err(field_error("coll", "requires a module value")),
                None => return Err(field_error("coll", "is required")),
            };
            let key = if is_named_collection(&coll) {
                match get("name") {
                    Some(Input::String(name)) => RefKey::Name(name.clone()),
                    Some(_) => return Err(field_error("name", "requires a string value")),
                    None => return Err(field_error("name", "is required")),
                }
            } else {
                match get("id") {
                    Some(Input::String(id)) => RefKey::Id(
                        parse_doc_id(id).ok_or_else(|| field_error("id", "must be an integer"))?,
                    ),
                    Some(_) => return Err(field_error("id", "requires a string value")),
                    None => return Err(field_error("id", "is required")),
                }
            };
            Ok(Input::Ref { coll, key })
        }
        Input::String(legacy) => {
            let mut parts = legacy.splitn(3, ':');
            let (Some(coll), Some(id), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(DecodeError::new("doc id must be in the format <coll>:<id>"));
            };
            let key = if is_named_collection(coll) {
                RefKey::Name(id.to_owned())
            } else {
                RefKey::Id(
                    parse_doc_id(id)
                        .ok_or_else(|| DecodeError::new(format!("invalid document id '{id}'")))?,
                )
            };
            Ok(Input::Ref {
                coll: coll.to_owned(),
                key,
            })
        }
        _ => Err(DecodeError::new(format!("{tag} requires an object value"))),
    }
}

/// A document id as the core reads it (`toLongOption`: an optional sign, then digits),
/// restricted to the non-negative ids documents can have.
fn parse_doc_id(s: &str) -> Option<DocId> {
    let n: i64 = s.parse().ok()?;
    u64::try_from(n).ok().map(DocId)
}
