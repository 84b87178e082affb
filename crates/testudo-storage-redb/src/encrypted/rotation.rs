//! Online rotation of the data key: the background pass that re-seals every block of a live
//! file under a new key, the journal that makes its in-place writes crash-safe, the recovery
//! that replays a journal at open, and the maintenance thread that notices a requested
//! rotation and paces the pass.
//!
//! # One batch
//!
//! 1. Under the gate held exclusive: the batch's blocks (from the cursor, [`BATCH`] of them)
//!    are read as sealed, and the blocks redb wrote since the rotation began are noted.
//! 2. Without the gate: each block still under the old key is opened and sealed under the new
//!    one (blocks already under the new key, never written, or written by redb are left).
//! 3. The re-sealed blocks go to the journal (`data.enc.journal`: the rotation's key ids, the
//!    batch's start, each block's index and sealed bytes, a SHA-256 over it all), and
//!    the journal is fsynced.
//! 4. Under the gate held exclusive again: each re-sealed block that redb has not written
//!    meanwhile is written in place; the cursor moves past the batch.
//! 5. The data file is fsynced, and the journal is replaced by an empty record that holds the
//!    batch's end as the cursor to resume from (not fsynced: the next batch's record, or the journal left as it was, is as good).
//!
//! A reader never sees a block half rewritten (step 4 holds the gate), and a block redb wrote
//! after step 1 is never overwritten with its older content (step 4 skips it). The gate is
//! held for one read and one write of at most a batch (1 MiB): the stall a query sees.
//!
//! # Finishing
//!
//! When the cursor passes the end of the file: both header copies are sealed under the new
//! key through the usual alternating writes (each followed by a sync), then the preamble,
//! which names the data key, is rewritten through the journal. Only then does the maintenance
//! thread ask its [`KeyWatch`] to drop the old key from the keyring.
//!
//! # Recovery
//!
//! At open, before anything else reads the file, a complete journal (its checksum matches) is
//! replayed: an entry is written back only where the block (or preamble) on disk
//! authenticates under *no* available key — a torn in-place write — and only if the
//! journal's copy authenticates itself. A block that authenticates is never overwritten: it
//! is either the pass's write, whole, or a later write of redb's. A journal copy may restore
//! the pre-rotation content of a page redb was rewriting when the power failed; that page
//! belonged to a commit that was not durable, which redb's own checksums reject as they
//! would a torn page.
//!
//! A block that authenticates under neither key is left as it is (logged): after a crash it
//! is usually a page redb was writing for a commit that never became durable, which redb no
//! longer uses; if it is damage instead, a read of it reports it, as before the rotation.
//!
//! **Invariants:** a block is written in place only after its journal copy is durable; the
//! old key is dropped only after every block, both header copies and the preamble are under
//! the new one and fsynced; nothing that fails authentication is ever re-sealed; a torn
//! journal is recognised and ignored; no key byte is logged.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use redb::StorageBackend;
use ring::digest::{SHA256, digest};
use zeroize::Zeroizing;

use super::cipher::BlockCipher;
use super::layout::{
    BLOCK, BLOCK_U64, PREAMBLE, PREAMBLE_U64, Preamble, SEALED, block_offset, logical_len,
};
use super::{IntegrityFailure, Shared, Written, lock, read, write};
use crate::keys::DataKey;

/// Blocks re-sealed per batch (1 MiB).
pub(crate) const BATCH: u64 = 256;
/// The fraction of the time the pass works by default; it sleeps the rest.
pub(crate) const DEFAULT_DUTY: f64 = 0.25;
/// The journal is the data file's name with this suffix.
pub(crate) const JOURNAL_SUFFIX: &str = ".journal";
/// How often the maintenance thread looks for a requested rotation.
const POLL: Duration = Duration::from_secs(2);
/// How long the pass waits after a failure before it tries again.
const RETRY: Duration = Duration::from_secs(30);
/// No journal is larger (a batch is about 1 MiB).
const MAX_JOURNAL: u64 = 64 << 20;
const MAGIC: [u8; 8] = *b"TSTJRNL1";
const KIND_BLOCK: u8 = 0;
const KIND_PREAMBLE: u8 = 1;

