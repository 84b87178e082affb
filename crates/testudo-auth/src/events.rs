//! Security events: what authentication did, for the audit log to collect. The engine and
//! server emit an [`AuthEvent`] into an [`EventSink`]; [`TracingSink`] writes them as
//! structured `tracing` records, [`MemorySink`] keeps them for tests.
//!
//! **Invariants:**
//! - An event holds ids, names of collections, addresses, counts and reason codes: never a
//!   secret, a password, a TOTP code or anything a client typed. The types make this so:
//!   there is no free-text field.
//! - Emitting never fails and never blocks on I/O beyond what the sink's subscriber does.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The `tracing` target of every event record, for filtering the audit stream.
pub const TRACING_TARGET: &str = "testudo::auth";

/// An identity document: its collection's name and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DocRef {
    pub collection: String,
    pub id: u64,
}

impl fmt::Display for DocRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.collection, self.id)
    }
}

/// Why a presented secret was refused (the client sees only 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    MissingSecret,
    MalformedSecret,
    InvalidScope,
    ScopeNotAllowed,
    /// No such key or token, or its secret did not verify.
    UnknownSecret,
    Expired,
    /// The token's identity document no longer exists.
    IdentityGone,
    InvalidJwt,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::MissingSecret => "missing_secret",
            AuthFailure::MalformedSecret => "malformed_secret",
            AuthFailure::InvalidScope => "invalid_scope",
            AuthFailure::ScopeNotAllowed => "scope_not_allowed",
            AuthFailure::UnknownSecret => "unknown_secret",
            AuthFailure::Expired => "expired",
            AuthFailure::IdentityGone => "identity_gone",
            AuthFailure::InvalidJwt => "invalid_jwt",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoginFailure {
    WrongPassword,
    /// The identity has no credential to log in with.
    NoCredential,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::WrongPassword => "wrong_password",
            LoginFailure::NoCredential => "no_credential",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MfaFailure {
    WrongCode,
    /// A code from a step already used.
    Replayed,
    NotEnrolled,
}

impl MfaFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            MfaFailure::WrongCode => "wrong_code",
            MfaFailure::Replayed => "replayed",
            MfaFailure::NotEnrolled => "not_enrolled",
        }
    }
}

/// One security-relevant thing that happened. `db` is a database id; `address` the client's
/// address when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    AuthenticationFailed {
        address: Option<IpAddr>,
        reason: AuthFailure,
    },
    LoginSucceeded {
        db: u64,
        identity: DocRef,
        token_id: u64,
        address: Option<IpAddr>,
    },
    LoginFailed {
        db: u64,
        identity: DocRef,
        address: Option<IpAddr>,
        reason: LoginFailure,
    },
    LoginThrottled {
        db: u64,
        identity: DocRef,
        address: Option<IpAddr>,
        retry_after: Duration,
        locked: bool,
    },
    PasswordChanged {
        db: u64,
        identity: DocRef,
    },
    MfaEnrolled {
        db: u64,
        identity: DocRef,
    },
    MfaDisabled {
        db: u64,
        identity: DocRef,
    },
    MfaFailed {
        db: u64,
        identity: DocRef,
        address: Option<IpAddr>,
        reason: MfaFailure,
    },
    KeyCreated {
        db: u64,
        key_id: u64,
    },
    KeyDeleted {
        db: u64,
        key_id: u64,
    },
    TokenCreated {
        db: u64,
        token_id: u64,
        identity: DocRef,
    },
    TokenDeleted {
        db: u64,
        token_id: u64,
    },
}

