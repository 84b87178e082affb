//! Accepting connections and serving HTTP/1.1 and HTTP/2 on the same port — cleartext (HTTP/2
//! by prior knowledge) or inside TLS (HTTP/2 chosen by ALPN) — and shutting down gracefully.
//!
//! Shutdown: when the `shutdown` future resolves, the listener is dropped (no new
//! connections), every open connection is asked to finish (HTTP/1.1 closes after its current
//! response, HTTP/2 sends GOAWAY), and the server waits up to the grace period. Connections
//! still open then are cut. Finally it waits for engine calls that are still running (each
//! ends by its own deadline), so that the caller may close the engine as soon as `serve`
//! returns.
//!
//! TLS: [`serve_connection`] is generic over the byte stream. With TLS, each connection's
//! task (never the accept loop) runs the handshake with the configuration current at accept
//! time, bounded by the header read timeout and cut by the end of the grace period, then
//! serves the TLS stream. The HTTP version is detected from the first bytes either way; a
//! client that negotiated `h2` by ALPN starts with the HTTP/2 preface.
//!
//! **Invariants:** the reactor never runs an engine call; every connection has a bounded time
//! to finish its TLS handshake and to start its first request, and every request a bounded
//! time to send its head and body; the number of connections is bounded; `serve` returns only
//! when no engine call is running and none can start any more.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use testudo_engine::Engine;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::config::ServerConfig;
use crate::error::ProtocolError;
use crate::inflight::InFlight;
use crate::refusals::RefusalPacer;
use crate::routes;
use crate::tls::TlsConfig;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the listener is not usable: {0}")]
    Listener(#[source] io::Error),
}

/// What every request handler shares.
pub struct AppState {
    pub engine: Arc<Engine>,
    pub config: ServerConfig,
    pub inflight: InFlight,
    pub refusals: RefusalPacer,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, config: ServerConfig) -> AppState {
        AppState {
            refusals: RefusalPacer::new(config.refusal_delay, config.refusals_per_second),
            engine,
            config,
            inflight: InFlight::default(),
        }
    }

    /// Runs `work` on a blocking thread, counted in [`AppState::inflight`]. A panic in `work`
    /// becomes a 500 (and is logged); it never takes the server down.
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, ProtocolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let Some(guard) = self.inflight.enter() else {
            // The server has shut down; only a task that outlived its connection gets here.
            return Err(ProtocolError::internal());
        };
        let task = tokio::task::spawn_blocking(move || {
            let _guard = guard;
            work()
        });
        task.await.map_err(|err| {
            tracing::error!(error = %err, "an engine call failed unexpectedly");
            ProtocolError::internal()
        })
    }
}

/// Serves plaintext HTTP on `listener` until `shutdown` resolves, then shuts down gracefully
/// (see the module docs). Returns once no connection is open and no engine call is running.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    run(listener, engine, config, None, shutdown).await
}

/// [`serve`], with every connection inside TLS. Reloading `tls` (from another task) changes
/// the certificate for the handshakes that follow.
pub async fn serve_tls(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: ServerConfig,
    tls: TlsConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    run(listener, engine, config, Some(tls), shutdown).await
}

