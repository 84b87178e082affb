//! [`EncryptedBackend`]: a redb [`StorageBackend`] that seals every byte redb writes with
//! AES-256-GCM before it reaches the file, and authenticates every byte it reads back.
//!
//! # What it does
//!
//! redb sees a plain file of 4096-byte logical blocks (its page size). On disk each logical
//! block `i ≥ 1` is a sealed block of 4124 bytes at a fixed position (`layout.rs`): a fresh
//! 96-bit nonce, the ciphertext, the 16-byte tag. The additional authenticated data binds the
//! block's index and the file's random id (`cipher.rs`), so a block moved to another position
//! or copied from another file fails to open. A read whose block fails authentication returns
//! an [`std::io::Error`] of kind `InvalidData` wrapping an [`IntegrityError`] ("integrity
//! check failed at block N"): never the bytes. An all-zero block (never written, or erased)
//! is refused the same way. The file starts with a plaintext preamble naming the data key
//! (by keyring id) and the file id, authenticated with the data key, so a wrong key is told
//! apart from damage before anything else is read.
//!
//! redb writes whole pages at page-aligned offsets, except its 320-byte super-header at
//! offset 0; any partial block is written by read-modify-write.
//!
//! # The super-header: two sealed copies
//!
//! redb's crash safety rests on its header's two commit slots: a torn write of the header can
//! damage at most the slot being written. Sealed as one block, a torn header write would fail
//! authentication and lose both. So block 0 is kept as two sealed *copies* with a sequence
//! number; a read uses the newest copy that authenticates. Between two `sync_data` calls every
//! header write goes to the same copy (the *scratch* copy), never to the one that was current
//! at the last sync; only after a sync that made the scratch copy durable do the roles swap.
//! A crash therefore leaves the last synced copy untouched, whatever happened to the other.
//!
//! One more failure mode comes from encrypting: on power loss the newest header copy may reach
//! the disk while a data page of the same (not yet acknowledged) commit is torn. Plain redb
//! notices the bad page by its checksum and falls back to the previous commit; here the page
//! fails authentication, which redb sees as an I/O error and gives up. `open.rs` handles it:
//! while redb opens the file, writes are held in memory (nothing reaches the disk until the
//! open succeeded), and if the open fails on an integrity error *and* the newest header says
//! redb was not closed cleanly, it is retried once from the *previous* header copy, which was
//! synced before any write of the newer commit began. (After a clean close every commit was
//! synced: a bad block then is damage, reported, never papered over by an older commit.)
//!
//! # Nonces
//!
//! Every seal draws a fresh random 96-bit nonce from the operating system. A persisted counter
//! would need a crash-safe, authenticated counter record, and an attacker able to roll that
//! record back could force nonce reuse, the one failure GCM does not survive; random nonces
//! cannot be steered that way. Their limit is the birthday bound: after `q` block writes under
//! one data key, the chance of any repeated nonce is about `q² / 2⁹⁷`: 2⁻³³ after 2³² writes
//! (16 TiB written), 3 · 10⁻⁸ after 2³⁶ (256 TiB). `testudo keys rotate-data` starts a fresh
//! key (and budget).
//!
//! # Online key rotation
//!
//! During an online rotation of the data key (`rotation.rs`) the backend holds two keys: every
//! write (blocks, header copies) is sealed under the new one at once, and a background pass
//! re-seals the old blocks in place, in batches, through a journal (`data.enc.journal`) that
//! makes the in-place writes crash-safe. Blocks carry no key id: a block below the pass's
//! cursor is opened under the new key only; any other block under the old key, then the new.
//! The pass takes the *gate* (an `RwLock` every block read and write holds shared) exclusive
//! twice per batch, to read the batch and to write it back, so a reader never sees a block
//! half rewritten and a block redb wrote since the batch was read is never overwritten with
//! older content.
//!
//! # What it does not protect
//!
//! Replaying an *older* sealed version of the same block at the same position, or rolling
//! the whole file back to an older copy, is not detected (there is no tree of versions over
//! the blocks). Access patterns, the file's size and which blocks change are visible.
//!
//! **Invariants:** no plaintext byte and no key byte is ever written to the physical file or a
//! log; nothing that failed authentication is ever returned to redb; a header write never
//! touches the copy that was current at the last completed sync; during the open, nothing is
//! written to the physical file (a rotation journal is replayed before it: `rotation.rs`); no
//! block is read or written without holding the gate; a block
//! redb wrote during a rotation is never overwritten by the pass.