/// Where a rotation stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationProgress {
    /// The keyring id of the key rotated away from.
    pub from: u32,
    /// The keyring id of the new key.
    pub to: u32,
    /// Data blocks below the cursor (under the new key).
    pub done: u64,
    /// Blocks in the file.
    pub total: u64,
    /// Why the pass is stopped, if it is (it retries).
    pub error: Option<String>,
    /// The longest the pass has held the gate (every block read and write waits meanwhile),
    /// in microseconds.
    pub longest_hold_us: u64,
}

/// What the maintenance thread asks of the store around it (the keyring lives there).
pub(crate) trait KeyWatch: Send {
    /// Polled every few seconds while no rotation runs: the new key and its keyring id if a
    /// rotation away from key `current` (the one sealing now) has been requested.
    fn requested(&mut self, current: u32) -> Option<(DataKey, u32)>;

    /// The data file no longer needs key `from`: drop it durably. An error is retried.
    fn finished(&mut self, from: u32, to: u32) -> Result<(), String>;
}

/// One journal record.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Record {
    pub from: u32,
    pub to: u32,
    /// Every data block below it is under the new key, once the record's blocks are (in a
    /// record with blocks, the batch's start; in the empty record that follows, its end).
    pub cursor: u64,
    pub preamble: Option<Vec<u8>>,
    pub blocks: Vec<(u64, Vec<u8>)>,
}

impl Record {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.blocks.len() * (9 + SEALED));
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&self.from.to_le_bytes());
        out.extend_from_slice(&self.to.to_le_bytes());
        out.extend_from_slice(&self.cursor.to_le_bytes());
        let count = self.blocks.len() + usize::from(self.preamble.is_some());
        out.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
        if let Some(preamble) = &self.preamble {
            out.push(KIND_PREAMBLE);
            out.extend_from_slice(&0u64.to_le_bytes());
            out.extend_from_slice(preamble);
        }
        for (index, sealed) in &self.blocks {
            out.push(KIND_BLOCK);
            out.extend_from_slice(&index.to_le_bytes());
            out.extend_from_slice(sealed);
        }
        let sum = digest(&SHA256, &out);
        out.extend_from_slice(sum.as_ref());
        out
    }

    #[cfg(test)]
    pub(crate) fn encode_for_tests(&self) -> Vec<u8> {
        self.encode()
    }

    /// The record in `bytes`; `None` if it is torn, damaged or not a journal at all.
    fn decode(bytes: &[u8]) -> Option<Record> {
        let mut at = 0usize;
        let mut take = |n: usize| {
            let part = bytes.get(at..at.checked_add(n)?)?;
            at += n;
            Some(part)
        };
        if take(8)? != MAGIC {
            return None;
        }
        let u32_of = |b: &[u8]| b.try_into().ok().map(u32::from_le_bytes);
        let u64_of = |b: &[u8]| b.try_into().ok().map(u64::from_le_bytes);
        let from = u32_of(take(4)?)?;
        let to = u32_of(take(4)?)?;
        let cursor = u64_of(take(8)?)?;
        let count = u32_of(take(4)?)?;
        let mut record = Record {
            from,
            to,
            cursor,
            ..Record::default()
        };
        for _ in 0..count {
            let kind = *take(1)?.first()?;
            let index = u64_of(take(8)?)?;
            match kind {
                KIND_PREAMBLE => record.preamble = Some(take(PREAMBLE)?.to_vec()),
                KIND_BLOCK => record.blocks.push((index, take(SEALED)?.to_vec())),
                _ => return None,
            }
        }
        let sum = take(32)?;
        let body = at - 32;
        (digest(&SHA256, bytes.get(..body)?).as_ref() == sum).then_some(record)
    }
}

fn write_record(journal: &dyn StorageBackend, record: &Record) -> io::Result<()> {
    let bytes = record.encode();
    journal.write(0, &bytes)?;
    journal.set_len(bytes.len() as u64)
}

