//! FQL v10: lexer, parser, syntax tree and diagnostics.
//!
//! **Invariants:** this crate does no I/O; parsing never panics, whatever the input (every
//! failure is a [`ParseError`] with a span); nesting deeper than [`MAX_NESTING`] is an error,
//! not a stack overflow.

pub mod ast;

pub use ast::*;

/// The deepest nesting of expressions the parser accepts.
pub const MAX_NESTING: usize = 256;
