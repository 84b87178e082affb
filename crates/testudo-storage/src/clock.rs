//! The store's clock: every read and commit timestamp comes from here.
//!
//! Timestamps are microseconds since the Unix epoch, strictly increasing across every `begin`
//! and every commit of the store, and never going backwards across restarts (the clock starts
//! at the larger of the wall clock and the stored last commit timestamp).
//!
//! **The rule reads depend on.** A snapshot at `S` must contain every commit with a timestamp
//! `< S`, now and forever, without waiting for writers to evaluate anything. The hard case is a
//! commit batch that already has timestamps but is still being written and flushed: if a
//! `begin` during that flush got a timestamp above the batch's, the snapshot would miss data
//! that a later `at(S)` read would see. So the clock keeps:
//! - `last`: the largest timestamp issued, not counting the batch in flight;
//! - `in_flight`: the first and last timestamps of the batch being flushed, if any (its first
//!   is the *floor* reads must stay below).
//!
//! `begin` issues `max(now, last + 1)` when no batch is in flight. During a flush it issues
//! `last + 1` if that is still below the floor, and otherwise (the reserve below is used up,
//! which is rare) waits until the batch is published, then tries again. It never waits for a
//! transaction that is still being evaluated, only for a flush that is already under way.
//!
//! The sequencer gives a batch of `n` commits the timestamps `first .. first + n`, where
//! `first = max(now, last + 1 + reserve)`. The *reserve* is room for reads that arrive during
//! the flush; it is sized from the last flush's duration in microseconds, clamped to
//! `[16, 10_000]`. Because the next batch cannot start before the previous flush ended, a
//! reserve the size of that flush is roughly the wall-clock time that passes per batch, so the
//! timestamps track the wall clock instead of drifting ahead of it under continuous load. To
//! keep that true for flushes shorter than 16 µs (the in-memory backend), once the clock is
//! already ahead of the wall clock the reserve is the measured flush time alone (at least 1).
//!
//! Publishing a batch (after its data is visible in the backend) clears the floor and wakes
//! waiting readers; it must happen before any of the batch's committers is answered, so that a
//! client's next read sees its own write.
//!
//! **Invariants:** no timestamp is issued twice; no lock is held while anything is flushed;
//! `begin` does no allocation and no system call other than reading the clock.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{KvError, Ts};

pub(crate) const MIN_RESERVE_US: u64 = 16;
pub(crate) const MAX_RESERVE_US: u64 = 10_000;

pub(crate) struct Clock {
    state: Mutex<ClockState>,
    published: Condvar,
}

struct ClockState {
    last: u64,
    /// `(first, last)` of the batch being flushed.
    in_flight: Option<(u64, u64)>,
    last_flush_us: u64,
    closed: bool,
}