/// The record in `journal`, if it holds a complete one.
pub(crate) fn read_record(journal: &dyn StorageBackend) -> io::Result<Option<Record>> {
    let len = journal.len()?;
    if len == 0 || len > MAX_JOURNAL {
        return Ok(None);
    }
    let mut bytes = vec![0u8; usize::try_from(len).map_err(io::Error::other)?];
    journal.read(0, &mut bytes)?;
    Ok(Record::decode(&bytes))
}

/// The rotation (from, to) and cursor a journal file at `path` records, if it holds a
/// complete record (for progress reports by another process).
pub(crate) fn read_journal_cursor(path: &std::path::Path) -> Option<(u32, u32, u64)> {
    let bytes = std::fs::read(path).ok()?;
    Record::decode(&bytes).map(|r| (r.from, r.to, r.cursor))
}

/// Whether `bytes` is a preamble sealed by one of `keys` (each with its keyring id).
fn preamble_verifies(bytes: &[u8], keys: &[(u32, &DataKey)]) -> bool {
    let Ok(parsed) = Preamble::parse(bytes) else {
        return false;
    };
    keys.iter().any(|(id, key)| {
        let preamble = Preamble {
            key_id: *id,
            file_id: parsed.file_id,
        };
        BlockCipher::new(key, preamble).verify_preamble(bytes)
    })
}

/// Replays the journal into `physical` where a rotation's in-place write was torn (see the
/// module docs); returns the rotation and cursor the journal records.
pub(crate) fn recover(
    physical: &dyn StorageBackend,
    journal: &dyn StorageBackend,
    keys: &[(u32, &DataKey)],
) -> io::Result<Option<(u32, u32, u64)>> {
    let Some(record) = read_record(journal)? else {
        return Ok(None);
    };
    let mut repaired = 0u64;
    let mut preamble = vec![0u8; PREAMBLE];
    let intact = physical.len()? >= PREAMBLE_U64 && {
        physical.read(0, &mut preamble)?;
        preamble_verifies(&preamble, keys)
    };
    if !intact
        && let Some(copy) = &record.preamble
        && preamble_verifies(copy, keys)
    {
        physical.write(0, copy)?;
        preamble.copy_from_slice(copy);
        repaired += 1;
    }
    if let Ok(parsed) = Preamble::parse(&preamble) {
        let ciphers: Vec<BlockCipher> = keys
            .iter()
            .map(|(id, key)| {
                let preamble = Preamble {
                    key_id: *id,
                    file_id: parsed.file_id,
                };
                BlockCipher::new(key, preamble)
            })
            .collect();
        let opens = |index: u64, sealed: &[u8]| {
            ciphers.iter().any(|cipher| {
                let mut copy = Zeroizing::new(sealed.to_vec());
                cipher.open_block(index, &mut copy).is_ok()
            })
        };
        let blocks = logical_len(physical.len()?) / BLOCK_U64;
        let mut on_disk = vec![0u8; SEALED];
        for (index, copy) in &record.blocks {
            if *index == 0 || *index >= blocks {
                continue;
            }
            physical.read(block_offset(*index)?, &mut on_disk)?;
            if opens(*index, &on_disk) || !opens(*index, copy) {
                continue;
            }
            physical.write(block_offset(*index)?, copy)?;
            repaired += 1;
        }
    }
    if repaired > 0 {
        physical.sync_data()?;
        tracing::warn!(
            repaired,
            "a data-key rotation was interrupted while it rewrote blocks in place; restored \
             them from its journal"
        );
    }
    Ok(Some((record.from, record.to, record.cursor)))
}

/// What one call of [`Shared::rotation_step`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// No rotation runs.
    Idle,
    /// A batch was re-sealed.
    Working,
    /// Everything is under the new key and durable: the old key may go.
    Finished { from: u32, to: u32 },
}

fn usize_of(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::other("batch too large"))
}

