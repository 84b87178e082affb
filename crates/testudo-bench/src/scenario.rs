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
//! - `index-lookup`: `BenchIndex.byKey(${key}).first()`, `key` = `"k<i>"` with `i` drawn
//!   uniformly from the seeded documents (each document's `key` is unique): one index lookup
//!   and one document read.
//! - `order-index` / `order-scan`: the ten documents with the largest `n` among the seeded
//!   ones, through an index whose values are `n` descending (`BenchOrder.byN().take(10)
//!   .toArray()`) or by sorting the whole collection (`BenchOrder.all().order(desc(.n))
//!   .take(10).toArray()`).
//! - `one-plus-one`: `1 + 1`, the cheapest query that still goes through authentication, the
//!   parser and the engine (to compare the cost of the three kinds of secret).
//! - `login`: `Credential.byDocument(BenchUser.byId(${id})!)!.login(${password})`: one
//!   Argon2id verification and one token created (a durable commit) per request.
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
pub const INDEX_COLLECTION: &str = "BenchIndex";
/// The index of [`INDEX_COLLECTION`]: term `key`, no values.
pub const INDEX_NAME: &str = "byKey";
pub const ORDER_COLLECTION: &str = "BenchOrder";
/// The index of [`ORDER_COLLECTION`]: no terms, values `n` descending.
pub const ORDER_INDEX: &str = "byN";
/// Documents the order scenarios return.
pub const ORDER_TAKE: usize = 10;
/// The collection of the identity document behind `login` and `--auth token`.
pub const USER_COLLECTION: &str = "BenchUser";
/// The password of the benchmark user's credential (it passes the default password policy).
pub const PASSWORD: &str = "testudo-bench-login-pass";
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
    IndexLookup,
    OrderIndex,
    OrderScan,
    OnePlusOne,
    Login,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::PointRead => "point-read",
            Scenario::Create => "create",
            Scenario::Scan100 => "scan-100",
            Scenario::Hello => "hello",
            Scenario::IndexLookup => "index-lookup",
            Scenario::OrderIndex => "order-index",
            Scenario::OrderScan => "order-scan",
            Scenario::OnePlusOne => "one-plus-one",
            Scenario::Login => "login",
        }
    }

    /// Does the scenario read `--docs` seeded documents (so `--docs 0` makes no sense)?
    pub fn needs_docs(self) -> bool {
        matches!(
            self,
            Scenario::PointRead
                | Scenario::IndexLookup
                | Scenario::OrderIndex
                | Scenario::OrderScan
        )
    }
}

/// Which kind of secret the measured requests carry (setup always uses `--secret`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SecretKind {
    /// `--secret` itself (the root secret in `--dev`).
    Root,
    /// A key created during setup: `Key.create({ role: "server" })`.
    Key,
    /// A token created during setup: `Token.create({ document })` for the benchmark user. It
    /// has no role, so it cannot read the benchmark's documents (they read as null documents
    /// with a permission-denied cause); `1 + 1` needs no rights.
    Token,
}

impl SecretKind {
    pub fn name(self) -> &'static str {
        match self {
            SecretKind::Root => "root",
            SecretKind::Key => "key",
            SecretKind::Token => "token",
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

/// The term of the `i`-th document of [`INDEX_COLLECTION`].
pub fn index_key(i: u64) -> String {
    format!("k{i}")
}

pub fn index_lookup_body(i: u64) -> Bytes {
    query_body(vec![
        text(&format!("{INDEX_COLLECTION}.{INDEX_NAME}(")),
        value(Value::String(index_key(i))),
        text(").first()"),
    ])
}

pub fn order_index_body() -> Bytes {
    query_body(vec![text(&format!(
        "{ORDER_COLLECTION}.{ORDER_INDEX}().take({ORDER_TAKE}).toArray()"
    ))])
}

pub fn order_scan_body() -> Bytes {
    query_body(vec![text(&format!(
        "{ORDER_COLLECTION}.all().order(desc(.n)).take({ORDER_TAKE}).toArray()"
    ))])
}

pub fn one_plus_one_body() -> Bytes {
    query_body(vec![text("1 + 1")])
}

pub fn login_body(user_id: &str) -> Bytes {
    query_body(vec![
        text(&format!("Credential.byDocument({USER_COLLECTION}.byId(")),
        value(Value::String(user_id.to_owned())),
        text(")!)!.login("),
        value(Value::String(PASSWORD.to_owned())),
        text(")"),
    ])
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
    /// An index lookup of a term drawn uniformly from the first `docs` seeded documents.
    IndexLookup { docs: u64 },
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
            Workload::IndexLookup { docs } => index_lookup_body(rng.below(*docs)),
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
    fn an_index_lookup_interpolates_the_term_as_a_string() {
        assert_eq!(
            parsed(&index_lookup_body(17)),
            json!({
                "query": { "fql": ["BenchIndex.byKey(", { "value": "k17" }, ").first()"] },
                "arguments": {}
            })
        );
    }

    #[test]
    fn index_lookups_draw_their_terms_among_the_seeded_documents_only() {
        let workload = Workload::IndexLookup { docs: 3 };
        let mut rng = Rng::new(5);
        let mut seen: Vec<Bytes> = (0..200).map(|i| workload.body(&mut rng, i)).collect();
        seen.sort();
        seen.dedup();
        let expected: Vec<Bytes> = (0..3).map(index_lookup_body).collect();
        assert_eq!(seen.len(), 3);
        assert!(seen.iter().all(|body| expected.contains(body)));
    }

    #[test]
    fn the_order_scenarios_ask_for_the_same_ten_documents_two_ways() {
        assert_eq!(
            parsed(&order_index_body())["query"]["fql"][0],
            "BenchOrder.byN().take(10).toArray()"
        );
        assert_eq!(
            parsed(&order_scan_body())["query"]["fql"][0],
            "BenchOrder.all().order(desc(.n)).take(10).toArray()"
        );
    }

    #[test]
    fn a_login_interpolates_the_user_id_and_the_password() {
        let body = parsed(&login_body("42"));
        assert_eq!(body["query"]["fql"][1]["value"], "42");
        assert_eq!(body["query"]["fql"][3]["value"], PASSWORD);
        assert_eq!(
            body["query"]["fql"][4], ")",
            "the login call closes after the password"
        );
    }

    #[test]
    fn below_stays_below_its_bound() {
        let mut rng = Rng::new(9);
        assert!((0..1000).all(|_| rng.below(3) < 3));
        assert_eq!(rng.below(0), 0);
    }
}
