//! The versioned binary encoding of stored documents and values — a persistence contract:
//! bytes written by one release must read back identically in every later one.
//!
//! # Format version 1
//!
//! ```text
//! document    := 0x01 flags:u8 [ttl:time-body] object-body      flags: bit 0 = ttl present
//! single      := 0x01 value                                      (encode_data / decode_data)
//! object-body := count:varint (key value){count}                 keys unique
//! key         := len:varint utf8
//! value       := tag:u8 body
//!   0x00 null        (empty)
//!   0x01 false       (empty)
//!   0x02 true        (empty)
//!   0x03 int         zigzag varint of the i64
//!   0x04 double      8 bytes, the IEEE-754 bits little-endian (NaN payloads kept)
//!   0x05 string      len:varint utf8
//!   0x06 bytes       len:varint bytes
//!   0x07 time        time-body := secs:zigzag-varint nanos:varint  (nanos < 10^9, in Instant's range)
//!   0x08 date        days since 1970-01-01: zigzag varint, within years ±999,999,999
//!   0x09 array       count:varint value{count}
//!   0x0A object      object-body
//!   0x0B ref         coll:varint id:varint                          (id ≤ i64::MAX)
//!   0x0C txn time    (empty)
//! varint      := unsigned LEB128, at most 10 bytes
//! ```
//!
//! The first byte is the format version; a reader refuses versions it does not know
//! ([`CodecError::UnknownVersion`]) instead of guessing. A new version gets a new number and
//! this decoder keeps reading version 1.
//!
//! **Invariants:** decoding any byte string returns `Ok` or [`CodecError`] — never a panic,
//! never recursion deeper than [`MAX_DEPTH`], never an allocation larger than the input
//! justifies (element counts are checked against the bytes that remain). Encoding allocates
//! exactly once, the result, sized by a first pass. Writers must not store values nested
//! deeper than [`MAX_DEPTH`] (document writes are limited well below it).

use indexmap::IndexMap;

use crate::{CollId, Data, DataMap, Date, DocId, StoredDoc, Time};

/// The format version written by this release.
pub const VERSION: u8 = 1;

/// The deepest nesting of arrays and objects a stored value may have.
pub const MAX_DEPTH: usize = 512;

const TAG_NULL: u8 = 0x00;
const TAG_FALSE: u8 = 0x01;
const TAG_TRUE: u8 = 0x02;
const TAG_INT: u8 = 0x03;
const TAG_DOUBLE: u8 = 0x04;
const TAG_STRING: u8 = 0x05;
const TAG_BYTES: u8 = 0x06;
const TAG_TIME: u8 = 0x07;
const TAG_DATE: u8 = 0x08;
const TAG_ARRAY: u8 = 0x09;
const TAG_OBJECT: u8 = 0x0A;
const TAG_REF: u8 = 0x0B;
const TAG_TXN_TIME: u8 = 0x0C;

const FLAG_TTL: u8 = 0x01;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Written by a newer release (or not a stored value at all).
    #[error("unknown stored format version {0}")]
    UnknownVersion(u8),
    /// The bytes are not a valid encoding; the reason is for logs, not clients.
    #[error("corrupt stored value: {0}")]
    Corrupt(&'static str),
}

type Result<T> = std::result::Result<T, CodecError>;

/// Encodes one document version.
pub fn encode_doc(doc: &StoredDoc) -> Vec<u8> {
    let mut len = 2 + object_len(&doc.fields);
    if let Some(ttl) = doc.ttl {
        len += time_len(ttl);
    }
    let mut out = Vec::with_capacity(len);
    out.push(VERSION);
    match doc.ttl {
        Some(ttl) => {
            out.push(FLAG_TTL);
            put_time(&mut out, ttl);
        }
        None => out.push(0),
    }
    put_object(&mut out, &doc.fields);
    debug_assert_eq!(out.len(), len);
    out
}

/// Decodes one document version written by [`encode_doc`].
pub fn decode_doc(bytes: &[u8]) -> Result<StoredDoc> {
    let mut r = Reader::new(bytes)?;
    let flags = r.byte()?;
    if flags & !FLAG_TTL != 0 {
        return Err(CodecError::Corrupt("unknown document flags"));
    }
    let ttl = if flags & FLAG_TTL != 0 {
        Some(r.time()?)
    } else {
        None
    };
    let fields = r.object(0)?;
    r.finish()?;
    Ok(StoredDoc { fields, ttl })
}

/// Encodes a single value (an index value, a stored argument, ...).
pub fn encode_data(value: &Data) -> Vec<u8> {
    let len = 1 + value_len(value);
    let mut out = Vec::with_capacity(len);
    out.push(VERSION);
    put_value(&mut out, value);
    debug_assert_eq!(out.len(), len);
    out
}

