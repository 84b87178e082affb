//! The audit log and `/metrics` against the real binary: every request leaves a record,
//! `testudo audit verify` accepts the untouched log and names the record a changed byte
//! broke, no secret (root, key, refused) and no query argument reaches the audit files or
//! the logs, and `/metrics` counts what happened.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};

use common::TestServer;

const ROOT: &str = "root-Sup3r-s3cret-for-the-audit-test";
const REFUSED: &str = "fnAAAArefused-s3cret-that-never-worked";
const ARGUMENT: &str = "argument-sentinel-7f3a9c";

fn audit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testudo"))
        .arg("audit")
        .args(args)
        .output()
        .unwrap()
}

fn bearer(secret: &str) -> String {
    format!("Bearer {secret}")
}

async fn query(server: &TestServer, secret: &str, body: serde_json::Value) -> common::TestResponse {
    let auth = bearer(secret);
    server
        .post_query(
            body.to_string(),
            &[("authorization", auth.as_str()), ("x-format", "simple")],
        )
        .await
}

fn start(dir: &Path, extra: &[&str]) -> TestServer {
    let audit_dir = dir.join("audit");
    let data_dir = dir.join("data");
    let mut args = vec![
        "--root-secret",
        ROOT,
        "--audit-dir",
        audit_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    TestServer::start(&data_dir, &args, &[])
}

fn every_file_under(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn every_request_is_audited_the_log_verifies_and_a_changed_byte_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let audit_dir = dir.path().join("audit");
    let audit_path = audit_dir.to_str().unwrap().to_owned();
    let mut server = start(dir.path(), &["--slow-query-ms", "0"]);

    let ok = query(&server, ROOT, serde_json::json!({"query": "1 + 1"})).await;
    assert_eq!(ok.status, 200);
    let failed = query(&server, ROOT, serde_json::json!({"query": "abort(1)"})).await;
    assert_eq!(failed.status, 400);
    let refused = query(&server, REFUSED, serde_json::json!({"query": "1"})).await;
    assert_eq!(refused.status, 401);
    let key = query(
        &server,
        ROOT,
        serde_json::json!({"query": "Key.create({ role: \"server\" })"}),
    )
    .await;
    assert_eq!(key.status, 200, "{:?}", key.body);
    let key_json = key.json();
    let key_secret = key_json["data"]["secret"].as_str().unwrap().to_owned();
    let key_id: u64 = key_json["data"]["id"].as_str().unwrap().parse().unwrap();
    let with_argument = query(
        &server,
        &key_secret,
        serde_json::json!({
            "query": {"fql": ["let x = ", {"value": ARGUMENT}, "\nx.length"]},
        }),
    )
    .await;
    assert_eq!(with_argument.status, 200, "{:?}", with_argument.body);

    server.terminate();
    assert!(server.wait_exit().success());

    let export = audit(&["export", &audit_path]);
    assert!(export.status.success(), "{export:?}");
    let records: Vec<serde_json::Value> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let requests: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["kind"] == "request").collect();
    assert_eq!(requests.len(), 5, "{records:#?}");
    let outcomes: Vec<&str> = requests
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["ok", "abort", "unauthorized", "ok", "ok"]);
    assert_eq!(requests[0]["credential"]["type"], "root");
    assert_eq!(requests[0]["database"]["id"], 0);
    assert!(requests[0]["txn_ts"].as_u64().unwrap() > 0);
    assert_eq!(requests[0]["query_hash"].as_str().unwrap().len(), 64);
    assert!(requests[2].get("credential").is_none());
    assert_eq!(requests[4]["credential"]["type"], "key");
    assert_eq!(requests[4]["credential"]["id"], key_id);

    // The engine's own records: the refused secret and the new key.
    assert!(
        records.iter().any(|r| r["kind"] == "auth_failure"),
        "{records:#?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["kind"] == "change" && r["object"] == "key" && r["action"] == "create"),
        "{records:#?}"
    );

    let errors = audit(&["export", &audit_path, "--outcome", "error"]);
    let failed_requests = String::from_utf8(errors.stdout)
        .unwrap()
        .lines()
        .filter(|line| line.contains("\"kind\":\"request\""))
        .count();
    assert_eq!(failed_requests, 2);
    let tail = audit(&["tail", &audit_path, "-n", "1"]);
    assert!(
        String::from_utf8(tail.stdout)
            .unwrap()
            .contains(&key_id.to_string())
    );

    let verified = audit(&["verify", &audit_path]);
    assert!(verified.status.success(), "{verified:?}");
    assert!(
        String::from_utf8(verified.stdout)
            .unwrap()
            .starts_with("ok: ")
    );

    let on_disk = every_file_under(&audit_dir);
    let logs = server.stderr().join("\n");
    for secret in [ROOT, REFUSED, key_secret.as_str(), ARGUMENT] {
        assert!(!contains(&on_disk, secret), "{secret} is in the audit log");
        assert!(!logs.contains(secret), "{secret} is in the server's logs");
    }
    assert!(logs.contains("slow query"), "{logs}");

    // Change one digit of the second request's record.
    let segment = audit_dir.join("audit-0000000001.log");
    let text = std::fs::read_to_string(&segment).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let second = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.contains("\"kind\":\"request\""))
        .nth(1)
        .unwrap()
        .0;
    let at = lines[second].find("\"duration_us\":").unwrap() + "\"duration_us\":".len();
    let digit = lines[second].as_bytes()[at];
    let changed = if digit == b'9' {
        '1'
    } else {
        char::from(digit + 1)
    };
    lines[second].replace_range(at..=at, &changed.to_string());
    std::fs::write(&segment, lines.join("\n") + "\n").unwrap();
    let broken = audit(&["verify", &audit_path]);
    assert_eq!(broken.status.code(), Some(1));
    let message = String::from_utf8(broken.stderr).unwrap();
    let record = format!("segment 1, record {}", second + 1);
    assert!(message.contains(&record), "{message}");
}

