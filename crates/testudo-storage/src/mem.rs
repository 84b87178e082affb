//! [`MemBackend`]: an in-memory [`Backend`] with real snapshot isolation for readers.
//!
//! The store is a stack of immutable sorted *runs* (each a `BTreeMap` behind an `Arc`). A
//! batch becomes a new run; runs of similar size are merged (a log-structured merge), so there
//! are O(log n) runs and each entry is copied O(log n) times over its life. A view is the list
//! of runs at the moment it was taken: writers build new runs and swap the list, they never
//! touch a run a view can see.
//!
//! Removing tails cannot edit a run a view may still read, and rewriting the big runs on every
//! call would make pruning a large store in small steps quadratic. So a removal only records
//! *holes* (per key, the newest timestamp removed), in tiered maps like the runs; views skip
//! the entries under a hole. Once hidden entries make up half of what is stored, one full
//! compaction rewrites the runs without them and forgets every hole. A removed entry therefore
//! costs O(log n) amortized, and hidden entries never outnumber the others.
//!
//! **Invariants:** a view is never changed by later writes or removals; a reader never waits
//! for a merge or a compaction (the published list is swapped under a short lock, the work
//! happens outside it); `hidden` is exactly the number of stored entries under a hole, and no
//! write lands under one (the `remove_tails` contract); nothing here is durable: `durable` is
//! accepted and ignored.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::backend::{Backend, BackendView, BatchWrite, Entry, EntryIter, KeyTail};
use crate::{KvError, Ts};

/// Storage order: key ascending, then ts descending (stored inverted).
type RunKey = (Vec<u8>, u64);
type Run = BTreeMap<RunKey, Option<Vec<u8>>>;
/// Per key, the newest removed timestamp: every version at or below it is gone.
type Holes = BTreeMap<Vec<u8>, Ts>;

fn inv(ts: Ts) -> u64 {
    u64::MAX - ts.0
}

#[derive(Default)]
struct State {
    /// Oldest first. Every (key, ts) is in at most one run.
    runs: Vec<Arc<Run>>,
    /// Oldest first. For one key, a newer map holds a larger timestamp than every older one.
    holes: Vec<Arc<Holes>>,
    /// Entries of `runs` under a hole.
    hidden: usize,
    last_commit_ts: Ts,
    closed: bool,
}

/// The newest removed timestamp of `key`: the newest map that names it knows the largest.
fn hole(holes: &[Arc<Holes>], key: &[u8]) -> Option<Ts> {
    holes.iter().rev().find_map(|map| map.get(key).copied())
}

fn is_hidden(holes: &[Arc<Holes>], key: &[u8], ts: Ts) -> bool {
    !holes.is_empty() && hole(holes, key).is_some_and(|through| ts <= through)
}

/// Pushes `level` and merges neighbours of similar size, so that sizes roughly double from
/// newest to oldest. On equal keys the newer level wins.
fn push_tiered<K: Ord + Clone, V: Clone>(
    levels: &mut Vec<Arc<BTreeMap<K, V>>>,
    level: BTreeMap<K, V>,
) {
    if !level.is_empty() {
        levels.push(Arc::new(level));
    }
    while let [.., older, newer] = levels.as_slice() {
        if older.len() > 2 * newer.len() {
            break;
        }
        let merged: BTreeMap<K, V> = older
            .iter()
            .chain(newer.iter())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        levels.truncate(levels.len() - 2);
        levels.push(Arc::new(merged));
    }
}

/// How many entries of `key` in `run` have a timestamp in `(above, through]`.
fn count_tail(run: &Run, key: &[u8], above: Option<Ts>, through: Ts) -> usize {
    let lower = Bound::Included((key.to_vec(), inv(through)));
    let upper = match above {
        Some(above) => Bound::Excluded((key.to_vec(), inv(above))),
        None => Bound::Included((key.to_vec(), u64::MAX)),
    };
    run.range((lower, upper)).count()
}

/// The in-memory backend (tests, embedding, and the reference the conformance suite runs on).
#[derive(Default)]
pub struct MemBackend {
    published: Mutex<Arc<State>>,
    /// Serializes writers so that a merge can run outside `published`.
    writer: Mutex<()>,
}

impl MemBackend {
    pub fn new() -> MemBackend {
        MemBackend::default()
    }

    fn current(&self) -> Arc<State> {
        lock(&self.published).clone()
    }

