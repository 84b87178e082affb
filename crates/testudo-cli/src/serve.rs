//! `testudo serve`: open the data directory, start the engine, serve the Fauna protocol until
//! SIGINT/SIGTERM, then shut down gracefully and close the engine.
//!
//! Startup order: check the listen address, load the TLS files, create the data directory,
//! resolve the root secret, open the store and the engine, install the signal handlers, bind,
//! and only then print `testudo listening on http://<addr>` (`https://` with TLS; tests and
//! scripts wait for that line; once it is printed a SIGTERM always means a graceful shutdown).
//!
//! With TLS, SIGHUP reloads the certificate, key and client CA files: new handshakes use the
//! new ones, open connections keep theirs, and a reload that fails is logged and changes
//! nothing. Without TLS, SIGHUP keeps its default meaning.
//!
//! **Invariants:** plaintext HTTP is served on a non-loopback address only when the operator
//! says `--insecure-allow-plaintext`; unusable TLS files stop the start before the data
//! directory is touched; the engine is closed only after the server returned (no request or
//! engine call is running any more).

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use testudo_engine::{Engine, EngineConfig, EngineOptions};
use testudo_server::{ServerConfig, TlsConfig, TlsFiles};
use testudo_storage_redb::keys::MasterKey;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::logging::{self, LogFormat};
use crate::root_secret::{self, Source};
use crate::{CliError, store};

/// The evaluator recurses over the syntax tree and over nested values; the parser bounds the
/// nesting (`testudo_fql::MAX_NESTING`), and 16 MiB is comfortably above what the deepest
/// accepted query needs. Threads of the blocking pool, where queries run, get this size too.
const THREAD_STACK_BYTES: usize = 16 * 1024 * 1024;

#[derive(Args)]
pub struct ServeArgs {
    /// The address to listen on (`host:port`; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: String,

    /// Where the database keeps its files.
    #[arg(long, default_value = "./testudo-data")]
    data_dir: PathBuf,

    /// The format of the logs written to stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Pretty)]
    log_format: LogFormat,

    /// Log filter, e.g. `info` or `testudo_server=debug` (default: `RUST_LOG`, else `info`).
    #[arg(long)]
    log_level: Option<String>,

    /// The admin secret of the root database. Only its hash is kept. Without it (and without
    /// --dev), a secret is generated on the first start and printed once.
    #[arg(long, env = "TESTUDO_ROOT_SECRET", hide_env_values = true)]
    root_secret: Option<String>,

    /// Development mode: the root secret is `secret`, like Fauna's development container.
    #[arg(long)]
    dev: bool,

    /// Serve plaintext HTTP on a non-loopback address (no effect with --tls-cert).
    #[arg(long)]
    insecure_allow_plaintext: bool,

    /// Serve HTTPS with this certificate chain (PEM: the server's certificate first, then
    /// intermediates). TLS 1.3 and 1.2; HTTP/2 or HTTP/1.1 by ALPN. SIGHUP reloads the files.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, RSA or SEC1, unencrypted).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Mutual TLS: clients must present a certificate signed by a CA in this PEM file.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,

    /// The largest request body accepted, in bytes.
    #[arg(long, default_value_t = ServerConfig::default().max_body_bytes)]
    max_body_bytes: usize,

    /// How the store is opened (encryption at rest).
    #[command(flatten)]
    store: store::StoreArgs,

    /// The per-database keys of an encrypted store.
    #[command(flatten)]
    db_keys: store::DbKeysArgs,

    /// How JWTs of access providers are checked.
    #[command(flatten)]
    jwt: JwtArgs,

    /// Scheduled backups.
    #[command(flatten)]
    backup: Box<crate::backup::ServeBackupArgs>,

    /// The audit log, /metrics and the slow-query log.
    #[command(flatten)]
    monitoring: Box<crate::audit::ServeMonitoringArgs>,
}

/// Where access providers' key sets may be fetched from, and the clock skew allowed. The
/// defaults are the safe ones: a database admin chooses `jwks_uri`, the operator decides
/// what the server may reach.
#[derive(Args)]
pub struct JwtArgs {
    /// Seconds of clock skew allowed on a JWT's `exp` and `nbf`.
    #[arg(long, value_name = "SECONDS", default_value_t = testudo_engine::JwtOptions::default().leeway_secs)]
    jwt_leeway_secs: u64,

    /// Allow `http://` JWKS URIs (otherwise only `https://`).
    #[arg(long)]
    jwks_allow_http: bool,