mod cipher;
pub(crate) mod layout;
mod open;
mod rotation;

#[cfg(test)]
mod fault;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{
    Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard,
};
use std::thread::JoinHandle;

use redb::{BackendError, StorageBackend};

pub(crate) use self::cipher::{BlockCipher, HeaderCopy};
use self::layout::{
    BLOCK, BLOCK_U64, HEADER_SLOT, Preamble, SEALED, block_offset, header_slot_offset, invalid,
    logical_len, physical_len,
};

pub use self::open::{EncryptedFile, PreambleStatus};
pub(crate) use self::open::{
    KeySet, OpenFailure, create_file, new_preamble, open_database, private_file, read_preamble,
};
pub use self::rotation::RotationProgress;
pub(crate) use self::rotation::{JOURNAL_SUFFIX, KeyWatch, read_journal_cursor};

/// Why a block could not be trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntegrityFailure {
    /// The block fails authentication: damaged, tampered with, moved, or torn by a crash.
    Tampered,
    /// The block is all zeros: never written (or erased).
    Unwritten,
}

/// A block that failed its integrity check. Reaches redb inside an `InvalidData` I/O error,
/// and the store's users as `KvError::Corrupt`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("integrity check failed at block {block} ({})", match .failure {
    IntegrityFailure::Tampered => "the block fails authentication",
    IntegrityFailure::Unwritten => "the block was never written or was erased",
})]
pub struct IntegrityError {
    /// The logical block (4096-byte unit of redb's file).
    pub block: u64,
    pub failure: IntegrityFailure,
}

impl IntegrityError {
    pub(crate) fn new(block: u64, failure: IntegrityFailure) -> IntegrityError {
        IntegrityError { block, failure }
    }

    /// The integrity error inside an I/O error, if that is what it carries.
    pub fn from_io(error: &io::Error) -> Option<&IntegrityError> {
        error.get_ref()?.downcast_ref::<IntegrityError>()
    }
}

impl From<IntegrityError> for io::Error {
    fn from(error: IntegrityError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

/// Which header copy an open starts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderChoice {
    Newest,
    Previous,
}

/// Block 0 (redb's super-header) and where its copies are.
struct Header {
    /// The current plaintext of block 0; `None` if no copy authenticates.
    plain: Option<Box<[u8; BLOCK]>>,
    /// Why block 0 cannot be read while `plain` is `None`.
    missing: IntegrityFailure,
    /// The highest sequence number on disk or written; the next write uses `seq + 1`.
    seq: u64,
    /// The copy last written (or found current at open): slot and sequence number.
    written: Option<(u8, u64)>,
    /// The copy the next header write goes to.
    scratch: u8,
    /// The keyring id of the key that sealed each copy (as found at open or last written).
    slot_keys: [Option<u32>; 2],
    /// During the open: `plain` changed and is not on disk yet.
    dirty: bool,
}

/// Writes held back while redb opens the file.
#[derive(Default)]
struct Overlay {
    len: Option<u64>,
    blocks: BTreeMap<u64, Box<[u8; BLOCK]>>,
}

/// The keys blocks are sealed and opened with. Behind the gate: held shared by every block
/// read and write, exclusive by the rotation pass while it reads or rewrites a batch.
pub(crate) struct Ciphers {
    /// Seals every write; during a rotation, the new key.
    seal: Arc<BlockCipher>,
    /// During a rotation: the key being rotated away from.
    old: Option<Arc<BlockCipher>>,
    /// During a rotation: every data block below it is sealed under `seal`.
    cursor: u64,
}

impl Ciphers {
    /// The plaintext of sealed block `index` (in `sealed`, consumed) into `out`, or why not.
    fn open(&self, index: u64, sealed: &mut [u8], out: &mut [u8]) -> Result<(), IntegrityError> {
        let Some(old) = self.old.as_ref().filter(|_| index >= self.cursor) else {
            out.copy_from_slice(self.seal.open_block(index, sealed)?);
            return Ok(());
        };
        // Opening in place overwrites the buffer: the second try needs the original bytes.
        let copy = zeroize::Zeroizing::new(sealed.to_vec());
        if let Ok(plain) = old.open_block(index, sealed) {
            out.copy_from_slice(plain);
            return Ok(());
        }
        sealed.copy_from_slice(&copy);
        out.copy_from_slice(self.seal.open_block(index, sealed)?);
        Ok(())
    }
}

/// The blocks redb wrote since the rotation began (a bitmap over block indices).
#[derive(Default)]
struct Written {
    bits: Vec<u64>,
}

impl Written {
    fn set(&mut self, index: u64) {
        let (word, bit) = (index / 64, index % 64);
        let Ok(word) = usize::try_from(word) else {
            return;
        };
        if self.bits.len() <= word {
            self.bits.resize(word + 1, 0);
        }
        if let Some(w) = self.bits.get_mut(word) {
            *w |= 1 << bit;
        }
    }

