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
use testudo_engine::QueryRequest;

use crate::auth::presented_secret;
use crate::body::read_body;
use crate::error::ProtocolError;
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
    let (parts, body) = request.into_parts();
    let client = parts
        .extensions
        .get::<crate::server::PeerAddr>()
        .map(|p| p.0);
    let tags = match parse_query_tags(&parts.headers) {
        Ok(tags) => tags,
        Err(err) => return protocol_error(&err, None, traceparent),
    };
    match run(state, &parts.headers, body, tags.clone(), started, client).await {
        Ok((status, json)) => json_response(status, json, traceparent),
        Err(err) => protocol_error(&err, tags.as_deref(), traceparent),
    }
}

async fn run<B>(
    state: &Arc<AppState>,
    headers: &http::HeaderMap,
    body: B,
    tags: Option<String>,
    started: Instant,
    client: Option<std::net::IpAddr>,
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

    let config = &state.config;
    let bytes = read_body(
        headers,
        body,
        config.max_body_bytes,
        config.body_read_timeout,
    )
    .await?;

    let engine = Arc::clone(&state.engine);
    state
        .blocking(move || {
            // Parsing a large body is CPU work too: it stays off the reactor with the query.
            let body = parse_query_body(&bytes, options.format)?;
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
            let response = engine.query(&scope, request);
            if let Err(e) = &response.outcome
                && e.code == testudo_engine::ErrorCode::Unauthorized
            {
                return Err(ProtocolError::unauthorized());
            }
            Ok(write_query_response(
                &response,
                options.format,
                tags.as_deref(),
            ))
        })
        .await?
}
