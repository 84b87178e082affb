//! Every scenario, run briefly against real servers in this process: the bare-hyper baseline
//! and Testudo's own server over an in-memory store. These tests check that the scenarios'
//! queries are right (setup succeeds, no request fails) and that a run reports sane figures;
//! they never judge how fast anything was.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use clap::Parser;
use testudo_auth::SecretHash;
use testudo_bench::client::{Protocol, Target};
use testudo_bench::scenario::{Rng, Workload};
use testudo_bench::setup::{SetupError, prepare};
use testudo_bench::{LoadOptions, Report, Scenario, execute};
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
