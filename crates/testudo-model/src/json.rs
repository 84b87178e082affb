//! The wire formats: tagged, simple and decorated JSON.

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

/// A value in a request that does not decode. `message` is the reason shown to the client
/// (the server prefixes it with where the value was, e.g. "Invalid argument 'x': ...").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    pub message: String,
}

/// Writes `value` as one JSON value in `format` to `out`. [`crate::Output::TxnTime`] and
/// documents written by this query (whose `ts` is `None`) use `txn_ts`.
pub fn encode(value: &crate::Output, format: Format, txn_ts: crate::Ts, out: &mut Vec<u8>) {
    let _ = (value, format, txn_ts, out);
    unimplemented!("filled in by the model codec work")
}

/// Decodes a request value: tagged JSON (`@int`, `@time`, ...) for [`Format::Tagged`] and
/// [`Format::Decorated`], plain JSON for [`Format::Simple`].
pub fn decode(value: &serde_json::Value, format: Format) -> Result<crate::Input, DecodeError> {
    let _ = (value, format);
    unimplemented!("filled in by the model codec work")
}
