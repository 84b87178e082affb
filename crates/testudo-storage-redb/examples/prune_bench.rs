//! Pruning benchmark: loads N keys × V versions (100-byte values, every key rewritten once per
//! round), then prunes the whole key space at a horizon in calls of `max_keys` keys, the way
//! the engine's reclaimer does, and prints versions removed per second, the number of calls
//! and the median and p99 call latency. Meanwhile one thread commits small transactions
//! outside the pruned range, to show how long a prune batch holds up commits (p50, p99, max).
//! Runs on redb (durable, one fsync per prune call and per commit batch) and, for comparison,
//! on the in-memory backend.
//!
//! ```text
//! cargo run --release -p testudo-storage-redb --example prune_bench -- [keys] [versions] [max_keys] [dir]
//! ```
//! Defaults: 100000 keys, 10 versions, 4096 keys per call, a temporary directory under the
//! system temp dir. Two horizons: the middle round (about half of the history goes) and the
//! last commit (everything but the newest version goes). It measures; it asserts nothing.

// A benchmark aborts on any error: unwrapping is the honest thing to do.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testudo_storage::{KeyRange, Kv, LocalKv, LocalKvOptions, PruneStats, Ts, WriteSet};

/// Writes per loading transaction.
const LOAD_BATCH: usize = 1000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: usize| args.get(i).map_or(default, |s| s.parse().unwrap());
    let keys = arg(0, 100_000);
    let versions = arg(1, 10).max(2);
    let max_keys = arg(2, 4096);
    let parent = args
        .get(3)
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    println!(
        "prune_bench: {keys} keys x {versions} versions, {max_keys} keys per call, \
         redb under {}",
        parent.display()
    );

    let dir = tempfile::tempdir_in(&parent).unwrap();
    let redb = testudo_storage_redb::open_local(dir.path(), LocalKvOptions::default()).unwrap();
    run(
        "redb",
        &redb,
        keys,
        versions,
        max_keys,
        Some(redb.backend().path()),
    );
    redb.close().unwrap();

    let mem = LocalKv::in_memory().unwrap();
    run("mem", &mem, keys, versions, max_keys, None);
    mem.close().unwrap();
}

fn key(i: usize) -> Vec<u8> {
    format!("doc/{i:010}").into_bytes()
}

/// Loads the data and returns the commit timestamp of each round.
fn load(kv: &dyn Kv, keys: usize, versions: usize) -> Vec<Ts> {
    let value = vec![0x42u8; 100];
    (0..versions)
        .map(|_| {
            let mut last = Ts::ZERO;
            for chunk in (0..keys).collect::<Vec<_>>().chunks(LOAD_BATCH) {
                let snapshot_ts = kv.begin().unwrap().ts();
                let txn = WriteSet {
                    snapshot_ts,
                    writes: chunk
                        .iter()
                        .map(|&i| (key(i), Some(value.clone())))
                        .collect(),
                    ..WriteSet::default()
                };
                last = kv.commit(txn, None).unwrap();
            }
            last
        })
        .collect()
}

fn run<B: testudo_storage::Backend>(
    name: &str,
    kv: &LocalKv<B>,
    keys: usize,
    versions: usize,
    max_keys: usize,
    file: Option<&Path>,
) {
    let started = Instant::now();
    let rounds = load(kv, keys, versions);
    println!(
        "{name}: loaded {} versions in {:.1} s{}",
        keys * versions,
        started.elapsed().as_secs_f64(),
        file_size(file)
    );
    let middle = rounds[versions / 2 - 1];
    let last = rounds[versions - 1];
    for (label, horizon) in [("middle round", middle), ("last commit", last)] {
        prune_everything(name, label, kv, horizon, max_keys);
    }
    if file.is_some() {
        println!("{name}: after pruning{}", file_size(file));
    }
}

fn prune_everything(name: &str, label: &str, kv: &dyn Kv, horizon: Ts, max_keys: usize) {
    let stop = AtomicBool::new(false);
    let (elapsed, total, mut calls, mut commits) = std::thread::scope(|scope| {
        let committer = scope.spawn(|| commit_until(kv, &stop));
        let mut range = KeyRange::prefix(b"doc/");
        let mut total = PruneStats::default();
        let mut calls: Vec<Duration> = Vec::new();
        let started = Instant::now();
        loop {
            let call = Instant::now();
            let step = kv.prune(range.clone(), horizon, max_keys).unwrap();
            calls.push(call.elapsed());
            total.keys_scanned += step.keys_scanned;
            total.versions_removed += step.versions_removed;
            match step.resume_at {
                Some(next) => range.start = next,
                None => break,
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        (elapsed, total, calls, committer.join().unwrap())
    });
    println!(
        "{name}: horizon at the {label}: {} versions removed, {} keys scanned in {elapsed:.2} s: \
         {:.0} versions/s, {:.0} keys/s",
        total.versions_removed,
        total.keys_scanned,
        total.versions_removed as f64 / elapsed,
        total.keys_scanned as f64 / elapsed,
    );
    println!(
        "{name}:   {} prune calls: {}; {} concurrent commits: {}",
        calls.len(),
        latencies(&mut calls),
        commits.len(),
        latencies(&mut commits),
    );
}

/// Commits one small blind write after another until `stop`; returns each one's latency.
fn commit_until(kv: &dyn Kv, stop: &AtomicBool) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let begun = Instant::now();
        let snapshot_ts = kv.begin().unwrap().ts();
        let txn = WriteSet {
            snapshot_ts,
            writes: vec![(format!("other/{i}").into_bytes(), Some(vec![1; 100]))],
            ..WriteSet::default()
        };
        kv.commit(txn, None).unwrap();
        latencies.push(begun.elapsed());
        i += 1;
    }
    latencies
}

/// "p50 .. ms, p99 .. ms, max .. ms".
fn latencies(samples: &mut [Duration]) -> String {
    samples.sort();
    let ms = |p: f64| {
        let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
        samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(0.5),
        ms(0.99),
        ms(1.0)
    )
}

/// ", data file N MiB" for a file, nothing otherwise. redb reuses freed pages: the file does
/// not shrink when versions are pruned.
fn file_size(file: Option<&Path>) -> String {
    file.map_or(String::new(), |path| {
        let bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        format!(", data file {:.1} MiB", bytes as f64 / (1 << 20) as f64)
    })
}
