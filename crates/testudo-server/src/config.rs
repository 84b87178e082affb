//! The server's limits and timeouts, with their defaults.
//!
//! **Invariants:** every resource a client can make the server hold (bytes, time, streams,
//! connections) has a finite limit here; defaults are safe for an internet-facing server.

use std::sync::Arc;
use std::time::Duration;

use testudo_audit::AuditSink;

use crate::metrics::Metrics;

/// Limits of the HTTP server. `ServerConfig::default()` documents every default.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The largest request body accepted; larger ones get 413 `request_size_exceeded`
    /// without being buffered. Default 8 MiB.
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers over HTTP/1.1 — which is also
    /// how long an idle keep-alive connection stays open — and how long a new connection of
    /// either protocol may take to start its first request (slowloris). Default 30 s.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request body. Default 60 s.
    pub body_read_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection (drivers open up to 100). Default 1024.
    pub max_concurrent_streams: u32,
    /// Connections served at once; later clients wait in the listen backlog. Default 10 000.
    pub max_connections: usize,
    /// The largest request head (HTTP/1.1 buffer, HTTP/2 header list). Default 64 KiB.
    pub max_header_bytes: usize,
    /// How long in-flight requests may take to finish once shutdown begins; connections still
    /// open then are closed. Engine calls already running always finish. Default 30 s.
    pub shutdown_grace_period: Duration,
    /// Where one record per request goes (every endpoint except `/ping`). Default: none.
    pub audit: Option<Arc<dyn AuditSink>>,
    /// Request counters and latency histograms, rendered by [`crate::serve_metrics`].
    /// Always collected (a few atomic adds and one short lock per request).
    pub metrics: Arc<Metrics>,
    /// Queries that take at least this long are logged at `warn` with target
    /// `testudo::slow_query`. Default: none.
    pub slow_query: Option<Duration>,
    /// The least time the answer to a query refused by its database's rate limits is held
    /// back (the connection waits; no thread does), so that a client flooding in a loop is
    /// slowed to its answers' pace instead of taking the CPU its neighbours need
    /// (`refusals.rs`). Default 20 ms; zero answers at once. At most 5 s.
    pub refusal_delay: Duration,
    /// The most refusals a second answered for one database: more are held back further,
    /// so a flood over many connections is paced too. Default 1 000; zero: no pacing by
    /// rate (only `refusal_delay`).
    pub refusals_per_second: u32,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_body_bytes: 8 * 1024 * 1024,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_concurrent_streams: 1024,
            max_connections: 10_000,
            max_header_bytes: 64 * 1024,
            shutdown_grace_period: Duration::from_secs(30),
            audit: None,
            metrics: Arc::new(Metrics::default()),
            slow_query: None,
            refusal_delay: Duration::from_millis(20),
            refusals_per_second: 1000,
        }
    }
}
