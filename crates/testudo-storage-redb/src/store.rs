//! A store directory: which files make a store, whether it is encrypted, and opening it with
//! or without a master key.
//!
//! A plaintext store is `data.redb`. An encrypted store is `data.enc` (see `encrypted.rs`)
//! plus `keyring` (see `keys/keyring.rs`). The data file's preamble names the keyring entry
//! whose key sealed it; that entry is unwrapped with the master key before anything else.
//!
//! **Invariants:** an encrypted store is never opened without its master key and a plaintext
//! store never with one (there is no silent conversion either way); a wrong master key is
//! refused before any file is created or written; a new encrypted store gets its keyring
//! (saved atomically) before its data file, so a data file never exists without the key
//! that sealed it.

use std::fs::OpenOptions;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::StorageBackend;
use redb::backends::FileBackend;

use testudo_storage::{KvError, LocalKv, LocalKvOptions};

use crate::backend::{DATA_FILE, RedbBackend};
use crate::encrypted::{
    EncryptedFile, IntegrityFailure, OpenFailure, PreambleStatus, read_preamble,
};
use crate::error::kv_error;
use crate::keys::{DataKey, KeyError, Keyring, MasterKey};

/// The encrypted data file inside the store's directory.
pub const ENCRYPTED_DATA_FILE: &str = "data.enc";

/// What a store failed on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store is encrypted and no master key was given.
    #[error("the store in {dir} is encrypted, and no master key was given")]
    NeedsKey { dir: String },
    /// A master key was given for a plaintext store.
    #[error(
        "the store in {dir} is not encrypted, but a master key was given; a store is never \
         converted silently: start without a master key, or start with an empty data directory \
         to create an encrypted store (and copy the data in through a backup)"
    )]
    NotEncrypted { dir: String },
    /// The directory's files contradict each other.
    #[error("{0}")]
    Inconsistent(String),
}

/// What a directory holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// No store yet.
    Empty,
    Plaintext,
    Encrypted,
}

fn exists(path: &Path) -> Result<bool, StoreError> {
    path.try_exists()
        .map_err(|e| KvError::Io(format!("cannot inspect {}: {e}", path.display())).into())
}

/// Which kind of store `dir` holds.
pub fn store_kind(dir: &Path) -> Result<StoreKind, StoreError> {
    let plaintext = exists(&dir.join(DATA_FILE))?;
    let encrypted = exists(&dir.join(ENCRYPTED_DATA_FILE))? || exists(&Keyring::path(dir))?;
    match (plaintext, encrypted) {
        (false, false) => Ok(StoreKind::Empty),
        (true, false) => Ok(StoreKind::Plaintext),
        (false, true) => Ok(StoreKind::Encrypted),
        (true, true) => Err(StoreError::Inconsistent(format!(
            "{} holds both a plaintext store ({DATA_FILE}) and an encrypted one \
             ({ENCRYPTED_DATA_FILE}, keyring); remove the one that is not in use",
            dir.display()
        ))),
    }
}

/// Opens (or creates) the store in `dir`: encrypted when `master` is given, plaintext
/// otherwise; refuses a store of the other kind.
pub fn open_store(
    dir: &Path,
    master: Option<&MasterKey>,
    options: LocalKvOptions,
) -> Result<LocalKv<RedbBackend>, StoreError> {
    let backend = match (store_kind(dir)?, master) {
        (StoreKind::Empty | StoreKind::Plaintext, None) => RedbBackend::open(dir)?,
        (StoreKind::Plaintext, Some(_)) => {
            return Err(StoreError::NotEncrypted {
                dir: dir.display().to_string(),
            });
        }
        (StoreKind::Encrypted, None) => {
            return Err(StoreError::NeedsKey {
                dir: dir.display().to_string(),
            });
        }
        (StoreKind::Empty | StoreKind::Encrypted, Some(master)) => {
            open_encrypted_backend(dir, master)?
        }
    };
    Ok(LocalKv::open(backend, options)?)
}

/// The data key that sealed `dir`'s data file, its keyring id, and the keyring; creates the
/// keyring (and the data key) for a new store.
fn data_key(dir: &Path, master: &MasterKey) -> Result<(DataKey, u32, Keyring), StoreError> {
    let data_path = dir.join(ENCRYPTED_DATA_FILE);
    let keyring = match Keyring::load(dir)? {
        Some(keyring) => keyring,
        None if exists(&data_path)? => {
            return Err(StoreError::Inconsistent(format!(
                "{} exists but its keyring ({}) is missing: without it the data cannot be \
                 decrypted",
                data_path.display(),
                Keyring::path(dir).display()
            )));
        }
        None => {
            let keyring = Keyring::new(master, &DataKey::generate()?)?;
            keyring.save(dir)?;
            keyring
        }
    };
    let key_id = match exists(&data_path)? {
        true => encrypted_key_id(&data_path)?,
        false => keyring.current(),
    };
    let key = keyring.unwrap(key_id, master)?;
    Ok((key, key_id, keyring))
}

