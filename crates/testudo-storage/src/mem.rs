//! [`MemBackend`]: an in-memory [`Backend`] with real snapshot isolation for readers.
//!
//! The store is a stack of immutable sorted *runs* (each a `BTreeMap` behind an `Arc`). A
//! batch becomes a new run; runs of similar size are merged (a log-structured merge), so there
//! are O(log n) runs and each entry is copied O(log n) times over its life. A view is the list
//! of runs at the moment it was taken: writers build new runs and swap the list, they never
//! touch a run a view can see.
//!
//! **Invariants:** a view is never changed by later writes; a reader never waits for a merge
//! (the published list is swapped under a short lock, merges happen outside it); nothing
//! here is durable: `durable` is accepted and ignored.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::backend::{Backend, BackendView, BatchWrite, Entry, EntryIter};
use crate::{KvError, Ts};

/// Storage order: key ascending, then ts descending (stored inverted).
type RunKey = (Vec<u8>, u64);
type Run = BTreeMap<RunKey, Option<Vec<u8>>>;

fn inv(ts: Ts) -> u64 {
    u64::MAX - ts.0
}

#[derive(Default)]
struct State {
    /// Oldest first. Every (key, ts) is in at most one run.
    runs: Vec<Arc<Run>>,
    last_commit_ts: Ts,
    closed: bool,
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
        if !writes.is_empty() {
            let run: Run = writes
                .iter()
                .map(|w| ((w.key.to_vec(), inv(w.ts)), w.value.map(<[u8]>::to_vec)))
                .collect();
            runs.push(Arc::new(run));
        }
        // Keep run sizes roughly doubling from newest to oldest.
        while let [.., older, newer] = runs.as_slice() {
            if older.len() > 2 * newer.len() {
                break;
            }
            let merged: Run = older
                .iter()
                .chain(newer.iter())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            runs.truncate(runs.len() - 2);
            runs.push(Arc::new(merged));
        }
        let next = State {
            runs,
            last_commit_ts,
            closed: false,
        };
        *lock(&self.published) = Arc::new(next);
        Ok(())
    }

    fn last_commit_ts(&self) -> Result<Ts, KvError> {
        Ok(self.current().last_commit_ts)
    }

    fn close(&self) -> Result<(), KvError> {
        let _writer = lock(&self.writer);
        let mut published = lock(&self.published);
        let state = State {
            runs: published.runs.clone(),
            last_commit_ts: published.last_commit_ts,
            closed: true,
        };
        *published = Arc::new(state);
        Ok(())
    }
}

/// A frozen list of runs.
pub struct MemView {
    state: Arc<State>,
}

type RunRange<'a> = Peekable<Box<dyn Iterator<Item = (&'a RunKey, &'a Option<Vec<u8>>)> + 'a>>;

impl BackendView for MemView {
    fn forward(&self, from: (&[u8], Ts), end: Option<&[u8]>) -> Result<EntryIter<'_>, KvError> {
        if end.is_some_and(|end| from.0 >= end) {
            return Ok(Box::new(std::iter::empty()));
        }
        let lower = Bound::Included((from.0.to_vec(), inv(from.1)));
        let upper = end.map_or(Bound::Unbounded, |end| Bound::Excluded((end.to_vec(), 0)));
        let ranges = self
            .state
            .runs
            .iter()
            .map(|run| {
                let range: Box<dyn Iterator<Item = _>> =
                    Box::new(run.range((lower.clone(), upper.clone())));
                range.peekable()
            })
            .collect();
        Ok(Box::new(Merge {
            ranges,
            descending: false,
        }))
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
        let lower = Bound::Included(lower);
        let ranges = self
            .state
            .runs
            .iter()
            .map(|run| {
                let range: Box<dyn Iterator<Item = _>> =
                    Box::new(run.range((lower.clone(), upper.clone())).rev());
                range.peekable()
            })
            .collect();
        Ok(Box::new(Merge {
            ranges,
            descending: true,
        }))
    }
}

/// A k-way merge of run ranges that all go in the same direction.
struct Merge<'a> {
    ranges: Vec<RunRange<'a>>,
    descending: bool,
}

impl Iterator for Merge<'_> {
    type Item = Result<Entry, KvError>;

    fn next(&mut self) -> Option<Self::Item> {
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
        Some(Ok(Entry {
            key: key.clone(),
            ts: Ts(u64::MAX - inv_ts),
            value: value.clone(),
        }))
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
    }
}
