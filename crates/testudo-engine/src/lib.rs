//! The database engine: one query in, one strictly serializable transaction, one result out.
//!
//! **Invariants:** every query runs in exactly one database and one transaction; a query
//! that fails leaves no trace; no document leaves the engine except through the
//! authorization gate; this crate knows no HTTP and no storage engine, only the `Kv` trait.

pub mod api;

use std::sync::Arc;

use testudo_auth::SecretHash;
use testudo_model::{DbId, Ts};
use testudo_storage::Kv;

pub use api::*;

/// Settings fixed when the engine opens.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// The hash of the root database's admin secret.
    pub root_secret: SecretHash,
}

pub struct Engine {
    kv: Arc<dyn Kv>,
    config: EngineConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Storage(#[from] testudo_storage::KvError),
}

impl Engine {
    pub fn open(kv: Arc<dyn Kv>, config: EngineConfig) -> Result<Engine, OpenError> {
        Ok(Engine { kv, config })
    }

    /// Turns a bearer secret into the scope it grants. This is the only place secrets are
    /// checked.
    pub fn authenticate(&self, secret: &str) -> Result<Scope, Unauthorized> {
        if self.config.root_secret.verify(secret) {
            Ok(Scope { db: DbId::ROOT, role: Role::Admin })
        } else {
            Err(Unauthorized)
        }
    }

    /// Runs one query as one transaction. Blocking: call it from a blocking thread.
    pub fn query(&self, _scope: &Scope, _request: QueryRequest) -> QueryResponse {
        QueryResponse {
            outcome: Err(QueryError {
                code: ErrorCode::Internal,
                message: "the evaluator is not wired in yet".into(),
                abort: None,
                constraint_failures: Vec::new(),
            }),
            summary: String::new(),
            txn_ts: self.kv.last_commit_ts(),
            stats: Stats::default(),
            schema_version: Ts::ZERO,
        }
    }

    /// Flushes and closes the store.
    pub fn close(&self) -> Result<(), testudo_storage::KvError> {
        self.kv.close()
    }
}
