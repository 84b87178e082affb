//! Login throttling: failed attempts per identity and per client address slow further
//! attempts down exponentially, then lock them out for a while.
//!
//! For each key: the first `free_failures` failures cost nothing; the next ones make the key
//! wait `base_delay`, doubling each time up to `max_delay`, from its last failure; from
//! `lock_after` failures on, the key is locked until `lock_for` after its last failure (so a
//! failure on a locked-then-released key locks it again at once). A key with no failure for
//! `forget_after` starts afresh. A success clears the identity's failures but not the
//! address's: one right password from an address must not excuse its other guesses.
//!
//! **Invariants:**
//! - Memory is bounded: at most `max_entries` keys are kept; beyond that the oldest are
//!   evicted, unlocked ones before any locked one.
//! - Time is always passed in (`now`), never read, so tests never sleep.
//! - Concurrent attempts cannot race past the limits when callers use [`LoginThrottle::begin`]:
//!   attempts in flight count against the free failures, and once those are used up only one
//!   attempt per key may be in flight.
//! - Nothing here panics, whatever the clock or counts do.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleConfig {
    pub free_failures: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    pub lock_after: u32,
    pub lock_for: Duration,
    pub forget_after: Duration,
    pub max_entries: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            free_failures: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            lock_after: 10,
            lock_for: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
            max_entries: 100_000,
        }
    }
}

/// What failures are counted against. An identity is whatever names the account being
/// logged into (for example `"<db id>/<collection>/<doc id>"`); callers pick one spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    Identity(String),
    /// Normalised when counted: an IPv4-mapped IPv6 address counts as its IPv4 address, and
    /// other IPv6 addresses count by their /64 prefix, the block one client usually holds.
    Address(IpAddr),
}

impl ThrottleKey {
    fn normalized(&self) -> ThrottleKey {
        match self {
            ThrottleKey::Identity(_) => self.clone(),
            ThrottleKey::Address(IpAddr::V4(_)) => self.clone(),
            ThrottleKey::Address(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => ThrottleKey::Address(IpAddr::V4(v4)),
                None => {
                    let prefix = v6.to_bits() & !u128::from(u64::MAX);
                    ThrottleKey::Address(IpAddr::V6(Ipv6Addr::from_bits(prefix)))
                }
            },
        }
    }
}

/// An attempt refused for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many failed attempts; retry in {}s", .retry_after.as_secs().max(1))]
pub struct Throttled {
    pub retry_after: Duration,
    /// The refusal comes from a lockout, not just a backoff delay.
    pub locked: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Option<Instant>,
    in_flight: u32,
}

impl Entry {
    fn is_idle(&self) -> bool {
        self.failures == 0 && self.in_flight == 0
    }
}