    fn get(&self, index: u64) -> bool {
        usize::try_from(index / 64)
            .ok()
            .and_then(|word| self.bits.get(word))
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }
}

/// Tells the maintenance thread to stop (a closed backend).
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

struct Shared {
    physical: Box<dyn StorageBackend>,
    /// The file id (the keys change during a rotation, the file's identity never).
    preamble: Preamble,
    gate: RwLock<Ciphers>,
    /// Blocks written since a rotation began (only kept during one).
    written: Mutex<Written>,
    /// `data.enc.journal`: where the rotation pass makes its in-place writes crash-safe.
    journal: Option<Box<dyn StorageBackend>>,
    /// Blocks the pass re-seals per batch.
    batch: AtomicU64,
    /// The fraction of the time the pass may work (it sleeps the rest).
    duty: Mutex<f64>,
    /// The rotation's state as the maintenance thread reports it.
    progress: Mutex<Option<RotationProgress>>,
    stop: Stop,
    maintenance: Mutex<Option<JoinHandle<()>>>,
    /// Tests: runs between the two gate holds of a batch.
    #[cfg(test)]
    between_phases: Mutex<Option<Box<dyn Fn() + Send>>>,
    /// The logical length (kept here: every write checks it).
    len: AtomicU64,
    header: Mutex<Header>,
    opening: AtomicBool,
    overlay: Mutex<Overlay>,
    /// Serializes read-modify-write of partial blocks.
    edges: Mutex<()>,
    /// The first integrity failure seen (`u64::MAX`: none).
    first_failure: AtomicU64,
    /// Whether the header the open started from says redb did not shut down cleanly.
    unclean: bool,
}

/// The encrypting backend (see the module docs). Created by `open_database`.
pub struct EncryptedBackend {
    shared: Arc<Shared>,
}

/// The caller's handle on a backend that redb owns.
#[derive(Clone)]
pub(crate) struct EncryptedHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for EncryptedBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedBackend")
            .field("key_id", &read(&self.shared.gate).seal.preamble().key_id)
            .finish_non_exhaustive()
    }
}

