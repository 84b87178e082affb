//! `testudo audit verify|tail|export|rewrap`: checking and reading the audit log that
//! `testudo serve --audit-dir` writes, and moving its keys to a new master key.
//!
//! `verify` exits 0 when every segment checks out and 1 naming the first bad record
//! (`segment S, record R: why`); `tail` and `export` print one JSON object per line on
//! stdout, for people and for SIEMs.
//!
//! When the store is encrypted (a master key is given to `serve`), the audit log is too:
//! each segment's events are sealed under a fresh data key wrapped by the master key
//! (`testudo_audit`'s `seal.rs`). `verify` checks the chain without the master key and
//! also opens every record with it; `tail` and `export` need it (the same
//! `--master-key-file`, `TESTUDO_MASTER_KEY` or `--master-key-command` as `serve`).
//! After a master key rotation, `rewrap` (or `keys rotate-master --audit-dir`) rewraps the
//! segments' data keys under the new master key (`testudo_audit`'s `rewrap.rs`), so the old
//! one can be destroyed.
//!
//! **Invariants:** these commands only read the log (they work on a copy, and on the
//! directory of a running server); the key given with `--key-file` and the master key are
//! never printed (only the master key's public fingerprint).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use testudo_audit::{AeadKey, Filter, ReadError, SegmentKeys, VerifyError};
use testudo_engine::backup::{BackupService, DbId, ScheduleStatus};
use testudo_storage_redb::keys::{DataKey, MasterKey, WrappedKey};

use crate::{CliError, store};

/// What a wrapped audit data key is for: authenticated by the wrapping, so a store data key
/// can never be passed off as an audit key or the reverse.
const AUDIT_KEY_CONTEXT: &[u8] = b"testudo audit segment key v1";

/// Audit segment keys wrapped by the operator's master key.
pub struct MasterKeySegments(pub MasterKey);

impl SegmentKeys for MasterKeySegments {
    fn fresh(&self) -> io::Result<(AeadKey, Vec<u8>)> {
        let key = DataKey::generate().map_err(io::Error::other)?;
        let wrapped = self
            .0
            .wrap(&key, AUDIT_KEY_CONTEXT)
            .map_err(io::Error::other)?;
        Ok((key.aead_key(), wrapped.as_bytes().to_vec()))
    }

    fn open(&self, wrapped: &[u8]) -> Option<AeadKey> {
        let wrapped = WrappedKey::from_bytes(wrapped)?;
        self.0
            .unwrap(&wrapped, AUDIT_KEY_CONTEXT)
            .map(|key| key.aead_key())
    }

    fn fingerprint(&self) -> String {
        self.0.fingerprint().to_string()
    }
}

/// The master key given with the store flags, as audit segment keys (`None`: none given).
fn segment_keys(options: &store::StoreArgs) -> Result<Option<MasterKeySegments>, CliError> {
    Ok(store::master_key(options)?.map(MasterKeySegments))
}

#[derive(Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check every record's chain link, every segment boundary and seal; name the first bad
    /// record.
    Verify {
        /// The audit directory (`--audit-dir` of `testudo serve`).
        dir: PathBuf,
        /// The 32-byte key the log was chained with, if any (raw, or 64 hex digits).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// The master key of an encrypted log: with it, every record is also opened and
        /// authenticated (without it, encrypted segments are checked as a chain only).
        #[command(flatten)]
        store: store::StoreArgs,
    },
    /// Print the last records as JSON lines.
    Tail {
        dir: PathBuf,
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: usize,
        #[command(flatten)]
        filter: FilterArgs,
        /// The master key, needed for an encrypted log.
        #[command(flatten)]
        store: store::StoreArgs,
    },
    /// Print every matching record as JSON lines, oldest first.
    Export {
        dir: PathBuf,
        #[command(flatten)]
        filter: FilterArgs,
        /// The master key, needed for an encrypted log.
        #[command(flatten)]
        store: store::StoreArgs,
    },
    /// Rewrap the data keys of an encrypted log's segments under a new master key (after
    /// `testudo keys rotate-master`), so that the old master key is no longer needed to
    /// read them. Safe while the server runs; run it again once the server has restarted
    /// with the new key, for the segments it started meanwhile.
    Rewrap {
        dir: PathBuf,
        /// The old master key (the one the segments were written under).
        #[command(flatten)]
        store: store::StoreArgs,
        #[command(flatten)]
        new: crate::keys::NewMasterKeyArgs,
    },
}

