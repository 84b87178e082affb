//! `testudo serve --tls-cert/--tls-key`, against the real binary: TLS 1.3 and 1.2 only,
//! HTTP/2 and HTTP/1.1 by ALPN, mutual TLS with `--tls-client-ca`, certificate reload on
//! SIGHUP without dropping connections, and startup refusals for unusable files.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;
#[path = "common/tls.rs"]
mod tls_support;

use std::time::Duration;

use common::{Client, DEV_AUTH};
use http::Method;
use rustls::AlertDescription;
use tls_support::{ClientSpec, Pki, TlsServer, connect, http1, http2, served_certificate};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bounds every raw read so that a silent server fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(60);

async fn ping(client: &mut Client) -> u16 {
    client.send(Method::GET, "/ping", &[], "").await.status
}

/// `1 + 1` as a driver sends it; panics unless the answer is 2.
async fn assert_query_works(client: &mut Client) {
    let body = r#"{"query": {"fql": ["1 + 1"]}}"#;
    let response = client
        .post_query(body, &[DEV_AUTH, ("x-format", "tagged")])
        .await;
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.json()["data"], serde_json::json!({ "@int": "2" }));
}

/// The rustls error inside an I/O error from a TLS stream, if that is what it is.
fn tls_error(err: &std::io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A GET /ping over a fresh TLS connection, written by hand: the raw response, or the first
/// error of the handshake, the write or the read.
async fn raw_ping(server: &TlsServer, spec: &ClientSpec<'_>) -> std::io::Result<Vec<u8>> {
    let mut stream = connect(server.addr, spec).await?;
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("the server answers or closes")?;
    Ok(response)
}

/// What the server sends back after `bytes`: at least `enough` bytes, or everything until it
/// closes the connection.
async fn raw_exchange(server: &TlsServer, bytes: &[u8], enough: usize) -> Vec<u8> {
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut response = Vec::new();
    let mut buf = [0; 4096];
    while response.len() < enough {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the server answers or closes");
        match read {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&buf[..n]),
            // A reset after an alert is as good as a close.
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(err) => panic!("{err}"),
        }
    }
    response
}

