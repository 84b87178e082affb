//! The JWKS fetchers against real sockets: a tiny HTTP server on 127.0.0.1 (std
//! `TcpListener`, one thread, canned responses) and the same behind rustls with the test CA
//! in `testdata/jwt/`. Every server thread stops by itself after its responses.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod jwt_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use jwt_support::*;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use testudo_auth::jwt::{
    self, HttpFetchConfig, HttpJwksFetcher, JwksCache, JwksCacheConfig, JwksFetcher, JwtError,
    MAX_JWKS_BYTES, ProviderSpec, SchemeFetcher,
};

fn ok_json(body: &[u8]) -> Vec<u8> {
    let mut response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    response.extend_from_slice(body);
    response
}

fn chunked(body: &[u8]) -> Vec<u8> {
    let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body.chunks(100) {
        response.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        response.extend_from_slice(part);
        response.extend_from_slice(b"\r\n");
    }
    response.extend_from_slice(b"0\r\n\r\n");
    response
}

fn redirect(location: &str) -> Vec<u8> {
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

/// Reads one request head (bounded). A TLS handshake record is not HTTP: it is answered at
/// once, so a client speaking TLS to a plain server fails without waiting.
fn read_request(stream: &mut impl Read) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 && head.first() != Some(&0x16) {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The next connection, or `None` once the test has had ten seconds to make it: server
/// threads end by themselves even when the client is refused before connecting.
fn accept(listener: &TcpListener) -> Option<TcpStream> {
    listener.set_nonblocking(true).unwrap();
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                return Some(stream);
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
    }
    None
}

/// Serves `responses` in order, one per connection, then stops. Returns the address and
/// the request heads it saw.
fn serve(responses: Vec<Vec<u8>>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    thread::spawn(move || {
        for response in responses {
            let Some(mut stream) = accept(&listener) else {
                return;
            };
            log.lock().unwrap().push(read_request(&mut stream));
            let _ = stream.write_all(&response);
        }
    });
    (address, seen)
}

fn local_config() -> HttpFetchConfig {
    HttpFetchConfig {
        allow_http: true,
        allow_private_addresses: true,
        ..HttpFetchConfig::default()
    }
}

fn local_fetcher() -> HttpJwksFetcher {
    HttpJwksFetcher::new(local_config()).unwrap()
}

#[test]
fn the_http_fetcher_reads_a_jwks_and_verify_accepts_a_token_with_it() {
    let jwks = read("jwks.json");
    let (address, seen) = serve(vec![ok_json(&jwks)]);
    let uri = format!("http://{address}/.well-known/jwks.json");
    let cache = JwksCache::new(Arc::new(local_fetcher()), JwksCacheConfig::default());
    let provider = ProviderSpec {
        jwks_uri: uri,
        ..provider()
    };
    let token = token_with("rsa-1", Algorithm::RS256, &Key::Rsa, good_claims());
    assert!(jwt::verify(&token, &provider, &cache, NOW, 5).is_ok());
    let requests = seen.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].starts_with("GET /.well-known/jwks.json HTTP/1.1\r\n"));
    assert!(requests[0].contains(&format!("\r\nHost: {address}\r\n")));
}

#[test]
fn a_chunked_response_is_reassembled() {
    let jwks = read("jwks.json");
    let (address, _) = serve(vec![chunked(&jwks)]);
    let body = local_fetcher()
        .fetch(&format!("http://{address}/jwks"))
        .unwrap();
    assert_eq!(body, jwks);
}

#[test]
fn a_same_scheme_redirect_is_followed() {
    let jwks = read("jwks.json");
    let (address, seen) = serve(vec![redirect("/v2/jwks"), ok_json(&jwks)]);
    let body = local_fetcher()
        .fetch(&format!("http://{address}/jwks"))
        .unwrap();
    assert_eq!(body, jwks);
    assert!(seen.lock().unwrap()[1].starts_with("GET /v2/jwks "));
}

