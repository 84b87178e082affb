//! Per-database rate limits (beyond Fauna's fixed plan limits): a database document may
//! carry `limits: { queries_per_second, concurrent_queries, read_ops_per_second,
//! write_ops_per_second, compute_ops_per_second }`. A query in a database is charged to that
//! database and to every ancestor that sets limits, so a tenant's children share the
//! tenant's budget and one tenant over its budget cannot use its siblings'.
//!
//! Each rate is a token bucket holding at most one second of its rate. A query is admitted
//! when no bucket on its chain is empty and no database on it is at its concurrency limit;
//! it then takes one query token, and when it ends its read, write and compute ops are
//! taken from their buckets (which may go into debt: the next queries wait until it is paid
//! back). A refused query does no work and gets Fauna's `limit_exceeded` (HTTP 429), which
//! the official drivers retry with back-off.
//!
//! The operator may set default limits (`serve --default-queries-per-second` …,
//! [`Limiter::new`]): a database whose document sets no `limits` is limited as if it carried
//! the defaults (the root never is). A database's own `limits` replace the defaults entirely.
//!
//! **Invariants:** every admitted query releases its concurrency slot exactly once (a guard
//! does it, also on unwinding); limits are re-read after any committed change to a database
//! document (the authentication epoch moves), never later than the next query.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use testudo_model::{Data, DataMap, DbId};
use testudo_storage::KvError;

use crate::api::Stats;
use crate::tenancy;
use crate::txn::Txn;

/// The names accepted in a database's `limits`, with what each limits.
pub const RATE_FIELDS: &[&str] = &[
    "queries_per_second",
    "read_ops_per_second",
    "write_ops_per_second",
    "compute_ops_per_second",
];
pub const CONCURRENCY_FIELD: &str = "concurrent_queries";

/// One database's limits (`None`: unlimited).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Limits {
    /// Per second: queries, read ops, write ops, compute ops (the order of `RATE_FIELDS`).
    pub rates: [Option<f64>; 4],
    pub concurrent: Option<u32>,
}

impl Limits {
    /// The limits stored on a database document (validated when written).
    pub fn of(fields: &DataMap) -> Option<Limits> {
        let Some(Data::Object(l)) = fields.get("limits") else {
            return None;
        };
        let number = |name: &str| match l.get(name) {
            Some(Data::Int(n)) if *n > 0 => Some(*n as f64),
            Some(Data::Double(d)) if *d > 0.0 && d.is_finite() => Some(*d),
            _ => None,
        };
        let limits = Limits {
            rates: [
                number(RATE_FIELDS[0]),
                number(RATE_FIELDS[1]),
                number(RATE_FIELDS[2]),
                number(RATE_FIELDS[3]),
            ],
            concurrent: match l.get(CONCURRENCY_FIELD) {
                Some(Data::Int(n)) if *n > 0 => u32::try_from(*n).ok(),
                _ => None,
            },
        };
        (limits != Limits::default()).then_some(limits)
    }
}

/// The limited databases a query is charged to: its own and its ancestors', nearest first.
pub type Chain = Arc<Vec<(DbId, Limits)>>;

/// What a query is refused for.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub db: DbId,
    /// `"concurrent_queries"` or one of [`RATE_FIELDS`].
    pub limit: &'static str,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate.max(1.0));
        self.last = now;
    }
}

#[derive(Debug, Default)]
struct DbState {
    buckets: [Option<Bucket>; 4],
    in_flight: u32,
}

/// The limiter shared by all queries: limits by database (cached per authentication
/// epoch) and each limited database's buckets.
#[derive(Default)]
pub struct Limiter {
    /// The limits of a database whose document sets none.
    defaults: Option<Limits>,
    /// By database: the authentication epoch it was read at, and the chain.
    chains: Mutex<HashMap<DbId, (u64, Chain)>>,
    state: Mutex<HashMap<DbId, DbState>>,
}

/// An admitted query's hold on its chain's concurrency slots; settle it with the stats.
/// It owns its share of the limiter, so it can be taken on one thread (the network thread
/// that decided) and dropped on another (the blocking thread that ran the query).
pub struct Admission {
    limiter: Arc<Limiter>,
    chain: Chain,
}

impl Limiter {
    /// A limiter applying `defaults` to every database that sets no limits of its own.
    pub fn new(defaults: Option<Limits>) -> Limiter {
        Limiter {
            defaults: defaults.filter(|d| *d != Limits::default()),
            ..Limiter::default()
        }
    }

    /// The limited databases a query in `db` is charged to (itself and its ancestors).
    pub fn chain(
        &self,
        db: DbId,
        epoch: u64,
        kv: &dyn testudo_storage::Kv,
    ) -> Result<Chain, KvError> {
        if let Some(chain) = self.cached_chain(db, epoch) {
            return Ok(chain);
        }
        let mut txn = Txn::begin(kv)?;
        let mut chain = Vec::new();
        let mut cur = db;
        for _ in 0..=tenancy::MAX_DEPTH {
            let Some(parent) = tenancy::parent_of(&mut txn, cur)? else {
                break;
            };
            let own = tenancy::database_doc(&mut txn, parent, cur)?
                .as_ref()
                .and_then(Limits::of);
            if let Some(limits) = own.or_else(|| self.defaults.clone()) {
                chain.push((cur, limits));
            }
            cur = parent;
        }
        let chain = Arc::new(chain);
        self.lock_chains().insert(db, (epoch, chain.clone()));
        Ok(chain)
    }

