//! The backup file's bytes (format version 1): preamble, frames, trailer, and the records
//! inside a chunk. Everything that reads or writes a byte of a backup file goes through here.
//!
//! ```text
//! preamble  magic "TSTDBKUP" | version u16 | cipher u8 | compression u8 | backup id [16]
//!           | snapshot ts u64 | created unix ms u64 | key id len u16 | key id (ASCII)
//!           | wrapped data key len u16 | wrapped data key | SHA-256 of all the above [32]
//! frame*    kind u8 | index u64 | raw len u32 | stored len u32 | stored bytes
//!           | SHA-256(preamble digest | frame header | stored bytes) [32]
//! trailer   magic "TSTDEND1" | offset of the manifest frame u64
//! ```
//!
//! All integers are big-endian. Frames are the chunks (kind 1, indexes 0, 1, 2, … in order)
//! then exactly one manifest frame (kind 2, index = the number of chunks). A frame's stored
//! bytes are its raw bytes compressed with LZ4 (block format) and, when the cipher is
//! AES-256-GCM, sealed under the backup's data key with the nonce `0 0 0 kind | index` and
//! the frame header (with the preamble digest) as associated data, so a frame moved to another
//! position, another file, or altered in any byte fails to open. The data key is fresh for
//! every backup and each (kind, index) occurs once per file, so no nonce is ever reused.
//!
//! A chunk's raw bytes are records: `key len varint | key | count varint | count × (ts u64 |
//! tag u8 (0 tombstone, 1 value) | [value len varint | value])`, keys strictly ascending
//! across the file (a key whose versions do not fit one chunk continues in the next chunk's
//! first record), versions of a key strictly newest first.
//!
//! **Invariants:** decoding never panics and never allocates more than [`MAX_FRAME`] for one
//! frame whatever the file says; every length is checked before it is used; a file without
//! its trailer is reported as truncated, never as a complete backup.

use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use ring::digest::{Context, SHA256};

use crate::BackupError;

pub const MAGIC: &[u8; 8] = b"TSTDBKUP";
pub const TRAILER_MAGIC: &[u8; 8] = b"TSTDEND1";
/// The format version this build writes and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;
pub const CIPHER_NONE: u8 = 0;
pub const CIPHER_AES_256_GCM: u8 = 1;
pub const COMPRESSION_LZ4: u8 = 1;
pub const KIND_CHUNK: u8 = 1;
pub const KIND_MANIFEST: u8 = 2;
pub const DIGEST_LEN: usize = 32;
pub const TAG_LEN: usize = 16;
pub const FRAME_HEADER_LEN: usize = 1 + 8 + 4 + 4;
pub const TRAILER_LEN: usize = 16;
/// The largest raw frame a reader accepts (and a writer produces).
pub const MAX_FRAME: usize = 64 << 20;
/// A chunk is closed once its raw bytes reach this size.
pub const CHUNK_TARGET: usize = 4 << 20;
/// The longest key id or wrapped key a preamble may carry.
const MAX_PREAMBLE_FIELD: usize = 256;
/// The associated-data context a backup's data key is wrapped with.
pub const WRAP_CONTEXT: &[u8] = b"testudo backup data key v1";

/// The fixed part of the preamble, before its two variable fields.
const PREAMBLE_FIXED: usize = 8 + 2 + 1 + 1 + 16 + 8 + 8;

/// What the preamble says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preamble {
    pub cipher: u8,
    pub backup_id: [u8; 16],
    pub snapshot_ts: u64,
    pub created_unix_ms: u64,
    /// The public fingerprint of the master key that wrapped the data key (empty: none).
    pub key_id: String,
    pub wrapped_key: Vec<u8>,
}

