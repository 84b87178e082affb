//! The records of the audit log: one per request and one per security decision.
//!
//! These are plain data with no dependency on the engine or the server, so both can build
//! them. Ids are the numeric ids of the engine (`DbId`, `DocId`), timestamps microseconds.
//!
//! A request record is built on the query path for every request and dropped on the writer
//! thread, so its usual fields own no heap memory: fixed texts are `Cow::Borrowed`
//! (`endpoint`, [`Outcome::code`]), the trace id and the query hash are inline ([`TraceId`],
//! [`QueryHash`]), the database's path, a JWT's names and the query tags are shared
//! (`Arc<str>`) with the scope and the request.
//! A block allocated on one thread and freed on another is what glibc's per-thread arenas
//! handle worst (docs/BENCHMARKS.md, "Audit log on vs off").
//!
//! **Invariants:** no type here has a field for a secret, a password, a query's text or its
//! arguments — a record names a credential by its id and a query by the SHA-256 of its text
//! ([`query_hash`]); every field a producer may not know is an `Option` (absent from the
//! JSON), never a made-up value.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Something worth recording. The sink stamps the wall-clock time when it receives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuditEvent {
    /// One HTTP request, whatever its outcome (emitted by the server).
    Request(RequestRecord),
    /// A presented secret, token or JWT that was refused.
    AuthFailure(AuthFailure),
    /// A read, write or call the gate refused.
    Denied(Denial),
    /// A call of a function that runs with its own role instead of the caller's.
    ElevatedCall(ElevatedCall),
    /// A change to schema, roles, keys, tokens, credentials, access providers or databases.
    Change(Change),
    /// A login (`Credential.login`, a JWT's first use) or logout.
    Login(Login),
    /// An MFA enrolment, verification or removal.
    Mfa(Mfa),
    /// A backup taken or restored.
    Backup(BackupRecord),
}

impl AuditEvent {
    /// The database the event concerns, when the producer knew it.
    pub fn database(&self) -> Option<&DatabaseRef> {
        match self {
            AuditEvent::Request(r) => r.database.as_ref(),
            AuditEvent::AuthFailure(r) => r.database.as_ref(),
            AuditEvent::Denied(r) => Some(&r.database),
            AuditEvent::ElevatedCall(r) => Some(&r.database),
            AuditEvent::Change(r) => Some(&r.database),
            AuditEvent::Login(r) => Some(&r.database),
            AuditEvent::Mfa(r) => Some(&r.database),
            AuditEvent::Backup(r) => r.database.as_ref(),
        }
    }
}

/// A database: its immutable id and, when the producer resolved it, its path of names from
/// the root (`""` is the root, `"app/tenant1"` a grandchild).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseRef {
    pub id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Arc<str>>,
}

impl DatabaseRef {
    pub fn id(id: u64) -> DatabaseRef {
        DatabaseRef { id, path: None }
    }
}

/// What authenticated a request — never the secret itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CredentialRef {
    /// The root secret given to `testudo serve`.
    Root,
    /// A key document `id` of database `database`.
    Key { database: u64, id: u64 },
    /// A token document `id` of database `database`, with its identity document
    /// (`collection`, `document`) when it has one.
    Token {
        database: u64,
        id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity: Option<(u64, u64)>,
    },
    /// A JWT accepted by access provider `provider`, named by its issuer and subject claims
    /// (shared with the authenticated identity: naming them allocates nothing).
    Jwt {
        database: u64,
        provider: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        iss: Option<Arc<str>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sub: Option<Arc<str>>,
    },
    /// Authenticated, but the producer could not say by what (a credential kind this
    /// version of the recorder does not know).
    Other,
}

/// How a request or decision ended: `"ok"`, or a Fauna error code such as
/// `"permission_denied"` or `"unauthorized"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Outcome(pub Cow<'static, str>);

impl Outcome {
    pub fn ok() -> Outcome {
        Outcome(Cow::Borrowed("ok"))
    }

