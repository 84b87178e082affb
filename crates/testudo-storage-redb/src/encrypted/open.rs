//! Creating an encrypted file, opening redb over it (with the fallback to the previous header
//! copy), and [`EncryptedFile`], block-level access for offline tools (verification,
//! re-encryption, tests).
//!
//! **Invariants:** a new file appears whole or not at all (written beside, fsynced, renamed);
//! a file whose preamble the data key does not authenticate is refused before redb sees it; a
//! failed open leaves the file byte for byte as it was, except that a rotation journal is
//! replayed first (it only restores blocks that fail authentication under every key, see
//! `rotation.rs`); the retry from the previous header copy happens only after an integrity
//! failure, once, and is logged.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::backends::FileBackend;
use redb::{Database, StorageBackend};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::cipher::{BlockCipher, HeaderCopy};
use super::layout::{
    BLOCK, HEADER_SLOT, PREAMBLE, PREAMBLE_U64, Preamble, PreambleError, SEALED, block_offset,
    header_slot_offset, logical_len,
};
use super::rotation::{JOURNAL_SUFFIX, recover};
use super::{
    Ciphers, EncryptedBackend, EncryptedHandle, HeaderChoice, IntegrityError, IntegrityFailure,
};
use crate::keys::DataKey;
use crate::keys::keyring::sync_dir;

/// What the start of a data file says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreambleStatus {
    /// An encrypted file sealed with the data key of this keyring id.
    Encrypted { key_id: u32 },
    /// Not an encrypted Testudo file (e.g. a plaintext redb file).
    NotEncrypted,
    /// An encrypted file this build cannot read.
    Unsupported(String),
}

/// Reads the preamble of the file at `path` (without checking its tag: that needs the key).
pub(crate) fn read_preamble(path: &Path) -> io::Result<PreambleStatus> {
    let file = File::open(path)?;
    let mut bytes = vec![0u8; PREAMBLE];
    let read = std::os::unix::fs::FileExt::read_at(&file, &mut bytes, 0)?;
    bytes.truncate(read);
    Ok(match Preamble::parse(&bytes) {
        Ok(preamble) => PreambleStatus::Encrypted {
            key_id: preamble.key_id,
        },
        Err(PreambleError::NotEncrypted) => PreambleStatus::NotEncrypted,
        Err(PreambleError::Unsupported(what)) => PreambleStatus::Unsupported(what),
    })
}

/// A fresh random file id.
pub(crate) fn new_preamble(key_id: u32) -> io::Result<Preamble> {
    let mut file_id = [0u8; 16];
    SystemRandom::new()
        .fill(&mut file_id)
        .map_err(|_| io::Error::other("the system random number generator failed"))?;
    Ok(Preamble { key_id, file_id })
}

/// Creates the empty encrypted file `path` for data key `key` (keyring id `key_id`): its
/// preamble is written beside it, fsynced and renamed into place.
pub(crate) fn create_file(path: &Path, key: &DataKey, key_id: u32) -> io::Result<()> {
    let cipher = BlockCipher::new(key, new_preamble(key_id)?);
    let preamble = cipher.seal_preamble()?;
    let tmp = path.with_extension("new");
    write_new_file(&tmp, &preamble)?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn write_new_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let file = private_file(path)?;
    std::os::unix::fs::FileExt::write_all_at(&file, bytes, 0)?;
    file.sync_all()
}

