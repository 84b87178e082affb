//! The load itself: every stream is a worker that sends one request, waits for the whole
//! response, and sends the next (a closed loop), from the end of setup until warm-up plus
//! duration have passed.
//!
//! A request counts when it was sent after the warm-up and answered before the end; one that
//! straddles either edge is neither a sample nor an error. An error (a status other than 200,
//! a transport failure, a request timeout) is counted when it happens inside the measured
//! window; a failed connection is replaced before the next request.
//!
//! **Invariants:** the run ends by itself no later than warm-up + duration + one request
//! timeout (+ one connect timeout); no request is retried (a retry would hide an error and
//! distort the latency); the measured figures never include warm-up requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::{ClientError, Connection, Reply, Target};
use crate::cpu;
use crate::latency::{Samples, Summary};
use crate::scenario::{Rng, Workload};

/// Bytes of an unexpected response kept for the error message.
const ERROR_SNIPPET_BYTES: usize = 300;
/// Pause after a failed reconnect, so that a dead server is not hammered in a tight loop.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub connections: usize,
    /// Streams per connection (1 for HTTP/1.1).
    pub streams: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub request_timeout: Duration,
    pub seed: u64,
    /// When given, the CPU time this process used in the measured window is reported.
    pub server_pid: Option<u32>,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub latency: Summary,
    /// Requests answered 200 inside the measured window (the samples of `latency`).
    pub ok: u64,
    /// Failed requests inside the measured window.
    pub errors: u64,
    /// The measured window.
    pub measured: Duration,
    /// The first failure of the run (warm-up included), for diagnosis.
    pub first_error: Option<String>,
    /// CPU time the server used in the measured window (when its pid was given).
    pub server_cpu: Option<Duration>,
    /// CPU time the load generator itself used in the measured window.
    pub client_cpu: Option<Duration>,
    /// What the server's threads used in the measured window, by kind, the busiest first
    /// (empty when its pid was not given or its threads could not be read).
    pub server_threads: Vec<(String, cpu::Used)>,
}

impl Outcome {
    pub fn ops_per_sec(&self) -> f64 {
        let seconds = self.measured.as_secs_f64();
        if seconds > 0.0 {
            self.ok as f64 / seconds
        } else {
            0.0
        }
    }

    /// Cores' worth of CPU `used` over the measured window.
    pub fn cores(&self, used: Option<Duration>) -> Option<f64> {
        let seconds = self.measured.as_secs_f64();
        used.filter(|_| seconds > 0.0)
            .map(|cpu| cpu.as_secs_f64() / seconds)
    }

    /// Server CPU time per successful request, in microseconds.
    pub fn server_us_per_op(&self) -> Option<f64> {
        self.server_cpu
            .filter(|_| self.ok > 0)
            .map(|cpu| cpu.as_secs_f64() * 1e6 / self.ok as f64)
    }

