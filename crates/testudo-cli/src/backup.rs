//! `testudo backup create|list|verify|prune` and `testudo restore`, against a stopped data
//! directory (the format, verification and restore live in `testudo-backup`).
//!
//! - `backup create --data-dir D --out DIR`: one consistent snapshot of the store into a new
//!   file in DIR, encrypted when a master key is given (the store's own key flags).
//! - `backup list DIR`: the backups there, oldest first, and any partial or unreadable file.
//! - `backup verify FILE`: every chunk and the manifest, without restoring (with the master
//!   key: authenticated; without it an encrypted backup is checked by checksums only).
//! - `backup prune DIR --keep N`: deletes all but the newest N complete backups.
//! - `restore FILE --data-dir NEWDIR`: a new store from a backup, refused unless NEWDIR is
//!   absent or empty, and refused before anything is written if the file is damaged.
//!
//! **Invariants:** stdout carries one summary line per result; progress (throughput, ETA)
//! goes to stderr, and only for operations longer than a second; no key is ever printed, only
//! fingerprints; nothing existing is overwritten.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Weak};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use rustls::pki_types::ServerName;
use testudo_audit::{AuditEvent, AuditSink, BackupRecord as AuditBackup, DatabaseRef, Outcome};
use testudo_backup::{BackupError, EntryStatus, SnapshotOptions};
use testudo_engine::Engine;
use testudo_engine::backup::{
    BackupCounts, BackupFailure, BackupRecord as EngineRecord, BackupSchedule, BackupService,
    BackupSource, BackupSummary, DbId, ScheduleStatus,
};
use testudo_storage::Kv;
use testudo_storage_redb::DatabaseKeys;
use testudo_storage_redb::keys::MasterKey;

use crate::CliError;
use crate::store::{self, StoreArgs};

#[derive(Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    command: BackupCommand,
}

#[derive(Subcommand)]
enum BackupCommand {
    /// Take a backup of a stopped data directory into a new file in --out.
    Create(CreateArgs),
    /// List the backups in a directory, oldest first.
    List(ListArgs),
    /// Check every chunk and the manifest of a backup file without restoring it.
    Verify(VerifyArgs),
    /// Delete all but the newest --keep complete backups of a directory.
    Prune(PruneArgs),
}

#[derive(Args)]
struct CreateArgs {
    /// The (stopped) server's data directory.
    #[arg(long, default_value = "./testudo-data")]
    data_dir: PathBuf,

    /// The directory to write the backup file into (created if missing).
    #[arg(long, value_name = "DIR", required_unless_present = "url")]
    out: Option<PathBuf>,

    /// Ask a running server instead (it writes into its `--backup-dir`).
    #[command(flatten)]
    remote: RemoteArgs,

    /// Back up only keys starting with this prefix (hex; repeatable).
    #[arg(long, value_name = "HEX")]
    prefix: Vec<String>,

    /// The store's master key; the backup is encrypted under it too.
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
struct ListArgs {
    /// The backup directory.
    #[arg(required_unless_present = "url")]
    dir: Option<PathBuf>,

    /// Ask a running server instead.
    #[command(flatten)]
    remote: RemoteArgs,
}

/// A running server, reached over HTTP or HTTPS with an admin secret: backups of the
/// database the secret belongs to (the root secret: the whole server).
#[derive(Args)]
struct RemoteArgs {
    /// The server's URL (`http://host:port` or `https://host:port`).
    #[arg(long, value_name = "URL")]
    url: Option<String>,

    /// An admin secret of the database to back up or restore into.
    #[arg(long, env = "TESTUDO_SECRET", hide_env_values = true, requires = "url")]
    secret: Option<String>,

    /// For an https:// URL: the CA certificates (PEM) to trust instead of the public web
    /// PKI's roots, e.g. the private CA that signed the server's `--tls-cert`.
    #[arg(long, value_name = "PATH", requires = "url")]
    tls_ca: Option<PathBuf>,

    /// For a server that requires client certificates (`serve --tls-client-ca`): this
    /// client's certificate chain (PEM).
    #[arg(long, value_name = "PATH", requires_all = ["url", "tls_client_key"])]
    tls_client_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-client-cert.
    #[arg(long, value_name = "PATH", requires = "tls_client_cert")]
    tls_client_key: Option<PathBuf>,
}

#[derive(Args)]
struct VerifyArgs {
    /// The backup file.
    file: PathBuf,

    /// The master key of an encrypted backup (without it, checksums only).
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Args)]
struct PruneArgs {
    /// The backup directory.
    dir: PathBuf,