impl Drop for EncryptedBackend {
    fn drop(&mut self) {
        self.shared.stop_maintenance();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves its state consistent before anything that can panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

fn len_usize(len: u64) -> io::Result<usize> {
    usize::try_from(len).map_err(|_| invalid("length does not fit in memory"))
}

impl EncryptedBackend {
    /// Wraps `physical` (whose preamble the caller verified against `key`), reading both
    /// header copies and starting from `choice`. Returns `None` for
    /// [`HeaderChoice::Previous`] when there is no valid previous copy.
    pub(crate) fn open(
        physical: Box<dyn StorageBackend>,
        journal: Option<Box<dyn StorageBackend>>,
        ciphers: Ciphers,
        choice: HeaderChoice,
    ) -> io::Result<Option<(EncryptedBackend, EncryptedHandle)>> {
        let len = logical_len(physical.len()?);
        let mut copies = Vec::new();
        if len > 0 {
            for slot in 0..2u8 {
                let mut bytes = vec![0u8; HEADER_SLOT];
                physical.read(header_slot_offset(slot), &mut bytes)?;
                copies.push(open_header_any(&ciphers, slot, &bytes));
            }
        }
        let Some(header) = Header::choose(copies, choice) else {
            return Ok(None);
        };
        let unclean = header.plain.as_deref().is_some_and(redb_unclean);
        let shared = Arc::new(Shared {
            physical,
            preamble: ciphers.seal.preamble(),
            gate: RwLock::new(ciphers),
            written: Mutex::new(Written::default()),
            journal,
            batch: AtomicU64::new(rotation::BATCH),
            duty: Mutex::new(rotation::DEFAULT_DUTY),
            progress: Mutex::new(None),
            stop: Stop::default(),
            maintenance: Mutex::new(None),
            #[cfg(test)]
            between_phases: Mutex::new(None),
            len: AtomicU64::new(len),
            header: Mutex::new(header),
            opening: AtomicBool::new(true),
            overlay: Mutex::new(Overlay::default()),
            edges: Mutex::new(()),
            first_failure: AtomicU64::new(u64::MAX),
            unclean,
        });
        Ok(Some((
            EncryptedBackend {
                shared: Arc::clone(&shared),
            },
            EncryptedHandle { shared },
        )))
    }
}

impl EncryptedBackend {
    fn read_inner(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let shared = &*self.shared;
        let end = offset
            .checked_add(out.len() as u64)
            .ok_or_else(|| invalid("read out of range"))?;
        if end > shared.len.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the encrypted file",
            ));
        }
        let mut offset = offset;
        let mut out = out;
        if offset < BLOCK_U64 && !out.is_empty() {
            let at = len_usize(offset)?;
            let n = out.len().min(BLOCK - at);
            let (head, rest) = out.split_at_mut(n);
            {
                let header = lock(&shared.header);
                match &header.plain {
                    Some(plain) => head.copy_from_slice(&plain[at..at + n]),
                    None => return Err(IntegrityError::new(0, header.missing).into()),
                }
            }
            out = rest;
            offset += n as u64;
        }
        if out.is_empty() {
            return Ok(());
        }
        let first = offset / BLOCK_U64;
        let skip = len_usize(offset % BLOCK_U64)?;
        let count = (skip + out.len()).div_ceil(BLOCK);
        if skip == 0 && out.len().is_multiple_of(BLOCK) {
            return shared.read_blocks(first, count, out);
        }
        let mut plain = vec![0u8; count * BLOCK];
        shared.read_blocks(first, count, &mut plain)?;
        out.copy_from_slice(&plain[skip..skip + out.len()]);
        Ok(())
    }

    fn write_inner(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let shared = &*self.shared;
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| invalid("write out of range"))?;
        if end > shared.len.load(Ordering::Acquire) {
            return Err(invalid("write past the end of the encrypted file"));
        }
        let mut offset = offset;
        let mut data = data;
        if offset < BLOCK_U64 && !data.is_empty() {
            let at = len_usize(offset)?;
            let n = data.len().min(BLOCK - at);
            shared.write_header(at, &data[..n])?;
            data = &data[n..];
            offset += n as u64;
        }
        if data.is_empty() {
            return Ok(());
        }
        let first = offset / BLOCK_U64;
        let skip = len_usize(offset % BLOCK_U64)?;
        if skip == 0 && data.len().is_multiple_of(BLOCK) {
            return shared.write_blocks(first, data);
        }
        // Partial blocks at either end: read-modify-write, one at a time.
        let _edges = lock(&shared.edges);
        let count = (skip + data.len()).div_ceil(BLOCK);
        let mut plain = vec![0u8; count * BLOCK];
        let last = first + (count as u64 - 1);
        plain[..BLOCK].copy_from_slice(&shared.block_for_update(first)?[..]);
        if count > 1 && !(skip + data.len()).is_multiple_of(BLOCK) {
            plain[(count - 1) * BLOCK..].copy_from_slice(&shared.block_for_update(last)?[..]);
        }
        plain[skip..skip + data.len()].copy_from_slice(data);
        shared.write_blocks(first, &plain)
    }
}

/// Header copy `slot` (its bytes as on disk) opened under the sealing key, else the old one;
/// with the keyring id of the key that opened it.
fn open_header_any(ciphers: &Ciphers, slot: u8, bytes: &[u8]) -> (u8, HeaderCopy, Option<u32>) {
    let mut last = HeaderCopy::Invalid;
    for cipher in std::iter::once(&ciphers.seal).chain(ciphers.old.as_ref()) {
        let mut copy = bytes.to_vec();
        match cipher.open_header(slot, &mut copy) {
            valid @ HeaderCopy::Valid { .. } => {
                return (slot, valid, Some(cipher.preamble().key_id));
            }
            other => last = other,
        }
    }
    (slot, last, None)
}

