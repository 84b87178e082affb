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
