//! The database engine: one query in, one strictly serializable transaction, one result out.
//!
//! **Invariants:** every query runs in exactly one database and one transaction; a query
//! that fails leaves no trace; no document leaves the engine except through the
//! authorization gate (`authz`, called from `docs`); this crate knows no HTTP and no
//! storage engine, only the `Kv` trait.

pub mod api;
mod authz;
mod docs;
mod eval;
mod ids;
mod index;
mod keys;
mod materialize;
mod reclaim;
mod runner;
mod schema;
mod set;
mod shape;
mod stdlib;
mod tenancy;
mod txn;

use std::sync::Arc;

use ring::rand::{SecureRandom, SystemRandom};
use testudo_auth::SecretHash;
use testudo_model::DbId;
use testudo_storage::{CommitError, Kv, KvError, WriteSet};

pub use api::*;
pub use reclaim::{MIN_RETENTION, ReclaimStats};
pub use runner::{MIN_TIMEOUT, PLACEHOLDER};

/// The stack a thread running [`Engine::query`] needs. Evaluation recurses (bounded by the
/// engine's depth limits); this leaves a wide margin over the deepest legal query measured
/// in a debug build (under 2 MiB).
pub const QUERY_STACK_BYTES: usize = 16 * 1024 * 1024;

/// Settings fixed when the engine opens.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The hash of the root database's admin secret.
    pub root_secret: SecretHash,
}

/// State shared by every query.
pub struct EngineShared {
    pub(crate) kv: Arc<dyn Kv>,
    config: EngineConfig,
    pub(crate) schemas: schema::SchemaCache,
    pub(crate) ids: ids::IdGen,
    pub(crate) cursor_key: set::cursor::CursorKey,
    pub(crate) builder: index::build::Builder,
    reclaimer: reclaim::Reclaimer,
}

pub struct Engine {
    shared: Arc<EngineShared>,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Storage(#[from] KvError),
    #[error("could not initialize the store: {0}")]
    Init(String),
}

impl Engine {
    /// Opens the engine on a store, initializing a new store's root database.
    pub fn open(kv: Arc<dyn Kv>, config: EngineConfig) -> Result<Engine, OpenError> {
        let cursor_key = init_root(kv.as_ref())?;
        let cursor_key = set::cursor::CursorKey::new(&cursor_key)
            .ok_or_else(|| OpenError::Init("the cursor key is malformed".into()))?;
        let last_commit = kv.last_commit_ts();
        let ids = ids::IdGen::new(last_commit);
        let shared = Arc::new_cyclic(|weak| EngineShared {
            kv,
            config,
            schemas: schema::SchemaCache::new(last_commit),
            ids,
            cursor_key,
            builder: index::build::Builder::start(weak.clone()),
            reclaimer: reclaim::Reclaimer::start(weak.clone()),
        });
        index::build::resume_pending(&shared, DbId::ROOT)?;
        Ok(Engine { shared })
    }

    /// [`Engine::authenticate`] when it can answer without touching storage (the root
    /// secret, or a secret verified before and still valid): cheap enough for the network
    /// thread. `None` means the caller must run `authenticate` where blocking is fine.
    pub fn authenticate_fast(&self, secret: &str) -> Option<Result<Scope, Unauthorized>> {
        Some(self.authenticate(secret))
    }

    /// Turns a bearer secret into the scope it grants. This is the only place secrets are
    /// checked.
    pub fn authenticate(&self, secret: &str) -> Result<Scope, Unauthorized> {
        if self.shared.config.root_secret.verify(secret) {
            Ok(Scope::admin(DbId::ROOT))
        } else {
            Err(Unauthorized)
        }
    }

    /// Runs one query as one transaction. Blocking: call it from a blocking thread.
    pub fn query(&self, scope: &Scope, request: QueryRequest) -> QueryResponse {
        runner::run(&self.shared, scope, request)
    }

    /// Runs one reclamation pass now (the reclaimer also runs every minute by itself):
    /// drops versions past retention, expired documents, and deleted collections' data.
    pub fn reclaim_now(&self) -> Result<reclaim::ReclaimStats, KvError> {
        reclaim::pass(&self.shared, DbId::ROOT, reclaim::MIN_RETENTION)
    }

    /// [`Engine::reclaim_now`] with a shorter minimum retention than [`MIN_RETENTION`]:
    /// for tests and benchmarks only (it can reclaim versions a cursor still needs).
    #[doc(hidden)]
    pub fn reclaim_now_with_min_retention(
        &self,
        min_retention: std::time::Duration,
    ) -> Result<reclaim::ReclaimStats, KvError> {
        reclaim::pass(&self.shared, DbId::ROOT, min_retention)
    }

    /// Flushes and closes the store.
    pub fn close(&self) -> Result<(), KvError> {
        self.shared.reclaimer.stop();
        self.shared.builder.stop();
        self.shared.kv.close()
    }
}

/// Creates the root database's schema marker and the cursor sealing key on first open, and
/// returns the cursor key.
fn init_root(kv: &dyn Kv) -> Result<[u8; 32], OpenError> {
    let mut txn = txn::Txn::begin(kv)?;
    let marker = keys::schema_marker(DbId::ROOT);
    let existing_key = txn.get(&keys::cursor_key())?.and_then(|r| r.value);
    let has_marker = txn.get(&marker)?.is_some_and(|r| r.value.is_some());
    if let Some(bytes) = existing_key {
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| OpenError::Init("the stored cursor key is malformed".into()))?;
        if has_marker {
            return Ok(key);
        }
    }
    let mut key = [0u8; 32];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| OpenError::Init("random number generator failed".into()))?;
    let write_set = WriteSet {
        snapshot_ts: txn.ts(),
        read_keys: vec![marker.clone(), keys::cursor_key()],
        read_ranges: Vec::new(),
        writes: vec![
            (marker, Some(Vec::new())),
            (keys::cursor_key(), Some(key.to_vec())),
        ],
    };
    match kv.commit(write_set, None) {
        Ok(_) => Ok(key),
        Err(CommitError::Kv(e)) => Err(e.into()),
        Err(e) => Err(OpenError::Init(e.to_string())),
    }
}
