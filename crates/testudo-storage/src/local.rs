//! [`LocalKv`]: the [`Kv`] implementation for a single process over any [`Backend`].
//!
//! It wires the clock (`clock.rs`), the group-commit sequencer (`pipeline.rs`, which owns the
//! conflict window of `occ.rs`), snapshot reads (`snapshot.rs`) and reclamation (`prune.rs`)
//! around one backend.
//!
//! **Invariants:** `begin` takes one short lock and allocates only the snapshot box (the
//! backend view is taken lazily, on the snapshot's first read; any view taken after `begin`
//! contains every commit below the snapshot's timestamp, see `clock.rs`); `commit` blocks only
//! on its own reply; `prune` plans on the caller's thread and hands the sequencer only the
//! removal; after `close` every call fails with [`KvError::Closed`], including reads
//! on snapshots taken before it; dropping a `LocalKv` closes it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::backend::Backend;
use crate::clock::Clock;
use crate::occ::{ConflictWindow, WindowLimits};
use crate::pipeline::{self, Job, PruneJob, Queue, Request};
use crate::snapshot::LocalSnapshot;
use crate::{CommitError, KeyRange, Kv, KvError, PruneStats, Snapshot, Ts, WriteSet};

/// Tuning of a [`LocalKv`].
#[derive(Clone, Copy, Debug)]
pub struct LocalKvOptions {
    /// Most transactions in one backend batch.
    pub max_batch_commits: usize,
    /// Most bytes (keys and values written, keys read) in one backend batch; a single larger
    /// transaction still commits, alone.
    pub max_batch_bytes: usize,
    /// How much commit history conflict detection keeps.
    pub window: WindowLimits,
    /// Ask the backend to flush every batch to stable storage before answering.
    pub durable: bool,
}

impl Default for LocalKvOptions {
    fn default() -> LocalKvOptions {
        LocalKvOptions {
            max_batch_commits: 1024,
            max_batch_bytes: 16 << 20,
            window: WindowLimits::default(),
            durable: true,
        }
    }
}

/// Upper bounds of the batch-size histogram ([`CommitStats::batch_sizes`]): transactions
/// per backend batch. The last bucket counts larger batches.
pub const BATCH_SIZE_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// The bucket of [`BATCH_SIZE_BOUNDS`] a batch of `n` transactions is counted in.
pub(crate) fn batch_size_bucket(n: u64) -> usize {
    BATCH_SIZE_BOUNDS
        .iter()
        .position(|&bound| n <= bound)
        .unwrap_or(BATCH_SIZE_BOUNDS.len())
}

/// Counters since open (for benchmarks and metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CommitStats {
    /// Transactions committed.
    pub commits: u64,
    /// Backend batches written (each one flush when durable).
    pub batches: u64,
    /// Those batches by how many transactions each held: `batch_sizes[i]` counts batches of
    /// at most `BATCH_SIZE_BOUNDS[i]` (and more than the bound before); the last entry counts
    /// the larger ones. Not cumulative.
    pub batch_sizes: [u64; BATCH_SIZE_BOUNDS.len() + 1],
    /// Transactions in those batches (the histogram's sum).
    pub batched_commits: u64,
    pub conflicts: u64,
    pub deadline_exceeded: u64,
    /// Transactions failed by a backend error.
    pub failed_commits: u64,
    /// Prune batches applied (each one flush when durable).
    pub prunes: u64,
    /// Versions those prunes removed.
    pub versions_pruned: u64,
}

#[derive(Default)]
pub(crate) struct Stats {
    pub commits: AtomicU64,
    pub batches: AtomicU64,
    pub batch_sizes: [AtomicU64; BATCH_SIZE_BOUNDS.len() + 1],
    pub batched_commits: AtomicU64,
    pub conflicts: AtomicU64,
    pub deadline_exceeded: AtomicU64,
    pub failed_commits: AtomicU64,
    pub prunes: AtomicU64,
    pub versions_pruned: AtomicU64,
}