    /// Allow fetching JWKS from loopback and private network addresses (an identity
    /// provider inside your own network).
    #[arg(long)]
    jwks_allow_private_addresses: bool,

    /// Serve `file://` JWKS URIs from this directory (air-gapped deployments); without it
    /// `file:` URIs are refused.
    #[arg(long, value_name = "DIR")]
    jwks_file_root: Option<PathBuf>,
}

impl JwtArgs {
    fn options(&self) -> Result<testudo_engine::JwtOptions, CliError> {
        let jwks_file_root = match &self.jwks_file_root {
            Some(dir) => Some(dir.canonicalize().map_err(|err| {
                CliError::Refused(format!("--jwks-file-root {}: {err}", dir.display()))
            })?),
            None => None,
        };
        Ok(testudo_engine::JwtOptions {
            leeway_secs: self.jwt_leeway_secs,
            allow_http: self.jwks_allow_http,
            allow_private_addresses: self.jwks_allow_private_addresses,
            jwks_file_root,
        })
    }
}

pub fn run(args: ServeArgs) -> Result<(), CliError> {
    logging::init(args.log_format, args.log_level.as_deref())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(THREAD_STACK_BYTES)
        .build()
        .map_err(|err| CliError::Failed(format!("could not start the async runtime: {err}")))?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> Result<(), CliError> {
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(load_tls(TlsFiles {
            cert,
            key,
            client_ca: args.tls_client_ca,
        })?),
        // clap requires both or neither.
        _ => None,
    };
    let addr = listen_address(&args.listen, tls.is_some() || args.insecure_allow_plaintext)?;
    create_data_dir(&args.data_dir)?;

    let source = match (args.dev, args.root_secret) {
        (true, Some(_)) => {
            return Err(CliError::Refused(
                "--dev uses the root secret `secret`; do not also give --root-secret or TESTUDO_ROOT_SECRET"
                    .to_owned(),
            ));
        }
        (true, None) => Source::Dev,
        (false, Some(secret)) => Source::Explicit(secret),
        (false, None) => Source::DataDir,
    };
    let root_secret = root_secret::resolve(source, &args.data_dir, &mut std::io::stdout())?;

    // Before the engine: it records its security decisions in the same audit log.
    // The master key is loaded once (a --master-key-command runs once) for the store, the
    // audit log and the backups.
    let master = store::master_key(&args.store)?;
    let monitoring = args
        .monitoring
        .start(master.as_ref().map(MasterKey::duplicate))
        .await?;
    // The engine writes through the per-database sealing store; backups copy values as
    // stored (still sealed), so a deleted database stays unreadable in them.
    let db_keys_copy_dir = args.db_keys.copy_dir(args.backup.dir());
    let opened = store::open_for_engine(
        &args.data_dir,
        master.as_ref().map(MasterKey::duplicate),
        db_keys_copy_dir,
        args.dev,
    )?;
    let mut options = EngineOptions {
        jwt: args.jwt.options()?,
        audit: monitoring.audit_sink(),
        backups: None,
        database_keys: opened.database_keys.clone(),
        default_limits: monitoring.default_limits(),
    };
    let backups = args.backup.start(
        Arc::clone(&opened.raw),
        master,
        monitoring.audit_sink(),
        &args.data_dir,
    )?;
    options.backups = backups.as_ref().map(|b| b.service());
    let engine = Engine::open_with(opened.kv, EngineConfig { root_secret }, options)
        .map_err(|err| CliError::Failed(format!("could not open the database: {err}")))?;
    let engine = Arc::new(engine);
    monitoring.watch_store(&engine, &args.data_dir);
    if let Some(backups) = &backups {
        backups.attach(&engine)?;
        monitoring.watch_backups(backups.service());
    }

    // Installed before the listening line: from then on a signal means a graceful shutdown.
    let signals = Signals::install()?;
    if let Some(tls) = &tls {
        reload_on_hangup(tls.clone())?;
    }
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| CliError::Failed(format!("could not listen on {addr}: {err}")))?;
    let local = listener
        .local_addr()
        .map_err(|err| CliError::Failed(format!("could not read the listening address: {err}")))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    announce(&format!("testudo listening on {scheme}://{local}"))?;

    let mut config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        ..ServerConfig::default()
    };
    monitoring.configure(&mut config);
    let engine_ref = Arc::clone(&engine);
    let served = match tls {
        None => testudo_server::serve(listener, engine_ref, config, signals.recv()).await,
        Some(tls) => {
            testudo_server::serve_tls(listener, engine_ref, config, tls, signals.recv()).await
        }
    };
    if let Some(backups) = backups {
        // A backup in progress is cancelled (its temporary file removed) before the store
        // closes.
        backups.stop();
    }
    let closed = engine.close();
    monitoring.close();
    served.map_err(|err| CliError::Failed(format!("the server failed: {err}")))?;
    closed
        .map_err(|err| CliError::Failed(format!("could not close the database cleanly: {err}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves `--listen` and applies the plaintext rule: a non-loopback address needs TLS or
/// `--insecure-allow-plaintext` (`encrypted_or_allowed`).
fn listen_address(listen: &str, encrypted_or_allowed: bool) -> Result<SocketAddr, CliError> {
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .map_err(|err| CliError::Refused(format!("invalid --listen address '{listen}': {err}")))?
        .collect();
    let Some(&first) = addrs.first() else {
        return Err(CliError::Refused(format!(
            "--listen address '{listen}' resolves to nothing"
        )));
    };
    if !encrypted_or_allowed && !addrs.iter().all(|a| a.ip().is_loopback()) {
        return Err(CliError::Refused(format!(
            "refusing to serve plaintext HTTP on {listen}, which is not a loopback address: \
             secrets would cross the network unencrypted. Serve TLS with --tls-cert and \
             --tls-key, listen on 127.0.0.1 or ::1, or pass --insecure-allow-plaintext if the \
             network is trusted"
        )));
    }
    Ok(first)
}

/// Loads the TLS files; an unusable file is a refused configuration.
fn load_tls(files: TlsFiles) -> Result<TlsConfig, CliError> {
    TlsConfig::load(files).map_err(|err| CliError::Refused(format!("TLS: {err}")))
}

/// On every SIGHUP, reloads the TLS files on a blocking thread. Installed before the listening
/// line, so a SIGHUP after it never kills the process.
fn reload_on_hangup(tls: TlsConfig) -> Result<(), CliError> {
    let mut hangup = signal(SignalKind::hangup())
        .map_err(|err| CliError::Failed(format!("could not install signal handlers: {err}")))?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            let files = tls.files().clone();
            let reloading = tls.clone();
            match tokio::task::spawn_blocking(move || reloading.reload()).await {
                Ok(Ok(())) => tracing::info!(
                    cert = %files.cert.display(),
                    key = %files.key.display(),
                    "TLS certificate reloaded"
                ),
                Ok(Err(err)) => tracing::error!(
                    error = %err,
                    "TLS reload failed; still serving the previous certificate"
                ),
                Err(err) => tracing::error!(
                    error = %err,
                    "TLS reload failed unexpectedly; still serving the previous certificate"
                ),
            }
        }
    });
    Ok(())
}