impl Preamble {
    /// The preamble's bytes, its digest included.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(PREAMBLE_FIXED + 4 + 128 + DIGEST_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        out.push(self.cipher);
        out.push(COMPRESSION_LZ4);
        out.extend_from_slice(&self.backup_id);
        out.extend_from_slice(&self.snapshot_ts.to_be_bytes());
        out.extend_from_slice(&self.created_unix_ms.to_be_bytes());
        for field in [self.key_id.as_bytes(), &self.wrapped_key] {
            // Both fields are ours and short (checked by the writer).
            out.extend_from_slice(&(field.len() as u16).to_be_bytes());
            out.extend_from_slice(field);
        }
        let digest = sha256(&[&out]);
        out.extend_from_slice(&digest);
        out
    }

    /// Parses the preamble from the start of a file; returns it, its digest and its length.
    pub fn decode(bytes: &[u8]) -> Result<(Preamble, [u8; DIGEST_LEN], usize), BackupError> {
        let mut cursor = Cursor::new(bytes, "the preamble");
        if cursor.take(8)? != MAGIC {
            return Err(BackupError::NotABackup);
        }
        let version = cursor.u16()?;
        if version != FORMAT_VERSION {
            return Err(BackupError::UnsupportedVersion(version));
        }
        let cipher = cursor.u8()?;
        if cipher != CIPHER_NONE && cipher != CIPHER_AES_256_GCM {
            return Err(corrupt("the preamble names an unknown cipher"));
        }
        if cursor.u8()? != COMPRESSION_LZ4 {
            return Err(corrupt("the preamble names an unknown compression"));
        }
        let mut backup_id = [0u8; 16];
        backup_id.copy_from_slice(cursor.take(16)?);
        let snapshot_ts = cursor.u64()?;
        let created_unix_ms = cursor.u64()?;
        let key_id = cursor.short_field()?.to_vec();
        let wrapped_key = cursor.short_field()?.to_vec();
        let end = cursor.position();
        let stored = cursor.take(DIGEST_LEN)?;
        let body = bytes
            .get(..end)
            .ok_or_else(|| corrupt("the preamble is cut"))?;
        let digest = sha256(&[body]);
        if stored != digest {
            return Err(corrupt("the preamble's checksum does not match"));
        }
        let key_id = String::from_utf8(key_id).map_err(|_| corrupt("the key id is not text"))?;
        let preamble = Preamble {
            cipher,
            backup_id,
            snapshot_ts,
            created_unix_ms,
            key_id,
            wrapped_key,
        };
        Ok((preamble, digest, end + DIGEST_LEN))
    }
}

/// The most bytes a preamble can take (what a reader must look at before parsing it).
pub const MAX_PREAMBLE: usize = PREAMBLE_FIXED + 2 * (2 + MAX_PREAMBLE_FIELD) + DIGEST_LEN;

/// A frame's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: u8,
    pub index: u64,
    pub raw_len: u32,
    pub stored_len: u32,
}

impl FrameHeader {
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut out = [0u8; FRAME_HEADER_LEN];
        out[0] = self.kind;
        out[1..9].copy_from_slice(&self.index.to_be_bytes());
        out[9..13].copy_from_slice(&self.raw_len.to_be_bytes());
        out[13..17].copy_from_slice(&self.stored_len.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8; FRAME_HEADER_LEN]) -> FrameHeader {
        let mut cursor = Cursor::new(bytes, "a frame header");
        // Seventeen bytes always hold the four fields: the fallbacks are never taken.
        FrameHeader {
            kind: cursor.u8().unwrap_or_default(),
            index: cursor.u64().unwrap_or_default(),
            raw_len: cursor.u32().unwrap_or_default(),
            stored_len: cursor.u32().unwrap_or_default(),
        }
    }

    /// The longest stored form a raw frame of `raw_len` bytes may have.
    pub fn max_stored(raw_len: usize) -> usize {
        lz4_flex::block::get_maximum_output_size(raw_len) + TAG_LEN
    }
}

/// The checksum that follows a frame.
pub fn frame_checksum(
    preamble_digest: &[u8; DIGEST_LEN],
    header: &[u8; FRAME_HEADER_LEN],
    stored: &[u8],
) -> [u8; DIGEST_LEN] {
    sha256(&[preamble_digest, header, stored])
}