/// The keyring id named by the data file's preamble.
pub(crate) fn encrypted_key_id(data_path: &Path) -> Result<u32, StoreError> {
    let status = read_preamble(data_path)
        .map_err(|e| KvError::Io(format!("cannot read {}: {e}", data_path.display())))?;
    match status {
        PreambleStatus::Encrypted { key_id } => Ok(key_id),
        PreambleStatus::NotEncrypted => Err(StoreError::Inconsistent(format!(
            "{} is not an encrypted Testudo data file",
            data_path.display()
        ))),
        PreambleStatus::Unsupported(what) => {
            Err(KvError::Corrupt(format!("{} uses {what}", data_path.display())).into())
        }
    }
}

fn open_encrypted_backend(dir: &Path, master: &MasterKey) -> Result<RedbBackend, StoreError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| KvError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let (key, key_id, _) = data_key(dir, master)?;
    let path = dir.join(ENCRYPTED_DATA_FILE);
    if !exists(&path)? {
        crate::encrypted::create_file(&path, &key, key_id)
            .map_err(|e| KvError::Io(format!("cannot create {}: {e}", path.display())))?;
    }
    let (db, _) = crate::encrypted::open_database(&path, &key, &redb::Database::builder())
        .map_err(|failure| open_failure(dir, failure))?;
    Ok(RedbBackend::from_database(db, path)?)
}

/// Maps a failed encrypted open to the store's error.
pub(crate) fn open_failure(dir: &Path, failure: OpenFailure) -> StoreError {
    let path = dir.join(ENCRYPTED_DATA_FILE);
    match failure {
        OpenFailure::WrongKey => StoreError::Inconsistent(format!(
            "the keyring's data key does not authenticate {} (is the keyring from another \
             store, or the file damaged?)",
            path.display()
        )),
        OpenFailure::Io(e) => kv_error(redb::Error::Io(e)).into(),
        OpenFailure::Redb(e) => kv_error(e).into(),
        OpenFailure::Panicked => {
            KvError::Corrupt(format!("{} cannot be opened", path.display())).into()
        }
    }
}

/// Takes the lock a server holds on the data file while it runs, so that no server runs
/// during an offline rotation.
pub(crate) fn lock_data_file(path: &Path) -> Result<FileBackend, StoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| KvError::Io(format!("cannot open {}: {e}", path.display())))?;
    let backend = FileBackend::new(file)
        .map_err(|e| KvError::Io(format!("cannot open {}: {e}", path.display())))?;
    match backend.try_lock_range(Bound::Included(0), Bound::Unbounded) {
        Ok(true) => Ok(backend),
        Ok(false) => Err(StoreError::Inconsistent(format!(
            "{} is in use (is the server running?); stop the server first",
            path.display()
        ))),
        Err(e) => Err(KvError::Io(format!("cannot lock {}: {e}", path.display())).into()),
    }
}

/// What [`verify_store`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Logical blocks in the file (block 0 is redb's header).
    pub blocks: u64,
    /// Blocks never written.
    pub unwritten: u64,
    /// Blocks that fail authentication (the first [`MAX_REPORTED`] of them).
    pub failed: Vec<u64>,
    /// How many blocks fail authentication.
    pub failed_count: u64,
}

/// The most failing blocks [`VerifyReport::failed`] lists.
pub const MAX_REPORTED: usize = 100;

/// Checks that every block of the encrypted store in `dir` authenticates. Offline: refuses a
/// store a server has open.
pub fn verify_store(dir: &Path, master: &MasterKey) -> Result<VerifyReport, StoreError> {
    let _lock = lock_data_file(&dir.join(ENCRYPTED_DATA_FILE))?;
    let file = open_encrypted_file(dir, master)?;
    let mut report = VerifyReport {
        blocks: file.blocks(),
        unwritten: 0,
        failed: Vec::new(),
        failed_count: 0,
    };
    for index in 0..file.blocks() {
        let read = file
            .read_block(index)
            .map_err(|e| KvError::Io(format!("cannot read block {index}: {e}")))?;
        match read {
            Ok(_) => {}
            Err(e) if e.failure == IntegrityFailure::Unwritten => report.unwritten += 1,
            Err(_) => {
                report.failed_count += 1;
                if report.failed.len() < MAX_REPORTED {
                    report.failed.push(index);
                }
            }
        }
    }
    Ok(report)
}

/// Opens the data file of the encrypted store in `dir` for block-level reading (verification,
/// tests). Must not be used while a server has the store open.
pub fn open_encrypted_file(dir: &Path, master: &MasterKey) -> Result<EncryptedFile, StoreError> {
    let path: PathBuf = dir.join(ENCRYPTED_DATA_FILE);
    let keyring = Keyring::load(dir)?.ok_or_else(|| StoreError::NeedsKey {
        dir: dir.display().to_string(),
    })?;
    let key = keyring.unwrap(encrypted_key_id(&path)?, master)?;
    EncryptedFile::open(&path, &key)
        .map_err(|e| KvError::Io(format!("cannot read {}: {e}", path.display())))?
        .ok_or_else(|| open_failure(dir, OpenFailure::WrongKey))
}
