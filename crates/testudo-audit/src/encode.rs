//! The JSON of a record body, written by hand for the one record written per request and by
//! serde for everything else.
//!
//! A request record is written for every query, and serde's generic path (key escaping, map
//! bookkeeping) cost more than the rest of its writing together; this file writes the same
//! bytes directly.
//!
//! **Invariants:** the output is byte for byte what `serde_json::to_vec` gives for the same
//! value (field order, skipped `None`s, escaping) — the tests below compare both on every
//! shape — so readers and `verify` never see a difference.

use std::io::{self, Write as _};

use serde::Serialize;

use crate::event::{AuditEvent, CredentialRef, RequestRecord};
use crate::segment::WriterRecord;

/// A record body: a JSON object with a `kind`.
pub trait Body {
    fn write_json(&self, out: &mut Vec<u8>) -> io::Result<()>;
}

impl Body for AuditEvent {
    fn write_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        match self {
            AuditEvent::Request(record) => {
                write_request(out, record);
                Ok(())
            }
            other => serde(out, other),
        }
    }
}

impl Body for WriterRecord {
    fn write_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        serde(out, self)
    }
}

fn serde<T: Serialize>(out: &mut Vec<u8>, value: &T) -> io::Result<()> {
    serde_json::to_writer(out, value).map_err(io::Error::other)
}

/// A JSON string: copied as is when nothing in it needs escaping, else left to serde_json.
fn string(out: &mut Vec<u8>, text: &str) {
    // A fold without early exit: the compiler vectorises it (an `all` stops at the first
    // byte that needs escaping, so it checks one byte at a time; this showed in profiles).
    let plain = text.bytes().fold(true, |plain, b| {
        plain & (0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing a `str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

fn number(out: &mut Vec<u8>, n: impl Into<u64>) {
    decimal(out, n.into());
}

/// `n` in decimal, without going through `core::fmt` (which showed in profiles).
pub fn decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn write_request(out: &mut Vec<u8>, r: &RequestRecord) {
    out.extend_from_slice(b"{\"kind\":\"request\",\"endpoint\":");
    string(out, &r.endpoint);
    out.extend_from_slice(b",\"status\":");
    number(out, r.status);
    out.extend_from_slice(b",\"outcome\":");
    string(out, &r.outcome.0);
    out.extend_from_slice(b",\"duration_us\":");
    number(out, r.duration_us);
    if let Some(client) = &r.client {
        out.extend_from_slice(b",\"client\":\"");
        match client {
            // `core::fmt` showed in profiles; IPv4 is what loopback and most proxies give.
            std::net::IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b'.');
                    }
                    decimal(out, u64::from(octet));
                }
            }
            // An address prints as digits, dots, colons and hex letters.
            v6 => {
                let _ = write!(out, "{v6}");
            }
        }
        out.push(b'"');
    }
    if let Some(db) = &r.database {
        out.extend_from_slice(b",\"database\":{\"id\":");
        number(out, db.id);
        if let Some(path) = &db.path {
            out.extend_from_slice(b",\"path\":");
            string(out, path);
        }
        out.push(b'}');
    }
    if let Some(credential) = &r.credential {
        out.extend_from_slice(b",\"credential\":");
        match credential {
            CredentialRef::Root => out.extend_from_slice(b"{\"type\":\"root\"}"),
            CredentialRef::Key { database, id } => {
                out.extend_from_slice(b"{\"type\":\"key\",\"database\":");
                number(out, *database);
                out.extend_from_slice(b",\"id\":");
                number(out, *id);
                out.push(b'}');
            }
            other => {
                let _ = serde_json::to_writer(&mut *out, other);
            }
        }
    }
    if let Some(ts) = r.txn_ts {
        out.extend_from_slice(b",\"txn_ts\":");
        number(out, ts);
    }
    if let Some(hash) = &r.query_hash {
        // Hex digits: nothing to escape.
        out.extend_from_slice(b",\"query_hash\":\"");
        out.extend_from_slice(&hash.hex());
        out.push(b'"');
    }
    if let Some(tags) = &r.tags {
        out.extend_from_slice(b",\"tags\":");
        string(out, tags);
    }
    if let Some(ops) = &r.ops {
        out.extend_from_slice(b",\"ops\":{\"compute\":");
        number(out, ops.compute);
        out.extend_from_slice(b",\"read\":");
        number(out, ops.read);
        out.extend_from_slice(b",\"write\":");
        number(out, ops.write);
        out.extend_from_slice(b",\"contention_retries\":");
        number(out, ops.contention_retries);
        out.push(b'}');
    }
    if let Some(trace) = &r.trace_id {
        // 32 hex digits (checked when it was made): nothing to escape.
        out.extend_from_slice(b",\"trace_id\":\"");
        out.extend_from_slice(trace.digits());
        out.push(b'"');
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{DatabaseRef, Ops, Outcome, TraceId};

    fn full() -> RequestRecord {
        RequestRecord {
            endpoint: "/query/1".into(),
            status: 200,
            outcome: Outcome::ok(),
            duration_us: 812,
            client: Some("::1".parse().unwrap()),
            database: Some(DatabaseRef {
                id: 7,
                path: Some("app/\"quoted\"\n".into()),
            }),
            credential: Some(CredentialRef::Key { database: 7, id: 9 }),
            txn_ts: Some(1_795_803_691_266_621),
            query_hash: Some(crate::event::query_hash(b"Books.all()")),
            tags: Some("team=a,note=é\u{1}\\".into()),
            ops: Some(Ops {
                compute: 1,
                read: 2,
                write: 3,
                contention_retries: 4,
            }),
            trace_id: TraceId::parse("4bf92f3577b34da6a3ce929d0e0e4736"),
        }
    }

    #[test]
    fn decimals_are_written_like_display() {
        for n in [0, 7, 10, 99, 1_000_000, 1_795_803_691_266_621, u64::MAX] {
            let mut out = Vec::new();
            decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
    }

    #[test]
    fn request_records_are_written_exactly_as_serde_writes_them() {
        let bare = RequestRecord {
            endpoint: "/x\u{7f}".to_owned().into(),
            status: 404,
            outcome: Outcome::error("not_found"),
            duration_us: 0,
            client: Some("10.0.0.1".parse().unwrap()),
            database: Some(DatabaseRef::id(0)),
            credential: None,
            txn_ts: None,
            query_hash: None,
            tags: None,
            ops: None,
            trace_id: None,
        };
        let credentials = [
            CredentialRef::Root,
            CredentialRef::Key { database: 1, id: 2 },
            CredentialRef::Token {
                database: 1,
                id: 3,
                identity: Some((1024, 5)),
            },
            CredentialRef::Jwt {
                database: 1,
                provider: 4,
                iss: Some("https://issuer".into()),
                sub: None,
            },
            CredentialRef::Other,
        ];
        let mut other_address = bare.clone();
        other_address.client = Some("255.0.19.200".parse().unwrap());
        let mut records = vec![bare, other_address];
        for credential in credentials {
            let mut record = full();
            record.credential = Some(credential);
            records.push(record);
        }
        for record in records {
            let event = AuditEvent::Request(record);
            let mut ours = Vec::new();
            event.write_json(&mut ours).unwrap();
            let theirs = serde_json::to_vec(&event).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(theirs).unwrap()
            );
        }
    }
}
