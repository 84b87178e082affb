//! Segment data keys rewrapped under a new master key, so that a master key rotation does
//! not leave the older encrypted segments readable only with the key it retired.
//!
//! A segment's wrapped data key sits in its start record, which the chain covers: it cannot
//! be replaced in place. [`rewrap`] therefore writes the rewrapped keys to a file beside the
//! segments, [`KEYS_FILE`], one JSON line per segment:
//! `{"segment":N,"key_id":"<fingerprint of the wrapping master key>","data_key":"<base64>"}`.
//! Readers ([`SegmentOpener`]) try the start record's key first and this file's second.
//!
//! The file is not chained, and needs no more protection than the wrapping gives: a wrapped
//! key opens only under the master key (and only as an audit key); a key moved from another
//! segment opens, but none of this segment's records authenticate under it, and `verify`
//! names the first of them. Deleting the file loses nothing the old master key cannot
//! recover.
//!
//! **Invariants:** only [`rewrap`] writes the file, under an exclusive lock on
//! [`LOCK_FILE`], and replaces it atomically (a temporary file, fsynced, renamed, the
//! directory fsynced); the data keys themselves never change and are never written
//! unwrapped; entries of segments that retention deleted are dropped at the next rewrap.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::seal::{self, AeadKey, SegmentKeys};
use crate::segment;

/// The rewrapped keys, beside the segments.
pub const KEYS_FILE: &str = "segment-keys.jsonl";
/// Held (`flock`) while [`rewrap`] runs.
pub const LOCK_FILE: &str = "segment-keys.lock";
const TEMPORARY_FILE: &str = "segment-keys.jsonl.tmp";

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    segment: u64,
    key_id: String,
    data_key: String,
}

/// The entries of [`KEYS_FILE`]: segment number → the wrapping key's fingerprint and the
/// wrapped data key.
#[derive(Debug, Default)]
pub struct RewrappedKeys {
    by_segment: BTreeMap<u64, (String, Vec<u8>)>,
}

impl RewrappedKeys {
    /// Reads `dir`'s file; none is an empty set.
    pub fn load(dir: &Path) -> io::Result<RewrappedKeys> {
        let path = dir.join(KEYS_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Ok(RewrappedKeys::default());
            }
            Err(err) => return Err(err),
        };
        let mut by_segment = BTreeMap::new();
        for (index, line) in BufReader::new(file).lines().enumerate() {
            let line = line?;
            if line.is_empty() {
                continue;
            }
            let bad = || {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}, line {}: not a rewrapped key",
                        path.display(),
                        index + 1
                    ),
                )
            };
            let entry: Entry = serde_json::from_str(&line).map_err(|_| bad())?;
            let wrapped = seal::decode_wrapped(&entry.data_key).ok_or_else(bad)?;
            by_segment.insert(entry.segment, (entry.key_id, wrapped));
        }
        Ok(RewrappedKeys { by_segment })
    }

    /// The rewrapped data key of `segment`, if any.
    pub fn get(&self, segment: u64) -> Option<&[u8]> {
        self.by_segment
            .get(&segment)
            .map(|(_, wrapped)| wrapped.as_slice())
    }

    fn write(&self, dir: &Path) -> io::Result<()> {
        let temporary = dir.join(TEMPORARY_FILE);
        let mut out = Vec::new();
        for (segment, (key_id, wrapped)) in &self.by_segment {
            let entry = Entry {
                segment: *segment,
                key_id: key_id.clone(),
                data_key: seal::encode_wrapped(wrapped),
            };
            serde_json::to_writer(&mut out, &entry)?;
            out.push(b'\n');
        }
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temporary)?;
        file.write_all(&out)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, dir.join(KEYS_FILE))?;
        File::open(dir)?.sync_all()
    }
}

/// Opens the data keys of encrypted segments under one master key: the start record's
/// wrapped key, or failing that the segment's entry in [`KEYS_FILE`].
pub struct SegmentOpener<'a> {
    keys: &'a dyn SegmentKeys,
    rewrapped: RewrappedKeys,
}