    fn publish(&self, state: State) {
        *lock(&self.published) = Arc::new(state);
    }
}

/// A poisoned lock only means another thread panicked while holding it; every critical
/// section here leaves the state consistent (it swaps one `Arc`), so carry on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Backend for MemBackend {
    type View = MemView;

    fn view(&self) -> Result<MemView, KvError> {
        Ok(MemView {
            state: self.current(),
        })
    }

    fn write_batch(
        &self,
        writes: &[BatchWrite<'_>],
        last_commit_ts: Ts,
        _durable: bool,
    ) -> Result<(), KvError> {
        let _writer = lock(&self.writer);
        let current = self.current();
        if current.closed {
            return Err(KvError::Closed);
        }
        let mut runs = current.runs.clone();
        let run: Run = writes
            .iter()
            .map(|w| ((w.key.to_vec(), inv(w.ts)), w.value.map(<[u8]>::to_vec)))
            .collect();
        push_tiered(&mut runs, run);
        self.publish(State {
            runs,
            holes: current.holes.clone(),
            hidden: current.hidden,
            last_commit_ts,
            closed: false,
        });
        Ok(())
    }

    fn remove_tails(&self, tails: &[KeyTail<'_>], _durable: bool) -> Result<u64, KvError> {
        let _writer = lock(&self.writer);
        let current = self.current();
        if current.closed {
            return Err(KvError::Closed);
        }
        let mut added = Holes::new();
        let mut removed = 0usize;
        for tail in tails {
            let above = added
                .get(tail.key)
                .copied()
                .or_else(|| hole(&current.holes, tail.key));
            if above.is_some_and(|above| above >= tail.through) {
                continue;
            }
            let count: usize = current
                .runs
                .iter()
                .map(|run| count_tail(run, tail.key, above, tail.through))
                .sum();
            if count > 0 {
                added.insert(tail.key.to_vec(), tail.through);
                removed += count;
            }
        }
        if removed == 0 {
            return Ok(0);
        }
        let hidden = current.hidden + removed;
        let stored: usize = current.runs.iter().map(|run| run.len()).sum();
        let mut holes = current.holes.clone();
        let next = if hidden.saturating_mul(2) >= stored {
            holes.push(Arc::new(added));
            let live: Run = current
                .runs
                .iter()
                .flat_map(|run| run.iter())
                .filter(|((key, inv_ts), _)| !is_hidden(&holes, key, Ts(u64::MAX - inv_ts)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            State {
                runs: if live.is_empty() {
                    Vec::new()
                } else {
                    vec![Arc::new(live)]
                },
                holes: Vec::new(),
                hidden: 0,
                last_commit_ts: current.last_commit_ts,
                closed: false,
            }
        } else {
            push_tiered(&mut holes, added);
            State {
                runs: current.runs.clone(),
                holes,
                hidden,
                last_commit_ts: current.last_commit_ts,
                closed: false,
            }
        };
        self.publish(next);
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }

    fn last_commit_ts(&self) -> Result<Ts, KvError> {
        Ok(self.current().last_commit_ts)
    }

    fn close(&self) -> Result<(), KvError> {
        let _writer = lock(&self.writer);
        let current = self.current();
        self.publish(State {
            runs: current.runs.clone(),
            holes: current.holes.clone(),
            hidden: current.hidden,
            last_commit_ts: current.last_commit_ts,
            closed: true,
        });
        Ok(())
    }
}

/// A frozen list of runs and holes.
pub struct MemView {
    state: Arc<State>,
}

type RunRange<'a> = Peekable<Box<dyn Iterator<Item = (&'a RunKey, &'a Option<Vec<u8>>)> + 'a>>;

impl MemView {
    fn merge(&self, lower: Bound<RunKey>, upper: Bound<RunKey>, descending: bool) -> EntryIter<'_> {
        let ranges = self
            .state
            .runs
            .iter()
            .map(|run| {
                let range = run.range((lower.clone(), upper.clone()));
                let range: Box<dyn Iterator<Item = _>> = if descending {
                    Box::new(range.rev())
                } else {
                    Box::new(range)
                };
                range.peekable()
            })
            .collect();
        Box::new(Merge {
            ranges,
            holes: &self.state.holes,
            descending,
        })
    }
}

impl BackendView for MemView {
    fn forward(&self, from: (&[u8], Ts), end: Option<&[u8]>) -> Result<EntryIter<'_>, KvError> {
        if end.is_some_and(|end| from.0 >= end) {
            return Ok(Box::new(std::iter::empty()));
        }
        let lower = Bound::Included((from.0.to_vec(), inv(from.1)));
        let upper = end.map_or(Bound::Unbounded, |end| Bound::Excluded((end.to_vec(), 0)));
        Ok(self.merge(lower, upper, false))
    }

    fn backward(
        &self,
        start: &[u8],
        before: Option<(&[u8], Ts)>,
    ) -> Result<EntryIter<'_>, KvError> {
        let lower = (start.to_vec(), 0);
        let upper = match before {
            Some((key, ts)) => {
                let upper = (key.to_vec(), inv(ts));
                if upper <= lower {
                    return Ok(Box::new(std::iter::empty()));
                }
                Bound::Excluded(upper)
            }
            None => Bound::Unbounded,
        };
        Ok(self.merge(Bound::Included(lower), upper, true))
    }
}