pub struct LoginThrottle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<ThrottleKey, Entry>>,
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginThrottle")
            .field("config", &self.config)
            .field("entries", &self.lock().len())
            .finish()
    }
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> LoginThrottle {
        LoginThrottle {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &ThrottleConfig {
        &self.config
    }

    /// A poisoned lock only means another thread panicked mid-update; the counts are still
    /// usable, and refusing every login over it would be worse.
    fn lock(&self) -> MutexGuard<'_, HashMap<ThrottleKey, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// May an attempt for `keys` go ahead now? The longest wait among the keys wins.
    pub fn check(&self, keys: &[ThrottleKey], now: Instant) -> Result<(), Throttled> {
        let entries = self.lock();
        self.check_locked(&entries, keys, now, false)
    }

    /// Like `check`, and on success reserves the attempt until the returned guard records
    /// its outcome or is dropped. Use this when attempts for one key can run concurrently.
    pub fn begin<'a>(
        &'a self,
        keys: &[ThrottleKey],
        now: Instant,
    ) -> Result<Attempt<'a>, Throttled> {
        let keys: Vec<ThrottleKey> = keys.iter().map(ThrottleKey::normalized).collect();
        let mut entries = self.lock();
        self.check_locked(&entries, &keys, now, true)?;
        for key in &keys {
            self.make_room(&mut entries, key, now);
            let entry = entries.entry(key.clone()).or_insert(Entry {
                failures: 0,
                last_failure: None,
                in_flight: 0,
            });
            entry.in_flight = entry.in_flight.saturating_add(1);
        }
        Ok(Attempt {
            throttle: self,
            keys,
            finished: false,
        })
    }

    /// Counts one failed attempt against every key.
    pub fn record_failure(&self, keys: &[ThrottleKey], now: Instant) {
        let mut entries = self.lock();
        for key in keys {
            self.fail_locked(&mut entries, &key.normalized(), now);
        }
    }

    /// A successful attempt: clears the failures of the identity keys; address keys keep
    /// theirs until they are forgotten.
    pub fn record_success(&self, keys: &[ThrottleKey], _now: Instant) {
        let mut entries = self.lock();
        for key in keys {
            if let ThrottleKey::Identity(_) = key
                && let Some(entry) = entries.get_mut(key)
            {
                entry.failures = 0;
                entry.last_failure = None;
                if entry.is_idle() {
                    entries.remove(key);
                }
            }
        }
    }

    /// How many keys are being tracked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check_locked(
        &self,
        entries: &HashMap<ThrottleKey, Entry>,
        keys: &[ThrottleKey],
        now: Instant,
        reserving: bool,
    ) -> Result<(), Throttled> {
        let mut refusal: Option<Throttled> = None;
        for key in keys {
            let Some(entry) = entries.get(&key.normalized()) else {
                continue;
            };
            if let Some(wait) = self.wait(entry, now, reserving) {
                let worse = refusal
                    .is_none_or(|r| (wait.locked, wait.retry_after) > (r.locked, r.retry_after));
                if worse {
                    refusal = Some(wait);
                }
            }
        }
        refusal.map_or(Ok(()), Err)
    }

    /// The wait imposed by one key, if any.
    fn wait(&self, entry: &Entry, now: Instant, reserving: bool) -> Option<Throttled> {
        let c = &self.config;
        let failures = match entry.last_failure {
            Some(last) if now.saturating_duration_since(last) < c.forget_after => entry.failures,
            _ => 0,
        };
        if let Some(last) = entry.last_failure
            && failures > 0
        {
            let since = now.saturating_duration_since(last);
            let (hold, locked) = if failures >= c.lock_after {
                (c.lock_for, true)
            } else if failures > c.free_failures {
                (self.backoff(failures), false)
            } else {
                (Duration::ZERO, false)
            };
            if since < hold {
                return Some(Throttled {
                    retry_after: hold - since,
                    locked,
                });
            }
        }
        // Past the free failures, one attempt at a time; before, attempts in flight use up
        // the free ones as if they had failed.
        if reserving && entry.in_flight > 0 {
            let pending = failures.saturating_add(entry.in_flight);
            if pending >= c.free_failures {
                return Some(Throttled {
                    retry_after: c.base_delay,
                    locked: false,
                });
            }
        }
        None
    }

    /// `base_delay` doubled for each failure past the free ones after the first, at most
    /// `max_delay`.
    fn backoff(&self, failures: u32) -> Duration {
        let c = &self.config;
        let doublings = failures.saturating_sub(c.free_failures).saturating_sub(1);
        let factor = 1u32.checked_shl(doublings.min(31)).unwrap_or(u32::MAX);
        c.base_delay.saturating_mul(factor).min(c.max_delay)
    }

    fn fail_locked(
        &self,
        entries: &mut HashMap<ThrottleKey, Entry>,
        key: &ThrottleKey,
        now: Instant,
    ) {
        self.make_room(entries, key, now);
        let forget_after = self.config.forget_after;
        let entry = entries.entry(key.clone()).or_insert(Entry {
            failures: 0,
            last_failure: None,
            in_flight: 0,
        });
        let stale = entry
            .last_failure
            .is_none_or(|last| now.saturating_duration_since(last) >= forget_after);
        if stale {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = Some(entry.last_failure.map_or(now, |last| last.max(now)));
    }

    fn finish(&self, keys: &[ThrottleKey]) {
        let mut entries = self.lock();
        for key in keys {
            if let Some(entry) = entries.get_mut(key) {
                entry.in_flight = entry.in_flight.saturating_sub(1);
                if entry.is_idle() {
                    entries.remove(key);
                }
            }
        }
    }

    /// Before `key` is added: if the table is full, drop forgotten entries, then the oldest
    /// ones (unlocked first, and never one with an attempt in flight while another is
    /// available) down to 90% of `max_entries`, so eviction is paid for once per many
    /// insertions.
    fn make_room(
        &self,
        entries: &mut HashMap<ThrottleKey, Entry>,
        key: &ThrottleKey,
        now: Instant,
    ) {
        let c = &self.config;
        if entries.contains_key(key) || entries.len() < c.max_entries {
            return;
        }
        entries.retain(|_, e| {
            e.in_flight > 0
                || e.last_failure
                    .is_some_and(|last| now.saturating_duration_since(last) < c.forget_after)
        });
        let target = c.max_entries - c.max_entries / 10;
        let target = target.min(c.max_entries.saturating_sub(1));
        if entries.len() <= target {
            return;
        }
        let mut order: Vec<(bool, bool, Option<Instant>, ThrottleKey)> = entries
            .iter()
            .map(|(k, e)| {
                let locked = e.failures >= c.lock_after;
                (e.in_flight > 0, locked, e.last_failure, k.clone())
            })
            .collect();
        // `false < true` and `None < Some`: idle, unlocked, oldest first.
        order.sort_unstable_by_key(|a| (a.0, a.1, a.2));
        let excess = entries.len() - target;
        for (_, _, _, k) in order.into_iter().take(excess) {
            entries.remove(&k);
        }
    }
}

