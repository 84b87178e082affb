//! The engine's public surface: what the server hands in and gets back.
//!
//! The server owns the wire protocol (headers, JSON bodies, HTTP statuses); the engine owns
//! everything between an authenticated request and a materialized result.

use std::time::{Duration, Instant};

use testudo_model::json::Format;
use testudo_model::{CollId, DbId, DocId, Input, Output, Ts};

/// One piece of a query template: source text, or a value placeholder.
#[derive(Clone, Debug, PartialEq)]
pub enum Fragment {
    Text(String),
    Value(Input),
}

/// What to run and how. Built by the server from the request body and headers.
#[derive(Clone, Debug)]
pub struct QueryRequest {
    /// The query, as a template (a plain string query is one `Text` fragment).
    pub fragments: Vec<Fragment>,
    /// Request `arguments`, bound as top-level variables.
    pub arguments: Vec<(String, Input)>,
    /// The format results (and `abort` values) will be encoded in.
    pub format: Format,
    /// `X-Typecheck`; `None` uses the database default.
    pub typecheck: Option<bool>,
    /// `X-Linearized`.
    pub linearized: bool,
    /// When the client stops waiting (from `X-Query-Timeout-Ms`).
    pub deadline: Instant,
    /// The timeout the client asked for, for messages.
    pub timeout: Duration,
    /// `X-Max-Contention-Retries`: how many times a conflicting write is re-run.
    pub max_contention_retries: u32,
    /// `X-Last-Txn-Ts`: the client has seen this timestamp.
    pub last_txn_ts: Option<Ts>,
    /// The client's network address (login throttling and audit; never trusted for
    /// authorization).
    pub client: Option<std::net::IpAddr>,
}

/// Who is asking: the result of authenticating a secret. Every query runs inside exactly one
/// database, chosen here and never switched during the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub db: DbId,
    pub role: Role,
    /// The identity document of a token: `(collection, document)` ids.
    pub identity: Option<(CollId, DocId)>,
    /// The token document a token secret stands for.
    pub token: Option<DocId>,
    /// What authenticated, for audit (never the secret itself).
    pub credential: Credential,
    /// The database's path of names from the root (`""` is the root), resolved once when
    /// the secret was authenticated (and cached with it), for audit records; `None` when
    /// it could not be resolved.
    pub path: Option<std::sync::Arc<str>>,
}

impl Scope {
    /// Full rights in `db`, as the root secret has in the root database.
    pub fn admin(db: DbId) -> Scope {
        Scope {
            db,
            role: Role::Admin,
            identity: None,
            token: None,
            credential: Credential::Root,
            path: (db == DbId::ROOT).then(crate::audit::root_path),
        }
    }
}

/// The kind of secret a request authenticated with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    Root,
    Key {
        db: DbId,
        id: DocId,
    },
    Token {
        db: DbId,
        id: DocId,
    },
    /// A JWT from the access provider `provider` of database `db`.
    Jwt {
        db: DbId,
        provider: DocId,
    },
}

/// A verified JWT: the access provider that accepted it and its claims.
#[derive(Clone, Debug)]
pub struct JwtIdentity {
    pub provider: DocId,
    /// The token's payload, as `Query.token()` returns it.
    pub claims: testudo_model::Data,
    /// The `iss` and `sub` claims when they are strings: what the audit log names the
    /// credential by, taken out once so that each request's record shares them.
    pub iss: Option<std::sync::Arc<str>>,
    pub sub: Option<std::sync::Arc<str>>,
}

impl JwtIdentity {
    pub fn new(provider: DocId, claims: testudo_model::Data) -> JwtIdentity {
        let claim = |name: &str| match &claims {
            testudo_model::Data::Object(fields) => match fields.get(name) {
                Some(testudo_model::Data::String(text)) => {
                    Some(std::sync::Arc::from(text.as_str()))
                }
                _ => None,
            },
            _ => None,
        };
        let (iss, sub) = (claim("iss"), claim("sub"));
        JwtIdentity {
            provider,
            claims,
            iss,
            sub,
        }
    }
}

impl PartialEq for JwtIdentity {
    fn eq(&self, other: &Self) -> bool {
        self.provider == other.provider && self.claims == other.claims
    }
}

// Claims come from JSON, which has no NaN: equality is reflexive.
impl Eq for JwtIdentity {}

/// The rights a secret carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    Server,
    ServerReadOnly,
    /// The legacy `client` role: no rights at all.
    Client,
    /// A user-defined role (a key's); a role that does not exist grants nothing.
    Custom(String),
    /// A token whose identity belongs to no role: only the baseline rights every token has
    /// (read its own credential, read and delete its own tokens).
    Token,
    /// A JWT: the roles its access provider grants, decided at each query.
    Jwt(std::sync::Arc<JwtIdentity>),
}

/// The outcome of one query, success or query error. Always carries the fields Fauna sends
/// on both (`summary`, `txn_ts`, `stats`, `schema_version`).
#[derive(Clone, Debug)]
pub struct QueryResponse {
    pub outcome: Result<Output, QueryError>,
    pub summary: String,
    /// The transaction timestamp: the commit timestamp of a write, the snapshot timestamp of
    /// a read. [`Output::TxnTime`] in the result encodes as this instant.
    pub txn_ts: Ts,
    pub stats: Stats,
    /// The timestamp of the last schema change of the database.
    pub schema_version: Ts,
}