/// The nonce of a frame: unique per (kind, index) within one file.
fn nonce(kind: u8, index: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[3] = kind;
    bytes[4..].copy_from_slice(&index.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

fn aad(preamble_digest: &[u8; DIGEST_LEN], header: &FrameHeader) -> Vec<u8> {
    // The stored length differs from the header the reader sees only by the tag; bind the
    // fields that do not depend on sealing.
    let mut aad = Vec::with_capacity(DIGEST_LEN + 13);
    aad.extend_from_slice(preamble_digest);
    aad.push(header.kind);
    aad.extend_from_slice(&header.index.to_be_bytes());
    aad.extend_from_slice(&header.raw_len.to_be_bytes());
    aad
}

/// Compresses (and seals, with `key`) a frame's raw bytes; returns its header and stored bytes.
pub fn seal_frame(
    kind: u8,
    index: u64,
    raw: &[u8],
    key: Option<&LessSafeKey>,
    preamble_digest: &[u8; DIGEST_LEN],
) -> Result<(FrameHeader, Vec<u8>), BackupError> {
    if raw.len() > MAX_FRAME {
        return Err(BackupError::TooLarge(raw.len()));
    }
    let mut stored = lz4_flex::block::compress(raw);
    let mut header = FrameHeader {
        kind,
        index,
        raw_len: raw.len() as u32,
        stored_len: 0,
    };
    if let Some(key) = key {
        let aad = aad(preamble_digest, &header);
        key.seal_in_place_append_tag(nonce(kind, index), Aad::from(aad), &mut stored)
            .map_err(|_| BackupError::Crypto("sealing a frame failed".into()))?;
    }
    // Bounded by `max_stored(MAX_FRAME)`, far below u32::MAX.
    header.stored_len = stored.len() as u32;
    Ok((header, stored))
}

/// Opens (with `key`) and decompresses a frame's stored bytes. `what` names the frame.
pub fn open_frame(
    header: &FrameHeader,
    mut stored: Vec<u8>,
    key: Option<&LessSafeKey>,
    preamble_digest: &[u8; DIGEST_LEN],
    what: &str,
) -> Result<Vec<u8>, BackupError> {
    let compressed: &[u8] = match key {
        Some(key) => {
            let aad = aad(preamble_digest, header);
            key.open_in_place(
                nonce(header.kind, header.index),
                Aad::from(aad),
                &mut stored,
            )
            .map_err(|_| BackupError::Damaged {
                what: what.to_owned(),
                reason: "it fails authentication (altered, moved, or another key)".into(),
            })?
        }
        None => &stored,
    };
    let raw_len = header.raw_len as usize;
    if raw_len > MAX_FRAME {
        return Err(BackupError::Damaged {
            what: what.to_owned(),
            reason: format!("it claims {raw_len} bytes, more than a frame may hold"),
        });
    }
    let raw =
        lz4_flex::block::decompress(compressed, raw_len).map_err(|e| BackupError::Damaged {
            what: what.to_owned(),
            reason: format!("it does not decompress: {e}"),
        })?;
    if raw.len() != raw_len {
        return Err(BackupError::Damaged {
            what: what.to_owned(),
            reason: "its length differs from its header".into(),
        });
    }
    Ok(raw)
}

pub fn sha256(parts: &[&[u8]]) -> [u8; DIGEST_LEN] {
    let mut context = Context::new(&SHA256);
    for part in parts {
        context.update(part);
    }
    let mut out = [0u8; DIGEST_LEN];
    out.copy_from_slice(context.finish().as_ref());
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn corrupt(reason: &str) -> BackupError {
    BackupError::Damaged {
        what: "the preamble".into(),
        reason: reason.into(),
    }
}

/// One version as a chunk stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVersion {
    pub ts: u64,
    pub value: Option<Vec<u8>>,
}

/// One record: a key and some of its versions, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub versions: Vec<StoredVersion>,
}

pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Encodes the head of a record (key and version count); the versions follow.
pub fn put_record_head(out: &mut Vec<u8>, key: &[u8], count: u64) {
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    put_varint(out, count);
}

pub fn put_version(out: &mut Vec<u8>, ts: u64, value: Option<&[u8]>) {
    out.extend_from_slice(&ts.to_be_bytes());
    match value {
        None => out.push(0),
        Some(value) => {
            out.push(1);
            put_varint(out, value.len() as u64);
            out.extend_from_slice(value);
        }
    }
}

/// Decodes a chunk's records. `what` names the chunk in errors.
pub fn decode_records(raw: &[u8], what: &str) -> Result<Vec<Record>, BackupError> {
    let mut cursor = Cursor::new(raw, what);
    let mut records = Vec::new();
    while !cursor.is_empty() {
        let key_len = cursor.len_varint()?;
        let key = cursor.take(key_len)?.to_vec();
        let count = cursor.len_varint()?;
        // Each version takes at least nine bytes: a count beyond that is a lie.
        if count > cursor.remaining() / 9 {
            return Err(cursor.error("a record claims more versions than the chunk holds"));
        }
        let mut versions = Vec::with_capacity(count);
        for _ in 0..count {
            let ts = cursor.u64()?;
            let value = match cursor.u8()? {
                0 => None,
                1 => {
                    let len = cursor.len_varint()?;
                    Some(cursor.take(len)?.to_vec())
                }
                _ => return Err(cursor.error("a version has an unknown tag")),
            };
            versions.push(StoredVersion { ts, value });
        }
        records.push(Record { key, versions });
    }
    Ok(records)
}

/// A bounds-checked reader over a byte slice.
pub struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    what: &'a str,
}

