//! `POST /query/1`: run one FQL query.
//!
//! Order of checks: `X-Query-Tags` (so later errors can echo the tags), the other headers,
//! the secret, then the body. The secret is checked before the body is read, so an
//! unauthenticated client cannot make the server buffer a large body.
//!
//! **Invariants:** the engine's queries and any storage access run on a blocking thread, never
//! on the reactor (only `authenticate_fast`, which touches no storage, runs here);
//! a running query is never abandoned (the engine enforces the deadline and decides whether a
//! write committed — if the client goes away, the result is dropped after the fact); the
//! deadline counts from the moment the request arrived.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::Body;
use testudo_audit::{Ops, QueryHash, query_hash_parts};
use testudo_engine::{Fragment, QueryRequest};

use crate::auth::presented_secret;
use crate::body::read_body;
use crate::error::ProtocolError;
use crate::observe::RequestFacts;
use crate::query_body::parse_query_body;
use crate::request::{parse_query_headers, parse_query_tags};
use crate::response::{ResponseBody, json_response, protocol_error, write_query_response};
use crate::server::AppState;

pub async fn handle<B>(
    state: &Arc<AppState>,
    request: Request<B>,
    traceparent: &str,
    started: Instant,
) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let _running = state.config.metrics.query_started();
    let (parts, body) = request.into_parts();
    let client = parts
        .extensions
        .get::<crate::server::PeerAddr>()
        .map(|p| p.0);
    let mut facts = RequestFacts::default();
    let mut response = match parse_query_tags(&parts.headers) {
        Err(err) => protocol_error(&err, None, traceparent),
        Ok(tags) => {
            let tags: Option<Arc<str>> = tags.map(Arc::from);
            facts.tags.clone_from(&tags);
            let run = run(state, &parts.headers, body, started, client, &mut facts);
            match run.await {
                Ok((status, json)) => json_response(status, json, traceparent),
                Err(err) => {
                    facts.outcome = Some(err.code.as_str());
                    protocol_error(&err, tags.as_deref(), traceparent)
                }
            }
        }
    };
    response.extensions_mut().insert(facts);
    response
}

/// What the blocking part learned about the query it ran.
struct Ran {
    outcome: &'static str,
    /// Refused by the rate limits (nothing ran).
    refused: bool,
    txn_ts: u64,
    ops: Ops,
    query_hash: Option<QueryHash>,
}

async fn run<B>(
    state: &Arc<AppState>,
    headers: &http::HeaderMap,
    body: B,
    started: Instant,
    client: Option<std::net::IpAddr>,
    facts: &mut RequestFacts,
) -> Result<(http::StatusCode, Vec<u8>), ProtocolError>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let options = parse_query_headers(headers)?;
    let secret = presented_secret(headers).ok_or_else(ProtocolError::unauthorized)?;

    // Most secrets are answered without storage (the root secret, a secret verified
    // before): here, on the network thread. Only a first sight of a key or token needs a
    // storage read, and goes to a blocking thread. (A thread handoff costs more than the
    // rest of a point read: see docs/BENCHMARKS.md.)
    let scope = match state.engine.authenticate_fast(&secret) {
        Some(result) => result,
        None => {
            let engine = Arc::clone(&state.engine);
            state.blocking(move || engine.authenticate(&secret)).await?
        }
    }
    .map_err(|_| ProtocolError::unauthorized())?;
    facts.authenticated(&scope);
    let scope_db = scope.db;

    let config = &state.config;
    let bytes = read_body(
        headers,
        body,
        config.max_body_bytes,
        config.body_read_timeout,
    )
    .await?;

    // A database over its rate limits is refused here when its limits are cached (the
    // usual case), before the body is parsed and without a thread handoff: a flood of
    // refusals costs the server as little as possible.
    let admitted = match state.engine.admit_fast(&scope) {
        None => None,
        Some(Ok(admitted)) => Some(admitted),
        Some(Err(refused)) => {
            facts.outcome = Some(outcome_of(&refused));
            facts.txn_ts = Some(refused.txn_ts.0);
            facts.ops = Some(ops(&refused.stats));
            let written = write_query_response(&refused, options.format, facts.tags.as_deref());
            hold_refusal(state, scope_db).await;
            return Ok(written);
        }
    };

    let engine = Arc::clone(&state.engine);
    let tags = facts.tags.clone();
    let want_hash = config.audit.is_some() || config.slow_query.is_some();
    let (result, ran) = state
        .blocking(move || {
            // Parsing a large body is CPU work too: it stays off the reactor with the query.
            let body = match parse_query_body(&bytes, options.format) {
                Ok(body) => body,
                Err(err) => return (Err(err), None),
            };
            let query_hash = want_hash.then(|| {
                query_hash_parts(body.fragments.iter().map(|fragment| match fragment {
                    Fragment::Text(text) => Some(text.as_str()),
                    Fragment::Value(_) => None,
                }))
            });
            let request = QueryRequest {
                fragments: body.fragments,
                arguments: body.arguments,
                format: options.format,
                typecheck: options.typecheck,
                linearized: options.linearized,
                deadline: started + options.timeout,
                timeout: options.timeout,
                max_contention_retries: options.max_contention_retries,
                last_txn_ts: options.last_txn_ts,
                client,
            };
            let response = match admitted {
                Some(admitted) => engine.query_admitted(&scope, request, admitted),
                None => engine.query(&scope, request),
            };
            let ran = Ran {
                outcome: outcome_of(&response),
                refused: !response.stats.rate_limits_hit.is_empty(),
                txn_ts: response.txn_ts.0,
                ops: ops(&response.stats),
                query_hash,
            };
            if let Err(e) = &response.outcome
                && e.code == testudo_engine::ErrorCode::Unauthorized
            {
                return (Err(ProtocolError::unauthorized()), Some(ran));
            }
            let written = write_query_response(&response, options.format, tags.as_deref());
            (Ok(written), Some(ran))
        })
        .await?;
    if let Some(ran) = ran {
        facts.outcome = Some(ran.outcome);
        facts.txn_ts = Some(ran.txn_ts);
        facts.ops = Some(ran.ops);
        facts.query_hash = ran.query_hash;
        if ran.refused {
            hold_refusal(state, scope_db).await;
        }
    }
    result
}

/// The outcome recorded for a response: `ok` or its error code.
fn outcome_of(response: &testudo_engine::QueryResponse) -> &'static str {
    match &response.outcome {
        Ok(_) => "ok",
        Err(err) => err.code.as_str(),
    }
}

fn ops(stats: &testudo_engine::Stats) -> Ops {
    Ops {
        compute: stats.compute_ops,
        read: stats.read_ops,
        write: stats.write_ops,
        contention_retries: stats.contention_retries,
    }
}

/// Waits until the refusal's slot in its database's refusal schedule (`refusals.rs`).
async fn hold_refusal(state: &AppState, db: testudo_engine::DbId) {
    let owner = state.engine.rate_limit_owner(db);
    let hold = state.refusals.hold(owner, Instant::now());
    if !hold.is_zero() {
        tokio::time::sleep(hold).await;
    }
}