async fn run(
    listener: TcpListener,
    engine: Arc<Engine>,
    config: ServerConfig,
    tls: Option<TlsConfig>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let local = listener.local_addr().map_err(ServeError::Listener)?;
    let max_connections = config.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let grace = config.shutdown_grace_period;
    let state = Arc::new(AppState::new(engine, config));
    let builder = connection_builder(&state.config);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections));
    let (cut_tx, cut_rx) = watch::channel(false);
    match &tls {
        None => tracing::info!(%local, "serving HTTP/1.1 and h2c"),
        Some(tls) => tracing::info!(
            %local,
            client_certificates = tls.requires_client_certificates(),
            "serving HTTP/1.1 and HTTP/2 over TLS"
        ),
    }

    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_closed) => break,
            },
        };
        let accepted = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, peer),
            Err(err) => {
                // Usually transient (out of file descriptors, a reset before accept): back
                // off briefly instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                drop(slot);
                tokio::select! {
                    biased;
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let state = Arc::clone(&state);
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let cut = cut_rx.clone();
        // Taken at accept time: a reload affects only the connections accepted after it.
        let acceptor = tls
            .as_ref()
            .map(|tls| tokio_rustls::TlsAcceptor::from(tls.current()));
        tokio::spawn(async move {
            let _slot = slot;
            let mut cut = cut;
            match acceptor {
                None => serve_connection(stream, Some(peer), state, builder, watcher, cut).await,
                Some(acceptor) => {
                    let Some(stream) = handshake(acceptor, stream, peer, &state, &mut cut).await
                    else {
                        return;
                    };
                    serve_connection(stream, Some(peer), state, builder, watcher, cut).await;
                }
            }
        });
    }

    drop(listener);
    tracing::info!(
        open_connections = graceful.count(),
        "shutting down: no longer accepting connections"
    );
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: closing the connections still open");
        let _ = cut_tx.send(true);
    }
    // Every connection task holds a slot until it ends.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    state.inflight.close();
    let running = state.inflight.count();
    if running > 0 {
        tracing::info!(running, "waiting for running queries to finish");
    }
    state.inflight.wait_idle().await;
    tracing::info!("server stopped");
    Ok(())
}

fn connection_builder(config: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.max_concurrent_streams)
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        // Pings find dead peers of long-lived HTTP/2 connections.
        .keep_alive_interval(Duration::from_secs(60))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}

/// The server side of a TLS handshake, bounded by the header read timeout (a client that
/// stalls it holds a connection slot) and by the end of the grace period. `None` when it
/// failed; failures are the client's business, so they are logged at debug level only.
async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    state: &AppState,
    cut: &mut watch::Receiver<bool>,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    let timeout = state.config.header_read_timeout;
    tokio::select! {
        done = tokio::time::timeout(timeout, acceptor.accept(stream)) => match done {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(err)) => {
                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                None
            }
            Err(_elapsed) => {
                tracing::debug!(%peer, "TLS handshake not finished in time");
                None
            }
        },
        _ = cut.wait_for(|&cut| cut) => None,
    }
}

/// The address a request came from, attached to every request of a connection.
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub std::net::IpAddr);

/// Serves one connection until it ends, shutdown asks it to finish, or the grace period
/// cuts it. Generic over the byte stream: this is where TLS plugs in.
pub async fn serve_connection<I>(
    io: I,
    peer: Option<SocketAddr>,
    state: Arc<AppState>,
    builder: auto::Builder<TokioExecutor>,
    watcher: Watcher,
    mut cut: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let first_request_timeout = state.config.header_read_timeout;
    let started = Arc::new(AtomicBool::new(false));
    let service = {
        let started = Arc::clone(&started);
        service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            started.store(true, Ordering::Relaxed);
            if let Some(peer) = peer {
                request.extensions_mut().insert(PeerAddr(peer.ip()));
            }
            let state = Arc::clone(&state);
            async move { Ok::<_, Infallible>(routes::dispatch(state, request).await) }
        })
    };
    let connection = watcher.watch(
        builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned(),
    );
    // hyper's HTTP/1.1 header timeout starts only once the protocol is known; this bounds
    // the time before that, and HTTP/2 connections that never open a stream.
    let first_request_deadline = async {
        tokio::time::sleep(first_request_timeout).await;
        if started.load(Ordering::Relaxed) {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        result = connection => {
            if let Err(err) = result {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        }
        () = first_request_deadline => tracing::debug!("connection sent no request in time"),
        _ = cut.wait_for(|&cut| cut) => tracing::debug!("connection cut at the end of the grace period"),
    }
}