    /// A code known at compile time: no allocation.
    pub fn code(code: &'static str) -> Outcome {
        Outcome(Cow::Borrowed(code))
    }

    pub fn error(code: &str) -> Outcome {
        Outcome(Cow::Owned(code.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_ok(&self) -> bool {
        self.0 == "ok"
    }
}

/// A W3C trace id: the 32 lowercase hex digits of a `traceparent`'s second field, kept
/// inline. Written to JSON as a string.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceId([u8; 32]);

impl TraceId {
    /// `text` when it is exactly 32 lowercase hex digits.
    pub fn parse(text: &str) -> Option<TraceId> {
        let digits: [u8; 32] = text.as_bytes().try_into().ok()?;
        digits
            .iter()
            .all(|&b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            .then_some(TraceId(digits))
    }

    pub fn as_str(&self) -> &str {
        // Only `parse` makes one, and it admits ASCII only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The 32 hex digits, without `as_str`'s UTF-8 check (the writer's hot path).
    pub fn digits(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for TraceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TraceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TraceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<TraceId, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        TraceId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("a trace id is 32 lowercase hex digits"))
    }
}

/// The operations a query used, as its `stats` report them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ops {
    pub compute: u64,
    pub read: u64,
    pub write: u64,
    #[serde(default)]
    pub contention_retries: u32,
}

/// One HTTP request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// `"/query/1"`, or whatever path the client asked for.
    pub endpoint: Cow<'static, str>,
    /// The HTTP status answered.
    pub status: u16,
    pub outcome: Outcome,
    /// Microseconds from the request's arrival to its response.
    pub duration_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<IpAddr>,
    /// Absent when the request never authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialRef>,
    /// The transaction timestamp (µs), when a query ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_ts: Option<u64>,
    /// [`query_hash`] of the query's FQL text (never its arguments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_hash: Option<QueryHash>,
    /// The client's `X-Query-Tags`, as sent (shared with the request that echoes them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<Ops>,
    /// The W3C trace id (the second field of `traceparent`), to join logs and traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<TraceId>,
}

/// A refused secret, token or JWT. `credential` is set when the secret named a real key or
/// token (a revoked or wrongly verified one), never from what the client merely claimed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthFailure {
    /// Why, in a few words (`"unknown secret"`, `"revoked key"`, `"expired token"`,
    /// `"jwt signature"`); never the secret.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialRef>,
}

/// A refused action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    pub database: DatabaseRef,
    pub credential: CredentialRef,
    /// The role in force (`"server"`, a custom role's name, ...).
    pub role: String,
    /// `"read"`, `"write"`, `"create"`, `"delete"`, `"history_read"`, `"call"`, ...
    pub action: String,
    /// The collection, document (`"Books/123"`) or function the action was on.
    pub resource: String,
    /// Why (`"no privilege"`, `"predicate false"`, `"predicate error"`).
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_ts: Option<u64>,
}

/// A function call that ran with the function's role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElevatedCall {
    pub database: DatabaseRef,
    pub credential: CredentialRef,
    pub function: String,
    /// The role the function runs with.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn_ts: Option<u64>,
}

/// A committed change to a security- or schema-relevant object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub database: DatabaseRef,
    pub credential: CredentialRef,
    /// `"collection"`, `"index"`, `"function"`, `"role"`, `"key"`, `"token"`,
    /// `"credential"`, `"access_provider"`, `"database"`.
    pub object: String,
    /// The object's name or id.
    pub name: String,
    /// `"create"`, `"update"`, `"delete"`.
    pub action: String,
    /// The commit timestamp (µs).
    pub txn_ts: u64,
}

/// A login attempt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub database: DatabaseRef,
    /// The identity document (`collection`, `document`), when it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<(u64, u64)>,
    /// `"password"`, `"jwt"`, `"logout"`, ...
    pub method: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<IpAddr>,
    /// The token issued, when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
}

/// An MFA event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mfa {
    pub database: DatabaseRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<(u64, u64)>,
    /// `"enrol"`, `"verify"`, `"remove"`.
    pub action: String,
    pub outcome: Outcome,
}