/// Creates (truncating) `path` for reading and writing, mode 0600.
pub(crate) fn private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// The data keys an open may need, each with its keyring id.
#[derive(Clone, Copy)]
pub(crate) struct KeySet<'a> {
    /// The key new writes are sealed under (during a rotation, the new key).
    pub(crate) current: (u32, &'a DataKey),
    /// During an online rotation: the key rotated away from.
    pub(crate) previous: Option<(u32, &'a DataKey)>,
}

impl<'a> KeySet<'a> {
    fn all(&self) -> Vec<(u32, &'a DataKey)> {
        std::iter::once(self.current).chain(self.previous).collect()
    }

    fn ciphers(&self, file_id: [u8; 16], cursor: u64) -> Ciphers {
        let cipher = |(key_id, key): (u32, &DataKey)| {
            Arc::new(BlockCipher::new(key, Preamble { key_id, file_id }))
        };
        Ciphers {
            seal: cipher(self.current),
            old: self.previous.map(cipher),
            cursor,
        }
    }
}

/// The rotation journal beside the data file at `path`.
pub(crate) fn journal_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(JOURNAL_SUFFIX);
    PathBuf::from(name)
}

/// Opens the encrypted file at `path` as a redb database, with its rotation journal.
pub(crate) fn open_database(
    path: &Path,
    keys: &KeySet<'_>,
    builder: &redb::Builder,
) -> Result<(Database, EncryptedHandle), OpenFailure> {
    let journal = journal_path(path);
    open_database_with(
        &|| {
            let file = OpenOptions::new().read(true).write(true).open(path)?;
            let backend = FileBackend::new(file).map_err(io::Error::other)?;
            Ok(Box::new(backend) as Box<dyn StorageBackend>)
        },
        Some(&|| {
            let mut options = OpenOptions::new();
            options.read(true).write(true).create(true).truncate(false);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let backend = FileBackend::new(options.open(&journal)?).map_err(io::Error::other)?;
            Ok(Box::new(backend) as Box<dyn StorageBackend>)
        }),
        keys,
        builder,
    )
}

/// Why an encrypted open failed.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    /// The file's preamble is not sealed by this data key (or is damaged).
    WrongKey,
    /// Reading the file failed.
    Io(io::Error),
    /// redb refused the file (with an integrity error inside, when that was the cause).
    Redb(redb::DatabaseError),
    /// redb panicked on the file's contents.
    Panicked,
}

impl From<io::Error> for OpenFailure {
    fn from(error: io::Error) -> OpenFailure {
        OpenFailure::Io(error)
    }
}

/// Opens redb over the encrypted storage `make_physical` returns, with one key and no
/// journal (no online rotation).
#[cfg(test)]
pub(crate) fn open_database_on(
    make_physical: &dyn Fn() -> io::Result<Box<dyn StorageBackend>>,
    key: &DataKey,
    builder: &redb::Builder,
) -> Result<(Database, EncryptedHandle), OpenFailure> {
    let physical = make_physical()?;
    let mut bytes = vec![0u8; PREAMBLE];
    if physical.len()? < PREAMBLE_U64 {
        return Err(OpenFailure::WrongKey);
    }
    physical.read(0, &mut bytes)?;
    let key_id = Preamble::parse(&bytes)
        .map_err(|_| OpenFailure::WrongKey)?
        .key_id;
    let keys = KeySet {
        current: (key_id, key),
        previous: None,
    };
    open_database_with(make_physical, None, &keys, builder)
}

/// A constructor of one storage (called once per attempt: redb closes the storage of a
/// failed attempt).
pub(crate) type MakeStorage<'a> = &'a dyn Fn() -> io::Result<Box<dyn StorageBackend>>;

