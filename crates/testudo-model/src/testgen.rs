//! Deterministic random values for property-style tests (no external crates).
//!
//! Generators favour the edge cases that break codecs and orderings: extreme integers,
//! signed zeros, NaN, subnormals, NUL and surrogate-pair characters, empty containers.

use crate::{CollId, Data, DataMap, Date, DocId, StoredDoc, Time};

/// xorshift64*: tiny, fast and good enough to explore value shapes.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    i32::MAX as i64,
    i32::MIN as i64,
    1 << 53,
    (1 << 53) + 1,
    i64::MAX,
    i64::MIN,
    i64::MAX - 1,
];

const DOUBLES: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    1.5,
    9_007_199_254_740_992.0,
    9.223372036854776e18,
    -9.223372036854776e18,
    1e300,
    -1e300,
    5e-324,
    -5e-324,
    f64::MIN_POSITIVE,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
];

const STRINGS: &[&str] = &[
    "",
    "a",
    "ab",
    "b",
    "\0",
    "a\0",
    "\u{7f}",
    "é",
    "\u{d7ff}",
    "\u{e000}",
    "\u{ffff}",
    "\u{10000}",
    "\u{1F600}",
    "@a",
];

pub fn random_string(rng: &mut Rng) -> String {
    let parts = rng.below(3);
    (0..parts).map(|_| *rng.pick(STRINGS)).collect()
}

pub fn random_number(rng: &mut Rng) -> Data {
    match rng.below(4) {
        0 => Data::Int(*rng.pick(INTS)),
        1 => Data::Double(*rng.pick(DOUBLES)),
        2 => Data::Int(rng.below(7) as i64 - 3),
        _ => Data::Double(f64::from_bits(rng.next())),
    }
}

/// A random value; `depth` bounds container nesting.
pub fn random_data(rng: &mut Rng, depth: u32) -> Data {
    let kinds = if depth == 0 { 10 } else { 12 };
    match rng.below(kinds) {
        0 => Data::Null,
        1 => Data::Bool(rng.below(2) == 1),
        2 | 3 => random_number(rng),
        4 => Data::String(random_string(rng)),
        5 => Data::Bytes(
            (0..rng.below(4))
                .map(|_| *rng.pick(&[0u8, 1, 0xfe, 0xff, 7]))
                .collect(),
        ),
        6 => Data::Time(
            Time::new(
                *rng.pick(&[0, -1, 1, Time::MIN.secs(), Time::MAX.secs()]),
                *rng.pick(&[0, 1, 999_999_999]),
            )
            .unwrap_or(Time::EPOCH),
        ),
        7 => Data::Date(Date::from_days(*rng.pick(&[
            0,
            -1,
            1,
            Date::MIN.days(),
            Date::MAX.days(),
        ]))),
        8 => Data::Ref {
            coll: CollId(*rng.pick(&[0, 1, 1024, u64::MAX])),
            id: DocId(*rng.pick(&[0, 1, DocId::MAX])),
        },
        9 => Data::TxnTime,
        10 => Data::Array(
            (0..rng.below(4))
                .map(|_| random_data(rng, depth - 1))
                .collect(),
        ),
        _ => {
            let mut map = DataMap::new();
            for _ in 0..rng.below(4) {
                map.insert(random_string(rng), random_data(rng, depth - 1));
            }
            Data::Object(map)
        }
    }
}

pub fn random_doc(rng: &mut Rng) -> StoredDoc {
    let mut fields = DataMap::new();
    for _ in 0..rng.below(6) {
        fields.insert(random_string(rng), random_data(rng, 3));
    }
    let ttl = (rng.below(3) == 0).then(|| Time::from_micros(rng.next() as i64));
    StoredDoc { fields, ttl }
}

/// Structural equality that treats doubles as equal when their bits are (so NaN equals
/// itself and `-0.0` differs from `0.0`).
pub fn same_data(a: &Data, b: &Data) -> bool {
    match (a, b) {
        (Data::Double(x), Data::Double(y)) => x.to_bits() == y.to_bits(),
        (Data::Array(x), Data::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_data(a, b))
        }
        (Data::Object(x), Data::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_data(va, vb))
        }
        _ => a == b,
    }
}
