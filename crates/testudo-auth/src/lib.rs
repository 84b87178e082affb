//! Authentication primitives that need no database: issued key and token secrets, scoped
//! secrets, password hashing and policy, TOTP, login throttling, the security events
//! authentication reports, and JWT validation for access providers (with the JWKS fetchers
//! and cache it needs: the only network I/O in this crate). The engine builds databases,
//! keys, tokens and credentials on these; nothing here reads or writes storage.
//!
//! **Invariants:** a plain secret or password is never stored, logged or formatted by
//! `Debug`; comparisons of secret material take the same time whatever the input; no input
//! a client controls can make these functions panic.

pub mod events;
pub mod jwt;
pub mod password;
pub mod scope;
pub mod secret;
pub mod throttle;
pub mod totp;

pub use events::{AuthEvent, EventSink, MemorySink, TracingSink};
pub use password::{
    PasswordError, PasswordPolicy, PolicyViolation, hash_password, verify_password,
};
pub use scope::{BaseRole, ScopeError, ScopeRequest, ScopeRole, may_request, parse_bearer};
pub use secret::{
    Issued, ParsedSecret, Pepper, RandomUnavailable, SecretHash, SecretKind, generate_secret,
};
pub use throttle::{LoginThrottle, ThrottleConfig, ThrottleKey, Throttled};
pub use totp::TotpSecret;
