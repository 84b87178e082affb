//! An index defined on a collection too large to index inside one query is built in the
//! background: it is `pending` (not queryable) until every document has its entries, writes
//! made during the build are in it, and then it answers like any index.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use testudo_auth::SecretHash;
use testudo_engine::{Engine, EngineConfig, QueryResponse};
use testudo_storage::LocalKv;

fn run(engine: &Engine, fql: &str) -> QueryResponse {
    common::run_admin(engine, fql)
}

fn ok(engine: &Engine, fql: &str) -> String {
    common::ok_tagged(engine, fql)
}

#[test]
fn large_collection_index_builds_in_the_background_and_stays_consistent() {
    let kv = Arc::new(LocalKv::in_memory().unwrap());
    let engine = Engine::open(
        kv,
        EngineConfig {
            root_secret: SecretHash::of("s"),
        },
    )
    .unwrap();
    ok(&engine, r#"Collection.create({ name: "Big" })"#);
    for batch in 0..6 {
        ok(
            &engine,
            &format!(
                "Set.sequence({}, {}).forEach(i => Big.create({{ n: i, parity: i % 2 }}))",
                batch * 300,
                batch * 300 + 300
            ),
        );
    }
    ok(
        &engine,
        r#"Big.definition.update({ indexes: { byParity: { terms: [{ field: ".parity" }] } } })"#,
    );
    // Writes keep going while the index builds.
    ok(
        &engine,
        "Set.sequence(1800, 1810).forEach(i => Big.create({ n: i, parity: i % 2 }))",
    );

    // Wait (bounded) for the build; this is a liveness wait, not a timing assertion.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = ok(&engine, "Big.definition.indexes.byParity.status");
        if status == "\"active\"" {
            break;
        }
        assert_eq!(status, "\"pending\"");
        let early = run(&engine, "Big.byParity(0).count()");
        if let Err(e) = &early.outcome {
            assert_eq!(e.code.as_str(), "invalid_index_invocation");
        }
        assert!(Instant::now() < deadline, "index build did not finish");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(ok(&engine, "Big.byParity(0).count()"), r#"{"@int":"905"}"#);
    assert_eq!(ok(&engine, "Big.byParity(1).count()"), r#"{"@int":"905"}"#);
    assert_eq!(ok(&engine, "Big.byParity(1).first()!.n"), r#"{"@int":"1"}"#);
    engine.close().unwrap();
}

#[test]
fn small_collection_index_is_active_in_the_defining_query() {
    let kv = Arc::new(LocalKv::in_memory().unwrap());
    let engine = Engine::open(
        kv,
        EngineConfig {
            root_secret: SecretHash::of("s"),
        },
    )
    .unwrap();
    ok(&engine, r#"Collection.create({ name: "Small" })"#);
    ok(
        &engine,
        "Set.sequence(0, 10).forEach(i => Small.create({ n: i }))",
    );
    ok(
        &engine,
        r#"Small.definition.update({ indexes: { byN: { terms: [{ field: "n" }] } } })"#,
    );
    assert_eq!(
        ok(&engine, "Small.definition.indexes.byN.status"),
        "\"active\""
    );
    assert_eq!(ok(&engine, "Small.byN(3).count()"), r#"{"@int":"1"}"#);
    engine.close().unwrap();
}
