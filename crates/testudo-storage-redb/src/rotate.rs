//! Key rotation for an encrypted store.
//!
//! - [`rotate_master`]: every keyring entry unwrapped with the old master key and wrapped with
//!   the new one; the keyring is replaced atomically. No data is rewritten, and it works while
//!   a server runs (the server holds its unwrapped keys; it needs the new master key the next
//!   time it starts). The per-database keys in `dbkeys` are rewrapped the same way, first.
//! - [`rotate_data`]: the data file re-encrypted under a fresh data key, **offline** (the
//!   server must be stopped; the data file's lock says whether it is). The new key is added to
//!   the keyring first; the file is re-sealed block by block into `data.enc.rotate` (blocks
//!   never written stay unwritten), fsynced, and renamed over `data.enc`; only then is the old
//!   key removed from the keyring. A crash at any step leaves a store that opens: the data
//!   file's preamble names the key that sealed it, and the keyring holds that key until the
//!   rename is durable. The next rotation removes what an interrupted one left behind.
//!
//! - **Online** (the server runs; `testudo keys rotate-data` finds the data file locked):
//!   [`request_rotation`] adds the new key to the keyring with a `rotating A B` line (saved
//!   atomically) and returns; the server's maintenance thread notices the keyring change
//!   (it polls it every 2 s; [`StoreWatch`]), seals every new write under the new key at
//!   once and re-seals the rest in the background (`encrypted/rotation.rs`), then removes
//!   the old key and the line. [`rotation_status`] tells another process how far it got. A
//!   rotation in progress when the server stops resumes when it starts again; [`rotate_data`]
//!   with the server stopped finishes it (by opening the store and running the pass flat out).
//!
//! **Invariants:** at every instant the keyring holds the key named by the data file's
//! preamble; a block that fails authentication stops the rotation (damage is never re-sealed
//! under a new key as if it were data); plaintext only ever exists in memory, in wiped
//! buffers; keyring changes are serialized by `keyring.lock`.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use testudo_storage::KvError;
use zeroize::Zeroizing;

use crate::encrypted::layout::logical_len;
use crate::encrypted::layout::{
    BLOCK, BLOCK_U64, HEADER_SLOT, SEALED, block_offset, header_slot_offset, physical_len,
};
use crate::encrypted::{
    EncryptedFile, HeaderCopy, IntegrityFailure, JOURNAL_SUFFIX, KeyWatch, OpenFailure,
    new_preamble, private_file, read_journal_cursor,
};
use crate::keys::keyring::{STORE_LABEL, sync_dir};
use crate::keys::{DataKey, Keyring, MasterKey};
use crate::store::{
    ENCRYPTED_DATA_FILE, StoreError, encrypted_key_id, lock_data_file, open_encrypted_backend,
    open_failure,
};

/// Blocks re-encrypted per read and write.
const BATCH: u64 = 256;

/// What [`rotate_data`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationReport {
    /// The keyring id of the key that sealed the file before.
    pub old_key_id: u32,
    /// The keyring id of the key that seals it now.
    pub new_key_id: u32,
    /// Data blocks re-encrypted.
    pub blocks: u64,
    /// Data blocks never written (left unwritten).
    pub unwritten: u64,
    /// For an online rotation finished here: the longest the pass held reads and writes of
    /// the store back (microseconds).
    pub longest_stall_us: Option<u64>,
}

fn io_error(what: &str, path: &Path, e: impl std::fmt::Display) -> StoreError {
    KvError::Io(format!("{what} {}: {e}", path.display())).into()
}

/// An online rotation as another process sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationStatus {
    /// The keyring id of the key rotated away from.
    pub from: u32,
    /// The keyring id of the new key.
    pub to: u32,
    /// Blocks known to be under the new key (the pass's cursor as last recorded).
    pub done: u64,
    /// Blocks in the data file.
    pub total: u64,
}

