//! Taking a snapshot: reading every key (and all its versions) at one `Kv::begin` and writing
//! the backup file, chunk by chunk.
//!
//! [`write_snapshot`] streams into any `Write`; [`create_backup`] gives it a file in a
//! directory: it writes `.<name>.partial`, fsyncs it, renames it to its final name and fsyncs
//! the directory, so a backup that fails (a full disk, a read error, a crash) never carries a
//! final name. Its temporary file is removed on every error it sees.
//!
//! **Invariants:** one snapshot per backup, taken once (so the backup is consistent at its
//! timestamp, and writers are never blocked: a snapshot is a read); keys are written in
//! strictly ascending order and each key's versions strictly newest first, all at or below
//! the snapshot timestamp (the writer refuses anything else, so a reader can rely on it);
//! memory stays bounded by a few chunks (a queue of two between the reading thread and the
//! sealing thread) plus one value.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::aead::LessSafeKey;
use ring::digest::{Context, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use testudo_storage::{KeyRange, Kv, Snapshot, Version};
use testudo_storage_redb::keys::{DataKey, MasterKey};

use crate::format::{
    self, CHUNK_TARGET, CIPHER_AES_256_GCM, CIPHER_NONE, DIGEST_LEN, FORMAT_VERSION, KIND_CHUNK,
    KIND_MANIFEST, Preamble, TRAILER_MAGIC,
};
use crate::manifest::{Counter, Manifest, compact_stamp, rfc3339};
use crate::retention::{BACKUP_EXTENSION, KEPT_PREFIX, ROTATING_PREFIX};
use crate::{BackupError, Progress};

/// What to back up and how.
#[derive(Default)]
pub struct SnapshotOptions<'a> {
    /// Only keys starting with one of these (all keys when empty), e.g. the database-id
    /// prefixes of one database subtree.
    pub prefixes: Vec<Vec<u8>>,
    /// Encrypt with a fresh data key wrapped by this master key.
    pub master: Option<&'a MasterKey>,
    /// Checked between keys: once set, the backup stops with [`BackupError::Cancelled`].
    pub cancel: Option<&'a AtomicBool>,
    /// The share of wall time (0 < duty <= 1) the reading side may work: after each chunk
    /// it rests so that it works at most this share (a backup of a serving store takes
    /// longer and takes less from the queries). `None`: as fast as it can.
    pub duty: Option<f64>,
    /// A backup someone asked for (`Backup.create()`, a restore's safety backup): named
    /// `kept-…` instead of `testudo-…`, and never deleted by retention ([`crate::prune`]),
    /// so a schedule's `keep` cannot push it out.
    pub kept: bool,
}

/// Rests after each chunk so that reading works at most `duty` of the wall time.
struct Pacer {
    duty: Option<f64>,
    since: Instant,
}

impl Pacer {
    fn rest(&mut self, cancel: Option<&AtomicBool>) {
        let Some(duty) = self.duty.filter(|d| *d > 0.0 && *d < 1.0) else {
            return;
        };
        let worked = self.since.elapsed();
        // Bounded, in short naps, so a cancel is seen promptly.
        let mut rest = worked
            .mul_f64((1.0 - duty) / duty)
            .min(Duration::from_secs(10));
        while !rest.is_zero() && !cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            let nap = rest.min(Duration::from_millis(50));
            std::thread::sleep(nap);
            rest -= nap;
        }
        self.since = Instant::now();
    }
}

/// A backup file that was written.
#[derive(Clone, Debug)]
pub struct CreatedBackup {
    pub path: PathBuf,
    pub bytes: u64,
    pub manifest: Manifest,
}

/// Sorted prefixes with every prefix covered by a shorter one dropped, so their ranges are
/// disjoint and ascending.
pub fn normalize_prefixes(prefixes: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut sorted = prefixes.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(sorted.len());
    for prefix in sorted {
        if out.last().is_some_and(|last| prefix.starts_with(last)) {
            continue;
        }
        out.push(prefix);
    }
    out
}