impl Shared {
    /// Starts a rotation to `key` (keyring id `id`): from now on every write is sealed under
    /// it, and the pass re-seals the rest.
    pub(crate) fn begin_rotation(&self, key: &DataKey, id: u32) -> io::Result<()> {
        let mut ciphers = write(&self.gate);
        if ciphers.old.is_some() {
            return Err(io::Error::other("a rotation is already running"));
        }
        let cipher = BlockCipher::new(
            key,
            Preamble {
                key_id: id,
                file_id: self.preamble.file_id,
            },
        );
        let old = std::mem::replace(&mut ciphers.seal, Arc::new(cipher));
        ciphers.old = Some(old);
        ciphers.cursor = 0;
        *lock(&self.written) = Written::default();
        Ok(())
    }

    /// Ends a finished rotation: forgets the old key and clears the journal.
    pub(crate) fn end_rotation(&self) {
        {
            let mut ciphers = write(&self.gate);
            ciphers.old = None;
            ciphers.cursor = 0;
            *lock(&self.written) = Written::default();
        }
        *lock(&self.progress) = None;
        if let Some(journal) = &self.journal {
            // A journal left behind by a crash is harmless (see `recover`).
            let _ = journal.set_len(0);
        }
    }

    /// Re-seals the next batch, or finishes the rotation when none is left.
    pub(crate) fn rotation_step(&self) -> io::Result<Step> {
        let journal = self
            .journal
            .as_deref()
            .ok_or_else(|| io::Error::other("an online rotation needs the journal file"))?;
        let batch = self.batch.load(Ordering::Relaxed).max(1);
        let held = Instant::now();
        let (first, end, total, mut sealed, skip, old, new) = {
            let ciphers = write(&self.gate);
            let Some(old) = ciphers.old.clone() else {
                return Ok(Step::Idle);
            };
            let total = logical_len(self.physical.len()?) / BLOCK_U64;
            let first = ciphers.cursor.max(1);
            if first >= total {
                drop(ciphers);
                return self.finish_rotation(journal, total);
            }
            let end = first + batch.min(total - first);
            let mut sealed = Zeroizing::new(vec![0u8; usize_of(end - first)? * SEALED]);
            self.physical.read(block_offset(first)?, &mut sealed)?;
            let written = lock(&self.written);
            let skip: Vec<bool> = (first..end).map(|i| written.get(i)).collect();
            let new = Arc::clone(&ciphers.seal);
            (first, end, total, sealed, skip, old, new)
        };
        let mut longest = held.elapsed();
        let (from, to) = (old.preamble().key_id, new.preamble().key_id);
        let mut blocks = Vec::new();
        let mut plain = Zeroizing::new([0u8; BLOCK]);
        for ((index, chunk), skip) in (first..).zip(sealed.chunks_exact_mut(SEALED)).zip(&skip) {
            if *skip {
                continue;
            }
            let copy = Zeroizing::new(chunk.to_vec());
            match old.open_block(index, chunk) {
                Ok(opened) => plain.copy_from_slice(opened),
                Err(e) if e.failure == IntegrityFailure::Unwritten => continue,
                Err(_) => {
                    chunk.copy_from_slice(&copy);
                    // Already under the new key (written before a restart): nothing to do.
                    if new.open_block(index, chunk).is_err() {
                        // Under neither: a page torn by a crash that redb no longer uses (it
                        // fell back to the commit before), or damage, which a read of it
                        // reports. Left as it is: never re-sealed as if it were data.
                        tracing::warn!(
                            block = index,
                            "a block authenticates under neither data key; the rotation \
                             leaves it as it is"
                        );
                    }
                    continue;
                }
            }
            let mut out = vec![0u8; SEALED];
            new.seal_blocks(index, &plain[..], &mut out)?;
            blocks.push((index, out));
        }
        // Until the in-place writes are durable, only the batch's start is a safe cursor.
        let mut record = Record {
            from,
            to,
            cursor: first,
            preamble: None,
            blocks,
        };
        #[cfg(test)]
        if let Some(hook) = lock(&self.between_phases).as_ref() {
            hook();
        }
        if !record.blocks.is_empty() {
            write_record(journal, &record)?;
            journal.sync_data()?;
        }
        {
            let held = Instant::now();
            let mut ciphers = write(&self.gate);
            if !ciphers.old.as_ref().is_some_and(|o| Arc::ptr_eq(o, &old)) {
                return Ok(Step::Idle);
            }
            let present = logical_len(self.physical.len()?) / BLOCK_U64;
            let written = lock(&self.written);
            // Runs of adjacent blocks go out as one write: the gate is held for less.
            let mut run: Vec<u8> = Vec::new();
            let mut run_start = 0u64;
            let mut next = None;
            for (index, bytes) in &record.blocks {
                if *index >= present || written.get(*index) {
                    continue;
                }
                if next != Some(*index) && !run.is_empty() {
                    self.physical.write(block_offset(run_start)?, &run)?;
                    run.clear();
                }
                if run.is_empty() {
                    run_start = *index;
                }
                run.extend_from_slice(bytes);
                next = index.checked_add(1);
            }
            if !run.is_empty() {
                self.physical.write(block_offset(run_start)?, &run)?;
            }
            ciphers.cursor = end;
            drop(written);
            drop(ciphers);
            longest = longest.max(held.elapsed());
        }
        if !record.blocks.is_empty() {
            self.physical.sync_data()?;
        }
        record.blocks.clear();
        record.cursor = end;
        write_record(journal, &record)?;
        let longest = u64::try_from(longest.as_micros()).unwrap_or(u64::MAX);
        let mut progress = lock(&self.progress);
        let longest_hold_us = progress
            .as_ref()
            .map_or(0, |p| p.longest_hold_us)
            .max(longest);
        *progress = Some(RotationProgress {
            from,
            to,
            done: end,
            total,
            error: None,
            longest_hold_us,
        });
        Ok(Step::Working)
    }

