//! Reading a backup file: its preamble and trailer ([`inspect`]), its chunks in order, its
//! manifest, and [`verify`], which checks all of them without restoring.
//!
//! Verification order: the preamble's checksum; the trailer (absent: truncated); with a key,
//! the wrapped data key (wrong master key is named as such); then every frame in order — its
//! checksum, its position (index), its authentication tag and its decompression, and the
//! records inside (keys ascending, versions newest first, none after the snapshot); finally
//! the manifest, whose counts and digest of chunk checksums must equal what the chunks held.
//! A dropped, repeated or reordered chunk breaks the index sequence or the digest; a cut file
//! lacks the trailer or breaks the framing.
//!
//! **Invariants:** no read trusts a length from the file before bounding it (a frame is at
//! most [`MAX_FRAME`](crate::MAX_FRAME) raw bytes and must fit before the manifest); an
//! encrypted backup without its key is checked by checksums only and reported as not
//! authenticated, never as fully verified.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ring::aead::LessSafeKey;
use ring::digest::{Context, SHA256};
use testudo_storage_redb::keys::{MasterKey, WrappedKey};

use crate::format::{
    self, CIPHER_AES_256_GCM, DIGEST_LEN, FRAME_HEADER_LEN, FrameHeader, KIND_CHUNK, KIND_MANIFEST,
    MAX_FRAME, MAX_PREAMBLE, Preamble, Record, TRAILER_LEN, TRAILER_MAGIC,
};
use crate::manifest::{Counter, Manifest};
use crate::write::wrap_context;
use crate::{BackupError, Progress};

/// What a backup's preamble and trailer say (cheap: reads a few hundred bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupInfo {
    pub path: PathBuf,
    pub bytes: u64,
    pub snapshot_ts: u64,
    pub created_unix_ms: u64,
    pub encrypted: bool,
    /// The fingerprint of the master key that wrapped its data key.
    pub key_id: Option<String>,
    /// Whether the trailer is there (a file without it is cut or was never finished).
    pub complete: bool,
}

/// What [`verify`] checked.
#[derive(Clone, Debug)]
pub struct VerifyReport {
    pub info: BackupInfo,
    pub chunks: u64,
    /// `None` for an encrypted backup read without its key.
    pub manifest: Option<Manifest>,
    /// Every frame authenticated and decoded (false: checksums only, no key).
    pub authenticated: bool,
}

/// Reads the preamble and trailer of `path`.
pub fn inspect(path: &Path) -> Result<BackupInfo, BackupError> {
    let mut file = File::open(path).map_err(|e| BackupError::io(path.display(), e))?;
    let (info, _) = read_head(&mut file, path)?;
    Ok(info)
}

/// Checks every chunk and the manifest of `path` without restoring it. With the master key
/// (required to authenticate an encrypted backup) every frame is opened and decoded; without
/// it an encrypted backup is checked by checksums only. `progress` gets file bytes read.
pub fn verify(
    path: &Path,
    master: Option<&MasterKey>,
    progress: Progress<'_>,
) -> Result<VerifyReport, BackupError> {
    let checksums_only = master.is_none();
    let mut reader = Reader::open(path, master, checksums_only)?;
    let authenticated = reader.key.is_some() || !reader.encrypted();
    while reader.next_chunk()?.is_some() {
        progress(reader.position);
    }
    let manifest = reader.manifest()?;
    progress(reader.info.bytes);
    Ok(VerifyReport {
        info: reader.info.clone(),
        chunks: reader.next_index,
        manifest,
        authenticated,
    })
}

