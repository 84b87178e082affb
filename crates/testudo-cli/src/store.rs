//! Opening the store of a data directory: the one place the binary names a storage backend.
//!
//! FIXME(storage-redb): the redb backend (`testudo_storage_redb::open(dir)`) has not landed
//! yet. Until it does, [`open`] returns [`Unwired`], a store that holds nothing and refuses
//! every read and commit, so that the binary and its protocol tests run. Swap the body of
//! [`open`] for the one call when the backend lands; nothing else changes.
//!
//! **Invariants:** no other file of the binary knows which backend stores the data; a store
//! that cannot keep data never pretends to (it fails reads and commits instead).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use testudo_storage::{CommitError, Kv, KvError, Snapshot, Ts, WriteSet};

use crate::CliError;

/// Opens (creating if needed) the store kept in `data_dir`.
pub fn open(data_dir: &Path) -> Result<Arc<dyn Kv>, CliError> {
    tracing::warn!(
        data_dir = %data_dir.display(),
        "no storage backend is wired in yet: nothing can be read or written"
    );
    Ok(Arc::new(Unwired))
}

/// A store that stores nothing (see the module docs).
pub struct Unwired;

const UNWIRED: &str = "no storage backend is wired into this build yet";

impl Kv for Unwired {
    fn begin(&self) -> Result<Box<dyn Snapshot>, KvError> {
        Err(KvError::Io(UNWIRED.to_owned()))
    }

    fn commit(&self, _txn: WriteSet, _deadline: Option<Instant>) -> Result<Ts, CommitError> {
        Err(CommitError::Kv(KvError::Io(UNWIRED.to_owned())))
    }

    fn last_commit_ts(&self) -> Ts {
        Ts::ZERO
    }

    fn close(&self) -> Result<(), KvError> {
        Ok(())
    }
}
