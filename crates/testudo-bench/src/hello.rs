//! The baseline: a bare hyper server, built like Testudo's (hyper-util's auto builder:
//! HTTP/1.1 keep-alive and h2c on one port, `TCP_NODELAY`, a multi-threaded Tokio runtime),
//! that reads each request's body and answers a fixed small JSON document. Whatever Testudo
//! does on top of this — parsing, authentication, the engine, storage — is what a benchmark
//! against it measures.
//!
//! **Invariants:** no work per request beyond reading the body and writing the fixed answer;
//! the server stops when its `shutdown` future resolves.

use std::convert::Infallible;
use std::future::Future;
use std::io;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The answer to every request: shaped like a small Fauna query response.
pub const HELLO_BODY: &[u8] = br#"{"data":"hello","summary":"","txn_ts":1,"stats":{"compute_ops":1,"read_ops":0,"write_ops":0,"query_time_ms":0,"contention_retries":0,"storage_bytes_read":0,"storage_bytes_write":0,"rate_limits_hit":[]}}"#;

/// Serves `listener` until `shutdown` resolves (open connections are then dropped with the
/// runtime).
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Transient (a reset before accept, out of descriptors): keep serving.
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        tokio::spawn(async move {
            let _ = builder
                .serve_connection(TokioIo::new(stream), service_fn(answer))
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = match request.into_body().collect().await {
        Ok(_) => StatusCode::OK,
        Err(_) => StatusCode::BAD_REQUEST,
    };
    let mut response = Response::new(Full::new(Bytes::from_static(HELLO_BODY)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}