/// A k-way merge of run ranges that all go in the same direction, skipping hidden entries.
struct Merge<'a> {
    ranges: Vec<RunRange<'a>>,
    holes: &'a [Arc<Holes>],
    descending: bool,
}

impl Iterator for Merge<'_> {
    type Item = Result<Entry, KvError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut best: Option<(usize, &RunKey)> = None;
            for (i, range) in self.ranges.iter_mut().enumerate() {
                if let Some(&(key, _)) = range.peek() {
                    let better = best.is_none_or(|(_, best_key)| {
                        if self.descending {
                            key > best_key
                        } else {
                            key < best_key
                        }
                    });
                    if better {
                        best = Some((i, key));
                    }
                }
            }
            let (index, _) = best?;
            let ((key, inv_ts), value) = self.ranges.get_mut(index)?.next()?;
            let ts = Ts(u64::MAX - inv_ts);
            if is_hidden(self.holes, key, ts) {
                continue;
            }
            return Some(Ok(Entry {
                key: key.clone(),
                ts,
                value: value.clone(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(backend: &MemBackend, key: &[u8], ts: u64, value: Option<&[u8]>) {
        let write = BatchWrite {
            key,
            ts: Ts(ts),
            value,
        };
        backend.write_batch(&[write], Ts(ts), true).unwrap();
    }

    fn keys_ts(iter: EntryIter<'_>) -> Vec<(Vec<u8>, u64)> {
        iter.map(|e| e.map(|e| (e.key, e.ts.0)))
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_view_does_not_see_batches_written_after_it() {
        let backend = MemBackend::new();
        put(&backend, b"a", 1, Some(b"1"));
        let view = backend.view().unwrap();
        put(&backend, b"a", 2, Some(b"2"));
        put(&backend, b"b", 3, None);
        assert_eq!(
            keys_ts(view.forward((b"", Ts::MAX), None).unwrap()),
            vec![(b"a".to_vec(), 1)]
        );
        let fresh = backend.view().unwrap();
        assert_eq!(
            keys_ts(fresh.forward((b"", Ts::MAX), None).unwrap()),
            vec![(b"a".to_vec(), 2), (b"a".to_vec(), 1), (b"b".to_vec(), 3)]
        );
    }

    #[test]
    fn merged_runs_keep_storage_order_in_both_directions() {
        let backend = MemBackend::new();
        for ts in 1..=40u64 {
            let key = [b'k', (ts % 5) as u8];
            put(&backend, &key, ts, Some(b"v"));
        }
        assert!(backend.current().runs.len() <= 7);
        let view = backend.view().unwrap();
        let forward = keys_ts(view.forward((b"", Ts::MAX), None).unwrap());
        let mut expected = forward.clone();
        expected.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        assert_eq!(forward, expected);
        assert_eq!(forward.len(), 40);
        let mut backward = keys_ts(view.backward(b"", None).unwrap());
        backward.reverse();
        assert_eq!(backward, expected);
    }

    #[test]
    fn positions_select_versions_at_or_below_a_timestamp() {
        let backend = MemBackend::new();
        put(&backend, b"a", 5, Some(b"x"));
        put(&backend, b"a", 9, Some(b"y"));
        put(&backend, b"b", 7, Some(b"z"));
        let view = backend.view().unwrap();
        let from_a6 = keys_ts(view.forward((b"a", Ts(6)), Some(b"b")).unwrap());
        assert_eq!(from_a6, vec![(b"a".to_vec(), 5)]);
        let before_a6 = keys_ts(view.backward(b"a", Some((b"a", Ts(6)))).unwrap());
        assert_eq!(before_a6, vec![(b"a".to_vec(), 9)]);
        assert!(keys_ts(view.forward((b"b", Ts::MAX), Some(b"b")).unwrap()).is_empty());
    }

    fn remove(backend: &MemBackend, key: &[u8], through: u64) -> u64 {
        let tail = KeyTail {
            key,
            through: Ts(through),
            adjacent: false,
        };
        backend.remove_tails(&[tail], true).unwrap()
    }

    fn all(view: &MemView) -> Vec<(Vec<u8>, u64)> {
        keys_ts(view.forward((b"", Ts::MAX), None).unwrap())
    }

    #[test]
    fn a_removed_tail_is_hidden_from_new_views_and_kept_in_old_ones() {
        let backend = MemBackend::new();
        for ts in 1..=10u64 {
            put(&backend, b"big", ts, Some(b"v"));
        }
        put(&backend, b"k", 11, Some(b"1"));
        put(&backend, b"k", 12, None);
        put(&backend, b"k", 13, Some(b"3"));
        let old = backend.view().unwrap();
        assert_eq!(remove(&backend, b"k", 12), 2);
        // Two hidden entries out of thirteen: recorded as a hole, not compacted yet.
        assert_eq!(backend.current().hidden, 2);
        let new = backend.view().unwrap();
        let k = |view: &MemView| keys_ts(view.forward((b"k", Ts::MAX), None).unwrap());
        assert_eq!(k(&new), vec![(b"k".to_vec(), 13)]);
        assert_eq!(k(&old).len(), 3);
        let mut backward = keys_ts(new.backward(b"", None).unwrap());
        backward.reverse();
        assert_eq!(backward, all(&new));
        assert_eq!(all(&new).len(), 11);
    }

    #[test]
    fn removing_counts_only_versions_still_stored() {
        let backend = MemBackend::new();
        for ts in 1..=20u64 {
            put(&backend, &[b'a' + (ts % 4) as u8], ts, Some(b"v"));
        }
        let a = [b'a'];
        assert_eq!(remove(&backend, &a, 8), 2);
        assert_eq!(remove(&backend, &a, 8), 0);
        assert_eq!(remove(&backend, &a, 4), 0);
        assert_eq!(remove(&backend, &a, 12), 1);
        assert_eq!(remove(&backend, &a, 20), 2);
        assert_eq!(remove(&backend, b"missing", 20), 0);
    }

    #[test]
    fn hiding_half_of_the_store_compacts_it_and_forgets_the_holes() {
        let backend = MemBackend::new();
        for ts in 1..=40u64 {
            put(&backend, &[b'k', (ts % 4) as u8], ts, Some(b"v"));
        }
        let before = backend.view().unwrap();
        let keys: Vec<[u8; 2]> = (0..4u8).map(|k| [b'k', k]).collect();
        let tails: Vec<KeyTail<'_>> = keys
            .iter()
            .map(|key| KeyTail {
                key,
                through: Ts(30),
                adjacent: true,
            })
            .collect();
        assert_eq!(backend.remove_tails(&tails, true).unwrap(), 30);
        let state = backend.current();
        assert_eq!(
            (state.runs.len(), state.holes.len(), state.hidden),
            (1, 0, 0)
        );
        let after = all(&backend.view().unwrap());
        assert_eq!(after.len(), 10);
        assert!(after.iter().all(|(_, ts)| *ts > 30));
        assert_eq!(all(&before).len(), 40);
    }

    #[test]
    fn writes_after_close_fail_as_closed() {
        let backend = MemBackend::new();
        backend.close().unwrap();
        let write = BatchWrite {
            key: b"a",
            ts: Ts(1),
            value: None,
        };
        assert!(matches!(
            backend.write_batch(&[write], Ts(1), true),
            Err(KvError::Closed)
        ));
        let tail = KeyTail {
            key: b"a",
            through: Ts(1),
            adjacent: false,
        };
        assert!(matches!(
            backend.remove_tails(&[tail], true),
            Err(KvError::Closed)
        ));
    }
}