#[derive(Args)]
struct FilterArgs {
    /// Records at or after this instant: RFC 3339 (`2026-11-27T10:00:00Z`), a date, or a
    /// duration back from now (`90s`, `15m`, `2h`, `7d`).
    #[arg(long)]
    since: Option<String>,
    /// Records about this database: its id (`0` is the root) or its path.
    #[arg(long)]
    database: Option<String>,
    /// `ok`, `error` (any failure), or one error code (`unauthorized`, `permission_denied`).
    #[arg(long)]
    outcome: Option<String>,
}

impl FilterArgs {
    fn filter(self) -> Result<Filter, CliError> {
        let since_us = match self.since {
            None => None,
            Some(text) => Some(
                testudo_audit::parse_since(&text, testudo_audit::now_us()).ok_or_else(|| {
                    CliError::Refused(format!(
                        "--since '{text}': expected an RFC 3339 time, a date or a duration such as 15m"
                    ))
                })?,
            ),
        };
        Ok(Filter {
            since_us,
            database: self.database,
            outcome: self.outcome,
        })
    }
}

pub fn run(args: AuditArgs) -> Result<(), CliError> {
    match args.command {
        AuditCommand::Verify {
            dir,
            key_file,
            store,
        } => verify(&dir, key_file.as_deref(), &store),
        AuditCommand::Tail {
            dir,
            lines,
            filter,
            store,
        } => {
            let keys = segment_keys(&store)?;
            let records = testudo_audit::tail(
                &dir,
                lines,
                &filter.filter()?,
                keys.as_ref().map(|k| k as &dyn SegmentKeys),
            )
            .map_err(read_error)?;
            let mut out = BufWriter::new(io::stdout().lock());
            for record in records {
                print_line(&mut out, &record)?;
            }
            out.flush().map_err(stdout_error)
        }
        AuditCommand::Rewrap { dir, store, new } => {
            let old = store::master_key(&store)?.ok_or_else(|| {
                CliError::Refused(
                    "give the old master key with --master-key-file, TESTUDO_MASTER_KEY or \
                     --master-key-command"
                        .to_owned(),
                )
            })?;
            let summary = rewrap_segment_keys(&dir, &old, &new.load()?)?;
            println!("{summary}");
            Ok(())
        }
        AuditCommand::Export { dir, filter, store } => {
            let keys = segment_keys(&store)?;
            let filter = filter.filter()?;
            let mut out = BufWriter::new(io::stdout().lock());
            let summary = testudo_audit::read_records(
                &dir,
                &filter,
                keys.as_ref().map(|k| k as &dyn SegmentKeys),
                |record| {
                    out.write_all(record)?;
                    out.write_all(b"\n")
                },
            )
            .map_err(read_error)?;
            out.flush().map_err(stdout_error)?;
            if summary.unreadable > 0 {
                eprintln!(
                    "testudo: {} unreadable lines skipped; run `testudo audit verify`",
                    summary.unreadable
                );
            }
            Ok(())
        }
    }
}

