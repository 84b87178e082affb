//! Runs FQL queries against a fresh in-memory engine and prints each result as tagged JSON:
//! `cargo run -p testudo-engine --example fql -- 'Collection.create({ name: "C" })' 'C.all()'`.
//! A development aid for trying the evaluator without a server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use testudo_auth::SecretHash;
use testudo_engine::{Engine, EngineConfig, Fragment, QueryRequest, Scope};
use testudo_model::DbId;
use testudo_model::json::{Format, encode};
use testudo_storage::LocalKv;

fn main() {
    let kv = Arc::new(LocalKv::in_memory().expect("in-memory store"));
    let engine = Engine::open(
        kv,
        EngineConfig {
            root_secret: SecretHash::of("secret"),
        },
    )
    .expect("engine opens");
    let scope = Scope::admin(DbId::ROOT);
    for query in std::env::args().skip(1) {
        let request = QueryRequest {
            fragments: vec![Fragment::Text(query.clone())],
            arguments: Vec::new(),
            format: Format::Tagged,
            typecheck: None,
            linearized: false,
            deadline: Instant::now() + Duration::from_secs(30),
            timeout: Duration::from_secs(30),
            max_contention_retries: 3,
            last_txn_ts: None,
            client: None,
        };
        let response = engine.query(&scope, request);
        println!("> {query}");
        match response.outcome {
            Ok(output) => {
                let mut buf = Vec::new();
                encode(&output, Format::Tagged, response.txn_ts, &mut buf);
                println!("{}", String::from_utf8_lossy(&buf));
            }
            Err(e) => println!(
                "error {}: {}\n{}",
                e.code.as_str(),
                e.message,
                response.summary
            ),
        }
        if !response.summary.is_empty() {
            println!("summary:\n{}", response.summary);
        }
    }
}
