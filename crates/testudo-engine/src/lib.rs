//! The database engine: one query in, one strictly serializable transaction, one result out.
//!
//! **Invariants:** every query runs in exactly one database and one transaction; a query
//! that fails leaves no trace; no document leaves the engine except through the
//! authorization gate (`authz` rules, applied by `gate` from `docs`); this crate knows no HTTP and no
//! storage engine, only the `Kv` trait.

pub mod api;
mod audit;
mod auth;
mod authz;
pub mod backup;
mod docs;
mod eval;
mod gate;
mod ids;
mod index;
mod keys;
mod limits;
mod mask;
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
pub use testudo_model::DbId;
use testudo_storage::{CommitError, Kv, KvError, WriteSet};

pub use api::*;
pub use audit::credential_ref as audit_credential;
pub use audit::database_ref as audit_database;
pub use limits::Limits;
pub use reclaim::{MIN_RETENTION, ReclaimStats};
pub use runner::{MIN_TIMEOUT, PLACEHOLDER};
pub use tenancy::DatabaseKeyring;

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

/// How JWTs from access providers are checked.
#[derive(Clone, Debug)]
pub struct JwtOptions {
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Fetch `http://` JWKS URIs (otherwise only `https://`).
    pub allow_http: bool,
    /// Fetch JWKS from loopback and private addresses (an identity provider inside the
    /// operator's network). Off by default: a database admin, not the operator, chooses
    /// `jwks_uri`, and must not be able to make the server probe its own network.
    pub allow_private_addresses: bool,
    /// The directory `file:` JWKS URIs are read from (none: `file:` URIs are refused).
    pub jwks_file_root: Option<std::path::PathBuf>,
}

impl Default for JwtOptions {
    fn default() -> Self {
        JwtOptions {
            leeway_secs: testudo_auth::jwt::DEFAULT_LEEWAY_SECS,
            allow_http: false,
            allow_private_addresses: false,
            jwks_file_root: None,
        }
    }
}

/// Settings beyond [`EngineConfig`], each with a safe default.
#[derive(Clone, Debug, Default)]
pub struct EngineOptions {
    pub jwt: JwtOptions,
    /// Per-database data keys (crypto-shredding): destroyed when their database is deleted
    /// (none: the store has no per-database keys).
    pub database_keys: Option<Arc<dyn DatabaseKeyring>>,
    /// Where security decisions and authentication events are recorded (none: only the
    /// tracing log).
    pub audit: Option<Arc<dyn testudo_audit::AuditSink>>,
    /// Where `Backup.create()` writes and `Backup.restore()` reads backups (none: the
    /// `Backup` module answers that backups are not configured).
    pub backups: Option<Arc<dyn backup::BackupService>>,
    /// Rate limits of every database whose document sets no `limits` (none: unlimited).
    pub default_limits: Option<Limits>,
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
    /// The key that makes key and token verifiers useless without this server.
    pub(crate) pepper: testudo_auth::Pepper,
    pub(crate) auth: auth::AuthCache,
    pub(crate) throttle: testudo_auth::LoginThrottle,
    pub(crate) events: Arc<dyn testudo_auth::EventSink>,
    pub(crate) audit: Option<Arc<dyn testudo_audit::AuditSink>>,
    /// Access providers' key sets, by `jwks_uri`.
    pub(crate) jwks: testudo_auth::jwt::JwksCache,
    pub(crate) jwt: JwtOptions,
    pub(crate) limiter: Arc<limits::Limiter>,
    pub(crate) database_keys: Option<Arc<dyn DatabaseKeyring>>,
    pub(crate) backups: Option<Arc<dyn backup::BackupService>>,
}

pub struct Engine {
    shared: Arc<EngineShared>,
}

