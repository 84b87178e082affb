//! The on-disk format: a directory of segment files `audit-NNNNNNNNNN.log`, numbered from 1
//! without gaps, each a sequence of lines `<link> <record>\n`.
//!
//! `<record>` is one JSON object, `{"seq":N,"time":"…Z","kind":"…",…}`; `seq` counts every
//! record of the log from 1, across segments. `<link>` is 64 hex digits:
//! `link = H(previous link ‖ record bytes)` (see `chain.rs`). A segment opens with a
//! `segment_start` record carrying the link it continues from (the previous segment's last
//! link; zeros for segment 1) and its chain; a finished segment ends with a `seal` record
//! carrying its record count and the link before the seal. Writer bookkeeping records
//! (`dropped`, `retention`) are chained like any other.
//!
//! **Invariants:** a record's JSON never contains a raw newline (serde_json escapes control
//! characters), so a line is exactly one record; the writer only appends; reading never
//! trusts a length from the file (lines are bounded by [`MAX_LINE`]).

use std::fs;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::chain::{Link, parse_link};
use crate::encode::Body;

/// The longest line a reader accepts; real records are a few hundred bytes.
pub const MAX_LINE: usize = 4 * 1024 * 1024;

pub const START: &str = "segment_start";
pub const SEAL: &str = "seal";
pub const RETENTION: &str = "retention";

/// The records the writer adds itself.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WriterRecord {
    SegmentStart {
        segment: u64,
        chain: &'static str,
        /// Hex of the link this segment continues from.
        previous: String,
        /// `"aes-256-gcm"` when the segment's events are sealed (`seal.rs`).
        #[serde(skip_serializing_if = "Option::is_none")]
        encryption: Option<&'static str>,
        /// The master key's fingerprint, when encrypted.
        #[serde(skip_serializing_if = "Option::is_none")]
        key_id: Option<String>,
        /// The segment's data key wrapped by the master key (base64), when encrypted.
        #[serde(skip_serializing_if = "Option::is_none")]
        data_key: Option<String>,
    },
    Seal {
        segment: u64,
        /// Records in the segment before the seal, its start record included.
        records: u64,
        /// Hex of the link of the record before the seal.
        last: String,
        /// `"rotation"`, `"shutdown"` or `"recovered"` (sealed at the next start after a
        /// crash; `truncated_bytes` then counts a torn last line that was cut off).
        reason: &'static str,
        #[serde(skip_serializing_if = "is_zero")]
        truncated_bytes: u64,
    },
    /// Records refused because the queue was full (policy `drop`), since the last such
    /// record.
    Dropped { count: u64 },
    /// Retention deleted every segment up to and including `removed_through`.
    Retention { removed_through: u64 },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Writes the record `{"seq":…,"time":"…",<body's fields>}` into `out` (cleared first).
pub fn encode_record(out: &mut Vec<u8>, seq: u64, time: &str, body: &dyn Body) -> io::Result<()> {
    out.clear();
    out.extend_from_slice(b"{\"seq\":");
    crate::encode::decimal(out, seq);
    out.extend_from_slice(b",\"time\":");
    // Time text is digits, dashes, colons, a dot, `T` and `Z`: nothing to escape.
    out.push(b'"');
    out.extend_from_slice(time.as_bytes());
    out.push(b'"');
    // The body goes straight after (no copy through a second buffer); its opening brace
    // then becomes the comma between our fields and its own.
    let body_at = out.len();
    body.write_json(out)?;
    match out.get(body_at..) {
        Some(b"{}") => {
            out.truncate(body_at);
            out.push(b'}');
        }
        Some([b'{', ..]) => out[body_at] = b',',
        _ => return Err(io::Error::other("an audit record must be a JSON object")),
    }
    Ok(())
}

pub fn file_name(number: u64) -> String {
    format!("audit-{number:010}.log")
}

pub fn path(dir: &Path, number: u64) -> PathBuf {
    dir.join(file_name(number))
}

/// The segment numbers present in `dir`, ascending. Other files are ignored.
pub fn list(dir: &Path) -> io::Result<Vec<u64>> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(number) = name
            .strip_prefix("audit-")
            .and_then(|rest| rest.strip_suffix(".log"))
            .filter(|digits| digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u64>().ok())
        {
            numbers.push(number);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// One line of a segment, split but not yet checked against the chain.
#[derive(Debug)]
pub struct Line {
    pub link: Link,
    /// The record's bytes, exactly as hashed.
    pub record: Vec<u8>,
    pub json: serde_json::Map<String, serde_json::Value>,
}

impl Line {
    pub fn seq(&self) -> Option<u64> {
        self.json.get("seq").and_then(serde_json::Value::as_u64)
    }

    pub fn kind(&self) -> Option<&str> {
        self.json.get("kind").and_then(serde_json::Value::as_str)
    }

    pub fn u64_field(&self, name: &str) -> Option<u64> {
        self.json.get(name).and_then(serde_json::Value::as_u64)
    }

    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(serde_json::Value::as_str)
    }

    pub fn link_field(&self, name: &str) -> Option<Link> {
        self.json
            .get(name)
            .and_then(serde_json::Value::as_str)
            .and_then(parse_link)
    }
}

/// Why a line could not be read as a record.
#[derive(Debug, PartialEq, Eq)]
pub enum LineError {
    /// The file ends in the middle of a line.
    Incomplete,
    TooLong,
    Malformed(&'static str),
}

/// Reads the next raw line (with its newline). `Ok(None)` at the end of the file.
pub fn read_raw(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Option<()>> {
    buf.clear();
    let mut limited = io::Read::take(
        &mut *reader,
        u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1,
    );
    let n = limited.read_until(b'\n', buf)?;
    Ok((n > 0).then_some(()))
}

/// Splits and parses one raw line as read by [`read_raw`].
pub fn parse(raw: &[u8]) -> Result<Line, LineError> {
    let Some(body) = raw.strip_suffix(b"\n") else {
        return Err(if raw.len() > MAX_LINE {
            LineError::TooLong
        } else {
            LineError::Incomplete
        });
    };
    let (link, record) = match body.split_at_checked(64) {
        Some((link, rest)) => match rest.split_first() {
            Some((b' ', record)) => (link, record),
            _ => return Err(LineError::Malformed("no space after the link")),
        },
        None => return Err(LineError::Malformed("shorter than a link")),
    };
    let link = std::str::from_utf8(link)
        .ok()
        .and_then(parse_link)
        .ok_or(LineError::Malformed("the link is not 64 hex digits"))?;
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(record).map_err(|_| LineError::Malformed("not a JSON object"))?;
    Ok(Line {
        link,
        record: record.to_vec(),
        json,
    })
}
