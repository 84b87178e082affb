//! Group commit: one sequencer thread turns queued write sets into ordered, durable batches.
//!
//! Committers enqueue a [`Request`] and block on a reply. The sequencer repeatedly takes every
//! pending request (up to a count and a byte budget), drops those whose deadline has passed
//! (`DeadlineExceeded`), validates each against the conflict window and the transactions
//! accepted before it in the same batch, gives the accepted ones increasing timestamps,
//! writes them all with ONE backend batch (one flush), publishes the batch to readers, and
//! only then answers. While a flush runs, new requests pile up and form the next batch: this
//! is what makes many transactions share one fsync.
//!
//! A prune ([`PruneJob`], planned by `prune.rs`) waits in the same queue and is applied as a
//! batch of its own, between commit batches: it never shares a backend batch with commits and
//! never runs while one is half applied. It reserves no timestamp and publishes nothing (it
//! removes only versions older than every commit still to come).
//!
//! **Invariants:**
//! - A request (commit or prune) is answered exactly once; one whose answer is not `Ok`
//!   applied nothing.
//! - A failed backend write fails every request of its batch and leaves the conflict window
//!   as it was (the batch's timestamps are burned, never reused).
//! - Readers are let past a batch (clock publish) only after its data is visible, and before
//!   any committer of the batch hears back, so a client reads its own writes.
//! - No lock is held during the flush; the window is touched by this thread alone.
//! - If the sequencer dies (a bug), the queue and the clock are closed and every waiting
//!   committer gets `Closed`: nobody hangs.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::backend::{Backend, BatchWrite, KeyTail};
use crate::local::Shared;
use crate::occ::{ConflictWindow, Reads};
use crate::prune::Tail;
use crate::{CommitError, KeyRange, KvError, Ts, WriteSet};

/// One transaction waiting to commit, its writes normalized.
pub(crate) struct Request {
    snapshot_ts: Ts,
    read_keys: Vec<Vec<u8>>,
    read_ranges: Vec<KeyRange>,
    /// Sorted, one per key (the last write of the transaction wins).
    write_keys: Vec<Vec<u8>>,
    /// Parallel to `write_keys`; `None` is a tombstone.
    write_values: Vec<Option<Vec<u8>>>,
    bytes: usize,
    deadline: Option<Instant>,
    reply: SyncSender<Result<Ts, CommitError>>,
}

impl Request {
    /// Normalizes `txn` on the caller's thread, so the sequencer does less.
    pub(crate) fn new(
        txn: WriteSet,
        deadline: Option<Instant>,
        reply: SyncSender<Result<Ts, CommitError>>,
    ) -> Request {
        let WriteSet {
            snapshot_ts,
            read_keys,
            mut read_ranges,
            mut writes,
        } = txn;
        read_ranges.retain(|r| r.end.as_ref().is_none_or(|end| *end > r.start));
        // Reverse, then sort stably: the first of each key is its last write.
        writes.reverse();
        writes.sort_by(|a, b| a.0.cmp(&b.0));
        writes.dedup_by(|later, kept| later.0 == kept.0);
        let bytes = writes
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum::<usize>()
            + read_keys.iter().map(Vec::len).sum::<usize>();
        let (write_keys, write_values) = writes.into_iter().unzip();
        Request {
            snapshot_ts,
            read_keys,
            read_ranges,
            write_keys,
            write_values,
            bytes,
            deadline,
            reply,
        }
    }

    fn reads(&self) -> Reads<'_> {
        Reads {
            snapshot_ts: self.snapshot_ts,
            keys: &self.read_keys,
            ranges: &self.read_ranges,
        }
    }

    fn answer(self, result: Result<Ts, CommitError>) {
        // The committer blocks on the reply until it arrives; if it is gone, nobody cares.
        let _ = self.reply.send(result);
    }
}

/// Tails to remove (see `prune.rs`), and where to send how many versions that removed.
pub(crate) struct PruneJob {
    pub tails: Vec<Tail>,
    pub reply: SyncSender<Result<u64, KvError>>,
}