impl<'a> SegmentOpener<'a> {
    /// Loads `dir`'s rewrapped keys.
    pub fn new(dir: &Path, keys: &'a dyn SegmentKeys) -> io::Result<SegmentOpener<'a>> {
        Ok(SegmentOpener {
            keys,
            rewrapped: RewrappedKeys::load(dir)?,
        })
    }

    /// The data key of segment `number`, whose start record holds `wrapped`.
    pub fn open(&self, number: u64, wrapped: &[u8]) -> Option<AeadKey> {
        self.keys.open(wrapped).or_else(|| {
            self.rewrapped
                .get(number)
                .and_then(|rewrapped| self.keys.open(rewrapped))
        })
    }

    /// The master key's public fingerprint.
    pub fn fingerprint(&self) -> String {
        self.keys.fingerprint()
    }
}

/// What [`rewrap`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Encrypted segments found.
    pub encrypted: u64,
    /// Segments whose key this call rewrapped.
    pub rewrapped: u64,
    /// Segments whose key already opened under the new master key.
    pub already: u64,
    /// Segments whose key opened under neither key: (segment, the `key_id` of its start
    /// record). Their entries, if any, are kept as they were.
    pub unopened: Vec<(u64, String)>,
}

/// Why [`rewrap`] failed.
#[derive(Debug, thiserror::Error)]
pub enum RewrapError {
    #[error("audit directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "another key rotation holds {path}: wait for it to finish (the lock goes with its process)"
    )]
    Busy { path: PathBuf },
}

/// Makes every encrypted segment of `dir` readable under the master key `new`: a segment
/// whose data key does not open under `new` gets the key rewrapped by `rewrap_key` (which
/// opens a wrapped key under the old master key and wraps it under `new`; `None` when it
/// does not open) in [`KEYS_FILE`].
///
/// Safe while a server appends to the log: it writes only [`KEYS_FILE`], and reads only
/// start records, which the writer finishes before it writes anything else in a segment.
/// Segments the server starts later are wrapped by whichever master key it runs with; run
/// this again after restarting it with `new`.
pub fn rewrap(
    dir: &Path,
    new: &dyn SegmentKeys,
    rewrap_key: &dyn Fn(&[u8]) -> Option<Vec<u8>>,
) -> Result<RewrapReport, RewrapError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RewrapError::Io { path, source }
    };
    let lock_path = dir.join(LOCK_FILE);
    let lock = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_err(&lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Err(RewrapError::Busy { path: lock_path }),
        Err(fs::TryLockError::Error(err)) => return Err(io_err(&lock_path)(err)),
    }

    let old = RewrappedKeys::load(dir).map_err(io_err(&dir.join(KEYS_FILE)))?;
    let mut kept = RewrappedKeys::default();
    let mut report = RewrapReport::default();
    let new_id = new.fingerprint();
    for number in segment::list(dir).map_err(io_err(dir))? {
        let path = segment::path(dir, number);
        let Some((key_id, wrapped)) = start_key(&path).map_err(io_err(&path))? else {
            continue;
        };
        report.encrypted += 1;
        let entry = old.by_segment.get(&number);
        if new.open(&wrapped).is_some() {
            report.already += 1;
            continue;
        }
        if let Some((id, rewrapped)) = entry
            && new.open(rewrapped).is_some()
        {
            report.already += 1;
            kept.by_segment
                .insert(number, (id.clone(), rewrapped.clone()));
            continue;
        }
        let fresh = rewrap_key(&wrapped)
            .or_else(|| entry.and_then(|(_, rewrapped)| rewrap_key(rewrapped)))
            .filter(|fresh| new.open(fresh).is_some());
        match fresh {
            Some(fresh) => {
                report.rewrapped += 1;
                kept.by_segment.insert(number, (new_id.clone(), fresh));
            }
            None => {
                report.unopened.push((number, key_id));
                if let Some(entry) = entry {
                    kept.by_segment.insert(number, entry.clone());
                }
            }
        }
    }
    kept.write(dir).map_err(io_err(&dir.join(KEYS_FILE)))?;
    drop(lock);
    Ok(report)
}

