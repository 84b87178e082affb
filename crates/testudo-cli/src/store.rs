//! Opening the store of a data directory: the one place the binary names a storage backend,
//! and where the master key for encryption at rest is taken from the command line.
//!
//! The embedded default is redb, committed through the local group-commit pipeline with a
//! durable flush per batch. With a master key (`--master-key-file`, `TESTUDO_MASTER_KEY` or
//! `--master-key-command`, exactly one), the store is encrypted at rest (`<data-dir>/data.enc`
//! and `<data-dir>/keyring`); without one it is plaintext (`<data-dir>/data.redb`). An
//! encrypted store is refused without its key and a plaintext store with a key: nothing is
//! ever converted silently.
//!
//! With a master key the server also seals every value under its database's own data key
//! (`<data-dir>/dbkeys`, see `testudo_storage_redb::sealed`): [`open_for_engine`] hands the
//! engine the sealing store and the keyring that destroys a deleted database's key, and the
//! backup code the store as stored (values still sealed), so that a backup never outlives the
//! deletion of a database in readable form. `--db-keys-copy-dir` keeps a copy of `dbkeys`
//! beside the backups, updated after every change.
//!
//! **Invariants:** no other file of the binary knows which backend stores the data; key
//! material is never logged or printed (only the key's public fingerprint); serving without
//! a master key outside `--dev` is always announced with a warning; the engine never gets
//! the undecorated store of an encrypted data directory, and backups never get the sealing
//! one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use testudo_engine::DatabaseKeyring;
use testudo_engine::DbId;
use testudo_storage::{Kv, LocalKvOptions};
use testudo_storage_redb::keys::{KeyError, MASTER_KEY_ENV, MasterKey, MasterKeySource};
use testudo_storage_redb::{DatabaseKeys, SealedKv, StoreError, adopt_db_keys, open_store};

use crate::CliError;

/// Options of `serve` (and of `keys`) that decide how the store is opened.
#[derive(Args)]
pub struct StoreArgs {
    /// Encrypt the store at rest with the master key in this file (base64 of 32 bytes, or the
    /// 32 raw bytes; the file must not be readable by group or others). Alternatives:
    /// the TESTUDO_MASTER_KEY environment variable (base64), or --master-key-command.
    #[arg(long, value_name = "PATH")]
    master_key_file: Option<PathBuf>,

    /// Encrypt the store at rest with the master key this command prints on stdout (base64),
    /// e.g. a KMS or secrets-manager client. Run with `sh -c`; it gets 30 s.
    #[arg(long, value_name = "COMMAND")]
    master_key_command: Option<String>,
}

/// Options of `serve` for the per-database keys of an encrypted store.
#[derive(Args)]
pub struct DbKeysArgs {
    /// With a master key: keep a copy of the per-database key file (`dbkeys`) in this
    /// directory, rewritten after every change (a backup is restored with it, and a deleted
    /// database stays unreadable in it). Default: `--backup-dir`. A store restored from a
    /// backup, started with this option, takes its key file from there.
    #[arg(long, value_name = "DIR")]
    db_keys_copy_dir: Option<PathBuf>,
}

impl DbKeysArgs {
    /// Where `dbkeys` is copied: the explicit option, else the backup directory, since the
    /// backups kept there cannot be restored without it (one server per backup directory).
    pub fn copy_dir<'a>(&'a self, backup_dir: Option<&'a Path>) -> Option<&'a Path> {
        self.db_keys_copy_dir.as_deref().or(backup_dir)
    }
}

/// Where `options` says the master key comes from (`None`: no encryption).
pub fn master_key_source(options: &StoreArgs) -> Result<Option<MasterKeySource>, CliError> {
    let env = std::env::var_os(MASTER_KEY_ENV).is_some_and(|v| !v.is_empty());
    choose_source(options, env)
}

