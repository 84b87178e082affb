//! Prometheus metrics: counters kept on the request path, rendered as the text exposition
//! format (version 0.0.4, which OpenMetrics scrapers also read) by a separate listener.
//!
//! Series: `testudo_requests_total` and `testudo_request_duration_seconds` (histogram) by
//! `endpoint`, `outcome` (`ok` or the error code) and `database` (the database id, empty
//! before authentication); `testudo_auth_failures_total`; `testudo_denials_total` (queries
//! that ended `permission_denied`); `testudo_queries_in_flight`; and the audit sink's
//! `testudo_audit_queue_depth`, `testudo_audit_records_written_total`,
//! `testudo_audit_records_dropped_total`, `testudo_audit_write_errors_total`. Whoever runs
//! the server adds series read at scrape time from elsewhere (storage size, commit batches,
//! backups) with [`Metrics::register_gauge`], [`Metrics::register_counter`] and
//! [`Metrics::register_histogram`]; a reading of `None` leaves its series out.
//!
//! **Invariants:** the number of series is bounded ([`MAX_SERIES`]; later databases are
//! counted under `database="other"`), so a client cannot grow the server's memory by creating
//! databases; label values are escaped; the metrics listener serves nothing but `GET
//! /metrics`, reads no request body, and holds a bounded number of connections, each for a
//! bounded time.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use testudo_audit::AuditSink;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The most `(endpoint, outcome, database)` series kept.
pub const MAX_SERIES: usize = 4096;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    endpoint: &'static str,
    outcome: &'static str,
    database: Option<u64>,
    /// Set on the overflow series.
    other: bool,
}

#[derive(Debug, Default)]
struct Series {
    count: u64,
    sum_us: u64,
    buckets: [u64; BUCKETS.len()],
}

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<HashMap<Key, Series>>,
    auth_failures: AtomicU64,
    denials: AtomicU64,
    in_flight: AtomicI64,
    extras: Extras,
}

/// A value read at scrape time (`None`: not known now, the series is left out).
pub type Reading = Arc<dyn Fn() -> Option<f64> + Send + Sync>;

/// A histogram read at scrape time.
pub type HistogramReading = Arc<dyn Fn() -> Option<HistogramValue> + Send + Sync>;

/// A histogram's state: `counts[i]` observations at most `bounds[i]` (and above the bound
/// before), then one more count for the rest; not cumulative (rendering accumulates).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramValue {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub sum: f64,
}

enum Extra {
    Scalar {
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        read: Reading,
    },
    Histogram {
        name: &'static str,
        help: &'static str,
        read: HistogramReading,
    },
}

/// Series registered by the embedder, in registration order.
#[derive(Default)]
struct Extras(Mutex<Vec<Arc<Extra>>>);

impl std::fmt::Debug for Extras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |extras| extras.len());
        write!(f, "Extras({n})")
    }
}

/// Counts a query as running until dropped.
#[derive(Debug)]
pub struct InFlightQuery<'a>(&'a Metrics);

