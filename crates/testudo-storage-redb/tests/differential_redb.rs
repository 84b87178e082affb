//! The differential harness (`testudo_storage::differential`) on `LocalKv<RedbBackend>`: the
//! same random operations and model as on the in-memory backend, so redb's range scans and
//! its removal of tails (one pass per stretch of adjacent tails) are checked against it.

// Tests may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used)]

use testudo_storage::{LocalKvOptions, differential};

#[test]
fn random_operations_match_the_model() {
    // Durability changes nothing the model can see; without it the seeds run quickly.
    let options = LocalKvOptions {
        durable: false,
        ..LocalKvOptions::default()
    };
    for seed in 1..=20 {
        let dir = tempfile::tempdir().unwrap();
        let kv = testudo_storage_redb::open_local(dir.path(), options).unwrap();
        differential::run(kv, seed, 400);
    }
}
