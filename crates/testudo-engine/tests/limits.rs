//! Per-database rate limits as a specification: a database over its budget gets
//! `limit_exceeded` while its sibling keeps working; a tenant's children share the
//! tenant's budget; concurrency is limited; limits change at the next query and are
//! validated. (The latency effect on a quiet sibling is a benchmark, not a test.)

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::thread;

use common::{ROOT, engine, fails, ok, q, scoped};

/// Runs `n` trivial queries in `db`; how many were refused for a limit.
fn refused(e: &testudo_engine::Engine, secret: &str, n: usize) -> usize {
    (0..n)
        .filter(|_| match q(e, secret, "1 + 1") {
            Ok(_) => false,
            Err(code) if code == "limit_exceeded" => true,
            Err(other) => panic!("unexpected {other}"),
        })
        .count()
}

#[test]
fn a_noisy_database_is_refused_over_its_rate_and_its_sibling_is_not() {
    let e = engine();
    ok(
        &e,
        ROOT,
        "Database.create({ name: 'noisy', limits: { queries_per_second: 5 } }); \
         Database.create({ name: 'quiet', limits: { queries_per_second: 1000 } })",
    );
    // The burst is one second of the rate: 200 queries in well under a second exceed it.
    let noisy = refused(&e, &scoped("noisy"), 200);
    assert!(noisy >= 150, "only {noisy} refused");
    assert_eq!(refused(&e, &scoped("quiet"), 200), 0);
    // The root database has no limits.
    assert_eq!(refused(&e, ROOT, 200), 0);
}

#[test]
fn children_share_their_ancestors_budget() {
    let e = engine();
    ok(
        &e,
        ROOT,
        "Database.create({ name: 'tenant', limits: { queries_per_second: 10 } })",
    );
    ok(&e, &scoped("tenant"), "Database.create({ name: 'app' })");
    let refused_in_child = refused(&e, &format!("{ROOT}:tenant/app:admin"), 100);
    assert!(refused_in_child >= 80, "only {refused_in_child} refused");
    // The tenant's own budget was spent by its child.
    assert!(refused(&e, &scoped("tenant"), 10) >= 8);
}

#[test]
fn an_ops_budget_in_debt_refuses_until_it_refills() {
    let e = engine();
    ok(
        &e,
        ROOT,
        "Database.create({ name: 'reader', limits: { read_ops_per_second: 5 } })",
    );
    let db = scoped("reader");
    ok(&e, &db, "Collection.create({ name: 'Item' })");
    ok(
        &e,
        &db,
        "Set.sequence(0, 100).forEach(i => Item.create({ i: i }))",
    );
    // One big read puts the bucket deep in debt; the next query is refused.
    ok(&e, &db, "Item.all().toArray().length");
    fails(&e, &db, "1", "limit_exceeded");
}

