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
//! **Invariants:** no other file of the binary knows which backend stores the data; key
//! material is never logged or printed (only the key's public fingerprint); serving without
//! a master key outside `--dev` is always announced with a warning.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use testudo_storage::{Kv, LocalKvOptions};
use testudo_storage_redb::keys::{KeyError, MASTER_KEY_ENV, MasterKey, MasterKeySource};
use testudo_storage_redb::{StoreError, open_store};

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

/// Opens (creating if needed) the store kept in `data_dir`. `dev` is `serve --dev`.
pub fn open(data_dir: &Path, options: &StoreArgs, dev: bool) -> Result<Arc<dyn Kv>, CliError> {
    let master = master_key(options)?;
    let kv = open_store(data_dir, master.as_ref(), LocalKvOptions::default())
        .map_err(|e| store_error(data_dir, e))?;
    match &master {
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
