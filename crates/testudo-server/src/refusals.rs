//! When the answer to a query refused by its database's rate limits is sent.
//!
//! A rate limit bounds the work a database's queries cause, not the cost of refusing them:
//! each refusal still costs the server the HTTP request, the secret's check and the 429
//! (tens of µs of CPU). A client that floods in a loop — or over hundreds of connections —
//! could thereby take the CPU its database's limit was meant to leave to the others. So a
//! refusal is held back (the connection waits; no thread does) until a slot in the
//! *refusal schedule* of the outermost database whose limits apply
//! ([`Engine::rate_limit_owner`]; a tenant's children share its schedule, so flooding
//! through many children gains nothing): never sooner than [`ServerConfig::refusal_delay`]
//! after it was decided, and never sooner than `1 / refusals_per_second` after that
//! schedule's previous refusal. A closed-loop flooder therefore gets at most
//! `refusals_per_second` answers a second whatever its number of connections or children,
//! and its requests arrive no faster than it gets answers. The drivers back off on a 429
//! far longer than these waits anyway.
//!
//! A hold never exceeds [`MAX_HOLD`]: past that many seconds of queued refusals (a client
//! with thousands of requests in flight at once), refusals are answered at that bound, so
//! the pending ones stay bounded in time (and in number, by the connection and stream
//! limits).
//!
//! **Invariants:** a refusal is never held longer than [`MAX_HOLD`]; the schedule of one
//! database never delays another's; the map holds no more than [`MAX_TRACKED`] databases
//! whose schedule is idle.
//!
//! [`ServerConfig::refusal_delay`]: crate::ServerConfig::refusal_delay
//! [`Engine::rate_limit_owner`]: testudo_engine::Engine::rate_limit_owner

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use testudo_engine::DbId;

/// The longest a refusal is held back.
pub const MAX_HOLD: Duration = Duration::from_secs(5);
/// Databases whose schedule is kept once idle, before idle ones are forgotten.
const MAX_TRACKED: usize = 4096;

/// The refusal schedules of all databases.
pub struct RefusalPacer {
    delay: Duration,
    /// Between two refusals of one database; zero: no pacing by rate.
    interval: Duration,
    /// By database: the earliest time its next refusal may be answered.
    next: Mutex<HashMap<DbId, Instant>>,
}

impl RefusalPacer {
    /// Refusals held at least `delay`, and answered at most `per_second` a second per
    /// database (`0`: no rate, only the delay).
    pub fn new(delay: Duration, per_second: u32) -> RefusalPacer {
        let interval = match per_second {
            0 => Duration::ZERO,
            n => Duration::from_secs(1) / n,
        };
        RefusalPacer {
            delay: delay.min(MAX_HOLD),
            interval,
            next: Mutex::new(HashMap::new()),
        }
    }

    /// How long to hold a refusal of a query in `db` decided `now`, and books its slot.
    pub fn hold(&self, db: DbId, now: Instant) -> Duration {
        if self.interval.is_zero() {
            return self.delay;
        }
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        if next.len() >= MAX_TRACKED && !next.contains_key(&db) {
            next.retain(|_, at| *at > now);
        }
        let earliest = now + self.delay;
        let slot = next.get(&db).map_or(earliest, |at| (*at).max(earliest));
        let hold = slot.saturating_duration_since(now).min(MAX_HOLD);
        // A capped hold books from where it is answered, so the schedule cannot run away.
        next.insert(db, now + hold + self.interval);
        hold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_lone_refusal_waits_the_delay() {
        let pacer = RefusalPacer::new(20 * MS, 1000);
        let now = Instant::now();
        assert_eq!(pacer.hold(DbId(1), now), 20 * MS);
        // Later than the schedule: again just the delay.
        assert_eq!(pacer.hold(DbId(1), now + Duration::from_secs(1)), 20 * MS);
    }

    #[test]
    fn refusals_decided_together_are_answered_one_interval_apart() {
        let pacer = RefusalPacer::new(20 * MS, 100);
        let now = Instant::now();
        let holds: Vec<_> = (0..5).map(|_| pacer.hold(DbId(1), now)).collect();
        assert_eq!(holds, [20 * MS, 30 * MS, 40 * MS, 50 * MS, 60 * MS]);
    }

    #[test]
    fn one_database_s_schedule_does_not_delay_another() {
        let pacer = RefusalPacer::new(20 * MS, 10);
        let now = Instant::now();
        for _ in 0..50 {
            pacer.hold(DbId(1), now);
        }
        assert_eq!(pacer.hold(DbId(2), now), 20 * MS);
    }

    #[test]
    fn no_hold_exceeds_the_bound_and_the_schedule_follows_the_bound() {
        let pacer = RefusalPacer::new(20 * MS, 1);
        let now = Instant::now();
        let holds: Vec<_> = (0..10).map(|_| pacer.hold(DbId(1), now)).collect();
        assert!(holds.iter().all(|h| *h <= MAX_HOLD), "{holds:?}");
        assert_eq!(holds[9], MAX_HOLD);
        // Once the queue is at the bound, the next slot is one interval after the bound.
        assert_eq!(
            pacer.hold(DbId(1), now + MAX_HOLD),
            MAX_HOLD.min(Duration::from_secs(1))
        );
    }

    #[test]
    fn without_a_rate_only_the_delay_applies() {
        let pacer = RefusalPacer::new(20 * MS, 0);
        let now = Instant::now();
        assert!((0..100).all(|_| pacer.hold(DbId(1), now) == 20 * MS));
        let none = RefusalPacer::new(Duration::ZERO, 0);
        assert_eq!(none.hold(DbId(1), now), Duration::ZERO);
    }

    #[test]
    fn idle_databases_are_forgotten_when_many_are_tracked() {
        let pacer = RefusalPacer::new(MS, 1000);
        let now = Instant::now();
        for id in 0..MAX_TRACKED as u64 {
            pacer.hold(DbId(id), now);
        }
        pacer.hold(DbId(u64::MAX), now + Duration::from_secs(1));
        let tracked = pacer.next.lock().unwrap().len();
        assert_eq!(tracked, 1);
    }
}