/// Whether a process (the server) has the data file of `dir` open (`false` when there is no
/// encrypted data file).
pub fn data_file_in_use(dir: &Path) -> Result<bool, StoreError> {
    let path = dir.join(ENCRYPTED_DATA_FILE);
    if !path
        .try_exists()
        .map_err(|e| io_error("cannot inspect", &path, e))?
    {
        return Ok(false);
    }
    match lock_data_file(&path) {
        Ok(_lock) => Ok(false),
        Err(StoreError::Inconsistent(_)) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Asks the running server to rotate the data key of `dir` online (see the module docs):
/// adds a new key and the `rotating` line to the keyring. A rotation already requested is
/// returned as it is.
pub fn request_rotation(dir: &Path, master: &MasterKey) -> Result<RotationStatus, StoreError> {
    let _keyring_lock = KeyringLock::acquire(dir)?;
    let mut keyring = load_keyring(dir)?;
    if keyring.rotation().is_none() {
        let from = encrypted_key_id(&dir.join(ENCRYPTED_DATA_FILE))?;
        keyring.unwrap(from, master)?;
        // What an interrupted offline rotation left: its unused key.
        keyring.set_current(from)?;
        for id in keyring.ids_labelled(STORE_LABEL) {
            if id != from {
                keyring.remove(id)?;
            }
        }
        let to = keyring.insert(STORE_LABEL, master, &DataKey::generate()?)?;
        keyring.set_rotation(Some((from, to)))?;
        keyring.set_current(to)?;
        keyring.save(dir)?;
    }
    rotation_status(dir)?
        .ok_or_else(|| StoreError::Inconsistent("the rotation request was not recorded".to_owned()))
}

/// The online rotation of `dir` in progress, if any.
pub fn rotation_status(dir: &Path) -> Result<Option<RotationStatus>, StoreError> {
    let Some((from, to)) = load_keyring(dir)?.rotation() else {
        return Ok(None);
    };
    let data_path = dir.join(ENCRYPTED_DATA_FILE);
    let total = std::fs::metadata(&data_path)
        .map(|m| logical_len(m.len()) / BLOCK_U64)
        .map_err(|e| io_error("cannot inspect", &data_path, e))?;
    let done = match read_journal_cursor(&journal_path(dir)) {
        Some((f, t, cursor)) if (f, t) == (from, to) => cursor.min(total),
        _ => 0,
    };
    Ok(Some(RotationStatus {
        from,
        to,
        done,
        total,
    }))
}

fn journal_path(dir: &Path) -> PathBuf {
    dir.join(format!("{ENCRYPTED_DATA_FILE}{JOURNAL_SUFFIX}"))
}

/// Finishes, with the server stopped, an online rotation that was interrupted: opens the
/// store (which resumes it) and runs the pass flat out until the old key is gone.
fn finish_interrupted(
    dir: &Path,
    master: &MasterKey,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RotationReport, StoreError> {
    let Some(status) = rotation_status(dir)? else {
        return Err(StoreError::Inconsistent(
            "no rotation is in progress".to_owned(),
        ));
    };
    let (backend, handle) = open_encrypted_backend(dir, master, Some(1.0))?;
    let mut last = 0;
    let mut longest = 0;
    loop {
        if rotation_status(dir)?.is_none() {
            break;
        }
        if let Some(p) = handle.rotation_progress() {
            longest = longest.max(p.longest_hold_us);
            if let Some(error) = p.error {
                return Err(KvError::Corrupt(format!(
                    "the rotation cannot go on: {error}; the store keeps both keys"
                ))
                .into());
            }
            if p.done != last {
                last = p.done;
                progress(p.done, p.total);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(backend);
    Ok(RotationReport {
        old_key_id: status.from,
        new_key_id: status.to,
        blocks: status.total.saturating_sub(1),
        unwritten: 0,
        longest_stall_us: Some(longest),
    })
}

/// The maintenance thread's view of the keyring of a store: it notices a requested rotation
/// (by the keyring file's identity, size and time, cheap to poll) and drops the old key once
/// the rotation is done. Keeps the master key (its wrapping key only) to unwrap the new key.
pub(crate) struct StoreWatch {
    dir: PathBuf,
    master: MasterKey,
    seen: Option<(u64, u64, SystemTime)>,
}

impl StoreWatch {
    pub(crate) fn new(dir: &Path, master: MasterKey) -> StoreWatch {
        StoreWatch {
            dir: dir.to_path_buf(),
            master,
            seen: None,
        }
    }
}

impl KeyWatch for StoreWatch {
    fn requested(&mut self, current: u32) -> Option<(DataKey, u32)> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(Keyring::path(&self.dir)).ok()?;
        let stamp = (meta.ino(), meta.len(), meta.modified().ok()?);
        if self.seen == Some(stamp) {
            return None;
        }
        self.seen = Some(stamp);
        let keyring = match Keyring::load(&self.dir) {
            Ok(keyring) => keyring?,
            Err(error) => {
                tracing::warn!(%error, "cannot read the keyring");
                return None;
            }
        };
        let (from, to) = keyring.rotation()?;
        if from != current {
            tracing::warn!(
                from,
                to,
                current,
                "the keyring asks for a data-key rotation from a key the data file is not                  sealed under; ignored"
            );
            return None;
        }
        match keyring.unwrap(to, &self.master) {
            Ok(key) => Some((key, to)),
            Err(error) => {
                tracing::error!(
                    %error,
                    "cannot unwrap the new data key of the requested rotation (was the master                      key rotated since the server started? restart it with the new one)"
                );
                None
            }
        }
    }

    fn finished(&mut self, from: u32, to: u32) -> Result<(), String> {
        let _lock = KeyringLock::acquire(&self.dir).map_err(|e| e.to_string())?;
        let mut keyring = load_keyring(&self.dir).map_err(|e| e.to_string())?;
        if keyring.rotation() == Some((from, to)) {
            keyring.set_rotation(None).map_err(|e| e.to_string())?;
            keyring.set_current(to).map_err(|e| e.to_string())?;
            keyring.remove(from).map_err(|e| e.to_string())?;
            keyring.save(&self.dir).map_err(|e| e.to_string())?;
        }
        self.seen = None;
        Ok(())
    }
}

/// An exclusive lock on `<dir>/keyring.lock`, held while the keyring is rewritten (released
/// when the file is closed).
struct KeyringLock {
    _file: File,
}

impl KeyringLock {
    fn acquire(dir: &Path) -> Result<KeyringLock, StoreError> {
        let path = dir.join("keyring.lock");
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .map_err(|e| io_error("cannot open", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(KeyringLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Inconsistent(
                "another key operation is running on this store".to_owned(),
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(io_error("cannot lock", &path, e)),
        }
    }
}

fn load_keyring(dir: &Path) -> Result<Keyring, StoreError> {
    Keyring::load(dir)?.ok_or_else(|| {
        StoreError::Inconsistent(format!(
            "{} holds no keyring: the store is not encrypted",
            dir.display()
        ))
    })
}

/// Rewraps the keyring of `dir` under `new` (see the module docs).
pub fn rotate_master(dir: &Path, old: &MasterKey, new: &MasterKey) -> Result<(), StoreError> {
    let _lock = KeyringLock::acquire(dir)?;
    let keyring = load_keyring(dir)?;
    if new.fingerprint() == keyring.master_fingerprint() {
        return Err(StoreError::Inconsistent(format!(
            "the new master key is the current one (fingerprint {})",
            new.fingerprint()
        )));
    }
    // The per-database keys first: each of their lines names its own master key, so a
    // rotation interrupted between the two files is finished by running it again.
    crate::sealed::rewrap_db_keys(dir, old, new)?;
    keyring.rewrap(old, new)?.save(dir)?;
    Ok(())
}

/// Re-encrypts the data file of `dir` under a fresh data key; the server must be stopped.
/// `progress(done, total)` is called after each batch of blocks.
pub fn rotate_data(
    dir: &Path,
    master: &MasterKey,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<RotationReport, StoreError> {
    if load_keyring(dir)?.rotation().is_some() {
        // An online rotation the server did not finish: finish it here.
        drop(lock_data_file(&dir.join(ENCRYPTED_DATA_FILE))?);
        return finish_interrupted(dir, master, progress);
    }
    let _keyring_lock = KeyringLock::acquire(dir)?;
    let data_path = dir.join(ENCRYPTED_DATA_FILE);
    let _data_lock = lock_data_file(&data_path)?;
    let mut keyring = load_keyring(dir)?;
    if keyring.rotation().is_some() {
        return Err(StoreError::Inconsistent(
            "an online data-key rotation was requested meanwhile".to_owned(),
        ));
    }
    let old_key_id = encrypted_key_id(&data_path)?;
    let old_key = keyring.unwrap(old_key_id, master)?;

    // What an interrupted rotation left: its half-written file and its unused key; and what
    // a finished online one may have left, its journal (it names the file being replaced).
    for leftover in [rotating_path(dir), journal_path(dir)] {
        match std::fs::remove_file(&leftover) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("cannot remove", &leftover, e)),
        }
    }
    let rotating = rotating_path(dir);
    for id in keyring.ids_labelled(STORE_LABEL) {
        if id != old_key_id {
            keyring.remove(id)?;
        }
    }
    keyring.set_current(old_key_id)?;

    let new_key = DataKey::generate()?;
    let new_key_id = keyring.insert(STORE_LABEL, master, &new_key)?;
    keyring.save(dir)?;

    let source = EncryptedFile::open(&data_path, &old_key)
        .map_err(|e| io_error("cannot read", &data_path, e))?
        .ok_or_else(|| open_failure(dir, OpenFailure::WrongKey))?;
    let (blocks, unwritten) = reseal(&source, &rotating, &new_key, new_key_id, progress)?;
    drop(source);
    std::fs::rename(&rotating, &data_path)
        .map_err(|e| io_error("cannot replace", &data_path, e))?;
    sync_dir(dir).map_err(|e| io_error("cannot sync", dir, e))?;

    keyring.set_current(new_key_id)?;
    keyring.remove(old_key_id)?;
    keyring.save(dir)?;
    Ok(RotationReport {
        old_key_id,
        new_key_id,
        blocks,
        unwritten,
        longest_stall_us: None,
    })
}

fn rotating_path(dir: &Path) -> PathBuf {
    dir.join(format!("{ENCRYPTED_DATA_FILE}.rotate"))
}

/// Writes `target`: `source` re-sealed under `key`. Returns the data blocks re-sealed and the
/// data blocks left unwritten.
fn reseal(
    source: &EncryptedFile,
    target_path: &Path,
    key: &DataKey,
    key_id: u32,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(u64, u64), StoreError> {
    let io = |e: std::io::Error| io_error("cannot write", target_path, e);
    let cipher = crate::encrypted::BlockCipher::new(key, new_preamble(key_id).map_err(io)?);
    let target = private_file(target_path).map_err(io)?;
    let write_at = |bytes: &[u8], offset: u64| {
        std::os::unix::fs::FileExt::write_all_at(&target, bytes, offset).map_err(io)
    };
    write_at(&cipher.seal_preamble().map_err(io)?, 0)?;
    let total = source.blocks();
    target
        .set_len(physical_len(total * BLOCK_U64).map_err(io)?)
        .map_err(io)?;
    if total == 0 {
        target.sync_all().map_err(io)?;
        return Ok((0, 0));
    }

    for (slot, copy) in source
        .header_copies()
        .map_err(|e| io_error("cannot read", target_path, e))?
    {
        // A copy that does not authenticate is left unwritten: it was not in use.
        if let HeaderCopy::Valid { seq, plain } = copy {
            let mut sealed = vec![0u8; HEADER_SLOT];
            cipher
                .seal_header(slot, seq, &plain, &mut sealed)
                .map_err(io)?;
            write_at(&sealed, header_slot_offset(slot))?;
        }
    }

    let (mut done, mut unwritten) = (1u64, 0u64);
    let mut first = 1u64;
    while first < total {
        let count = BATCH.min(total - first);
        let n = usize::try_from(count).unwrap_or(usize::MAX);
        let mut sealed = vec![0u8; n * SEALED];
        source
            .read_sealed(first, &mut sealed)
            .map_err(|e| io_error("cannot read", target_path, e))?;
        let mut plain = Zeroizing::new(vec![0u8; n * BLOCK]);
        let mut written = Vec::with_capacity(n);
        for (i, (block, out)) in (first..).zip(
            sealed
                .chunks_exact_mut(SEALED)
                .zip(plain.chunks_exact_mut(BLOCK)),
        ) {
            match source.cipher().open_block(i, block) {
                Ok(opened) => {
                    out.copy_from_slice(opened);
                    written.push(true);
                }
                Err(error) if error.failure == IntegrityFailure::Unwritten => {
                    unwritten += 1;
                    written.push(false);
                }
                Err(error) => {
                    return Err(KvError::Corrupt(format!(
                        "{error}; the rotation stopped before changing anything (the store \
                         keeps its old key)"
                    ))
                    .into());
                }
            }
        }
        // Runs of written blocks, re-sealed and written together.
        let mut run: Option<u64> = None;
        for (i, &is_written) in (first..).zip(&written) {
            match (is_written, run) {
                (true, None) => run = Some(i),
                (false, Some(start)) => {
                    write_run(&cipher, &plain, first, start, i, &write_at)?;
                    run = None;
                }
                _ => {}
            }
        }
        if let Some(start) = run {
            write_run(&cipher, &plain, first, start, first + count, &write_at)?;
        }
        first += count;
        done += count;
        progress(done, total);
    }
    target.sync_all().map_err(io)?;
    Ok((total - 1 - unwritten, unwritten))
}

type WriteAt<'a> = dyn Fn(&[u8], u64) -> Result<(), StoreError> + 'a;

/// Seals blocks `start..end` of the batch starting at `first` and writes them.
fn write_run(
    cipher: &crate::encrypted::BlockCipher,
    plain: &[u8],
    first: u64,
    start: u64,
    end: u64,
    write_at: &WriteAt<'_>,
) -> Result<(), StoreError> {
    let from = usize::try_from(start - first).unwrap_or(usize::MAX) * BLOCK;
    let to = usize::try_from(end - first).unwrap_or(usize::MAX) * BLOCK;
    let plain = plain
        .get(from..to)
        .ok_or_else(|| StoreError::Inconsistent("re-encryption batch out of range".to_owned()))?;
    let mut sealed = vec![0u8; plain.len() / BLOCK * SEALED];
    cipher
        .seal_blocks(start, plain, &mut sealed)
        .map_err(|e| StoreError::Kv(KvError::Io(e.to_string())))?;
    let offset = block_offset(start).map_err(|e| StoreError::Kv(KvError::Io(e.to_string())))?;
    write_at(&sealed, offset)
}
