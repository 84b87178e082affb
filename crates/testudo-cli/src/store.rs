//! Opening the store of a data directory: the one place the binary names a storage backend.
//!
//! The embedded default is redb (`<data-dir>/data.redb`), committed through the local
//! group-commit pipeline with a durable flush per batch.
//!
//! **Invariants:** no other file of the binary knows which backend stores the data.

use std::path::Path;
use std::sync::Arc;

use clap::Args;
use testudo_storage::Kv;

use crate::CliError;

/// Options of `serve` (and later of offline commands) that decide how the store is opened.
#[derive(Args)]
pub struct StoreArgs {}

/// Opens (creating if needed) the store kept in `data_dir`. `dev` is `serve --dev`.
pub fn open(data_dir: &Path, _options: &StoreArgs, _dev: bool) -> Result<Arc<dyn Kv>, CliError> {
    testudo_storage_redb::open(data_dir).map_err(|e| {
        CliError::Failed(format!(
            "cannot open the store in {}: {e}",
            data_dir.display()
        ))
    })
}
