//! The differential harness: random operation sequences on a [`LocalKv`] against a trivial
//! model (a `BTreeMap` keyed by `(key, ts)` plus the list of commits), in lockstep. Each
//! backend's tests call [`run`] with fresh stores and many seeds.
//!
//! The model predicts every answer: conflicts (a commit after the snapshot wrote a read key or
//! into a read range), expired deadlines, what `get`, `scan` and `versions` return at any
//! timestamp of any live snapshot, and exactly what each `prune` looks at and removes (its
//! stats, and every later read, old timestamps included). Keys are drawn from a small
//! alphabet with awkward neighbours (`a`, `a\0`, `ab`, `\xff\xff`) so that bounds and
//! successor keys are exercised.
//!
//! A snapshot of `LocalKv` takes its backend view on its first read and keeps it, so a
//! snapshot first read before a prune still sees the pruned versions. The model therefore
//! keeps what every prune removed and reads each snapshot as of the prune count at its first
//! read. That is `LocalKv`'s behaviour, not a promise of [`Kv`]: this harness is for
//! `LocalKv` over any backend, the [`conformance`](crate::conformance) suite for any `Kv`.
//!
//! **Invariants:** deterministic for a seed (no timing enters the model: deadlines are either
//! already past or an hour away); every answer of the store is checked, none is ignored.

// A mismatch is a failed test: panicking with a message is the point here.
#![allow(clippy::unwrap_used)]

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::time::{Duration, Instant};

use crate::{
    Backend, CommitError, KeyRange, Kv, LocalKv, PruneStats, ScanOrder, Snapshot, Ts, Version,
    WriteSet,
};

const KEYS: &[&[u8]] = &[
    b"",
    b"a",
    b"a\0",
    b"ab",
    b"b",
    b"ba",
    b"c",
    b"\xff",
    b"\xff\xff",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn key(&mut self) -> Vec<u8> {
        KEYS[self.below(KEYS.len())].to_vec()
    }

    fn range(&mut self) -> KeyRange {
        let start = if self.one_in(4) {
            Vec::new()
        } else {
            self.key()
        };
        let end = if self.one_in(4) {
            None
        } else {
            Some(self.key())
        };
        KeyRange { start, end }
    }
}

type Versions = BTreeMap<(Vec<u8>, Ts), Option<Vec<u8>>>;

#[derive(Default)]
struct Model {
    versions: Versions,
    commits: Vec<(Ts, BTreeSet<Vec<u8>>)>,
    /// What each prune removed, in order; a view taken after `n` prunes lacks `removed[..n]`.
    removed: Vec<Versions>,
    /// The newest commit that wrote something (`Kv::last_commit_ts`).
    last_write: Ts,
}

impl Model {
    fn conflicts(&self, txn: &WriteSet) -> bool {
        self.commits
            .iter()
            .filter(|(ts, _)| *ts > txn.snapshot_ts)
            .any(|(_, written)| {
                txn.read_keys.iter().any(|k| written.contains(k))
                    || txn
                        .read_ranges
                        .iter()
                        .any(|r| written.iter().any(|k| r.contains(k)))
            })
    }

    fn apply(&mut self, ts: Ts, writes: &[(Vec<u8>, Option<Vec<u8>>)]) {
        let mut written = BTreeSet::new();
        for (key, value) in writes {
            self.versions.insert((key.clone(), ts), value.clone());
            written.insert(key.clone());
        }
        if !writes.is_empty() {
            self.last_write = ts;
        }
        self.commits.push((ts, written));
    }

    /// The stored versions a view taken after `generation` prunes holds.
    fn world(&self, generation: usize) -> World<'_> {
        let later = self.removed.get(generation..).unwrap_or_default();
        if later.iter().all(BTreeMap::is_empty) {
            return World(Cow::Borrowed(&self.versions));
        }
        let mut versions = self.versions.clone();
        for removed in later {
            versions.extend(removed.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        World(Cow::Owned(versions))
    }

    fn prune(&mut self, range: &KeyRange, horizon: Ts, max_keys: usize) -> PruneStats {
        let horizon = horizon.min(self.last_write);
        let keys: Vec<Vec<u8>> = self
            .versions
            .keys()
            .map(|(k, _)| k)
            .filter(|k| range.contains(k))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .cloned()
            .collect();
        let mut removed = Versions::new();
        for key in keys.iter().take(max_keys) {
            let old: Vec<(Ts, bool)> = World(Cow::Borrowed(&self.versions))
                .history(key, horizon)
                .map(|v| (v.ts, v.value.is_none()))
                .collect();
            let Some(&(_, tombstone)) = old.first() else {
                continue;
            };
            let skip = usize::from(!tombstone);
            for &(ts, _) in old.iter().skip(skip) {
                let entry = (key.clone(), ts);
                if let Some(value) = self.versions.remove(&entry) {
                    removed.insert(entry, value);
                }
            }
        }
        let stats = PruneStats {
            keys_scanned: keys.len().min(max_keys) as u64,
            versions_removed: removed.len() as u64,
            resume_at: keys.get(max_keys).cloned(),
        };
        self.removed.push(removed);
        stats
    }
}

/// The versions some view holds.
struct World<'a>(Cow<'a, Versions>);