/// The `key_id` and wrapped data key of the segment at `path`; `None` for a plaintext
/// segment or one whose start record is not written yet.
fn start_key(path: &Path) -> io::Result<Option<(String, Vec<u8>)>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut buf = Vec::new();
    if segment::read_raw(&mut reader, &mut buf)?.is_none() {
        return Ok(None);
    }
    let Ok(line) = segment::parse(&buf) else {
        return Ok(None);
    };
    if line.kind() != Some(segment::START) {
        return Ok(None);
    }
    let Some(wrapped) = line.str_field("data_key").and_then(seal::decode_wrapped) else {
        return Ok(None);
    };
    let key_id = line.str_field("key_id").unwrap_or("(unknown)").to_owned();
    Ok(Some((key_id, wrapped)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::read::{Filter, ReadError, read_records};
    use crate::seal::testing::RawKeys;
    use crate::sink::AuditSink;
    use crate::verify::{VerifyError, verify};
    use crate::writer::tests::tagged;
    use crate::writer::{AuditWriter, WriterConfig};

    /// Appends `n` records tagged `tag-i` in segments of a few records each, encrypted under
    /// `keys`; returns the segment numbers now in `dir`.
    fn write(dir: &Path, keys: [u8; 32], tag: &str, n: usize) -> Vec<u64> {
        let mut config = WriterConfig::new(dir);
        config.encryption = Some(Arc::new(RawKeys(keys)));
        config.segment_bytes = 600;
        let writer = AuditWriter::open(config).unwrap();
        for i in 0..n {
            writer.record(tagged(&format!("{tag}-{i}")));
        }
        writer.close();
        segment::list(dir).unwrap()
    }

    fn tags(dir: &Path, keys: &RawKeys) -> Result<Vec<String>, ReadError> {
        let mut out = Vec::new();
        read_records(dir, &Filter::default(), Some(keys), |record| {
            let json: serde_json::Value = serde_json::from_slice(record).unwrap();
            if let Some(tag) = json["tags"].as_str() {
                out.push(tag.to_owned());
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn rewrap_raw(dir: &Path, old: [u8; 32], new: [u8; 32]) -> RewrapReport {
        let (old, new) = (RawKeys(old), RawKeys(new));
        rewrap(dir, &new, &|wrapped| new.rewrap_from(&old, wrapped)).unwrap()
    }

    const A: [u8; 32] = [1; 32];
    const B: [u8; 32] = [2; 32];
    const C: [u8; 32] = [3; 32];

    #[test]
    fn after_a_rewrap_the_new_master_key_reads_and_verifies_every_old_segment() {
        let dir = tempfile::tempdir().unwrap();
        let segments = write(dir.path(), A, "a", 12);
        let encrypted = u64::try_from(segments.len()).unwrap();
        assert!(encrypted > 2, "{segments:?}");
        let before = tags(dir.path(), &RawKeys(A)).unwrap();
        assert_eq!(before.len(), 12);
        assert!(matches!(
            tags(dir.path(), &RawKeys(B)),
            Err(ReadError::WrongKey { segment: 1, .. })
        ));

        let report = rewrap_raw(dir.path(), A, B);
        assert_eq!(
            (report.encrypted, report.rewrapped, report.already),
            (encrypted, encrypted, 0)
        );
        assert!(report.unopened.is_empty());
        assert_eq!(tags(dir.path(), &RawKeys(B)).unwrap(), before);
        let verified = verify(dir.path(), None, Some(&RawKeys(B))).unwrap();
        assert_eq!(verified.opened_records, 12);
        // The segments themselves are untouched: the old key still reads them.
        assert_eq!(tags(dir.path(), &RawKeys(A)).unwrap(), before);

        // Again: nothing to do, and the file keeps its entries.
        let again = rewrap_raw(dir.path(), A, B);
        assert_eq!((again.rewrapped, again.already), (0, encrypted));
        assert_eq!(tags(dir.path(), &RawKeys(B)).unwrap(), before);
    }

    #[test]
    fn a_second_rotation_rewraps_the_rewrapped_keys_and_the_segments_started_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let first = write(dir.path(), A, "a", 6).len();
        rewrap_raw(dir.path(), A, B);
        // The server restarted with B: its new segments are wrapped by B in their start
        // records.
        let all = write(dir.path(), B, "b", 6);
        assert!(all.len() > first);
        let before = tags(dir.path(), &RawKeys(B)).unwrap();
        assert_eq!(before.len(), 12);

        let report = rewrap_raw(dir.path(), B, C);
        let encrypted = u64::try_from(all.len()).unwrap();
        assert_eq!(
            (report.encrypted, report.rewrapped, report.already),
            (encrypted, encrypted, 0)
        );
        assert_eq!(tags(dir.path(), &RawKeys(C)).unwrap(), before);
        assert!(matches!(
            tags(dir.path(), &RawKeys(B)),
            Err(ReadError::WrongKey { .. })
        ));
        verify(dir.path(), None, Some(&RawKeys(C))).unwrap();
    }

    #[test]
    fn segments_neither_key_opens_are_named_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let segments = write(dir.path(), A, "a", 6);
        let report = rewrap_raw(dir.path(), C, B);
        assert_eq!(report.rewrapped, 0);
        let unopened: Vec<u64> = report.unopened.iter().map(|(n, _)| *n).collect();
        assert_eq!(unopened, segments);
        assert_eq!(report.unopened[0].1, RawKeys(A).fingerprint());
        assert!(
            RewrappedKeys::load(dir.path())
                .unwrap()
                .by_segment
                .is_empty()
        );
        assert!(tags(dir.path(), &RawKeys(B)).is_err());
        assert_eq!(tags(dir.path(), &RawKeys(A)).unwrap().len(), 6);
    }

    #[test]
    fn a_key_moved_to_another_segment_fails_verification_at_that_segment() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), A, "a", 12);
        rewrap_raw(dir.path(), A, B);
        let path = dir.path().join(KEYS_FILE);
        let text = fs::read_to_string(&path).unwrap();
        let mut entries: Vec<Entry> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let first = entries[0].data_key.clone();
        entries[0].data_key = entries[1].data_key.clone();
        entries[1].data_key = first;
        let swapped: String = entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        fs::write(&path, swapped).unwrap();
        match verify(dir.path(), None, Some(&RawKeys(B))) {
            Err(VerifyError::Broken(problem)) => {
                assert_eq!(problem.segment, entries[0].segment, "{problem}");
            }
            other => panic!("{other:?}"),
        }
        // A damaged file is an error, not a silent fallback.
        fs::write(&path, "not json\n").unwrap();
        assert!(matches!(
            tags(dir.path(), &RawKeys(B)),
            Err(ReadError::Io { .. })
        ));
    }

    #[test]
    fn entries_of_deleted_segments_are_dropped_and_a_held_lock_refuses_a_second_rewrap() {
        let dir = tempfile::tempdir().unwrap();
        let segments = write(dir.path(), A, "a", 12);
        rewrap_raw(dir.path(), A, B);
        // Retention deletes the oldest segments.
        fs::remove_file(segment::path(dir.path(), segments[0])).unwrap();
        rewrap_raw(dir.path(), A, B);
        let kept: Vec<u64> = RewrappedKeys::load(dir.path())
            .unwrap()
            .by_segment
            .keys()
            .copied()
            .collect();
        assert_eq!(kept, segments[1..]);

        let held = File::create(dir.path().join(LOCK_FILE)).unwrap();
        held.lock().unwrap();
        let (old, new) = (RawKeys(A), RawKeys(B));
        assert!(matches!(
            rewrap(dir.path(), &new, &|w| new.rewrap_from(&old, w)),
            Err(RewrapError::Busy { .. })
        ));
    }
}
