//! Reclaimer benchmark: how fast one reclamation pass removes old document versions, and how
//! much it holds up writers meanwhile.
//!
//! Opens the engine on a redb store in a temporary directory (durable commits, as `testudo
//! serve` runs it), creates collection `Reclaim` with `docs` documents and updates each one
//! `updates` times, one update per document per transaction round, so that `docs × updates`
//! old versions lie below the newest ones. Then:
//!
//! 1. **Alone:** one pass, `Engine::reclaim_now_with_min_retention(Duration::ZERO)` (every
//!    version older than the newest goes), reported as versions removed per second and the
//!    pass's duration.
//! 2. **With a writer:** the same history written again, then one thread creates documents
//!    in another collection one query at a time (one durable commit each) for a baseline
//!    window, keeps going during a second pass, and the latencies of its creates before and
//!    during the pass are reported (p50, p99, max).
//!
//! ```text
//! cargo run --release -p testudo-bench --example reclaim_bench -- [docs] [updates] [batch] [dir]
//! ```
//! Defaults: 100000 documents, 10 updates each (1,000,000 old versions), 2000 documents per
//! loading transaction, a temporary directory under the system temp dir (removed at the end).
//!
//! It measures; it asserts nothing. Every query goes through `Engine::query` as the server's
//! would (FQL text, admin scope), so loading also measures the engine's write path.

// A benchmark aborts on any error: unwrapping is the honest thing to do.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testudo_auth::SecretHash;
use testudo_bench::latency::{Samples, Summary};
use testudo_engine::{Engine, EngineConfig, Fragment, QueryRequest, ReclaimStats, Scope};
use testudo_model::json::Format;

/// Ids of the benchmark's documents start here (explicit ids make every update a point write).
const ID_BASE: u64 = 1_000_000_000;
/// How long the writer runs alone before the pass starts (its baseline).
const BASELINE: Duration = Duration::from_secs(5);
/// The string field of every document (64 bytes, as `testudo-load` seeds).
const FILLER: &str = "testudo-bench-filler-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).map_or(default, |s| s.parse().unwrap());
    let config = Config {
        docs: arg(0, 100_000),
        updates: arg(1, 10),
        batch: arg(2, 2_000).max(1),
        parent: args.get(3).map_or_else(std::env::temp_dir, PathBuf::from),
    };
    // Evaluation recurses: give the thread the stack the server gives its query threads.
    std::thread::Builder::new()
        .name("reclaim-bench".into())
        .stack_size(testudo_engine::QUERY_STACK_BYTES)
        .spawn(move || run(&config))
        .unwrap()
        .join()
        .unwrap();
}

struct Config {
    docs: u64,
    updates: u64,
    batch: u64,
    parent: PathBuf,
}

fn run(config: &Config) {
    let Config {
        docs,
        updates,
        batch,
        ..
    } = *config;
    let dir = tempfile::tempdir_in(&config.parent).unwrap();
    println!(
        "reclaim_bench: {docs} documents x {updates} updates = {} old versions, \
         {batch} documents per loading transaction, redb in {}",
        docs * updates,
        dir.path().display()
    );
    let kv = testudo_storage_redb::open(dir.path()).unwrap();
    let engine = Arc::new(
        Engine::open(
            kv,
            EngineConfig {
                root_secret: SecretHash::of("secret"),
            },
        )
        .unwrap(),
    );
    let scope = engine.authenticate("secret").unwrap();
    query(&engine, &scope, r#"Collection.create({ name: "Reclaim" })"#);
    query(&engine, &scope, r#"Collection.create({ name: "Writer" })"#);

    let started = Instant::now();
    for_batches(docs, batch, |a, b| {
        format!(
            "Set.sequence({a}, {b}).forEach(i => Reclaim.create({{ id: (i + {ID_BASE}).toString(), \
             n: i, v: 0, s: \"{FILLER}\" }}))\nnull"
        )
    })
    .into_iter()
    .for_each(|fql| query(&engine, &scope, &fql));
    report_rate("created", docs, started, "documents", &dir);
    write_history(&engine, &scope, config, 1, &dir);

    let stats = timed_pass(&engine);
    report_pass("alone", &stats, docs * updates);
    report_size("after the pass", &dir);

    write_history(&engine, &scope, config, updates + 1, &dir);
    let stop = AtomicBool::new(false);
    let (stats, before, during) = std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .stack_size(testudo_engine::QUERY_STACK_BYTES)
            .spawn_scoped(s, || write_until(&engine, &scope, &stop))
            .unwrap();
        let writer_started = Instant::now();
        std::thread::sleep(BASELINE);
        let stats = timed_pass(&engine);
        stop.store(true, Ordering::Relaxed);
        let creates = writer.join().unwrap();
        let pass_began = writer_started + BASELINE;
        let pass_ended = pass_began + stats.1;
        let (mut before, mut during) = (Samples::default(), Samples::default());
        for (sent, latency) in creates {
            if sent + latency <= pass_began {
                before.record(latency);
            } else if sent >= pass_began && sent + latency <= pass_ended {
                during.record(latency);
            }
        }
        (stats, before.summary(), during.summary())
    });
    report_pass("with a writer", &stats, docs * updates);
    println!(
        "writer, {:.0} s alone before the pass: {}",
        BASELINE.as_secs_f64(),
        latencies(&before)
    );
    println!("writer, during the pass:         {}", latencies(&during));
    engine.close().unwrap();
}