/// Takes one snapshot of `kv` and writes it as a backup to `out`; returns the manifest and
/// `out`. `progress` gets the raw bytes written so far.
pub fn write_snapshot<W: Write + Send>(
    kv: &dyn Kv,
    options: &SnapshotOptions<'_>,
    out: W,
    progress: Progress<'_>,
) -> Result<(Manifest, W), BackupError> {
    let snapshot = kv.begin()?;
    write_from(snapshot.as_ref(), options, out, progress)
}

fn write_from<W: Write + Send>(
    snapshot: &dyn Snapshot,
    options: &SnapshotOptions<'_>,
    out: W,
    progress: Progress<'_>,
) -> Result<(Manifest, W), BackupError> {
    let ts = snapshot.ts();
    let prefixes = normalize_prefixes(&options.prefixes);
    let ranges = match prefixes.is_empty() {
        true => vec![KeyRange {
            start: Vec::new(),
            end: None,
        }],
        false => prefixes.iter().map(|p| KeyRange::prefix(p)).collect(),
    };
    let sealer = Sealer::new(out, ts.0, options.master)?;
    // Reading and encoding on this thread, compressing, sealing, hashing and writing on the
    // sealer's: a bounded queue of chunks between them keeps memory at a few chunks.
    let (chunks, queue) = sync_channel::<Vec<u8>>(2);
    std::thread::scope(|scope| {
        let sealing = std::thread::Builder::new()
            .name("testudo-backup-seal".into())
            .spawn_scoped(scope, move || {
                let mut sealer = sealer;
                for chunk in queue {
                    sealer.chunk(&chunk)?;
                }
                Ok::<_, BackupError>(sealer)
            })
            .map_err(|e| BackupError::Io(format!("cannot start the backup writer: {e}")))?;
        let mut emit = |chunk: Vec<u8>| {
            chunks
                .send(chunk)
                .map_err(|_| BackupError::Io("the backup writer stopped".into()))
        };
        let read = read_into(snapshot, ranges, options, progress, &mut emit);
        drop(chunks);
        let sealer = sealing
            .join()
            .map_err(|_| BackupError::Io("the backup writer thread panicked".into()));
        // A writer failure (a full disk) is the cause of the reader's "stopped": report it.
        let mut sealer = sealer??;
        let counter = read?;
        let manifest = sealer.finish(&counter, &prefixes)?;
        progress(manifest.raw_bytes);
        Ok((manifest, sealer.into_inner()))
    })
}

/// Reads every key of `ranges` with its versions into chunks handed to `emit`.
fn read_into(
    snapshot: &dyn Snapshot,
    ranges: Vec<KeyRange>,
    options: &SnapshotOptions<'_>,
    progress: Progress<'_>,
    emit: &mut dyn FnMut(Vec<u8>) -> Result<(), BackupError>,
) -> Result<Counter, BackupError> {
    let ts = snapshot.ts();
    let mut chunker = Chunker::new(ts.0);
    let mut reported = 0u64;
    let mut pacer = Pacer {
        duty: options.duty,
        since: Instant::now(),
    };
    let mut chunks = 0u64;
    for range in ranges {
        // Deleted keys too: their history is part of the store a restore must give back.
        for item in snapshot.scan_with_tombstones(range, ts)? {
            if options.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(BackupError::Cancelled);
            }
            let (key, newest) = item?;
            chunker.add(&key, &newest, emit)?;
            let older = (Bound::Unbounded, Bound::Excluded(newest.ts));
            for version in snapshot.versions(&key, older)? {
                chunker.add(&key, &version?, emit)?;
            }
            if chunker.chunks > chunks {
                chunks = chunker.chunks;
                pacer.rest(options.cancel);
            }
            if chunker.emitted >= reported + (1 << 20) {
                reported = chunker.emitted;
                progress(reported);
            }
        }
    }
    let counter = chunker.finish(emit)?;
    pacer.rest(options.cancel);
    Ok(counter)
}

