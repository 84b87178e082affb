//! The audit log: what happened, who did it and how it ended, in a form an operator can
//! trust after the fact.
//!
//! - `event.rs`: the typed records ([`AuditEvent`]): one per request, one per security
//!   decision (authentication failures, denials, elevated calls, schema/role/key/database
//!   changes, logins, MFA, backups).
//! - `sink.rs`: [`AuditSink`], the interface the engine and the server record through;
//!   [`MemorySink`] for tests.
//! - `writer.rs`: [`AuditWriter`], the file-backed sink: bounded queue, background thread,
//!   segment rotation, seals, retention.
//! - `segment.rs`: the file format (`encode.rs`: record bodies as JSON); `chain.rs`: the hash
//!   chain (BLAKE3, keyed under the operator's key when one is configured; segments written
//!   by earlier versions with SHA-256 or HMAC-SHA256 still verify).
//! - `verify.rs`: [`verify`] walks every segment and names the first bad record.
//! - `read.rs`: [`read_records`] and [`Filter`], behind `testudo audit tail` and `export`.
//! - `seal.rs`: encrypted segments; `rewrap.rs`: [`rewrap`], which moves the segments' data
//!   keys to a new master key after a rotation (readers consult its file).
//!
//! **Invariants:** no record carries a secret, a password, a query's text or its arguments;
//! recording never does I/O on the caller's thread; a log this crate wrote verifies until
//! someone changes it, and `verify` then reports the first record that no longer fits.
//! This crate knows nothing of the engine, the server or the storage: it takes key material
//! as plain bytes.

mod chain;
mod encode;
mod event;
mod read;
mod rewrap;
mod seal;
mod segment;
mod sink;
mod time;
mod verify;
mod writer;

pub use chain::{ChainChoice, GENESIS};
pub use event::{
    AuditEvent, AuthFailure, BackupRecord, Change, CredentialRef, DatabaseRef, Denial,
    ElevatedCall, Login, Mfa, Ops, Outcome, QueryHash, RequestRecord, TraceId, query_hash,
    query_hash_parts,
};
pub use read::{Filter, ReadError, ReadSummary, read_records, tail};
pub use rewrap::{KEYS_FILE, RewrapError, RewrapReport, rewrap};
pub use seal::{AeadKey, SegmentKeys};
pub use sink::{AuditSink, MemorySink, SinkStats};
pub use time::{format_us, now_us, parse_since};
pub use verify::{Problem, VerifyError, VerifyReport, verify};
pub use writer::{AuditWriter, OpenError, WhenFull, WriterConfig};