fn create_data_dir(dir: &Path) -> Result<(), CliError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|err| CliError::Failed(format!("could not create {}: {err}", dir.display())))
}

/// One line on stdout, flushed at once (scripts wait for it).
fn announce(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|err| CliError::Failed(format!("could not write to stdout: {err}")))
}

/// SIGINT and SIGTERM, registered up front.
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn install() -> Result<Signals, CliError> {
        let install = |kind| {
            signal(kind).map_err(|err| {
                CliError::Failed(format!("could not install signal handlers: {err}"))
            })
        };
        Ok(Signals {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
        })
    }

    async fn recv(mut self) {
        let name = tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "shutdown requested");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_are_served_without_ado() {
        assert!(listen_address("127.0.0.1:0", false).is_ok());
        assert!(listen_address("[::1]:8443", false).is_ok());
    }

    #[test]
    fn other_addresses_need_the_explicit_flag() {
        let err = listen_address("0.0.0.0:8443", false).unwrap_err();
        assert!(matches!(&err, CliError::Refused(m) if m.contains("--insecure-allow-plaintext")));
        assert!(listen_address("0.0.0.0:8443", true).is_ok());
    }

    #[test]
    fn the_refusal_points_at_tls() {
        let err = listen_address("0.0.0.0:8443", false).unwrap_err();
        assert!(matches!(&err, CliError::Refused(m) if m.contains("--tls-cert")));
    }

    #[test]
    fn a_malformed_address_is_refused() {
        assert!(matches!(
            listen_address("nonsense", false),
            Err(CliError::Refused(_))
        ));
    }
}