/// Takes one snapshot of `kv` into a new file in `dir` (created if missing) and returns it.
pub fn create_backup(
    kv: &dyn Kv,
    dir: &Path,
    options: &SnapshotOptions<'_>,
    progress: Progress<'_>,
) -> Result<CreatedBackup, BackupError> {
    create_backup_with(kv, dir, options, progress, |file| file)
}

/// [`create_backup`] with the file wrapped by `wrap` (tests inject write failures with it).
pub(crate) fn create_backup_with<W: Write + Send>(
    kv: &dyn Kv,
    dir: &Path,
    options: &SnapshotOptions<'_>,
    progress: Progress<'_>,
    wrap: impl FnOnce(File) -> W,
) -> Result<CreatedBackup, BackupError> {
    std::fs::create_dir_all(dir).map_err(|e| BackupError::io(dir.display(), e))?;
    let temp = dir.join(format!(".{}.partial", format::hex(&random_bytes::<8>()?)));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(|e| BackupError::io(temp.display(), e))?;
    let written = write_temp(kv, options, progress, wrap(file), &temp);
    let (manifest, final_path) = match written.and_then(|manifest| {
        let prefix = if options.kept {
            KEPT_PREFIX
        } else {
            ROTATING_PREFIX
        };
        let name = format!(
            "{prefix}{}-{}.{BACKUP_EXTENSION}",
            compact_stamp(manifest.created_unix_ms),
            manifest.snapshot_ts
        );
        let final_path = dir.join(name);
        publish(&temp, &final_path, dir)?;
        Ok((manifest, final_path))
    }) {
        Ok(done) => done,
        Err(error) => {
            // The partial file must not survive the failure (it may also be what filled the
            // disk); if even removing it fails, it still never carries a final name.
            if let Err(remove) = std::fs::remove_file(&temp)
                && remove.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %temp.display(), %remove, "cannot remove a partial backup");
            }
            return Err(error);
        }
    };
    let bytes = std::fs::metadata(&final_path)
        .map_err(|e| BackupError::io(final_path.display(), e))?
        .len();
    Ok(CreatedBackup {
        path: final_path,
        bytes,
        manifest,
    })
}

fn write_temp<W: Write + Send>(
    kv: &dyn Kv,
    options: &SnapshotOptions<'_>,
    progress: Progress<'_>,
    out: W,
    temp: &Path,
) -> Result<Manifest, BackupError> {
    let out = BufWriter::with_capacity(1 << 20, out);
    let (manifest, out) = write_snapshot(kv, options, out, progress)?;
    out.into_inner()
        .map_err(|e| BackupError::io(temp.display(), e.into_error()))?;
    // The wrapped writer is dropped here; fsync through a fresh handle to the same file.
    File::open(temp)
        .and_then(|file| file.sync_all())
        .map_err(|e| BackupError::io(format!("syncing {}", temp.display()), e))?;
    Ok(manifest)
}

/// Gives the complete, synced temp file its final name, durably.
fn publish(temp: &Path, final_path: &Path, dir: &Path) -> Result<(), BackupError> {
    if final_path
        .try_exists()
        .map_err(|e| BackupError::io(final_path.display(), e))?
    {
        return Err(BackupError::Invalid(format!(
            "{} already exists",
            final_path.display()
        )));
    }
    std::fs::rename(temp, final_path).map_err(|e| BackupError::io(final_path.display(), e))?;
    sync_dir(dir)
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), BackupError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::io(format!("syncing {}", dir.display()), e))
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], BackupError> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| BackupError::Crypto("the system random generator failed".into()))?;
    Ok(out)
}

/// The associated data a backup's data key is wrapped with: bound to its backup id.
pub(crate) fn wrap_context(backup_id: &[u8; 16]) -> Vec<u8> {
    let mut context = format::WRAP_CONTEXT.to_vec();
    context.extend_from_slice(backup_id);
    context
}