    /// Puts both header copies and the preamble under the new key (see the module docs).
    fn finish_rotation(&self, journal: &dyn StorageBackend, total: u64) -> io::Result<Step> {
        let (old, new) = {
            let ciphers = read(&self.gate);
            match &ciphers.old {
                Some(old) => (Arc::clone(old), Arc::clone(&ciphers.seal)),
                None => return Ok(Step::Idle),
            }
        };
        let (from, to) = (old.preamble().key_id, new.preamble().key_id);
        if total > 0 {
            // Each round seals the scratch copy and syncs, which makes the other copy the
            // scratch one: two rounds cover both, unless redb's own header writes interleave.
            for _ in 0..8 {
                {
                    let mut header = lock(&self.header);
                    if header.slot_keys == [Some(to), Some(to)] {
                        break;
                    }
                    let plain = header.plain.clone().ok_or_else(|| {
                        io::Error::other("no header copy authenticates: the rotation cannot end")
                    })?;
                    self.seal_header_copy(&new, &mut header, plain)?;
                }
                self.sync()?;
            }
            if lock(&self.header).slot_keys != [Some(to), Some(to)] {
                return Err(io::Error::other(
                    "the header copies could not both be sealed under the new key yet",
                ));
            }
        }
        let mut on_disk = vec![0u8; PREAMBLE];
        self.physical.read(0, &mut on_disk)?;
        if !new.verify_preamble(&on_disk) {
            let preamble = new.seal_preamble()?;
            let record = Record {
                from,
                to,
                cursor: total,
                preamble: Some(preamble.clone()),
                blocks: Vec::new(),
            };
            write_record(journal, &record)?;
            journal.sync_data()?;
            self.physical.write(0, &preamble)?;
            self.physical.sync_data()?;
        }
        let mut progress = lock(&self.progress);
        let longest_hold_us = progress.as_ref().map_or(0, |p| p.longest_hold_us);
        *progress = Some(RotationProgress {
            from,
            to,
            done: total,
            total,
            error: None,
            longest_hold_us,
        });
        Ok(Step::Finished { from, to })
    }

    fn stopped(&self) -> bool {
        *lock(&self.stop.stopped)
    }

