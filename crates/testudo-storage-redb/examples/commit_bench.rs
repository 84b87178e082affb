//! Group-commit benchmark: N threads each commit small write sets in a loop against a redb
//! store in a temporary directory, for a few seconds; prints commits/s, fsyncs/s (backend
//! batches, each one `Durability::Immediate` commit), commits per fsync and the median and p99
//! commit latency.
//!
//! ```text
//! cargo run --release -p testudo-storage-redb --example commit_bench -- [threads,...] [seconds] [dir]
//! ```
//! Defaults: `1,8,64` threads, 3 seconds, a temporary directory under the system temp dir.
//! It measures; it asserts nothing.

// A benchmark aborts on any error: unwrapping is the honest thing to do.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use testudo_storage::{Kv, LocalKvOptions, WriteSet};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: Vec<usize> = args
        .first()
        .map_or("1,8,64", String::as_str)
        .split(',')
        .map(|n| n.trim().parse().unwrap())
        .collect();
    let seconds: f64 = args.get(1).map_or(3.0, |s| s.parse().unwrap());
    let parent = args
        .get(2)
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    println!(
        "commit_bench: {seconds} s per run, stores under {}",
        parent.display()
    );
    for n in threads {
        run(n, Duration::from_secs_f64(seconds), &parent);
    }
}

fn run(threads: usize, duration: Duration, parent: &std::path::Path) {
    let dir = tempfile::tempdir_in(parent).unwrap();
    let kv =
        Arc::new(testudo_storage_redb::open_local(dir.path(), LocalKvOptions::default()).unwrap());
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let kv = &kv;
                let stop = &stop;
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let value = vec![0x42u8; 100];
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let begun = Instant::now();
                        let snapshot_ts = kv.begin().unwrap().ts();
                        let doc = format!("doc/{t}/{}", i % 1000).into_bytes();
                        let index = format!("idx/{t}/{i}").into_bytes();
                        let txn = WriteSet {
                            snapshot_ts,
                            read_keys: vec![doc.clone()],
                            writes: vec![(doc, Some(value.clone())), (index, Some(Vec::new()))],
                            ..WriteSet::default()
                        };
                        kv.commit(txn, None).unwrap();
                        latencies.push(begun.elapsed());
                        i += 1;
                    }
                    latencies
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let stats = kv.stats();
    kv.close().unwrap();
    latencies.sort();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{threads:>3} threads: {:>8.0} commits/s {:>7.0} fsyncs/s {:>6.1} commits/fsync  \
         latency p50 {:.2} ms p99 {:.2} ms  ({} conflicts)",
        stats.commits as f64 / elapsed,
        stats.batches as f64 / elapsed,
        stats.commits as f64 / stats.batches.max(1) as f64,
        percentile(0.5),
        percentile(0.99),
        stats.conflicts,
    );
}
