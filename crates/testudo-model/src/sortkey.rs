//! Order-preserving key encoding of values: comparing two encodings bytewise gives FQL's
//! total order of the values (§3.5 of the FQL reference), so indexes can keep entries
//! sorted in a plain ordered key-value store.
//!
//! The order, and [`compare_data`] which states it directly:
//! - kinds rank Number < Bytes < String < Array < Struct < Document < Time <
//!   TransactionTime < Date < Boolean < Null (IDs, UUIDs, modules and the other
//!   non-persistable kinds have ranks between these but never reach an index);
//! - numbers compare by exact numeric value across `Int` and `Double`, with Java
//!   `Double.compare`'s placement of the special values: `-Infinity` < negatives < `-0.0` <
//!   `0` = `0.0` < positives < `Infinity` < `NaN` (all NaNs equal). Fauna's core converts a
//!   `Long` to `Double` before comparing it with a `Double`, which is not transitive
//!   (2^53 + 1 would equal 2^53 as a double but not as a long); a sort order must be, so
//!   here the comparison is exact;
//! - strings by UTF-16 code units (as Java's `String.compareTo`), bytes unsigned
//!   lexicographically, arrays lexicographically (a prefix first), structs as their
//!   `(key, value)` lists sorted by key, documents by collection id then document id.
//!
//! Equal values encode to equal bytes (`1` and `1.0` alike) and every encoding is
//! prefix-free, so encodings can be concatenated into composite keys, and
//! [`encode_sort_key_desc`] (the bytewise complement) reverses the order exactly.
//!
//! **Invariant:** the encoding is a persistence contract for index entries: changing it
//! requires re-indexing. Never panics; recursion follows the value's own nesting, which
//! stored values bound (see [`crate::codec::MAX_DEPTH`]).

use std::cmp::Ordering;

use crate::Data;

/// Terminates arrays and structs; below every value tag and the struct entry marker.
const END: u8 = 0x00;
/// Precedes each struct entry, so an empty key cannot be mistaken for the end.
const ENTRY: u8 = 0x01;

const TAG_NUMBER: u8 = 0x10;
const TAG_BYTES: u8 = 0x20;
const TAG_STRING: u8 = 0x30;
const TAG_ARRAY: u8 = 0x40;
const TAG_STRUCT: u8 = 0x50;
const TAG_REF: u8 = 0x70;
const TAG_TIME: u8 = 0x80;
const TAG_TXN_TIME: u8 = 0x90;
const TAG_DATE: u8 = 0xA0;
const TAG_BOOL: u8 = 0xC0;
const TAG_NULL: u8 = 0xF0;

// Classes of numbers, in order; finite non-zero ones carry a magnitude.
const NUM_NEG_INF: u8 = 0x01;
const NUM_NEG: u8 = 0x02;
const NUM_NEG_ZERO: u8 = 0x03;
const NUM_ZERO: u8 = 0x04;
const NUM_POS: u8 = 0x05;
const NUM_POS_INF: u8 = 0x06;
const NUM_NAN: u8 = 0x07;

/// Appends the ascending sort key of `value` to `out`.
pub fn encode_sort_key(value: &Data, out: &mut Vec<u8>) {
    match value {
        Data::Int(n) => encode_int(*n, out),
        Data::Double(x) => encode_double(*x, out),
        Data::Bytes(bytes) => {
            out.push(TAG_BYTES);
            // 0x00 is escaped as 00 FF and the end is 00 01, so a prefix sorts first.
            for &b in bytes {
                out.push(b);
                if b == 0 {
                    out.push(0xFF);
                }
            }
            out.extend_from_slice(&[0x00, 0x01]);
        }
        Data::String(s) => {
            out.push(TAG_STRING);
            encode_str(s, out);
        }
        Data::Array(items) => {
            out.push(TAG_ARRAY);
            for item in items {
                encode_sort_key(item, out);
            }
            out.push(END);
        }
        Data::Object(map) => {
            out.push(TAG_STRUCT);
            let mut entries: Vec<(&String, &Data)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| utf16_cmp(a.0, b.0));
            for (k, v) in entries {
                out.push(ENTRY);
                encode_str(k, out);
                encode_sort_key(v, out);
            }
            out.push(END);
        }
        Data::Ref { coll, id } => {
            out.push(TAG_REF);
            out.extend_from_slice(&coll.0.to_be_bytes());
            out.extend_from_slice(&id.0.to_be_bytes());
        }
        Data::Time(t) => {
            out.push(TAG_TIME);
            out.extend_from_slice(&flip_sign(t.secs()).to_be_bytes());
            out.extend_from_slice(&t.subsec_nanos().to_be_bytes());
        }
        Data::TxnTime => out.push(TAG_TXN_TIME),
        Data::Date(d) => {
            out.push(TAG_DATE);
            out.extend_from_slice(&flip_sign(d.days()).to_be_bytes());
        }
        Data::Bool(b) => out.extend_from_slice(&[TAG_BOOL, u8::from(*b)]),
        Data::Null => out.push(TAG_NULL),
    }
}

