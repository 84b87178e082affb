//! Optimistic conflict detection: the window of recent commits a write set is checked against.
//!
//! The sequencer (and only it) owns a [`ConflictWindow`]: for each recent commit, its
//! timestamp and the sorted keys it wrote. A transaction that read at `snapshot_ts` conflicts
//! if some commit with a timestamp above `snapshot_ts` wrote one of its read keys or a key
//! inside one of its read ranges (a phantom). Commits older than the window are forgotten; the
//! window's *horizon* is the newest forgotten timestamp, and a transaction that read before
//! the horizon cannot be checked, so it is reported as a conflict (the caller retries on a
//! fresh snapshot). Blind writes (nothing read) never conflict.
//!
//! **Invariants:** every commit with a timestamp above the horizon is in the window (a false
//! "no conflict" is impossible); the window is bounded by count, bytes and age, pruned after
//! every batch; this module never blocks and takes no lock.

use std::collections::VecDeque;
use std::time::Duration;

use crate::{KeyRange, Ts};

/// Bounds on the conflict window. A transaction whose snapshot is older than what the window
/// retains conflicts if it read anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowLimits {
    pub max_commits: usize,
    /// Approximate bytes of retained keys.
    pub max_bytes: usize,
    /// Commits older than this (in timestamp microseconds) relative to the newest are dropped.
    pub max_age: Duration,
}

impl Default for WindowLimits {
    fn default() -> WindowLimits {
        WindowLimits {
            max_commits: 200_000,
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(120),
        }
    }
}

/// Bytes charged per retained commit and per key, beyond the key bytes themselves.
const COMMIT_OVERHEAD: usize = 64;
const KEY_OVERHEAD: usize = 24;

struct Commit {
    ts: Ts,
    /// Sorted, without duplicates.
    keys: Vec<Vec<u8>>,
    bytes: usize,
}

pub(crate) struct ConflictWindow {
    /// Ascending by timestamp.
    commits: VecDeque<Commit>,
    horizon: Ts,
    bytes: usize,
    limits: WindowLimits,
}

/// What a transaction read.
pub(crate) struct Reads<'a> {
    pub snapshot_ts: Ts,
    pub keys: &'a [Vec<u8>],
    pub ranges: &'a [KeyRange],
}

impl Reads<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.ranges.is_empty()
    }

    /// Whether a commit that wrote `written` (sorted) touched anything read here.
    pub(crate) fn overlaps(&self, written: &[Vec<u8>]) -> bool {
        if written.is_empty() {
            return false;
        }
        let read_key = self
            .keys
            .iter()
            .any(|key| written.binary_search(key).is_ok());
        read_key
            || self.ranges.iter().any(|range| {
                let first = written.partition_point(|key| key.as_slice() < range.start.as_slice());
                written.get(first).is_some_and(|key| range.contains(key))
            })
    }
}

impl ConflictWindow {
    /// A window that knows nothing up to `horizon` (the newest commit before this process).
    pub(crate) fn new(horizon: Ts, limits: WindowLimits) -> ConflictWindow {
        ConflictWindow {
            commits: VecDeque::new(),
            horizon,
            bytes: 0,
            limits,
        }
    }

    /// Whether a commit after `reads.snapshot_ts` wrote something the transaction read.
    pub(crate) fn conflicts(&self, reads: &Reads<'_>) -> bool {
        if reads.is_empty() {
            return false;
        }
        if reads.snapshot_ts < self.horizon {
            return true;
        }
        self.commits
            .iter()
            .rev()
            .take_while(|commit| commit.ts > reads.snapshot_ts)
            .any(|commit| reads.overlaps(&commit.keys))
    }

    /// Records a commit; `keys` must be sorted and free of duplicates, and `ts` above every
    /// recorded commit.
    pub(crate) fn push(&mut self, ts: Ts, keys: Vec<Vec<u8>>) {
        let bytes = COMMIT_OVERHEAD + keys.iter().map(|k| k.len() + KEY_OVERHEAD).sum::<usize>();
        self.bytes += bytes;
        self.commits.push_back(Commit { ts, keys, bytes });
    }

