//! Time limits of `serve_tls` during the TLS handshake, run in-process with short timeouts: a
//! client that stalls its handshake is closed, and shutdown does not wait for one.
//!
//! Waits are bounded (a broken server fails the test instead of hanging it); no assertion
//! depends on how long anything took.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{CertificateParams, KeyPair};
use testudo_auth::SecretHash;
use testudo_engine::{Engine, EngineConfig};
use testudo_server::{ServeError, ServerConfig, TlsConfig, TlsFiles, serve_tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const PATIENCE: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(200);

struct Running {
    addr: SocketAddr,
    cert: rustls::pki_types::CertificateDer<'static>,
    stop: oneshot::Sender<()>,
    served: JoinHandle<Result<(), ServeError>>,
    _dir: tempfile::TempDir,
}

async fn start(config: ServerConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let files = TlsFiles {
        cert: dir.path().join("cert.pem"),
        key: dir.path().join("key.pem"),
        client_ca: None,
    };
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    let tls = TlsConfig::load(files).unwrap();

    let engine = Engine::open(
        Arc::new(testudo_storage::LocalKv::in_memory().unwrap()),
        EngineConfig {
            root_secret: SecretHash::of("secret"),
        },
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(serve_tls(
        listener,
        Arc::new(engine),
        config,
        tls,
        async move {
            let _ = stopped.await;
        },
    ));
    Running {
        addr,
        cert: cert.der().clone(),
        stop,
        served,
        _dir: dir,
    }
}

impl Running {
    /// Completes a TLS handshake on a new connection. Connections are accepted in order, so
    /// afterwards every earlier connection has been accepted too.
    async fn handshake(&self) {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        tokio::time::timeout(
            PATIENCE,
            tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .expect("the handshake ends")
        .unwrap();
    }

    async fn shut_down(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(PATIENCE, self.served)
            .await
            .expect("serve returns")
            .unwrap()
            .unwrap();
    }
}

/// The header of a handshake record announcing a ClientHello that never comes.
const STALLED_HELLO: [u8; 5] = [0x16, 3, 1, 0, 200];

#[tokio::test]
async fn a_client_that_stalls_its_handshake_is_closed() {
    let server = start(ServerConfig {
        header_read_timeout: SHORT,
        ..ServerConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&STALLED_HELLO).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    assert!(out.is_empty(), "{out:?}");
    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_cuts_a_stalled_handshake_after_the_grace_period() {
    // The handshake timeout is far beyond PATIENCE: only the grace period can end it.
    let server = start(ServerConfig {
        header_read_timeout: Duration::from_secs(3600),
        shutdown_grace_period: SHORT,
        ..ServerConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(&STALLED_HELLO).await.unwrap();
    server.handshake().await;
    server.shut_down().await;
}
