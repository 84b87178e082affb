//! `JwksCache`: the key sets of access providers, by `jwks_uri`, fetched on first use and
//! refreshed when a token names a key the cached set lacks or when the set grows old.
//!
//! **Invariants:**
//! - A URI is fetched at most once per `min_refresh`, however many tokens with unknown `kid`s
//!   arrive (a flood of made-up `kid`s must not turn into a flood of requests to the identity
//!   provider); concurrent misses on one URI wait for the one fetch in flight.
//! - A failed or invalid refresh never discards the set already cached: known keys keep
//!   working while the provider is down. A refresh that succeeds replaces the set, so a key
//!   the provider removed stops verifying.
//! - Tokens with a known key are never held up by a refresh of a stale set that another
//!   thread is already doing.
//! - Memory is bounded: at most `max_uris` sets (least recently used evicted), each of at
//!   most `MAX_KEYS` keys from a document of at most `MAX_JWKS_BYTES`.
//! - No lock is held across a fetch except the per-URI fetch lock, and poisoned locks are
//!   recovered, not propagated as panics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use super::{Jwks, JwksFetcher, JwtError};

/// Tuning for [`JwksCache`].
#[derive(Debug, Clone)]
pub struct JwksCacheConfig {
    /// Fetches of one URI are at least this far apart.
    pub min_refresh: Duration,
    /// A set older than this is refreshed on its next use (while it keeps serving).
    pub max_age: Duration,
    /// Key sets kept at most.
    pub max_uris: usize,
}

impl Default for JwksCacheConfig {
    fn default() -> Self {
        JwksCacheConfig {
            min_refresh: Duration::from_secs(60),
            max_age: Duration::from_secs(60 * 60),
            max_uris: 1024,
        }
    }
}

#[derive(Default)]
struct EntryState {
    jwks: Option<Arc<Jwks>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<JwtError>,
}

#[derive(Default)]
struct Entry {
    state: Mutex<EntryState>,
    /// Held for the duration of a fetch, so one URI has one fetch in flight.
    fetching: Mutex<()>,
}

struct Slot {
    entry: Arc<Entry>,
    last_used: Instant,
}

/// Thread-safe cache of JWK sets keyed by `jwks_uri`.
pub struct JwksCache {
    fetcher: Arc<dyn JwksFetcher>,
    config: JwksCacheConfig,
    entries: Mutex<HashMap<String, Slot>>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("config", &self.config)
            .field("uris", &lock(&self.entries).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl JwksCache {
    pub fn new(fetcher: Arc<dyn JwksFetcher>, config: JwksCacheConfig) -> JwksCache {
        JwksCache {
            fetcher,
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &JwksCacheConfig {
        &self.config
    }

    /// The key set of `jwks_uri`, holding a key named `kid` (with no `kid`: any non-empty
    /// set). Fetches on first use, on a `kid` the cached set lacks and when the set is older
    /// than `max_age`, each at most once per `min_refresh`. May block on the fetcher.
    ///
    /// Errors: `UnknownKey` when the set still lacks `kid`; `JwksUnavailable` or
    /// `InvalidJwks` when no set was ever fetched successfully.
    pub fn key_for(
        &self,
        jwks_uri: &str,
        kid: Option<&str>,
        now: Instant,
    ) -> Result<Arc<Jwks>, JwtError> {
        let entry = self.entry(jwks_uri, now);
        let known = {
            let state = lock(&entry.state);
            match &state.jwks {
                Some(jwks) if jwks.has(kid) => {
                    if !self.is_stale(&state, now) {
                        return Ok(Arc::clone(jwks));
                    }
                    Some(Arc::clone(jwks))
                }
                _ => None,
            }
        };
        match known {
            // Stale but able to answer: refresh only if nobody else is refreshing.
            Some(jwks) => match entry.fetching.try_lock() {
                Ok(_guard) => self.refresh(&entry, jwks_uri, now),
                Err(TryLockError::Poisoned(_guard)) => self.refresh(&entry, jwks_uri, now),
                Err(TryLockError::WouldBlock) => return Ok(jwks),
            },
            None => {
                let _guard = lock(&entry.fetching);
                self.refresh(&entry, jwks_uri, now);
            }
        }
        let state = lock(&entry.state);
        match (&state.jwks, &state.last_error) {
            (Some(jwks), _) if jwks.has(kid) => Ok(Arc::clone(jwks)),
            (Some(_), _) => Err(JwtError::UnknownKey),
            (None, Some(error)) => Err(error.clone()),
            (None, None) => Err(JwtError::JwksUnavailable("not fetched yet".into())),
        }
    }

    /// Drops the cached set of `jwks_uri` (for instance when its access provider changes).
    pub fn forget(&self, jwks_uri: &str) {
        lock(&self.entries).remove(jwks_uri);
    }

    /// Number of URIs with an entry.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_stale(&self, state: &EntryState, now: Instant) -> bool {
        state
            .fetched_at
            .is_none_or(|at| now.saturating_duration_since(at) >= self.config.max_age)
    }

    fn entry(&self, jwks_uri: &str, now: Instant) -> Arc<Entry> {
        let mut entries = lock(&self.entries);
        if let Some(slot) = entries.get_mut(jwks_uri) {
            slot.last_used = now;
            return Arc::clone(&slot.entry);
        }
        while entries.len() >= self.config.max_uris.max(1) {
            let oldest = entries
                .iter()
                .min_by_key(|(_, slot)| slot.last_used)
                .map(|(uri, _)| uri.clone());
            match oldest {
                Some(uri) => entries.remove(&uri),
                None => break,
            };
        }
        let entry = Arc::new(Entry::default());
        entries.insert(
            jwks_uri.to_owned(),
            Slot {
                entry: Arc::clone(&entry),
                last_used: now,
            },
        );
        entry
    }

    /// Fetches and installs the set unless the last attempt is under `min_refresh` old.
    /// The caller holds `entry.fetching`.
    fn refresh(&self, entry: &Entry, jwks_uri: &str, now: Instant) {
        {
            let mut state = lock(&entry.state);
            if state
                .last_attempt
                .is_some_and(|at| now.saturating_duration_since(at) < self.config.min_refresh)
            {
                return;
            }
            state.last_attempt = Some(now);
        }
        let fetched = self
            .fetcher
            .fetch(jwks_uri)
            .and_then(|document| Jwks::parse(&document));
        let mut state = lock(&entry.state);
        match fetched {
            Ok(jwks) => {
                state.jwks = Some(Arc::new(jwks));
                state.fetched_at = Some(now);
                state.last_error = None;
            }
            Err(error) => {
                tracing::warn!(jwks_uri, reason = %error, "JWKS refresh failed");
                state.last_error = Some(error);
            }
        }
    }
}