    /// How many of the newest complete backups to keep (at least 1).
    #[arg(long)]
    keep: usize,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(required_unless_present = "url")]
    file: Option<PathBuf>,

    /// The new data directory (must not exist, or be empty).
    #[arg(long, required_unless_present = "url")]
    data_dir: Option<PathBuf>,

    /// Restore through a running server instead, as a new child database.
    #[command(flatten)]
    remote: RemoteArgs,

    /// With --url: the backup's name, as `backup list --url` shows it.
    #[arg(long, requires = "url")]
    backup: Option<String>,

    /// With --url: the name of the new child database.
    #[arg(long, requires = "backup")]
    into: Option<String>,

    /// With --url: the database inside the backup to restore (a path such as `app/tenant`;
    /// the backup's own database when absent).
    #[arg(long, requires = "backup")]
    database: Option<String>,

    /// With --url: replace the existing child `--into` (a safety backup of it is taken
    /// first; it is kept, renamed `<name>_replaced_<ts>`).
    #[arg(long, requires = "backup")]
    replace: bool,

    /// The backup's master key; the new store is encrypted at rest under it.
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(args: BackupArgs) -> Result<(), CliError> {
    match args.command {
        BackupCommand::Create(args) => create(&args),
        BackupCommand::List(args) => list(&args),
        BackupCommand::Verify(args) => verify(&args),
        BackupCommand::Prune(args) => prune(&args),
    }
}

/// One summary line on stdout.
fn say(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|err| CliError::Failed(format!("could not write to stdout: {err}")))
}