impl PruneJob {
    fn answer(self, result: Result<u64, KvError>) {
        // As for commits: a caller that went away does not care.
        let _ = self.reply.send(result);
    }
}

/// One queued piece of work.
pub(crate) enum Job {
    Commit(Request),
    Prune(PruneJob),
}

impl Job {
    fn abandon(self) {
        match self {
            Job::Commit(request) => request.answer(Err(CommitError::Kv(KvError::Closed))),
            Job::Prune(job) => job.answer(Err(KvError::Closed)),
        }
    }
}

/// What the sequencer applies next.
enum Batch {
    Commits(Vec<Request>),
    Prune(PruneJob),
}

/// The commit queue between committers and the sequencer.
#[derive(Default)]
pub(crate) struct Queue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<Job>,
    closed: bool,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Every critical section is a push or a pop; a panic cannot leave it half done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enqueues `job`; fails (dropping it unanswered) if the queue is closed.
    pub(crate) fn push(&self, job: Job) -> Result<(), KvError> {
        let mut state = self.lock();
        if state.closed {
            return Err(KvError::Closed);
        }
        state.pending.push_back(job);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Waits for work and takes a batch of it: a prune alone, or at least one commit, then
    /// more commits while within the limits. `None` once the queue is closed and drained.
    fn take_batch(&self, max_commits: usize, max_bytes: usize) -> Option<Batch> {
        let mut state = self.lock();
        while state.pending.is_empty() {
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if let Some(Job::Prune(_)) = state.pending.front()
            && let Some(Job::Prune(job)) = state.pending.pop_front()
        {
            return Some(Batch::Prune(job));
        }
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        while let Some(Job::Commit(next)) = state.pending.front() {
            let fits = batch.len() < max_commits && bytes.saturating_add(next.bytes) <= max_bytes;
            if !batch.is_empty() && !fits {
                break;
            }
            bytes = bytes.saturating_add(next.bytes);
            if let Some(Job::Commit(request)) = state.pending.pop_front() {
                batch.push(request);
            }
        }
        Some(Batch::Commits(batch))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().pending.len()
    }

    /// Refuses new requests; the pending ones are still committed.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Refuses new requests and drops the pending ones (their committers see `Closed`).
    fn abandon(&self) {
        let pending = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.pending)
        };
        for job in pending {
            job.abandon();
        }
    }
}

/// Starts the sequencer thread.
pub(crate) fn spawn<B: Backend>(
    shared: Arc<Shared<B>>,
    window: ConflictWindow,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("testudo-commit".into())
        .spawn(move || run(&shared, window))
}

/// Closes the store if the sequencer unwinds, so that no committer or reader waits forever.
struct DeathWatch<'a, B: Backend>(&'a Shared<B>);

impl<B: Backend> Drop for DeathWatch<'_, B> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the commit sequencer panicked; the store is closed");
            self.0.closed.store(true, Ordering::Release);
            self.0.clock.close();
            self.0.queue.abandon();
        }
    }
}

fn run<B: Backend>(shared: &Shared<B>, mut window: ConflictWindow) {
    let _watch = DeathWatch(shared);
    let options = &shared.options;
    while let Some(batch) = shared
        .queue
        .take_batch(options.max_batch_commits, options.max_batch_bytes)
    {
        match batch {
            Batch::Commits(batch) => commit_batch(shared, &mut window, batch),
            Batch::Prune(job) => prune(shared, job),
        }
    }
}

fn prune<B: Backend>(shared: &Shared<B>, job: PruneJob) {
    let tails: Vec<KeyTail<'_>> = job
        .tails
        .iter()
        .map(|tail| KeyTail {
            key: &tail.key,
            through: tail.through,
            adjacent: tail.adjacent,
        })
        .collect();
    let result = shared.backend.remove_tails(&tails, shared.options.durable);
    let stats = &shared.stats;
    match &result {
        Ok(removed) => {
            stats.prunes.fetch_add(1, Ordering::Relaxed);
            stats.versions_pruned.fetch_add(*removed, Ordering::Relaxed);
        }
        Err(error) => tracing::error!(%error, "prune batch failed"),
    }
    job.answer(result);
}