/// A query's admission under the rate limits of its database and its ancestors, from
/// [`Engine::admit_fast`]: it holds the query's concurrency slots until dropped.
pub struct Admitted(Option<limits::Admission>);

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
        Engine::open_with(kv, config, EngineOptions::default())
    }

    /// [`Engine::open`] with non-default options.
    pub fn open_with(
        kv: Arc<dyn Kv>,
        config: EngineConfig,
        options: EngineOptions,
    ) -> Result<Engine, OpenError> {
        let jwks = auth::jwks_cache(&options.jwt)
            .map_err(|e| OpenError::Init(format!("cannot set up JWKS fetching: {e}")))?;
        let secrets = init_root(kv.as_ref())?;
        if let Some(keyring) = &options.database_keys {
            // Keys whose shredding failed (or whose database never committed) go now.
            tenancy::sweep_keys(kv.as_ref(), keyring.as_ref())?;
        }
        let cursor_key = set::cursor::CursorKey::new(&secrets.cursor_key)
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
            pepper: testudo_auth::Pepper::from_bytes(secrets.pepper),
            auth: auth::AuthCache::default(),
            throttle: testudo_auth::LoginThrottle::new(testudo_auth::ThrottleConfig::default()),
            events: match &options.audit {
                Some(sink) => Arc::new(audit::AuditedEvents {
                    log: Arc::new(testudo_auth::TracingSink),
                    audit: sink.clone(),
                }),
                None => Arc::new(testudo_auth::TracingSink),
            },
            audit: options.audit.clone(),
            jwks,
            jwt: options.jwt,
            limiter: Arc::new(limits::Limiter::new(options.default_limits.clone())),
            database_keys: options.database_keys,
            backups: options.backups,
        });
        index::build::resume_pending(&shared, DbId::ROOT)?;
        Ok(Engine { shared })
    }

    /// [`Engine::authenticate`] when it can answer without touching storage (the root
    /// secret, or a secret verified before and still valid): cheap enough for the network
    /// thread. `None` means the caller must run `authenticate` where blocking is fine.
    pub fn authenticate_fast(&self, secret: &str) -> Option<Result<Scope, Unauthorized>> {
        auth::authenticate_fast(&self.shared, secret)
    }

    /// Turns a bearer secret into the scope it grants. This is the only place secrets are
    /// checked.
    pub fn authenticate(&self, secret: &str) -> Result<Scope, Unauthorized> {
        auth::authenticate(&self.shared, secret)
    }

    /// Runs one query as one transaction. Blocking: call it from a blocking thread.
    pub fn query(&self, scope: &Scope, request: QueryRequest) -> QueryResponse {
        let shared = &self.shared;
        let started = std::time::Instant::now();
        let chain = match shared
            .limiter
            .chain(scope.db, shared.auth.epoch(), shared.kv.as_ref())
        {
            Ok(chain) => chain,
            Err(e) => return runner::storage_failure(shared, started, &e),
        };
        match shared.limiter.admit(chain) {
            Ok(admission) => self.query_admitted(scope, request, Admitted(admission)),
            Err(refusal) => runner::rate_limited(shared, scope.db, started, &refusal),
        }
    }

    /// The rate-limit check of [`Engine::query`], when it can be made without storage (the
    /// database's limits were read since they last changed): cheap enough for the network
    /// thread, so that a flood over a database's limits is refused without a thread
    /// handoff. `None`: the caller must use `query`, which checks on its blocking thread.
    /// A refusal is the complete response to send (nothing ran).
    pub fn admit_fast(&self, scope: &Scope) -> Option<Result<Admitted, QueryResponse>> {
        let shared = &self.shared;
        let started = std::time::Instant::now();
        let chain = shared.limiter.cached_chain(scope.db, shared.auth.epoch())?;
        Some(match shared.limiter.admit(chain) {
            Ok(admission) => Ok(Admitted(admission)),
            Err(refusal) => Err(runner::rate_limited(shared, scope.db, started, &refusal)),
        })
    }

    /// The outermost database whose rate limits apply to queries in `db`: the one whose
    /// budget a tenant's whole subtree shares (a child that sets its own limits is still
    /// inside it). `db` itself when none is known to apply. No storage access: it reads the
    /// chain the last admission check cached.
    ///
    /// The server paces refusals per this database, so that a tenant flooding through many
    /// children gets one refusal schedule, not one per child.
    pub fn rate_limit_owner(&self, db: DbId) -> DbId {
        let shared = &self.shared;
        shared
            .limiter
            .cached_chain(db, shared.auth.epoch())
            .and_then(|chain| chain.last().map(|(owner, _)| *owner))
            .unwrap_or(db)
    }

    /// Runs a query [`Engine::admit_fast`] admitted. Blocking: call it from a blocking
    /// thread.
    pub fn query_admitted(
        &self,
        scope: &Scope,
        request: QueryRequest,
        admitted: Admitted,
    ) -> QueryResponse {
        let response = runner::run(&self.shared, scope, request);
        if let Some(admission) = &admitted.0 {
            admission.settle(&response.stats);
        }
        response
    }

    /// The store's commit counters (transactions, backend batches and their sizes), for
    /// metrics; `None` when the store keeps none.
    pub fn commit_stats(&self) -> Option<testudo_storage::CommitStats> {
        self.shared.kv.commit_stats()
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

    /// Every backup schedule set on a database document (`backup: { every, keep }`), with
    /// the key prefixes of the subtree each covers, read at one snapshot.
    pub fn backup_schedules(&self) -> Result<Vec<backup::BackupSchedule>, KvError> {
        let mut txn = txn::Txn::begin(self.shared.kv.as_ref())?;
        backup::schedules(&mut txn)
    }

    /// Flushes and closes the store.
    pub fn close(&self) -> Result<(), KvError> {
        self.shared.reclaimer.stop();
        self.shared.builder.stop();
        self.shared.kv.close()
    }
}

