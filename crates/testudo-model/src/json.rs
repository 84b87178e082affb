//! The wire formats: tagged, simple and decorated JSON (§4 of `fauna-protocol.md`).
//!
//! - [`encode`] writes one result value straight into the response buffer: no intermediate
//!   JSON tree, no allocation beyond the buffer's own growth for the tagged and simple
//!   formats (the decorated format, used only by the shell, builds its text first).
//! - [`decode`] turns a request value (`arguments`, template `value`s) into an [`Input`],
//!   with the core's error messages.
//!
//! **Invariants:** encoding never fails and always writes exactly one well-formed JSON value;
//! decoding never panics and never recurses deeper than [`MAX_DECODE_DEPTH`].
//!
//! [`Input`]: crate::Input

mod decode;
mod decorated;
mod encode;

#[cfg(test)]
mod tests;

pub use decode::{MAX_DECODE_DEPTH, is_named_collection};

/// The result format a request asks for (`X-Format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Format {
    /// Plain JSON: numbers as numbers, documents as objects (the default when `X-Format` is absent).
    #[default]
    Simple,
    /// Type-tagged JSON (`@int`, `@doc`, ...), what every driver asks for.
    Tagged,
    /// FQL literal text, as the shell shows results.
    Decorated,
}

impl Format {
    /// Parses an `X-Format` header value; Fauna accepts exactly these lowercase names.
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "simple" => Some(Format::Simple),
            "tagged" => Some(Format::Tagged),
            "decorated" => Some(Format::Decorated),
            _ => None,
        }
    }
}

/// A value in a request that does not decode. `message` is the reason shown to the client
/// (the server prefixes it with where the value was, e.g. "Invalid argument 'x': ...").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub message: String,
}

impl DecodeError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        DecodeError {
            message: message.into(),
        }
    }
}

/// Writes `value` as one JSON value in `format` to `out`. [`crate::Output::TxnTime`] and
/// documents written by this query (whose `ts` is `None`) use `txn_ts`.
pub fn encode(value: &crate::Output, format: Format, txn_ts: crate::Ts, out: &mut Vec<u8>) {
    let txn_time = txn_ts.to_time();
    match format {
        Format::Tagged => encode::write(value, true, txn_time, out),
        Format::Simple => encode::write(value, false, txn_time, out),
        Format::Decorated => {
            let text = decorated::render(value, txn_time);
            write_str(&text, out);
        }
    }
}

/// Decodes a request value: tagged JSON (`@int`, `@time`, ...) for [`Format::Tagged`] and
/// [`Format::Decorated`], plain JSON for [`Format::Simple`].
pub fn decode(value: &serde_json::Value, format: Format) -> Result<crate::Input, DecodeError> {
    match format {
        Format::Simple => decode::simple(value, 0),
        Format::Tagged | Format::Decorated => decode::tagged(value, 0),
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a JSON string literal: quotes, backslashes and control characters escaped,
/// everything else (including non-ASCII) copied as UTF-8.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if short.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(short);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}