/// Appends the descending sort key of `value` to `out`: the complement of the ascending
/// one, which reverses the order because encodings are prefix-free.
pub fn encode_sort_key_desc(value: &Data, out: &mut Vec<u8>) {
    let start = out.len();
    encode_sort_key(value, out);
    for b in &mut out[start..] {
        *b = !*b;
    }
}

/// Maps `i64` order onto unsigned big-endian byte order.
fn flip_sign(n: i64) -> u64 {
    (n as u64) ^ (1 << 63)
}

/// A finite non-zero magnitude as `1.fraction × 2^exp`: exponent biased to be positive,
/// fraction bits left-aligned. Both `i64` (≤ 63 significant bits) and `f64` (53) fit exactly,
/// so an integer and a double of equal value get equal bytes.
fn encode_magnitude(negative: bool, exp: i32, fraction: u64, out: &mut Vec<u8>) {
    let biased = (exp + 1075) as u16;
    let (class, biased, fraction) = if negative {
        (NUM_NEG, !biased, !fraction)
    } else {
        (NUM_POS, biased, fraction)
    };
    out.extend_from_slice(&[TAG_NUMBER, class]);
    out.extend_from_slice(&biased.to_be_bytes());
    out.extend_from_slice(&fraction.to_be_bytes());
}

/// The bits below the leading one of `m`, left-aligned in 64 bits.
fn fraction_below_leading_one(m: u64) -> u64 {
    m.checked_shl(m.leading_zeros() + 1).unwrap_or(0)
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n == 0 {
        out.extend_from_slice(&[TAG_NUMBER, NUM_ZERO]);
        return;
    }
    let m = n.unsigned_abs();
    let exp = 63 - m.leading_zeros() as i32;
    encode_magnitude(n < 0, exp, fraction_below_leading_one(m), out);
}

fn encode_double(x: f64, out: &mut Vec<u8>) {
    let class = if x.is_nan() {
        NUM_NAN
    } else if x == f64::INFINITY {
        NUM_POS_INF
    } else if x == f64::NEG_INFINITY {
        NUM_NEG_INF
    } else if x == 0.0 {
        if x.is_sign_negative() {
            NUM_NEG_ZERO
        } else {
            NUM_ZERO
        }
    } else {
        let bits = x.to_bits();
        let biased_exp = ((bits >> 52) & 0x7ff) as i32;
        let mantissa = bits & ((1 << 52) - 1);
        let (exp, fraction) = if biased_exp == 0 {
            // Subnormal: value = mantissa × 2^-1074; renormalize around its leading one.
            (
                63 - mantissa.leading_zeros() as i32 - 1074,
                fraction_below_leading_one(mantissa),
            )
        } else {
            (biased_exp - 1023, mantissa << 12)
        };
        encode_magnitude(x < 0.0, exp, fraction, out);
        return;
    };
    out.extend_from_slice(&[TAG_NUMBER, class]);
}

/// Strings in UTF-16 code unit order, without a NUL byte until the terminator: each code
/// point is remapped so supplementary characters (surrogate pairs in UTF-16, 0xD800..) sort
/// between U+D7FF and U+E000, shifted by one so it is never zero, then written in the
/// order-preserving UTF-8 shape.
fn encode_str(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        let c = c as u32;
        let mapped = match c {
            0..=0xD7FF => c,
            0xE000..=0xFFFF => c + 0x10_0000,
            _ => c - 0x1_0000 + 0xD800,
        } + 1;
        push_utf8_shape(mapped, out);
    }
    out.push(0x00);
}

/// UTF-8's byte layout for any value below 2^21, which preserves numeric order.
fn push_utf8_shape(v: u32, out: &mut Vec<u8>) {
    if v < 0x80 {
        out.push(v as u8);
    } else if v < 0x800 {
        out.extend_from_slice(&[0xC0 | (v >> 6) as u8, 0x80 | (v & 0x3F) as u8]);
    } else if v < 0x1_0000 {
        out.extend_from_slice(&[
            0xE0 | (v >> 12) as u8,
            0x80 | ((v >> 6) & 0x3F) as u8,
            0x80 | (v & 0x3F) as u8,
        ]);
    } else {
        out.extend_from_slice(&[
            0xF0 | (v >> 18) as u8,
            0x80 | ((v >> 12) & 0x3F) as u8,
            0x80 | ((v >> 6) & 0x3F) as u8,
            0x80 | (v & 0x3F) as u8,
        ]);
    }
}