/// A backup or a restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// `"backup"` or `"restore"`.
    pub operation: String,
    /// Where it was written or read from (a path or URL without credentials).
    pub target: String,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseRef>,
    /// Who asked for it (absent: the server's own schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialRef>,
    /// The snapshot timestamp (µs) of the backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_ts: Option<u64>,
}

/// The SHA-256 of a query's text: identifies repeated queries without keeping their text
/// (which may embed literals the client considers private). Kept as its 32 bytes and written
/// as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueryHash([u8; 32]);

impl QueryHash {
    /// Parses 64 lowercase hex digits, the form [`QueryHash`] is written in.
    pub fn parse(text: &str) -> Option<QueryHash> {
        crate::chain::parse_link(text).map(QueryHash)
    }

    /// The 64 hex digits, without allocating.
    pub fn hex(&self) -> [u8; 64] {
        crate::chain::hex_link(&self.0)
    }
}

impl std::fmt::Display for QueryHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = self.hex();
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&hex).unwrap_or_default())
    }
}

impl std::fmt::Debug for QueryHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl Serialize for QueryHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let hex = self.hex();
        serializer.serialize_str(std::str::from_utf8(&hex).unwrap_or_default())
    }
}

impl<'de> Deserialize<'de> for QueryHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<QueryHash, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        QueryHash::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("a query hash is 64 lowercase hex digits"))
    }
}

/// The [`QueryHash`] of a query's text.
pub fn query_hash(text: &[u8]) -> QueryHash {
    query_hash_of(ring::digest::digest(&ring::digest::SHA256, text))
}

/// [`query_hash`] of a query template: its text fragments in order, each interpolated value
/// standing as one NUL byte (values are arguments, never hashed). A plain string query —
/// one text fragment — hashes like [`query_hash`] of its text.
pub fn query_hash_parts<'a>(parts: impl IntoIterator<Item = Option<&'a str>>) -> QueryHash {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(part.map_or(&[0u8][..], str::as_bytes));
    }
    query_hash_of(ctx.finish())
}

fn query_hash_of(digest: ring::digest::Digest) -> QueryHash {
    let mut bytes = [0u8; 32];
    // SHA-256 digests are 32 bytes.
    bytes.copy_from_slice(&digest.as_ref()[..32]);
    QueryHash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_32_lowercase_hex_digits_and_travel_as_strings() {
        let id = "4bf92f3577b34da6a3ce929d0e0e4736";
        let parsed = TraceId::parse(id).unwrap();
        assert_eq!(parsed.as_str(), id);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), format!("\"{id}\""));
        let back: TraceId = serde_json::from_str(&format!("\"{id}\"")).unwrap();
        assert_eq!(back, parsed);
        for bad in [
            "",
            "4BF92F3577B34DA6A3CE929D0E0E4736",
            &id[1..],
            "g".repeat(32).as_str(),
        ] {
            assert_eq!(TraceId::parse(bad), None, "{bad}");
        }
        assert!(serde_json::from_str::<TraceId>("\"x\"").is_err());
    }

    #[test]
    fn a_plain_query_hashes_like_its_text_and_values_do_not_count() {
        assert_eq!(query_hash_parts([Some("1 + 1")]), query_hash(b"1 + 1"));
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(query_hash(b"").to_string(), empty);
        assert_eq!(
            serde_json::to_string(&query_hash(b"")).unwrap(),
            format!("\"{empty}\"")
        );
        let back: QueryHash = serde_json::from_str(&format!("\"{empty}\"")).unwrap();
        assert_eq!(back, query_hash(b""));
        for bad in [&empty[1..], &empty.to_uppercase(), "zz"] {
            assert_eq!(QueryHash::parse(bad), None, "{bad}");
        }
        let template = query_hash_parts([Some("Books.byId("), None, Some(")")]);
        assert_ne!(template, query_hash(b"Books.byId()"));
        assert_eq!(
            template,
            query_hash_parts([Some("Books.byId("), None, Some(")")])
        );
    }
}