/// The one source among the options and (when `env` is set) the environment variable.
fn choose_source(options: &StoreArgs, env: bool) -> Result<Option<MasterKeySource>, CliError> {
    let mut sources = Vec::new();
    if let Some(path) = &options.master_key_file {
        sources.push(MasterKeySource::File(path.clone()));
    }
    if let Some(command) = &options.master_key_command {
        sources.push(MasterKeySource::Command(command.clone()));
    }
    if env {
        sources.push(MasterKeySource::Env(MASTER_KEY_ENV.to_owned()));
    }
    if sources.len() > 1 {
        return Err(CliError::Refused(format!(
            "the master key is given more than once ({}); give exactly one of \
             --master-key-file, --master-key-command and {MASTER_KEY_ENV}",
            sources
                .iter()
                .map(MasterKeySource::describe)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(sources.pop())
}

/// The master key `options` names, loaded (`None`: no encryption).
pub fn master_key(options: &StoreArgs) -> Result<Option<MasterKey>, CliError> {
    master_key_source(options)?
        .map(|source| source.load().map_err(|e| key_error(&e)))
        .transpose()
}

/// The store of a data directory as the server uses it.
pub struct OpenedStore {
    /// What the engine reads and writes through (values sealed per database when encrypted).
    pub kv: Arc<dyn Kv>,
    /// The same store with values as stored: for backups.
    pub raw: Arc<dyn Kv>,
    /// The per-database keys (encrypted stores only), for [`testudo_engine::EngineOptions`].
    pub database_keys: Option<Arc<dyn DatabaseKeyring>>,
}

/// Opens (creating if needed) the store kept in `data_dir` for the server: with a master
/// key, values are sealed per database. `dev` is `serve --dev`.
///
/// `master` is the key `options` names, loaded once by the caller (a `--master-key-command`
/// runs once per start, whatever else needs the key).
/// Names (by fingerprint) the master key the process holding the store's lock opened it
/// with: a `keys rotate-data` run beside a server started before `keys rotate-master` would
/// wrap the new data key under a master key that server does not have, so it checks this
/// first (`keys.rs`).
const KEY_IN_USE_FILE: &str = "master-key-in-use";

/// Writes [`KEY_IN_USE_FILE`]. Advisory: a failure is logged, not fatal.
fn record_key_in_use(data_dir: &Path, master: &MasterKey) {
    let path = data_dir.join(KEY_IN_USE_FILE);
    let temporary = data_dir.join(format!("{KEY_IN_USE_FILE}.tmp"));
    let written = std::fs::write(&temporary, format!("{}\n", master.fingerprint()))
        .and_then(|()| std::fs::rename(&temporary, &path));
    if let Err(err) = written {
        tracing::warn!(path = %path.display(), error = %err, "could not record the master key in use");
    }
}

/// The fingerprint of the master key the store's lock holder opened it with, when it said.
pub fn key_in_use(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join(KEY_IN_USE_FILE)).ok()?;
    let fingerprint = text.trim();
    (!fingerprint.is_empty()).then(|| fingerprint.to_owned())
}

pub fn open_for_engine(
    data_dir: &Path,
    master: Option<MasterKey>,
    db_keys_copy_dir: Option<&Path>,
    dev: bool,
) -> Result<OpenedStore, CliError> {
    let raw = open_loaded(data_dir, master.as_ref(), dev)?;
    let Some(master) = master else {
        return Ok(OpenedStore {
            kv: Arc::clone(&raw),
            raw,
            database_keys: None,
        });
    };
    record_key_in_use(data_dir, &master);
    if let Some(dir) = db_keys_copy_dir
        && raw.last_commit_ts().0 > 0
        && adopt_db_keys(dir, data_dir).map_err(|e| key_error(&e))?
    {
        // A store restored from a backup: its keys are the copy kept beside the backups.
        tracing::warn!(
            copy = %dir.display(),
            "the store had no per-database key file: using the copy kept beside the backups (--db-keys-copy-dir, default --backup-dir)"
        );
    }
    let keys = DatabaseKeys::open(data_dir, master, raw.as_ref()).map_err(|e| key_error(&e))?;
    if let Some(dir) = db_keys_copy_dir {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::Failed(format!("could not create {}: {e}", dir.display())))?;
        keys.mirror_to(dir).map_err(|e| key_error(&e))?;
    }
    let keys = Arc::new(keys);
    Ok(OpenedStore {
        kv: Arc::new(SealedKv::new(Arc::clone(&raw), Arc::clone(&keys))),
        database_keys: Some(Arc::new(EngineKeys {
            keys,
            raw: Arc::clone(&raw),
        })),
        raw,
    })
}

/// The per-database keys as the engine sees them.
struct EngineKeys {
    keys: Arc<DatabaseKeys>,
    raw: Arc<dyn Kv>,
}

impl std::fmt::Debug for EngineKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EngineKeys({:?})", self.keys)
    }
}