    /// The chain of `db` when it was read at `epoch` (no storage access: safe anywhere).
    pub fn cached_chain(&self, db: DbId, epoch: u64) -> Option<Chain> {
        match self.lock_chains().get(&db) {
            Some((at, chain)) if *at == epoch => Some(chain.clone()),
            _ => None,
        }
    }

    /// Admits a query charged to `chain`, or says which limit refuses it.
    pub fn admit(self: &Arc<Self>, chain: Chain) -> Result<Option<Admission>, Refusal> {
        if chain.is_empty() {
            return Ok(None);
        }
        let now = Instant::now();
        let mut state = self.lock_state();
        for (db, limits) in chain.iter() {
            let s = state.entry(*db).or_default();
            if limits.concurrent.is_some_and(|max| s.in_flight >= max) {
                return Err(Refusal {
                    db: *db,
                    limit: CONCURRENCY_FIELD,
                });
            }
            for (i, rate) in limits.rates.iter().enumerate() {
                let Some(rate) = *rate else { continue };
                let bucket = s.buckets[i].get_or_insert(Bucket {
                    tokens: rate.max(1.0),
                    last: now,
                });
                bucket.refill(rate, now);
                // A query needs a whole query token; ops buckets only need to be out of debt.
                let needed = if i == 0 { 1.0 } else { f64::MIN_POSITIVE };
                if bucket.tokens < needed {
                    return Err(Refusal {
                        db: *db,
                        limit: RATE_FIELDS[i],
                    });
                }
            }
        }
        for (db, limits) in chain.iter() {
            let s = state.entry(*db).or_default();
            s.in_flight += 1;
            if let (Some(_), Some(bucket)) = (limits.rates[0], s.buckets[0].as_mut()) {
                bucket.tokens -= 1.0;
            }
        }
        drop(state);
        Ok(Some(Admission {
            limiter: Arc::clone(self),
            chain,
        }))
    }

    fn lock_chains(&self) -> std::sync::MutexGuard<'_, HashMap<DbId, (u64, Chain)>> {
        self.chains.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_state(&self) -> std::sync::MutexGuard<'_, HashMap<DbId, DbState>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Admission {
    /// Charges the query's ops to its chain's buckets.
    pub fn settle(&self, stats: &Stats) {
        let ops = [
            0.0,
            stats.read_ops as f64,
            stats.write_ops as f64,
            stats.compute_ops as f64,
        ];
        let mut state = self.limiter.lock_state();
        for (db, _) in self.chain.iter() {
            if let Some(s) = state.get_mut(db) {
                for (i, used) in ops.iter().enumerate().skip(1) {
                    if let Some(bucket) = s.buckets[i].as_mut() {
                        bucket.tokens -= used;
                    }
                }
            }
        }
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut state = self.limiter.lock_state();
        for (db, _) in self.chain.iter() {
            if let Some(s) = state.get_mut(db) {
                s.in_flight = s.in_flight.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(limits: Limits) -> Chain {
        Arc::new(vec![(DbId(7), limits)])
    }

    #[test]
    fn a_query_rate_admits_a_burst_of_one_second_then_refuses() {
        let limiter = Arc::new(Limiter::default());
        let c = chain(Limits {
            rates: [Some(3.0), None, None, None],
            concurrent: None,
        });
        for _ in 0..3 {
            assert!(limiter.admit(c.clone()).unwrap().is_some());
        }
        let refused = limiter.admit(c).err().unwrap();
        assert_eq!(refused.limit, "queries_per_second");
    }

    #[test]
    fn concurrency_is_held_until_the_admission_is_dropped() {
        let limiter = Arc::new(Limiter::default());
        let c = chain(Limits {
            rates: [None; 4],
            concurrent: Some(1),
        });
        let first = limiter.admit(c.clone()).unwrap();
        assert_eq!(
            limiter.admit(c.clone()).err().unwrap().limit,
            "concurrent_queries"
        );
        drop(first);
        assert!(limiter.admit(c).is_ok());
    }

    #[test]
    fn ops_taken_into_debt_refuse_the_next_query() {
        let limiter = Arc::new(Limiter::default());
        let c = chain(Limits {
            rates: [None, Some(10.0), None, None],
            concurrent: None,
        });
        let a = limiter.admit(c.clone()).unwrap().unwrap();
        a.settle(&Stats {
            read_ops: 50,
            ..Stats::default()
        });
        drop(a);
        assert_eq!(limiter.admit(c).err().unwrap().limit, "read_ops_per_second");
    }

    #[test]
    fn limits_are_read_only_from_a_limits_object_with_positive_numbers() {
        let mut fields = DataMap::new();
        assert_eq!(Limits::of(&fields), None);
        let mut l = DataMap::new();
        l.insert("queries_per_second".into(), Data::Int(5));
        l.insert("concurrent_queries".into(), Data::Int(0));
        fields.insert("limits".into(), Data::Object(l));
        assert_eq!(
            Limits::of(&fields),
            Some(Limits {
                rates: [Some(5.0), None, None, None],
                concurrent: None,
            })
        );
    }
}
