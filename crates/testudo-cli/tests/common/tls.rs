//! Test harness for TLS: certificates made on the fly with rcgen, a `testudo serve` started
//! with TLS files, and rustls clients with a pinned protocol version, ALPN list and optional
//! client certificate.
//!
//! `Pki::new()` makes a CA; `Pki::issue` signs a server or client certificate with it and
//! writes the PEM files into the PKI's directory. `TlsServer::start` runs the binary with
//! `--tls-cert`/`--tls-key` (and any other arguments), reads the address from the
//! `testudo listening on https://...` line and kills the process on drop. `connect` makes a
//! TLS connection; `http1`/`http2` turn one into the shared harness's `Client`.
//!
//! Included by `tests/tls.rs` next to `common/mod.rs` (it uses `common::testudo` and
//! `common::Client`); the plaintext harness knows nothing about it.
//!
//! Waits are bounded so that a broken server fails a test instead of hanging it.

#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::common::{Client, testudo};

const PATIENCE: Duration = Duration::from_secs(60);

/// A CA and the directory its certificates are written to.
pub struct Pki {
    pub dir: TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate issued by a [`Pki`]: its DER, its key, and the PEM files holding them.
pub struct Issued {
    pub der: CertificateDer<'static>,
    key_der: Vec<u8>,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

impl Issued {
    /// The chain and key for a rustls client identity.
    pub fn identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let key = PrivatePkcs8KeyDer::from(self.key_der.clone());
        (vec![self.der.clone()], PrivateKeyDer::Pkcs8(key))
    }
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca,
        }
    }

    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// Writes the CA certificate as `<name>` and returns its path.
    pub fn write_ca(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, self.ca.pem()).unwrap();
        path
    }

    /// A server certificate for `localhost` and 127.0.0.1, written as `<name>.pem`/`.key`.
    pub fn server(&self, name: &str) -> Issued {
        self.issue(
            name,
            vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate, written as `<name>.pem`/`.key`.
    pub fn client(&self, name: &str) -> Issued {
        self.issue(name, Vec::new(), ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, name: &str, names: Vec<String>, usage: ExtendedKeyUsagePurpose) -> Issued {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let cert_path = self.dir.path().join(format!("{name}.pem"));
        let key_path = self.dir.path().join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        Issued {
            der: cert.der().clone(),
            key_der: key.serialize_der(),
            cert_path,
            key_path,
        }
    }
}

/// Lines a child process wrote, shared with the thread that reads them.
#[derive(Clone, Default)]
struct Lines(Arc<(Mutex<Vec<String>>, Condvar, Mutex<bool>)>);

impl Lines {
    fn collect(self, stream: impl std::io::Read + Send + 'static) {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                self.0.0.lock().unwrap().push(line);
                self.0.1.notify_all();
            }
            *self.0.2.lock().unwrap() = true;
            let _guard = self.0.0.lock().unwrap();
            self.0.1.notify_all();
        });
    }

    /// Waits for the `nth` (0-based) line satisfying `pred`.
    fn wait_for_nth(&self, what: &str, nth: usize, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut lines = self.0.0.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().filter(|l| pred(l)).nth(nth) {
                return line.clone();
            }
            let ended = *self.0.2.lock().unwrap();
            assert!(!ended, "the output ended before {what}: {:#?}", *lines);
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "gave up waiting for {what}: {:#?}", *lines);
            // Wake up now and then: the end-of-stream flag is set outside this lock.
            let step = left.min(Duration::from_millis(200));
            lines = self.0.1.wait_timeout(lines, step).unwrap().0;
        }
    }
}

/// A running `testudo serve --dev` with TLS.
pub struct TlsServer {
    child: Child,
    pub addr: SocketAddr,
    stderr: Lines,
    _data_dir: TempDir,
}

impl TlsServer {
    /// `--dev --listen 127.0.0.1:0 --tls-cert <cert> --tls-key <key> <extra>`.
    pub fn start(server: &Issued, extra: &[&str]) -> TlsServer {
        TlsServer::start_on("127.0.0.1:0", server, extra)
    }

    pub fn start_on(listen: &str, server: &Issued, extra: &[&str]) -> TlsServer {
        let data_dir = tempfile::tempdir().unwrap();
        let cert = server.cert_path.to_str().unwrap();
        let key = server.key_path.to_str().unwrap();
        let mut args = vec![
            "--dev",
            "--listen",
            listen,
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ];
        args.extend_from_slice(extra);
        let mut child = testudo(data_dir.path(), &args, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the testudo binary starts");
        let stdout = Lines::default();
        let stderr = Lines::default();
        stdout.clone().collect(child.stdout.take().unwrap());
        stderr.clone().collect(child.stderr.take().unwrap());
        let line = stdout.wait_for_nth("the listening line", 0, |l| {
            l.starts_with("testudo listening on ")
        });
        let listening: SocketAddr = line
            .strip_prefix("testudo listening on https://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("not an https listening line: {line}"));
        // A wildcard address is reached through loopback.
        let addr = SocketAddr::new([127, 0, 0, 1].into(), listening.port());
        TlsServer {
            child,
            addr,
            stderr,
            _data_dir: data_dir,
        }
    }

    /// Waits until the server has logged `nth + 1` lines containing `needle`; returns the last.
    pub fn wait_for_log(&self, needle: &str, nth: usize) -> String {
        self.stderr
            .wait_for_nth(needle, nth, |l| l.contains(needle))
    }

    /// Sends SIGHUP (reload the TLS files).
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a test client offers.
pub struct ClientSpec<'a> {
    pub trusted: &'a [CertificateDer<'static>],
    pub versions: &'a [&'static SupportedProtocolVersion],
    pub alpn: &'a [&'a [u8]],
    pub identity: Option<&'a Issued>,
}

impl<'a> ClientSpec<'a> {
    /// TLS 1.3 or 1.2, ALPN `http/1.1`, no client certificate.
    pub fn trusting(trusted: &'a [CertificateDer<'static>]) -> ClientSpec<'a> {
        ClientSpec {
            trusted,
            versions: rustls::ALL_VERSIONS,
            alpn: &[b"http/1.1"],
            identity: None,
        }
    }

    pub fn config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in self.trusted {
            roots.add(cert.clone()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(self.versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match self.identity {
            None => builder.with_no_client_auth(),
            Some(issued) => {
                let (chain, key) = issued.identity();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        };
        config.alpn_protocols = self.alpn.iter().map(|p| p.to_vec()).collect();
        // Every connection makes a full handshake, so it sees the certificate served now.
        config.resumption = Resumption::disabled();
        Arc::new(config)
    }
}

/// A TLS connection to `addr` as `localhost`; the handshake's error if it fails.
pub async fn connect(
    addr: SocketAddr,
    spec: &ClientSpec<'_>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(spec.config()).connect(name, tcp).await
}

/// The certificate the server presented on `stream`.
pub fn served_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    let (_, connection) = stream.get_ref();
    connection.peer_certificates().unwrap()[0].clone()
}

/// HTTP/1.1 over an established TLS connection.
pub async fn http1(stream: TlsStream<TcpStream>) -> Client {
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    Client::Http1(sender)
}

/// HTTP/2 over an established TLS connection.
pub async fn http2(stream: TlsStream<TcpStream>) -> Client {
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    Client::H2c(sender)
}
