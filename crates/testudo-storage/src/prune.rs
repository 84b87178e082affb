//! Reclamation: deciding which versions [`Kv::prune`](crate::Kv::prune) may remove.
//!
//! For each key, the version a read at `horizon` sees is the newest one at or below it (`v`).
//! Every older version is invisible at `horizon` and at every later timestamp, and so is `v`
//! itself when it is a tombstone (absent either way). Such a key loses its *tail*: every
//! version at or below `v.ts - 1`, or at or below `v.ts` for a tombstone. The plan is made on
//! the caller's thread from an ordinary backend view; the sequencer then removes the tails as
//! one backend batch, so pruning never holds up readers and never lands in the middle of a
//! commit batch.
//!
//! **Why a plan made on an older view is still right.** `horizon` is at most the last commit
//! timestamp when the view is taken, and every later commit gets a larger timestamp, so the
//! versions at or below `horizon` (the only ones a plan looks at or removes) can no longer
//! change, except by another prune. Prunes commute: each removes only versions that are
//! invisible from its own horizon on, and the backend counts only the versions it really
//! removed, so overlapping prunes neither double-count nor remove too much.
//!
//! **Why conflict detection stays correct.** The conflict window (`occ.rs`) holds the keys
//! written by commits, not versions; pruning never touches it, and removes nothing newer than
//! `horizon`. A read at a snapshot `S` changes only if the version it saw is removed, which
//! happens only when that key has a newer version at some `t` with `S < t <= horizon`, that is,
//! a commit after `S` wrote it (or when the removed version is a tombstone, which reads as
//! absent either way). So a transaction whose snapshot is older than `horizon` may read a
//! pruned world, but if it read anything pruning changed, its commit conflicts: pruning can
//! cost a retry, never serializability.
//!
//! **Invariants:** no version newer than `horizon` is ever planned for removal; tails come in
//! key order, one per key at most; at most `max_keys` keys are looked at per call, and a key
//! costs a bounded number of steps however long its history (after [`SKIP_LIMIT`] steps the
//! walk seeks instead). A tail is marked `adjacent` only if the walk read one by one every
//! entry between it and the previous tail that is in neither, so a backend that removes both
//! in one pass reads nothing the walk and the removal would not read anyway.

use crate::backend::{BackendView, key_successor};
use crate::{KeyRange, KvError, Ts};

/// Entries stepped over on one key before seeking instead.
const SKIP_LIMIT: usize = 8;

/// Every version of `key` at or below `through` goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tail {
    pub key: Vec<u8>,
    pub through: Ts,
    /// The walk read every entry since the previous tail (see [`KeyTail::adjacent`]).
    ///
    /// [`KeyTail::adjacent`]: crate::KeyTail::adjacent
    pub adjacent: bool,
}

/// What one prune call will remove, and how far it looked.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// In key order.
    pub tails: Vec<Tail>,
    /// Keys that had at least one stored version.
    pub keys_scanned: u64,
    /// The first key not looked at, if the range goes on.
    pub resume_at: Option<Vec<u8>>,
}

/// Where the walk is within the current key.
#[derive(Clone, Copy)]
enum Phase {
    /// Still above `horizon`.
    Newer,
    /// The version visible at `horizon` was a value at this timestamp; anything after it is
    /// older and goes.
    Visible(Ts),
    /// The key is decided; skip the rest of it.
    Done,
}

/// Walks the keys of `range` in `view` (at most `max_keys` of them) and plans the tails a
/// prune at `horizon` removes.
pub(crate) fn plan<V: BackendView>(
    view: &V,
    range: &KeyRange,
    horizon: Ts,
    max_keys: usize,
) -> Result<Plan, KvError> {
    let max_keys = u64::try_from(max_keys).unwrap_or(u64::MAX);
    let end = range.end.as_deref();
    let mut plan = Plan::default();
    let mut entries = view.forward((&range.start, Ts::MAX), end)?;
    let mut current: Vec<u8> = Vec::new();
    let mut phase = Phase::Done;
    let mut stepped = 0usize;
    // Whether every entry since the last tail, outside it, was read: false before the first.
    let mut walked = false;
    while let Some(entry) = entries.next() {
        let entry = entry?;
        if plan.keys_scanned == 0 || entry.key != current {
            if plan.keys_scanned >= max_keys {
                plan.resume_at = Some(entry.key);
                return Ok(plan);
            }
            plan.keys_scanned += 1;
            current = entry.key;
            phase = Phase::Newer;
            stepped = 0;
        }
        phase = match phase {
            Phase::Newer if entry.ts <= horizon => match entry.value {
                None => {
                    push(&mut plan.tails, &current, entry.ts, &mut walked);
                    Phase::Done
                }
                Some(_) => Phase::Visible(entry.ts),
            },
            Phase::Newer => Phase::Newer,
            Phase::Visible(visible) => {
                // `entry` is older than `visible`, so `visible` is above zero.
                if let Some(through) = visible.0.checked_sub(1) {
                    push(&mut plan.tails, &current, Ts(through), &mut walked);
                }
                Phase::Done
            }
            Phase::Done => Phase::Done,
        };
        stepped += 1;
        if stepped > SKIP_LIMIT {
            stepped = 0;
            entries = match phase {
                Phase::Newer => {
                    // Skips versions that stay: a pass from the last tail would read them.
                    walked = false;
                    view.forward((&current, horizon), end)?
                }
                // Skips the rest of a planned tail, which its removal reads anyway (a key is
                // only `Done` once its tail is planned).
                Phase::Done => view.forward((&key_successor(&current), Ts::MAX), end)?,
                // One more entry decides the key; no seek can beat reading it.
                Phase::Visible(_) => continue,
            };
        }
    }
    Ok(plan)
}