/// A hand-made ClientHello that claims `version` (no `supported_versions` extension, so
/// that is the only version offered) with ECDHE AES-GCM and AES-CBC suites.
fn client_hello(version: [u8; 2]) -> Vec<u8> {
    fn extension(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        out.extend_from_slice(data);
    }
    let mut hello = Vec::new();
    hello.extend_from_slice(&version);
    hello.extend_from_slice(&[7; 32]); // random
    hello.push(0); // no session id
    let suites: [u16; 5] = [0xc02b, 0xc02f, 0xc009, 0xc013, 0x002f];
    hello.extend_from_slice(&u16::try_from(suites.len() * 2).unwrap().to_be_bytes());
    for suite in suites {
        hello.extend_from_slice(&suite.to_be_bytes());
    }
    hello.extend_from_slice(&[1, 0]); // compression: null only
    let mut extensions = Vec::new();
    extension(&mut extensions, 0x000a, &[0, 4, 0, 0x1d, 0, 0x17]); // x25519, P-256
    extension(&mut extensions, 0x000b, &[1, 0]); // uncompressed points
    extension(&mut extensions, 0x000d, &[0, 6, 4, 3, 8, 4, 4, 1]); // ECDSA, PSS, PKCS#1
    hello.extend_from_slice(&u16::try_from(extensions.len()).unwrap().to_be_bytes());
    hello.extend_from_slice(&extensions);

    let mut handshake = vec![1]; // ClientHello
    handshake.extend_from_slice(&u32::try_from(hello.len()).unwrap().to_be_bytes()[1..]);
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 3, 1]; // handshake record, TLS 1.0 record version
    record.extend_from_slice(&u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn a_tls13_client_handshakes_and_runs_queries() {
    let pki = Pki::new("Testudo test CA");
    let cert = pki.server("server");
    let server = TlsServer::start(&cert, &[]);
    let trusted = [pki.ca_der()];
    let spec = ClientSpec {
        versions: &[&rustls::version::TLS13],
        ..ClientSpec::trusting(&trusted)
    };

    let stream = connect(server.addr, &spec).await.unwrap();
    let (_, session) = stream.get_ref();
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(served_certificate(&stream), cert.der);
    let mut client = http1(stream).await;
    assert_eq!(ping(&mut client).await, 200);
    assert_query_works(&mut client).await;
}

#[tokio::test]
async fn a_tls12_client_handshakes_and_runs_queries() {
    let pki = Pki::new("Testudo test CA");
    let server = TlsServer::start(&pki.server("server"), &[]);
    let trusted = [pki.ca_der()];
    let spec = ClientSpec {
        versions: &[&rustls::version::TLS12],
        ..ClientSpec::trusting(&trusted)
    };

    let stream = connect(server.addr, &spec).await.unwrap();
    let (_, session) = stream.get_ref();
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let mut client = http1(stream).await;
    assert_query_works(&mut client).await;
}

#[tokio::test]
async fn a_tls11_client_hello_gets_a_protocol_version_alert() {
    let pki = Pki::new("Testudo test CA");
    let server = TlsServer::start(&pki.server("server"), &[]);

    // The same hello claiming TLS 1.2 is answered with a ServerHello: the hello itself is
    // well-formed, only its version is refused.
    let tls12 = raw_exchange(&server, &client_hello([3, 3]), 6).await;
    assert_eq!(tls12.first(), Some(&0x16), "a handshake record: {tls12:?}");
    assert_eq!(tls12.get(5), Some(&2), "a ServerHello: {tls12:?}");

    let tls11 = raw_exchange(&server, &client_hello([3, 2]), usize::MAX).await;
    assert_eq!(tls11.first(), Some(&0x15), "an alert record: {tls11:?}");
    // level fatal (2), description protocol_version (70)
    assert_eq!(tls11.get(5..7), Some(&[2, 70][..]), "{tls11:?}");
}

#[tokio::test]
async fn plaintext_http_to_the_tls_port_gets_no_http_response() {
    let pki = Pki::new("Testudo test CA");
    let server = TlsServer::start(&pki.server("server"), &[]);

    let response = raw_exchange(
        &server,
        b"GET /ping HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
        usize::MAX,
    )
    .await;
    assert!(
        response.is_empty() || response.first() == Some(&0x15),
        "nothing or a TLS alert, got {:?}",
        String::from_utf8_lossy(&response)
    );
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let pki = Pki::new("Testudo test CA");
    let server = TlsServer::start(&pki.server("server"), &[]);
    let trusted = [pki.ca_der()];
    let spec = ClientSpec {
        alpn: &[b"h2", b"http/1.1"],
        ..ClientSpec::trusting(&trusted)
    };

    let stream = connect(server.addr, &spec).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let client = http2(stream).await;
    // Several streams at once on the one connection.
    let queries: Vec<_> = (0..4)
        .map(|_| {
            let mut handle = client.h2_handle();
            tokio::spawn(async move { assert_query_works(&mut handle).await })
        })
        .collect();
    for query in queries {
        query.await.unwrap();
    }
}

#[tokio::test]
async fn a_client_offering_only_http11_gets_http11() {
    let pki = Pki::new("Testudo test CA");
    let server = TlsServer::start(&pki.server("server"), &[]);
    let trusted = [pki.ca_der()];
    let spec = ClientSpec::trusting(&trusted);

    let response = raw_ping(&server, &spec).await.unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&response)
    );
}

/// A server requiring client certificates from `client_ca`.
fn mutual_tls_server(pki: &Pki, client_ca: &Pki) -> TlsServer {
    let ca = client_ca.write_ca("client-ca.pem");
    TlsServer::start(
        &pki.server("server"),
        &["--tls-client-ca", ca.to_str().unwrap()],
    )
}