/// What the handle, the sequencer and every snapshot share.
pub(crate) struct Shared<B: Backend> {
    pub backend: B,
    pub clock: Clock,
    pub queue: Queue,
    pub closed: AtomicBool,
    pub last_commit: AtomicU64,
    pub stats: Stats,
    pub options: LocalKvOptions,
}

/// A [`Kv`] over one local [`Backend`]: clock, conflict detection and group commit.
pub struct LocalKv<B: Backend> {
    shared: Arc<Shared<B>>,
    sequencer: Mutex<Option<JoinHandle<()>>>,
}

impl<B: Backend> LocalKv<B> {
    /// Starts the store on `backend`: the clock continues after the backend's last commit.
    pub fn open(backend: B, options: LocalKvOptions) -> Result<LocalKv<B>, KvError> {
        let last_commit = backend.last_commit_ts()?;
        let shared = Arc::new(Shared {
            backend,
            clock: Clock::new(last_commit),
            queue: Queue::default(),
            closed: AtomicBool::new(false),
            last_commit: AtomicU64::new(last_commit.0),
            stats: Stats::default(),
            options,
        });
        let window = ConflictWindow::new(last_commit, options.window);
        let sequencer = pipeline::spawn(shared.clone(), window)
            .map_err(|e| KvError::Io(format!("cannot start the commit thread: {e}")))?;
        Ok(LocalKv {
            shared,
            sequencer: Mutex::new(Some(sequencer)),
        })
    }

    pub fn stats(&self) -> CommitStats {
        let stats = &self.shared.stats;
        CommitStats {
            commits: stats.commits.load(Ordering::Relaxed),
            batches: stats.batches.load(Ordering::Relaxed),
            batch_sizes: std::array::from_fn(|i| {
                stats
                    .batch_sizes
                    .get(i)
                    .map_or(0, |n| n.load(Ordering::Relaxed))
            }),
            batched_commits: stats.batched_commits.load(Ordering::Relaxed),
            conflicts: stats.conflicts.load(Ordering::Relaxed),
            deadline_exceeded: stats.deadline_exceeded.load(Ordering::Relaxed),
            failed_commits: stats.failed_commits.load(Ordering::Relaxed),
            prunes: stats.prunes.load(Ordering::Relaxed),
            versions_pruned: stats.versions_pruned.load(Ordering::Relaxed),
        }
    }

    pub fn backend(&self) -> &B {
        &self.shared.backend
    }
}

impl LocalKv<crate::MemBackend> {
    /// A fresh in-memory store with default options.
    pub fn in_memory() -> Result<LocalKv<crate::MemBackend>, KvError> {
        LocalKv::open(crate::MemBackend::new(), LocalKvOptions::default())
    }
}

impl<B: Backend> Kv for LocalKv<B> {
    fn begin(&self) -> Result<Box<dyn Snapshot>, KvError> {
        let ts = self.shared.clock.begin()?;
        Ok(Box::new(LocalSnapshot::new(self.shared.clone(), ts)))
    }

