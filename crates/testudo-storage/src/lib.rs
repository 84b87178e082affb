//! The storage boundary: a versioned key-value store with snapshot reads at a timestamp,
//! ordered range scans and atomic commits with conflict detection.
//!
//! Nothing above this crate knows which engine stores the bytes. Keys and values are opaque
//! byte strings; the engine owns the key layout and the value encoding.
//!
//! **Invariants** (every implementation of [`Kv`] must keep them; `conformance` checks them):
//! - *Timestamps:* every [`Kv::begin`] and every successful [`Kv::commit`] returns a timestamp
//!   strictly greater than every timestamp returned before it by this store.
//! - *Snapshots:* a snapshot at `ts` sees exactly the commits with a timestamp `<= ts`, now and
//!   forever, unless a [`Kv::prune`] with a later horizon reclaimed what it saw; it never
//!   waits for a writer.
//! - *Commits:* a write set is applied entirely or not at all, durably before `commit` returns
//!   `Ok`. It fails with [`CommitError::Conflict`] if any key or range it read changed after its
//!   snapshot, so committed transactions are serializable in timestamp order.
//! - *Reclamation:* [`Kv::prune`] at `horizon` changes nothing a read at a timestamp
//!   `>= horizon` returns (a pruned tombstone reads as absent, as before), and never makes a
//!   commit succeed that should have conflicted.
//!
//! **Map of the crate.** The trait and its value types live here. [`LocalKv`] implements it for
//! any [`Backend`] (an ordered store of versioned entries): it owns the clock (`clock.rs`),
//! conflict detection (`occ.rs`), the group-commit sequencer (`pipeline.rs`), snapshot reads
//! (`snapshot.rs`) and reclamation planning (`prune.rs`). [`MemBackend`] is the in-memory
//! backend; `testudo-storage-redb` is the embedded one. With the `conformance` feature,
//! [`conformance`] is the suite every implementation of [`Kv`] must pass, and
//! [`differential`] checks a [`LocalKv`] over any backend against a model.

use std::ops::Bound;
use std::time::Instant;

pub use testudo_model::Ts;

mod backend;
mod clock;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "conformance")]
pub mod differential;
mod local;
mod mem;
mod occ;
mod pipeline;
mod prune;
mod snapshot;

pub use backend::{Backend, BackendView, BatchWrite, Entry, EntryIter, KeyTail};
pub use local::{BATCH_SIZE_BOUNDS, CommitStats, LocalKv, LocalKvOptions};
pub use mem::MemBackend;
pub use occ::WindowLimits;

/// A versioned key-value store.
pub trait Kv: Send + Sync {
    /// Starts a read at a fresh timestamp, strictly greater than every timestamp returned so
    /// far. The snapshot contains every commit with a smaller timestamp. Never waits for a
    /// writer's evaluation (it may wait, rarely, for an already validated batch to finish its
    /// flush; see `clock.rs`).
    fn begin(&self) -> Result<Box<dyn Snapshot>, KvError>;

    /// Commits `writes` at a new timestamp after checking that nothing in `reads` changed
    /// after `snapshot_ts`. Several concurrent commits may share one durable flush.
    ///
    /// A commit still queued when `deadline` passes is dropped and reported as
    /// [`CommitError::DeadlineExceeded`]: nothing of it is applied.
    fn commit(&self, txn: WriteSet, deadline: Option<Instant>) -> Result<Ts, CommitError>;

    /// The timestamp of the newest durable commit (0 for an empty store). A commit that wrote
    /// nothing (a read-only transaction validated through `commit`) does not move it.
    fn last_commit_ts(&self) -> Ts;

    /// Commit counters since open, for metrics; `None` for a store that keeps none (a
    /// wrapper store forwards its inner store's).
    fn commit_stats(&self) -> Option<CommitStats> {
        None
    }

    /// Physically removes, for keys in `range`, every version that no snapshot at or after
    /// `horizon` can see: all versions older than the key's newest version with a timestamp
    /// `<= horizon`, and that version too when it is a tombstone (the key was deleted by then).
    /// What any snapshot at a timestamp `>= horizon` sees never changes. Snapshots older than
    /// `horizon` may lose data: callers keep `horizon` below every live snapshot they care
    /// about. (A transaction that read data a prune changed always conflicts at commit.)
    ///
    /// Looks at no more than `max_keys` keys per call (resume with `resume_at`; 0 looks at
    /// none); runs as its own backend batch through the commit path, so it never blocks
    /// readers and never interleaves with a half-applied commit. A `horizon` above
    /// [`Kv::last_commit_ts`] is lowered to it.
    fn prune(&self, range: KeyRange, horizon: Ts, max_keys: usize) -> Result<PruneStats, KvError>;

