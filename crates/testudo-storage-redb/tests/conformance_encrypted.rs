//! The conformance suite and the differential harness on the encrypted redb backend
//! (`data.enc` under a master key), each store in its own temporary directory.

// Tests may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use tempfile::TempDir;
use testudo_storage::{
    CommitError, KeyRange, Kv, KvError, LocalKv, LocalKvOptions, PruneStats, Snapshot, Ts, WriteSet,
};
use testudo_storage_redb::RedbBackend;
use testudo_storage_redb::keys::MasterKey;
use zeroize::Zeroizing;

/// A store that deletes its directory when dropped (after closing the store).
struct InTempDir {
    kv: LocalKv<RedbBackend>,
    _dir: TempDir,
}

impl Kv for InTempDir {
    fn begin(&self) -> Result<Box<dyn Snapshot>, KvError> {
        self.kv.begin()
    }

    fn commit(&self, txn: WriteSet, deadline: Option<Instant>) -> Result<Ts, CommitError> {
        self.kv.commit(txn, deadline)
    }

    fn last_commit_ts(&self) -> Ts {
        self.kv.last_commit_ts()
    }

    fn prune(&self, range: KeyRange, horizon: Ts, max_keys: usize) -> Result<PruneStats, KvError> {
        self.kv.prune(range, horizon, max_keys)
    }

    fn close(&self) -> Result<(), KvError> {
        self.kv.close()
    }
}

fn master() -> MasterKey {
    MasterKey::from_bytes(&Zeroizing::new([0x5a; 32]))
}

fn make() -> impl Fn() -> Arc<dyn Kv> {
    || {
        let dir = tempfile::tempdir().unwrap();
        let kv = testudo_storage_redb::open_store(
            dir.path(),
            Some(&master()),
            LocalKvOptions::default(),
        )
        .unwrap();
        Arc::new(InTempDir { kv, _dir: dir }) as Arc<dyn Kv>
    }
}

testudo_storage::conformance_tests!(make());

#[test]
fn random_operations_match_the_model() {
    let options = LocalKvOptions {
        durable: false,
        ..LocalKvOptions::default()
    };
    for seed in 1..=10 {
        let dir = tempfile::tempdir().unwrap();
        let kv = testudo_storage_redb::open_store(dir.path(), Some(&master()), options).unwrap();
        testudo_storage::differential::run(kv, seed, 400);
    }
}