/// Rewraps the data keys of the encrypted segments in `dir` from `old` to `new`; the
/// summary line to print. Fails naming the segments whose key neither master key opens.
pub fn rewrap_segment_keys(
    dir: &Path,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<String, CliError> {
    let rewrap_key = |wrapped: &[u8]| {
        let key = old.unwrap(&WrappedKey::from_bytes(wrapped)?, AUDIT_KEY_CONTEXT)?;
        let rewrapped = new.wrap(&key, AUDIT_KEY_CONTEXT).ok()?;
        Some(rewrapped.as_bytes().to_vec())
    };
    let new_segments = MasterKeySegments(new.duplicate());
    let report =
        testudo_audit::rewrap(dir, &new_segments, &rewrap_key).map_err(|err| match err {
            testudo_audit::RewrapError::Busy { .. } => CliError::Refused(err.to_string()),
            other => CliError::Failed(other.to_string()),
        })?;
    if !report.unopened.is_empty() {
        let segments: Vec<String> = report
            .unopened
            .iter()
            .map(|(segment, key_id)| format!("{segment} (key {key_id})"))
            .collect();
        return Err(CliError::Failed(format!(
            "{} of {} encrypted audit segments are wrapped by neither master key {} nor {}, \
             and were left as they were: segments {}",
            report.unopened.len(),
            report.encrypted,
            old.fingerprint(),
            new.fingerprint(),
            segments.join(", ")
        )));
    }
    Ok(format!(
        "the audit segments in {} open under master key {}: {} rewrapped, {} already did \
         ({} encrypted)",
        dir.display(),
        new.fingerprint(),
        report.rewrapped,
        report.already,
        report.encrypted
    ))
}

/// A read failure; a missing or wrong master key is the operator's to fix.
fn read_error(err: ReadError) -> CliError {
    match err {
        ReadError::KeyNeeded { .. } => CliError::Refused(format!(
            "{err}: give it with --master-key-file, {} or --master-key-command",
            testudo_storage_redb::keys::MASTER_KEY_ENV
        )),
        ReadError::WrongKey { .. } => CliError::Refused(err.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

fn print_line(out: &mut impl Write, record: &[u8]) -> Result<(), CliError> {
    out.write_all(record)
        .and_then(|()| out.write_all(b"\n"))
        .map_err(stdout_error)
}

fn stdout_error(err: io::Error) -> CliError {
    CliError::Failed(format!("could not write to stdout: {err}"))
}

fn verify(dir: &Path, key_file: Option<&Path>, store: &store::StoreArgs) -> Result<(), CliError> {
    let key = key_file.map(read_key).transpose()?;
    let keys = segment_keys(store)?;
    let keys = keys.as_ref().map(|k| k as &dyn SegmentKeys);
    match testudo_audit::verify(dir, key.as_ref(), keys) {
        Ok(report) => {
            println!(
                "ok: {} records in segments {}..={}, last link {}{}",
                report.records,
                report.first_segment,
                report.last_segment,
                report.last_link,
                if report.last_open {
                    " (the newest segment is still open)"
                } else {
                    ""
                }
            );
            if report.encrypted_segments > 0 {
                if keys.is_some() {
                    println!(
                        "{} encrypted segments: all {} encrypted records opened and authenticated",
                        report.encrypted_segments, report.opened_records
                    );
                } else {
                    println!(
                        "{} encrypted segments: order and completeness checked; give the master \
                         key to authenticate each record too",
                        report.encrypted_segments
                    );
                }
            }
            if key.is_some() && report.unkeyed_segments > 0 {
                eprintln!(
                    "testudo: warning: {} segments are chained without a key",
                    report.unkeyed_segments
                );
            }
            Ok(())
        }
        Err(VerifyError::Broken(problem)) => Err(CliError::Failed(format!(
            "the audit log does not verify: {problem}"
        ))),
        Err(err @ VerifyError::WrongKey { .. }) => Err(CliError::Refused(err.to_string())),
        Err(err) => Err(CliError::Failed(err.to_string())),
    }
}

/// A 32-byte key: the raw bytes, or 64 hex digits (surrounding whitespace ignored).
pub fn read_key(path: &Path) -> Result<[u8; 32], CliError> {
    let bytes = std::fs::read(path)
        .map_err(|err| CliError::Failed(format!("could not read {}: {err}", path.display())))?;
    if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(key);
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    let mut key = [0u8; 32];
    let valid = text.len() == 64
        && text.is_ascii()
        && key.iter_mut().enumerate().all(|(i, byte)| {
            text.get(2 * i..2 * i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .map(|value| *byte = value)
                .is_some()
        });
    if !valid {
        return Err(CliError::Refused(format!(
            "{}: an audit key is 32 raw bytes or 64 hex digits",
            path.display()
        )));
    }
    Ok(key)
}

/// The monitoring flags of `testudo serve`: the audit log, `/metrics`, the slow-query log, and
/// the default rate limits of databases that set none.
#[derive(Args)]
pub struct ServeMonitoringArgs {
    /// Write the audit log (one record per request, hash-chained segments) into this
    /// directory. Default: no audit log.
    #[arg(long, value_name = "DIR")]
    audit_dir: Option<PathBuf>,

    /// Audit records queued for the writer thread before the --audit-when-full policy
    /// applies.
    #[arg(long, default_value_t = 65_536, value_name = "RECORDS")]
    audit_queue: usize,

    /// When the audit queue is full: `drop` the record (counted, and noted in the log as soon
    /// as there is room; queries never wait) or `block` the query until there is room.
    #[arg(long, value_enum, default_value_t = WhenFullArg::Drop)]
    audit_when_full: WhenFullArg,

    /// Seal the current audit segment and start a new one past this size.
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    audit_segment_bytes: u64,

    /// Keep at most this many audit segments (the oldest are deleted). Default: all.
    #[arg(long, value_name = "N")]
    audit_keep_segments: Option<usize>,

    /// Delete sealed audit segments older than this many days. Default: never.
    #[arg(long, value_name = "DAYS")]
    audit_keep_days: Option<u64>,

    /// Chain the audit log with a keyed hash (HMAC-SHA256 or BLAKE3's keyed hash, per
    /// --audit-chain) under this 32-byte key (raw, or 64 hex digits), so that nobody without
    /// the key can rewrite it undetected.
    #[arg(long, value_name = "FILE", requires = "audit_dir")]
    audit_key_file: Option<PathBuf>,

    /// The hash new audit segments are chained with: `auto` picks the cheaper on this CPU
    /// (SHA-256 where it has SHA instructions, else BLAKE3); each segment names its own, and
    /// `testudo audit verify` checks either on any machine.
    #[arg(long, value_enum, default_value_t = ChainArg::Auto, requires = "audit_dir")]
    audit_chain: ChainArg,

    /// Serve Prometheus metrics at `GET /metrics` on this address (e.g. 127.0.0.1:9464).
    /// Default: off.
    #[arg(long, value_name = "ADDR")]
    metrics_listen: Option<String>,

    /// Log queries that take at least this many milliseconds (target `testudo::slow_query`,
    /// level warn, with the request's traceparent).
    #[arg(long, value_name = "MS")]
    slow_query_ms: Option<u64>,

    /// Default rate limit, queries per second, of every database whose document sets no
    /// `limits` (the root is never limited). Default: unlimited.
    #[arg(long, value_name = "N")]
    default_queries_per_second: Option<f64>,

    /// Default read ops per second (see --default-queries-per-second).
    #[arg(long, value_name = "N")]
    default_read_ops_per_second: Option<f64>,

    /// Default write ops per second (see --default-queries-per-second).
    #[arg(long, value_name = "N")]
    default_write_ops_per_second: Option<f64>,

    /// Default compute ops per second (see --default-queries-per-second).
    #[arg(long, value_name = "N")]
    default_compute_ops_per_second: Option<f64>,

    /// Default number of concurrent queries (see --default-queries-per-second).
    #[arg(long, value_name = "N")]
    default_concurrent_queries: Option<u32>,

    /// Hold the 429 answer to a query refused by its database's rate limits at least this
    /// many milliseconds (no thread is held), so that a client flooding in a loop is slowed
    /// to its answers' pace instead of taking CPU from other databases. At most 5 000.
    #[arg(long, default_value_t = 20, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(0..=5_000))]
    rate_limit_refusal_delay_ms: u64,

    /// Answer at most this many rate-limit refusals a second per database (more are held
    /// back longer, up to 5 s), so that a flood over many connections is paced too. 0: no
    /// pacing by rate, only --rate-limit-refusal-delay-ms.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    rate_limit_refusals_per_second: u32,
}

impl ServeMonitoringArgs {
    /// The `--default-*` limits (`None` when none is given); each must be positive.
    fn default_limits(&self) -> Result<Option<testudo_engine::Limits>, CliError> {
        let rate = |name: &str, value: Option<f64>| match value {
            Some(v) if !(v.is_finite() && v > 0.0) => Err(CliError::Refused(format!(
                "--default-{name}: expected a positive number, got {v}"
            ))),
            other => Ok(other),
        };
        if self.default_concurrent_queries == Some(0) {
            return Err(CliError::Refused(
                "--default-concurrent-queries: expected a positive number".to_owned(),
            ));
        }
        let limits = testudo_engine::Limits {
            rates: [
                rate("queries-per-second", self.default_queries_per_second)?,
                rate("read-ops-per-second", self.default_read_ops_per_second)?,
                rate("write-ops-per-second", self.default_write_ops_per_second)?,
                rate(
                    "compute-ops-per-second",
                    self.default_compute_ops_per_second,
                )?,
            ],
            concurrent: self.default_concurrent_queries,
        };
        Ok((limits != testudo_engine::Limits::default()).then_some(limits))
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ChainArg {
    Auto,
    Sha256,
    Blake3,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum WhenFullArg {
    Drop,
    Block,
}

/// Directory levels and entries [`directory_bytes`] looks at, at most: a scrape stays cheap
/// whatever is put in the data directory.
const SIZE_MAX_DEPTH: usize = 4;
const SIZE_MAX_ENTRIES: usize = 100_000;

/// The bytes of the files under `dir` (symbolic links not followed), from metadata only.
fn directory_bytes(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut seen = 0usize;
    let mut pending = vec![(dir.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            if seen > SIZE_MAX_ENTRIES {
                return total;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() {
                total = total.saturating_add(meta.len());
            } else if meta.is_dir() && depth < SIZE_MAX_DEPTH {
                pending.push((entry.path(), depth + 1));
            }
        }
    }
    total
}

/// What `serve` runs next to the server; dropped (or [`Monitoring::close`]d) after it.
pub struct Monitoring {
    writer: Option<Arc<testudo_audit::AuditWriter>>,
    default_limits: Option<testudo_engine::Limits>,
    metrics: Arc<testudo_server::Metrics>,
    slow_query: Option<Duration>,
    refusal_delay: Duration,
    refusals_per_second: u32,
}

impl ServeMonitoringArgs {
    /// Opens the audit log and binds the metrics listener (announced on stdout as
    /// `testudo metrics on http://<addr>/metrics`). Call before the listening line, so a
    /// bad flag stops the start. With a master key in `store`, the audit log is encrypted.
    pub async fn start(self, master: Option<MasterKey>) -> Result<Monitoring, CliError> {
        let default_limits = self.default_limits()?;
        let writer = match self.audit_dir {
            None => None,
            Some(dir) => {
                let mut config = testudo_audit::WriterConfig::new(dir);
                config.queue = self.audit_queue.max(1);
                config.when_full = match self.audit_when_full {
                    WhenFullArg::Drop => testudo_audit::WhenFull::Drop,
                    WhenFullArg::Block => testudo_audit::WhenFull::Block,
                };
                config.segment_bytes = self.audit_segment_bytes.max(4096);
                config.keep_segments = self.audit_keep_segments;
                config.keep_age = self
                    .audit_keep_days
                    .map(|days| Duration::from_secs(days.saturating_mul(86_400)));
                config.key = self.audit_key_file.as_deref().map(read_key).transpose()?;
                config.chain = match self.audit_chain {
                    ChainArg::Auto => testudo_audit::ChainChoice::Auto,
                    ChainArg::Sha256 => testudo_audit::ChainChoice::Sha256,
                    ChainArg::Blake3 => testudo_audit::ChainChoice::Blake3,
                };
                config.encryption =
                    master.map(|key| Arc::new(MasterKeySegments(key)) as Arc<dyn SegmentKeys>);
                let writer = testudo_audit::AuditWriter::open(config)
                    .map_err(|err| CliError::Failed(format!("audit log: {err}")))?;
                Some(Arc::new(writer))
            }
        };
        let metrics = Arc::new(testudo_server::Metrics::default());
        if let Some(listen) = &self.metrics_listen {
            let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| {
                CliError::Refused(format!(
                    "could not listen on --metrics-listen {listen}: {err}"
                ))
            })?;
            let local = listener.local_addr().map_err(|err| {
                CliError::Failed(format!("could not read the metrics address: {err}"))
            })?;
            let mut out = io::stdout().lock();
            writeln!(out, "testudo metrics on http://{local}/metrics")
                .and_then(|()| out.flush())
                .map_err(stdout_error)?;
            let audit = writer
                .clone()
                .map(|writer| writer as Arc<dyn testudo_audit::AuditSink>);
            // Ends with the runtime, after the server.
            tokio::spawn(testudo_server::serve_metrics(
                listener,
                Arc::clone(&metrics),
                audit,
                std::future::pending(),
            ));
        }
        Ok(Monitoring {
            writer,
            default_limits,
            metrics,
            slow_query: self.slow_query_ms.map(Duration::from_millis),
            refusal_delay: Duration::from_millis(self.rate_limit_refusal_delay_ms),
            refusals_per_second: self.rate_limit_refusals_per_second,
        })
    }
}

impl Monitoring {
    /// The `--default-*` rate limits, for the engine.
    pub fn default_limits(&self) -> Option<testudo_engine::Limits> {
        self.default_limits.clone()
    }

    /// The audit log, for the engine's and the server's records.
    pub fn audit_sink(&self) -> Option<Arc<dyn testudo_audit::AuditSink>> {
        self.writer
            .clone()
            .map(|writer| writer as Arc<dyn testudo_audit::AuditSink>)
    }

    /// Puts the audit sink, the metrics and the slow-query threshold into `config`.
    pub fn configure(&self, config: &mut testudo_server::ServerConfig) {
        config.audit = self.audit_sink();
        config.metrics = Arc::clone(&self.metrics);
        config.slow_query = self.slow_query;
        config.refusal_delay = self.refusal_delay;
        config.refusals_per_second = self.refusals_per_second;
    }

    /// Adds the store's series to `/metrics`: commits, backend batches and their sizes
    /// (`testudo_commit_batch_size`, transactions per batch), the data directory's size
    /// (`testudo_storage_bytes`, summed at each scrape) and an online data-key rotation's
    /// progress (`testudo_data_key_rotation_progress`).
    pub fn watch_store(&self, engine: &Arc<testudo_engine::Engine>, data_dir: &Path) {
        let metrics = &self.metrics;
        let stats = {
            let engine = Arc::downgrade(engine);
            move || engine.upgrade().and_then(|engine| engine.commit_stats())
        };
        let read = stats.clone();
        metrics.register_counter(
            "testudo_commits_total",
            "Transactions committed (read-only ones validated included).",
            move || read().map(|s| s.commits as f64),
        );
        let read = stats.clone();
        metrics.register_counter(
            "testudo_commit_conflicts_total",
            "Transactions refused at commit because of a conflicting write.",
            move || read().map(|s| s.conflicts as f64),
        );
        let read = stats.clone();
        metrics.register_counter(
            "testudo_commit_batches_total",
            "Backend batches written (one durable flush each).",
            move || read().map(|s| s.batches as f64),
        );
        metrics.register_histogram(
            "testudo_commit_batch_size",
            "Transactions per backend batch (group commit).",
            move || {
                stats().map(|s| testudo_server::HistogramValue {
                    bounds: testudo_storage::BATCH_SIZE_BOUNDS
                        .iter()
                        .map(|&b| b as f64)
                        .collect(),
                    counts: s.batch_sizes.to_vec(),
                    sum: s.batched_commits as f64,
                })
            },
        );
        let dir = data_dir.to_path_buf();
        metrics.register_gauge(
            "testudo_storage_bytes",
            "Bytes of the files in the data directory.",
            move || Some(directory_bytes(&dir) as f64),
        );
        // Read from the keyring and the rotation journal at each scrape (two small reads):
        // 0 when no data-key rotation runs, else the fraction of blocks re-sealed so far.
        let dir = data_dir.to_path_buf();
        metrics.register_gauge(
            "testudo_data_key_rotation_progress",
            "Online data-key rotation: fraction of the data file re-sealed under the new key \
             (absent when none runs).",
            move || {
                let status = testudo_storage_redb::rotation_status(&dir).ok()??;
                Some(status.done as f64 / status.total.max(1) as f64)
            },
        );
    }

    /// Adds the server-wide backup schedule's series to `/metrics`, read from `backups` at
    /// each scrape (left out while there is no schedule or no backup yet).
    pub fn watch_backups(&self, backups: Arc<dyn BackupService>) {
        type Field = fn(&ScheduleStatus, SystemTime) -> Option<f64>;
        let series: [(&'static str, &'static str, bool, Field); 6] = [
            (
                "testudo_backup_last_success_timestamp_seconds",
                "When the newest scheduled backup succeeded (Unix time).",
                false,
                |s, _| s.last_success_unix_ms.map(|ms| ms as f64 / 1000.0),
            ),
            (
                "testudo_backup_age_seconds",
                "Seconds since the newest scheduled backup succeeded.",
                false,
                |s, now| {
                    let now = now
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .ok()?
                        .as_secs_f64();
                    s.last_success_unix_ms
                        .map(|ms| (now - ms as f64 / 1000.0).max(0.0))
                },
            ),
            (
                "testudo_backup_last_failure_timestamp_seconds",
                "When the newest scheduled backup failed (Unix time).",
                false,
                |s, _| s.last_failure_unix_ms.map(|ms| ms as f64 / 1000.0),
            ),
            (
                "testudo_backup_runs_total",
                "Scheduled backups attempted.",
                true,
                |s, _| Some(s.runs as f64),
            ),
            (
                "testudo_backup_failures_total",
                "Scheduled backups that failed.",
                true,
                |s, _| Some(s.failures as f64),
            ),
            (
                "testudo_backup_running",
                "1 while a scheduled backup is being taken.",
                false,
                |s, _| Some(if s.running { 1.0 } else { 0.0 }),
            ),
        ];
        for (name, help, counter, field) in series {
            let backups = Arc::clone(&backups);
            let read = move || {
                backups
                    .status(DbId::ROOT)
                    .and_then(|status| field(&status, SystemTime::now()))
            };
            if counter {
                self.metrics.register_counter(name, help, read);
            } else {
                self.metrics.register_gauge(name, help, read);
            }
        }
    }

    /// Drains the audit queue and seals the current segment.
    pub fn close(&self) {
        if let Some(writer) = &self.writer {
            writer.close();
        }
    }
}
