//! Routing: one endpoint per file, and the per-request span.
//!
//! | path | methods | file |
//! |---|---|---|
//! | `/query/1` | POST | `query.rs` |
//! | `/ping` | GET, HEAD | `ping.rs` |
//! | `/feed/1` | POST | `feed.rs` |
//! | `/stream/1` | POST | `stream.rs` |
//!
//! Any other path is 404 `not_found`; a known path with another method is 405
//! `method_not_allowed` with an `Allow` header.
//!
//! **Invariants:** every response carries a `traceparent`; the span records method, path,
//! traceparent, status and duration, and never a header value other than the traceparent,
//! a secret or a query argument; every request is observed once (`observe.rs`: metrics,
//! audit record, slow-query log) after its response is built.

mod feed;
mod ping;
mod query;
mod stream;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{ALLOW, HeaderValue};
use http::{Method, Request, Response};
use hyper::body::Body;
use tracing::Instrument;
use tracing::field::Empty;

use crate::error::ProtocolError;
use crate::observe::{self, Answered, ErrorOutcome, RequestFacts};
use crate::response::{ResponseBody, protocol_error};
use crate::server::{AppState, PeerAddr};
use crate::trace;

/// Handles one request, whatever it is.
pub async fn dispatch<B>(state: Arc<AppState>, request: Request<B>) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let started = Instant::now();
    let traceparent = trace::traceparent(request.headers());
    let client = request.extensions().get::<PeerAddr>().map(|peer| peer.0);
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %path,
        traceparent = %traceparent,
        status = Empty,
        duration_ms = Empty,
    );
    async move {
        tracing::debug!("request started");
        let mut response = route(&state, request, &traceparent, started).await;
        let elapsed = started.elapsed();
        let span = tracing::Span::current();
        span.record("status", response.status().as_u16());
        span.record("duration_ms", elapsed.as_secs_f64() * 1000.0);
        tracing::info!("request finished");
        let extensions = response.extensions_mut();
        let mut facts = extensions.remove::<RequestFacts>().unwrap_or_default();
        if facts.outcome.is_none() {
            facts.outcome = extensions.remove::<ErrorOutcome>().map(|e| e.0);
        }
        observe::answered(
            &state,
            Answered {
                endpoint: observe::endpoint(&path),
                path: &path,
                status: response.status().as_u16(),
                elapsed,
                client,
                traceparent: &traceparent,
                facts,
            },
        );
        response
    }
    .instrument(span)
    .await
}

async fn route<B>(
    state: &Arc<AppState>,
    request: Request<B>,
    traceparent: &str,
    started: Instant,
) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let method = request.method();
    match request.uri().path() {
        "/query/1" if method == Method::POST => {
            query::handle(state, request, traceparent, started).await
        }
        "/query/1" => method_not_allowed("POST", traceparent),
        "/ping" if method == Method::GET || method == Method::HEAD => {
            ping::handle(method == Method::HEAD, traceparent)
        }
        "/ping" => method_not_allowed("GET, HEAD", traceparent),
        "/feed/1" if method == Method::POST => feed::handle(traceparent),
        "/feed/1" => method_not_allowed("POST", traceparent),
        "/stream/1" if method == Method::POST => stream::handle(traceparent),
        "/stream/1" => method_not_allowed("POST", traceparent),
        _ => protocol_error(&ProtocolError::not_found(), None, traceparent),
    }
}

fn method_not_allowed(allow: &'static str, traceparent: &str) -> Response<ResponseBody> {
    let mut response = protocol_error(&ProtocolError::method_not_allowed(), None, traceparent);
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    response
}