#[tokio::test]
async fn mutual_tls_rejects_a_client_without_a_certificate() {
    let pki = Pki::new("Testudo test CA");
    let clients = Pki::new("Client CA");
    let server = mutual_tls_server(&pki, &clients);
    let trusted = [pki.ca_der()];

    // TLS 1.3: the client learns of the rejection after its side of the handshake.
    let spec = ClientSpec {
        versions: &[&rustls::version::TLS13],
        ..ClientSpec::trusting(&trusted)
    };
    let err = raw_ping(&server, &spec).await.unwrap_err();
    assert_eq!(
        tls_error(&err),
        Some(&rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
        )),
        "{err}"
    );

    let spec = ClientSpec {
        versions: &[&rustls::version::TLS12],
        ..ClientSpec::trusting(&trusted)
    };
    let err = raw_ping(&server, &spec).await.unwrap_err();
    assert!(
        matches!(tls_error(&err), Some(rustls::Error::AlertReceived(_))),
        "{err}"
    );
}

#[tokio::test]
async fn mutual_tls_rejects_a_certificate_from_another_ca() {
    let pki = Pki::new("Testudo test CA");
    let clients = Pki::new("Client CA");
    let server = mutual_tls_server(&pki, &clients);
    let trusted = [pki.ca_der()];
    let stranger = Pki::new("Another CA").client("stranger");

    let spec = ClientSpec {
        identity: Some(&stranger),
        ..ClientSpec::trusting(&trusted)
    };
    let err = raw_ping(&server, &spec).await.unwrap_err();
    assert!(
        matches!(tls_error(&err), Some(rustls::Error::AlertReceived(_))),
        "{err}"
    );
}

#[tokio::test]
async fn mutual_tls_accepts_a_certificate_signed_by_the_client_ca() {
    let pki = Pki::new("Testudo test CA");
    let clients = Pki::new("Client CA");
    let server = mutual_tls_server(&pki, &clients);
    let trusted = [pki.ca_der()];
    let app = clients.client("app");

    for versions in [&[&rustls::version::TLS13], &[&rustls::version::TLS12]] {
        let spec = ClientSpec {
            versions,
            identity: Some(&app),
            ..ClientSpec::trusting(&trusted)
        };
        let mut client = http1(connect(server.addr, &spec).await.unwrap()).await;
        assert_query_works(&mut client).await;
    }
}

#[tokio::test]
async fn sighup_switches_the_certificate_for_new_connections_and_keeps_open_ones() {
    let pki = Pki::new("Testudo test CA");
    let first = pki.server("server");
    let server = TlsServer::start(&first, &[]);
    let trusted = [pki.ca_der()];
    let spec = ClientSpec {
        alpn: &[b"h2"],
        ..ClientSpec::trusting(&trusted)
    };
    let old_stream = connect(server.addr, &spec).await.unwrap();
    assert_eq!(served_certificate(&old_stream), first.der);
    let mut old = http2(old_stream).await;
    assert_query_works(&mut old).await;

    // Same file names: the files are replaced in place, as certificate renewal does.
    let second = pki.server("server");
    assert_ne!(first.der, second.der);
    server.hangup();
    server.wait_for_log("TLS certificate reloaded", 0);

    let new_stream = connect(server.addr, &spec).await.unwrap();
    assert_eq!(served_certificate(&new_stream), second.der);
    let mut new = http2(new_stream).await;
    assert_query_works(&mut new).await;
    // The connection from before the reload was not dropped.
    assert_query_works(&mut old).await;
}

#[tokio::test]
async fn a_failed_reload_keeps_the_previous_certificate_and_logs_the_file() {
    let pki = Pki::new("Testudo test CA");
    let cert = pki.server("server");
    let server = TlsServer::start(&cert, &[]);
    let trusted = [pki.ca_der()];
    let spec = ClientSpec::trusting(&trusted);

    std::fs::write(&cert.key_path, "not a key\n").unwrap();
    server.hangup();
    let logged = server.wait_for_log("TLS reload failed", 0);
    assert!(logged.contains("server.key"), "{logged}");

    let stream = connect(server.addr, &spec).await.unwrap();
    assert_eq!(served_certificate(&stream), cert.der);
    let mut client = http1(stream).await;
    assert_query_works(&mut client).await;
}

#[tokio::test]
async fn a_non_loopback_address_is_served_with_tls() {
    let pki = Pki::new("Testudo test CA");
    let server = TlsServer::start_on("0.0.0.0:0", &pki.server("server"), &[]);
    let trusted = [pki.ca_der()];
    let mut client = http1(
        connect(server.addr, &ClientSpec::trusting(&trusted))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ping(&mut client).await, 200);
}