/// Microseconds since the Unix epoch (0 if the system clock is set before it).
pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl Clock {
    /// A clock that continues after `stored_last_commit` (the newest durable commit).
    pub(crate) fn new(stored_last_commit: Ts) -> Clock {
        Clock {
            state: Mutex::new(ClockState {
                last: now_us().max(stored_last_commit.0),
                in_flight: None,
                last_flush_us: MIN_RESERVE_US,
                closed: false,
            }),
            published: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ClockState> {
        // Every critical section leaves the state consistent; a panic elsewhere cannot
        // leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh read timestamp: above every timestamp issued so far and below any batch in
    /// flight. Fails only once the clock is closed.
    pub(crate) fn begin(&self) -> Result<Ts, KvError> {
        let now = now_us();
        let mut state = self.lock();
        loop {
            if state.closed {
                return Err(KvError::Closed);
            }
            let next = state.last.saturating_add(1);
            match state.in_flight {
                None => {
                    state.last = next.max(now);
                    return Ok(Ts(state.last));
                }
                Some((floor, _)) if next < floor => {
                    state.last = next;
                    return Ok(Ts(next));
                }
                Some(_) => {
                    state = self
                        .published
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            }
        }
    }

    /// Reserves `count` (at least 1) consecutive commit timestamps for a batch about to be
    /// flushed and returns the first. Until [`Clock::publish`], reads get timestamps below it.
    pub(crate) fn reserve_batch(&self, count: u64) -> Ts {
        let now = now_us();
        let mut state = self.lock();
        // One sequencer: a previous batch is always published before the next is reserved.
        if let Some((_, batch_last)) = state.in_flight.take() {
            state.last = state.last.max(batch_last);
        }
        let next = state.last.saturating_add(1);
        let reserve = if next > now {
            state.last_flush_us.clamp(1, MAX_RESERVE_US)
        } else {
            state.last_flush_us.clamp(MIN_RESERVE_US, MAX_RESERVE_US)
        };
        let first = now.max(next.saturating_add(reserve));
        state.in_flight = Some((first, first.saturating_add(count.max(1) - 1)));
        Ts(first)
    }

    /// The batch in flight is visible (or failed and never will be): lets reads past it.
    pub(crate) fn publish(&self, flush: Duration) {
        let mut state = self.lock();
        if let Some((_, batch_last)) = state.in_flight.take() {
            state.last = state.last.max(batch_last);
        }
        state.last_flush_us = u64::try_from(flush.as_micros()).unwrap_or(u64::MAX);
        drop(state);
        self.published.notify_all();
    }

    /// Every later (and every waiting) `begin` fails with [`KvError::Closed`].
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.published.notify_all();
    }

    /// The largest timestamp issued so far.
    pub(crate) fn last_issued(&self) -> Ts {
        let state = self.lock();
        Ts(state
            .in_flight
            .map_or(state.last, |(_, batch_last)| state.last.max(batch_last)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A clock far ahead of the wall clock behaves deterministically: `now` never wins.
    fn future_clock() -> Clock {
        Clock::new(Ts(now_us() + 3_600_000_000))
    }

    #[test]
    fn begins_strictly_increase() {
        let clock = Clock::new(Ts::ZERO);
        let mut prev = clock.begin().unwrap();
        for _ in 0..1000 {
            let ts = clock.begin().unwrap();
            assert!(ts > prev);
            prev = ts;
        }
    }

    #[test]
    fn the_clock_starts_after_the_stored_last_commit() {
        let stored = Ts(now_us() + 60_000_000);
        let clock = Clock::new(stored);
        assert!(clock.begin().unwrap() > stored);
    }

    #[test]
    fn a_read_during_a_flush_gets_a_timestamp_below_the_batch() {
        let clock = future_clock();
        let before = clock.begin().unwrap();
        let first = clock.reserve_batch(3);
        let during = clock.begin().unwrap();
        assert!(before < during && during < first);
        clock.publish(Duration::from_micros(5));
        let after = clock.begin().unwrap();
        assert!(after > Ts(first.0 + 2));
    }

    #[test]
    fn the_reserve_follows_the_last_flush_duration() {
        let clock = future_clock();
        clock.reserve_batch(1);
        clock.publish(Duration::from_micros(300));
        let last = clock.last_issued();
        assert_eq!(clock.reserve_batch(1), Ts(last.0 + 1 + 300));
        clock.publish(Duration::from_secs(5));
        let last = clock.last_issued();
        assert_eq!(clock.reserve_batch(1), Ts(last.0 + 1 + MAX_RESERVE_US));
    }

    #[test]
    fn a_read_that_exhausts_the_reserve_waits_for_the_publish() {
        let clock = Arc::new(future_clock());
        clock.reserve_batch(1);
        clock.publish(Duration::from_micros(1));
        let first = clock.reserve_batch(1);
        // The reserve is one timestamp: the first read takes it, the second must wait.
        assert!(clock.begin().unwrap() < first);
        let waiter = {
            let clock = clock.clone();
            std::thread::spawn(move || clock.begin())
        };
        clock.publish(Duration::from_micros(1));
        let ts = waiter.join().unwrap().unwrap();
        assert!(ts > first);
    }

    #[test]
    fn closing_fails_waiting_and_later_reads() {
        let clock = Arc::new(future_clock());
        clock.reserve_batch(1);
        clock.publish(Duration::from_micros(1));
        clock.reserve_batch(1);
        clock.begin().unwrap();
        let waiter = {
            let clock = clock.clone();
            std::thread::spawn(move || clock.begin())
        };
        clock.close();
        assert!(matches!(waiter.join().unwrap(), Err(KvError::Closed)));
        assert!(matches!(clock.begin(), Err(KvError::Closed)));
    }
}
