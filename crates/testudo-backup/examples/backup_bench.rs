//! Backup throughput on a redb store: builds (or reuses) a store of about the asked size,
//! then times `cp -r` of its data directory, a backup (plain and encrypted), verify and
//! restore, on the same disk. The figures in `docs/BENCHMARKS.md` ("Backup") come from it.
//!
//! ```text
//! cargo run --release -p testudo-backup --example backup_bench -- <work dir> <value MiB> [cold]
//! ```
//!
//! `<value MiB>` is how many value bytes to write (the store on disk is about 1.6 times that);
//! `backup-only` takes one plain backup and stops (for a profiler); with `cold` (root only) the page cache is dropped before `cp` and before each backup, so
//! both read from the disk.
//!
//! Values are 1 KiB, half random bytes and half text (documents compress somewhat, never
//! entirely); each key has one version, a tenth of them a second one. The work directory is
//! reused between runs (the store is only built once) and must be on the disk to measure.

#![allow(clippy::unwrap_used)] // a benchmark: a failure ends it

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use testudo_backup::{SnapshotOptions, create_backup, no_progress, restore_to_dir, verify};
use testudo_storage::{Kv, LocalKvOptions, WriteSet};
use testudo_storage_redb::keys::MasterKey;
use testudo_storage_redb::open_store;

const VALUE: usize = 1024;
const BATCH: u64 = 2000;

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn build(dir: &Path, target_mib: u64) {
    let kv = open_store(dir, None, LocalKvOptions::default()).unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut key_id = 0u64;
    let mut written = 0u64;
    while written < target_mib << 20 {
        written += BATCH * VALUE as u64;
        let mut writes = Vec::with_capacity(BATCH as usize);
        for _ in 0..BATCH {
            let mut value = Vec::with_capacity(VALUE);
            while value.len() < VALUE / 2 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                value.extend_from_slice(&state.to_le_bytes());
            }
            while value.len() < VALUE {
                value.extend_from_slice(b"{\"title\":\"a document\",\"n\":");
            }
            value.truncate(VALUE);
            let mut key = 0u64.to_be_bytes().to_vec();
            key.push(1);
            key.extend_from_slice(&1024u64.to_be_bytes());
            // A tenth of the batch rewrites an older key: a second version.
            let id = if key_id % 10 == 9 { key_id / 2 } else { key_id };
            key.extend_from_slice(&id.to_be_bytes());
            key_id += 1;
            writes.push((key, Some(value)));
        }
        writes.sort();
        writes.dedup_by(|a, b| a.0 == b.0);
        let txn = WriteSet {
            snapshot_ts: kv.begin().unwrap().ts(),
            writes,
            ..Default::default()
        };
        kv.commit(txn, None).unwrap();
    }
    kv.close().unwrap();
}

/// `cp -r` of the store's directory and a `sync`, timed.
fn copy_dir(work: &Path, store: &Path, size: u64, drop_caches: &dyn Fn()) {
    let copy = work.join("copy");
    let _ = std::fs::remove_dir_all(&copy);
    drop_caches();
    let start = Instant::now();
    let status = Command::new("cp")
        .arg("-r")
        .arg(store)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    Command::new("sync").status().unwrap();
    let cp = start.elapsed().as_secs_f64();
    println!("cp -r + sync: {cp:.2}s, {:.0} MiB/s", mib(size) / cp);
    std::fs::remove_dir_all(&copy).unwrap();
}

fn main() {
    let mut args = std::env::args().skip(1);
    let work = std::path::PathBuf::from(args.next().expect("usage: <work dir> <value MiB> [cold]"));
    let target: u64 = args.next().map(|a| a.parse().unwrap()).unwrap_or(640);
    let mode = args.next();
    let cold = mode.as_deref() == Some("cold");
    // `backup-only`: one plain backup and nothing else (for profiling).
    let backup_only = mode.as_deref() == Some("backup-only");
    let drop_caches = || {
        if cold {
            Command::new("sync").status().unwrap();
            std::fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
        }
    };
    let store = work.join("store");
    if !store.join("data.redb").exists() {
        let start = Instant::now();
        build(&store, target);
        eprintln!("built the store in {:.1}s", start.elapsed().as_secs_f64());
    }
    let size = dir_bytes(&store);
    println!("store: {:.1} MiB on disk", mib(size));

    if !backup_only {
        copy_dir(&work, &store, size, &drop_caches);
    }

    let (master, _) = MasterKey::generate().unwrap();
    for (label, key) in [("plain", None), ("encrypted", Some(&master))] {
        let out = work.join(format!("backups-{label}"));
        let _ = std::fs::remove_dir_all(&out);
        let kv = open_store(&store, None, LocalKvOptions::default()).unwrap();
        let options = SnapshotOptions {
            master: key,
            ..Default::default()
        };
        drop_caches();
        let start = Instant::now();
        let created = create_backup(&kv, &out, &options, &no_progress).unwrap();
        let took = start.elapsed().as_secs_f64();
        kv.close().unwrap();
        let m = &created.manifest;
        if backup_only {
            println!("backup {label}: {took:.2}s");
            return;
        }
        println!(
            "backup {label}: {took:.2}s, {:.0} MiB/s of store, {:.0} MiB/s of records; \
             {} keys, {} versions, {:.1} MiB records -> {:.1} MiB file",
            mib(size) / took,
            mib(m.raw_bytes) / took,
            m.keys,
            m.versions,
            mib(m.raw_bytes),
            mib(created.bytes)
        );
        let start = Instant::now();
        verify(&created.path, key, &no_progress).unwrap();
        let took = start.elapsed().as_secs_f64();
        println!(
            "verify {label}: {took:.2}s, {:.0} MiB/s of file",
            mib(created.bytes) / took
        );
        let target = work.join(format!("restored-{label}"));
        let _ = std::fs::remove_dir_all(&target);
        let start = Instant::now();
        restore_to_dir(&created.path, key, &target, &no_progress).unwrap();
        let took = start.elapsed().as_secs_f64();
        println!(
            "restore {label}: {took:.2}s (verify + load), {:.0} MiB/s of records",
            mib(m.raw_bytes) / took
        );
        std::fs::remove_dir_all(&target).unwrap();
        std::fs::remove_dir_all(&out).unwrap();
    }
    // Keep the assertion cheap and honest: the store was not changed by any of this.
    let kv = open_store(&store, None, LocalKvOptions::default()).unwrap();
    assert!(kv.last_commit_ts().0 > 0);
    kv.close().unwrap();
}