#[test]
fn an_unusable_key_refuses_to_start_naming_the_file_before_touching_the_data_directory() {
    let pki = Pki::new("Testudo test CA");
    let cert = pki.server("server");
    std::fs::write(&cert.key_path, cert.der.as_ref()).unwrap();
    let data_dir = pki.dir.path().join("data");

    let output = common::testudo(
        &data_dir,
        &[
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.cert_path.to_str().unwrap(),
            "--tls-key",
            cert.key_path.to_str().unwrap(),
        ],
        &[],
    )
    .output()
    .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("server.key"), "{stderr}");
    assert!(stderr.contains("no private key"), "{stderr}");
    assert!(!data_dir.exists());
}

#[test]
fn a_certificate_without_its_key_is_a_usage_error() {
    let pki = Pki::new("Testudo test CA");
    let cert = pki.server("server");
    let status = common::testudo(
        &pki.dir.path().join("data"),
        &["--dev", "--tls-cert", cert.cert_path.to_str().unwrap()],
        &[],
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(2));
}

/// `testudo <args>` with the dev server's root secret; (exit code, stdout, stderr).
fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_testudo"))
        .args(args)
        .env("TESTUDO_SECRET", "secret")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (out.status.code(), text(out.stdout), text(out.stderr))
}

#[test]
fn the_backup_cli_reaches_a_tls_server_through_its_ca_and_a_client_certificate() {
    let pki = Pki::new("Testudo test CA");
    let clients = Pki::new("Client CA");
    let backups = tempfile::tempdir().unwrap();
    let client_ca = clients.write_ca("client-ca.pem");
    let server = TlsServer::start(
        &pki.server("server"),
        &[
            "--backup-dir",
            backups.path().to_str().unwrap(),
            "--tls-client-ca",
            client_ca.to_str().unwrap(),
        ],
    );
    let ca = pki.write_ca("ca.pem");
    let app = clients.client("app");
    let by_name = format!("https://localhost:{}", server.addr.port());
    let by_address = format!("https://{}", server.addr);
    let identity = [
        "--tls-client-cert",
        app.cert_path.to_str().unwrap(),
        "--tls-client-key",
        app.key_path.to_str().unwrap(),
    ];
    let with = |command: &[&str], url: &str, extra: &[&str]| {
        let mut args = command.to_vec();
        args.extend_from_slice(&["--url", url]);
        args.extend_from_slice(extra);
        cli(&args)
    };
    let trusted: Vec<&str> = ["--tls-ca", ca.to_str().unwrap()]
        .into_iter()
        .chain(identity)
        .collect();

    let (code, out, err) = with(&["backup", "create"], &by_name, &trusted);
    assert_eq!(code, Some(0), "{out}{err}");
    let name = out.split_whitespace().nth(1).unwrap().to_owned();
    let (code, out, err) = with(&["backup", "list"], &by_address, &trusted);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&name), "{out}");

    // The public roots do not vouch for a private CA, and the message says what to give.
    let (code, _, err) = with(&["backup", "list"], &by_name, &identity);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--tls-ca"), "{err}");
    // The server wants a client certificate.
    let (code, _, err) = with(
        &["backup", "list"],
        &by_name,
        &["--tls-ca", ca.to_str().unwrap()],
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--tls-client-cert"), "{err}");
    // Another CA's server certificate is refused even with a client certificate.
    let other = Pki::new("Other CA");
    let other_ca = other.write_ca("other-ca.pem");
    let wrong: Vec<&str> = ["--tls-ca", other_ca.to_str().unwrap()]
        .into_iter()
        .chain(identity)
        .collect();
    let (code, _, err) = with(&["backup", "list"], &by_name, &wrong);
    assert_eq!(code, Some(1), "{err}");
    // TLS options with a plain URL are a mistake, not ignored.
    let plain = format!("http://{}", server.addr);
    let (code, _, err) = with(&["backup", "list"], &plain, &trusted);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("https://"), "{err}");
}