/// Opens redb over the encrypted storage `make_physical` returns, with `keys`; the journal
/// `make_journal` returns (if any) is replayed first and kept for online rotation.
pub(crate) fn open_database_with(
    make_physical: MakeStorage<'_>,
    make_journal: Option<MakeStorage<'_>>,
    keys: &KeySet<'_>,
    builder: &redb::Builder,
) -> Result<(Database, EncryptedHandle), OpenFailure> {
    let mut cursor = 0;
    if let Some(make_journal) = make_journal {
        let physical = make_physical()?;
        let journal = make_journal()?;
        let recorded = recover(physical.as_ref(), journal.as_ref(), &keys.all())?;
        if let (Some((from, to, at)), Some((previous, _))) = (recorded, keys.previous)
            && from == previous
            && to == keys.current.0
        {
            cursor = at;
        }
        if keys.previous.is_none() && journal.len()? > 0 {
            // What a finished rotation left (it is cleared after the keyring no longer
            // needs it; a crash can come in between).
            journal.set_len(0)?;
        }
        physical.close()?;
        journal.close()?;
    }
    let mut first_failure = None;
    for choice in [HeaderChoice::Newest, HeaderChoice::Previous] {
        let physical = make_physical()?;
        let preamble = verified_preamble(physical.as_ref(), keys)?;
        let journal = make_journal.map(|make| make()).transpose()?;
        let ciphers = keys.ciphers(preamble.file_id, cursor);
        let Some((backend, handle)) = EncryptedBackend::open(physical, journal, ciphers, choice)?
        else {
            break;
        };
        let opened = catch_unwind(AssertUnwindSafe(|| builder.create_with_backend(backend)));
        match opened {
            Ok(Ok(db)) => {
                handle.finish_open()?;
                if let (HeaderChoice::Previous, Some(block)) =
                    (choice, first_failure_block(&first_failure))
                {
                    tracing::warn!(
                        block,
                        "the newest commit of the encrypted store did not reach the disk whole \
                         (a crash while it was written); opened at the commit before it"
                    );
                }
                return Ok((db, handle));
            }
            Ok(Err(error)) => {
                // Only a crash can leave a newest commit that is not durable; after a clean
                // close, a bad block is damage, and falling back would hide a durable commit.
                let retry = choice == HeaderChoice::Newest
                    && handle.first_failure().is_some()
                    && handle.started_unclean();
                if first_failure.is_none() {
                    first_failure = Some((error, handle.first_failure()));
                }
                if !retry {
                    break;
                }
            }
            Err(_) => return Err(OpenFailure::Panicked),
        }
    }
    match first_failure {
        Some((error, _)) => Err(OpenFailure::Redb(error)),
        // Only reachable if even the newest attempt found no header choice, which it always does.
        None => Err(OpenFailure::Io(io::Error::other("no header copy to open"))),
    }
}

fn first_failure_block(failure: &Option<(redb::DatabaseError, Option<u64>)>) -> Option<u64> {
    failure.as_ref().and_then(|(_, block)| *block)
}

/// The preamble of `physical`, checked against the key of `keys` it names.
fn verified_preamble(
    physical: &dyn StorageBackend,
    keys: &KeySet<'_>,
) -> Result<Preamble, OpenFailure> {
    let mut bytes = vec![0u8; PREAMBLE];
    if physical.len()? < PREAMBLE_U64 {
        return Err(OpenFailure::WrongKey);
    }
    physical.read(0, &mut bytes)?;
    let preamble = Preamble::parse(&bytes).map_err(|_| OpenFailure::WrongKey)?;
    let key = keys
        .all()
        .into_iter()
        .find(|(id, _)| *id == preamble.key_id)
        .map(|(_, key)| key)
        .ok_or(OpenFailure::WrongKey)?;
    if !BlockCipher::new(key, preamble).verify_preamble(&bytes) {
        return Err(OpenFailure::WrongKey);
    }
    Ok(preamble)
}

/// Block-level, read-only access to an encrypted file: for verification, re-encryption and
/// tests. Never used while redb has the file open for writing.
pub struct EncryptedFile {
    file: File,
    cipher: BlockCipher,
    /// During an online rotation: the other key (blocks may be under either).
    other: Option<BlockCipher>,
    blocks: u64,
}

impl std::fmt::Debug for EncryptedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptedFile")
            .field("blocks", &self.blocks)
            .finish_non_exhaustive()
    }
}

impl EncryptedFile {
    /// Opens `path` read-only with its data key; `None` if the key does not authenticate the
    /// file's preamble.
    pub(crate) fn open(path: &Path, key: &DataKey) -> io::Result<Option<EncryptedFile>> {
        EncryptedFile::open_during_rotation(path, key, None)
    }