/// An attempt reserved by [`LoginThrottle::begin`]. Record its outcome with `failed` or
/// `succeeded`; dropping it unrecorded (an internal error, say) just releases the reservation.
#[must_use = "record the attempt's outcome with `failed` or `succeeded`"]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: Vec<ThrottleKey>,
    finished: bool,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt").field("keys", &self.keys).finish()
    }
}

impl Attempt<'_> {
    pub fn failed(mut self, now: Instant) {
        self.release();
        self.throttle.record_failure(&self.keys, now);
    }

    pub fn succeeded(mut self, now: Instant) {
        self.release();
        self.throttle.record_success(&self.keys, now);
    }

    fn release(&mut self) {
        if !self.finished {
            self.finished = true;
            self.throttle.finish(&self.keys);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn identity(name: &str) -> ThrottleKey {
        ThrottleKey::Identity(name.to_owned())
    }

    fn address(last: u8) -> ThrottleKey {
        ThrottleKey::Address(IpAddr::V4(Ipv4Addr::new(192, 0, 2, last)))
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    fn fail(throttle: &LoginThrottle, keys: &[ThrottleKey], times: u32, at: Instant) {
        for _ in 0..times {
            throttle.record_failure(keys, at);
        }
    }

    #[test]
    fn the_free_failures_cost_nothing() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        let keys = [identity("alice")];
        fail(&throttle, &keys, 5, t0);
        assert_eq!(throttle.check(&keys, t0), Ok(()));
    }

    #[test]
    fn failures_past_the_free_ones_wait_exponentially_up_to_the_maximum() {
        let config = ThrottleConfig {
            lock_after: 100,
            ..ThrottleConfig::default()
        };
        let throttle = LoginThrottle::new(config);
        let t0 = Instant::now();
        let keys = [identity("alice")];
        fail(&throttle, &keys, 5, t0);
        for (failure, expected) in [
            (6, 1),
            (7, 2),
            (8, 4),
            (9, 8),
            (10, 16),
            (11, 32),
            (12, 60),
            (13, 60),
        ] {
            throttle.record_failure(&keys, t0);
            assert_eq!(
                throttle.check(&keys, t0),
                Err(Throttled {
                    retry_after: secs(expected),
                    locked: false
                }),
                "failure {failure}"
            );
        }
    }

    #[test]
    fn a_backoff_ends_when_its_delay_has_passed() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        let keys = [identity("alice")];
        fail(&throttle, &keys, 7, t0);
        assert_eq!(
            throttle.check(&keys, t0 + secs(1)),
            Err(Throttled {
                retry_after: secs(1),
                locked: false
            })
        );
        assert_eq!(throttle.check(&keys, t0 + secs(2)), Ok(()));
    }

    #[test]
    fn the_tenth_failure_locks_for_fifteen_minutes() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        let keys = [identity("alice")];
        fail(&throttle, &keys, 9, t0);
        assert!(!throttle.check(&keys, t0).unwrap_err().locked);
        throttle.record_failure(&keys, t0);
        assert_eq!(
            throttle.check(&keys, t0 + secs(60)),
            Err(Throttled {
                retry_after: secs(14 * 60),
                locked: true
            })
        );
        assert_eq!(throttle.check(&keys, t0 + secs(15 * 60)), Ok(()));
    }

    #[test]
    fn a_failure_after_a_lock_expires_locks_again_at_once() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        let keys = [identity("alice")];
        fail(&throttle, &keys, 10, t0);
        let t1 = t0 + secs(15 * 60);
        throttle.record_failure(&keys, t1);
        assert_eq!(
            throttle.check(&keys, t1),
            Err(Throttled {
                retry_after: secs(15 * 60),
                locked: true
            })
        );
    }

    #[test]
    fn failures_are_forgotten_after_an_hour_without_one() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        let keys = [identity("alice")];
        fail(&throttle, &keys, 10, t0);
        let t1 = t0 + secs(3600);
        assert_eq!(throttle.check(&keys, t1), Ok(()));
        // A new failure starts a fresh count: it is the first, so free.
        throttle.record_failure(&keys, t1);
        assert_eq!(throttle.check(&keys, t1), Ok(()));
    }

    #[test]
    fn success_clears_the_identity_but_not_the_address() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        let keys = [identity("alice"), address(7)];
        fail(&throttle, &keys, 7, t0);
        throttle.record_success(&keys, t0);
        assert_eq!(throttle.check(&[identity("alice")], t0), Ok(()));
        assert!(throttle.check(&[address(7)], t0).is_err());
        assert!(throttle.check(&keys, t0).is_err());
    }

    #[test]
    fn keys_are_counted_separately_and_the_worst_one_decides() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        fail(&throttle, &[identity("alice")], 10, t0);
        fail(&throttle, &[address(1)], 7, t0);
        assert_eq!(throttle.check(&[identity("bob"), address(2)], t0), Ok(()));
        let both = throttle
            .check(&[address(1), identity("alice")], t0)
            .unwrap_err();
        assert!(both.locked);
        assert_eq!(both.retry_after, secs(15 * 60));
    }

    #[test]
    fn one_address_guessing_many_identities_is_throttled_by_address() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        for n in 0..10 {
            throttle.record_failure(&[identity(&format!("user{n}")), address(9)], t0);
        }
        let refused = throttle
            .check(&[identity("fresh"), address(9)], t0)
            .unwrap_err();
        assert!(refused.locked);
    }

    #[test]
    fn ipv6_addresses_count_by_their_64_prefix_and_mapped_ipv4_as_ipv4() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        fail(&throttle, &[ThrottleKey::Address(a)], 10, t0);
        assert!(throttle.check(&[ThrottleKey::Address(b)], t0).is_err());
        assert_eq!(throttle.check(&[ThrottleKey::Address(other)], t0), Ok(()));

        let mapped: IpAddr = "::ffff:192.0.2.5".parse().unwrap();
        fail(&throttle, &[ThrottleKey::Address(mapped)], 10, t0);
        assert!(throttle.check(&[address(5)], t0).is_err());
    }

    #[test]
    fn concurrent_attempts_cannot_exceed_the_free_failures() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        let keys = [identity("alice")];
        let attempts: Vec<_> = (0..5).map(|_| throttle.begin(&keys, t0).unwrap()).collect();
        assert!(throttle.begin(&keys, t0).is_err());
        for attempt in attempts {
            attempt.failed(t0);
        }
        // Five failures recorded: the sixth attempt may run, alone.
        let sixth = throttle.begin(&keys, t0).unwrap();
        assert!(throttle.begin(&keys, t0).is_err());
        sixth.failed(t0);
        assert_eq!(
            throttle.check(&keys, t0),
            Err(Throttled {
                retry_after: secs(1),
                locked: false
            })
        );
    }

    #[test]
    fn a_dropped_attempt_releases_its_reservation_without_counting() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        let keys = [identity("alice"), address(1)];
        for _ in 0..20 {
            drop(throttle.begin(&keys, t0).unwrap());
        }
        assert!(throttle.is_empty());
    }

    #[test]
    fn a_successful_attempt_clears_the_identity() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now();
        let keys = [identity("alice")];
        fail(&throttle, &keys, 4, t0);
        throttle.begin(&keys, t0).unwrap().succeeded(t0);
        assert!(throttle.is_empty());
    }

    #[test]
    fn memory_stays_bounded_and_locked_entries_outlive_unlocked_ones() {
        let config = ThrottleConfig {
            max_entries: 100,
            ..ThrottleConfig::default()
        };
        let throttle = LoginThrottle::new(config);
        let t0 = Instant::now();
        fail(&throttle, &[identity("locked")], 10, t0);
        for n in 0..1000u32 {
            throttle.record_failure(
                &[identity(&format!("u{n}"))],
                t0 + Duration::from_millis(u64::from(n)),
            );
            assert!(throttle.len() <= 100);
        }
        assert!(
            throttle
                .check(&[identity("locked")], t0 + secs(2))
                .unwrap_err()
                .locked
        );
        // The newest entries survive; the oldest unlocked ones went first.
        let latest = t0 + secs(2);
        throttle.record_failure(&[identity("u999")], latest);
        let entries = throttle.lock();
        assert_eq!(entries.get(&identity("u999")).map(|e| e.failures), Some(2));
        assert!(!entries.contains_key(&identity("u0")));
    }

    #[test]
    fn when_every_entry_is_locked_the_oldest_lock_goes_first() {
        let config = ThrottleConfig {
            max_entries: 10,
            ..ThrottleConfig::default()
        };
        let throttle = LoginThrottle::new(config);
        let t0 = Instant::now();
        for n in 0..11u64 {
            fail(&throttle, &[identity(&format!("u{n}"))], 10, t0 + secs(n));
        }
        let entries = throttle.lock();
        assert!(entries.len() <= 10);
        assert!(!entries.contains_key(&identity("u0")));
        assert!(entries.contains_key(&identity("u10")));
    }

    #[test]
    fn forgotten_entries_are_dropped_before_anything_else() {
        let config = ThrottleConfig {
            max_entries: 10,
            ..ThrottleConfig::default()
        };
        let throttle = LoginThrottle::new(config);
        let t0 = Instant::now();
        for n in 0..10 {
            throttle.record_failure(&[identity(&format!("old{n}"))], t0);
        }
        let later = t0 + secs(3600);
        throttle.record_failure(&[identity("new")], later);
        assert_eq!(throttle.len(), 1);
    }

    #[test]
    fn a_clock_that_goes_backwards_does_not_panic_or_release_a_lock() {
        let throttle = LoginThrottle::new(ThrottleConfig::default());
        let t0 = Instant::now() + secs(100);
        let keys = [identity("alice")];
        fail(&throttle, &keys, 10, t0);
        let refused = throttle.check(&keys, t0 - secs(50)).unwrap_err();
        assert!(refused.locked);
        throttle.record_failure(&keys, t0 - secs(50));
        assert!(throttle.check(&keys, t0).unwrap_err().locked);
    }

    #[test]
    fn huge_failure_counts_and_delays_saturate() {
        let config = ThrottleConfig {
            lock_after: u32::MAX,
            max_delay: Duration::MAX,
            ..ThrottleConfig::default()
        };
        let throttle = LoginThrottle::new(config);
        assert_eq!(throttle.backoff(u32::MAX), secs(1) * (1 << 31));
        assert_eq!(throttle.backoff(6), secs(1));
    }
}