    /// Sleeps `duration`, or less if the backend closes meanwhile.
    fn pause(&self, duration: Duration) {
        let deadline = Instant::now() + duration;
        let mut stopped = lock(&self.stop.stopped);
        while !*stopped {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            stopped = self
                .stop
                .wake
                .wait_timeout(stopped, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    fn rotating(&self) -> bool {
        read(&self.gate).old.is_some()
    }

    fn note_failure(&self, error: &io::Error) {
        let (from, to, done) = {
            let ciphers = read(&self.gate);
            let Some(old) = &ciphers.old else {
                return;
            };
            let ids = (old.preamble().key_id, ciphers.seal.preamble().key_id);
            (ids.0, ids.1, ciphers.cursor)
        };
        let total = self.len.load(Ordering::Acquire) / BLOCK_U64;
        let mut progress = lock(&self.progress);
        let progress = progress.get_or_insert(RotationProgress {
            from,
            to,
            done,
            total,
            error: None,
            longest_hold_us: 0,
        });
        progress.error = Some(error.to_string());
    }
}

/// The maintenance thread: polls for a requested rotation, runs the pass paced by the duty
/// cycle, and drops the old key when it is done. Returns when the backend closes.
pub(crate) fn maintain(shared: Arc<Shared>, mut watch: Box<dyn KeyWatch>) {
    let mut finished: Option<(u32, u32)> = None;
    let mut logged = 0u64;
    while !shared.stopped() {
        if let Some((from, to)) = finished {
            match watch.finished(from, to) {
                Ok(()) => {
                    let longest_hold_us = lock(&shared.progress)
                        .as_ref()
                        .map_or(0, |p| p.longest_hold_us);
                    shared.end_rotation();
                    finished = None;
                    tracing::info!(
                        from,
                        to,
                        longest_hold_us,
                        "data-key rotation finished: every block is under the new key, and the \
                         old key is gone from the keyring"
                    );
                }
                Err(error) => {
                    tracing::warn!(from, to, %error, "cannot drop the old data key yet; retrying");
                    shared.pause(POLL);
                }
            }
            continue;
        }
        if !shared.rotating() {
            let current = read(&shared.gate).seal.preamble().key_id;
            if let Some((key, id)) = watch.requested(current) {
                match shared.begin_rotation(&key, id) {
                    Ok(()) => tracing::info!(
                        from = current,
                        to = id,
                        "data-key rotation started: new writes are sealed under the new key, \
                         the rest is re-sealed in the background"
                    ),
                    Err(error) => tracing::error!(%error, "cannot start the data-key rotation"),
                }
                continue;
            }
            shared.pause(POLL);
            continue;
        }
        let started = Instant::now();
        match shared.rotation_step() {
            Ok(Step::Working) => {
                let duty = lock(&shared.duty).clamp(0.01, 1.0);
                if let Some(p) = lock(&shared.progress).clone() {
                    let tenth = p.done.saturating_mul(10) / p.total.max(1);
                    if tenth > logged {
                        logged = tenth;
                        tracing::info!(
                            from = p.from,
                            to = p.to,
                            done = p.done,
                            total = p.total,
                            "data-key rotation progress"
                        );
                    }
                }
                shared.pause(started.elapsed().mul_f64((1.0 - duty) / duty));
            }
            Ok(Step::Finished { from, to }) => {
                logged = 0;
                finished = Some((from, to));
            }
            Ok(Step::Idle) => {}
            Err(error) => {
                tracing::error!(%error, "the data-key rotation stopped; it retries in 30 s");
                shared.note_failure(&error);
                shared.pause(RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_record_round_trips_and_any_torn_prefix_is_refused() {
        let record = Record {
            from: 1,
            to: 2,
            cursor: 77,
            preamble: Some(vec![5; PREAMBLE]),
            blocks: vec![(3, vec![7; SEALED]), (9, vec![8; SEALED])],
        };
        let bytes = record.encode();
        assert_eq!(Record::decode(&bytes), Some(record));
        for cut in (0..bytes.len()).step_by(211) {
            assert_eq!(Record::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[100] ^= 1;
        assert_eq!(Record::decode(&flipped), None);
    }
}