impl World<'_> {
    fn history(&self, key: &[u8], newest: Ts) -> impl Iterator<Item = Version> + '_ {
        let key = key.to_vec();
        self.0
            .range((key.clone(), Ts::ZERO)..=(key, newest))
            .rev()
            .map(|((_, ts), value)| Version {
                ts: *ts,
                value: value.clone(),
            })
    }

    fn get(&self, key: &[u8], at: Ts) -> Option<Version> {
        self.history(key, at).next()
    }

    fn scan(&self, range: &KeyRange, at: Ts, order: ScanOrder) -> Vec<(Vec<u8>, Version)> {
        let keys: BTreeSet<&Vec<u8>> = self
            .0
            .keys()
            .map(|(k, _)| k)
            .filter(|k| range.contains(k))
            .collect();
        let mut live: Vec<(Vec<u8>, Version)> = keys
            .into_iter()
            .filter_map(|k| {
                self.get(k, at)
                    .filter(|v| v.value.is_some())
                    .map(|v| (k.clone(), v))
            })
            .collect();
        if order == ScanOrder::Descending {
            live.reverse();
        }
        live
    }

    fn versions(
        &self,
        key: &[u8],
        (lower, upper): (Bound<Ts>, Bound<Ts>),
        cap: Ts,
    ) -> Vec<Version> {
        self.history(key, cap)
            .filter(|v| match upper {
                Bound::Included(t) => v.ts <= t,
                Bound::Excluded(t) => v.ts < t,
                Bound::Unbounded => true,
            })
            .filter(|v| match lower {
                Bound::Included(t) => v.ts >= t,
                Bound::Excluded(t) => v.ts > t,
                Bound::Unbounded => true,
            })
            .collect()
    }
}

struct Run<B: Backend> {
    kv: LocalKv<B>,
    model: Model,
    snapshots: Vec<Box<dyn Snapshot>>,
    /// Per snapshot, the number of prunes before its first read (when it took its view).
    generations: Vec<Option<usize>>,
    last_ts: Ts,
    rng: Rng,
}

impl<B: Backend> Run<B> {
    fn snapshot(&mut self) -> usize {
        if self.snapshots.is_empty() || self.rng.one_in(3) {
            let snapshot = self.kv.begin().unwrap();
            assert!(snapshot.ts() > self.last_ts);
            self.last_ts = snapshot.ts();
            if self.snapshots.len() >= 6 {
                let evict = self.rng.below(self.snapshots.len());
                self.snapshots.swap_remove(evict);
                self.generations.swap_remove(evict);
            }
            self.snapshots.push(snapshot);
            self.generations.push(None);
        }
        self.rng.below(self.snapshots.len())
    }

    /// A read timestamp for snapshot `s`: its own, a past commit's, around one, or beyond it.
    fn at(&mut self, s: usize) -> Ts {
        let ts = self.snapshots[s].ts();
        match self.rng.below(5) {
            0 => ts,
            1 => Ts::MAX,
            _ if self.model.commits.is_empty() => ts,
            pick => {
                let (commit_ts, _) = self.model.commits[self.rng.below(self.model.commits.len())];
                Ts(commit_ts.0 + 1 - (pick as u64 % 3).min(2))
            }
        }
    }

    fn ts_bound(&mut self, s: usize) -> Bound<Ts> {
        match self.rng.below(3) {
            0 => Bound::Unbounded,
            1 => Bound::Included(self.at(s)),
            _ => Bound::Excluded(self.at(s)),
        }
    }