    fn commit(&self, txn: WriteSet, deadline: Option<Instant>) -> Result<Ts, CommitError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(KvError::Closed.into());
        }
        if deadline.is_some_and(|deadline| deadline <= Instant::now()) {
            self.shared
                .stats
                .deadline_exceeded
                .fetch_add(1, Ordering::Relaxed);
            return Err(CommitError::DeadlineExceeded);
        }
        let (reply, answer) = sync_channel(1);
        let request = Request::new(txn, deadline, reply);
        self.shared.queue.push(Job::Commit(request))?;
        // The sender is dropped unanswered only if the sequencer died.
        answer
            .recv()
            .unwrap_or(Err(CommitError::Kv(KvError::Closed)))
    }

    fn last_commit_ts(&self) -> Ts {
        Ts(self.shared.last_commit.load(Ordering::Acquire))
    }

    fn commit_stats(&self) -> Option<CommitStats> {
        Some(self.stats())
    }

    fn prune(&self, range: KeyRange, horizon: Ts, max_keys: usize) -> Result<PruneStats, KvError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(KvError::Closed);
        }
        // Read before taking the view: the view then holds every version at or below it, and
        // no later commit can add one (see `prune.rs`).
        let horizon = horizon.min(self.last_commit_ts());
        let plan = {
            let view = self.shared.backend.view()?;
            crate::prune::plan(&view, &range, horizon, max_keys)?
        };
        let versions_removed = if plan.tails.is_empty() {
            0
        } else {
            let (reply, answer) = sync_channel(1);
            let job = PruneJob {
                tails: plan.tails,
                reply,
            };
            self.shared.queue.push(Job::Prune(job))?;
            // The sender is dropped unanswered only if the sequencer died.
            answer.recv().unwrap_or(Err(KvError::Closed))?
        };
        Ok(PruneStats {
            keys_scanned: plan.keys_scanned,
            versions_removed,
            resume_at: plan.resume_at,
        })
    }

    fn close(&self) -> Result<(), KvError> {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return Err(KvError::Closed);
        }
        self.shared.clock.close();
        // Commits already queued are still applied; new ones are refused.
        self.shared.queue.close();
        let sequencer = self
            .sequencer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(sequencer) = sequencer
            && sequencer.join().is_err()
        {
            // Its pending committers were answered `Closed` by its death watch.
            self.shared.backend.close()?;
            return Err(KvError::Io("the commit sequencer panicked".into()));
        }
        self.shared.backend.close()
    }
}