    /// Forgets the oldest commits until the window is within its limits.
    pub(crate) fn prune(&mut self) {
        let max_age = u64::try_from(self.limits.max_age.as_micros()).unwrap_or(u64::MAX);
        let newest = self.commits.back().map_or(Ts::ZERO, |c| c.ts);
        let cutoff = newest.0.saturating_sub(max_age);
        while let Some(oldest) = self.commits.front() {
            let over = self.commits.len() > self.limits.max_commits
                || self.bytes > self.limits.max_bytes
                || oldest.ts.0 < cutoff;
            if !over {
                break;
            }
            self.horizon = self.horizon.max(oldest.ts);
            self.bytes -= oldest.bytes;
            self.commits.pop_front();
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.commits.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(list: &[&str]) -> Vec<Vec<u8>> {
        list.iter().map(|k| k.as_bytes().to_vec()).collect()
    }

    fn window() -> ConflictWindow {
        let mut window = ConflictWindow::new(Ts(10), WindowLimits::default());
        window.push(Ts(20), keys(&["b", "d"]));
        window.push(Ts(30), keys(&["f"]));
        window
    }

    #[test]
    fn a_read_key_written_after_the_snapshot_conflicts() {
        let read = keys(&["d"]);
        let reads = Reads {
            snapshot_ts: Ts(15),
            keys: &read,
            ranges: &[],
        };
        assert!(window().conflicts(&reads));
        let reads = Reads {
            snapshot_ts: Ts(20),
            keys: &read,
            ranges: &[],
        };
        assert!(!window().conflicts(&reads));
    }

    #[test]
    fn a_key_written_into_a_read_range_conflicts() {
        let hit = [KeyRange::new("c", "e")];
        let miss = [KeyRange::new("c", "d"), KeyRange::new("g", "z")];
        assert!(window().conflicts(&Reads {
            snapshot_ts: Ts(15),
            keys: &[],
            ranges: &hit
        }));
        assert!(!window().conflicts(&Reads {
            snapshot_ts: Ts(15),
            keys: &[],
            ranges: &miss
        }));
    }

    #[test]
    fn a_snapshot_older_than_the_window_conflicts_unless_nothing_was_read() {
        let read = keys(&["zzz"]);
        assert!(window().conflicts(&Reads {
            snapshot_ts: Ts(5),
            keys: &read,
            ranges: &[]
        }));
        assert!(!window().conflicts(&Reads {
            snapshot_ts: Ts(5),
            keys: &[],
            ranges: &[]
        }));
    }

    #[test]
    fn pruning_by_count_moves_the_horizon() {
        let limits = WindowLimits {
            max_commits: 1,
            ..WindowLimits::default()
        };
        let mut window = ConflictWindow::new(Ts::ZERO, limits);
        window.push(Ts(20), keys(&["a"]));
        window.push(Ts(30), keys(&["b"]));
        window.prune();
        assert_eq!(window.len(), 1);
        let read = keys(&["b"]);
        assert!(window.conflicts(&Reads {
            snapshot_ts: Ts(19),
            keys: &read,
            ranges: &[]
        }));
        assert!(!window.conflicts(&Reads {
            snapshot_ts: Ts(20),
            keys: &keys(&["a"]),
            ranges: &[]
        }));
    }

    #[test]
    fn pruning_by_age_and_bytes_keeps_the_window_bounded() {
        let limits = WindowLimits {
            max_commits: usize::MAX,
            max_bytes: 10 * (COMMIT_OVERHEAD + KEY_OVERHEAD + 1),
            max_age: Duration::from_micros(1000),
        };
        let mut window = ConflictWindow::new(Ts::ZERO, limits);
        for ts in 1..=100u64 {
            window.push(Ts(ts * 10), keys(&["k"]));
            window.prune();
        }
        assert!(window.len() <= 10);
        window.push(Ts(100_000), keys(&["k"]));
        window.prune();
        assert_eq!(window.len(), 1);
    }
}
