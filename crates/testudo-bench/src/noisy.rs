//! The noisy-neighbour benchmark (`testudo-noisy`): how much a database flooding the server
//! beyond its rate limit slows down a sibling database's queries.
//!
//! Two child databases of the root: `noisy_a` with `limits: { queries_per_second: N }` and
//! `quiet_b` without limits, holding one document. The sibling reads that document at a fixed
//! pace (open loop, one keep-alive connection: a steady tenant, not one that saturates the
//! machine by itself) for the whole run; after a quiet period, flooders hammer `noisy_a`
//! closed-loop over their own connections (or paced, with a flood rate), and almost all of
//! their queries are refused with 429. The sibling's latency is summarised separately for
//! the quiet and the flooded period, each after its own warm-up, in one run.
//!
//! **Invariants:** every request is bounded by a timeout and the run ends by itself (two
//! warm-ups and two measured periods); figures are reported, never judged; requests go only
//! to the loopback target [`Target::resolve`] accepts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use crate::client::{ClientError, Connection, Protocol, Target};
use crate::latency::{Samples, Summary};
use crate::scenario::{query_body, text};

pub const NOISY_DB: &str = "noisy_a";
pub const QUIET_DB: &str = "quiet_b";
const QUIET_COLLECTION: &str = "NeighbourItems";

/// How a noisy-neighbour run is made.
#[derive(Clone, Debug)]
pub struct NoisyOptions {
    pub url: String,
    /// The root secret (`secret` with `serve --dev`).
    pub secret: String,
    /// `queries_per_second` of the noisy database.
    pub limit_qps: u32,
    /// Connections flooding the noisy database.
    pub flooders: usize,
    /// Total requests per second of the flood; `None`: closed loop, as fast as answered.
    pub flood_rate: Option<f64>,
    /// The sibling's pace (requests per second).
    pub sibling_rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub request_timeout: Duration,
}

/// The sibling's latencies, quiet and flooded, and what the flood got.
#[derive(Debug, Clone)]
pub struct NoisyReport {
    pub quiet: Summary,
    pub flooded: Summary,
    pub quiet_errors: u64,
    pub flooded_errors: u64,
    /// During the flooded measured period: the noisy database's answers.
    pub flood_ok: u64,
    pub flood_limited: u64,
    pub flood_other: u64,
    pub flood_secs: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum NoisyError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("setup failed: {0}")]
    Setup(String),
}

