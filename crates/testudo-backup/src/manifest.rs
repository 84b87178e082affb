//! The manifest: what a backup holds (counts, timestamp, format, key id), written as the last
//! frame of the file and checked against the chunks by every verify and restore.
//!
//! Per-database and per-collection counts are read off the key layout (format version 1 of
//! `ARCHITECTURE.md`, "Key layout"): every key starts with the 8-byte big-endian database id,
//! then a key-space byte; documents (`0x01`) continue with the collection id and the document
//! id (8 bytes each). They are informational: restore never depends on them.
//!
//! **Invariants:** counting never fails on a key of any shape (keys too short for the layout
//! are counted under `other_keys`); the manifest's totals are exactly what the chunks hold.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The key-space byte of documents.
const DOCUMENTS_SPACE: u8 = 0x01;
/// Database id + key space + collection id + document id.
const DOCUMENT_KEY_LEN: usize = 8 + 1 + 8 + 8;

/// What a backup holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u16,
    /// Random, unique per backup (hex).
    pub backup_id: String,
    /// The transaction timestamp of the snapshot (µs): the backup holds exactly the commits at
    /// or before it.
    pub snapshot_ts: u64,
    pub created_unix_ms: u64,
    /// UTC, RFC 3339.
    pub created: String,
    /// `aes-256-gcm` or `none`.
    pub encryption: String,
    /// The public fingerprint of the master key that wraps the backup's data key.
    pub key_id: Option<String>,
    pub compression: String,
    /// The key prefixes the backup was limited to (hex); empty for the whole store.
    pub prefixes: Vec<String>,
    /// Keys with a visible version at the snapshot timestamp.
    pub keys: u64,
    /// Stored versions (history included) of those keys.
    pub versions: u64,
    /// Of `versions`, how many are tombstones.
    pub tombstones: u64,
    /// Raw (uncompressed) record bytes.
    pub raw_bytes: u64,
    pub chunks: u64,
    /// SHA-256 over every chunk's checksum in order (hex).
    pub chunks_digest: String,
    pub databases: Vec<DatabaseCounts>,
    /// Keys too short to carry a database id.
    pub other_keys: u64,
}

/// Counts for one database id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseCounts {
    pub id: u64,
    pub keys: u64,
    pub versions: u64,
    /// Live documents per collection id.
    pub collections: Vec<CollectionCounts>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionCounts {
    pub id: u64,
    pub documents: u64,
}

/// Running totals while a backup is written or read.
#[derive(Clone, Debug, Default)]
pub struct Counter {
    pub keys: u64,
    pub versions: u64,
    pub tombstones: u64,
    pub raw_bytes: u64,
    pub other_keys: u64,
    databases: BTreeMap<u64, (u64, u64, BTreeMap<u64, u64>)>,
}

fn be_u64(bytes: Option<&[u8]>) -> Option<u64> {
    let array: [u8; 8] = bytes?.try_into().ok()?;
    Some(u64::from_be_bytes(array))
}

impl Counter {
    /// Counts a new key whose newest version (at the snapshot) is live.
    pub fn key(&mut self, key: &[u8]) {
        self.keys += 1;
        let Some(db) = be_u64(key.get(..8)) else {
            self.other_keys += 1;
            return;
        };
        let entry = self.databases.entry(db).or_default();
        entry.0 += 1;
        if key.len() == DOCUMENT_KEY_LEN
            && key.get(8) == Some(&DOCUMENTS_SPACE)
            && let Some(collection) = be_u64(key.get(9..17))
        {
            *entry.2.entry(collection).or_default() += 1;
        }
    }

    pub fn version(&mut self, key: &[u8], tombstone: bool) {
        self.versions += 1;
        if tombstone {
            self.tombstones += 1;
        }
        if let Some(db) = be_u64(key.get(..8)) {
            self.databases.entry(db).or_default().1 += 1;
        }
    }

    pub fn databases(&self) -> Vec<DatabaseCounts> {
        self.databases
            .iter()
            .map(|(id, (keys, versions, collections))| DatabaseCounts {
                id: *id,
                keys: *keys,
                versions: *versions,
                collections: collections
                    .iter()
                    .map(|(id, documents)| CollectionCounts {
                        id: *id,
                        documents: *documents,
                    })
                    .collect(),
            })
            .collect()
    }
}

/// `unix_ms` as RFC 3339 UTC (`2026-11-27T17:44:34.123Z`).
pub fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

/// `unix_ms` as a compact UTC stamp for file names (`20261127T174434Z`).
pub fn compact_stamp(unix_ms: u64) -> String {
    let text = rfc3339(unix_ms);
    let digits: String = text
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    format!("{digits}Z")
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_801_474_123), "2026-11-27T17:44:34.123Z");
        assert_eq!(compact_stamp(1_795_801_474_123), "20261127T174434Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn documents_are_counted_per_database_and_collection() {
        let mut counter = Counter::default();
        let mut doc = 5u64.to_be_bytes().to_vec();
        doc.push(DOCUMENTS_SPACE);
        doc.extend_from_slice(&1024u64.to_be_bytes());
        doc.extend_from_slice(&7u64.to_be_bytes());
        counter.key(&doc);
        counter.version(&doc, false);
        counter.key(b"short");
        let dbs = counter.databases();
        assert_eq!(dbs.len(), 1);
        assert_eq!(dbs[0].id, 5);
        assert_eq!(dbs[0].collections[0].id, 1024);
        assert_eq!(dbs[0].collections[0].documents, 1);
        assert_eq!(counter.other_keys, 1);
        assert_eq!(counter.keys, 2);
    }
}