#[test]
fn concurrent_queries_are_limited_per_database() {
    let e = Arc::new(engine());
    ok(
        &e,
        ROOT,
        "Database.create({ name: 'narrow', limits: { concurrent_queries: 1 } })",
    );
    let db = scoped("narrow");
    // Two slow queries at once: at most one runs at a time, so one of them is refused
    // whenever they overlap; without overlap both succeed. Repeat until they overlap.
    let mut saw_refusal = false;
    for _ in 0..20 {
        let results: Vec<_> = (0..2)
            .map(|_| {
                let e = e.clone();
                let db = db.clone();
                thread::spawn(move || {
                    q(
                        &e,
                        &db,
                        "Set.sequence(0, 20000).map(x => x * 2).fold(0, (a, b) => a + b)",
                    )
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        for r in &results {
            if let Err(code) = r {
                assert_eq!(code, "limit_exceeded");
                saw_refusal = true;
            }
        }
        if saw_refusal {
            break;
        }
    }
    assert!(
        saw_refusal,
        "two overlapping queries never hit the limit of one"
    );
    // Sequential queries are never refused by a concurrency limit.
    for _ in 0..5 {
        ok(&e, &db, "1");
    }
}

#[test]
fn limits_take_effect_at_the_next_query_and_are_validated() {
    let e = engine();
    ok(&e, ROOT, "Database.create({ name: 'app' })");
    assert_eq!(refused(&e, &scoped("app"), 50), 0);
    ok(
        &e,
        ROOT,
        "Database.byName('app')!.update({ limits: { queries_per_second: 2 } })",
    );
    assert!(refused(&e, &scoped("app"), 50) >= 40);
    ok(&e, ROOT, "Database.byName('app')!.update({ limits: null })");
    assert_eq!(refused(&e, &scoped("app"), 50), 0);
    for bad in [
        "{ queries_per_second: 0 }",
        "{ queries_per_second: -1 }",
        "{ concurrent_queries: 1.5 }",
        "{ reads: 5 }",
        "'fast'",
    ] {
        fails(
            &e,
            ROOT,
            &format!("Database.byName('app')!.update({{ limits: {bad} }})"),
            "constraint_failure",
        );
    }
}

#[test]
fn default_limits_apply_to_every_database_that_sets_none() {
    let e = common::engine_with(testudo_engine::EngineOptions {
        default_limits: Some(testudo_engine::Limits {
            rates: [Some(2.0), None, None, None],
            concurrent: None,
        }),
        ..testudo_engine::EngineOptions::default()
    });
    ok(
        &e,
        ROOT,
        "Database.create({ name: 'plain' }); \
         Database.create({ name: 'own', limits: { queries_per_second: 1000 } })",
    );
    // A bucket of two: the third query within a second is refused.
    assert!(refused(&e, &scoped("plain"), 20) > 0);
    assert_eq!(refused(&e, &scoped("own"), 20), 0);
    // The root is never limited.
    assert_eq!(refused(&e, ROOT, 20), 0);
}

#[test]
fn the_fast_admission_decides_only_once_the_limits_are_cached_and_agrees_with_query() {
    let e = engine();
    ok(
        &e,
        ROOT,
        "Database.create({ name: 'fast', limits: { queries_per_second: 3, concurrent_queries: 1 } })",
    );
    let scope = e.authenticate(&scoped("fast")).unwrap();
    // Nothing read this database's limits yet: the caller must go through `query`.
    assert!(e.admit_fast(&scope).is_none());
    let first = e.query(
        &scope,
        common::request("1", testudo_model::json::Format::Simple),
    );
    assert!(first.outcome.is_ok());

    // Now cached: an admission holds the database's only concurrency slot until dropped.
    let Some(Ok(admitted)) = e.admit_fast(&scope) else {
        panic!("the second query of the second was not admitted");
    };
    let Some(Err(refused)) = e.admit_fast(&scope) else {
        panic!("a second concurrent query was admitted");
    };
    assert_eq!(refused.outcome.unwrap_err().code.as_str(), "limit_exceeded");
    assert_eq!(refused.stats.rate_limits_hit, vec!["compute"]);
    // The newest commit's time (the database's creation): no snapshot is taken for a refusal.
    assert!(refused.txn_ts.0 > 0 && refused.txn_ts <= first.txn_ts);
    let ran = e.query_admitted(
        &scope,
        common::request("1 + 1", testudo_model::json::Format::Simple),
        admitted,
    );
    assert!(ran.outcome.is_ok());

    // The slot is free again; the third query of the second takes the last token.
    let Some(Ok(third)) = e.admit_fast(&scope) else {
        panic!("the third query was refused");
    };
    drop(third);
    // Admissions taken here and queries run through `query` draw on one bucket.
    let refusal = e.query(
        &scope,
        common::request("1", testudo_model::json::Format::Simple),
    );
    assert_eq!(refusal.outcome.unwrap_err().code.as_str(), "limit_exceeded");
    assert!(matches!(e.admit_fast(&scope), Some(Err(_))));
}

#[test]
fn the_owner_of_a_limit_is_the_outermost_limited_database_of_the_chain() {
    let e = engine();
    ok(
        &e,
        ROOT,
        "Database.create({ name: 'tenant', limits: { queries_per_second: 1000 } }); \
         Database.create({ name: 'free' })",
    );
    ok(
        &e,
        &scoped("tenant"),
        "Database.create({ name: 'app' }); \
         Database.create({ name: 'own', limits: { queries_per_second: 500 } })",
    );
    let ids = |secret: &str| e.authenticate(secret).unwrap().db;
    let tenant = ids(&scoped("tenant"));
    let app = ids(&format!("{ROOT}:tenant/app:admin"));
    let own = ids(&format!("{ROOT}:tenant/own:admin"));
    let free = ids(&scoped("free"));
    // Before any query read the limits, nothing is known: each database is its own.
    assert_eq!(e.rate_limit_owner(app), app);
    for secret in [
        format!("{ROOT}:tenant/app:admin"),
        format!("{ROOT}:tenant/own:admin"),
        scoped("free"),
    ] {
        ok(&e, &secret, "1");
    }
    // A child with limits of its own or none: the tenant owns the budget they share.
    assert_eq!(e.rate_limit_owner(app), tenant);
    assert_eq!(e.rate_limit_owner(own), tenant);
    // A database no limit applies to is its own.
    assert_eq!(e.rate_limit_owner(free), free);
}