/// A `Write` that counts the bytes through it.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Counting<W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), BackupError> {
        self.inner
            .write_all(bytes)
            .map_err(|e| BackupError::io("writing the backup", e))?;
        self.written += bytes.len() as u64;
        Ok(())
    }
}

/// Turns versions into chunks of records: keys ascending, each key's versions newest first.
pub(crate) struct Chunker {
    snapshot_ts: u64,
    /// Records of the chunk being filled.
    chunk: Vec<u8>,
    /// Versions of the record being filled, and how many.
    record: Vec<u8>,
    record_count: u64,
    /// The key being written (whose record is open), if any.
    current: Option<Vec<u8>>,
    last_ts: u64,
    /// Raw bytes handed out in chunks so far, and how many chunks.
    emitted: u64,
    chunks: u64,
    counter: Counter,
}

impl Chunker {
    pub(crate) fn new(snapshot_ts: u64) -> Chunker {
        Chunker {
            snapshot_ts,
            chunk: Vec::with_capacity(CHUNK_TARGET + (64 << 10)),
            record: Vec::new(),
            record_count: 0,
            current: None,
            last_ts: 0,
            emitted: 0,
            chunks: 0,
            counter: Counter::default(),
        }
    }

    /// Adds one version of `key`; a full chunk goes to `emit`.
    pub(crate) fn add(
        &mut self,
        key: &[u8],
        version: &Version,
        emit: &mut dyn FnMut(Vec<u8>) -> Result<(), BackupError>,
    ) -> Result<(), BackupError> {
        let ts = version.ts.0;
        if ts > self.snapshot_ts {
            return Err(BackupError::Invalid(format!(
                "a version at {ts} is newer than the snapshot at {}",
                self.snapshot_ts
            )));
        }
        match &self.current {
            Some(current) if current.as_slice() == key => {
                if ts >= self.last_ts {
                    return Err(BackupError::Invalid(
                        "a key's versions must come newest first".into(),
                    ));
                }
            }
            current => {
                if current.as_ref().is_some_and(|c| c.as_slice() >= key) {
                    return Err(BackupError::Invalid(
                        "keys must come in ascending order".into(),
                    ));
                }
                self.close_record();
                self.current = Some(key.to_vec());
                self.counter.key(key);
            }
        }
        self.last_ts = ts;
        let value = version.value.as_deref();
        format::put_version(&mut self.record, ts, value);
        self.record_count += 1;
        self.counter.version(key, value.is_none());
        if self.chunk.len() + self.record.len() + key.len() + 20 >= CHUNK_TARGET {
            // The key's further versions continue in a new record of the next chunk.
            self.close_record();
            self.emit(emit)?;
        }
        Ok(())
    }

    fn close_record(&mut self) {
        if self.record_count == 0 {
            return;
        }
        if let Some(key) = &self.current {
            format::put_record_head(&mut self.chunk, key, self.record_count);
            self.chunk.extend_from_slice(&self.record);
        }
        self.record.clear();
        self.record_count = 0;
    }

    fn emit(
        &mut self,
        emit: &mut dyn FnMut(Vec<u8>) -> Result<(), BackupError>,
    ) -> Result<(), BackupError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let next = Vec::with_capacity(CHUNK_TARGET + (64 << 10));
        let chunk = std::mem::replace(&mut self.chunk, next);
        self.emitted += chunk.len() as u64;
        self.chunks += 1;
        emit(chunk)
    }

    /// Hands out the last chunk; returns the counts.
    pub(crate) fn finish(
        mut self,
        emit: &mut dyn FnMut(Vec<u8>) -> Result<(), BackupError>,
    ) -> Result<Counter, BackupError> {
        self.close_record();
        self.emit(emit)?;
        Ok(self.counter)
    }
}