/// Decodes a single value written by [`encode_data`].
pub fn decode_data(bytes: &[u8]) -> Result<Data> {
    let mut r = Reader::new(bytes)?;
    let value = r.value(0)?;
    r.finish()?;
    Ok(value)
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn varint_len(n: u64) -> usize {
    // 1 byte per started group of 7 bits; zero still takes one byte.
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn time_len(t: Time) -> usize {
    varint_len(zigzag(t.secs())) + varint_len(u64::from(t.subsec_nanos()))
}

fn put_time(out: &mut Vec<u8>, t: Time) {
    put_varint(out, zigzag(t.secs()));
    put_varint(out, u64::from(t.subsec_nanos()));
}

fn str_len(s: &[u8]) -> usize {
    varint_len(s.len() as u64) + s.len()
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn object_len(map: &DataMap) -> usize {
    varint_len(map.len() as u64)
        + map
            .iter()
            .map(|(k, v)| str_len(k.as_bytes()) + value_len(v))
            .sum::<usize>()
}

fn put_object(out: &mut Vec<u8>, map: &DataMap) {
    put_varint(out, map.len() as u64);
    for (k, v) in map {
        put_str(out, k.as_bytes());
        put_value(out, v);
    }
}

/// The encoded size of `value`, tag included.
fn value_len(value: &Data) -> usize {
    1 + match value {
        Data::Null | Data::Bool(_) | Data::TxnTime => 0,
        Data::Int(n) => varint_len(zigzag(*n)),
        Data::Double(_) => 8,
        Data::String(s) => str_len(s.as_bytes()),
        Data::Bytes(b) => str_len(b),
        Data::Time(t) => time_len(*t),
        Data::Date(d) => varint_len(zigzag(d.days())),
        Data::Array(items) => {
            varint_len(items.len() as u64) + items.iter().map(value_len).sum::<usize>()
        }
        Data::Object(map) => object_len(map),
        Data::Ref { coll, id } => varint_len(coll.0) + varint_len(id.0),
    }
}

fn put_value(out: &mut Vec<u8>, value: &Data) {
    match value {
        Data::Null => out.push(TAG_NULL),
        Data::Bool(false) => out.push(TAG_FALSE),
        Data::Bool(true) => out.push(TAG_TRUE),
        Data::Int(n) => {
            out.push(TAG_INT);
            put_varint(out, zigzag(*n));
        }
        Data::Double(x) => {
            out.push(TAG_DOUBLE);
            out.extend_from_slice(&x.to_bits().to_le_bytes());
        }
        Data::String(s) => {
            out.push(TAG_STRING);
            put_str(out, s.as_bytes());
        }
        Data::Bytes(b) => {
            out.push(TAG_BYTES);
            put_str(out, b);
        }
        Data::Time(t) => {
            out.push(TAG_TIME);
            put_time(out, *t);
        }
        Data::Date(d) => {
            out.push(TAG_DATE);
            put_varint(out, zigzag(d.days()));
        }
        Data::Array(items) => {
            out.push(TAG_ARRAY);
            put_varint(out, items.len() as u64);
            for item in items {
                put_value(out, item);
            }
        }
        Data::Object(map) => {
            out.push(TAG_OBJECT);
            put_object(out, map);
        }
        Data::Ref { coll, id } => {
            out.push(TAG_REF);
            put_varint(out, coll.0);
            put_varint(out, id.0);
        }
        Data::TxnTime => out.push(TAG_TXN_TIME),
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Checks the version byte and positions the reader after it.
    fn new(buf: &'a [u8]) -> Result<Self> {
        match buf.first() {
            None => Err(CodecError::Corrupt("empty")),
            Some(&VERSION) => Ok(Reader { buf, pos: 1 }),
            Some(&v) => Err(CodecError::UnknownVersion(v)),
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn finish(&self) -> Result<()> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(CodecError::Corrupt("trailing bytes"))
        }
    }

    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or(CodecError::Corrupt("truncated"))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(CodecError::Corrupt("length beyond the end"));
        }
        let slice = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(CodecError::Corrupt("varint overflows 64 bits"));
            }
            n |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(CodecError::Corrupt("varint longer than 10 bytes"))
    }

    /// A length or count: must not exceed the bytes left, which bounds every allocation.
    fn len(&mut self) -> Result<usize> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.remaining())
            .ok_or(CodecError::Corrupt("length beyond the end"))
    }

    fn str(&mut self) -> Result<String> {
        let len = self.len()?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CodecError::Corrupt("invalid UTF-8"))
    }

    fn time(&mut self) -> Result<Time> {
        let secs = unzigzag(self.varint()?);
        let nanos = u32::try_from(self.varint()?).map_err(|_| CodecError::Corrupt("bad time"))?;
        Time::new(secs, nanos).ok_or(CodecError::Corrupt("time out of range"))
    }

    fn object(&mut self, depth: usize) -> Result<DataMap> {
        let count = self.len()?;
        // Each entry takes at least two bytes (empty key, one-byte value).
        let mut map = IndexMap::with_capacity(count.min(self.remaining() / 2));
        for _ in 0..count {
            let key = self.str()?;
            let value = self.value(depth + 1)?;
            if map.insert(key, value).is_some() {
                return Err(CodecError::Corrupt("duplicate object key"));
            }
        }
        Ok(map)
    }

    fn value(&mut self, depth: usize) -> Result<Data> {
        if depth > MAX_DEPTH {
            return Err(CodecError::Corrupt("nested too deeply"));
        }
        Ok(match self.byte()? {
            TAG_NULL => Data::Null,
            TAG_FALSE => Data::Bool(false),
            TAG_TRUE => Data::Bool(true),
            TAG_INT => Data::Int(unzigzag(self.varint()?)),
            TAG_DOUBLE => {
                let bytes: [u8; 8] = self
                    .take(8)?
                    .try_into()
                    .map_err(|_| CodecError::Corrupt("truncated"))?;
                Data::Double(f64::from_bits(u64::from_le_bytes(bytes)))
            }
            TAG_STRING => Data::String(self.str()?),
            TAG_BYTES => {
                let len = self.len()?;
                Data::Bytes(self.take(len)?.to_vec())
            }
            TAG_TIME => Data::Time(self.time()?),
            TAG_DATE => {
                let days = unzigzag(self.varint()?);
                if !(Date::MIN.days()..=Date::MAX.days()).contains(&days) {
                    return Err(CodecError::Corrupt("date out of range"));
                }
                Data::Date(Date::from_days(days))
            }
            TAG_ARRAY => {
                let count = self.len()?;
                let mut items = Vec::with_capacity(count.min(self.remaining()));
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Data::Array(items)
            }
            TAG_OBJECT => Data::Object(self.object(depth)?),
            TAG_REF => {
                let coll = CollId(self.varint()?);
                let id = self.varint()?;
                if id > DocId::MAX {
                    return Err(CodecError::Corrupt("document id out of range"));
                }
                Data::Ref {
                    coll,
                    id: DocId(id),
                }
            }
            TAG_TXN_TIME => Data::TxnTime,
            _ => return Err(CodecError::Corrupt("unknown value tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::{Rng, random_data, random_doc, same_data};

    #[test]
    fn every_kind_of_value_round_trips() {
        let mut fields = DataMap::new();
        fields.insert("s".into(), Data::String("héllo \u{1F600}".into()));
        fields.insert("".into(), Data::Int(i64::MIN));
        fields.insert("max".into(), Data::Int(i64::MAX));
        fields.insert("d".into(), Data::Double(-0.0));
        fields.insert("b".into(), Data::Bytes(vec![0, 255, 7]));
        fields.insert("t".into(), Data::Time(Time::MIN));
        fields.insert("t2".into(), Data::Time(Time::MAX));
        fields.insert("date".into(), Data::Date(Date::MAX));
        fields.insert(
            "r".into(),
            Data::Ref {
                coll: CollId(u64::MAX),
                id: DocId(DocId::MAX),
            },
        );
        fields.insert("txn".into(), Data::TxnTime);
        fields.insert(
            "a".into(),
            Data::Array(vec![
                Data::Null,
                Data::Bool(true),
                Data::Bool(false),
                Data::Object(DataMap::new()),
            ]),
        );
        let doc = StoredDoc {
            fields,
            ttl: Some(Time::from_micros(1_700_000_000_000_000)),
        };
        let bytes = encode_doc(&doc);
        assert_eq!(decode_doc(&bytes), Ok(doc));
    }

    #[test]
    fn the_encoding_is_compact() {
        let mut fields = DataMap::new();
        fields.insert("n".into(), Data::Int(1));
        let bytes = encode_doc(&StoredDoc { fields, ttl: None });
        assert_eq!(bytes, [1, 0, 1, 1, b'n', TAG_INT, 2]);
        assert_eq!(encode_data(&Data::Int(-1)), [1, TAG_INT, 1]);
    }

    #[test]
    fn random_documents_round_trip() {
        let mut rng = Rng::new(7);
        for _ in 0..2_000 {
            let doc = random_doc(&mut rng);
            let bytes = encode_doc(&doc);
            assert_eq!(bytes.capacity(), bytes.len(), "the size pass must be exact");
            let back = decode_doc(&bytes).unwrap_or_else(|e| panic!("{e}: {doc:?}"));
            assert_eq!(back.ttl, doc.ttl);
            assert!(same_data(
                &Data::Object(back.fields),
                &Data::Object(doc.fields.clone())
            ));
            let value = random_data(&mut rng, 4);
            let back =
                decode_data(&encode_data(&value)).unwrap_or_else(|e| panic!("{e}: {value:?}"));
            assert!(same_data(&back, &value), "{value:?}");
        }
    }

    #[test]
    fn truncated_encodings_are_errors() {
        let mut rng = Rng::new(11);
        for _ in 0..300 {
            let bytes = encode_doc(&random_doc(&mut rng));
            for cut in 0..bytes.len() {
                assert!(
                    decode_doc(&bytes[..cut]).is_err(),
                    "prefix of {cut} bytes decoded"
                );
            }
        }
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let mut rng = Rng::new(13);
        for _ in 0..300 {
            let bytes = encode_doc(&random_doc(&mut rng));
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << (rng.next() % 8);
                let _ = decode_doc(&bad);
                bad[i] = rng.next() as u8;
                let _ = decode_doc(&bad);
                let _ = decode_data(&bad);
            }
        }
        for _ in 0..20_000 {
            let len = (rng.next() % 40) as usize;
            let mut junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(first) = junk.first_mut() {
                *first = VERSION;
            }
            let _ = decode_doc(&junk);
            let _ = decode_data(&junk);
        }
    }

    #[test]
    fn unknown_versions_are_refused() {
        assert_eq!(decode_doc(&[2, 0, 0]), Err(CodecError::UnknownVersion(2)));
        assert_eq!(decode_data(&[0, 0]), Err(CodecError::UnknownVersion(0)));
        assert_eq!(decode_doc(&[]), Err(CodecError::Corrupt("empty")));
    }

    #[test]
    fn forged_lengths_fail_before_allocating() {
        let mut bytes = vec![VERSION, TAG_STRING];
        put_varint(&mut bytes, 1 << 60);
        assert_eq!(
            decode_data(&bytes),
            Err(CodecError::Corrupt("length beyond the end"))
        );
        let mut bytes = vec![VERSION, TAG_ARRAY];
        put_varint(&mut bytes, u64::MAX);
        assert!(decode_data(&bytes).is_err());
        let mut bytes = vec![VERSION, 0];
        put_varint(&mut bytes, u64::MAX >> 1);
        assert!(decode_doc(&bytes).is_err());
    }

    #[test]
    fn nesting_beyond_the_cap_is_corrupt_not_a_stack_overflow() {
        let mut bytes = vec![VERSION];
        for _ in 0..100_000 {
            bytes.extend_from_slice(&[TAG_ARRAY, 1]);
        }
        bytes.push(TAG_NULL);
        assert_eq!(
            decode_data(&bytes),
            Err(CodecError::Corrupt("nested too deeply"))
        );

        let mut nested = Data::Null;
        for _ in 0..MAX_DEPTH {
            nested = Data::Array(vec![nested]);
        }
        assert_eq!(decode_data(&encode_data(&nested)), Ok(nested.clone()));
        let deeper = Data::Array(vec![nested]);
        assert!(decode_data(&encode_data(&deeper)).is_err());
    }

    #[test]
    fn invalid_payloads_are_corrupt() {
        let cases: &[&[u8]] = &[
            &[VERSION, TAG_STRING, 2, 0xff, 0xfe],
            &[VERSION, TAG_TIME, 0, 0x80, 0x94, 0xeb, 0xdc, 0x03],
            &[
                VERSION, TAG_REF, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            &[
                VERSION, TAG_INT, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            ],
            &[
                VERSION, TAG_INT, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ],
            &[VERSION, TAG_NULL, TAG_NULL],
            &[VERSION, 0x0D],
            &[VERSION, TAG_OBJECT, 2, 1, b'a', TAG_NULL, 1, b'a', TAG_NULL],
        ];
        for bytes in cases {
            assert!(
                matches!(decode_data(bytes), Err(CodecError::Corrupt(_))),
                "{bytes:?}"
            );
        }
        assert_eq!(
            decode_doc(&[VERSION, 2, 0]),
            Err(CodecError::Corrupt("unknown document flags"))
        );
    }

    #[test]
    fn varints_use_the_fewest_bytes() {
        for n in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX >> 1, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            assert_eq!(out.len(), varint_len(n), "{n}");
            let mut r = Reader { buf: &out, pos: 0 };
            assert_eq!(r.varint(), Ok(n));
        }
        for n in [0, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(n)), n);
        }
    }
}
