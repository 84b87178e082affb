//! `Bytes`: the `Bytes(b64)` constructor, `Bytes.fromBase64`, and the methods of byte
//! values (`toBase64`, `toString`).
//!
//! Base64 is read as Java's basic decoder reads it, which is what Fauna uses: the standard
//! alphabet, padding optional but complete when present, stray bits in the last character
//! ignored. **Invariants:** undecodable text is an `invalid_argument`, never a panic; the
//! decoded value is never larger than its text.

use std::rc::Rc;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use super::params::str_param;
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Interp, R, Value, err};

const PADDED: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);
const UNPADDED: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// `Bytes(encoded)`.
pub fn apply(_it: &mut Interp<'_>, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(exactly(1), args.len())?;
    decode(&args[0])
}

pub fn static_method(name: &str) -> Option<MethodDef> {
    match name {
        "fromBase64" => Some(def("fromBase64", exactly(1), |_, _, a| decode(&a[0]))),
        _ => None,
    }
}

pub fn method(name: &str) -> Option<MethodDef> {
    match name {
        "toBase64" => Some(def("toBase64", exactly(0), encode)),
        "toString" => Some(def("toString", exactly(0), encode)),
        _ => None,
    }
}

fn decode(v: &Value) -> R<Value> {
    let text = str_param(v, "encoded")?;
    let engine = if text.contains('=') {
        &PADDED
    } else {
        &UNPADDED
    };
    engine
        .decode(text.as_bytes())
        .map(|b| Value::Bytes(Rc::from(b)))
        .map_err(|_| {
            err(
                ErrorCode::InvalidArgument,
                "invalid argument `encoded`: expected a Base64-encoded string",
            )
        })
}

fn encode(_it: &mut Interp<'_>, r: &Value, _a: Vec<Value>) -> R<Value> {
    match r {
        Value::Bytes(b) => Ok(Value::string(STANDARD.encode(b))),
        _ => Err(err(ErrorCode::Internal, "bytes method called on non-bytes")),
    }
}