impl AuthEvent {
    /// The event's name in logs, in snake case.
    pub fn name(&self) -> &'static str {
        match self {
            AuthEvent::AuthenticationFailed { .. } => "authentication_failed",
            AuthEvent::LoginSucceeded { .. } => "login_succeeded",
            AuthEvent::LoginFailed { .. } => "login_failed",
            AuthEvent::LoginThrottled { .. } => "login_throttled",
            AuthEvent::PasswordChanged { .. } => "password_changed",
            AuthEvent::MfaEnrolled { .. } => "mfa_enrolled",
            AuthEvent::MfaDisabled { .. } => "mfa_disabled",
            AuthEvent::MfaFailed { .. } => "mfa_failed",
            AuthEvent::KeyCreated { .. } => "key_created",
            AuthEvent::KeyDeleted { .. } => "key_deleted",
            AuthEvent::TokenCreated { .. } => "token_created",
            AuthEvent::TokenDeleted { .. } => "token_deleted",
        }
    }

    /// Is this a refusal (logged at warn) rather than a change or success (info)?
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            AuthEvent::AuthenticationFailed { .. }
                | AuthEvent::LoginFailed { .. }
                | AuthEvent::LoginThrottled { .. }
                | AuthEvent::MfaFailed { .. }
        )
    }

    fn fields(&self) -> Fields<'_> {
        let mut f = Fields::default();
        match self {
            AuthEvent::AuthenticationFailed { address, reason } => {
                f.address = *address;
                f.reason = Some(reason.as_str());
            }
            AuthEvent::LoginSucceeded {
                db,
                identity,
                token_id,
                address,
            } => {
                (f.db, f.identity, f.token_id) = (Some(*db), Some(identity), Some(*token_id));
                f.address = *address;
            }
            AuthEvent::LoginFailed {
                db,
                identity,
                address,
                reason,
            } => {
                (f.db, f.identity, f.address) = (Some(*db), Some(identity), *address);
                f.reason = Some(reason.as_str());
            }
            AuthEvent::LoginThrottled {
                db,
                identity,
                address,
                retry_after,
                locked,
            } => {
                (f.db, f.identity, f.address) = (Some(*db), Some(identity), *address);
                let millis = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
                (f.retry_after_ms, f.locked) = (Some(millis), Some(*locked));
            }
            AuthEvent::PasswordChanged { db, identity }
            | AuthEvent::MfaEnrolled { db, identity }
            | AuthEvent::MfaDisabled { db, identity } => {
                (f.db, f.identity) = (Some(*db), Some(identity));
            }
            AuthEvent::MfaFailed {
                db,
                identity,
                address,
                reason,
            } => {
                (f.db, f.identity, f.address) = (Some(*db), Some(identity), *address);
                f.reason = Some(reason.as_str());
            }
            AuthEvent::KeyCreated { db, key_id } | AuthEvent::KeyDeleted { db, key_id } => {
                (f.db, f.key_id) = (Some(*db), Some(*key_id));
            }
            AuthEvent::TokenCreated {
                db,
                token_id,
                identity,
            } => {
                (f.db, f.token_id, f.identity) = (Some(*db), Some(*token_id), Some(identity));
            }
            AuthEvent::TokenDeleted { db, token_id } => {
                (f.db, f.token_id) = (Some(*db), Some(*token_id));
            }
        }
        f
    }
}

/// Every field any event has, flattened so one `tracing` call site serves them all.
#[derive(Default)]
struct Fields<'a> {
    db: Option<u64>,
    identity: Option<&'a DocRef>,
    address: Option<IpAddr>,
    reason: Option<&'static str>,
    key_id: Option<u64>,
    token_id: Option<u64>,
    retry_after_ms: Option<u64>,
    locked: Option<bool>,
}

/// Where security events go.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: AuthEvent);

    /// [`EventSink::emit`] for an event in a database whose path of names from the root the
    /// caller knows (`""` is the root): a sink that records paths (the audit log) keeps it;
    /// the others ignore it.
    fn emit_at(&self, event: AuthEvent, path: Option<&str>) {
        let _ = path;
        self.emit(event);
    }
}

impl<S: EventSink + ?Sized> EventSink for Arc<S> {
    fn emit(&self, event: AuthEvent) {
        (**self).emit(event);
    }

    fn emit_at(&self, event: AuthEvent, path: Option<&str>) {
        (**self).emit_at(event, path);
    }
}

/// Writes each event as one structured `tracing` record under [`TRACING_TARGET`]: warn for
/// refusals, info for the rest. Absent fields are left out.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl EventSink for TracingSink {
    fn emit(&self, event: AuthEvent) {
        let f = event.fields();
        let identity = f.identity.map(tracing::field::display);
        let address = f.address.map(tracing::field::display);
        // `tracing` needs the level at the call site, hence two nearly identical calls.
        if event.is_failure() {
            tracing::warn!(
                target: TRACING_TARGET,
                event = event.name(),
                db = f.db,
                identity,
                address,
                reason = f.reason,
                key_id = f.key_id,
                token_id = f.token_id,
                retry_after_ms = f.retry_after_ms,
                locked = f.locked,
                "security event"
            );
        } else {
            tracing::info!(
                target: TRACING_TARGET,
                event = event.name(),
                db = f.db,
                identity,
                address,
                reason = f.reason,
                key_id = f.key_id,
                token_id = f.token_id,
                retry_after_ms = f.retry_after_ms,
                locked = f.locked,
                "security event"
            );
        }
    }
}