async fn setup_query(target: &Target, fql: &str) -> Result<(), NoisyError> {
    let mut conn = Connection::open(target).await?;
    let reply = conn
        .send(target.setup_request(query_body(vec![text(fql)]))?)
        .await?;
    if reply.status != 200 {
        return Err(NoisyError::Setup(format!(
            "{fql}: HTTP {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )));
    }
    Ok(())
}

async fn target(options: &NoisyOptions, secret: &str) -> Result<Target, NoisyError> {
    Ok(Target::resolve(&options.url, Protocol::Http1, secret, false).await?)
}

/// Creates (or updates) the two databases and the sibling's document; idempotent.
async fn setup(options: &NoisyOptions) -> Result<(Target, Target), NoisyError> {
    let root = target(options, &options.secret).await?;
    let limit = options.limit_qps.max(1);
    setup_query(
        &root,
        &format!(
            "if (Database.byName('{NOISY_DB}') == null) {{ \
               Database.create({{ name: '{NOISY_DB}', limits: {{ queries_per_second: {limit} }} }}) \
             }} else {{ \
               Database.byName('{NOISY_DB}')!.update({{ limits: {{ queries_per_second: {limit} }} }}) \
             }}; \
             if (Database.byName('{QUIET_DB}') == null) {{ Database.create({{ name: '{QUIET_DB}' }}) }}; \
             null"
        ),
    )
    .await?;
    let quiet = target(options, &format!("{}:{QUIET_DB}:admin", options.secret)).await?;
    setup_query(
        &quiet,
        &format!(
            "if (Collection.byName('{QUIET_COLLECTION}') == null) {{ \
               Collection.create({{ name: '{QUIET_COLLECTION}' }}) \
             }}; null"
        ),
    )
    .await?;
    setup_query(
        &quiet,
        &format!(
            "if ({QUIET_COLLECTION}.byId('1') == null) {{ \
               {QUIET_COLLECTION}.create({{ id: '1', n: 1 }}) \
             }}; null"
        ),
    )
    .await?;
    let noisy = target(options, &format!("{}:{NOISY_DB}:admin", options.secret)).await?;
    Ok((quiet, noisy))
}

/// Phases of the run, as seen by the workers.
struct Phase {
    started: Instant,
    warmup: Duration,
    duration: Duration,
    flooding: AtomicBool,
    stop: AtomicBool,
    limited: AtomicU64,
    ok: AtomicU64,
    other: AtomicU64,
    /// Counting flood answers (during the flooded measured period only).
    counting: AtomicBool,
}

impl Phase {
    /// 0: quiet warm-up, 1: quiet measured, 2: flood warm-up, 3: flooded measured, 4: done.
    fn at(&self, now: Instant) -> usize {
        let t = now.saturating_duration_since(self.started);
        let edges = [
            self.warmup,
            self.warmup + self.duration,
            self.warmup * 2 + self.duration,
            (self.warmup + self.duration) * 2,
        ];
        edges.iter().take_while(|&&edge| t >= edge).count()
    }
}

async fn sibling(
    target: Arc<Target>,
    body: Bytes,
    rate: f64,
    timeout: Duration,
    phase: Arc<Phase>,
) -> Result<[(Samples, u64); 2], NoisyError> {
    let mut conn = Connection::open(&target).await?;
    let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
    let mut next = Instant::now();
    let mut out = [(Samples::default(), 0u64), (Samples::default(), 0u64)];
    loop {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let start = Instant::now();
        let which = match phase.at(start) {
            1 => Some(0),
            3 => Some(1),
            4 => return Ok(out),
            _ => None,
        };
        let request = target.query_request(body.clone())?;
        let reply = tokio::time::timeout(timeout, conn.send(request)).await;
        let elapsed = start.elapsed();
        let ok = matches!(&reply, Ok(Ok(reply)) if reply.status == 200);
        if !matches!(reply, Ok(Ok(_))) {
            conn = Connection::open(&target).await?;
        }
        if let Some(which) = which
            && let Some((samples, errors)) = out.get_mut(which)
        {
            if ok {
                samples.record(elapsed);
            } else {
                *errors += 1;
            }
        }
    }
}

async fn flooder(
    target: Arc<Target>,
    body: Bytes,
    pace: Option<Duration>,
    timeout: Duration,
    phase: Arc<Phase>,
) -> Result<(), NoisyError> {
    while !phase.flooding.load(Ordering::Relaxed) {
        if phase.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut conn = Connection::open(&target).await?;
    let mut next = Instant::now();
    while !phase.stop.load(Ordering::Relaxed) {
        if let Some(pace) = pace {
            tokio::time::sleep_until(next.into()).await;
            next += pace;
        }
        let request = target.query_request(body.clone())?;
        let reply = tokio::time::timeout(timeout, conn.send(request)).await;
        let counter = match &reply {
            Ok(Ok(reply)) if reply.status == 200 => &phase.ok,
            Ok(Ok(reply)) if reply.status == 429 => &phase.limited,
            _ => &phase.other,
        };
        if phase.counting.load(Ordering::Relaxed) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if !matches!(reply, Ok(Ok(_))) {
            conn = Connection::open(&target).await?;
        }
    }
    Ok(())
}

/// Sets up and runs the whole benchmark.
pub async fn run(options: &NoisyOptions) -> Result<NoisyReport, NoisyError> {
    let (quiet, noisy) = setup(options).await?;
    let (quiet, noisy) = (Arc::new(quiet), Arc::new(noisy));
    let read_body = query_body(vec![text(&format!("{QUIET_COLLECTION}.byId('1')"))]);
    let flood_body = query_body(vec![text("1 + 1")]);
    let phase = Arc::new(Phase {
        started: Instant::now(),
        warmup: options.warmup,
        duration: options.duration,
        flooding: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        limited: AtomicU64::new(0),
        ok: AtomicU64::new(0),
        other: AtomicU64::new(0),
        counting: AtomicBool::new(false),
    });
    let sibling = tokio::spawn(sibling(
        Arc::clone(&quiet),
        read_body,
        options.sibling_rate,
        options.request_timeout,
        Arc::clone(&phase),
    ));
    let flooders = options.flooders.max(1);
    let pace = options
        .flood_rate
        .filter(|r| *r > 0.0)
        .map(|rate| Duration::from_secs_f64(flooders as f64 / rate));
    let floods: Vec<_> = (0..flooders)
        .map(|_| {
            tokio::spawn(flooder(
                Arc::clone(&noisy),
                flood_body.clone(),
                pace,
                options.request_timeout,
                Arc::clone(&phase),
            ))
        })
        .collect();
    let at = |edge: Duration| tokio::time::sleep_until((phase.started + edge).into());
    at(options.warmup + options.duration).await;
    phase.flooding.store(true, Ordering::Relaxed);
    at(options.warmup * 2 + options.duration).await;
    phase.counting.store(true, Ordering::Relaxed);
    let counted_from = Instant::now();
    at((options.warmup + options.duration) * 2).await;
    phase.counting.store(false, Ordering::Relaxed);
    let flood_secs = counted_from.elapsed().as_secs_f64();
    phase.stop.store(true, Ordering::Relaxed);
    let measured = sibling
        .await
        .map_err(|err| NoisyError::Setup(format!("the sibling worker failed: {err}")))??;
    for flood in floods {
        flood
            .await
            .map_err(|err| NoisyError::Setup(format!("a flooder failed: {err}")))??;
    }
    let [
        (quiet_samples, quiet_errors),
        (flooded_samples, flooded_errors),
    ] = measured;
    Ok(NoisyReport {
        quiet: quiet_samples.summary(),
        flooded: flooded_samples.summary(),
        quiet_errors,
        flooded_errors,
        flood_ok: phase.ok.load(Ordering::Relaxed),
        flood_limited: phase.limited.load(Ordering::Relaxed),
        flood_other: phase.other.load(Ordering::Relaxed),
        flood_secs,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The report as a few lines of text (and the verdict against `goal` percent).
pub fn text_report(options: &NoisyOptions, report: &NoisyReport) -> String {
    let pct = |quiet: Duration, flooded: Duration| {
        if quiet.is_zero() {
            0.0
        } else {
            (flooded.as_secs_f64() / quiet.as_secs_f64() - 1.0) * 100.0
        }
    };
    let flood = match options.flood_rate {
        Some(rate) => format!("{rate:.0} req/s over {} connections", options.flooders),
        None => format!("closed loop over {} connections", options.flooders),
    };
    let per_sec = |n: u64| n as f64 / report.flood_secs.max(f64::MIN_POSITIVE);
    let mut out = String::new();
    out.push_str(&format!(
        "noisy neighbour: {NOISY_DB} limited to {} queries/s, flooded {flood}; sibling {QUIET_DB} \
         reads one document at {:.0} req/s\n",
        options.limit_qps, options.sibling_rate
    ));
    out.push_str("| sibling | requests | errors | p50 ms | p99 ms | max ms |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|\n");
    for (name, s, errors) in [
        ("quiet", &report.quiet, report.quiet_errors),
        ("flooded", &report.flooded, report.flooded_errors),
    ] {
        out.push_str(&format!(
            "| {name} | {} | {errors} | {:.3} | {:.3} | {:.3} |\n",
            s.count,
            ms(s.p50),
            ms(s.p99),
            ms(s.max)
        ));
    }
    out.push_str(&format!(
        "sibling p50 {:+.1} %, p99 {:+.1} % flooded vs quiet\n",
        pct(report.quiet.p50, report.flooded.p50),
        pct(report.quiet.p99, report.flooded.p99)
    ));
    out.push_str(&format!(
        "flood: {:.0} req/s answered: {:.1}/s ok, {:.0}/s 429 limit_exceeded, {:.1}/s other\n",
        per_sec(report.flood_ok + report.flood_limited + report.flood_other),
        per_sec(report.flood_ok),
        per_sec(report.flood_limited),
        per_sec(report.flood_other)
    ));
    out
}

/// Whether a JSON reply says `limit_exceeded` (for callers inspecting bodies).
pub fn is_limit_exceeded(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|json| {
            json.get("error")
                .and_then(|e| e.get("code"))
                .and_then(Value::as_str)
                .map(|code| code == "limit_exceeded")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_moves_through_its_phases_in_order() {
        let phase = Phase {
            started: Instant::now(),
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(10),
            flooding: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            limited: AtomicU64::new(0),
            ok: AtomicU64::new(0),
            other: AtomicU64::new(0),
            counting: AtomicBool::new(false),
        };
        let at = |secs: u64| phase.at(phase.started + Duration::from_secs(secs));
        assert_eq!(
            [at(0), at(1), at(10), at(11), at(12), at(21), at(22), at(30)],
            [0, 1, 1, 2, 3, 3, 4, 4]
        );
    }

    #[test]
    fn a_limit_exceeded_body_is_recognised() {
        assert!(is_limit_exceeded(
            br#"{"error":{"code":"limit_exceeded","message":"x"}}"#
        ));
        assert!(!is_limit_exceeded(br#"{"data":2}"#));
    }
}
