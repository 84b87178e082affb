//! The conformance suite on the redb backend, each store in its own temporary directory.

// Tests may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use tempfile::TempDir;
use testudo_storage::{
    CommitError, KeyRange, Kv, KvError, LocalKv, LocalKvOptions, PruneStats, Snapshot, Ts, WriteSet,
};
use testudo_storage_redb::RedbBackend;

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

fn make() -> impl Fn() -> Arc<dyn Kv> {
    || {
        let dir = tempfile::tempdir().unwrap();
        let kv = testudo_storage_redb::open_local(dir.path(), LocalKvOptions::default()).unwrap();
        Arc::new(InTempDir { kv, _dir: dir }) as Arc<dyn Kv>
    }
}

testudo_storage::conformance_tests!(make());
