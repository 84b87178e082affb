//! A store directory: which files make a store, whether it is encrypted, and opening it with
//! or without a master key.
//!
//! A plaintext store is `data.redb`. An encrypted store is `data.enc` (see `encrypted.rs`)
//! plus `keyring` (see `keys/keyring.rs`). The data file's preamble names the keyring entry
//! whose key sealed it; that entry is unwrapped with the master key before anything else.
//!
//! An encrypted store opened here also gets a maintenance thread (`encrypted/rotation.rs`)
//! that watches the keyring for an online data-key rotation (`rotate.rs`) and runs it; the
//! master key is kept in memory for that (to unwrap the new data key).
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
    EncryptedFile, EncryptedHandle, IntegrityFailure, KeySet, OpenFailure, PreambleStatus,
    read_preamble,
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
            open_encrypted_backend(dir, master, None)?.0
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

/// The environment variable that sets the fraction of the time an online rotation's pass
/// may work (default 0.25; 1 runs it flat out).
pub const ROTATION_DUTY_ENV: &str = "TESTUDO_ROTATION_DUTY";

/// The keys of an online rotation in progress: the old key and the new one, with their ids.
pub(crate) struct RotationKeys {
    pub(crate) from: (u32, DataKey),
    pub(crate) to: (u32, DataKey),
}

/// The keys of the rotation `keyring` records, if any; `key_id` is the one the data file's
/// preamble names, which must be one of them.
pub(crate) fn rotation_keys(
    keyring: &Keyring,
    key_id: u32,
    master: &MasterKey,
) -> Result<Option<RotationKeys>, StoreError> {
    let Some((from, to)) = keyring.rotation() else {
        return Ok(None);
    };
    if key_id != from && key_id != to {
        return Err(StoreError::Inconsistent(format!(
            "the keyring records a data-key rotation from key {from} to key {to}, but the              data file names key {key_id}"
        )));
    }
    Ok(Some(RotationKeys {
        from: (from, keyring.unwrap(from, master)?),
        to: (to, keyring.unwrap(to, master)?),
    }))
}

/// Opens the encrypted store of `dir` and starts its maintenance thread, whose rotation pass
/// works `duty` of the time (default: [`ROTATION_DUTY_ENV`], else 0.25).
pub(crate) fn open_encrypted_backend(
    dir: &Path,
    master: &MasterKey,
    duty: Option<f64>,
) -> Result<(RedbBackend, EncryptedHandle), StoreError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| KvError::Io(format!("cannot create {}: {e}", dir.display())))?;
    let (key, key_id, keyring) = data_key(dir, master)?;
    let path = dir.join(ENCRYPTED_DATA_FILE);
    if !exists(&path)? {
        crate::encrypted::create_file(&path, &key, key_id)
            .map_err(|e| KvError::Io(format!("cannot create {}: {e}", path.display())))?;
    }
    let rotation = rotation_keys(&keyring, key_id, master)?;
    let keys = match &rotation {
        Some(r) => KeySet {
            current: (r.to.0, &r.to.1),
            previous: Some((r.from.0, &r.from.1)),
        },
        None => KeySet {
            current: (key_id, &key),
            previous: None,
        },
    };
    let (db, handle) = crate::encrypted::open_database(&path, &keys, &redb::Database::builder())
        .map_err(|failure| open_failure(dir, failure))?;
    if let Some((from, to)) = keyring.rotation() {
        tracing::info!(
            from,
            to,
            "resuming the data-key rotation that was in progress"
        );
    }
    let duty = duty.or_else(|| {
        std::env::var(ROTATION_DUTY_ENV)
            .ok()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d > 0.0)
    });
    if let Some(duty) = duty {
        handle.set_rotation_duty(duty);
    }
    let watch = crate::rotate::StoreWatch::new(dir, master.duplicate());
    handle
        .start_maintenance(Box::new(watch))
        .map_err(|e| KvError::Io(format!("cannot start the key maintenance thread: {e}")))?;
    Ok((RedbBackend::from_database(db, path)?, handle))
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
    let key_id = encrypted_key_id(&path)?;
    let key = keyring.unwrap(key_id, master)?;
    // During an online rotation blocks are under either key.
    let other = match keyring.rotation() {
        Some((from, to)) if key_id == from || key_id == to => {
            let id = if key_id == from { to } else { from };
            Some((id, keyring.unwrap(id, master)?))
        }
        _ => None,
    };
    EncryptedFile::open_during_rotation(&path, &key, other.as_ref().map(|(id, k)| (*id, k)))
        .map_err(|e| KvError::Io(format!("cannot read {}: {e}", path.display())))?
        .ok_or_else(|| open_failure(dir, OpenFailure::WrongKey))
}