/// Secrets the root database keeps for the whole server, created on first open.
struct RootSecrets {
    cursor_key: [u8; 32],
    pepper: [u8; 32],
}

/// Creates the root database's schema marker, the cursor sealing key and the secret
/// pepper on first open (and whichever of them an older store lacks), and returns the keys.
fn init_root(kv: &dyn Kv) -> Result<RootSecrets, OpenError> {
    let mut txn = txn::Txn::begin(kv)?;
    let mut writes = Vec::new();
    let mut read_keys = Vec::new();
    let marker = keys::schema_marker(DbId::ROOT);
    if txn.get(&marker)?.is_none_or(|r| r.value.is_none()) {
        writes.push((marker.clone(), Some(Vec::new())));
    }
    read_keys.push(marker);
    let mut secret = |key: Vec<u8>, what: &str| -> Result<[u8; 32], OpenError> {
        read_keys.push(key.clone());
        if let Some(bytes) = txn.get(&key)?.and_then(|r| r.value) {
            return bytes
                .try_into()
                .map_err(|_| OpenError::Init(format!("the stored {what} is malformed")));
        }
        let mut fresh = [0u8; 32];
        SystemRandom::new()
            .fill(&mut fresh)
            .map_err(|_| OpenError::Init("random number generator failed".into()))?;
        writes.push((key, Some(fresh.to_vec())));
        Ok(fresh)
    };
    let cursor_key = secret(keys::cursor_key(), "cursor key")?;
    let pepper = secret(keys::pepper_key(), "secret pepper")?;
    if !writes.is_empty() {
        let write_set = WriteSet {
            snapshot_ts: txn.ts(),
            read_keys,
            read_ranges: Vec::new(),
            writes,
        };
        match kv.commit(write_set, None) {
            Ok(_) => {}
            Err(CommitError::Kv(e)) => return Err(e.into()),
            Err(e) => return Err(OpenError::Init(e.to_string())),
        }
    }
    Ok(RootSecrets { cursor_key, pepper })
}