impl<'a> Cursor<'a> {
    pub fn new(bytes: &'a [u8], what: &'a str) -> Cursor<'a> {
        Cursor { bytes, at: 0, what }
    }

    fn error(&self, reason: &str) -> BackupError {
        BackupError::Damaged {
            what: self.what.to_owned(),
            reason: format!("{reason} (at byte {})", self.at),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.at >= self.bytes.len()
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    pub fn position(&self) -> usize {
        self.at
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], BackupError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| self.error("it ends early"))?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| self.error("it ends early"))?;
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BackupError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, BackupError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, BackupError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u32(&mut self) -> Result<u32, BackupError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, BackupError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn short_field(&mut self) -> Result<&'a [u8], BackupError> {
        let len = usize::from(self.u16()?);
        if len > MAX_PREAMBLE_FIELD {
            return Err(self.error("a field is longer than allowed"));
        }
        self.take(len)
    }

    /// A varint used as a length: at most ten bytes, and no larger than what is left.
    fn len_varint(&mut self) -> Result<usize, BackupError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(value)
                    .ok()
                    .filter(|len| *len <= self.remaining())
                    .ok_or_else(|| self.error("a length runs past the end"));
            }
        }
        Err(self.error("a length is malformed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_a_cut_record_is_refused() {
        let mut raw = Vec::new();
        put_record_head(&mut raw, b"k1", 2);
        put_version(&mut raw, 9, Some(b"new"));
        put_version(&mut raw, 3, None);
        put_record_head(&mut raw, b"k2", 1);
        put_version(&mut raw, 4, Some(&[]));
        let records = decode_records(&raw, "chunk 0").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].versions[1], StoredVersion { ts: 3, value: None });
        assert_eq!(records[1].versions[0].value.as_deref(), Some(&[][..]));
        for cut in 0..raw.len() {
            if cut == 0 {
                continue;
            }
            let result = decode_records(&raw[..cut], "chunk 0");
            // A cut exactly between records decodes to fewer records; anywhere else fails.
            if let Ok(records) = result {
                assert_eq!(records.len(), 1, "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_huge_claimed_length_is_refused_without_allocating() {
        let mut raw = Vec::new();
        put_varint(&mut raw, u64::MAX >> 1);
        assert!(decode_records(&raw, "chunk 0").is_err());
        let mut raw = Vec::new();
        put_record_head(&mut raw, b"k", u32::MAX as u64);
        assert!(decode_records(&raw, "chunk 0").is_err());
    }

    #[test]
    fn a_preamble_round_trips_and_any_flipped_byte_is_refused() {
        let preamble = Preamble {
            cipher: CIPHER_NONE,
            backup_id: [7; 16],
            snapshot_ts: 42,
            created_unix_ms: 1_000,
            key_id: String::new(),
            wrapped_key: Vec::new(),
        };
        let bytes = preamble.encode();
        let (back, _, len) = Preamble::decode(&bytes).unwrap();
        assert_eq!(back, preamble);
        assert_eq!(len, bytes.len());
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(Preamble::decode(&damaged).is_err(), "byte {i}");
        }
    }
}
