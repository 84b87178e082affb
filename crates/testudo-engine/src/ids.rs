//! Document and collection ids: unique, non-negative 64-bit integers.
//!
//! An id is the current time in microseconds shifted left by 10 bits, plus a counter, and
//! never smaller than the last id given: 1024 ids per microsecond before the time part has
//! to advance, and room in an `i64` until the year 2255. At start the generator is seeded
//! above the last commit timestamp, so an id committed before a restart is never handed
//! out again even if the wall clock moved backwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use testudo_model::{DocId, Ts};

const SHIFT: u32 = 10;

pub struct IdGen {
    last: AtomicU64,
}

impl IdGen {
    pub fn new(last_commit: Ts) -> IdGen {
        IdGen {
            last: AtomicU64::new(last_commit.0.saturating_add(1) << SHIFT),
        }
    }

    pub fn next(&self) -> DocId {
        let floor = now_micros() << SHIFT;
        let mut current = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = floor.max(current + 1).min(DocId::MAX);
            match self.last.compare_exchange_weak(
                current,
                candidate,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return DocId(candidate),
                Err(actual) => current = actual,
            }
        }
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_strictly_increase_and_fit_in_i64() {
        let ids = IdGen::new(Ts(0));
        let mut prev = ids.next();
        for _ in 0..10_000 {
            let id = ids.next();
            assert!(id > prev);
            assert!(id.0 <= i64::MAX as u64);
            prev = id;
        }
    }

    #[test]
    fn ids_start_above_the_last_commit_even_if_the_clock_is_behind() {
        let far_future = Ts(now_micros() + 60_000_000_000);
        let ids = IdGen::new(far_future);
        assert!(ids.next().0 > far_future.0 << SHIFT);
    }
}