/// Writes the frames of one backup: preamble, chunks, manifest, trailer.
pub(crate) struct Sealer<W: Write> {
    out: Counting<W>,
    key: Option<LessSafeKey>,
    preamble: Preamble,
    preamble_digest: [u8; DIGEST_LEN],
    next_index: u64,
    raw_bytes: u64,
    chunks_digest: Context,
}

impl<W: Write> Sealer<W> {
    /// Starts a backup of a snapshot at `snapshot_ts`: writes the preamble.
    pub(crate) fn new(
        out: W,
        snapshot_ts: u64,
        master: Option<&MasterKey>,
    ) -> Result<Sealer<W>, BackupError> {
        let backup_id = random_bytes::<16>()?;
        let created_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        let (cipher, key, key_id, wrapped_key) = match master {
            None => (CIPHER_NONE, None, String::new(), Vec::new()),
            Some(master) => {
                let data = DataKey::generate()?;
                let wrapped = master.wrap(&data, &wrap_context(&backup_id))?;
                (
                    CIPHER_AES_256_GCM,
                    Some(data.aead_key()),
                    master.fingerprint().to_string(),
                    wrapped.as_bytes().to_vec(),
                )
            }
        };
        let preamble = Preamble {
            cipher,
            backup_id,
            snapshot_ts,
            created_unix_ms,
            key_id,
            wrapped_key,
        };
        let bytes = preamble.encode();
        let (_, preamble_digest, _) = Preamble::decode(&bytes)?;
        let mut out = Counting {
            inner: out,
            written: 0,
        };
        out.put(&bytes)?;
        Ok(Sealer {
            out,
            key,
            preamble,
            preamble_digest,
            next_index: 0,
            raw_bytes: 0,
            chunks_digest: Context::new(&SHA256),
        })
    }

    /// Writes the next chunk.
    pub(crate) fn chunk(&mut self, raw: &[u8]) -> Result<(), BackupError> {
        let checksum = self.frame(KIND_CHUNK, self.next_index, raw)?;
        self.chunks_digest.update(&checksum);
        self.raw_bytes += raw.len() as u64;
        self.next_index += 1;
        Ok(())
    }

    /// Writes one frame; returns its checksum.
    fn frame(&mut self, kind: u8, index: u64, raw: &[u8]) -> Result<[u8; DIGEST_LEN], BackupError> {
        let (header, stored) =
            format::seal_frame(kind, index, raw, self.key.as_ref(), &self.preamble_digest)?;
        let header = header.encode();
        let checksum = format::frame_checksum(&self.preamble_digest, &header, &stored);
        self.out.put(&header)?;
        self.out.put(&stored)?;
        self.out.put(&checksum)?;
        Ok(checksum)
    }

    /// Writes the manifest (from `counter` and the chunks written) and the trailer.
    pub(crate) fn finish(
        &mut self,
        counter: &Counter,
        prefixes: &[Vec<u8>],
    ) -> Result<Manifest, BackupError> {
        let preamble = &self.preamble;
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            backup_id: format::hex(&preamble.backup_id),
            snapshot_ts: preamble.snapshot_ts,
            created_unix_ms: preamble.created_unix_ms,
            created: rfc3339(preamble.created_unix_ms),
            encryption: match preamble.cipher {
                CIPHER_AES_256_GCM => "aes-256-gcm".into(),
                _ => "none".into(),
            },
            key_id: (!preamble.key_id.is_empty()).then(|| preamble.key_id.clone()),
            compression: "lz4".into(),
            prefixes: prefixes.iter().map(|p| format::hex(p)).collect(),
            keys: counter.keys,
            versions: counter.versions,
            tombstones: counter.tombstones,
            raw_bytes: self.raw_bytes,
            chunks: self.next_index,
            chunks_digest: format::hex(self.chunks_digest.clone().finish().as_ref()),
            databases: counter.databases(),
            other_keys: counter.other_keys,
        };
        let json = serde_json::to_vec(&manifest)
            .map_err(|e| BackupError::Invalid(format!("cannot encode the manifest: {e}")))?;
        let offset = self.out.written;
        self.frame(KIND_MANIFEST, self.next_index, &json)?;
        self.out.put(TRAILER_MAGIC)?;
        self.out.put(&offset.to_be_bytes())?;
        self.out
            .inner
            .flush()
            .map_err(|e| BackupError::io("writing the backup", e))?;
        Ok(manifest)
    }

    pub(crate) fn into_inner(self) -> W {
        self.out.inner
    }
}