impl DatabaseKeyring for EngineKeys {
    fn shred(&self, dbs: &[DbId]) -> Result<(), String> {
        let ids: Vec<u64> = dbs.iter().map(|db| db.0).collect();
        self.keys.shred(&ids).map_err(|e| e.to_string())?;
        tracing::info!(databases = ?ids, "destroyed the data keys of deleted databases");
        Ok(())
    }

    fn databases(&self) -> Vec<DbId> {
        self.keys.databases().into_iter().map(DbId).collect()
    }

    fn raw_kv(&self) -> Arc<dyn Kv> {
        Arc::clone(&self.raw)
    }
}

/// Opens (creating if needed) the store kept in `data_dir`, values as stored (for backups
/// and tools: with a master key, values stay sealed per database). `dev` is `serve --dev`.
pub fn open(data_dir: &Path, options: &StoreArgs, dev: bool) -> Result<Arc<dyn Kv>, CliError> {
    open_loaded(data_dir, master_key(options)?.as_ref(), dev)
}

/// Opens the store in `data_dir` with an already loaded master key (if any), announcing
/// whether it is encrypted.
fn open_loaded(
    data_dir: &Path,
    master: Option<&MasterKey>,
    dev: bool,
) -> Result<Arc<dyn Kv>, CliError> {
    let kv = open_store(data_dir, master, LocalKvOptions::default())
        .map_err(|e| store_error(data_dir, e))?;
    match master {
        Some(master) => tracing::info!(
            master_key = %master.fingerprint(),
            "encryption at rest is on (AES-256-GCM)"
        ),
        None if dev => tracing::info!("encryption at rest is off (development mode)"),
        None => tracing::warn!(
            "ENCRYPTION AT REST IS OFF: the data in {} is stored in plaintext. Give a master \
             key with --master-key-file, {MASTER_KEY_ENV} or --master-key-command to create \
             encrypted stores",
            data_dir.display()
        ),
    }
    Ok(Arc::new(kv))
}

/// A key failure as the CLI reports it: the operator has to fix the configuration.
pub fn key_error(error: &KeyError) -> CliError {
    CliError::Refused(error.to_string())
}

/// A store failure as the CLI reports it, with what to do about it.
pub fn store_error(data_dir: &Path, error: StoreError) -> CliError {
    match error {
        StoreError::NeedsKey { .. } => CliError::Refused(format!(
            "{error}: give its master key with --master-key-file PATH, the {MASTER_KEY_ENV} \
             environment variable or --master-key-command COMMAND"
        )),
        StoreError::Key(e) => key_error(&e),
        StoreError::NotEncrypted { .. } | StoreError::Inconsistent(_) => {
            CliError::Refused(error.to_string())
        }
        StoreError::Kv(e) => CliError::Failed(format!(
            "cannot open the store in {}: {e}",
            data_dir.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_key_means_no_encryption_and_two_keys_are_refused() {
        let none = StoreArgs {
            master_key_file: None,
            master_key_command: None,
        };
        assert!(choose_source(&none, false).unwrap().is_none());
        assert_eq!(
            choose_source(&none, true).unwrap(),
            Some(MasterKeySource::Env(MASTER_KEY_ENV.to_owned()))
        );
        let file = StoreArgs {
            master_key_file: Some(PathBuf::from("/k")),
            master_key_command: None,
        };
        assert!(matches!(
            choose_source(&file, true),
            Err(CliError::Refused(m)) if m.contains("more than once")
        ));
        let both = StoreArgs {
            master_key_file: Some(PathBuf::from("/k")),
            master_key_command: Some("echo".to_owned()),
        };
        assert!(matches!(
            choose_source(&both, false),
            Err(CliError::Refused(m)) if m.contains("more than once")
        ));
    }
}
