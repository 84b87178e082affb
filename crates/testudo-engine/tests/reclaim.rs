//! The reclaimer: expired documents disappear with their index entries, old versions are
//! physically removed past retention while current data stays, deleted collections' data
//! is reclaimed, and history older than retention is refused rather than half-answered.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use testudo_auth::SecretHash;
use testudo_engine::{Engine, EngineConfig, QueryResponse};
use testudo_storage::LocalKv;

fn engine() -> Engine {
    let kv = Arc::new(LocalKv::in_memory().unwrap());
    Engine::open(
        kv,
        EngineConfig {
            root_secret: SecretHash::of("s"),
        },
    )
    .unwrap()
}

fn run(engine: &Engine, fql: &str) -> QueryResponse {
    common::run_admin(engine, fql)
}

fn ok(engine: &Engine, fql: &str) -> String {
    common::ok_tagged(engine, fql)
}

/// Reclaims with no minimum retention (so the test need not wait fifteen minutes).
fn reclaim(engine: &Engine) -> testudo_engine::ReclaimStats {
    std::thread::sleep(Duration::from_millis(2));
    engine
        .reclaim_now_with_min_retention(Duration::ZERO)
        .unwrap()
}

#[test]
fn expired_documents_are_deleted_with_their_index_entries() {
    let e = engine();
    ok(
        &e,
        r#"Collection.create({ name: "Session", indexes: { byUser: { terms: [{ field: "user" }] } } })"#,
    );
    ok(
        &e,
        r#"Session.create({ user: "a", ttl: Time.now().subtract(1, "second") })"#,
    );
    ok(
        &e,
        r#"Session.create({ user: "a", ttl: Time.now().add(1, "day") })"#,
    );
    // An expired document is invisible at once, before any reclamation.
    assert_eq!(ok(&e, r#"Session.byUser("a").count()"#), r#"{"@int":"1"}"#);
    let stats = reclaim(&e);
    assert_eq!(stats.documents_expired, 1);
    assert_eq!(ok(&e, r#"Session.byUser("a").count()"#), r#"{"@int":"1"}"#);
    assert_eq!(ok(&e, "Session.all().count()"), r#"{"@int":"1"}"#);
}

#[test]
fn versions_past_retention_are_removed_and_current_data_stays() {
    let e = engine();
    ok(
        &e,
        r#"Collection.create({ name: "Counter", indexes: { byN: { values: [{ field: "n" }] } } })"#,
    );
    let id = ok(&e, "Counter.create({ n: 0 }).id");
    for i in 1..=20 {
        ok(&e, &format!("Counter.byId({id})!.update({{ n: {i} }})"));
    }
    let first = reclaim(&e);
    // 20 older document versions and 20 tombstoned + 20 replaced index entries at least.
    assert!(first.versions_removed >= 20, "{first:?}");
    assert_eq!(
        ok(&e, &format!("Counter.byId({id})!.n")),
        r#"{"@int":"20"}"#
    );
    assert_eq!(
        ok(&e, "Counter.byN().map(.n).toArray()"),
        r#"[{"@int":"20"}]"#
    );
    // Nothing is left to remove the second time.
    let second = reclaim(&e);
    assert_eq!(second.versions_removed, 0, "{second:?}");
}

#[test]
fn a_deleted_collections_data_is_reclaimed() {
    let e = engine();
    ok(
        &e,
        r#"Collection.create({ name: "Gone", indexes: { byK: { terms: [{ field: "k" }] } } })"#,
    );
    ok(
        &e,
        "Set.sequence(0, 50).forEach(i => Gone.create({ k: i }))",
    );
    ok(&e, "Gone.definition.delete()");
    let first = reclaim(&e);
    assert!(first.garbage_keys_deleted >= 100, "{first:?}");
    let second = reclaim(&e);
    assert!(second.versions_removed >= 100, "{second:?}");
    // A new collection with the old name starts empty.
    ok(&e, r#"Collection.create({ name: "Gone" })"#);
    assert_eq!(ok(&e, "Gone.all().count()"), r#"{"@int":"0"}"#);
}

#[test]
fn history_older_than_retention_is_refused() {
    let e = engine();
    ok(&e, r#"Collection.create({ name: "H" })"#);
    ok(&e, "H.create({ n: 1 })");
    let r = run(
        &e,
        r#"at (Time.now().subtract(20, "minutes")) { H.all().count() }"#,
    );
    let err = r.outcome.unwrap_err();
    assert_eq!(err.code.as_str(), "invalid_argument", "{}", err.message);
    assert!(err.message.contains("history"), "{}", err.message);
    // Within retention, history is readable.
    assert_eq!(
        ok(&e, r#"at (Time.now()) { H.all().count() }"#),
        r#"{"@int":"1"}"#
    );
}