impl<B: Backend> Drop for LocalKv<B> {
    fn drop(&mut self) {
        if !self.shared.closed.load(Ordering::Acquire)
            && let Err(error) = self.close()
        {
            tracing::error!(%error, "closing the store on drop failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::MemView;
    use crate::{BatchWrite, KeyRange, KeyTail, MemBackend};
    use std::sync::Condvar;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A backend whose writes wait at a gate the test opens, and can be told to fail.
    #[derive(Default)]
    struct Gated {
        inner: MemBackend,
        open: Mutex<bool>,
        opened: Condvar,
        entered: AtomicUsize,
        fail_next: AtomicBool,
    }

    impl Gated {
        fn open_gate(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }

    impl Backend for Arc<Gated> {
        type View = MemView;

        fn view(&self) -> Result<MemView, KvError> {
            self.inner.view()
        }

        fn write_batch(
            &self,
            writes: &[BatchWrite<'_>],
            last: Ts,
            durable: bool,
        ) -> Result<(), KvError> {
            self.entered.fetch_add(1, Ordering::SeqCst);
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            if self.fail_next.swap(false, Ordering::SeqCst) {
                return Err(KvError::Io("injected failure".into()));
            }
            self.inner.write_batch(writes, last, durable)
        }

        fn remove_tails(&self, tails: &[KeyTail<'_>], durable: bool) -> Result<u64, KvError> {
            self.inner.remove_tails(tails, durable)
        }

        fn last_commit_ts(&self) -> Result<Ts, KvError> {
            self.inner.last_commit_ts()
        }

        fn close(&self) -> Result<(), KvError> {
            self.inner.close()
        }
    }

    fn gated() -> (Arc<Gated>, LocalKv<Arc<Gated>>) {
        let gate = Arc::new(Gated::default());
        let kv = LocalKv::open(gate.clone(), LocalKvOptions::default()).unwrap();
        (gate, kv)
    }

    fn write(kv: &dyn Kv, key: &[u8], deadline: Option<Instant>) -> Result<Ts, CommitError> {
        let snapshot_ts = kv.begin()?.ts();
        write_at(kv, snapshot_ts, key, deadline)
    }

    /// Commits without a `begin`: a begin during a flush may (rarely) wait for it, and these
    /// tests hold flushes at a gate.
    fn write_at(
        kv: &dyn Kv,
        snapshot_ts: Ts,
        key: &[u8],
        deadline: Option<Instant>,
    ) -> Result<Ts, CommitError> {
        let writes = vec![(key.to_vec(), Some(b"v".to_vec()))];
        kv.commit(
            WriteSet {
                snapshot_ts,
                writes,
                ..WriteSet::default()
            },
            deadline,
        )
    }

    fn wait_until(condition: impl Fn() -> bool) {
        while !condition() {
            std::thread::yield_now();
        }
    }

    #[test]
    fn commits_queued_during_a_flush_share_the_next_batch() {
        let (gate, kv) = gated();
        let snapshot_ts = kv.begin().unwrap().ts();
        std::thread::scope(|scope| {
            let kv = &kv;
            let first = scope.spawn(move || write(kv, b"first", None));
            wait_until(|| gate.entered.load(Ordering::SeqCst) == 1);
            let rest: Vec<_> = (0..5u8)
                .map(|i| scope.spawn(move || write_at(kv, snapshot_ts, &[b'k', i], None)))
                .collect();
            wait_until(|| kv.shared.queue.len() == 5);
            gate.open_gate();
            first.join().unwrap().unwrap();
            let mut stamps: Vec<Ts> = rest
                .into_iter()
                .map(|t| t.join().unwrap().unwrap())
                .collect();
            stamps.sort();
            assert!(
                stamps.windows(2).all(|w| w[0].0 + 1 == w[1].0),
                "one batch, consecutive stamps"
            );
        });
        let stats = kv.stats();
        assert_eq!((stats.commits, stats.batches), (6, 2));
        // One batch of one, one of five (counted under the bound 8).
        let mut sizes = [0; BATCH_SIZE_BOUNDS.len() + 1];
        sizes[0] = 1;
        sizes[3] = 1;
        assert_eq!((stats.batch_sizes, stats.batched_commits), (sizes, 6));
    }

    #[test]
    fn a_transaction_reading_what_an_earlier_one_in_its_batch_wrote_conflicts() {
        let (gate, kv) = gated();
        let snapshot_ts = kv.begin().unwrap().ts();
        std::thread::scope(|scope| {
            let kv = &kv;
            let first = scope.spawn(move || write(kv, b"first", None));
            wait_until(|| gate.entered.load(Ordering::SeqCst) == 1);
            let writer = scope.spawn(move || write_at(kv, snapshot_ts, b"k", None));
            wait_until(|| kv.shared.queue.len() == 1);
            let reader = scope.spawn(move || {
                let txn = WriteSet {
                    snapshot_ts,
                    read_keys: vec![b"k".to_vec()],
                    writes: vec![(b"other".to_vec(), None)],
                    ..WriteSet::default()
                };
                kv.commit(txn, None)
            });
            wait_until(|| kv.shared.queue.len() == 2);
            gate.open_gate();
            first.join().unwrap().unwrap();
            writer.join().unwrap().unwrap();
            assert!(matches!(reader.join().unwrap(), Err(CommitError::Conflict)));
        });
        assert_eq!(kv.stats().batches, 2);
    }

    #[test]
    fn a_failed_batch_fails_every_commit_in_it_and_leaves_nothing_visible() {
        let (gate, kv) = gated();
        let before = kv.begin().unwrap().ts();
        gate.fail_next.store(true, Ordering::SeqCst);
        std::thread::scope(|scope| {
            let kv = &kv;
            let first = scope.spawn(move || write(kv, b"first", None));
            wait_until(|| gate.entered.load(Ordering::SeqCst) == 1);
            gate.open_gate();
            assert!(matches!(
                first.join().unwrap(),
                Err(CommitError::Kv(KvError::Io(_)))
            ));
        });
        let snapshot = kv.begin().unwrap();
        assert_eq!(snapshot.get(b"first", snapshot.ts()).unwrap(), None);
        assert_eq!(kv.last_commit_ts(), Ts::ZERO);
        // The failed write is not in the conflict window: a reader of that key still commits.
        let reads = WriteSet {
            snapshot_ts: before,
            read_keys: vec![b"first".to_vec()],
            ..WriteSet::default()
        };
        assert!(kv.commit(reads, None).is_ok());
        assert!(write(&kv, b"second", None).is_ok());
        assert_eq!(kv.stats().failed_commits, 1);
    }

    #[test]
    fn a_prune_queued_between_commits_is_a_batch_of_its_own() {
        let gate = Arc::new(Gated::default());
        for ts in [1, 2] {
            let write = BatchWrite {
                key: b"old",
                ts: Ts(ts),
                value: Some(b"v"),
            };
            gate.inner.write_batch(&[write], Ts(ts), true).unwrap();
        }
        let kv = LocalKv::open(gate.clone(), LocalKvOptions::default()).unwrap();
        let snapshot_ts = kv.begin().unwrap().ts();
        std::thread::scope(|scope| {
            let kv = &kv;
            let first = scope.spawn(move || write(kv, b"first", None));
            wait_until(|| gate.entered.load(Ordering::SeqCst) == 1);
            let before = scope.spawn(move || write_at(kv, snapshot_ts, b"a", None));
            wait_until(|| kv.shared.queue.len() == 1);
            let prune = scope.spawn(move || kv.prune(KeyRange::prefix(b""), Ts(2), 10));
            wait_until(|| kv.shared.queue.len() == 2);
            let after = scope.spawn(move || write_at(kv, snapshot_ts, b"b", None));
            wait_until(|| kv.shared.queue.len() == 3);
            gate.open_gate();
            for commit in [first, before, after] {
                commit.join().unwrap().unwrap();
            }
            let stats = prune.join().unwrap().unwrap();
            assert_eq!((stats.keys_scanned, stats.versions_removed), (1, 1));
        });
        let stats = kv.stats();
        assert_eq!(
            (stats.batches, stats.prunes, stats.versions_pruned),
            (3, 1, 1)
        );
    }

    #[test]
    fn a_commit_whose_deadline_passes_in_the_queue_is_dropped() {
        let (gate, kv) = gated();
        let snapshot_ts = kv.begin().unwrap().ts();
        std::thread::scope(|scope| {
            let kv = &kv;
            let first = scope.spawn(move || write(kv, b"first", None));
            wait_until(|| gate.entered.load(Ordering::SeqCst) == 1);
            let deadline = Instant::now() + Duration::from_millis(20);
            let late = scope.spawn(move || write_at(kv, snapshot_ts, b"late", Some(deadline)));
            wait_until(|| kv.shared.queue.len() == 1);
            while Instant::now() <= deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            gate.open_gate();
            first.join().unwrap().unwrap();
            assert!(matches!(
                late.join().unwrap(),
                Err(CommitError::DeadlineExceeded)
            ));
        });
        let snapshot = kv.begin().unwrap();
        assert_eq!(snapshot.get(b"late", snapshot.ts()).unwrap(), None);
    }

    #[test]
    fn close_applies_the_commits_already_queued() {
        let (gate, kv) = gated();
        let kv = Arc::new(kv);
        let snapshot_ts = kv.begin().unwrap().ts();
        std::thread::scope(|scope| {
            let first = scope.spawn(|| write(&*kv, b"first", None));
            wait_until(|| gate.entered.load(Ordering::SeqCst) == 1);
            let queued = scope.spawn(|| write_at(&*kv, snapshot_ts, b"queued", None));
            wait_until(|| kv.shared.queue.len() == 1);
            let closer = scope.spawn(|| kv.close());
            wait_until(|| kv.shared.closed.load(Ordering::SeqCst));
            gate.open_gate();
            closer.join().unwrap().unwrap();
            first.join().unwrap().unwrap();
            queued.join().unwrap().unwrap();
        });
        assert_eq!(kv.stats().commits, 2);
        assert!(matches!(
            write(&*kv, b"after", None),
            Err(CommitError::Kv(KvError::Closed))
        ));
    }
}
