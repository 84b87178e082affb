//! Reading records back for `testudo audit tail` and `export`: every record in order, as the
//! JSON object it was written as, filtered by time, database and outcome.
//!
//! Reading does not verify (that is `verify.rs`): a line that cannot be read is counted and
//! skipped, so an export of a damaged log still yields what is readable. Segment starts and
//! seals are bookkeeping and are left out; `dropped` and `retention` records are kept (a SIEM
//! should see gaps).
//!
//! Encrypted segments are opened with the master key's [`SegmentKeys`]; without it they are
//! refused ([`ReadError::KeyNeeded`]), never shown sealed.
//!
//! **Invariants:** never writes; lines bounded by `MAX_LINE`; output records are exactly the
//! bytes that were hashed (for an encrypted segment: that were sealed).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::rewrap::SegmentOpener;
use crate::seal::{self, AeadKey, SegmentKeys};
use crate::segment;
use crate::time::parse_rfc3339;

/// Which records to give.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Records at or after this instant (µs since the epoch).
    pub since_us: Option<u64>,
    /// A database id (`"0"` is the root) or path.
    pub database: Option<String>,
    /// `"ok"`, `"error"` (anything else), or one error code. Authentication failures count as
    /// `unauthorized` and denials as `permission_denied`.
    pub outcome: Option<String>,
}

impl Filter {
    pub fn matches(&self, record: &Map<String, Value>) -> bool {
        if let Some(since) = self.since_us {
            let time = record
                .get("time")
                .and_then(Value::as_str)
                .and_then(parse_rfc3339);
            if time.is_none_or(|time| time < since) {
                return false;
            }
        }
        if let Some(wanted) = &self.database {
            let db = record.get("database");
            let id = db.and_then(|d| d.get("id")).and_then(Value::as_u64);
            let path = db.and_then(|d| d.get("path")).and_then(Value::as_str);
            let hit = id.is_some_and(|id| id.to_string() == *wanted)
                || path.is_some_and(|path| path == wanted);
            if !hit {
                return false;
            }
        }
        if let Some(wanted) = &self.outcome {
            let kind = record.get("kind").and_then(Value::as_str);
            let outcome = match kind {
                Some("auth_failure") => Some("unauthorized"),
                Some("denied") => Some("permission_denied"),
                _ => record.get("outcome").and_then(Value::as_str),
            };
            let hit = match (wanted.as_str(), outcome) {
                (_, None) => false,
                ("error", Some(outcome)) => outcome != "ok",
                (wanted, Some(outcome)) => wanted == outcome,
            };
            if !hit {
                return false;
            }
        }
        true
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "audit segment {segment} is encrypted: the master key it was written under is needed to read it"
    )]
    KeyNeeded { segment: u64 },
    #[error(
        "audit segment {segment} was encrypted under master key {written_under}, not under the \
         key given ({given})"
    )]
    WrongKey {
        segment: u64,
        written_under: String,
        given: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What a read went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub matched: u64,
    /// Lines that could not be read as records (run `verify`).
    pub unreadable: u64,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReadError + '_ {
    move |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The data key of an encrypted segment, from its start record. `Ok(None)` for a
/// plaintext segment.
fn segment_key(
    number: u64,
    start: &segment::Line,
    keys: Option<&SegmentOpener<'_>>,
) -> Result<Option<AeadKey>, ReadError> {
    let Some(wrapped) = start.str_field("data_key") else {
        return Ok(None);
    };
    let Some(keys) = keys else {
        return Err(ReadError::KeyNeeded { segment: number });
    };
    seal::decode_wrapped(wrapped)
        .and_then(|wrapped| keys.open(number, &wrapped))
        .map(Some)
        .ok_or_else(|| ReadError::WrongKey {
            segment: number,
            written_under: start.str_field("key_id").unwrap_or("(unknown)").to_owned(),
            given: keys.fingerprint(),
        })
}

/// Calls `each` with every matching record of segment `number`, oldest first (opened, when
/// the segment is encrypted).
fn read_segment(
    dir: &Path,
    number: u64,
    filter: &Filter,
    keys: Option<&SegmentOpener<'_>>,
    summary: &mut ReadSummary,
    each: &mut dyn FnMut(&[u8]) -> io::Result<()>,
) -> Result<(), ReadError> {
    let path = segment::path(dir, number);
    let file = File::open(&path).map_err(io_err(&path))?;
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut key = None;
    while segment::read_raw(&mut reader, &mut buf)
        .map_err(io_err(&path))?
        .is_some()
    {
        let Ok(line) = segment::parse(&buf) else {
            summary.unreadable += 1;
            continue;
        };
        match line.kind() {
            Some(segment::START) => {
                key = segment_key(number, &line, keys)?;
                continue;
            }
            Some(segment::SEAL) => continue,
            Some(seal::SEALED) => {
                let opened = match (&key, line.seq(), line.str_field("data")) {
                    (Some(key), Some(seq), Some(data)) => seal::open(key, seq, data),
                    _ => None,
                };
                let Some(record) = opened else {
                    summary.unreadable += 1;
                    continue;
                };
                let Ok(json) = serde_json::from_slice::<Map<String, Value>>(&record) else {
                    summary.unreadable += 1;
                    continue;
                };
                if filter.matches(&json) {
                    summary.matched += 1;
                    each(&record).map_err(io_err(&path))?;
                }
            }
            _ => {
                if filter.matches(&line.json) {
                    summary.matched += 1;
                    each(&line.record).map_err(io_err(&path))?;
                }
            }
        }
    }
    Ok(())
}

/// The opener of `dir`'s encrypted segments under `keys` (with the keys a master key
/// rotation rewrapped, `rewrap.rs`).
fn opener<'k>(
    dir: &Path,
    keys: Option<&'k dyn SegmentKeys>,
) -> Result<Option<SegmentOpener<'k>>, ReadError> {
    keys.map(|keys| SegmentOpener::new(dir, keys))
        .transpose()
        .map_err(io_err(&dir.join(crate::rewrap::KEYS_FILE)))
}

/// Calls `each` with every matching record of the log, oldest first. Encrypted segments
/// need `keys` (the master key they were written under, or the one a rotation rewrapped
/// their keys under).
pub fn read_records(
    dir: &Path,
    filter: &Filter,
    keys: Option<&dyn SegmentKeys>,
    mut each: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<ReadSummary, ReadError> {
    let mut summary = ReadSummary::default();
    let keys = opener(dir, keys)?;
    for number in segment::list(dir).map_err(io_err(dir))? {
        read_segment(dir, number, filter, keys.as_ref(), &mut summary, &mut each)?;
    }
    Ok(summary)
}

/// The last `n` matching records, oldest first. Reads segments from the newest back until
/// it has them.
pub fn tail(
    dir: &Path,
    n: usize,
    filter: &Filter,
    keys: Option<&dyn SegmentKeys>,
) -> Result<Vec<Vec<u8>>, ReadError> {
    let mut out: VecDeque<Vec<u8>> = VecDeque::new();
    let mut summary = ReadSummary::default();
    let keys = opener(dir, keys)?;
    for number in segment::list(dir).map_err(io_err(dir))?.into_iter().rev() {
        if out.len() >= n {
            break;
        }
        let mut these = VecDeque::new();
        read_segment(
            dir,
            number,
            filter,
            keys.as_ref(),
            &mut summary,
            &mut |record| {
                these.push_back(record.to_vec());
                if these.len() > n {
                    these.pop_front();
                }
                Ok(())
            },
        )?;
        while out.len() < n
            && let Some(record) = these.pop_back()
        {
            out.push_front(record);
        }
    }
    Ok(out.into())
}