impl Header {
    fn choose(copies: Vec<(u8, HeaderCopy, Option<u32>)>, choice: HeaderChoice) -> Option<Header> {
        let mut valid: Vec<(u8, u64, Box<[u8; BLOCK]>)> = Vec::new();
        let mut any_invalid = false;
        let mut slot_keys = [None, None];
        for (slot, copy, key) in copies {
            if let Some(k) = slot_keys.get_mut(usize::from(slot)) {
                *k = key;
            }
            match copy {
                HeaderCopy::Valid { seq, plain } => valid.push((slot, seq, plain)),
                HeaderCopy::Invalid => any_invalid = true,
                HeaderCopy::Unwritten => {}
            }
        }
        valid.sort_by_key(|(_, seq, _)| std::cmp::Reverse(*seq));
        let seq = valid.first().map_or(0, |(_, seq, _)| *seq);
        let current = match choice {
            HeaderChoice::Newest => valid.into_iter().next(),
            HeaderChoice::Previous => Some(valid.into_iter().nth(1)?),
        };
        let missing = if any_invalid {
            IntegrityFailure::Tampered
        } else {
            IntegrityFailure::Unwritten
        };
        Some(match current {
            Some((slot, current_seq, plain)) => Header {
                plain: Some(plain),
                missing,
                seq,
                written: Some((slot, current_seq)),
                scratch: 1 - slot,
                slot_keys,
                dirty: false,
            },
            None => Header {
                plain: None,
                missing,
                seq,
                written: None,
                scratch: 0,
                slot_keys,
                dirty: false,
            },
        })
    }
}

impl Shared {
    /// Notes an integrity failure on its way to redb (the first one decides whether an open
    /// is retried from the previous header copy).
    fn note(&self, result: &io::Result<()>) {
        if let Err(error) = result
            && let Some(integrity) = IntegrityError::from_io(error)
        {
            let _ = self.first_failure.compare_exchange(
                u64::MAX,
                integrity.block,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            tracing::error!(block = integrity.block, "{integrity}");
        }
    }

    fn opening(&self) -> bool {
        self.opening.load(Ordering::Acquire)
    }

    /// The plaintext of data blocks `first..first + count` into `out`, from the overlay
    /// (while opening) or the file.
    fn read_blocks(&self, first: u64, count: usize, out: &mut [u8]) -> io::Result<()> {
        if self.opening() {
            let overlay = lock(&self.overlay);
            for (i, chunk) in (first..).zip(out.chunks_exact_mut(BLOCK)) {
                match overlay.blocks.get(&i) {
                    Some(block) => chunk.copy_from_slice(&block[..]),
                    None => self.read_physical(i, 1, chunk)?,
                }
            }
            return Ok(());
        }
        self.read_physical(first, count, out)
    }

    fn read_physical(&self, first: u64, count: usize, out: &mut [u8]) -> io::Result<()> {
        let ciphers = read(&self.gate);
        let mut sealed = vec![0u8; count * SEALED];
        match self.physical.read(block_offset(first)?, &mut sealed) {
            Ok(()) => {}
            // A block past the physical end (a length set while opening) was never written.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(IntegrityError::new(first, IntegrityFailure::Unwritten).into());
            }
            Err(e) => return Err(e),
        }
        let blocks = sealed
            .chunks_exact_mut(SEALED)
            .zip(out.chunks_exact_mut(BLOCK));
        for (i, (sealed, plain)) in (first..).zip(blocks) {
            ciphers.open(i, sealed, plain)?;
        }
        Ok(())
    }