/// Keeps every event in memory, in order. For tests.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<AuthEvent>>,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// The events so far, oldest first.
    pub fn events(&self) -> Vec<AuthEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The events so far, leaving none.
    pub fn take(&self) -> Vec<AuthEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl EventSink for MemorySink {
    fn emit(&self, event: AuthEvent) {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn alice() -> DocRef {
        DocRef {
            collection: "Users".into(),
            id: 101,
        }
    }

    fn address() -> Option<IpAddr> {
        Some("192.0.2.7".parse().unwrap())
    }

    #[test]
    fn memory_sink_keeps_events_in_order_and_take_empties_it() {
        let sink = MemorySink::new();
        sink.emit(AuthEvent::KeyCreated { db: 1, key_id: 2 });
        sink.emit(AuthEvent::KeyDeleted { db: 1, key_id: 2 });
        assert_eq!(
            sink.take(),
            [
                AuthEvent::KeyCreated { db: 1, key_id: 2 },
                AuthEvent::KeyDeleted { db: 1, key_id: 2 }
            ]
        );
        assert!(sink.events().is_empty());
    }

    #[test]
    fn a_shared_sink_receives_events_through_its_arc() {
        let sink = Arc::new(MemorySink::new());
        let shared: Arc<dyn EventSink> = sink.clone();
        shared.emit(AuthEvent::TokenDeleted { db: 3, token_id: 4 });
        assert_eq!(sink.events().len(), 1);
    }

    #[test]
    fn refusals_are_failures_and_changes_are_not() {
        let refusal = AuthEvent::LoginFailed {
            db: 1,
            identity: alice(),
            address: None,
            reason: LoginFailure::WrongPassword,
        };
        assert!(refusal.is_failure());
        assert!(
            !AuthEvent::MfaEnrolled {
                db: 1,
                identity: alice()
            }
            .is_failure()
        );
    }

    /// Collects what a `tracing_subscriber::fmt` subscriber writes.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn traced(event: AuthEvent) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        tracing::subscriber::with_default(subscriber, || TracingSink.emit(event));
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn tracing_sink_logs_refusals_at_warn_with_their_fields() {
        let line = traced(AuthEvent::LoginThrottled {
            db: 9,
            identity: alice(),
            address: address(),
            retry_after: Duration::from_secs(2),
            locked: true,
        });
        assert!(
            line.trim_start().starts_with("WARN testudo::auth:"),
            "{line}"
        );
        for field in [
            "event=\"login_throttled\"",
            "db=9",
            "identity=Users/101",
            "address=192.0.2.7",
            "retry_after_ms=2000",
            "locked=true",
        ] {
            assert!(line.contains(field), "{field} in {line}");
        }
        assert!(!line.contains("key_id"), "{line}");
    }

    #[test]
    fn tracing_sink_logs_changes_at_info() {
        let line = traced(AuthEvent::KeyCreated { db: 5, key_id: 6 });
        assert!(
            line.trim_start().starts_with("INFO testudo::auth:"),
            "{line}"
        );
        assert!(
            line.contains("event=\"key_created\"") && line.contains("key_id=6"),
            "{line}"
        );
    }

    #[test]
    fn every_event_has_a_distinct_name() {
        let events = [
            AuthEvent::AuthenticationFailed {
                address: None,
                reason: AuthFailure::Expired,
            },
            AuthEvent::LoginSucceeded {
                db: 1,
                identity: alice(),
                token_id: 2,
                address: None,
            },
            AuthEvent::LoginFailed {
                db: 1,
                identity: alice(),
                address: None,
                reason: LoginFailure::NoCredential,
            },
            AuthEvent::LoginThrottled {
                db: 1,
                identity: alice(),
                address: None,
                retry_after: Duration::ZERO,
                locked: false,
            },
            AuthEvent::PasswordChanged {
                db: 1,
                identity: alice(),
            },
            AuthEvent::MfaEnrolled {
                db: 1,
                identity: alice(),
            },
            AuthEvent::MfaDisabled {
                db: 1,
                identity: alice(),
            },
            AuthEvent::MfaFailed {
                db: 1,
                identity: alice(),
                address: None,
                reason: MfaFailure::Replayed,
            },
            AuthEvent::KeyCreated { db: 1, key_id: 1 },
            AuthEvent::KeyDeleted { db: 1, key_id: 1 },
            AuthEvent::TokenCreated {
                db: 1,
                token_id: 1,
                identity: alice(),
            },
            AuthEvent::TokenDeleted { db: 1, token_id: 1 },
        ];
        let names: std::collections::HashSet<_> = events.iter().map(AuthEvent::name).collect();
        assert_eq!(names.len(), events.len());
    }
}