impl Drop for InFlightQuery<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Adds a gauge read at every scrape. `name` must be a valid metric name; register
    /// each name once.
    pub fn register_gauge(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> Option<f64> + Send + Sync + 'static,
    ) {
        self.register(Extra::Scalar {
            name,
            help,
            kind: "gauge",
            read: Arc::new(read),
        });
    }

    /// Adds a counter read at every scrape (the reading must never go down).
    pub fn register_counter(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> Option<f64> + Send + Sync + 'static,
    ) {
        self.register(Extra::Scalar {
            name,
            help,
            kind: "counter",
            read: Arc::new(read),
        });
    }

    /// Adds a histogram read at every scrape.
    pub fn register_histogram(
        &self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> Option<HistogramValue> + Send + Sync + 'static,
    ) {
        self.register(Extra::Histogram {
            name,
            help,
            read: Arc::new(read),
        });
    }

    fn register(&self, extra: Extra) {
        if let Ok(mut extras) = self.extras.0.lock() {
            extras.push(Arc::new(extra));
        }
    }

    pub fn query_started(&self) -> InFlightQuery<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightQuery(self)
    }

    /// Counts one answered request.
    pub fn observe(
        &self,
        endpoint: &'static str,
        outcome: &'static str,
        database: Option<u64>,
        elapsed: Duration,
    ) {
        match outcome {
            "unauthorized" => {
                self.auth_failures.fetch_add(1, Ordering::Relaxed);
            }
            "permission_denied" => {
                self.denials.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        let secs = elapsed.as_secs_f64();
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        let mut key = Key {
            endpoint,
            outcome,
            database,
            other: false,
        };
        if series.len() >= MAX_SERIES && !series.contains_key(&key) {
            key.database = None;
            key.other = true;
        }
        let entry = series.entry(key).or_default();
        entry.count += 1;
        entry.sum_us = entry.sum_us.saturating_add(us);
        if let Some(i) = BUCKETS.iter().position(|&bound| secs <= bound)
            && let Some(bucket) = entry.buckets.get_mut(i)
        {
            *bucket += 1;
        }
    }

    /// The text exposition of every series, plus the audit sink's counters.
    pub fn render(&self, audit: Option<&dyn AuditSink>) -> String {
        let mut out = String::with_capacity(4096);
        let mut rows: Vec<(String, u64, u64, [u64; BUCKETS.len()])> = match self.series.lock() {
            Ok(series) => series
                .iter()
                .map(|(key, s)| (labels(key), s.count, s.sum_us, s.buckets))
                .collect(),
            Err(_) => Vec::new(),
        };
        rows.sort_by(|a, b| a.0.cmp(&b.0));

        out.push_str("# HELP testudo_requests_total Requests answered.\n");
        out.push_str("# TYPE testudo_requests_total counter\n");
        for (labels, count, _, _) in &rows {
            let _ = writeln!(out, "testudo_requests_total{{{labels}}} {count}");
        }
        out.push_str("# HELP testudo_request_duration_seconds Time from a request's arrival to its response.\n");
        out.push_str("# TYPE testudo_request_duration_seconds histogram\n");
        for (labels, count, sum_us, buckets) in &rows {
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "testudo_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "testudo_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "testudo_request_duration_seconds_sum{{{labels}}} {}",
                *sum_us as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "testudo_request_duration_seconds_count{{{labels}}} {count}"
            );
        }
        let mut scalar = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        scalar(
            "testudo_auth_failures_total",
            "counter",
            "Requests refused because of their secret.",
            self.auth_failures.load(Ordering::Relaxed).to_string(),
        );
        scalar(
            "testudo_denials_total",
            "counter",
            "Queries that ended with permission_denied.",
            self.denials.load(Ordering::Relaxed).to_string(),
        );
        scalar(
            "testudo_queries_in_flight",
            "gauge",
            "Queries being answered now.",
            self.in_flight.load(Ordering::Relaxed).max(0).to_string(),
        );
        if let Some(audit) = audit {
            let stats = audit.stats();
            scalar(
                "testudo_audit_queue_depth",
                "gauge",
                "Audit records waiting to be written.",
                stats.queue_depth.to_string(),
            );
            scalar(
                "testudo_audit_records_written_total",
                "counter",
                "Audit records written.",
                stats.written.to_string(),
            );
            scalar(
                "testudo_audit_records_dropped_total",
                "counter",
                "Audit records lost because the queue was full.",
                stats.dropped.to_string(),
            );
            scalar(
                "testudo_audit_write_errors_total",
                "counter",
                "Failed writes to the audit log.",
                stats.write_errors.to_string(),
            );
        }
        // Read outside the lock: a reading may look at the file system.
        let extras: Vec<Arc<Extra>> = self
            .extras
            .0
            .lock()
            .map(|extras| extras.clone())
            .unwrap_or_default();
        for extra in extras {
            match extra.as_ref() {
                Extra::Scalar {
                    name,
                    help,
                    kind,
                    read,
                } => {
                    if let Some(value) = read().filter(|v| v.is_finite()) {
                        let _ = writeln!(
                            out,
                            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
                        );
                    }
                }
                Extra::Histogram { name, help, read } => {
                    if let Some(value) = read() {
                        render_histogram(&mut out, name, help, &value);
                    }
                }
            }
        }
        out
    }
}

fn render_histogram(out: &mut String, name: &str, help: &str, value: &HistogramValue) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0u64;
    for (bound, n) in value.bounds.iter().zip(&value.counts) {
        cumulative = cumulative.saturating_add(*n);
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let total = value
        .counts
        .iter()
        .fold(0u64, |sum, n| sum.saturating_add(*n));
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
    let _ = writeln!(out, "{name}_sum {}", value.sum);
    let _ = writeln!(out, "{name}_count {total}");
}