/// Updates every document `config.updates` times, round by round (`v` = `first`, `first +
/// 1`, …): each round is its own set of transactions, so each update leaves one version.
fn write_history(
    engine: &Engine,
    scope: &Scope,
    config: &Config,
    first: u64,
    dir: &tempfile::TempDir,
) {
    let started = Instant::now();
    for round in first..first + config.updates {
        for fql in for_batches(config.docs, config.batch, |a, b| {
            format!(
                "Set.sequence({a}, {b}).forEach(i => Reclaim.byId((i + {ID_BASE}).toString())!\
                 .update({{ v: {round} }}))\nnull"
            )
        }) {
            query(engine, scope, &fql);
        }
    }
    report_rate(
        "updated",
        config.docs * config.updates,
        started,
        "versions",
        dir,
    );
}

/// One query per `batch` of `0..total`, built by `fql(start, end)`.
fn for_batches(total: u64, batch: u64, fql: impl Fn(u64, u64) -> String) -> Vec<String> {
    (0..total.div_ceil(batch))
        .map(|i| fql(i * batch, ((i + 1) * batch).min(total)))
        .collect()
}

fn timed_pass(engine: &Engine) -> (ReclaimStats, Duration) {
    let started = Instant::now();
    let stats = engine
        .reclaim_now_with_min_retention(Duration::ZERO)
        .unwrap();
    (stats, started.elapsed())
}

/// Creates one document after another in `Writer` until `stop`; returns when each create
/// was sent and how long it took.
fn write_until(engine: &Engine, scope: &Scope, stop: &AtomicBool) -> Vec<(Instant, Duration)> {
    let mut creates = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        query(
            engine,
            scope,
            &format!("Writer.create({{ n: {i}, s: \"{FILLER}\" }})\nnull"),
        );
        creates.push((sent, sent.elapsed()));
        i += 1;
    }
    creates
}

fn query(engine: &Engine, scope: &Scope, fql: &str) {
    let request = QueryRequest {
        fragments: vec![Fragment::Text(fql.to_owned())],
        arguments: Vec::new(),
        format: Format::Tagged,
        typecheck: None,
        linearized: false,
        deadline: Instant::now() + Duration::from_secs(600),
        timeout: Duration::from_secs(600),
        max_contention_retries: 3,
        last_txn_ts: None,
        client: None,
    };
    let response = engine.query(scope, request);
    if let Err(err) = response.outcome {
        panic!("{fql}: {} {}", err.code.as_str(), err.message);
    }
}

fn report_rate(what: &str, count: u64, started: Instant, unit: &str, dir: &tempfile::TempDir) {
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{what} {count} {unit} in {seconds:.1} s: {:.0} per second{}",
        count as f64 / seconds,
        file_size(dir)
    );
}

fn report_pass(label: &str, (stats, elapsed): &(ReclaimStats, Duration), expected: u64) {
    let seconds = elapsed.as_secs_f64();
    println!(
        "pass {label}: {} versions removed ({expected} expected from the benchmark's documents), \
         {} keys scanned in {seconds:.2} s: {:.0} versions/s, {:.0} keys/s",
        stats.versions_removed,
        stats.keys_scanned,
        stats.versions_removed as f64 / seconds,
        stats.keys_scanned as f64 / seconds,
    );
}

fn report_size(label: &str, dir: &tempfile::TempDir) {
    println!("{label}{}", file_size(dir));
}

/// "n creates, p50 .. ms, p99 .. ms, max .. ms".
fn latencies(summary: &Summary) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{} creates, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        summary.count,
        ms(summary.p50),
        ms(summary.p99),
        ms(summary.max)
    )
}

/// ", data file N MiB". redb reuses freed pages: the file does not shrink after a pass.
fn file_size(dir: &tempfile::TempDir) -> String {
    let path = dir.path().join(testudo_storage_redb::DATA_FILE);
    let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    format!(", data file {:.1} MiB", bytes as f64 / f64::from(1 << 20))
}
