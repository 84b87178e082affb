//! Every scenario, run briefly against real servers in this process: the bare-hyper baseline
//! and Testudo's own server over an in-memory store. These tests check that the scenarios'
//! queries are right (setup succeeds, no request fails) and that a run reports sane figures;
//! they never judge how fast anything was.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use testudo_auth::SecretHash;
use testudo_bench::client::{Connection, Protocol, Target};
use testudo_bench::scenario::{Rng, SecretKind, Workload, index_lookup_body};
use testudo_bench::setup::{SetupError, SetupOptions, issue_secret, prepare, prepare_with};
use testudo_bench::{LoadOptions, Report, Scenario, execute, seed};
use testudo_engine::{Engine, EngineConfig};
use testudo_server::ServerConfig;
use testudo_storage::LocalKv;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Starts `hello-server`'s service; it stops when the returned sender is dropped.
async fn start_hello() -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(testudo_bench::hello::serve(listener, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Starts Testudo's server over a fresh in-memory store, root secret `secret`.
async fn start_testudo() -> (SocketAddr, oneshot::Sender<()>) {
    let kv = Arc::new(LocalKv::in_memory().unwrap());
    let engine = Engine::open(
        kv,
        EngineConfig {
            root_secret: SecretHash::of("secret"),
        },
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(testudo_server::serve(
        listener,
        Arc::new(engine),
        ServerConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

/// A short run: a few hundred milliseconds are enough to see every request succeed.
fn options(addr: SocketAddr, scenario: &str, extra: &[&str]) -> LoadOptions {
    let url = format!("http://{addr}");
    let mut argv = vec![
        "testudo-load",
        "--url",
        &url,
        "--scenario",
        scenario,
        "--warmup",
        "0.05",
        "--duration",
        "0.3",
        "--docs",
        "250",
    ];
    argv.extend_from_slice(extra);
    LoadOptions::try_parse_from(argv).unwrap()
}

fn assert_clean(report: &Report) {
    let o = &report.outcome;
    assert_eq!(o.errors, 0, "first error: {:?}", o.first_error);
    assert!(o.ok > 0, "no request completed in the measured window");
    assert_eq!(o.latency.count, o.ok);
    assert!(o.latency.p50 <= o.latency.p99 && o.latency.p99 <= o.latency.max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_answers_every_request_over_http1_and_h2c() {
    let (addr, _stop) = start_hello().await;
    let report = execute(&options(addr, "hello", &["--connections", "2"]))
        .await
        .unwrap();
    assert_clean(&report);
    assert_eq!(report.protocol, "h1");

    let h2 = ["--h2", "--connections", "1", "--streams", "3"];
    let report = execute(&options(addr, "hello", &h2)).await.unwrap();
    assert_clean(&report);
    assert_eq!(report.protocol, "h2c");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_testudo_scenario_runs_without_a_failed_request() {
    let (addr, _stop) = start_testudo().await;
    for scenario in ["point-read", "create", "scan-100"] {
        let report = execute(&options(addr, scenario, &["--connections", "3"]))
            .await
            .unwrap();
        assert_eq!(report.scenario, scenario);
        assert_clean(&report);
    }
    let h2 = ["--h2", "--connections", "1", "--streams", "2"];
    assert_clean(&execute(&options(addr, "point-read", &h2)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_is_idempotent_and_reads_pick_among_the_seeded_ids() {
    let (addr, _stop) = start_testudo().await;
    let target = Target::resolve(&format!("http://{addr}"), Protocol::Http1, "secret", false)
        .await
        .unwrap();
    // 250 documents: more than one seeding batch and a partial last one.
    let first = prepare(&target, Scenario::PointRead, 250).await.unwrap();
    let second = prepare(&target, Scenario::PointRead, 250).await.unwrap();
    let (Workload::Pick(first), Workload::Pick(second)) = (first, second) else {
        panic!("point reads pick among bodies");
    };
    assert_eq!(first.len(), 250);
    assert_eq!(first, second);
    let mut distinct = first.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 250, "every seeded id appears once");
    // Asking for more later tops the collection up instead of starting over.
    let more = prepare(&target, Scenario::PointRead, 300).await.unwrap();
    let Workload::Pick(more) = more else { panic!() };
    assert_eq!(more.len(), 300);
    assert!(first.iter().all(|body| more.contains(body)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scan_refuses_a_collection_that_is_not_exactly_a_hundred_documents() {
    let (addr, _stop) = start_testudo().await;
    let target = Target::resolve(&format!("http://{addr}"), Protocol::Http1, "secret", false)
        .await
        .unwrap();
    prepare(&target, Scenario::Scan100, 0).await.unwrap();
    // A stray create makes it 101: the scan would no longer measure what it says.
    let mut conn = testudo_bench::client::Connection::open(&target)
        .await
        .unwrap();
    let body = Workload::Create.body(&mut Rng::new(0), 0);
    let body = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("BenchWrite", "BenchScan");
    let reply = conn
        .send(target.query_request(body.into()).unwrap())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    let err = prepare(&target, Scenario::Scan100, 0).await.unwrap_err();
    assert!(
        matches!(err, SetupError::Unexpected(ref m) if m.contains("101")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_fails_setup_instead_of_measuring_errors() {
    let (addr, _stop) = start_testudo().await;
    let mut options = options(addr, "point-read", &[]);
    options.secret = "wrong".to_owned();
    let err = execute(&options).await.unwrap_err().to_string();
    assert!(err.contains("401"), "{err}");
}

fn setup_options(scenario: Scenario, docs: usize, seed_batch: usize) -> SetupOptions {
    SetupOptions {
        scenario,
        docs,
        seed_batch,
        progress: false,
    }
}

async fn admin_target(addr: SocketAddr) -> Target {
    Target::resolve(&format!("http://{addr}"), Protocol::Http1, "secret", false)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_order_login_and_cheap_query_scenarios_run_without_a_failed_request() {
    let (addr, _stop) = start_testudo().await;
    for scenario in ["index-lookup", "order-index", "order-scan", "one-plus-one"] {
        let extra = ["--connections", "2", "--seed-batch", "100"];
        let report = execute(&options(addr, scenario, &extra)).await.unwrap();
        assert_eq!(report.scenario, scenario);
        assert_eq!(report.auth, "root");
        assert_clean(&report);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_succeed_and_each_one_issues_a_token() {
    let (addr, _stop) = start_testudo().await;
    // A login hashes a password on purpose slowly: give a few of them time to finish.
    let mut options = options(addr, "login", &["--connections", "2"]);
    options.duration = 3.0;
    let report = execute(&options).await.unwrap();
    assert_clean(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_seeding_resumes_where_it_stopped_and_refuses_a_larger_collection() {
    let (addr, _stop) = start_testudo().await;
    let target = admin_target(addr).await;
    let first = prepare_with(&target, &setup_options(Scenario::IndexLookup, 250, 100))
        .await
        .unwrap();
    assert_eq!((first.seeding.found, first.seeding.created), (0, 250));
    assert_eq!(first.seeding.collection, Some("BenchIndex"));
    assert!(matches!(
        first.workload,
        Workload::IndexLookup { docs: 250 }
    ));
    // A bigger run later creates only what is missing, in batches that need not divide it.
    let more = prepare_with(&target, &setup_options(Scenario::IndexLookup, 333, 100))
        .await
        .unwrap();
    assert_eq!((more.seeding.found, more.seeding.created), (250, 83));
    let again = prepare_with(&target, &setup_options(Scenario::IndexLookup, 333, 7))
        .await
        .unwrap();
    assert_eq!((again.seeding.found, again.seeding.created), (333, 0));
    // Every seeded term is found by the index, and only those.
    let mut conn = Connection::open(&target).await.unwrap();
    for (i, found) in [(0, true), (332, true), (333, false)] {
        let reply = conn
            .send(target.query_request(index_lookup_body(i)).unwrap())
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(body["data"]["@doc"]["n"]["@int"].is_string(), found, "k{i}");
    }
    // Looking up among fewer documents than the collection holds would measure another size.
    let err = prepare_with(&target, &setup_options(Scenario::IndexLookup, 200, 100))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SetupError::Unexpected(ref m) if m.contains("more than 200")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_order_scenarios_share_one_seeded_collection_of_the_requested_size() {
    let (addr, _stop) = start_testudo().await;
    let target = admin_target(addr).await;
    let by_index = prepare_with(&target, &setup_options(Scenario::OrderIndex, 30, 8))
        .await
        .unwrap();
    assert_eq!(by_index.seeding.created, 30);
    let by_scan = prepare_with(&target, &setup_options(Scenario::OrderScan, 30, 8))
        .await
        .unwrap();
    assert_eq!((by_scan.seeding.found, by_scan.seeding.created), (30, 0));
    let err = prepare_with(&target, &setup_options(Scenario::OrderScan, 20, 8))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SetupError::Unexpected(ref m) if m.contains("holds 30")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_only_prepares_without_load() {
    let (addr, _stop) = start_testudo().await;
    let mut options = options(addr, "index-lookup", &["--seed-only"]);
    options.docs = 120;
    let seeding = seed(&options).await.unwrap();
    assert_eq!((seeding.found, seeding.created), (0, 120));
    assert_eq!(seed(&options).await.unwrap().created, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_can_authenticate_with_a_new_key_or_token() {
    let (addr, _stop) = start_testudo().await;
    for auth in ["key", "token"] {
        for scenario in ["one-plus-one", "point-read"] {
            let extra = ["--auth", auth, "--connections", "2"];
            let report = execute(&options(addr, scenario, &extra)).await.unwrap();
            assert_eq!(report.auth, auth);
            assert_clean(&report);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reads_documents_and_a_token_without_a_role_reads_null() {
    let (addr, _stop) = start_testudo().await;
    let admin = admin_target(addr).await;
    let workload = prepare(&admin, Scenario::PointRead, 5).await.unwrap();
    let body = workload.body(&mut Rng::new(0), 0);
    for (kind, readable) in [(SecretKind::Key, true), (SecretKind::Token, false)] {
        let secret = issue_secret(&admin, kind).await.unwrap().unwrap();
        assert_ne!(secret, "secret");
        let target = Target::resolve(&format!("http://{addr}"), Protocol::Http1, &secret, false)
            .await
            .unwrap();
        let mut conn = Connection::open(&target).await.unwrap();
        let reply = conn
            .send(target.query_request(body.clone()).unwrap())
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{kind:?}");
        let parsed: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        let doc = &parsed["data"]["@doc"];
        assert_eq!(doc["s"].is_string(), readable, "{kind:?}: {parsed}");
    }
    assert_eq!(issue_secret(&admin, SecretKind::Root).await.unwrap(), None);
}