/// Keys with their versions (timestamp, value), for tests.
#[cfg(test)]
pub(crate) type TestRecords<'a> = [(&'a [u8], Vec<(u64, Option<&'a [u8]>)>)];

/// For tests: write a backup of explicit records.
#[cfg(test)]
pub(crate) fn write_records(
    snapshot_ts: u64,
    master: Option<&MasterKey>,
    records: &TestRecords<'_>,
) -> Vec<u8> {
    let mut sealer = Sealer::new(Vec::new(), snapshot_ts, master).unwrap();
    let mut chunker = Chunker::new(snapshot_ts);
    let mut emit = |chunk: Vec<u8>| sealer.chunk(&chunk);
    for (key, versions) in records {
        for (ts, value) in versions {
            let version = Version {
                ts: testudo_storage::Ts(*ts),
                value: value.map(<[u8]>::to_vec),
            };
            chunker.add(key, &version, &mut emit).unwrap();
        }
    }
    let counter = chunker.finish(&mut emit).unwrap();
    sealer.finish(&counter, &[]).unwrap();
    sealer.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_prefixes_collapse_to_the_shortest() {
        let prefixes = vec![
            b"ab".to_vec(),
            b"a".to_vec(),
            b"b".to_vec(),
            b"abc".to_vec(),
        ];
        assert_eq!(
            normalize_prefixes(&prefixes),
            vec![b"a".to_vec(), b"b".to_vec()]
        );
    }

    #[test]
    fn the_writer_refuses_keys_out_of_order_and_versions_oldest_first() {
        let version = |ts| Version {
            ts: testudo_storage::Ts(ts),
            value: Some(b"v".to_vec()),
        };
        let mut chunker = Chunker::new(100);
        let mut emit = |_: Vec<u8>| Ok(());
        chunker.add(b"b", &version(5), &mut emit).unwrap();
        assert!(chunker.add(b"b", &version(6), &mut emit).is_err());
        assert!(chunker.add(b"a", &version(1), &mut emit).is_err());
        assert!(chunker.add(b"c", &version(101), &mut emit).is_err());
    }

    /// A file that accepts `room` bytes, then fails like a full disk.
    struct FullDisk {
        file: File,
        room: usize,
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.len() > self.room {
                return Err(std::io::Error::from_raw_os_error(28));
            }
            self.room -= buf.len();
            self.file.write(buf)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            self.file.flush()
        }
    }

    fn filled_store() -> testudo_storage::LocalKv<testudo_storage::MemBackend> {
        let kv = testudo_storage::LocalKv::in_memory().unwrap();
        let writes = (0..2000u32)
            .map(|i| (i.to_be_bytes().to_vec(), Some(vec![i as u8; 3000])))
            .collect();
        let txn = testudo_storage::WriteSet {
            writes,
            ..Default::default()
        };
        kv.commit(txn, None).unwrap();
        kv
    }

    #[test]
    fn a_backup_that_fills_the_disk_fails_cleanly_and_leaves_no_file() {
        let kv = filled_store();
        let dir = tempfile::tempdir().unwrap();
        let options = SnapshotOptions::default();
        let error = create_backup_with(&kv, dir.path(), &options, &crate::no_progress, |file| {
            FullDisk { file, room: 10_000 }
        })
        .unwrap_err();
        assert!(error.to_string().contains("No space left"), "{error}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // The store is untouched and a later backup with room succeeds.
        let created = create_backup(&kv, dir.path(), &options, &crate::no_progress).unwrap();
        assert_eq!(created.manifest.keys, 2000);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
