//! `verify`: walks every segment of a log and checks every link, sequence number, segment
//! boundary and seal; reports the first record that does not fit.
//!
//! What each tampering looks like: an edited record no longer matches its link; a removed,
//! inserted or moved record breaks the link of the record now in its place, and its `seq`
//! says which; a removed, replaced or reordered segment breaks the next segment's start
//! (which carries the link it continues from) or leaves a gap in the numbering; a sealed
//! segment cut short lacks its seal; segments missing from the start of the log must be
//! explained by a `retention` record. The one thing a chain alone cannot see is the newest
//! records of the open segment cut off at a line boundary (there is no later record to
//! notice): seal the segment (stop the server, or rotate) before relying on its end.
//!
//! Encrypted segments (`seal.rs`): the chain links the sealed lines, so all of the above holds
//! without the master key; with it, every sealed record must also open under its segment's
//! data key with its own `seq`, which authenticates each record's content and position.
//!
//! **Invariants:** `verify` never writes; it reads each line bounded by `MAX_LINE`; it
//! stops at the first problem and names it by segment number and record number (1-based
//! line within the segment).

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use crate::chain::{Chain, GENESIS, Link, hex};
use crate::rewrap::SegmentOpener;
use crate::seal::{self, AeadKey, SegmentKeys};
use crate::segment::{self, LineError};

/// A verified log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub first_segment: u64,
    pub last_segment: u64,
    pub segments: u64,
    pub records: u64,
    /// Hex of the last link: note it down, and a later verify proves the log grew from it.
    pub last_link: String,
    pub keyed_segments: u64,
    pub unkeyed_segments: u64,
    /// The newest segment is not sealed (the server is running, or stopped uncleanly and
    /// has not started since).
    pub last_open: bool,
    /// Segments whose events are encrypted.
    pub encrypted_segments: u64,
    /// Encrypted records opened and authenticated with the master key (0 without it: then
    /// only their order and completeness were checked).
    pub opened_records: u64,
}

/// The first record that does not fit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub segment: u64,
    /// 1-based line within the segment; 0 when the segment as a whole is at fault.
    pub record: u64,
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.record == 0 {
            write!(f, "segment {}: {}", self.segment, self.reason)
        } else {
            write!(
                f,
                "segment {}, record {}: {}",
                self.segment, self.record, self.reason
            )
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the log does not verify: {0}")]
    Broken(Problem),
    #[error("segment {segment} is chained under a key: the key is needed to verify it")]
    KeyNeeded { segment: u64 },
    #[error(
        "segment {segment} was encrypted under master key {written_under}, not under the key \
         given ({given})"
    )]
    WrongKey {
        segment: u64,
        written_under: String,
        given: String,
    },
    #[error("no audit segments in {0}")]
    Empty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn broken(segment: u64, record: u64, reason: impl Into<String>) -> VerifyError {
    VerifyError::Broken(Problem {
        segment,
        record,
        reason: reason.into(),
    })
}

/// Verifies the log in `dir`. `key` (the chain's key) is needed for segments written
/// with one. With `keys` (the master key), every record of an encrypted segment is also
/// opened and authenticated; without, encrypted segments are checked as a chain only.
pub fn verify(
    dir: &Path,
    key: Option<&[u8; 32]>,
    keys: Option<&dyn SegmentKeys>,
) -> Result<VerifyReport, VerifyError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| VerifyError::Io { path, source }
    };
    let numbers = segment::list(dir).map_err(io_err(dir))?;
    let (Some(&first), Some(&newest)) = (numbers.first(), numbers.last()) else {
        return Err(VerifyError::Empty(dir.to_path_buf()));
    };
    let keys = keys
        .map(|keys| SegmentOpener::new(dir, keys))
        .transpose()
        .map_err(io_err(&dir.join(crate::rewrap::KEYS_FILE)))?;
    let mut walk = Walk {
        key,
        keys: keys.as_ref(),
        encrypted: 0,
        opened: 0,
        previous_end: None,
        expected_seq: None,
        removed_through: 0,
        records: 0,
        keyed: 0,
        unkeyed: 0,
        last_open: false,
    };
    let mut before = None;
    for &number in &numbers {
        if let Some(before) = before
            && number != before + 1
        {
            return Err(broken(
                before + 1,
                0,
                format!("missing (segment {before} is followed by segment {number})"),
            ));
        }
        before = Some(number);
        let path = segment::path(dir, number);
        let file = File::open(&path).map_err(io_err(&path))?;
        walk.segment(number, number == newest, &mut BufReader::new(file))
            .map_err(|err| match err {
                WalkError::Io(source) => VerifyError::Io {
                    path: path.clone(),
                    source,
                },
                WalkError::Verify(err) => err,
            })?;
    }
    if first > 1 && first > walk.removed_through + 1 {
        return Err(broken(
            first - 1,
            0,
            format!(
                "missing: the log starts at segment {first}, and no retention record says \
                 segments up to {} were deleted",
                first - 1
            ),
        ));
    }
    Ok(VerifyReport {
        first_segment: first,
        last_segment: newest,
        segments: u64::try_from(numbers.len()).unwrap_or(u64::MAX),
        records: walk.records,
        last_link: hex(&walk.previous_end.unwrap_or(GENESIS)),
        keyed_segments: walk.keyed,
        unkeyed_segments: walk.unkeyed,
        last_open: walk.last_open,
        encrypted_segments: walk.encrypted,
        opened_records: walk.opened,
    })
}