    /// `server_threads` per successful request, in microseconds: (kind, user, system).
    pub fn server_threads_us_per_op(&self) -> Vec<(&str, f64, f64)> {
        if self.ok == 0 {
            return Vec::new();
        }
        let per_op = |d: Duration| d.as_secs_f64() * 1e6 / self.ok as f64;
        self.server_threads
            .iter()
            .map(|(kind, used)| (kind.as_str(), per_op(used.user), per_op(used.system)))
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
struct Clock {
    measure_from: Instant,
    until: Instant,
}

struct WorkerResult {
    samples: Samples,
    errors: u64,
    first_error: Option<String>,
}

/// Opens every connection, then runs the workload on all streams at once.
pub async fn run(
    target: Arc<Target>,
    workload: Arc<Workload>,
    config: &RunConfig,
) -> Result<Outcome, ClientError> {
    let mut streams = Vec::with_capacity(config.connections.saturating_mul(config.streams));
    for _ in 0..config.connections {
        let connection = Connection::open(&target).await?;
        for _ in 1..config.streams {
            let shared = connection.share().ok_or_else(|| {
                ClientError::Request("several streams per connection need HTTP/2".to_owned())
            })?;
            streams.push(shared);
        }
        streams.push(connection);
    }
    let workers = streams.len();
    let start = Instant::now();
    let clock = Clock {
        measure_from: start + config.warmup,
        until: start + config.warmup + config.duration,
    };
    // A guess at the samples a worker records, to avoid regrowing the vector mid-run.
    let capacity = usize::try_from(config.duration.as_millis())
        .unwrap_or(usize::MAX)
        .saturating_mul(20)
        / workers.max(1);

    let sampler = tokio::spawn(sample_cpu(clock, config.server_pid));
    let mut tasks = JoinSet::new();
    for (index, connection) in streams.into_iter().enumerate() {
        let worker = Worker {
            index: index as u64,
            workers: workers as u64,
            target: Arc::clone(&target),
            workload: Arc::clone(&workload),
            clock,
            request_timeout: config.request_timeout,
            rng: Rng::new(config.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        };
        tasks.spawn(worker.run(connection, capacity));
    }

    let mut samples = Samples::default();
    let mut errors = 0;
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result =
            joined.map_err(|err| ClientError::Request(format!("a worker failed: {err}")))?;
        samples.merge(result.samples);
        errors += result.errors;
        if first_error.is_none() {
            first_error = result.first_error;
        }
    }
    let ok = samples.len() as u64;
    let Sampled {
        server_cpu,
        client_cpu,
        server_threads,
    } = sampler.await.unwrap_or_default();
    Ok(Outcome {
        latency: samples.summary(),
        ok,
        errors,
        measured: config.duration,
        first_error,
        server_cpu,
        client_cpu,
        server_threads,
    })
}

/// CPU time used in the measured window.
#[derive(Default)]
struct Sampled {
    server_cpu: Option<Duration>,
    client_cpu: Option<Duration>,
    server_threads: Vec<(String, cpu::Used)>,
}

/// CPU time used by the server (if its pid is known: the whole process and its threads by
/// kind) and by this process between the start and the end of the measured window.
async fn sample_cpu(clock: Clock, server_pid: Option<u32>) -> Sampled {
    let read = || {
        (
            server_pid.and_then(|pid| cpu::process_cpu(Some(pid))),
            cpu::process_cpu(None),
            server_pid.and_then(cpu::thread_cpu),
        )
    };
    tokio::time::sleep_until(clock.measure_from.into()).await;
    let (server0, client0, threads0) = read();
    tokio::time::sleep_until(clock.until.into()).await;
    let (server1, client1, threads1) = read();
    let used = |a: Option<Duration>, b: Option<Duration>| b?.checked_sub(a?);
    Sampled {
        server_cpu: used(server0, server1),
        client_cpu: used(client0, client1),
        server_threads: match (threads0, threads1) {
            (Some(before), Some(after)) => cpu::used_by_name(&before, &after),
            _ => Vec::new(),
        },
    }
}

struct Worker {
    index: u64,
    workers: u64,
    target: Arc<Target>,
    workload: Arc<Workload>,
    clock: Clock,
    request_timeout: Duration,
    rng: Rng,
}

impl Worker {
    async fn run(mut self, connection: Connection, capacity: usize) -> WorkerResult {
        let mut result = WorkerResult {
            samples: Samples::with_capacity(capacity),
            errors: 0,
            first_error: None,
        };
        let mut connection = Some(connection);
        // Sequence numbers interleave across workers, so creates never repeat an `n`.
        let mut sequence = self.index;
        loop {
            let sent = Instant::now();
            if sent >= self.clock.until {
                break;
            }
            let measured = sent >= self.clock.measure_from;
            let Some(conn) = connection.as_mut() else {
                match tokio::time::timeout(self.request_timeout, Connection::open(&self.target))
                    .await
                {
                    Ok(Ok(fresh)) => connection = Some(fresh),
                    Ok(Err(err)) => {
                        result.fail(measured, err.to_string());
                        tokio::time::sleep(RECONNECT_BACKOFF).await;
                    }
                    Err(_) => result.fail(measured, "connecting timed out".to_owned()),
                }
                continue;
            };
            let body = self.workload.body(&mut self.rng, sequence);
            sequence = sequence.wrapping_add(self.workers);
            let reply = match self.target.query_request(body) {
                Ok(request) => tokio::time::timeout(self.request_timeout, conn.send(request))
                    .await
                    .unwrap_or_else(|_| Err(ClientError::Request("timed out".to_owned()))),
                Err(err) => Err(err),
            };
            let done = Instant::now();
            match reply {
                Ok(Reply { status: 200, .. }) => {
                    if measured && done <= self.clock.until {
                        result.samples.record(done - sent);
                    }
                }
                Ok(reply) => {
                    let snippet = reply.body.get(..ERROR_SNIPPET_BYTES).unwrap_or(&reply.body);
                    let message = format!(
                        "HTTP {}: {}",
                        reply.status,
                        String::from_utf8_lossy(snippet)
                    );
                    result.fail(measured && done <= self.clock.until, message);
                }
                Err(err) => {
                    result.fail(measured && done <= self.clock.until, err.to_string());
                    connection = None;
                }
            }
        }
        result
    }
}

impl WorkerResult {
    fn fail(&mut self, counted: bool, message: String) {
        if counted {
            self.errors += 1;
        }
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }
}
