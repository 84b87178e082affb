//! Connection limits and graceful shutdown of `serve`, run in-process with short timeouts so
//! that slow and silent clients can be played quickly.
//!
//! Waits are bounded (a broken server fails the test instead of hanging it); no assertion
//! depends on how long anything took.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use testudo_auth::SecretHash;
use testudo_engine::{Engine, EngineConfig};
use testudo_server::{ServeError, ServerConfig, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const PATIENCE: Duration = Duration::from_secs(30);
const SHORT: Duration = Duration::from_millis(200);

struct Running {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    served: JoinHandle<Result<(), ServeError>>,
}

async fn start(config: ServerConfig) -> Running {
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
    let served = tokio::spawn(serve(listener, Arc::new(engine), config, async move {
        let _ = stopped.await;
    }));
    Running { addr, stop, served }
}

impl Running {
    async fn shut_down(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(PATIENCE, self.served)
            .await
            .expect("serve returns")
            .unwrap()
            .unwrap();
    }
}

/// Everything the server sends until it closes the connection.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut out))
        .await
        .expect("the server closes the connection")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

fn short_headers() -> ServerConfig {
    ServerConfig {
        header_read_timeout: SHORT,
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed() {
    let server = start(short_headers()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut stream).await, "");
    server.shut_down().await;
}

#[tokio::test]
async fn a_stalled_http2_preface_is_closed() {
    let server = start(short_headers()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert_eq!(read_until_closed(&mut stream).await, "");
    server.shut_down().await;
}

#[tokio::test]
async fn a_stalled_http1_head_is_closed() {
    let server = start(short_headers()).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /query/1 HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(!answer.contains("200 OK"), "{answer}");
    server.shut_down().await;
}

#[tokio::test]
async fn a_stalled_body_gets_an_invalid_request() {
    let config = ServerConfig {
        body_read_timeout: SHORT,
        ..ServerConfig::default()
    };
    let server = start(config).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let request = "POST /query/1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer secret\r\n\
                   connection: close\r\ncontent-length: 100\r\n\r\n{\"query\":";
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("Timed out reading the request body"),
        "{answer}"
    );
    server.shut_down().await;
}

#[tokio::test]
async fn shutdown_cuts_connections_still_open_after_the_grace_period() {
    let config = ServerConfig {
        shutdown_grace_period: Duration::from_millis(50),
        ..ServerConfig::default()
    };
    let server = start(config).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    // A request whose body never completes keeps its connection busy.
    let request = "POST /query/1 HTTP/1.1\r\nhost: x\r\nauthorization: Bearer secret\r\n\
                   content-length: 100\r\n\r\n{\"query\":";
    stream.write_all(request.as_bytes()).await.unwrap();
    // Once this answers, the stalled request's connection has been accepted and is served.
    let mut probe = TcpStream::connect(server.addr).await.unwrap();
    probe
        .write_all(b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut probe)
            .await
            .starts_with("HTTP/1.1 200")
    );

    server.shut_down().await;
    read_until_closed(&mut stream).await;
    assert!(
        TcpStream::connect(stream.peer_addr().unwrap())
            .await
            .is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn an_idle_server_shuts_down_at_once() {
    let server = start(ServerConfig::default()).await;
    let mut probe = TcpStream::connect(server.addr).await.unwrap();
    probe
        .write_all(b"HEAD /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut probe)
            .await
            .starts_with("HTTP/1.1 200")
    );
    server.shut_down().await;
}