enum WalkError {
    Io(io::Error),
    Verify(VerifyError),
}

impl From<io::Error> for WalkError {
    fn from(err: io::Error) -> WalkError {
        WalkError::Io(err)
    }
}

impl From<VerifyError> for WalkError {
    fn from(err: VerifyError) -> WalkError {
        WalkError::Verify(err)
    }
}

struct Walk<'k> {
    key: Option<&'k [u8; 32]>,
    keys: Option<&'k SegmentOpener<'k>>,
    encrypted: u64,
    opened: u64,
    /// The last link of the previous segment.
    previous_end: Option<Link>,
    expected_seq: Option<u64>,
    removed_through: u64,
    records: u64,
    keyed: u64,
    unkeyed: u64,
    last_open: bool,
}

impl Walk<'_> {
    fn segment(
        &mut self,
        number: u64,
        newest: bool,
        reader: &mut impl io::BufRead,
    ) -> Result<(), WalkError> {
        let mut buf = Vec::new();
        let mut record = 0u64;
        let mut chain = Chain::Sha256;
        let mut current = GENESIS;
        let mut sealed = false;
        // `Some` for an encrypted segment; the inner key only when the master key was given.
        let mut data_key: Option<Option<AeadKey>> = None;
        while segment::read_raw(reader, &mut buf)?.is_some() {
            record += 1;
            if sealed {
                return Err(broken(number, record, "a record after the seal").into());
            }
            let line = segment::parse(&buf).map_err(|err| {
                let reason = match err {
                    LineError::Incomplete => {
                        "incomplete: the segment was cut in the middle of this record (if the \
                         server is writing it right now, try again)"
                    }
                    LineError::TooLong => "longer than any record the writer makes",
                    LineError::Malformed(what) => what,
                };
                broken(number, record, reason)
            })?;
            if record == 1 {
                (chain, current) = self.start(number, &line)?;
            }
            let computed = chain.link(&current, &line.record);
            let seq = line.seq();
            if computed != line.link {
                let reason = match (seq, self.expected_seq) {
                    (Some(found), Some(expected)) if found != expected => format!(
                        "out of place (sequence {found} where {expected} was due): records \
                         before it were removed or inserted, or records were reordered"
                    ),
                    _ if record == 1 => {
                        "does not match its chain (edited, or the key is wrong)".to_owned()
                    }
                    _ => "does not match the chain: the record was edited (or one before it \
                          was replaced)"
                        .to_owned(),
                };
                return Err(broken(number, record, reason).into());
            }
            let Some(seq) = seq else {
                return Err(broken(number, record, "no sequence number").into());
            };
            if record == 1 {
                // After the link check: a changed wrapped key is a broken chain, not a wrong
                // master key.
                data_key = self.data_key(number, &line)?;
            }
            if line.kind() == Some(seal::SEALED) {
                match &data_key {
                    None => {
                        return Err(broken(
                            number,
                            record,
                            "an encrypted record in a segment that has no data key",
                        )
                        .into());
                    }
                    Some(None) => {}
                    Some(Some(key)) => {
                        let opened = line
                            .str_field("data")
                            .and_then(|data| seal::open(key, seq, data))
                            .and_then(|plain| {
                                serde_json::from_slice::<
                                        serde_json::Map<String, serde_json::Value>,
                                    >(&plain)
                                    .ok()
                            });
                        let fits = opened.is_some_and(|json| {
                            json.get("seq").and_then(serde_json::Value::as_u64) == Some(seq)
                        });
                        if !fits {
                            return Err(broken(
                                number,
                                record,
                                "does not open under the segment's key: the encrypted record \
                                 was changed",
                            )
                            .into());
                        }
                        self.opened += 1;
                    }
                }
            }
            if let Some(expected) = self.expected_seq
                && seq != expected
            {
                return Err(broken(
                    number,
                    record,
                    format!("sequence {seq} where {expected} was due"),
                )
                .into());
            }
            match line.kind() {
                Some(segment::SEAL) => {
                    let consistent = line.u64_field("segment") == Some(number)
                        && line.u64_field("records") == Some(record - 1)
                        && line.link_field("last") == Some(current);
                    if !consistent {
                        return Err(broken(
                            number,
                            record,
                            "the seal does not describe this segment",
                        )
                        .into());
                    }
                    sealed = true;
                }
                Some(segment::RETENTION) => {
                    let through = line.u64_field("removed_through").unwrap_or(0);
                    self.removed_through = self.removed_through.max(through);
                }
                Some(segment::START) if record > 1 => {
                    return Err(broken(number, record, "a second segment start").into());
                }
                _ => {}
            }
            current = line.link;
            self.expected_seq = seq.checked_add(1);
            self.records += 1;
        }
        if record == 0 {
            return Err(broken(number, 0, "empty").into());
        }
        if !sealed {
            if !newest {
                return Err(broken(
                    number,
                    record + 1,
                    "missing: the segment ends without its seal (it was cut short)",
                )
                .into());
            }
            self.last_open = true;
        }
        self.previous_end = Some(current);
        Ok(())
    }

    /// The data key of a segment from its (already chain-checked) start record: `None` for
    /// a plaintext segment, `Some(None)` for an encrypted one when no master key was given.
    fn data_key(
        &mut self,
        number: u64,
        start: &segment::Line,
    ) -> Result<Option<Option<AeadKey>>, WalkError> {
        let Some(wrapped) = start.str_field("data_key") else {
            return Ok(None);
        };
        self.encrypted += 1;
        let Some(keys) = self.keys else {
            return Ok(Some(None));
        };
        let Some(wrapped) = seal::decode_wrapped(wrapped) else {
            return Err(broken(number, 1, "the wrapped data key is not base64").into());
        };
        match keys.open(number, &wrapped) {
            Some(key) => Ok(Some(Some(key))),
            None => Err(VerifyError::WrongKey {
                segment: number,
                written_under: start.str_field("key_id").unwrap_or("(unknown)").to_owned(),
                given: keys.fingerprint(),
            }
            .into()),
        }
    }

    /// Checks a segment's start record; returns its chain and the link it continues from.
    fn start(&mut self, number: u64, line: &segment::Line) -> Result<(Chain, Link), WalkError> {
        if line.kind() != Some(segment::START) || line.u64_field("segment") != Some(number) {
            return Err(broken(number, 1, "not this segment's start record").into());
        }
        let Some(previous) = line.link_field("previous") else {
            return Err(broken(number, 1, "the start record has no previous link").into());
        };
        match self.previous_end {
            Some(end) if end != previous => {
                return Err(broken(
                    number,
                    1,
                    format!(
                        "does not continue from the end of segment {}: a segment was removed, \
                         replaced or reordered, or the previous one was changed",
                        number.saturating_sub(1)
                    ),
                )
                .into());
            }
            None if number == 1 && previous != GENESIS => {
                return Err(broken(number, 1, "the first segment must start the chain").into());
            }
            _ => {}
        }
        let name = line.json.get("chain").and_then(serde_json::Value::as_str);
        let chain = match name.map(|name| Chain::named(name, self.key)) {
            Some(Ok(chain)) => chain,
            Some(Err(true)) => return Err(VerifyError::KeyNeeded { segment: number }.into()),
            Some(Err(false)) | None => return Err(broken(number, 1, "unknown chain").into()),
        };
        if chain.keyed() {
            self.keyed += 1;
        } else {
            self.unkeyed += 1;
        }
        Ok((chain, previous))
    }
}
