//! The on-disk layout of a Testudo redb file: table definitions, the value encoding and the
//! format version (described for humans in the crate docs).
//!
//! **Invariants:** every byte read back is validated before use (a bad tag is `Corrupt`, never
//! a panic); changing anything here that changes bytes on disk bumps [`FORMAT_VERSION`].

use redb::TableDefinition;
use testudo_storage::{KvError, Ts};

/// The layout version this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// Every version of every key: `(user key, u64::MAX - ts)` → tagged value.
pub(crate) const VERSIONS: TableDefinition<(&[u8], u64), &[u8]> = TableDefinition::new("versions");

/// Small named numbers: [`META_FORMAT_VERSION`] and [`META_LAST_COMMIT_TS`].
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const META_FORMAT_VERSION: &str = "format_version";
pub(crate) const META_LAST_COMMIT_TS: &str = "last_commit_ts";

const TAG_TOMBSTONE: u8 = 0;
const TAG_VALUE: u8 = 1;

/// The stored form of a timestamp: inverted, so that newer versions sort first.
pub(crate) fn stored_ts(ts: Ts) -> u64 {
    u64::MAX - ts.0
}

pub(crate) fn ts_from_stored(stored: u64) -> Ts {
    Ts(u64::MAX - stored)
}

pub(crate) fn encode_value(value: Option<&[u8]>, out: &mut Vec<u8>) {
    out.clear();
    match value {
        None => out.push(TAG_TOMBSTONE),
        Some(bytes) => {
            out.reserve(bytes.len() + 1);
            out.push(TAG_VALUE);
            out.extend_from_slice(bytes);
        }
    }
}

pub(crate) fn decode_value(stored: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
    match stored.split_first() {
        Some((&TAG_TOMBSTONE, [])) => Ok(None),
        Some((&TAG_VALUE, bytes)) => Ok(Some(bytes.to_vec())),
        Some((tag, rest)) => Err(KvError::Corrupt(format!(
            "stored value has unknown tag {tag} ({} bytes follow)",
            rest.len()
        ))),
        None => Err(KvError::Corrupt("stored value is empty".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_tombstones_round_trip() {
        let mut out = Vec::new();
        for value in [None, Some(&b""[..]), Some(&b"\x00\x01abc"[..])] {
            encode_value(value, &mut out);
            assert_eq!(decode_value(&out).unwrap(), value.map(<[u8]>::to_vec));
        }
    }

    #[test]
    fn damaged_values_are_corrupt_not_a_panic() {
        for bad in [&b""[..], b"\x02x", b"\x00junk"] {
            assert!(matches!(decode_value(bad), Err(KvError::Corrupt(_))));
        }
    }

    #[test]
    fn newer_timestamps_sort_first() {
        assert!(stored_ts(Ts(10)) < stored_ts(Ts(9)));
        assert_eq!(ts_from_stored(stored_ts(Ts(42))), Ts(42));
    }
}