    /// The current plaintext of data block `index` for a read-modify-write: a block never
    /// written counts as zeros (as a new part of the file does); a damaged one is an error.
    fn block_for_update(&self, index: u64) -> io::Result<Box<[u8; BLOCK]>> {
        let mut block = Box::new([0u8; BLOCK]);
        match self.read_blocks(index, 1, &mut block[..]) {
            Ok(()) => Ok(block),
            Err(e)
                if IntegrityError::from_io(&e)
                    .is_some_and(|i| i.failure == IntegrityFailure::Unwritten) =>
            {
                Ok(Box::new([0u8; BLOCK]))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes whole plaintext blocks `plain` as blocks `first..`.
    fn write_blocks(&self, first: u64, plain: &[u8]) -> io::Result<()> {
        if self.opening() {
            let mut overlay = lock(&self.overlay);
            for (i, chunk) in (first..).zip(plain.chunks_exact(BLOCK)) {
                let mut block = Box::new([0u8; BLOCK]);
                block.copy_from_slice(chunk);
                overlay.blocks.insert(i, block);
            }
            return Ok(());
        }
        let ciphers = read(&self.gate);
        if ciphers.old.is_some() {
            // Before the write: the pass, which checks under the gate held exclusive, must
            // never put older content over it.
            let mut written = lock(&self.written);
            for i in first..first + (plain.len() / BLOCK) as u64 {
                written.set(i);
            }
        }
        let mut sealed = vec![0u8; plain.len() / BLOCK * SEALED];
        ciphers.seal.seal_blocks(first, plain, &mut sealed)?;
        self.physical.write(block_offset(first)?, &sealed)
    }

    /// Writes `bytes` at `at` within block 0.
    fn write_header(&self, at: usize, bytes: &[u8]) -> io::Result<()> {
        let seal = Arc::clone(&read(&self.gate).seal);
        let mut header = lock(&self.header);
        let mut plain = header
            .plain
            .clone()
            .unwrap_or_else(|| Box::new([0u8; BLOCK]));
        plain
            .get_mut(at..at + bytes.len())
            .ok_or_else(|| invalid("header write out of range"))?
            .copy_from_slice(bytes);
        if self.opening() {
            header.plain = Some(plain);
            header.dirty = true;
            return Ok(());
        }
        self.seal_header_copy(&seal, &mut header, plain)
    }

    /// Seals `plain` into the scratch copy with the next sequence number.
    fn seal_header_copy(
        &self,
        cipher: &BlockCipher,
        header: &mut Header,
        plain: Box<[u8; BLOCK]>,
    ) -> io::Result<()> {
        let seq = header
            .seq
            .checked_add(1)
            .ok_or_else(|| io::Error::other("header sequence exhausted"))?;
        let slot = header.scratch;
        let mut sealed = vec![0u8; HEADER_SLOT];
        cipher.seal_header(slot, seq, &plain, &mut sealed)?;
        // Counted as used even if the write fails: a sequence number is never sealed twice.
        header.seq = seq;
        if let Some(key) = header.slot_keys.get_mut(usize::from(slot)) {
            // Unknown until the write succeeded.
            *key = None;
        }
        self.physical.write(header_slot_offset(slot), &sealed)?;
        if let Some(key) = header.slot_keys.get_mut(usize::from(slot)) {
            *key = Some(cipher.preamble().key_id);
        }
        header.plain = Some(plain);
        header.written = Some((slot, seq));
        header.dirty = false;
        Ok(())
    }

    fn sync(&self) -> io::Result<()> {
        let before = lock(&self.header).written;
        self.physical.sync_data()?;
        let mut header = lock(&self.header);
        // The copy written before this sync began, and not rewritten since, is durable now:
        // protect it, and send the next header writes to the other copy.
        if header.written == before
            && let Some((slot, _)) = before
            && slot == header.scratch
        {
            header.scratch = 1 - slot;
        }
        Ok(())
    }

    /// Ends the open: writes what redb wrote meanwhile (length, blocks, then the header
    /// copy), syncs, and from then on writes go straight to the file.
    fn finish_open(&self) -> io::Result<()> {
        let overlay = std::mem::take(&mut *lock(&self.overlay));
        self.opening.store(false, Ordering::Release);
        if let Some(len) = overlay.len {
            self.set_physical_len(len)?;
        }
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0u64;
        let mut next = None;
        for (index, block) in overlay.blocks {
            if next != Some(index) && !run.is_empty() {
                self.write_blocks(run_start, &run)?;
                run.clear();
            }
            if run.is_empty() {
                run_start = index;
            }
            run.extend_from_slice(&block[..]);
            next = index.checked_add(1);
        }
        if !run.is_empty() {
            self.write_blocks(run_start, &run)?;
        }
        {
            let seal = Arc::clone(&read(&self.gate).seal);
            let mut header = lock(&self.header);
            if header.dirty
                && let Some(plain) = header.plain.clone()
            {
                self.seal_header_copy(&seal, &mut header, plain)?;
            }
        }
        self.sync()
    }

    fn set_physical_len(&self, len: u64) -> io::Result<()> {
        // Under the gate: the pass reads the length and the blocks it covers in one step.
        let _gate = read(&self.gate);
        self.physical.set_len(physical_len(len)?)?;
        if len == 0 {
            // The header copies went with the rest.
            let mut header = lock(&self.header);
            header.plain = None;
            header.missing = IntegrityFailure::Unwritten;
            header.written = None;
            header.slot_keys = [None, None];
        }
        Ok(())
    }

    fn stop_maintenance(&self) {
        *lock(&self.stop.stopped) = true;
        self.stop.wake.notify_all();
        let handle = lock(&self.maintenance).take();
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
    }
}

/// Whether redb's super-header in `block` has its "recovery required" flag set: the file was
/// not closed cleanly, so its newest commit may not have reached the disk whole. redb's file
/// format (version 3, `tree_store/page_store/header.rs`): the god byte follows the 9-byte
/// magic number, and its bit 1 (value 2) is `RECOVERY_REQUIRED`. A test
/// (`the_recovery_flag_is_where_redb_keeps_it`) pins this down.
fn redb_unclean(block: &[u8; BLOCK]) -> bool {
    const GOD_BYTE: usize = 9;
    const RECOVERY_REQUIRED: u8 = 2;
    block[GOD_BYTE] & RECOVERY_REQUIRED != 0
}

impl EncryptedHandle {
    /// Whether the open started from a header redb did not close cleanly.
    pub(crate) fn started_unclean(&self) -> bool {
        self.shared.unclean
    }

    /// The block of the first integrity failure seen, if any.
    pub(crate) fn first_failure(&self) -> Option<u64> {
        match self.shared.first_failure.load(Ordering::Acquire) {
            u64::MAX => None,
            block => Some(block),
        }
    }

    pub(crate) fn finish_open(&self) -> io::Result<()> {
        self.shared.finish_open()
    }

    /// Starts the maintenance thread (online rotation of the data key), which runs until the
    /// backend closes.
    pub(crate) fn start_maintenance(&self, watch: Box<dyn KeyWatch>) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let handle = std::thread::Builder::new()
            .name("testudo-rotate".to_owned())
            .spawn(move || rotation::maintain(shared, watch))?;
        *lock(&self.shared.maintenance) = Some(handle);
        Ok(())
    }

    /// Where a rotation stands (`None` when none runs, or before its first batch).
    pub(crate) fn rotation_progress(&self) -> Option<RotationProgress> {
        lock(&self.shared.progress).clone()
    }

    /// The fraction of the time the rotation pass may work (0.01 to 1).
    pub(crate) fn set_rotation_duty(&self, duty: f64) {
        *lock(&self.shared.duty) = duty.clamp(0.01, 1.0);
    }

    #[cfg(test)]
    pub(crate) fn set_rotation_batch(&self, blocks: u64) {
        self.shared.batch.store(blocks.max(1), Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn begin_rotation(&self, key: &crate::keys::DataKey, id: u32) -> io::Result<()> {
        self.shared.begin_rotation(key, id)
    }

    #[cfg(test)]
    pub(crate) fn rotation_step(&self) -> io::Result<rotation::Step> {
        self.shared.rotation_step()
    }

    #[cfg(test)]
    pub(crate) fn set_between_phases(&self, hook: Option<Box<dyn Fn() + Send>>) {
        *lock(&self.shared.between_phases) = hook;
    }

    #[cfg(test)]
    pub(crate) fn end_rotation(&self) {
        self.shared.end_rotation();
    }
}

impl StorageBackend for EncryptedBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.shared.len.load(Ordering::Acquire))
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let result = self.read_inner(offset, out);
        self.shared.note(&result);
        result
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let shared = &*self.shared;
        physical_len(len)?;
        if shared.opening() {
            let mut overlay = lock(&shared.overlay);
            overlay.len = Some(len);
            overlay
                .blocks
                .retain(|i, _| i.saturating_mul(BLOCK_U64) < len);
        } else {
            shared.set_physical_len(len)?;
        }
        shared.len.store(len, Ordering::Release);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        if self.shared.opening() {
            // Held back until the open succeeded: see `finish_open`.
            return Ok(());
        }
        self.shared.sync()
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let result = self.write_inner(offset, data);
        self.shared.note(&result);
        result
    }

    fn close(&self) -> io::Result<()> {
        self.shared.stop_maintenance();
        if self.shared.opening() {
            // The open failed: what it wrote never reaches the file.
            *lock(&self.shared.overlay) = Overlay::default();
        }
        self.shared.physical.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.shared.physical.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.shared.physical.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.shared.physical.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.shared.physical.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.shared.physical.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.shared.physical.query_lock_range(start, end)
    }
}