fn commit_batch<B: Backend>(shared: &Shared<B>, window: &mut ConflictWindow, batch: Vec<Request>) {
    let stats = &shared.stats;
    let now = Instant::now();
    // A snapshot timestamp the clock never issued cannot be validated.
    let issued = shared.clock.last_issued();
    let mut accepted: Vec<Request> = Vec::with_capacity(batch.len());
    for request in batch {
        if request.deadline.is_some_and(|deadline| deadline <= now) {
            stats.deadline_exceeded.fetch_add(1, Ordering::Relaxed);
            request.answer(Err(CommitError::DeadlineExceeded));
            continue;
        }
        let reads = request.reads();
        let conflict = request.snapshot_ts > issued
            || window.conflicts(&reads)
            || (!reads.is_empty() && accepted.iter().any(|a| reads.overlaps(&a.write_keys)));
        if conflict {
            stats.conflicts.fetch_add(1, Ordering::Relaxed);
            request.answer(Err(CommitError::Conflict));
            continue;
        }
        accepted.push(request);
    }
    let Some(count) = u64::try_from(accepted.len()).ok().filter(|&n| n > 0) else {
        return;
    };

    let first = shared.clock.reserve_batch(count);
    let last = Ts(first.0.saturating_add(count - 1));
    let started = Instant::now();
    let result = {
        let writes: Vec<BatchWrite<'_>> = accepted
            .iter()
            .zip(first.0..)
            .flat_map(|(request, ts)| {
                request
                    .write_keys
                    .iter()
                    .zip(&request.write_values)
                    .map(move |(key, value)| BatchWrite {
                        key,
                        ts: Ts(ts),
                        value: value.as_deref(),
                    })
            })
            .collect();
        if writes.is_empty() {
            // Read-only commits: validated and timestamped, nothing to store.
            Ok(false)
        } else {
            shared
                .backend
                .write_batch(&writes, last, shared.options.durable)
                .map(|()| true)
        }
    };
    let flush = started.elapsed();

    match result {
        Ok(wrote) => {
            // Publish first: a `begin` that has seen the new `last_commit_ts` must get a
            // timestamp above it, which holds only once the batch is no longer in flight
            // (in flight, reads are kept below the batch's first timestamp).
            shared.clock.publish(flush);
            if wrote {
                shared.last_commit.store(last.0, Ordering::Release);
                stats.batches.fetch_add(1, Ordering::Relaxed);
                if let Some(bucket) = stats
                    .batch_sizes
                    .get(crate::local::batch_size_bucket(count))
                {
                    bucket.fetch_add(1, Ordering::Relaxed);
                }
                stats.batched_commits.fetch_add(count, Ordering::Relaxed);
            }
            stats.commits.fetch_add(count, Ordering::Relaxed);
            for (request, ts) in accepted.into_iter().zip(first.0..) {
                let mut request = request;
                let keys = std::mem::take(&mut request.write_keys);
                if !keys.is_empty() {
                    window.push(Ts(ts), keys);
                }
                request.answer(Ok(Ts(ts)));
            }
            window.prune();
        }
        Err(error) => {
            shared.clock.publish(flush);
            stats.failed_commits.fetch_add(count, Ordering::Relaxed);
            tracing::error!(%error, commits = count, "commit batch failed");
            for request in accepted {
                request.answer(Err(CommitError::Kv(copy_error(&error))));
            }
        }
    }
}

/// `KvError` is not `Clone`; every committer of a failed batch gets its own copy.
fn copy_error(error: &KvError) -> KvError {
    match error {
        KvError::Io(message) => KvError::Io(message.clone()),
        KvError::Corrupt(message) => KvError::Corrupt(message.clone()),
        KvError::Closed => KvError::Closed,
    }
}