/// Java's `String.compareTo`: UTF-16 code unit order.
pub fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `Double.compare`: `-0.0 < 0.0`, NaN above everything and equal to itself.
pub fn java_double_cmp(a: f64, b: f64) -> Ordering {
    if a < b {
        Ordering::Less
    } else if a > b {
        Ordering::Greater
    } else {
        let canonical = |x: f64| {
            if x.is_nan() {
                0x7ff8_0000_0000_0000
            } else {
                x.to_bits() as i64
            }
        };
        canonical(a).cmp(&canonical(b))
    }
}

/// Exact comparison of an integer with a double, with `Double.compare`'s special cases.
fn int_double_cmp(i: i64, x: f64) -> Ordering {
    if x.is_nan() {
        return Ordering::Less;
    }
    if x == 0.0 && i == 0 {
        return if x.is_sign_negative() {
            Ordering::Greater
        } else {
            Ordering::Equal
        };
    }
    // 2^63: every double at or above it exceeds every i64, and below -2^63 is smaller.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if x >= TWO_63 {
        return Ordering::Less;
    }
    if x < -TWO_63 {
        return Ordering::Greater;
    }
    let whole = x.trunc();
    i.cmp(&(whole as i64))
        .then_with(|| java_double_cmp(0.0, x - whole))
}

fn rank(v: &Data) -> u8 {
    match v {
        Data::Int(_) | Data::Double(_) => 0,
        Data::Bytes(_) => 1,
        Data::String(_) => 2,
        Data::Array(_) => 3,
        Data::Object(_) => 4,
        Data::Ref { .. } => 6,
        Data::Time(_) => 7,
        Data::TxnTime => 8,
        Data::Date(_) => 9,
        Data::Bool(_) => 11,
        Data::Null => 18,
    }
}