fn read_head(file: &mut File, path: &Path) -> Result<(BackupInfo, Head), BackupError> {
    let io = |e| BackupError::io(path.display(), e);
    let bytes = file.metadata().map_err(io)?.len();
    let mut head = Vec::with_capacity(MAX_PREAMBLE);
    file.by_ref()
        .take(MAX_PREAMBLE as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    let (preamble, digest, body_start) = match Preamble::decode(&head) {
        Err(BackupError::Damaged { reason, .. }) if reason.starts_with("it ends early") => {
            return Err(BackupError::Truncated(
                "the file ends inside its preamble".into(),
            ));
        }
        other => other?,
    };
    let body_start = body_start as u64;
    let manifest_offset = match bytes.checked_sub(TRAILER_LEN as u64) {
        Some(at) if at >= body_start => {
            let mut trailer = [0u8; TRAILER_LEN];
            file.seek(SeekFrom::Start(at)).map_err(io)?;
            file.read_exact(&mut trailer).map_err(io)?;
            let (magic, offset) = trailer.split_at(8);
            let mut offset_bytes = [0u8; 8];
            offset_bytes.copy_from_slice(offset);
            let offset = u64::from_be_bytes(offset_bytes);
            (magic == TRAILER_MAGIC && offset >= body_start && offset < at).then_some(offset)
        }
        _ => None,
    };
    let info = BackupInfo {
        path: path.to_path_buf(),
        bytes,
        snapshot_ts: preamble.snapshot_ts,
        created_unix_ms: preamble.created_unix_ms,
        encrypted: preamble.cipher == CIPHER_AES_256_GCM,
        key_id: (!preamble.key_id.is_empty()).then(|| preamble.key_id.clone()),
        complete: manifest_offset.is_some(),
    };
    let head = Head {
        preamble,
        digest,
        body_start,
        manifest_offset,
    };
    Ok((info, head))
}

/// A frame's header, stored bytes and checksum.
type Frame = (FrameHeader, Vec<u8>, [u8; DIGEST_LEN]);

struct Head {
    preamble: Preamble,
    digest: [u8; DIGEST_LEN],
    body_start: u64,
    manifest_offset: Option<u64>,
}

/// A checked, sequential reader of one backup file.
pub(crate) struct Reader {
    pub(crate) info: BackupInfo,
    input: BufReader<File>,
    preamble: Preamble,
    digest: [u8; DIGEST_LEN],
    key: Option<LessSafeKey>,
    checksums_only: bool,
    manifest_offset: u64,
    pub(crate) position: u64,
    pub(crate) next_index: u64,
    chunks_digest: Context,
    validator: Validator,
}

impl Reader {
    /// Opens `path`. An encrypted backup needs `master` unless `checksums_only`.
    pub(crate) fn open(
        path: &Path,
        master: Option<&MasterKey>,
        checksums_only: bool,
    ) -> Result<Reader, BackupError> {
        let mut file = File::open(path).map_err(|e| BackupError::io(path.display(), e))?;
        let (info, head) = read_head(&mut file, path)?;
        let Some(manifest_offset) = head.manifest_offset else {
            return Err(BackupError::Truncated(format!(
                "{} has no trailer: it was cut or never finished",
                path.display()
            )));
        };
        let key = match (info.encrypted, master) {
            (false, _) => None,
            (true, None) if checksums_only => None,
            (true, None) => {
                return Err(BackupError::NeedsKey {
                    key_id: head.preamble.key_id.clone(),
                });
            }
            (true, Some(master)) => Some(unwrap_key(&head.preamble, master)?),
        };
        file.seek(SeekFrom::Start(head.body_start))
            .map_err(|e| BackupError::io(path.display(), e))?;
        Ok(Reader {
            input: BufReader::with_capacity(1 << 20, file),
            validator: Validator::new(head.preamble.snapshot_ts),
            preamble: head.preamble,
            digest: head.digest,
            checksums_only,
            key,
            manifest_offset,
            position: head.body_start,
            next_index: 0,
            chunks_digest: Context::new(&SHA256),
            info,
        })
    }

    fn encrypted(&self) -> bool {
        self.info.encrypted
    }

    /// Whether frames are opened and decoded (not just checksummed).
    fn decodes(&self) -> bool {
        !self.checksums_only || !self.encrypted() || self.key.is_some()
    }

    /// Reads one frame that must end at or before `limit`; checks its checksum and returns
    /// it with the frame.
    fn frame(&mut self, limit: u64, what: &str) -> Result<Frame, BackupError> {
        let damaged = |reason: String| BackupError::Damaged {
            what: what.to_owned(),
            reason,
        };
        let mut header_bytes = [0u8; FRAME_HEADER_LEN];
        self.read(&mut header_bytes, what)?;
        let header = FrameHeader::decode(&header_bytes);
        let raw_len = header.raw_len as usize;
        let stored_len = header.stored_len as usize;
        if raw_len > MAX_FRAME || stored_len > FrameHeader::max_stored(raw_len) {
            return Err(damaged("its header claims impossible lengths".into()));
        }
        let end = self.position + (stored_len + DIGEST_LEN) as u64;
        if end > limit {
            return Err(damaged("it runs past where the file says it ends".into()));
        }
        let mut stored = vec![0u8; stored_len];
        self.read(&mut stored, what)?;
        let mut checksum = [0u8; DIGEST_LEN];
        self.read(&mut checksum, what)?;
        if checksum != format::frame_checksum(&self.digest, &header_bytes, &stored) {
            return Err(damaged("its checksum does not match".into()));
        }
        Ok((header, stored, checksum))
    }

    fn read(&mut self, buf: &mut [u8], what: &str) -> Result<(), BackupError> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                BackupError::Truncated(format!("the file ends inside {what}"))
            }
            _ => BackupError::io(self.info.path.display(), e),
        })?;
        self.position += buf.len() as u64;
        Ok(())
    }

    /// The next chunk's records (empty when only checksums are checked); `None` once every
    /// chunk has been read.
    pub(crate) fn next_chunk(&mut self) -> Result<Option<Vec<Record>>, BackupError> {
        if self.position == self.manifest_offset {
            return Ok(None);
        }
        let what = format!("chunk {}", self.next_index);
        let (header, stored, checksum) = self.frame(self.manifest_offset, &what)?;
        if header.kind != KIND_CHUNK || header.index != self.next_index {
            return Err(BackupError::Damaged {
                what,
                reason: format!(
                    "a frame of kind {} with index {} is in its place (chunks reordered, \
                     dropped or repeated)",
                    header.kind, header.index
                ),
            });
        }
        self.chunks_digest.update(&checksum);
        self.next_index += 1;
        if !self.decodes() {
            return Ok(Some(Vec::new()));
        }
        let raw = format::open_frame(&header, stored, self.key.as_ref(), &self.digest, &what)?;
        let records = format::decode_records(&raw, &what)?;
        self.validator.chunk(&records, raw.len() as u64, &what)?;
        Ok(Some(records))
    }

    /// Reads and checks the manifest (after every chunk). `None` when it cannot be opened
    /// (an encrypted backup checked without its key).
    pub(crate) fn manifest(&mut self) -> Result<Option<Manifest>, BackupError> {
        let what = "the manifest";
        let damaged = |reason: String| BackupError::Damaged {
            what: what.to_owned(),
            reason,
        };
        if self.position != self.manifest_offset {
            return Err(damaged("it is not where the trailer says".into()));
        }
        let limit = self.info.bytes - TRAILER_LEN as u64;
        let (header, stored, _) = self.frame(limit, what)?;
        if self.position != limit {
            return Err(damaged("bytes follow it before the trailer".into()));
        }
        if header.kind != KIND_MANIFEST || header.index != self.next_index {
            return Err(damaged(format!(
                "it counts {} chunks where {} were read (chunks dropped or added)",
                header.index, self.next_index
            )));
        }
        if !self.decodes() {
            return Ok(None);
        }
        let raw = format::open_frame(&header, stored, self.key.as_ref(), &self.digest, what)?;
        let manifest: Manifest =
            serde_json::from_slice(&raw).map_err(|e| damaged(format!("it does not parse: {e}")))?;
        let digest = format::hex(self.chunks_digest.clone().finish().as_ref());
        let counts = &self.validator.counter;
        let checks = [
            (manifest.chunks == self.next_index, "the number of chunks"),
            (manifest.chunks_digest == digest, "the digest of the chunks"),
            (
                manifest.snapshot_ts == self.preamble.snapshot_ts,
                "the timestamp",
            ),
            (manifest.keys == counts.keys, "the number of keys"),
            (
                manifest.versions == counts.versions,
                "the number of versions",
            ),
            (
                manifest.tombstones == counts.tombstones,
                "the number of tombstones",
            ),
            (
                manifest.raw_bytes == counts.raw_bytes,
                "the number of bytes",
            ),
            (
                manifest.backup_id == format::hex(&self.preamble.backup_id),
                "the backup id",
            ),
        ];
        if let Some((_, field)) = checks.iter().find(|(ok, _)| !ok) {
            return Err(damaged(format!(
                "{field} differs from what the chunks hold"
            )));
        }
        Ok(Some(manifest))
    }
}

