//! After each response: the request's metrics, its audit record and the slow-query log line,
//! from the facts the handler left in the response's extensions.
//!
//! The query handler knows who asked and what ran (database, credential, transaction time,
//! ops, query hash); `dispatch` knows the status and the duration. [`RequestFacts`] carries
//! the first to the second, so one place emits everything and every request is observed
//! exactly once.
//!
//! **Invariants:** nothing here sees the secret, the query text or its arguments — the
//! facts hold ids and a hash; observing never blocks on I/O (the audit sink queues, the
//! metrics are atomics and one short lock); `/ping` is counted in metrics but not audited
//! (health checks would drown the log).

use std::net::IpAddr;
use std::time::Duration;

use testudo_audit::{
    AuditEvent, CredentialRef, DatabaseRef, Ops, Outcome, QueryHash, RequestRecord, TraceId,
};
use testudo_engine::Scope;

use crate::server::AppState;

/// What a handler learned about its request.
#[derive(Clone, Debug, Default)]
pub struct RequestFacts {
    /// `ok` or the error code; `None` lets `dispatch` derive it from the status.
    pub outcome: Option<&'static str>,
    pub database: Option<u64>,
    /// The database's path (`"app/tenant1"`), when authentication resolved it.
    pub database_path: Option<std::sync::Arc<str>>,
    pub credential: Option<CredentialRef>,
    pub txn_ts: Option<u64>,
    pub query_hash: Option<QueryHash>,
    pub ops: Option<Ops>,
    /// The client's `X-Query-Tags`.
    pub tags: Option<std::sync::Arc<str>>,
}

/// The error code of a protocol error response (set by `response::protocol_error`), used
/// when the handler left no [`RequestFacts`].
#[derive(Clone, Copy, Debug)]
pub struct ErrorOutcome(pub &'static str);

impl RequestFacts {
    /// Records who the request authenticated as.
    pub fn authenticated(&mut self, scope: &Scope) {
        self.database = Some(scope.db.0);
        self.database_path.clone_from(&scope.path);
        self.credential = Some(testudo_engine::audit_credential(scope));
    }
}

/// The endpoint label: the known paths, or `other` (bounded, whatever clients send).
pub fn endpoint(path: &str) -> &'static str {
    match path {
        "/query/1" => "/query/1",
        "/ping" => "/ping",
        "/feed/1" => "/feed/1",
        "/stream/1" => "/stream/1",
        _ => "other",
    }
}

/// One answered request.
pub struct Answered<'a> {
    pub endpoint: &'static str,
    pub path: &'a str,
    pub status: u16,
    pub elapsed: Duration,
    pub client: Option<IpAddr>,
    pub traceparent: &'a str,
    pub facts: RequestFacts,
}

/// Counts, audits and (when slow) logs one answered request.
pub fn answered(state: &AppState, done: Answered<'_>) {
    let facts = done.facts;
    let outcome = facts
        .outcome
        .unwrap_or(if (200..300).contains(&done.status) {
            "ok"
        } else {
            "error"
        });
    let config = &state.config;
    config
        .metrics
        .observe(done.endpoint, outcome, facts.database, done.elapsed);

    if let Some(threshold) = config.slow_query
        && done.endpoint == "/query/1"
        && done.elapsed >= threshold
    {
        let ops = facts.ops.unwrap_or_default();
        // Inside the request span, which carries the traceparent.
        tracing::warn!(
            target: "testudo::slow_query",
            duration_ms = done.elapsed.as_secs_f64() * 1000.0,
            outcome,
            database = facts.database,
            query_hash = facts.query_hash.map(tracing::field::display),
            compute_ops = ops.compute,
            read_ops = ops.read,
            write_ops = ops.write,
            contention_retries = ops.contention_retries,
            "slow query"
        );
    }

    let Some(audit) = &config.audit else { return };
    if done.endpoint == "/ping" {
        return;
    }
    // Built for every request and dropped on the writer thread: the fixed texts are
    // borrowed, the hashes inline and the path shared, so a usual record allocates nothing.
    let endpoint = if done.endpoint == "other" {
        // Unknown paths are recorded (scanners are worth seeing), cut to a sane length.
        done.path.chars().take(256).collect::<String>().into()
    } else {
        done.endpoint.into()
    };
    audit.record(AuditEvent::Request(RequestRecord {
        endpoint,
        status: done.status,
        outcome: Outcome::code(outcome),
        duration_us: u64::try_from(done.elapsed.as_micros()).unwrap_or(u64::MAX),
        client: done.client,
        database: facts.database.map(|id| DatabaseRef {
            id,
            path: facts.database_path.clone(),
        }),
        credential: facts.credential,
        txn_ts: facts.txn_ts,
        query_hash: facts.query_hash,
        tags: facts.tags,
        ops: facts.ops,
        trace_id: done.traceparent.get(3..35).and_then(TraceId::parse),
    }));
}