    fn commit(&mut self) {
        let s = self.snapshot();
        let snapshot_ts = self.snapshots[s].ts();
        let mut txn = WriteSet {
            snapshot_ts,
            ..WriteSet::default()
        };
        for _ in 0..self.rng.below(3) {
            txn.read_keys.push(self.rng.key());
        }
        if self.rng.one_in(3) {
            txn.read_ranges.push(self.rng.range());
        }
        for _ in 0..self.rng.below(5) {
            let value = (!self.rng.one_in(4)).then(|| self.rng.next().to_le_bytes()[..3].to_vec());
            txn.writes.push((self.rng.key(), value));
        }
        let expired = self.rng.one_in(15);
        let deadline = if expired {
            Some(Instant::now())
        } else {
            Some(Instant::now() + Duration::from_secs(3600))
        };
        let predicted_conflict = self.model.conflicts(&txn);
        match self.kv.commit(txn.clone(), deadline) {
            Err(CommitError::DeadlineExceeded) => assert!(expired),
            Err(CommitError::Conflict) => assert!(!expired && predicted_conflict),
            Ok(ts) => {
                assert!(
                    !expired && !predicted_conflict,
                    "the model expected a conflict"
                );
                assert!(ts > self.last_ts);
                self.last_ts = ts;
                // The last write of a key wins.
                let mut last: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
                for (key, value) in txn.writes {
                    last.insert(key, value);
                }
                let writes: Vec<_> = last.into_iter().collect();
                self.model.apply(ts, &writes);
                if !writes.is_empty() {
                    assert_eq!(self.kv.last_commit_ts(), ts);
                }
            }
            Err(other) => panic!("unexpected commit error {other:?}"),
        }
    }

    fn read(&mut self) {
        let s = self.snapshot();
        let cap = self.snapshots[s].ts();
        let generation = *self.generations[s].get_or_insert(self.model.removed.len());
        match self.rng.below(3) {
            0 => {
                let key = self.rng.key();
                let at = self.at(s);
                let actual = self.snapshots[s].get(&key, at).unwrap();
                assert_eq!(
                    actual,
                    self.model.world(generation).get(&key, at.min(cap)),
                    "get {key:?} at {at}"
                );
            }
            1 => {
                let range = self.rng.range();
                let at = self.at(s);
                let order = if self.rng.one_in(2) {
                    ScanOrder::Ascending
                } else {
                    ScanOrder::Descending
                };
                let actual: Vec<_> = self.snapshots[s]
                    .scan(range.clone(), at, order)
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                let expected = self
                    .model
                    .world(generation)
                    .scan(&range, at.min(cap), order);
                assert_eq!(actual, expected, "scan {range:?} at {at} {order:?}");
            }
            _ => {
                let key = self.rng.key();
                let bounds = (self.ts_bound(s), self.ts_bound(s));
                let actual: Vec<_> = self.snapshots[s]
                    .versions(&key, bounds)
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(
                    actual,
                    self.model.world(generation).versions(&key, bounds, cap),
                    "versions {key:?} {bounds:?}"
                );
            }
        }
    }

    /// A horizon anywhere: around a past commit or a live snapshot, nothing, or everything.
    fn horizon(&mut self) -> Ts {
        match self.rng.below(6) {
            0 => Ts::ZERO,
            1 => Ts::MAX,
            2 if !self.snapshots.is_empty() => {
                self.snapshots[self.rng.below(self.snapshots.len())].ts()
            }
            _ if self.model.commits.is_empty() => Ts::MAX,
            pick => {
                let (ts, _) = self.model.commits[self.rng.below(self.model.commits.len())];
                Ts(ts.0 + 1 - (pick as u64 % 3).min(2))
            }
        }
    }

    fn prune(&mut self) {
        let range = self.rng.range();
        let horizon = self.horizon();
        let max_keys = match self.rng.below(4) {
            0 => usize::MAX,
            n => n - 1,
        };
        let actual = self.kv.prune(range.clone(), horizon, max_keys).unwrap();
        let expected = self.model.prune(&range, horizon, max_keys);
        assert_eq!(
            actual, expected,
            "prune {range:?} at {horizon} ({max_keys} keys)"
        );
    }
}

/// Runs `steps` random operations on `kv` (a fresh, empty store) and checks every answer
/// against the model; closes the store at the end.
pub fn run<B: Backend>(kv: LocalKv<B>, seed: u64, steps: usize) {
    let mut run = Run {
        kv,
        model: Model::default(),
        snapshots: Vec::new(),
        generations: Vec::new(),
        last_ts: Ts::ZERO,
        rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
    };
    for _ in 0..steps {
        match run.rng.below(12) {
            0..4 => run.commit(),
            4 => run.prune(),
            _ => run.read(),
        }
    }
    run.snapshots.clear();
    run.kv.close().unwrap();
}
