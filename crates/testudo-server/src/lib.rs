//! The Fauna v10 wire protocol over HTTP: `POST /query/1`, `GET`/`HEAD /ping`, and (soon)
//! `/feed/1` and `/stream/1`, on HTTP/1.1 and HTTP/2 on one port: cleartext (HTTP/2 by prior
//! knowledge) or TLS 1.2/1.3 (HTTP/2 by ALPN).
//!
//! The server owns everything about the wire — headers, JSON bodies, query templates, HTTP
//! statuses, timeouts and size limits — and nothing about queries: it authenticates through
//! `Engine::authenticate`, hands a [`testudo_engine::QueryRequest`] to `Engine::query` on a
//! blocking thread and writes the [`testudo_engine::QueryResponse`] back.
//!
//! Map: `server.rs` (accept loop, TLS handshakes, connections, graceful shutdown), `tls.rs`
//! (certificates and keys, reload), `routes/` (one endpoint
//! per file), `request.rs` (headers), `auth.rs` (the secret), `body.rs` (bounded body
//! reading), `query_body.rs` + `template.rs` (the JSON body and the template grammar),
//! `response.rs` (JSON writing), `error.rs` (the one mapping to HTTP statuses and codes),
//! `observe.rs` (per-request metrics, audit record and slow-query log), `metrics.rs` (the
//! counters and the `/metrics` listener), `refusals.rs` (when a rate-limit refusal is
//! answered).
//!
//! **Invariants:** no engine call on the reactor; no unbounded read, wait or buffer driven by
//! a client; no secret, `Authorization` header or query argument in the logs; no response
//! field outside Fauna's sets; Fauna code strings only in `error.rs` (and the engine's
//! `ErrorCode::as_str`).

mod auth;
mod body;
mod config;
mod error;
mod inflight;
mod metrics;
mod observe;
mod query_body;
mod refusals;
mod request;
mod response;
mod routes;
mod server;
mod template;
mod tls;
mod trace;

pub use config::ServerConfig;
pub use error::{ProtocolCode, ProtocolError};
pub use metrics::{HistogramValue, Metrics, serve_metrics};
pub use request::{DEFAULT_QUERY_TIMEOUT, MAX_QUERY_TIMEOUT_MS};
pub use server::{ServeError, serve, serve_tls};
pub use tls::{
    TlsConfig, TlsError, TlsFiles, read_certificates as read_tls_certificates,
    read_key as read_tls_key,
};