fn unwrap_key(preamble: &Preamble, master: &MasterKey) -> Result<LessSafeKey, BackupError> {
    let given = master.fingerprint().to_string();
    if given != preamble.key_id {
        return Err(BackupError::WrongKey {
            expected: preamble.key_id.clone(),
            given,
        });
    }
    let damaged = || BackupError::Damaged {
        what: "the wrapped data key".into(),
        reason: "it does not unwrap with the master key it names".into(),
    };
    let wrapped = WrappedKey::from_bytes(&preamble.wrapped_key).ok_or_else(damaged)?;
    let key = master
        .unwrap(&wrapped, &wrap_context(&preamble.backup_id))
        .ok_or_else(damaged)?;
    Ok(key.aead_key())
}

/// Checks the order the writer promises, across chunks, and counts what it sees.
struct Validator {
    snapshot_ts: u64,
    last_key: Option<Vec<u8>>,
    last_ts: u64,
    counter: Counter,
}

impl Validator {
    fn new(snapshot_ts: u64) -> Validator {
        Validator {
            snapshot_ts,
            last_key: None,
            last_ts: 0,
            counter: Counter::default(),
        }
    }

    fn chunk(&mut self, records: &[Record], raw_len: u64, what: &str) -> Result<(), BackupError> {
        let damaged = |reason: &str| BackupError::Damaged {
            what: what.to_owned(),
            reason: reason.to_owned(),
        };
        for (i, record) in records.iter().enumerate() {
            if record.versions.is_empty() {
                return Err(damaged("a record has no versions"));
            }
            let continues = self.last_key.as_deref() == Some(record.key.as_slice());
            // Only a chunk's first record may continue the previous chunk's last key.
            if continues && i > 0 {
                return Err(damaged("a key is repeated"));
            }
            if !continues {
                if self
                    .last_key
                    .as_deref()
                    .is_some_and(|last| last > record.key.as_slice())
                {
                    return Err(damaged("keys are out of order"));
                }
                self.counter.key(&record.key);
                self.last_ts = u64::MAX;
                self.last_key = Some(record.key.clone());
            }
            for version in &record.versions {
                if version.ts >= self.last_ts || version.ts > self.snapshot_ts {
                    return Err(damaged("versions are out of order or after the snapshot"));
                }
                self.last_ts = version.ts;
                self.counter.version(&record.key, version.value.is_none());
            }
        }
        self.counter.raw_bytes += raw_len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::no_progress;
    use crate::write::write_records;
    use testudo_storage_redb::keys::KEY_LEN;
    use zeroize::Zeroizing;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&Zeroizing::new([byte; KEY_LEN]))
    }

    const KEYS: u32 = 6000;

    /// A backup of many keys (several chunks) written to a temp file.
    fn sample(master: Option<&MasterKey>) -> (tempfile::TempDir, PathBuf, Vec<u8>) {
        // Poorly compressible values (xorshift), so the records fill several chunks.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        };
        let values: Vec<Vec<u8>> = (0..KEYS)
            .map(|_| (0..1500).map(|_| next()).collect())
            .collect();
        let keys: Vec<Vec<u8>> = (0..KEYS).map(|i| i.to_be_bytes().to_vec()).collect();
        let records: Vec<_> = keys
            .iter()
            .zip(&values)
            .map(|(k, v)| (k.as_slice(), vec![(50, Some(v.as_slice())), (10, None)]))
            .collect();
        let bytes = write_records(100, master, &records);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.tbk");
        std::fs::write(&path, &bytes).unwrap();
        (dir, path, bytes)
    }

    /// Where each chunk frame starts, from the file's own framing.
    fn chunk_offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
        let (_, _, mut at) = Preamble::decode(bytes).unwrap();
        let manifest_at = u64::from_be_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
        let mut out = Vec::new();
        while (at as u64) < manifest_at {
            let header: [u8; FRAME_HEADER_LEN] =
                bytes[at..at + FRAME_HEADER_LEN].try_into().unwrap();
            let len =
                FRAME_HEADER_LEN + FrameHeader::decode(&header).stored_len as usize + DIGEST_LEN;
            out.push((at, len));
            at += len;
        }
        out
    }

    #[test]
    fn a_clean_backup_verifies_with_its_counts() {
        let (_dir, path, bytes) = sample(None);
        let report = verify(&path, None, &no_progress).unwrap();
        assert!(report.chunks >= 3, "the sample should span chunks");
        assert_eq!(report.chunks as usize, chunk_offsets(&bytes).len());
        let manifest = report.manifest.unwrap();
        assert_eq!(
            (manifest.keys, manifest.versions, manifest.tombstones),
            (6000, 12000, 6000)
        );
        assert!(report.authenticated);
    }

    #[test]
    fn a_flipped_byte_in_a_chunk_is_named_by_verify() {
        for master in [None, Some(master(1))] {
            let (_dir, path, mut bytes) = sample(master.as_ref());
            let (at, len) = chunk_offsets(&bytes)[1];
            bytes[at + len / 2] ^= 0x04;
            std::fs::write(&path, &bytes).unwrap();
            let error = verify(&path, master.as_ref(), &no_progress).unwrap_err();
            assert!(
                error.to_string().starts_with("chunk 1 is damaged"),
                "{error}"
            );
        }
    }

    #[test]
    fn every_truncation_is_refused() {
        let (_dir, path, bytes) = sample(None);
        let offsets = chunk_offsets(&bytes);
        let cuts = [
            0,
            10,
            offsets[0].0,
            offsets[1].0,
            offsets[1].0 + 5,
            bytes.len() - TRAILER_LEN,
            bytes.len() - 1,
        ];
        for cut in cuts {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            let error = verify(&path, None, &no_progress).unwrap_err();
            assert!(
                matches!(error, BackupError::Truncated(_) | BackupError::NotABackup),
                "cut at {cut}: {error}"
            );
        }
    }

    #[test]
    fn reordered_or_dropped_chunks_are_refused() {
        for master in [None, Some(master(1))] {
            let (_dir, path, bytes) = sample(master.as_ref());
            let offsets = chunk_offsets(&bytes);
            let (a, b) = (offsets[0], offsets[1]);
            // Swap chunks 0 and 1 and fix the trailer's manifest offset (unchanged: same
            // total length), as an attacker or a broken copy tool might.
            let mut swapped = bytes[..a.0].to_vec();
            swapped.extend_from_slice(&bytes[b.0..b.0 + b.1]);
            swapped.extend_from_slice(&bytes[a.0..a.0 + a.1]);
            swapped.extend_from_slice(&bytes[b.0 + b.1..]);
            std::fs::write(&path, &swapped).unwrap();
            let error = verify(&path, master.as_ref(), &no_progress).unwrap_err();
            assert!(
                error.to_string().starts_with("chunk 0 is damaged"),
                "{error}"
            );

            // Drop chunk 1, and rewrite the trailer so the framing is consistent.
            let mut dropped = bytes[..b.0].to_vec();
            dropped.extend_from_slice(&bytes[b.0 + b.1..bytes.len() - 8]);
            let manifest_at = u64::from_be_bytes(bytes[bytes.len() - 8..].try_into().unwrap());
            dropped.extend_from_slice(&(manifest_at - b.1 as u64).to_be_bytes());
            std::fs::write(&path, &dropped).unwrap();
            let error = verify(&path, master.as_ref(), &no_progress).unwrap_err();
            assert!(
                error.to_string().starts_with("chunk 1 is damaged"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_wrong_master_key_or_none_is_refused_by_name() {
        let key = master(1);
        let (_dir, path, _) = sample(Some(&key));
        let error = verify(&path, Some(&master(2)), &no_progress).unwrap_err();
        assert!(matches!(error, BackupError::WrongKey { .. }), "{error}");
        assert!(matches!(
            Reader::open(&path, None, false),
            Err(BackupError::NeedsKey { .. })
        ));
        // Without a key, checksums still verify, but the report says it is not authenticated.
        let report = verify(&path, None, &no_progress).unwrap();
        assert!(!report.authenticated);
        assert!(report.manifest.is_none());
        assert!(
            verify(&path, Some(&key), &no_progress)
                .unwrap()
                .authenticated
        );
    }

    #[test]
    fn an_encrypted_backup_does_not_show_its_values() {
        let (_dir, _path, bytes) = sample(Some(&master(1)));
        let plain = sample(None).2;
        // A value's leading bytes appear in the plaintext backup's compressed stream but not
        // in the encrypted one.
        let needle: Vec<u8> = plain[200..232].to_vec();
        assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_slice()));
    }

    #[test]
    fn a_flipped_byte_in_the_manifest_or_trailer_is_refused() {
        let (_dir, path, bytes) = sample(Some(&master(1)));
        let manifest_at = u64::from_be_bytes(bytes[bytes.len() - 8..].try_into().unwrap()) as usize;
        for at in [
            manifest_at + 3,
            manifest_at + 40,
            bytes.len() - 3,
            bytes.len() - 12,
        ] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            std::fs::write(&path, &damaged).unwrap();
            assert!(
                verify(&path, Some(&master(1)), &no_progress).is_err(),
                "byte {at}"
            );
        }
    }
}