/// FQL's total order on persistable values, the specification [`encode_sort_key`] follows.
pub fn compare_data(a: &Data, b: &Data) -> Ordering {
    match (a, b) {
        (Data::Int(x), Data::Int(y)) => x.cmp(y),
        (Data::Double(x), Data::Double(y)) => java_double_cmp(*x, *y),
        (Data::Int(x), Data::Double(y)) => int_double_cmp(*x, *y),
        (Data::Double(x), Data::Int(y)) => int_double_cmp(*y, *x).reverse(),
        (Data::Bytes(x), Data::Bytes(y)) => x.cmp(y),
        (Data::String(x), Data::String(y)) => utf16_cmp(x, y),
        (Data::Array(x), Data::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = compare_data(p, q);
                if o.is_ne() {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Data::Object(x), Data::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_unstable_by(|p, q| utf16_cmp(p.0, q.0));
            ys.sort_unstable_by(|p, q| utf16_cmp(p.0, q.0));
            for ((kx, vx), (ky, vy)) in xs.iter().zip(&ys) {
                let o = utf16_cmp(kx, ky).then_with(|| compare_data(vx, vy));
                if o.is_ne() {
                    return o;
                }
            }
            xs.len().cmp(&ys.len())
        }
        (Data::Ref { coll: c1, id: i1 }, Data::Ref { coll: c2, id: i2 }) => (c1, i1).cmp(&(c2, i2)),
        (Data::Time(x), Data::Time(y)) => x.cmp(y),
        (Data::Date(x), Data::Date(y)) => x.cmp(y),
        (Data::Bool(x), Data::Bool(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testgen::{Rng, random_data};
    use crate::{CollId, DataMap, DocId, Time};

    fn key(v: &Data) -> Vec<u8> {
        let mut out = Vec::new();
        encode_sort_key(v, &mut out);
        out
    }

    fn desc(v: &Data) -> Vec<u8> {
        let mut out = Vec::new();
        encode_sort_key_desc(v, &mut out);
        out
    }

    fn obj(entries: &[(&str, Data)]) -> Data {
        Data::Object(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<DataMap>(),
        )
    }

    fn check_pair(a: &Data, b: &Data) {
        let expected = compare_data(a, b);
        assert_eq!(key(a).cmp(&key(b)), expected, "asc {a:?} vs {b:?}");
        assert_eq!(
            desc(a).cmp(&desc(b)),
            expected.reverse(),
            "desc {a:?} vs {b:?}"
        );
        assert_eq!(
            compare_data(b, a),
            expected.reverse(),
            "antisymmetry {a:?} vs {b:?}"
        );
    }

    #[test]
    fn this_sequence_is_strictly_ascending() {
        let ascending = [
            Data::Double(f64::NEG_INFINITY),
            Data::Double(-1e300),
            Data::Int(i64::MIN),
            Data::Int(-(1 << 53) - 1),
            Data::Double(-9_007_199_254_740_992.0),
            Data::Double(-1.5),
            Data::Int(-1),
            Data::Double(-0.5),
            Data::Double(-5e-324),
            Data::Double(-0.0),
            Data::Int(0),
            Data::Double(5e-324),
            Data::Double(f64::MIN_POSITIVE),
            Data::Double(0.5),
            Data::Int(1),
            Data::Double(1.5),
            Data::Int(2),
            Data::Double(9_007_199_254_740_992.0),
            Data::Int((1 << 53) + 1),
            Data::Int(i64::MAX),
            Data::Double(9.223372036854776e18),
            Data::Double(1e300),
            Data::Double(f64::INFINITY),
            Data::Double(f64::NAN),
            Data::Bytes(vec![]),
            Data::Bytes(vec![0]),
            Data::Bytes(vec![0, 0]),
            Data::Bytes(vec![0, 1]),
            Data::Bytes(vec![1]),
            Data::Bytes(vec![0xff]),
            Data::String("".into()),
            Data::String("\0".into()),
            Data::String("\0\0".into()),
            Data::String("\u{1}".into()),
            Data::String("A".into()),
            Data::String("a".into()),
            Data::String("a\0".into()),
            Data::String("ab".into()),
            Data::String("\u{d7ff}".into()),
            Data::String("\u{10000}".into()),
            Data::String("\u{1F600}".into()),
            Data::String("\u{10FFFF}".into()),
            Data::String("\u{e000}".into()),
            Data::String("\u{ffff}".into()),
            Data::Array(vec![]),
            Data::Array(vec![Data::Int(1)]),
            Data::Array(vec![Data::Int(1), Data::Null]),
            Data::Array(vec![Data::Int(2)]),
            Data::Array(vec![Data::String("".into())]),
            obj(&[]),
            obj(&[("", Data::Int(5))]),
            obj(&[("a", Data::Int(1))]),
            obj(&[("a", Data::Int(1)), ("b", Data::Int(0))]),
            obj(&[("b", Data::Int(0)), ("a", Data::Int(2))]),
            obj(&[("b", Data::Int(0))]),
            Data::Ref {
                coll: CollId(1024),
                id: DocId(5),
            },
            Data::Ref {
                coll: CollId(1024),
                id: DocId(6),
            },
            Data::Ref {
                coll: CollId(1025),
                id: DocId(0),
            },
            Data::Time(Time::MIN),
            Data::Time(Time::from_micros(-1)),
            Data::Time(Time::EPOCH),
            Data::Time(Time::MAX),
            Data::TxnTime,
            Data::Date(crate::Date::MIN),
            Data::Date(crate::Date::from_days(0)),
            Data::Date(crate::Date::MAX),
            Data::Bool(false),
            Data::Bool(true),
            Data::Null,
        ];
        for (i, a) in ascending.iter().enumerate() {
            for b in &ascending[i + 1..] {
                assert_eq!(compare_data(a, b), Ordering::Less, "{a:?} < {b:?}");
                check_pair(a, b);
            }
        }
    }

    #[test]
    fn numerically_equal_values_have_equal_keys() {
        let pairs = [
            (Data::Int(1), Data::Double(1.0)),
            (Data::Int(0), Data::Double(0.0)),
            (Data::Int(i64::MIN), Data::Double(-9.223372036854776e18)),
            (Data::Int(1 << 53), Data::Double(9_007_199_254_740_992.0)),
            (Data::Double(f64::NAN), Data::Double(-f64::NAN)),
            (
                obj(&[("a", Data::Int(1)), ("b", Data::Int(2))]),
                obj(&[("b", Data::Double(2.0)), ("a", Data::Int(1))]),
            ),
        ];
        for (a, b) in pairs {
            assert_eq!(compare_data(&a, &b), Ordering::Equal, "{a:?} = {b:?}");
            assert_eq!(key(&a), key(&b), "{a:?} = {b:?}");
        }
    }

    #[test]
    fn random_values_order_like_the_reference_comparator() {
        let mut rng = Rng::new(42);
        let values: Vec<Data> = (0..400).map(|_| random_data(&mut rng, 3)).collect();
        for a in &values {
            for b in &values {
                check_pair(a, b);
            }
        }
    }

    #[test]
    fn keys_compose_into_composite_keys() {
        // (a, b) tuples sort by a first even when a's encodings have different lengths.
        let mut rng = Rng::new(5);
        let mut tuples: Vec<(Data, Data)> = (0..300)
            .map(|_| (random_data(&mut rng, 1), random_data(&mut rng, 1)))
            .collect();
        let composite = |(a, b): &(Data, Data)| {
            let mut out = Vec::new();
            encode_sort_key(a, &mut out);
            encode_sort_key_desc(b, &mut out);
            out
        };
        tuples.sort_by(|x, y| compare_data(&x.0, &y.0).then_with(|| compare_data(&y.1, &x.1)));
        for w in tuples.windows(2) {
            assert!(
                composite(&w[0]) <= composite(&w[1]),
                "{:?} then {:?}",
                w[0],
                w[1]
            );
        }
    }
}