/// Per-query statistics, exactly Fauna's keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub compute_ops: u64,
    pub read_ops: u64,
    pub write_ops: u64,
    pub query_time_ms: u64,
    pub contention_retries: u32,
    pub storage_bytes_read: u64,
    pub storage_bytes_write: u64,
    pub rate_limits_hit: Vec<&'static str>,
}

/// A query error: Fauna's `error` object. Which HTTP status it maps to is the server's call.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryError {
    pub code: ErrorCode,
    pub message: String,
    /// The value passed to `abort()`, when `code` is [`ErrorCode::Abort`].
    pub abort: Option<Output>,
    pub constraint_failures: Vec<ConstraintFailure>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConstraintFailure {
    pub message: String,
    pub paths: Vec<Vec<PathElem>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PathElem {
    Field(String),
    Index(i64),
}

/// Every error code a query can end with. The server maps each to an HTTP status in one
/// exhaustive `match`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidQuery,
    InvalidRequest,
    InvalidArgument,
    InvalidType,
    Abort,
    ConstraintFailure,
    DocumentNotFound,
    DocumentDeleted,
    DocumentIdExists,
    InvalidDocumentId,
    NullValue,
    InvalidNullAccess,
    DivideByZero,
    UnboundVariable,
    InvalidFunctionInvocation,
    TypeMismatch,
    InvalidCursor,
    IndexOutOfBounds,
    InvalidBounds,
    InvalidDate,
    InvalidTime,
    InvalidUnit,
    InvalidRegex,
    InvalidWrite,
    InvalidSchema,
    InvalidEffect,
    InvalidId,
    InvalidReceiver,
    InvalidIndexInvocation,
    InvalidComputedFieldAccess,
    InvalidSecret,
    PermissionDenied,
    ValueTooLarge,
    StackOverflow,
    DisabledFeature,
    EvalError,
    /// The query ran out of time (`X-Query-Timeout-Ms`).
    TimeOut,
    /// A write kept conflicting with concurrent writes after every allowed retry.
    ContendedTransaction,
    /// A limit on the query's resources (not a rate limit).
    LimitExceeded,
    /// A fault inside the server (storage failure); never caused by the query's text.
    Internal,
    /// The secret stopped being valid between authentication and the query (its token's
    /// identity document was deleted): answered like any unauthenticated request.
    Unauthorized,
}

impl ErrorCode {
    /// Fauna's code string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidQuery => "invalid_query",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::InvalidType => "invalid_type",
            ErrorCode::Abort => "abort",
            ErrorCode::ConstraintFailure => "constraint_failure",
            ErrorCode::DocumentNotFound => "document_not_found",
            ErrorCode::DocumentDeleted => "document_deleted",
            ErrorCode::DocumentIdExists => "document_id_exists",
            ErrorCode::InvalidDocumentId => "invalid_document_id",
            ErrorCode::NullValue => "null_value",
            ErrorCode::InvalidNullAccess => "invalid_null_access",
            ErrorCode::DivideByZero => "divide_by_zero",
            ErrorCode::UnboundVariable => "unbound_variable",
            ErrorCode::InvalidFunctionInvocation => "invalid_function_invocation",
            ErrorCode::TypeMismatch => "type_mismatch",
            ErrorCode::InvalidCursor => "invalid_cursor",
            ErrorCode::IndexOutOfBounds => "index_out_of_bounds",
            ErrorCode::InvalidBounds => "invalid_bounds",
            ErrorCode::InvalidDate => "invalid_date",
            ErrorCode::InvalidTime => "invalid_time",
            ErrorCode::InvalidUnit => "invalid_unit",
            ErrorCode::InvalidRegex => "invalid_regex",
            ErrorCode::InvalidWrite => "invalid_write",
            ErrorCode::InvalidSchema => "invalid_schema",
            ErrorCode::InvalidEffect => "invalid_effect",
            ErrorCode::InvalidId => "invalid_id",
            ErrorCode::InvalidReceiver => "invalid_receiver",
            ErrorCode::InvalidIndexInvocation => "invalid_index_invocation",
            ErrorCode::InvalidComputedFieldAccess => "invalid_computed_field_access",
            ErrorCode::InvalidSecret => "invalid_secret",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::ValueTooLarge => "value_too_large",
            ErrorCode::StackOverflow => "stack_overflow",
            ErrorCode::DisabledFeature => "disabled_feature",
            ErrorCode::EvalError => "eval_error",
            ErrorCode::TimeOut => "time_out",
            ErrorCode::ContendedTransaction => "contended_transaction",
            ErrorCode::LimitExceeded => "limit_exceeded",
            ErrorCode::Internal => "internal_error",
            ErrorCode::Unauthorized => "unauthorized",
        }
    }
}

/// Why a secret was refused. Deliberately says nothing about *which* check failed: the
/// client always sees the same 401.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("access token required")]
pub struct Unauthorized;
