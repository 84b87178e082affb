//! Per-database sealing benchmark: the cost of [`SealedKv`] over an encrypted store. Seeds
//! `docs` values of 200 bytes spread over 16 databases, then measures, on the same encrypted
//! store with and without the decorator (alternating, `rounds` times): point reads (one
//! snapshot `get` of a random key, single thread) and creates (one single-write durable
//! commit, single thread, and with 16 threads for group commit). Prints the mean of each;
//! the variant that runs first alternates between rounds.
//!
//! ```text
//! cargo run --release -p testudo-storage-redb --example sealed_bench -- [docs] [reads] [creates] [rounds] [dir]
//! ```
//! Defaults: 10,000 documents, 200,000 reads, 2,000 creates, 3 rounds, the system temp dir.
//! It measures; it asserts nothing.

// A benchmark aborts on any error: unwrapping is the honest thing to do.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use testudo_storage::{Kv, LocalKvOptions, WriteSet};
use testudo_storage_redb::keys::MasterKey;
use testudo_storage_redb::{DatabaseKeys, SealedKv, open_store};
use zeroize::Zeroizing;

const DATABASES: u64 = 16;
const WRITERS: usize = 16;

fn key(i: u64) -> Vec<u8> {
    let mut key = (i % DATABASES + 1).to_be_bytes().to_vec();
    key.push(1);
    key.extend_from_slice(&i.to_be_bytes());
    key
}

/// A cheap deterministic generator (xorshift), so both variants read the same keys.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn commit(kv: &dyn Kv, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
    let snapshot_ts = kv.last_commit_ts();
    kv.commit(
        WriteSet {
            snapshot_ts,
            writes,
            ..WriteSet::default()
        },
        None,
    )
    .unwrap();
}

fn reads(kv: &dyn Kv, docs: u64, offset: u64, n: u64) -> Duration {
    let mut state = 0x9E37_79B9_7F4A_7C15;
    let snapshot = kv.begin().unwrap();
    let ts = snapshot.ts();
    let started = Instant::now();
    for _ in 0..n {
        let got = snapshot
            .get(&key(next(&mut state) % docs + offset), ts)
            .unwrap();
        assert!(got.and_then(|v| v.value).is_some());
    }
    started.elapsed()
}

fn creates(kv: &Arc<dyn Kv>, first: u64, n: u64, threads: usize) -> Duration {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads as u64 {
            let kv = Arc::clone(kv);
            scope.spawn(move || {
                let mut i = first + t;
                while i < first + n {
                    commit(kv.as_ref(), vec![(key(i), Some(vec![b'c'; 200]))]);
                    i += threads as u64;
                }
            });
        }
    });
    started.elapsed()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| args.get(i).map_or(default, |a| a.parse().unwrap());
    let (docs, n_reads, n_creates, rounds) =
        (arg(0, 10_000), arg(1, 200_000), arg(2, 2_000), arg(3, 3));
    let parent = args
        .get(4)
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let dir = tempfile::tempdir_in(parent).unwrap();
    let master = MasterKey::from_bytes(&Zeroizing::new([7u8; 32]));
    let raw: Arc<dyn Kv> =
        Arc::new(open_store(dir.path(), Some(&master), LocalKvOptions::default()).unwrap());
    let keys = DatabaseKeys::open(
        dir.path(),
        MasterKey::from_bytes(&Zeroizing::new([7u8; 32])),
        raw.as_ref(),
    )
    .unwrap();
    let keys = Arc::new(keys);
    let sealed: Arc<dyn Kv> = Arc::new(SealedKv::new(Arc::clone(&raw), Arc::clone(&keys)));

    // The same documents twice: once sealed (read through the decorator), once as is (read
    // without it), in two key ranges so each variant reads its own.
    let seed = |kv: &dyn Kv, offset: u64| {
        for chunk in (0..docs).collect::<Vec<_>>().chunks(1000) {
            let writes = chunk
                .iter()
                .map(|i| (key(i + offset), Some(vec![b'd'; 200])))
                .collect();
            commit(kv, writes);
        }
    };
    let plain_offset = 1 << 40;
    seed(sealed.as_ref(), 0);
    seed(raw.as_ref(), plain_offset);

    println!(
        "sealed_bench: {docs} documents of 200 bytes in {DATABASES} databases, {n_reads} reads, \
         {n_creates} creates, {rounds} rounds, store {}",
        dir.path().display()
    );
    let mut totals = [[Duration::ZERO; 3]; 2];
    let mut next_id = 1 << 41;
    for round in 0..rounds {
        let mut order = [(0, &raw, plain_offset), (1, &sealed, 0)];
        if round % 2 == 1 {
            // Alternate which variant runs first: the store grows as the run goes on.
            order.reverse();
        }
        for (v, kv, offset) in order {
            totals[v][0] += reads(kv.as_ref(), docs, offset, n_reads);
            totals[v][1] += creates(kv, next_id, n_creates, 1);
            next_id += n_creates;
            totals[v][2] += creates(kv, next_id, n_creates * 4, WRITERS);
            next_id += n_creates * 4;
        }
    }
    // The unsealing alone (a 200-byte value: one map lookup under a read lock, one AES-GCM).
    let snapshot = raw.begin().unwrap();
    let stored = snapshot.get(&key(0), snapshot.ts()).unwrap().unwrap();
    let value = stored.value.clone().unwrap();
    let started = Instant::now();
    for _ in 0..n_reads {
        std::hint::black_box(keys.unseal(&key(0), stored.ts, value.clone()).unwrap());
    }
    let unseal = started.elapsed().as_secs_f64() * 1e6 / n_reads as f64;
    drop(snapshot);

    let per_op = |d: Duration, n: u64| d.as_secs_f64() * 1e6 / (n * rounds) as f64;
    println!("| operation | without SealedKv | with SealedKv | difference |");
    println!("|---|---:|---:|---:|");
    for (row, name, n) in [
        (0, "point read (µs/op, 1 thread)", n_reads),
        (1, "create (µs/commit, 1 thread)", n_creates),
        (2, "create (µs/commit, 16 threads)", n_creates * 4),
    ] {
        let (a, b) = (per_op(totals[0][row], n), per_op(totals[1][row], n));
        println!(
            "| {name} | {a:.2} | {b:.2} | {:+.1} % |",
            (b - a) / a * 100.0
        );
    }
    println!("| unsealing one value alone (µs) | | {unseal:.2} | |");
}
