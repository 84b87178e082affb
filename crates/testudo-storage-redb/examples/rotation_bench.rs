//! Online data-key rotation benchmark: seeds an encrypted store with 256 MiB of random
//! values, samples point reads and small durable writes before a rotation and while the
//! background pass runs at its default duty cycle (the pass's throughput and what queries
//! see meanwhile), then rotates again flat out (the offline finishing path) and reports the
//! longest time the pass held reads and writes back.
//!
//! ```text
//! cargo run --release -p testudo-storage-redb --example rotation_bench -- [dir]
//! ```
//! Default directory: the system temp dir. It measures; it asserts nothing.

// A benchmark aborts on any error: unwrapping is the honest thing to do.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use testudo_storage::{Kv, LocalKvOptions, WriteSet};
use testudo_storage_redb::keys::MasterKey;
use testudo_storage_redb::{open_store, request_rotation, rotate_data, rotation_status};
use zeroize::Zeroizing;

/// Latency percentiles of `samples` (p50, p99, max), in microseconds.
fn percentiles(samples: &mut [Duration]) -> (u128, u128, u128) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_micros();
    (at(0.5), at(0.99), at(1.0))
}

fn put(kv: &dyn Kv, key: Vec<u8>, value: Vec<u8>) {
    let snapshot_ts = kv.begin().unwrap().ts();
    let ws = WriteSet {
        snapshot_ts,
        writes: vec![(key, Some(value))],
        ..WriteSet::default()
    };
    kv.commit(ws, None).unwrap();
}

/// Point reads (of the large values) and small durable writes, alternated, while `go` holds;
/// the latencies of each.
fn sample_queries(
    kv: &dyn Kv,
    go: &mut dyn FnMut(usize) -> bool,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut reads, mut writes) = (Vec::new(), Vec::new());
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    while go(reads.len()) {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let key = format!("big/{}/{}", (seed >> 33) % 256, (seed >> 20) % 64);
        let started = Instant::now();
        let s = kv.begin().unwrap();
        assert!(s.get(key.as_bytes(), s.ts()).unwrap().is_some());
        drop(s);
        reads.push(started.elapsed());
        let started = Instant::now();
        let small = format!("small/{}", writes.len()).into_bytes();
        put(kv, small, b"a small durable write".to_vec());
        writes.push(started.elapsed());
    }
    (reads, writes)
}

fn main() {
    let base = std::env::args()
        .nth(1)
        .map_or_else(std::env::temp_dir, Into::into);
    let key = MasterKey::from_bytes(&Zeroizing::new([1; 32]));
    let dir = tempfile::tempdir_in(base).unwrap();
    let kv = open_store(dir.path(), Some(&key), LocalKvOptions::default()).unwrap();
    let mut seed = 1u64;
    for c in 0..256 {
        let snapshot_ts = kv.begin().unwrap().ts();
        let writes = (0..64)
            .map(|j| {
                let value: Vec<u8> = (0..16384)
                    .map(|_| {
                        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        (seed >> 56) as u8
                    })
                    .collect();
                (format!("big/{c}/{j}").into_bytes(), Some(value))
            })
            .collect();
        let ws = WriteSet {
            snapshot_ts,
            writes,
            ..WriteSet::default()
        };
        kv.commit(ws, None).unwrap();
    }
    let (mut reads, mut writes) = sample_queries(&kv, &mut |n| n < 2000);
    let (r, w) = (percentiles(&mut reads), percentiles(&mut writes));
    println!("before: point read p50/p99/max {r:?} µs, durable write {w:?} µs");

    let status = request_rotation(dir.path(), &key).unwrap();
    let started = Instant::now();
    let (mut reads, mut writes) = sample_queries(&kv, &mut |n| {
        n % 16 != 0 || rotation_status(dir.path()).unwrap().is_some()
    });
    let took = started.elapsed();
    let mib = (status.total * 4096) as f64 / (1 << 20) as f64;
    let (r, w) = (percentiles(&mut reads), percentiles(&mut writes));
    println!(
        "online at the default duty: {mib:.0} MiB in {:.1} s ({:.1} MiB/s, including up to 2 s \
         until the store noticed the request)",
        took.as_secs_f64(),
        mib / took.as_secs_f64()
    );
    println!("during: point read p50/p99/max {r:?} µs, durable write {w:?} µs");
    kv.close().unwrap();

    let status = request_rotation(dir.path(), &key).unwrap();
    let started = Instant::now();
    let report = rotate_data(dir.path(), &key, &mut |_, _| {}).unwrap();
    let took = started.elapsed();
    let mib = (status.total * 4096) as f64 / (1 << 20) as f64;
    println!(
        "flat out (duty 1, no queries): {mib:.0} MiB in {:.1} s ({:.1} MiB/s); the gate \
         (reads and writes wait) held at most {:?} µs at a time",
        took.as_secs_f64(),
        mib / took.as_secs_f64(),
        report.longest_stall_us
    );
}