fn labels(key: &Key) -> String {
    let database = match (key.other, key.database) {
        (true, _) => "other".to_owned(),
        (false, Some(id)) => id.to_string(),
        (false, None) => String::new(),
    };
    format!(
        "endpoint=\"{}\",outcome=\"{}\",database=\"{}\"",
        escape(key.endpoint),
        escape(key.outcome),
        escape(&database)
    )
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Connections the metrics listener serves at once.
const METRICS_CONNECTIONS: usize = 16;

/// Serves `GET /metrics` on `listener` (HTTP/1.1) until `shutdown` resolves.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    audit: Option<Arc<dyn AuditSink>>,
    shutdown: impl Future<Output = ()>,
) {
    if let Ok(local) = listener.local_addr() {
        tracing::info!(%local, "serving /metrics");
    }
    let slots = Arc::new(Semaphore::new(METRICS_CONNECTIONS));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_closed) => break,
            },
        };
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::debug!(error = %err, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let metrics = Arc::clone(&metrics);
        let audit = audit.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let response = if request.uri().path() != "/metrics" {
                    plain(StatusCode::NOT_FOUND, "not found\n".to_owned())
                } else if request.method() != Method::GET && request.method() != Method::HEAD {
                    plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".to_owned())
                } else {
                    plain(StatusCode::OK, metrics.render(audit.as_deref()))
                };
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            // A scrape takes milliseconds; nothing holds a slot for long.
            let _ = tokio::time::timeout(Duration::from_secs(30), connection).await;
        });
    }
}

fn plain(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_outcome_and_database_with_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.observe("/query/1", "ok", Some(0), Duration::from_micros(300));
        metrics.observe("/query/1", "ok", Some(0), Duration::from_millis(3));
        metrics.observe("/query/1", "unauthorized", None, Duration::from_micros(50));
        metrics.observe(
            "/query/1",
            "permission_denied",
            Some(7),
            Duration::from_micros(50),
        );
        let text = metrics.render(None);
        let ok = r#"endpoint="/query/1",outcome="ok",database="0""#;
        assert!(
            text.contains(&format!("testudo_requests_total{{{ok}}} 2\n")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "testudo_request_duration_seconds_bucket{{{ok},le=\"0.001\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "testudo_request_duration_seconds_bucket{{{ok},le=\"0.005\"}} 2\n"
        )));
        assert!(text.contains("testudo_auth_failures_total 1\n"));
        assert!(text.contains("testudo_denials_total 1\n"));
        assert!(!text.contains("testudo_audit_queue_depth"));
    }

    #[test]
    fn series_beyond_the_bound_are_lumped_together() {
        let metrics = Metrics::default();
        for db in 0..(MAX_SERIES as u64 + 10) {
            metrics.observe("/query/1", "ok", Some(db), Duration::ZERO);
        }
        let text = metrics.render(None);
        assert!(text.contains(
            "testudo_requests_total{endpoint=\"/query/1\",outcome=\"ok\",database=\"other\"} 10\n"
        ));
    }

    #[test]
    fn in_flight_queries_are_counted_while_their_guard_lives() {
        let metrics = Metrics::default();
        let guard = metrics.query_started();
        assert!(
            metrics
                .render(None)
                .contains("testudo_queries_in_flight 1\n")
        );
        drop(guard);
        assert!(
            metrics
                .render(None)
                .contains("testudo_queries_in_flight 0\n")
        );
    }

    #[test]
    fn registered_series_are_read_at_every_scrape_and_left_out_when_unknown() {
        let metrics = Metrics::default();
        let value = Arc::new(AtomicU64::new(5));
        let read = Arc::clone(&value);
        metrics.register_gauge("testudo_test_bytes", "Bytes.", move || {
            Some(read.load(Ordering::Relaxed) as f64)
        });
        metrics.register_counter("testudo_test_unknown_total", "Never known.", || None);
        metrics.register_histogram("testudo_test_sizes", "Sizes.", || {
            Some(HistogramValue {
                bounds: vec![1.0, 4.0],
                counts: vec![2, 3, 1],
                sum: 20.0,
            })
        });
        assert!(metrics.render(None).contains(
            "# HELP testudo_test_bytes Bytes.\n# TYPE testudo_test_bytes gauge\ntestudo_test_bytes 5\n"
        ));
        value.store(7, Ordering::Relaxed);
        let text = metrics.render(None);
        assert!(text.contains("testudo_test_bytes 7\n"), "{text}");
        assert!(!text.contains("testudo_test_unknown_total"), "{text}");
        for line in [
            "testudo_test_sizes_bucket{le=\"1\"} 2\n",
            "testudo_test_sizes_bucket{le=\"4\"} 5\n",
            "testudo_test_sizes_bucket{le=\"+Inf\"} 6\n",
            "testudo_test_sizes_sum 20\n",
            "testudo_test_sizes_count 6\n",
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
    }
}