    /// Like [`EncryptedFile::open`]; `other` is the second key of an online rotation in
    /// progress (with its keyring id), under which blocks may be sealed too.
    pub(crate) fn open_during_rotation(
        path: &Path,
        key: &DataKey,
        other: Option<(u32, &DataKey)>,
    ) -> io::Result<Option<EncryptedFile>> {
        let file = File::open(path)?;
        let mut bytes = vec![0u8; PREAMBLE];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut bytes, 0)?;
        let Ok(preamble) = Preamble::parse(&bytes) else {
            return Ok(None);
        };
        let cipher = BlockCipher::new(key, preamble);
        if !cipher.verify_preamble(&bytes) {
            return Ok(None);
        }
        let other = other.map(|(key_id, key)| {
            BlockCipher::new(
                key,
                Preamble {
                    key_id,
                    file_id: preamble.file_id,
                },
            )
        });
        let blocks = logical_len(file.metadata()?.len()) / BLOCK as u64;
        Ok(Some(EncryptedFile {
            file,
            cipher,
            other,
            blocks,
        }))
    }

    /// The number of logical blocks (block 0 is redb's header).
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Where data block `index` (≥ 1) is sealed in the file.
    pub fn physical_range(&self, index: u64) -> io::Result<Range<u64>> {
        let start = block_offset(index)?;
        Ok(start..start + SEALED as u64)
    }

    /// The plaintext of block `index`: for block 0, the newest header copy that
    /// authenticates.
    pub fn read_block(&self, index: u64) -> io::Result<Result<Zeroizing<Vec<u8>>, IntegrityError>> {
        if index == 0 {
            let newest = self
                .header_copies()?
                .into_iter()
                .filter_map(|(_, copy)| match copy {
                    HeaderCopy::Valid { seq, plain } => Some((seq, plain)),
                    _ => None,
                })
                .max_by_key(|(seq, _)| *seq);
            return Ok(match newest {
                Some((_, plain)) => Ok(Zeroizing::new(plain.to_vec())),
                None => Err(IntegrityError::new(0, IntegrityFailure::Tampered)),
            });
        }
        let mut sealed = Zeroizing::new(vec![0u8; SEALED]);
        std::os::unix::fs::FileExt::read_exact_at(&self.file, &mut sealed, block_offset(index)?)?;
        let copy = Zeroizing::new(sealed.to_vec());
        let first = self
            .cipher
            .open_block(index, &mut sealed)
            .map(|plain| Zeroizing::new(plain.to_vec()));
        match (&first, &self.other) {
            (Err(e), Some(other)) if e.failure == IntegrityFailure::Tampered => {
                sealed.copy_from_slice(&copy);
                Ok(other
                    .open_block(index, &mut sealed)
                    .map(|plain| Zeroizing::new(plain.to_vec())))
            }
            _ => Ok(first),
        }
    }

    /// Both header copies as they are on disk.
    pub(crate) fn header_copies(&self) -> io::Result<Vec<(u8, HeaderCopy)>> {
        let mut copies = Vec::new();
        if self.blocks == 0 {
            return Ok(copies);
        }
        for slot in 0..2u8 {
            let mut bytes = vec![0u8; HEADER_SLOT];
            std::os::unix::fs::FileExt::read_exact_at(
                &self.file,
                &mut bytes,
                header_slot_offset(slot),
            )?;
            let mut copy = self.cipher.open_header(slot, &mut bytes.clone());
            if let (HeaderCopy::Invalid, Some(other)) = (&copy, &self.other) {
                copy = other.open_header(slot, &mut bytes);
            }
            copies.push((slot, copy));
        }
        Ok(copies)
    }

    /// The raw sealed bytes of data blocks `first..first + count` (for re-encryption).
    pub(crate) fn read_sealed(&self, first: u64, out: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, out, block_offset(first)?)
    }

    pub(crate) fn cipher(&self) -> &BlockCipher {
        &self.cipher
    }
}