fn push(tails: &mut Vec<Tail>, key: &[u8], through: Ts, walked: &mut bool) {
    tails.push(Tail {
        key: key.to_vec(),
        through,
        adjacent: *walked,
    });
    *walked = true;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemBackend;
    use crate::backend::{Backend, BatchWrite};

    /// One stored version: key, timestamp, value (`None`: a tombstone).
    type Stored<'a> = (&'a [u8], u64, Option<&'a [u8]>);

    fn store(versions: &[Stored<'_>]) -> MemBackend {
        let backend = MemBackend::new();
        for &(key, ts, value) in versions {
            let write = BatchWrite {
                key,
                ts: Ts(ts),
                value,
            };
            backend.write_batch(&[write], Ts(ts), false).unwrap();
        }
        backend
    }

    fn tails(plan: &Plan) -> Vec<(Vec<u8>, Ts)> {
        plan.tails
            .iter()
            .map(|tail| (tail.key.clone(), tail.through))
            .collect()
    }

    fn adjacency(plan: &Plan) -> Vec<bool> {
        plan.tails.iter().map(|tail| tail.adjacent).collect()
    }

    fn everything() -> KeyRange {
        KeyRange {
            start: Vec::new(),
            end: None,
        }
    }

    #[test]
    fn a_value_keeps_the_version_visible_at_the_horizon_and_a_tombstone_goes_too() {
        let backend = store(&[
            (b"a", 1, Some(b"1")),
            (b"a", 2, Some(b"2")),
            (b"a", 5, Some(b"5")),
            (b"b", 1, Some(b"1")),
            (b"b", 3, None),
            (b"c", 1, Some(b"only")),
            (b"d", 4, Some(b"new")),
        ]);
        let plan = plan(&backend.view().unwrap(), &everything(), Ts(3), 100).unwrap();
        assert_eq!(
            tails(&plan),
            vec![(b"a".to_vec(), Ts(1)), (b"b".to_vec(), Ts(3))]
        );
        assert_eq!(adjacency(&plan), vec![false, true]);
        assert_eq!((plan.keys_scanned, plan.resume_at), (4, None));
    }

    #[test]
    fn long_histories_on_both_sides_of_the_horizon_are_sought_past() {
        let mut versions: Vec<Stored<'_>> = Vec::new();
        for ts in 1..=100 {
            versions.push((b"long", ts, Some(b"v")));
        }
        versions.push((b"next", 1, Some(b"x")));
        versions.push((b"next", 2, Some(b"y")));
        let backend = store(&versions);
        let plan = plan(&backend.view().unwrap(), &everything(), Ts(50), 100).unwrap();
        assert_eq!(
            tails(&plan),
            vec![(b"long".to_vec(), Ts(49)), (b"next".to_vec(), Ts(1))]
        );
        // The walk sought past most of `long`'s tail, which its removal reads anyway.
        assert_eq!(adjacency(&plan), vec![false, true]);
        assert_eq!(plan.keys_scanned, 2);
    }

    #[test]
    fn seeking_past_versions_that_stay_breaks_adjacency() {
        let mut versions: Vec<Stored<'_>> = vec![(b"a", 1, Some(b"1")), (b"a", 2, Some(b"2"))];
        for ts in 10..30 {
            versions.push((b"hot", ts, Some(b"v")));
        }
        versions.push((b"z", 1, Some(b"1")));
        versions.push((b"z", 2, Some(b"2")));
        let backend = store(&versions);
        let plan = plan(&backend.view().unwrap(), &everything(), Ts(5), 100).unwrap();
        assert_eq!(
            tails(&plan),
            vec![(b"a".to_vec(), Ts(1)), (b"z".to_vec(), Ts(1))]
        );
        assert_eq!(adjacency(&plan), vec![false, false]);
    }

    #[test]
    fn the_walk_stops_after_max_keys_and_names_the_next_key() {
        let backend = store(&[
            (b"a", 1, Some(b"1")),
            (b"a", 2, Some(b"2")),
            (b"b", 1, Some(b"1")),
            (b"c", 1, Some(b"1")),
            (b"c", 2, Some(b"2")),
        ]);
        let view = backend.view().unwrap();
        let first = plan(&view, &everything(), Ts(2), 2).unwrap();
        assert_eq!(tails(&first), vec![(b"a".to_vec(), Ts(1))]);
        assert_eq!(first.resume_at, Some(b"c".to_vec()));
        let none = plan(&view, &KeyRange::new("b", "c"), Ts(2), 0).unwrap();
        assert_eq!(
            (none.keys_scanned, none.resume_at),
            (0, Some(b"b".to_vec()))
        );
    }
}
