//! The differential harness (`testudo_storage::differential`) on `LocalKv<MemBackend>`.

// Tests may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used)]

use testudo_storage::{LocalKv, LocalKvOptions, MemBackend, differential};

#[test]
fn random_operations_match_the_model() {
    for seed in 1..=40 {
        let kv = LocalKv::open(MemBackend::new(), LocalKvOptions::default()).unwrap();
        differential::run(kv, seed, 400);
    }
}
