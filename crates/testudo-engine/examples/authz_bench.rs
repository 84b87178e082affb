//! What a read predicate costs: the same point read and the same 1,000-document scan under
//! a server key and under a token whose only role reads documents through an owner
//! predicate (`(d) => d.owner == Query.identity()`), in process (no HTTP), on the in-memory
//! store, so the figures are the engine's own work.
//!
//! `cargo run --release -p testudo-engine --example authz_bench [-- ROUNDS]`
//! Prints median and p99 latencies per case and the predicate's cost per document.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a failed run

use std::sync::Arc;
use std::time::{Duration, Instant};

use testudo_auth::SecretHash;
use testudo_engine::{Engine, EngineConfig, Fragment, QueryRequest, Scope};
use testudo_model::json::Format;
use testudo_storage::LocalKv;

const ROOT: &str = "bench-root";
const DOCS: usize = 1000;

fn run(engine: &Engine, scope: &Scope, fql: &str) -> Duration {
    let request = QueryRequest {
        fragments: vec![Fragment::Text(fql.to_string())],
        arguments: Vec::new(),
        format: Format::Tagged,
        typecheck: None,
        linearized: false,
        deadline: Instant::now() + Duration::from_secs(60),
        timeout: Duration::from_secs(60),
        max_contention_retries: 5,
        last_txn_ts: None,
        client: None,
    };
    let started = Instant::now();
    let response = engine.query(scope, request);
    let elapsed = started.elapsed();
    if let Err(e) = &response.outcome {
        panic!("{fql}: {}", e.message);
    }
    elapsed
}

fn admin(engine: &Engine, fql: &str) -> testudo_engine::QueryResponse {
    let scope = engine.authenticate(ROOT).unwrap();
    let request = QueryRequest {
        fragments: vec![Fragment::Text(fql.to_string())],
        arguments: Vec::new(),
        format: Format::Simple,
        typecheck: None,
        linearized: false,
        deadline: Instant::now() + Duration::from_secs(600),
        timeout: Duration::from_secs(600),
        max_contention_retries: 5,
        last_txn_ts: None,
        client: None,
    };
    let response = engine.query(&scope, request);
    if let Err(e) = &response.outcome {
        panic!("{fql}: {}", e.message);
    }
    response
}

fn secret(engine: &Engine, fql: &str) -> String {
    let response = admin(engine, fql);
    let mut buf = Vec::new();
    testudo_model::json::encode(
        response.outcome.as_ref().unwrap(),
        Format::Simple,
        response.txn_ts,
        &mut buf,
    );
    let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    v.as_str().unwrap().to_string()
}

struct Stats {
    median: Duration,
    p99: Duration,
}

fn measure(engine: &Engine, scope: &Scope, fql: &str, rounds: usize) -> Stats {
    for _ in 0..rounds / 10 + 1 {
        run(engine, scope, fql);
    }
    let mut samples: Vec<Duration> = (0..rounds).map(|_| run(engine, scope, fql)).collect();
    samples.sort();
    Stats {
        median: samples[samples.len() / 2],
        p99: samples[(samples.len() * 99 / 100).min(samples.len() - 1)],
    }
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(2000, |s| s.parse().expect("ROUNDS is a number"));
    let kv = Arc::new(LocalKv::in_memory().unwrap());
    let engine = Engine::open(
        kv,
        EngineConfig {
            root_secret: SecretHash::of(ROOT),
        },
    )
    .unwrap();
    admin(
        &engine,
        "Collection.create({ name: 'Member' }); Collection.create({ name: 'Item' })",
    );
    admin(
        &engine,
        "Member.create({ id: '1', name: 'owner' }); \
         Role.create({ name: 'owner', privileges: [{ resource: 'Item', \
           actions: { read: '(d) => d.owner == Query.identity()' } }], \
           membership: [{ resource: 'Member' }] })",
    );
    admin(
        &engine,
        &format!(
            "Set.sequence(0, {DOCS}).forEach(i => Item.create({{ id: (1000 + i).toString(), \
             owner: Member.byId('1'), v: i }}))"
        ),
    );
    let token = secret(
        &engine,
        "Credential.create({ document: Member.byId('1'), password: 'bench password' }); \
         Credential.byDocument(Member.byId('1'))!.login('bench password').secret",
    );
    let server_key = secret(&engine, "Key.create({ role: 'server' }).secret");
    let server = engine.authenticate(&server_key).unwrap();
    let owner = engine.authenticate(&token).unwrap();

    let point = "Item.byId('1500')!.v";
    let scan = "Item.all().count()";
    println!("rounds: {rounds}; documents: {DOCS}");
    let mut results = Vec::new();
    for (case, fql, r) in [
        ("point read", point, rounds),
        ("1,000-doc scan", scan, rounds / 10),
    ] {
        let s = measure(&engine, &server, fql, r);
        let o = measure(&engine, &owner, fql, r);
        println!(
            "{case:>15}: server key median {:>9.1} µs p99 {:>9.1} µs | owner predicate median {:>9.1} µs p99 {:>9.1} µs | +{:.1} %",
            s.median.as_secs_f64() * 1e6,
            s.p99.as_secs_f64() * 1e6,
            o.median.as_secs_f64() * 1e6,
            o.p99.as_secs_f64() * 1e6,
            (o.median.as_secs_f64() / s.median.as_secs_f64() - 1.0) * 100.0
        );
        results.push((s, o));
    }
    let (s, o) = &results[1];
    let per_doc = (o.median.as_secs_f64() - s.median.as_secs_f64()) * 1e6 / DOCS as f64;
    println!("predicate cost per document (scan, median): {per_doc:.2} µs");
}