/// A backup failure as the CLI reports it: what the operator must change is refused (2);
/// a damaged file or an I/O failure fails (1).
fn backup_error(error: BackupError) -> CliError {
    match error {
        BackupError::NeedsKey { .. } => CliError::Refused(format!(
            "{error} (--master-key-file PATH, TESTUDO_MASTER_KEY or --master-key-command)"
        )),
        BackupError::WrongKey { .. }
        | BackupError::NotEmpty(_)
        | BackupError::Invalid(_)
        | BackupError::Key(_) => CliError::Refused(error.to_string()),
        BackupError::Store(e) => CliError::Refused(e.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

fn parse_prefix(text: &str) -> Result<Vec<u8>, CliError> {
    let bad = || CliError::Refused(format!("--prefix {text:?} is not hex"));
    if !text.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

fn create(args: &CreateArgs) -> Result<(), CliError> {
    if let Some(remote) = args.remote.server()? {
        let data = remote.query("Backup.create()", serde_json::json!({}))?;
        return say(&format!(
            "created {} on the server ({} bytes; snapshot {}; {} keys, {} versions)",
            data["name"].as_str().unwrap_or_default(),
            data["bytes"],
            data["ts"].as_str().unwrap_or_default(),
            data["keys"],
            data["versions"]
        ));
    }
    let out = args.out.clone().unwrap_or_default();
    // Opening creates a store where there is none: refuse to back up nothing.
    let has_files = std::fs::read_dir(&args.data_dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if !has_files {
        return Err(CliError::Refused(format!(
            "{} holds no store",
            args.data_dir.display()
        )));
    }
    let prefixes = args
        .prefix
        .iter()
        .map(|p| parse_prefix(p))
        .collect::<Result<Vec<_>, _>>()?;
    let master = store::master_key(&args.store)?;
    let kv = store::open(&args.data_dir, &args.store, true).map_err(|e| match e {
        // redb's lock: a server has the store open.
        CliError::Failed(m) if m.contains("already open") => CliError::Refused(format!(
            "{m}: is the server running? `backup create` reads a stopped data directory"
        )),
        other => other,
    })?;
    if master.is_none() {
        eprintln!("testudo: no master key given: the backup will not be encrypted");
    }
    let progress = Meter::new("backup create", Some(dir_size(&args.data_dir)));
    let options = SnapshotOptions {
        prefixes,
        master: master.as_ref(),
        cancel: None,
        duty: None,
        kept: false,
    };
    let created =
        testudo_backup::create_backup(kv.as_ref(), &out, &options, &|done| progress.update(done));
    let closed = kv.close();
    let created = created.map_err(backup_error)?;
    closed.map_err(|e| CliError::Failed(format!("closing the store: {e}")))?;
    progress.finish(created.manifest.raw_bytes);
    let m = &created.manifest;
    say(&format!(
        "created {} ({} bytes; snapshot ts {}; {} keys, {} versions in {} chunks; {})",
        created.path.display(),
        created.bytes,
        m.snapshot_ts,
        m.keys,
        m.versions,
        m.chunks,
        encryption(m.key_id.as_deref())
    ))
}

fn encryption(key_id: Option<&str>) -> String {
    match key_id {
        Some(id) => format!("encrypted, master key {id}"),
        None => "not encrypted".into(),
    }
}

fn list(args: &ListArgs) -> Result<(), CliError> {
    if let Some(remote) = args.remote.server()? {
        let data = remote.query("Backup.all()", serde_json::json!({}))?;
        let list = data.as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            return say("no backups on the server");
        }
        for b in list {
            say(&format!(
                "{}\t{} bytes\tcreated {}\tsnapshot {}\t{}",
                b["name"].as_str().unwrap_or_default(),
                b["bytes"],
                b["created"].as_str().unwrap_or_default(),
                b["ts"].as_str().unwrap_or_default(),
                if b["encrypted"] == true {
                    "encrypted"
                } else {
                    "not encrypted"
                }
            ))?;
        }
        return Ok(());
    }
    let dir = args.dir.clone().unwrap_or_default();
    let entries = testudo_backup::list_backups(&dir).map_err(backup_error)?;
    if entries.is_empty() {
        return say(&format!("no backups in {}", dir.display()));
    }
    for entry in entries {
        let line = match entry.status {
            EntryStatus::Complete(info) => format!(
                "{}\t{} bytes\tcreated {}\tsnapshot ts {}\t{}",
                entry.path.display(),
                entry.bytes,
                testudo_backup::rfc3339(info.created_unix_ms),
                info.snapshot_ts,
                encryption(info.key_id.as_deref())
            ),
            EntryStatus::Partial => format!(
                "{}\t{} bytes\tpartial (being written, or interrupted)",
                entry.path.display(),
                entry.bytes
            ),
            EntryStatus::Unreadable(why) => {
                format!("{}\tunreadable: {why}", entry.path.display())
            }
        };
        say(&line)?;
    }
    Ok(())
}

fn verify(args: &VerifyArgs) -> Result<(), CliError> {
    let master = store::master_key(&args.store)?;
    let size = file_size(&args.file);
    let progress = Meter::new("backup verify", size);
    let report = testudo_backup::verify(&args.file, master.as_ref(), &|done| progress.update(done))
        .map_err(backup_error)?;
    progress.finish(report.info.bytes);
    match (&report.manifest, report.authenticated) {
        (Some(m), true) => say(&format!(
            "ok: {} chunks and the manifest verified; snapshot ts {}, {} keys, {} versions, \
             {} databases; {}",
            report.chunks,
            m.snapshot_ts,
            m.keys,
            m.versions,
            m.databases.len(),
            encryption(m.key_id.as_deref())
        )),
        _ => say(&format!(
            "ok (checksums only): {} chunks and the manifest frame have intact checksums; the \
             backup is encrypted with master key {} — give it to authenticate and decode them",
            report.chunks,
            report.info.key_id.unwrap_or_default()
        )),
    }
}

fn prune(args: &PruneArgs) -> Result<(), CliError> {
    let report = testudo_backup::prune(&args.dir, args.keep).map_err(backup_error)?;
    for (path, why) in &report.skipped {
        eprintln!("testudo: left alone: {} ({why})", path.display());
    }
    for path in &report.removed {
        say(&format!("removed {}", path.display()))?;
    }
    say(&format!(
        "kept {} backups, removed {}",
        report.kept.len(),
        report.removed.len()
    ))
}

pub fn restore(args: RestoreArgs) -> Result<(), CliError> {
    if let Some(remote) = args.remote.server()? {
        return restore_remote(&remote, &args);
    }
    let (Some(file), Some(data_dir)) = (args.file.clone(), args.data_dir.clone()) else {
        return Err(CliError::Refused(
            "restore needs a backup FILE and --data-dir (or --url with --backup)".into(),
        ));
    };
    let master = store::master_key(&args.store)?;
    // Two passes over the file: verify, then load.
    let size = file_size(&file).map(|s| s * 2);
    let progress = Meter::new("restore", size);
    let report = testudo_backup::restore_to_dir(&file, master.as_ref(), &data_dir, &|done| {
        progress.update(done)
    })
    .map_err(backup_error)?;
    progress.finish(size.unwrap_or_default());
    let m = &report.manifest;
    say(&format!(
        "restored {} keys, {} versions at snapshot ts {} into {}{}",
        m.keys,
        m.versions,
        m.snapshot_ts,
        data_dir.display(),
        if master.is_some() {
            " (encrypted at rest)"
        } else {
            ""
        }
    ))
}

fn restore_remote(remote: &Remote, args: &RestoreArgs) -> Result<(), CliError> {
    let (Some(backup), Some(into)) = (&args.backup, &args.into) else {
        return Err(CliError::Refused(
            "restore --url needs --backup NAME and --into NAME".into(),
        ));
    };
    let data = remote.query(
        "Backup.restore({ backup: b, name: n, database: d, replace: r })",
        serde_json::json!({
            "b": backup,
            "n": into,
            "d": args.database,
            "r": args.replace,
        }),
    )?;
    let mut line = format!(
        "restored {} as database {into} ({} databases, {} documents, snapshot {})",
        backup,
        data["databases"],
        data["documents"],
        data["ts"].as_str().unwrap_or_default()
    );
    if let Some(safety) = data["safety_backup"].as_str() {
        line.push_str(&format!("; safety backup {safety}"));
    }
    if let Some(replaced) = data["replaced"].as_str() {
        line.push_str(&format!("; the replaced database is now {replaced}"));
    }
    say(&line)
}

impl RemoteArgs {
    /// The server to ask, when `--url` is given.
    fn server(&self) -> Result<Option<Remote>, CliError> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let Some(secret) = self.secret.clone() else {
            return Err(CliError::Refused(
                "--url needs --secret (or TESTUDO_SECRET): an admin secret".into(),
            ));
        };
        let uri: http::Uri = url
            .parse()
            .map_err(|e| CliError::Refused(format!("--url {url}: {e}")))?;
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            _ => {
                return Err(CliError::Refused(format!(
                    "--url {url}: give http://host:port or https://host:port"
                )));
            }
        };
        if !https && (self.tls_ca.is_some() || self.tls_client_cert.is_some()) {
            return Err(CliError::Refused(format!(
                "--url {url}: the --tls-* options need an https:// URL"
            )));
        }
        let Some(host) = uri.host() else {
            return Err(CliError::Refused(format!("--url {url} names no host")));
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = format!("{host}:{port}");
        let tls = if https {
            // An IPv6 literal is bracketed in a URL, not in a certificate's name.
            let name = host.trim_start_matches('[').trim_end_matches(']');
            let name = ServerName::try_from(name.to_owned()).map_err(|e| {
                CliError::Refused(format!("--url {url}: {host} is not a TLS server name: {e}"))
            })?;
            Some((self.tls_config()?, name))
        } else {
            None
        };
        Ok(Some(Remote {
            authority,
            secret,
            tls,
        }))
    }

    /// The client's TLS settings: whom to trust, and what to present when asked.
    fn tls_config(&self) -> Result<Arc<rustls::ClientConfig>, CliError> {
        let tls_error = |e: testudo_server::TlsError| CliError::Refused(e.to_string());
        let mut roots = rustls::RootCertStore::empty();
        match &self.tls_ca {
            Some(path) => {
                for cert in testudo_server::read_tls_certificates(path).map_err(tls_error)? {
                    roots.add(cert).map_err(|e| {
                        CliError::Refused(format!("--tls-ca {}: {e}", path.display()))
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| CliError::Failed(format!("TLS: {e}")))?
            .with_root_certificates(roots);
        let mut config = match (&self.tls_client_cert, &self.tls_client_key) {
            (Some(cert), Some(key)) => {
                let chain = testudo_server::read_tls_certificates(cert).map_err(tls_error)?;
                let key = testudo_server::read_tls_key(key).map_err(tls_error)?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    CliError::Refused(format!(
                        "--tls-client-cert {} and its key do not go together: {e}",
                        cert.display()
                    ))
                })?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A running server's query endpoint.
struct Remote {
    authority: String,
    secret: String,
    /// For https://: the client's settings and the name the certificate must carry.
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl Remote {
    /// Runs one FQL query (simple format) and returns its `data`; a query error is refused
    /// with the server's code and message.
    fn query(
        &self,
        fql: &str,
        arguments: serde_json::Value,
    ) -> Result<serde_json::Value, CliError> {
        let body = serde_json::json!({ "query": fql, "arguments": arguments }).to_string();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::Failed(format!("cannot start the HTTP client: {e}")))?;
        let (status, bytes) = runtime.block_on(self.post(body))?;
        let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            CliError::Failed(format!("the server answered {status} with no JSON: {e}"))
        })?;
        if status == 200 {
            return Ok(json["data"].clone());
        }
        Err(CliError::Refused(format!(
            "the server refused ({status} {}): {}",
            json["error"]["code"].as_str().unwrap_or("error"),
            json["error"]["message"].as_str().unwrap_or_default()
        )))
    }

    async fn post(&self, body: String) -> Result<(u16, bytes::Bytes), CliError> {
        let failed = |e: &dyn std::fmt::Display| {
            CliError::Failed(format!("cannot reach {}: {e}", self.authority))
        };
        let stream = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(|e| failed(&e))?;
        let request = http::Request::post("/query/1")
            .header("host", &self.authority)
            .header("authorization", format!("Bearer {}", self.secret))
            .header("content-type", "application/json")
            // A restore may take longer than a query usually does.
            .header("x-query-timeout-ms", "600000")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| failed(&e))?;
        let Some((config, name)) = &self.tls else {
            return exchange(hyper_util::rt::TokioIo::new(stream), request)
                .await
                .map_err(|e| failed(&with_sources(&e)));
        };
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
            .connect(name.clone(), stream)
            .await
            .map_err(|e| {
                let hint = if e.to_string().contains("UnknownIssuer") {
                    " (give the CA that signed the server's certificate with --tls-ca)"
                } else {
                    ""
                };
                CliError::Failed(format!(
                    "cannot reach {} over TLS: {e}{hint}",
                    self.authority
                ))
            })?;
        exchange(hyper_util::rt::TokioIo::new(stream), request)
            .await
            .map_err(|e| {
                // With TLS 1.3 a refused client certificate surfaces here, after the handshake.
                let why = with_sources(&e);
                let hint = if why.contains("CertificateRequired") {
                    " (the server requires a client certificate: give --tls-client-cert and \
                     --tls-client-key)"
                } else {
                    ""
                };
                CliError::Failed(format!("cannot reach {}: {why}{hint}", self.authority))
            })
    }
}

/// An error and its causes, `: `-separated (hyper's own message alone says little).
fn with_sources(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One HTTP/1.1 request over `io`: the status and the whole body.
async fn exchange<I>(
    io: I,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> Result<(u16, bytes::Bytes), hyper::Error>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await?;
    let driver = tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    driver.abort();
    Ok((status, bytes))
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// The bytes of the files directly in `dir` (a store is a flat directory).
fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or_default()
}

/// Progress lines on stderr: quiet for the first second, then one line a second with bytes
/// done, throughput and (when the total is known) an ETA.
struct Meter {
    what: &'static str,
    total: Option<u64>,
    start: Instant,
    last: Mutex<Option<Instant>>,
}

impl Meter {
    fn new(what: &'static str, total: Option<u64>) -> Meter {
        Meter {
            what,
            total: total.filter(|t| *t > 0),
            start: Instant::now(),
            last: Mutex::new(None),
        }
    }

    fn update(&self, done: u64) {
        let now = Instant::now();
        let elapsed = now - self.start;
        if elapsed < Duration::from_secs(1) {
            return;
        }
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.is_some_and(|at| now - at < Duration::from_secs(1)) {
            return;
        }
        *last = Some(now);
        let rate = done as f64 / elapsed.as_secs_f64();
        let eta = match self.total {
            Some(total) if rate > 0.0 && total > done => {
                format!(", ETA {}s", ((total - done) as f64 / rate).ceil() as u64)
            }
            _ => String::new(),
        };
        let of = self
            .total
            .map(|t| format!(" of ~{}", mib(t)))
            .unwrap_or_default();
        eprintln!(
            "{}: {}{of}, {}/s{eta}",
            self.what,
            mib(done),
            mib(rate as u64)
        );
    }

    /// A closing line with the average throughput, if the operation took over a second.
    fn finish(&self, done: u64) {
        let elapsed = self.start.elapsed();
        if elapsed >= Duration::from_secs(1) {
            eprintln!(
                "{}: {} in {:.1}s ({}/s)",
                self.what,
                mib(done),
                elapsed.as_secs_f64(),
                mib((done as f64 / elapsed.as_secs_f64()) as u64)
            );
        }
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_hex_and_anything_else_is_refused() {
        assert_eq!(parse_prefix("00ff10").unwrap(), vec![0, 255, 16]);
        assert!(parse_prefix("0").is_err());
        assert!(parse_prefix("zz").is_err());
        assert!(parse_prefix("é0").is_err());
    }
}

/// Scheduled backups taken by a running `serve`, and the backups it takes and restores
/// through FQL (`Backup.create()`, `Backup.restore(...)`).
#[derive(Args)]
pub struct ServeBackupArgs {
    /// Take a backup of the whole store into this directory every `--backup-every`, keeping
    /// the newest `--backup-keep` (encrypted when a master key is configured). Also where
    /// `Backup.create()` writes (a child database's under `db-<id>/`) and per-database
    /// schedules (`backup: { every, keep }` on a database document) keep theirs.
    #[arg(long, value_name = "DIR")]
    backup_dir: Option<PathBuf>,

    /// How often to take a scheduled backup (`30m`, `6h`, `1d`).
    #[arg(
        long,
        value_name = "PERIOD",
        default_value = "6h",
        requires = "backup_dir"
    )]
    backup_every: String,

    /// How many scheduled backups to keep (at least 1).
    #[arg(long, value_name = "N", default_value_t = 28, requires = "backup_dir")]
    backup_keep: usize,

    /// How often per-database schedules are looked at, in milliseconds (tests only).
    #[arg(long, hide = true, default_value_t = 30_000)]
    backup_tick_ms: u64,

    /// The shortest per-database schedule period, in seconds (tests only).
    #[arg(long, hide = true, default_value_t = 60)]
    backup_min_every_secs: u64,

    /// The share of wall time a backup of the running server may spend reading (0 < x <= 1):
    /// it rests between chunks, taking longer and less from the queries (1: full speed).
    #[arg(
        long,
        value_name = "SHARE",
        default_value_t = 0.25,
        requires = "backup_dir"
    )]
    backup_duty: f64,
}

impl ServeBackupArgs {
    /// The backup directory, when backups are configured.
    pub fn dir(&self) -> Option<&Path> {
        self.backup_dir.as_deref()
    }

    /// Starts the server-wide backup schedule and returns the backups of the running server
    /// (`None` without `--backup-dir`). Refuses bad periods and counts before the server
    /// listens. Every backup is read from `kv`, the one store handed here.
    pub fn start(
        &self,
        kv: Arc<dyn Kv>,
        master: Option<MasterKey>,
        audit: Option<Arc<dyn AuditSink>>,
        data_dir: &Path,
    ) -> Result<Option<Arc<ServerBackups>>, CliError> {
        let Some(dir) = &self.backup_dir else {
            return Ok(None);
        };
        let every = testudo_backup::parse_period(&self.backup_every).ok_or_else(|| {
            CliError::Refused(format!(
                "--backup-every {}: expected a period such as 30m, 6h or 1d",
                self.backup_every
            ))
        })?;
        if self.backup_keep == 0 {
            return Err(CliError::Refused("--backup-keep must be at least 1".into()));
        }
        if !(self.backup_duty > 0.0 && self.backup_duty <= 1.0) {
            return Err(CliError::Refused(
                "--backup-duty must be above 0 and at most 1".into(),
            ));
        }
        std::fs::create_dir_all(dir).map_err(|err| {
            CliError::Failed(format!("could not create {}: {err}", dir.display()))
        })?;
        let master = master.map(Arc::new);
        let on_run: testudo_backup::RunHook = {
            let audit = audit.clone();
            let dir = dir.clone();
            Arc::new(move |result| {
                audit_backup(
                    audit.as_deref(),
                    result,
                    &dir,
                    DbId::ROOT,
                    Some(String::new()),
                )
            })
        };
        let scheduler = testudo_backup::BackupScheduler::start(
            Arc::clone(&kv),
            testudo_backup::ScheduleConfig {
                dir: dir.clone(),
                every,
                keep: self.backup_keep,
                prefixes: Vec::new(),
                master: master.clone(),
                on_run: Some(on_run),
                duty: Some(self.backup_duty),
            },
        )
        .map_err(backup_error)?;
        tracing::info!(
            dir = %dir.display(),
            every = %self.backup_every,
            keep = self.backup_keep,
            "scheduled backups are on"
        );
        // With a master key the store seals values per database, and backups hold them as
        // stored: a restore opens them with the keys of the databases they came from.
        let unseal = master.as_ref().map(|master| Unsealer {
            data_dir: data_dir.to_path_buf(),
            master: Arc::clone(master),
        });
        Ok(Some(Arc::new(ServerBackups {
            dir: dir.clone(),
            kv,
            unseal,
            master,
            audit,
            every,
            keep: self.backup_keep,
            scheduler: Mutex::new(Some(scheduler)),
            statuses: Mutex::new(HashMap::new()),
            tick: Duration::from_millis(self.backup_tick_ms.max(10)),
            duty: self.backup_duty,
            min_schedule: Duration::from_secs(self.backup_min_every_secs.max(1)),
            stop: (Mutex::new(false), Condvar::new()),
            thread: Mutex::new(None),
        })))
    }
}

/// The backups of a running server: the server-wide schedule, the per-database schedules
/// set in FQL, and the [`BackupService`] the engine's `Backup` module uses.
///
/// Backups of database `D` live in `<backup-dir>/db-<D>/` (the root's, server-wide, in
/// `<backup-dir>` itself), so a query only ever sees its own database's.
pub struct ServerBackups {
    dir: PathBuf,
    /// The store with values as stored (sealed per database when encrypted).
    kv: Arc<dyn Kv>,
    unseal: Option<Unsealer>,
    master: Option<Arc<MasterKey>>,
    audit: Option<Arc<dyn AuditSink>>,
    every: Duration,
    keep: usize,
    scheduler: Mutex<Option<testudo_backup::BackupScheduler>>,
    statuses: Mutex<HashMap<u64, ScheduleStatus>>,
    tick: Duration,
    /// See `--backup-duty`.
    duty: f64,
    min_schedule: Duration,
    stop: (Mutex<bool>, Condvar),
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for ServerBackups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerBackups")
            .field("dir", &self.dir)
            .field("encrypted", &self.master.is_some())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ServerBackups {
    /// The service the engine's `Backup` module uses.
    pub fn service(self: &Arc<Self>) -> Arc<dyn BackupService> {
        Arc::clone(self) as Arc<dyn BackupService>
    }

    /// Starts the thread that runs the schedules set on database documents.
    pub fn attach(self: &Arc<Self>, engine: &Arc<Engine>) -> Result<(), CliError> {
        let me = Arc::clone(self);
        let engine = Arc::downgrade(engine);
        let thread = std::thread::Builder::new()
            .name("testudo-db-backups".into())
            .spawn(move || me.run_schedules(&engine))
            .map_err(|e| CliError::Failed(format!("cannot start the backup thread: {e}")))?;
        *lock(&self.thread) = Some(thread);
        Ok(())
    }

    /// Stops every schedule (a backup in progress is cancelled) and joins their threads.
    pub fn stop(&self) {
        *lock(&self.stop.0) = true;
        self.stop.1.notify_all();
        if let Some(scheduler) = lock(&self.scheduler).take() {
            scheduler.stop();
        }
        if let Some(thread) = lock(&self.thread).take()
            && thread.join().is_err()
        {
            tracing::error!("the database backup thread panicked");
        }
    }

    fn owner_dir(&self, owner: DbId) -> PathBuf {
        if owner == DbId::ROOT {
            self.dir.clone()
        } else {
            self.dir.join(format!("db-{}", owner.0))
        }
    }

    /// Waits one tick; false once stopping.
    fn wait_tick(&self) -> bool {
        let guard = lock(&self.stop.0);
        if *guard {
            return false;
        }
        let (guard, _) = self
            .stop
            .1
            .wait_timeout(guard, self.tick)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        !*guard
    }

    fn run_schedules(&self, engine: &Weak<Engine>) {
        while self.wait_tick() {
            let Some(engine) = engine.upgrade() else {
                return;
            };
            let schedules = match engine.backup_schedules() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the backup schedules");
                    continue;
                }
            };
            drop(engine);
            lock(&self.statuses).retain(|db, _| schedules.iter().any(|s| s.db.0 == *db));
            for schedule in schedules {
                if *lock(&self.stop.0) {
                    return;
                }
                self.run_schedule(&schedule);
            }
        }
    }

    /// Takes a backup of one database's subtree if its schedule is due, and prunes.
    fn run_schedule(&self, schedule: &BackupSchedule) {
        let dir = self.owner_dir(schedule.db);
        let now = SystemTime::now();
        let newest = testudo_backup::newest_backup_ms(&dir);
        let due_ms = newest.map(|t| t.saturating_add(schedule.every.as_millis() as u64));
        let next_run = |from_ms: u64| from_ms.saturating_add(schedule.every.as_millis() as u64);
        {
            let mut statuses = lock(&self.statuses);
            let status = statuses.entry(schedule.db.0).or_default();
            status.every = Some(schedule.every);
            status.keep = Some(schedule.keep);
            status.next_run_unix_ms = Some(due_ms.unwrap_or(unix_ms(now)));
            if due_ms.is_some_and(|due| due > unix_ms(now)) {
                return;
            }
            status.running = true;
        }
        let options = SnapshotOptions {
            prefixes: schedule.prefixes.clone(),
            master: self.master.as_deref(),
            cancel: None,
            duty: Some(self.duty),
            kept: false,
        };
        let result = testudo_backup::create_backup(
            self.kv.as_ref(),
            &dir,
            &options,
            &testudo_backup::no_progress,
        );
        if result.is_ok()
            && let Err(e) = testudo_backup::prune(&dir, schedule.keep)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot prune backups");
        }
        audit_backup(
            self.audit.as_deref(),
            &result,
            &dir,
            schedule.db,
            Some(schedule.path.clone()),
        );
        let done = unix_ms(SystemTime::now());
        let mut statuses = lock(&self.statuses);
        let status = statuses.entry(schedule.db.0).or_default();
        status.running = false;
        status.runs += 1;
        match result {
            Ok(created) => {
                status.last_success_unix_ms = Some(done);
                status.last_backup = file_name(&created.path);
                status.next_run_unix_ms = Some(next_run(created.manifest.created_unix_ms));
            }
            Err(e) => {
                tracing::warn!(database = %schedule.path, error = %e, "a scheduled backup failed");
                status.failures += 1;
                status.last_failure_unix_ms = Some(done);
                status.last_error = Some(e.to_string());
                status.next_run_unix_ms = Some(next_run(done));
            }
        }
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// One audit record of a backup taken by a schedule.
fn audit_backup(
    audit: Option<&dyn AuditSink>,
    result: &Result<testudo_backup::CreatedBackup, BackupError>,
    dir: &Path,
    db: DbId,
    path: Option<String>,
) {
    let Some(audit) = audit else { return };
    let (target, outcome, ts) = match result {
        Ok(created) => (
            created.path.display().to_string(),
            Outcome::ok(),
            Some(created.manifest.snapshot_ts),
        ),
        Err(_) => (
            dir.display().to_string(),
            Outcome::error("backup_failed"),
            None,
        ),
    };
    audit.record(AuditEvent::Backup(AuditBackup {
        operation: "backup".into(),
        target,
        outcome,
        database: Some(DatabaseRef {
            id: db.0,
            path: path.map(Into::into),
        }),
        // The schedule's own backup: nobody asked for it.
        credential: None,
        snapshot_ts: ts,
    }));
}

fn summary(info: &testudo_backup::BackupInfo, counts: Option<BackupCounts>) -> BackupSummary {
    BackupSummary {
        name: file_name(&info.path).unwrap_or_default(),
        snapshot_ts: info.snapshot_ts,
        created_unix_ms: info.created_unix_ms,
        bytes: info.bytes,
        encrypted: info.encrypted,
        counts,
    }
}

fn failure(error: BackupError) -> BackupFailure {
    match error {
        BackupError::Io(m) => BackupFailure::Failed(m),
        BackupError::Kv(e) => BackupFailure::Failed(e.to_string()),
        BackupError::Store(e) => BackupFailure::Failed(e.to_string()),
        BackupError::Cancelled => BackupFailure::Failed("the backup was cancelled".into()),
        other => BackupFailure::Unusable(other.to_string()),
    }
}

impl BackupService for ServerBackups {
    fn create(&self, owner: DbId, prefixes: Vec<Vec<u8>>) -> Result<BackupSummary, BackupFailure> {
        let options = SnapshotOptions {
            prefixes,
            master: self.master.as_deref(),
            cancel: None,
            duty: Some(self.duty),
            // Asked for: a schedule's retention must not delete it.
            kept: true,
        };
        let created = testudo_backup::create_backup(
            self.kv.as_ref(),
            &self.owner_dir(owner),
            &options,
            &testudo_backup::no_progress,
        )
        .map_err(failure)?;
        let m = &created.manifest;
        Ok(BackupSummary {
            name: file_name(&created.path).unwrap_or_default(),
            snapshot_ts: m.snapshot_ts,
            created_unix_ms: m.created_unix_ms,
            bytes: created.bytes,
            encrypted: m.key_id.is_some(),
            counts: Some(BackupCounts {
                databases: m.databases.len() as u64,
                keys: m.keys,
                versions: m.versions,
            }),
        })
    }

    fn list(&self, owner: DbId) -> Result<Vec<BackupSummary>, BackupFailure> {
        let dir = self.owner_dir(owner);
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let entries = testudo_backup::list_backups(&dir).map_err(failure)?;
        Ok(entries
            .iter()
            .filter_map(|e| match &e.status {
                EntryStatus::Complete(info) => Some(summary(info, None)),
                _ => None,
            })
            .collect())
    }

    fn status(&self, owner: DbId) -> Option<ScheduleStatus> {
        if owner != DbId::ROOT {
            return lock(&self.statuses).get(&owner.0).cloned();
        }
        let s = lock(&self.scheduler).as_ref()?.status();
        let ms = |t: Option<SystemTime>| t.map(unix_ms);
        Some(ScheduleStatus {
            every: Some(self.every),
            keep: Some(self.keep),
            running: s.running,
            runs: s.runs,
            failures: s.failures,
            last_success_unix_ms: ms(s.last_success),
            last_failure_unix_ms: ms(s.last_failure),
            last_error: s.last_error,
            last_backup: s.last_backup.as_deref().and_then(file_name),
            next_run_unix_ms: ms(s.next_run),
        })
    }

    fn open(&self, owner: DbId, name: &str) -> Result<Box<dyn BackupSource>, BackupFailure> {
        if !testudo_engine::backup::valid_backup_name(name) {
            return Err(BackupFailure::NotFound(format!("no backup named `{name}`")));
        }
        let path = self.owner_dir(owner).join(name);
        if !path.is_file() {
            return Err(BackupFailure::NotFound(format!("no backup named `{name}`")));
        }
        let backup =
            testudo_backup::VerifiedBackup::open(&path, self.master.clone()).map_err(failure)?;
        let keys = match &self.unseal {
            Some(unseal) => Some(unseal.keys(self.kv.as_ref())?),
            None => None,
        };
        Ok(Box::new(Source {
            backup,
            keys,
            only: None,
        }))
    }

    fn location(&self, owner: DbId, name: &str) -> String {
        self.owner_dir(owner).join(name).display().to_string()
    }

    fn min_schedule(&self) -> Duration {
        self.min_schedule
    }
}

/// How a restore opens values sealed per database: the store's per-database keys, loaded
/// afresh from the data directory for each restore (so keys made since the server started
/// are there; a destroyed key stays destroyed).
struct Unsealer {
    data_dir: PathBuf,
    master: Arc<MasterKey>,
}

impl Unsealer {
    fn keys(&self, raw: &dyn Kv) -> Result<DatabaseKeys, BackupFailure> {
        DatabaseKeys::open(&self.data_dir, self.master.duplicate(), raw)
            .map_err(|e| BackupFailure::Failed(format!("cannot load the per-database keys: {e}")))
    }
}

/// A verified backup file, as the engine reads it: values opened with the keys of the
/// databases they were sealed for.
struct Source {
    backup: testudo_backup::VerifiedBackup,
    keys: Option<DatabaseKeys>,
    /// The databases being restored (after `restrict`): only their values are opened.
    only: Option<Vec<u64>>,
}

impl BackupSource for Source {
    fn snapshot_ts(&self) -> u64 {
        self.backup.manifest().snapshot_ts
    }

    fn next_chunk(&mut self) -> Result<Option<Vec<EngineRecord>>, BackupFailure> {
        let Some(records) = self.backup.next_chunk().map_err(failure)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            let db = testudo_storage_redb::sealed::database_of(&record.key);
            let wanted = self.only.as_ref().is_none_or(|only| only.contains(&db));
            let mut versions = Vec::with_capacity(record.versions.len());
            for version in record.versions {
                let value = match (version.value, &self.keys) {
                    (Some(stored), Some(keys)) if wanted => {
                        match keys.unseal(&record.key, testudo_storage::Ts(version.ts), stored) {
                            Ok(value) => Some(value),
                            // Before the restore knows its databases, a deleted (shredded)
                            // one reads as absent: it is not restorable, by design.
                            Err(_) if self.only.is_none() && keys.is_shredded(db) => None,
                            Err(e) => {
                                return Err(BackupFailure::Unusable(format!(
                                    "database {db}'s values cannot be opened (a deleted \
                                     database's key is destroyed, and so is its data in every \
                                     backup): {e}"
                                )));
                            }
                        }
                    }
                    (value, _) => value,
                };
                versions.push((version.ts, value));
            }
            out.push(EngineRecord {
                key: record.key,
                versions,
            });
        }
        Ok(Some(out))
    }

    fn rewind(&mut self) -> Result<(), BackupFailure> {
        self.backup.rewind().map_err(failure)
    }

    fn restrict(&mut self, databases: &[DbId]) {
        self.only = Some(databases.iter().map(|db| db.0).collect());
    }
}
