//! The scenarios and their request bodies, byte for byte what a Fauna driver sends for the
//! same template: `{"query":{"fql":[...]},"arguments":{}}`, interpolated values as
//! `{"value": <tagged>}` fragments (as the JS driver's `fql\`...${x}\`` and Python's
//! `fql("...${x}", x=...)` encode them).
//!
//! - `point-read`: `BenchRead.byId(${id})`, `id` drawn uniformly from the seeded documents.
//! - `create`: `BenchWrite.create({ n: ${i}, s: ${s} })`, one new document (one commit) per
//!   request.
//! - `scan-100`: `BenchScan.where(.n >= 0).take(100).toArray()` over a collection of exactly
//!   100 documents: every document is read and tested, and all 100 are returned in full.
//!   (`toArray` rather than a paginated set so the response carries all 100, not a page.)
//! - `hello`: the point-read body, sent to `hello-server`, which ignores it.
//!
//! **Invariants:** bodies are built with `serde_json` (never by pasting strings into JSON);
//! the body of a request depends only on the workload, the worker's random state and its
//! sequence number.

use bytes::Bytes;
use clap::ValueEnum;
use serde_json::{Value, json};

pub const READ_COLLECTION: &str = "BenchRead";
pub const WRITE_COLLECTION: &str = "BenchWrite";
pub const SCAN_COLLECTION: &str = "BenchScan";
/// Documents in the scanned collection; the scan query reads and returns them all.
pub const SCAN_DOCS: usize = 100;

/// The string field of every seeded and created document (64 bytes: a small but not empty
/// payload).
pub const FILLER: &str = "testudo-bench-filler-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    PointRead,
    Create,
    #[value(name = "scan-100")]
    Scan100,
    Hello,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::PointRead => "point-read",
            Scenario::Create => "create",
            Scenario::Scan100 => "scan-100",
            Scenario::Hello => "hello",
        }
    }
}

/// A template fragment of raw FQL text.
pub fn text(fql: &str) -> Value {
    Value::String(fql.to_owned())
}

/// A template fragment carrying a value (tagged format).
pub fn value(tagged: Value) -> Value {
    json!({ "value": tagged })
}

/// A tagged `@int`.
pub fn int(n: i64) -> Value {
    json!({ "@int": n.to_string() })
}

/// The body of a `POST /query/1` for a template made of `fragments`.
pub fn query_body(fragments: Vec<Value>) -> Bytes {
    let body = json!({ "query": { "fql": fragments }, "arguments": {} });
    Bytes::from(body.to_string())
}

pub fn point_read_body(id: &str) -> Bytes {
    query_body(vec![
        text(&format!("{READ_COLLECTION}.byId(")),
        value(Value::String(id.to_owned())),
        text(")"),
    ])
}

pub fn create_body(collection: &str, n: i64) -> Bytes {
    query_body(vec![
        text(&format!("{collection}.create({{ n: ")),
        value(int(n)),
        text(", s: "),
        value(Value::String(FILLER.to_owned())),
        text(" })"),
    ])
}

pub fn scan_body() -> Bytes {
    query_body(vec![text(&format!(
        "{SCAN_COLLECTION}.where(.n >= 0).take({SCAN_DOCS}).toArray()"
    ))])
}

/// What each request of a run sends.
#[derive(Debug, Clone)]
pub enum Workload {
    /// The same body every time.
    Fixed(Bytes),
    /// One of these bodies, uniformly at random.
    Pick(Vec<Bytes>),
    /// A create whose `n` is the request's sequence number.
    Create,
}

impl Workload {
    pub fn body(&self, rng: &mut Rng, sequence: u64) -> Bytes {
        match self {
            Workload::Fixed(body) => body.clone(),
            Workload::Pick(bodies) => {
                let index = rng.below(bodies.len() as u64);
                usize::try_from(index)
                    .ok()
                    .and_then(|i| bodies.get(i))
                    .cloned()
                    .unwrap_or_default()
            }
            Workload::Create => create_body(
                WRITE_COLLECTION,
                i64::try_from(sequence).unwrap_or(i64::MAX),
            ),
        }
    }
}

/// A small, seedable pseudo-random generator (SplitMix64): reproducible id choices without a
/// dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0); the modulo bias is below 2^-40 for any
    /// bound this tool uses.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(body: &Bytes) -> Value {
        serde_json::from_slice(body).unwrap()
    }

    #[test]
    fn a_point_read_is_the_template_a_driver_sends_for_by_id() {
        assert_eq!(
            parsed(&point_read_body("123")),
            json!({
                "query": { "fql": ["BenchRead.byId(", { "value": "123" }, ")"] },
                "arguments": {}
            })
        );
    }

    #[test]
    fn a_create_interpolates_n_as_a_tagged_int_and_s_as_a_string() {
        assert_eq!(
            parsed(&create_body("C", 7)),
            json!({
                "query": { "fql": [
                    "C.create({ n: ", { "value": { "@int": "7" } },
                    ", s: ", { "value": FILLER }, " })"
                ] },
                "arguments": {}
            })
        );
    }

    #[test]
    fn the_scan_takes_and_returns_all_hundred_documents() {
        assert_eq!(
            parsed(&scan_body())["query"]["fql"][0],
            "BenchScan.where(.n >= 0).take(100).toArray()"
        );
    }

    #[test]
    fn picks_are_reproducible_from_the_seed_and_cover_every_body() {
        let workload = Workload::Pick((0..4).map(|i| point_read_body(&i.to_string())).collect());
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..64)
                .map(|i| workload.body(&mut rng, i))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        for i in 0..4 {
            assert!(draw(1).contains(&point_read_body(&i.to_string())));
        }
    }

    #[test]
    fn creates_number_their_documents_by_sequence() {
        let body = Workload::Create.body(&mut Rng::new(0), 41);
        assert_eq!(parsed(&body)["query"]["fql"][1]["value"]["@int"], "41");
    }

    #[test]
    fn below_stays_below_its_bound() {
        let mut rng = Rng::new(9);
        assert!((0..1000).all(|_| rng.below(3) < 3));
        assert_eq!(rng.below(0), 0);
    }
}