fn get_metrics(addr: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the sample `name` (with its labels, exactly as written).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_outcomes_and_auth_failures_on_their_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let line = server
        .stdout()
        .into_iter()
        .find(|l| l.starts_with("testudo metrics on "))
        .unwrap();
    let addr: SocketAddr = line
        .strip_prefix("testudo metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap()
        .parse()
        .unwrap();
    let addr = addr.to_string();

    for _ in 0..3 {
        assert_eq!(
            query(&server, ROOT, serde_json::json!({"query": "1"}))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        query(&server, REFUSED, serde_json::json!({"query": "1"}))
            .await
            .status,
        401
    );

    let text = get_metrics(&addr);
    let ok = r#"testudo_requests_total{endpoint="/query/1",outcome="ok",database="0"}"#;
    assert_eq!(sample(&text, ok), Some(3.0), "{text}");
    let inf = r#"testudo_request_duration_seconds_bucket{endpoint="/query/1",outcome="ok",database="0",le="+Inf"}"#;
    assert_eq!(sample(&text, inf), Some(3.0), "{text}");
    assert_eq!(sample(&text, "testudo_auth_failures_total"), Some(1.0));
    assert_eq!(sample(&text, "testudo_queries_in_flight"), Some(0.0));
    assert_eq!(
        sample(&text, "testudo_audit_records_dropped_total"),
        Some(0.0)
    );
    assert!(sample(&text, "testudo_audit_queue_depth").is_some());
    // The store's series: the data directory holds at least the database file.
    assert!(
        sample(&text, "testudo_storage_bytes").unwrap() > 0.0,
        "{text}"
    );
    assert!(sample(&text, "testudo_commits_total").is_some(), "{text}");
    let batches = sample(&text, "testudo_commit_batches_total").unwrap();
    assert_eq!(
        sample(&text, r#"testudo_commit_batch_size_bucket{le="+Inf"}"#),
        Some(batches),
        "{text}"
    );
    // A write adds a batch of one.
    assert_eq!(
        query(
            &server,
            ROOT,
            serde_json::json!({"query": "Collection.create({ name: 'Counted' })"})
        )
        .await
        .status,
        200
    );
    let after = get_metrics(&addr);
    assert_eq!(
        sample(&after, "testudo_commit_batches_total"),
        Some(batches + 1.0)
    );
    assert!(sample(&after, r#"testudo_commit_batch_size_bucket{le="1"}"#).unwrap() >= 1.0);

    // The Fauna port does not serve metrics.
    let mut main = server.client(common::Protocol::Http1).await;
    let response = main.send(http::Method::GET, "/metrics", &[], "").await;
    assert_eq!(response.status, 404);
}

/// base64 of 32 bytes of 7 and of 8.
const MASTER_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const OTHER_MASTER_KEY: &str = "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg=";

fn audit_with_key(args: &[&str], key: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testudo"))
        .arg("audit")
        .args(args)
        .env("TESTUDO_MASTER_KEY", key)
        .output()
        .unwrap()
}

#[tokio::test]
async fn with_a_master_key_the_audit_log_is_encrypted_and_names_databases_by_path() {
    let marker = "Marker9c4e2aCollection";
    let dir = tempfile::tempdir().unwrap();
    let audit_dir = dir.path().join("audit");
    let audit_path = audit_dir.to_str().unwrap().to_owned();
    let mut server = TestServer::start(
        &dir.path().join("data"),
        &["--root-secret", ROOT, "--audit-dir", &audit_path],
        &[("TESTUDO_MASTER_KEY", MASTER_KEY)],
    );
    let app_admin = format!("{ROOT}:app:admin");
    let tenant_admin = format!("{ROOT}:app/tenant1:admin");
    for (secret, fql) in [
        (ROOT, "Database.create({ name: 'app' })".to_owned()),
        (
            app_admin.as_str(),
            "Database.create({ name: 'tenant1' })".to_owned(),
        ),
        (
            tenant_admin.as_str(),
            format!("Collection.create({{ name: '{marker}' }})"),
        ),
    ] {
        let response = query(&server, secret, serde_json::json!({ "query": fql })).await;
        assert_eq!(response.status, 200, "{fql}: {:?}", response.body);
    }
    server.terminate();
    assert!(server.wait_exit().success());

    assert!(!contains(&every_file_under(&audit_dir), marker));

    let refused = audit(&["export", &audit_path]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let message = String::from_utf8(refused.stderr).unwrap();
    assert!(message.contains("encrypted"), "{message}");
    assert!(message.contains("--master-key-file"), "{message}");
    assert!(refused.stdout.is_empty());

    let wrong = audit_with_key(&["export", &audit_path], OTHER_MASTER_KEY);
    assert_eq!(wrong.status.code(), Some(2), "{wrong:?}");
    let message = String::from_utf8(wrong.stderr).unwrap();
    assert!(message.contains("not under the key given"), "{message}");

    let export = audit_with_key(&["export", &audit_path], MASTER_KEY);
    assert!(export.status.success(), "{export:?}");
    let records: Vec<serde_json::Value> = String::from_utf8(export.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let requests: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["kind"] == "request").collect();
    let paths: Vec<&str> = requests
        .iter()
        .map(|r| r["database"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["", "app", "app/tenant1"], "{records:#?}");
    assert!(
        records.iter().any(|r| r["kind"] == "change"
            && r["name"] == marker
            && r["database"]["path"] == "app/tenant1"),
        "{records:#?}"
    );
    let by_path = audit_with_key(
        &["export", &audit_path, "--database", "app/tenant1"],
        MASTER_KEY,
    );
    assert!(String::from_utf8(by_path.stdout).unwrap().contains(marker));

    let chain_only = audit(&["verify", &audit_path]);
    assert!(chain_only.status.success(), "{chain_only:?}");
    let said = String::from_utf8(chain_only.stdout).unwrap();
    assert!(said.contains("give the master key"), "{said}");
    let opened = audit_with_key(&["verify", &audit_path], MASTER_KEY);
    assert!(opened.status.success(), "{opened:?}");
    let said = String::from_utf8(opened.stdout).unwrap();
    assert!(said.contains("opened and authenticated"), "{said}");
}

/// `testudo <args>` with the old master key in `TESTUDO_MASTER_KEY` and the new one in
/// `TESTUDO_NEW_MASTER_KEY`.
fn with_keys(args: &[&str], old: &str, new: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testudo"))
        .args(args)
        .env("TESTUDO_MASTER_KEY", old)
        .env("TESTUDO_NEW_MASTER_KEY", new)
        .output()
        .unwrap()
}

/// The `tags` of the request records `audit export` prints under `key`, or its exit code
/// and stderr.
fn exported_tags(audit_path: &str, key: &str) -> Result<Vec<String>, (Option<i32>, String)> {
    let out = audit_with_key(&["export", audit_path], key);
    if !out.status.success() {
        return Err((out.status.code(), String::from_utf8(out.stderr).unwrap()));
    }
    Ok(String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).unwrap();
            record["tags"].as_str().map(str::to_owned)
        })
        .collect())
}

async fn tagged_query(server: &TestServer, tag: &str) {
    let auth = bearer(ROOT);
    let response = server
        .post_query(
            serde_json::json!({ "query": "1 + 1" }).to_string(),
            &[
                ("authorization", auth.as_str()),
                ("x-format", "simple"),
                ("x-query-tags", tag),
            ],
        )
        .await;
    assert_eq!(response.status, 200, "{:?}", response.body);
}

/// base64 of 32 bytes of 9 and of 10.
const THIRD_MASTER_KEY: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";
const UNRELATED_MASTER_KEY: &str = "CgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgo=";

#[tokio::test]
async fn a_master_key_rotation_takes_the_audit_log_along_and_the_old_key_can_go() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data_path = data_dir.to_str().unwrap().to_owned();
    let audit_dir = dir.path().join("audit");
    let audit_path = audit_dir.to_str().unwrap().to_owned();
    let serve = |key: &str| {
        TestServer::start(
            &data_dir,
            &["--root-secret", ROOT, "--audit-dir", &audit_path],
            &[("TESTUDO_MASTER_KEY", key)],
        )
    };
    let mut server = serve(MASTER_KEY);
    tagged_query(&server, "k=before").await;

    // Rotated while the server runs: the store's keyring and the audit segments' keys.
    let rotated = with_keys(
        &[
            "keys",
            "rotate-master",
            "--data-dir",
            &data_path,
            "--audit-dir",
            &audit_path,
        ],
        MASTER_KEY,
        OTHER_MASTER_KEY,
    );
    assert!(rotated.status.success(), "{rotated:?}");
    let said = String::from_utf8(rotated.stdout).unwrap();
    assert!(said.contains("1 rewrapped"), "{said}");
    // The running server keeps writing into its segment, whose key is now rewrapped too.
    tagged_query(&server, "k=during").await;
    server.terminate();
    assert!(server.wait_exit().success());

    let mut server = serve(OTHER_MASTER_KEY);
    tagged_query(&server, "k=after").await;
    server.terminate();
    assert!(server.wait_exit().success());

    // The new key reads and authenticates everything; the old one no longer reads the
    // newest segment.
    assert_eq!(
        exported_tags(&audit_path, OTHER_MASTER_KEY).unwrap(),
        ["k=before", "k=during", "k=after"]
    );
    let verified = audit_with_key(&["verify", &audit_path], OTHER_MASTER_KEY);
    assert!(verified.status.success(), "{verified:?}");
    let (code, message) = exported_tags(&audit_path, MASTER_KEY).unwrap_err();
    assert_eq!(code, Some(2), "{message}");

    // A rotation without --audit-dir leaves the log behind until `audit rewrap`.
    let rotated = with_keys(
        &["keys", "rotate-master", "--data-dir", &data_path],
        OTHER_MASTER_KEY,
        THIRD_MASTER_KEY,
    );
    assert!(rotated.status.success(), "{rotated:?}");
    let (code, message) = exported_tags(&audit_path, THIRD_MASTER_KEY).unwrap_err();
    assert_eq!(code, Some(2), "{message}");
    assert!(message.contains("not under the key given"), "{message}");

    // With the wrong old key, nothing can be rewrapped, and the command says which segments.
    let wrong = with_keys(
        &["audit", "rewrap", &audit_path],
        UNRELATED_MASTER_KEY,
        THIRD_MASTER_KEY,
    );
    assert_eq!(wrong.status.code(), Some(1), "{wrong:?}");
    let message = String::from_utf8(wrong.stderr).unwrap();
    assert!(message.contains("wrapped by neither"), "{message}");

    let rewrapped = with_keys(
        &["audit", "rewrap", &audit_path],
        OTHER_MASTER_KEY,
        THIRD_MASTER_KEY,
    );
    assert!(rewrapped.status.success(), "{rewrapped:?}");
    let said = String::from_utf8(rewrapped.stdout).unwrap();
    assert!(said.contains("2 rewrapped"), "{said}");
    assert_eq!(
        exported_tags(&audit_path, THIRD_MASTER_KEY).unwrap(),
        ["k=before", "k=during", "k=after"]
    );
    let again = with_keys(
        &["audit", "rewrap", &audit_path],
        OTHER_MASTER_KEY,
        THIRD_MASTER_KEY,
    );
    let said = String::from_utf8(again.stdout).unwrap();
    assert!(said.contains("0 rewrapped, 2 already"), "{said}");
    // No key text in what the commands printed or wrote.
    let files = every_file_under(&audit_dir);
    for key in [
        MASTER_KEY,
        OTHER_MASTER_KEY,
        THIRD_MASTER_KEY,
        UNRELATED_MASTER_KEY,
    ] {
        assert!(!contains(&files, key));
        assert!(!said.contains(key));
    }
}

fn metrics_address(server: &TestServer) -> String {
    let line = server
        .stdout()
        .into_iter()
        .find(|l| l.starts_with("testudo metrics on "))
        .unwrap();
    line.strip_prefix("testudo metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap()
        .to_owned()
}

#[test]
fn metrics_show_the_scheduled_backups() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let server = start(
        dir.path(),
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
    );
    let addr = metrics_address(&server);
    // The first scheduled backup of an empty backup directory is taken at start; wait for
    // it (bounded: a backup of an empty store takes milliseconds).
    let mut text = get_metrics(&addr);
    for _ in 0..600 {
        if sample(&text, "testudo_backup_last_success_timestamp_seconds").is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        text = get_metrics(&addr);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let last = sample(&text, "testudo_backup_last_success_timestamp_seconds").unwrap();
    assert!(last > now - 3600.0 && last <= now + 1.0, "{text}");
    assert!(sample(&text, "testudo_backup_runs_total").unwrap() >= 1.0);
    assert_eq!(sample(&text, "testudo_backup_failures_total"), Some(0.0));
    assert!(sample(&text, "testudo_backup_age_seconds").unwrap() >= 0.0);
    assert!(sample(&text, "testudo_backup_running").is_some());
    assert!(sample(&text, "testudo_backup_last_failure_timestamp_seconds").is_none());
}
