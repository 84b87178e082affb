//! The `testudo serve` process: graceful shutdown, the plaintext rule, and the root secret
//! across restarts.

mod common;

use std::process::Stdio;

use common::{DEV_AUTH, TestServer, testudo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(
        dir.path(),
        &["--dev", "--log-level", "info,testudo_server=debug"],
        &[],
    );

    // A request whose body is only half sent is in flight until the rest arrives.
    let body = br#"{"query": "1", "arguments": {}}"#;
    let (first, rest) = body.split_at(10);
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /query/1 HTTP/1.1\r\nhost: localhost\r\nauthorization: {}\r\ncontent-length: {}\r\n\r\n",
        DEV_AUTH.1,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    server.wait_for_log("request started");

    server.terminate();
    server.wait_for_log("shutdown requested");
    stream.write_all(rest).await.unwrap();

    // The server answers, then closes the connection because it is shutting down.
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 "), "{response}");
    let json = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    assert!(json.get("summary").is_some(), "an engine answer: {json}");

    let status = server.wait_exit();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn plaintext_on_a_non_loopback_address_is_refused_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let output = testudo(dir.path(), &["--dev", "--listen", "0.0.0.0:0"], &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--insecure-allow-plaintext"), "{stderr}");
    assert!(stderr.contains("TLS"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("listening"));
}

#[test]
fn dev_mode_with_an_explicit_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let status = testudo(
        dir.path(),
        &["--dev", "--listen", "127.0.0.1:0"],
        &[("TESTUDO_ROOT_SECRET", "x")],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(2));
}

fn generated_secret(server: &TestServer) -> Option<String> {
    server
        .stdout()
        .iter()
        .find_map(|line| line.trim().strip_prefix("root secret: ").map(str::to_owned))
}

async fn accepted(server: &TestServer, secret: &str) -> bool {
    let auth = format!("Bearer {secret}");
    let response = server
        .post_query(r#"{"query":"1"}"#, &[("authorization", auth.as_str())])
        .await;
    response.status != 401
}

#[tokio::test]
async fn a_generated_root_secret_is_printed_once_and_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();

    let first = TestServer::start(dir.path(), &[], &[]);
    let secret = generated_secret(&first).expect("the first start prints the root secret");
    assert!(secret.starts_with("fnR"), "{secret}");
    assert!(accepted(&first, &secret).await);
    assert!(!accepted(&first, "secret").await);
    drop(first);

    let stored = std::fs::read_to_string(dir.path().join("root-secret.sha256")).unwrap();
    assert!(!stored.contains(&secret));

    let second = TestServer::start(dir.path(), &[], &[]);
    assert_eq!(generated_secret(&second), None);
    assert!(!second.stdout().iter().any(|line| line.contains(&secret)));
    assert!(accepted(&second, &secret).await);
}

#[tokio::test]
async fn the_root_secret_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        dir.path(),
        &[],
        &[("TESTUDO_ROOT_SECRET", "s3cr3t-from-env")],
    );
    assert_eq!(generated_secret(&server), None);
    assert!(accepted(&server, "s3cr3t-from-env").await);
    assert!(!accepted(&server, "secret").await);
    assert!(!dir.path().join("root-secret.sha256").exists());
}
