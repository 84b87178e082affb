//! The conformance suite on `LocalKv<MemBackend>`, plus the properties that only hold for
//! this implementation's tunables (a small conflict window, small batches).

// Tests may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use testudo_storage::{
    CommitError, Kv, LocalKv, LocalKvOptions, MemBackend, WindowLimits, WriteSet,
};

fn make() -> impl Fn() -> Arc<dyn Kv> {
    || Arc::new(LocalKv::in_memory().unwrap()) as Arc<dyn Kv>
}

testudo_storage::conformance_tests!(make());

#[test]
fn the_suite_also_passes_with_one_transaction_per_batch() {
    let make = || {
        let options = LocalKvOptions {
            max_batch_commits: 1,
            ..LocalKvOptions::default()
        };
        Arc::new(LocalKv::open(MemBackend::new(), options).unwrap()) as Arc<dyn Kv>
    };
    testudo_storage::conformance::run_all(&make);
}

#[test]
fn a_snapshot_older_than_the_conflict_window_conflicts_when_it_read_something() {
    let window = WindowLimits {
        max_commits: 2,
        ..WindowLimits::default()
    };
    let options = LocalKvOptions {
        window,
        ..LocalKvOptions::default()
    };
    let kv = LocalKv::open(MemBackend::new(), options).unwrap();
    let old = kv.begin().unwrap().ts();
    for i in 0..3u8 {
        let snapshot_ts = kv.begin().unwrap().ts();
        let writes = vec![(vec![b'w', i], Some(vec![i]))];
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
    let reads = WriteSet {
        snapshot_ts: old,
        read_keys: vec![b"untouched".to_vec()],
        ..WriteSet::default()
    };
    assert!(matches!(kv.commit(reads, None), Err(CommitError::Conflict)));
    let blind = WriteSet {
        snapshot_ts: old,
        writes: vec![(b"x".to_vec(), None)],
        ..WriteSet::default()
    };
    assert!(kv.commit(blind, None).is_ok());
    assert_eq!(kv.stats().conflicts, 1);
}