    /// Flushes and closes the store; every later call fails with [`KvError::Closed`].
    fn close(&self) -> Result<(), KvError>;
}

/// A consistent, read-only view of the store at [`Snapshot::ts`].
///
/// Every `at` (and the upper end of a `ts_range`) is capped at [`Snapshot::ts`]: a snapshot
/// never shows a commit newer than itself.
pub trait Snapshot: Send {
    /// The snapshot's timestamp (the transaction time of a read-only query).
    fn ts(&self) -> Ts;

    /// The newest version of `key` with a timestamp `<= at` (tombstones included).
    /// `at` should not exceed [`Snapshot::ts`]; a larger `at` reads as [`Snapshot::ts`].
    fn get(&self, key: &[u8], at: Ts) -> Result<Option<Version>, KvError>;

    /// For every key in `range`, in key order (or reverse), its newest version with a
    /// timestamp `<= at`. Keys whose newest such version is a tombstone are skipped.
    fn scan<'a>(
        &'a self,
        range: KeyRange,
        at: Ts,
        order: ScanOrder,
    ) -> Result<ScanIter<'a>, KvError>;

    /// An ascending [`Snapshot::scan`] that also returns the keys whose newest version with a
    /// timestamp `<= at` is a tombstone (with `value: None`): deleted keys whose history is
    /// still stored, which a backup must keep so that reads in the past still see them.
    fn scan_with_tombstones<'a>(&'a self, range: KeyRange, at: Ts)
    -> Result<ScanIter<'a>, KvError>;

    /// All stored versions of `key` with timestamps in `ts_range`, newest first, tombstones
    /// included.
    fn versions<'a>(
        &'a self,
        key: &[u8],
        ts_range: (Bound<Ts>, Bound<Ts>),
    ) -> Result<VersionIter<'a>, KvError>;
}

/// Work done by one [`Kv::prune`] call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneStats {
    /// Keys looked at (each had at least one stored version when looked at).
    pub keys_scanned: u64,
    pub versions_removed: u64,
    /// Where to continue (the first key not yet looked at), or `None` if `range` is done.
    pub resume_at: Option<Vec<u8>>,
}

pub type ScanIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Version), KvError>> + 'a>;
pub type VersionIter<'a> = Box<dyn Iterator<Item = Result<Version, KvError>> + 'a>;

/// One version of one key. `value == None` is a tombstone (the key was deleted at `ts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub ts: Ts,
    pub value: Option<Vec<u8>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanOrder {
    Ascending,
    Descending,
}

/// A range of keys: `start` inclusive, `end` exclusive (`None` = unbounded).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    pub fn new(start: impl Into<Vec<u8>>, end: impl Into<Vec<u8>>) -> KeyRange {
        KeyRange {
            start: start.into(),
            end: Some(end.into()),
        }
    }

    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> KeyRange {
        KeyRange {
            start: prefix.to_vec(),
            end: prefix_successor(prefix),
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }
}

/// The smallest key greater than every key starting with `prefix` (`None` if there is none).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// What a transaction read (for conflict detection) and what it writes.
#[derive(Clone, Debug, Default)]
pub struct WriteSet {
    /// The timestamp of the snapshot the transaction read at.
    pub snapshot_ts: Ts,
    /// Keys read; a commit after `snapshot_ts` that wrote any of them is a conflict.
    pub read_keys: Vec<Vec<u8>>,
    /// Ranges read (scans); a commit after `snapshot_ts` that wrote into any is a conflict.
    pub read_ranges: Vec<KeyRange>,
    /// Writes in order; a later write to the same key wins. `None` writes a tombstone.
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("storage I/O error: {0}")]
    Io(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the store is closed")]
    Closed,
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("transaction conflicts with a concurrent commit")]
    Conflict,
    #[error("the commit deadline passed before the transaction was applied")]
    DeadlineExceeded,
    #[error(transparent)]
    Kv(#[from] KvError),
}
