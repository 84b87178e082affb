//! Authentication primitives that need no database: generating secrets, hashing them for
//! storage, and checking a presented secret against a stored hash.
//!
//! **Invariants:** a plain secret is never stored and never formatted by `Debug`; comparisons
//! of secret material take the same time whatever the input.

pub mod secret;

pub use secret::{SecretHash, generate_secret};