#[test]
fn a_redirect_to_another_scheme_is_refused() {
    let (address, seen) = serve(vec![redirect("https://127.0.0.1/jwks")]);
    let fetched = local_fetcher().fetch(&format!("http://{address}/jwks"));
    assert_eq!(
        fetched,
        Err(JwtError::JwksUnavailable(
            "redirect to another scheme".into()
        ))
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[test]
fn endless_redirects_stop() {
    let (address, seen) = serve(vec![redirect("/a"); 4]);
    let fetched = local_fetcher().fetch(&format!("http://{address}/jwks"));
    assert_eq!(
        fetched,
        Err(JwtError::JwksUnavailable("too many redirects".into()))
    );
    assert_eq!(seen.lock().unwrap().len(), 4);
}

#[test]
fn a_response_over_one_mebibyte_is_refused() {
    let (address, _) = serve(vec![ok_json(&vec![b' '; MAX_JWKS_BYTES + 1])]);
    assert!(matches!(
        local_fetcher().fetch(&format!("http://{address}/jwks")),
        Err(JwtError::JwksUnavailable(_))
    ));
    // Without framing, the cap applies to what arrives before the close.
    let mut unframed = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    unframed.extend(vec![b' '; MAX_JWKS_BYTES + 100 * 1024]);
    let (address, _) = serve(vec![unframed]);
    assert!(matches!(
        local_fetcher().fetch(&format!("http://{address}/jwks")),
        Err(JwtError::JwksUnavailable(_))
    ));
}

#[test]
fn an_error_status_is_unavailable() {
    let (address, _) = serve(vec![
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ]);
    assert_eq!(
        local_fetcher().fetch(&format!("http://{address}/jwks")),
        Err(JwtError::JwksUnavailable(
            "the JWKS host answered HTTP 404".into()
        ))
    );
}

#[test]
fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    thread::spawn(move || {
        // Accept and hold the connection without answering, then stop.
        if let Some(stream) = accept(&listener) {
            thread::sleep(Duration::from_secs(3));
            drop(stream);
        }
    });
    let fetcher = HttpJwksFetcher::new(HttpFetchConfig {
        timeout: Duration::from_millis(300),
        ..local_config()
    })
    .unwrap();
    assert_eq!(
        fetcher.fetch(&format!("http://{address}/jwks")),
        Err(JwtError::JwksUnavailable("timed out".into()))
    );
}

#[test]
fn plain_http_is_refused_by_default() {
    let fetcher = HttpJwksFetcher::new(HttpFetchConfig::default()).unwrap();
    assert_eq!(
        fetcher.fetch("http://127.0.0.1:9/jwks"),
        Err(JwtError::JwksUnavailable(
            "plain http JWKS URIs are disabled".into()
        ))
    );
}

#[test]
fn loopback_and_private_addresses_are_refused_by_default() {
    let (address, seen) = serve(vec![ok_json(b"{}")]);
    let fetcher = HttpJwksFetcher::new(HttpFetchConfig {
        allow_http: true,
        ..HttpFetchConfig::default()
    })
    .unwrap();
    for uri in [
        format!("http://{address}/jwks"),
        format!("http://localhost:{}/jwks", address.port()),
        "https://169.254.169.254/latest/meta-data".into(),
        "https://[::1]/jwks".into(),
    ] {
        assert_eq!(
            fetcher.fetch(&uri),
            Err(JwtError::JwksUnavailable(
                "the JWKS host has no permitted address".into()
            )),
            "{uri}"
        );
    }
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn the_scheme_fetcher_routes_by_scheme() {
    let jwks = read("jwks.json");
    let (address, _) = serve(vec![ok_json(&jwks)]);
    let fetcher = SchemeFetcher {
        http: Some(local_fetcher()),
        file: Some(jwt::FileJwksFetcher::new(testdata(""))),
    };
    let from_file = fetcher
        .fetch(&format!("file://{}", testdata("jwks.json").display()))
        .unwrap();
    let from_http = fetcher.fetch(&format!("http://{address}/jwks")).unwrap();
    assert_eq!(from_file, jwks);
    assert_eq!(from_http, jwks);
}

// --- https ---

fn tls_server_config() -> Arc<rustls::ServerConfig> {
    let certs = vec![CertificateDer::from_pem_file(testdata("tls-server.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(testdata("tls-server-key.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap(),
    )
}

/// Like `serve`, over TLS with the test server certificate, listening on `ip`.
fn serve_tls(ip: &str, responses: Vec<Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let address = listener.local_addr().unwrap();
    let config = tls_server_config();
    thread::spawn(move || {
        for response in responses {
            let Some(tcp) = accept(&listener) else {
                return;
            };
            let connection = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let mut stream = rustls::StreamOwned::new(connection, tcp);
            read_request(&mut stream);
            let _ = stream.write_all(&response);
            stream.conn.send_close_notify();
            let _ = stream.flush();
        }
    });
    address
}

fn test_ca_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(testdata("tls-ca.pem")).unwrap())
        .unwrap();
    roots
}

#[test]
fn the_https_fetcher_reads_a_jwks_from_a_server_its_roots_trust() {
    let jwks = read("jwks.json");
    let address = serve_tls("127.0.0.1", vec![ok_json(&jwks), chunked(&jwks)]);
    let fetcher = HttpJwksFetcher::with_roots(
        HttpFetchConfig {
            allow_private_addresses: true,
            ..HttpFetchConfig::default()
        },
        test_ca_roots(),
    )
    .unwrap();
    let uri = format!("https://localhost:{}/jwks", address.port());
    assert_eq!(fetcher.fetch(&uri).unwrap(), jwks);
    let by_ip = format!("https://{address}/jwks");
    assert_eq!(fetcher.fetch(&by_ip).unwrap(), jwks);
}

#[test]
fn the_https_fetcher_refuses_a_certificate_outside_its_roots() {
    let address = serve_tls("127.0.0.1", vec![ok_json(b"{}")]);
    let fetcher = HttpJwksFetcher::new(HttpFetchConfig {
        allow_private_addresses: true,
        ..HttpFetchConfig::default()
    })
    .unwrap();
    let fetched = fetcher.fetch(&format!("https://localhost:{}/jwks", address.port()));
    match fetched {
        Err(JwtError::JwksUnavailable(reason)) => assert!(reason.starts_with("TLS"), "{reason}"),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[test]
fn the_https_fetcher_refuses_a_certificate_for_another_name() {
    // The certificate names localhost and 127.0.0.1 only.
    let address = serve_tls("127.0.0.2", vec![ok_json(b"{}")]);
    let fetcher = HttpJwksFetcher::with_roots(
        HttpFetchConfig {
            allow_private_addresses: true,
            ..HttpFetchConfig::default()
        },
        test_ca_roots(),
    )
    .unwrap();
    match fetcher.fetch(&format!("https://{address}/jwks")) {
        Err(JwtError::JwksUnavailable(reason)) => assert!(reason.starts_with("TLS"), "{reason}"),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[test]
fn a_plain_http_server_behind_an_https_uri_fails_cleanly() {
    let (address, _) = serve(vec![ok_json(b"{}")]);
    let fetcher = HttpJwksFetcher::with_roots(local_config(), test_ca_roots()).unwrap();
    assert!(matches!(
        fetcher.fetch(&format!("https://{address}/jwks")),
        Err(JwtError::JwksUnavailable(_))
    ));
}
