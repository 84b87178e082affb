//! TLS: loading the certificate chain, the private key and (for mutual TLS) the client CA
//! from PEM files into a rustls configuration, and swapping that configuration on reload.
//!
//! The policy is fixed here, not configurable: TLS 1.3 and 1.2 only, rustls' default (safe)
//! cipher suites and key exchange groups on the ring provider, ALPN `h2` then `http/1.1`.
//! With a client CA, a client must present a certificate chaining to it or the handshake
//! fails; there is no "optional client certificate" mode.
//!
//! Reload: [`TlsConfig::reload`] reads every file again and builds a complete new
//! configuration before swapping it in, so a reload that fails leaves the previous one
//! serving. Each handshake takes the configuration current when its connection was accepted;
//! established connections keep the one they started with.
//!
//! **Invariants:** no key material is ever logged or put in an error message (errors name the
//! file and what is wrong with it); a half-loaded configuration is never served; a poisoned
//! lock never takes the server down (the stored value is a complete `Arc` whatever happened).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

/// ALPN protocols offered, in the server's order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Where the TLS material lives. All files are PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain: the server's certificate first, then intermediates.
    pub cert: PathBuf,
    /// The private key of the server's certificate: PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub key: PathBuf,
    /// With mutual TLS, the CA certificates that client certificates must chain to.
    pub client_ca: Option<PathBuf>,
}

/// Why TLS files could not be turned into a configuration. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("could not read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not valid PEM: {problem}", path.display())]
    Pem { path: PathBuf, problem: String },
    #[error("{} holds no certificate (expected PEM `BEGIN CERTIFICATE` blocks)", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "{} holds no private key (expected a PEM `BEGIN PRIVATE KEY`, `BEGIN RSA PRIVATE KEY` \
         or `BEGIN EC PRIVATE KEY` block)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error(
        "the private key in {} is encrypted; give the key unencrypted (and protect the file \
         with its permissions)",
        path.display()
    )]
    EncryptedKey { path: PathBuf },
    #[error("the private key in {} is not usable: {problem}", path.display())]
    UnusableKey { path: PathBuf, problem: String },
    #[error("the first certificate in {} is not usable: {problem}", path.display())]
    UnusableCertificate { path: PathBuf, problem: String },
    #[error(
        "the private key in {} does not belong to the first certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("the client CA certificates in {} are not usable: {problem}", path.display())]
    ClientCa { path: PathBuf, problem: String },
    #[error("the TLS configuration was refused: {0}")]
    Config(String),
}

/// The live TLS configuration of a server, reloadable from its files. Cloning shares it.
#[derive(Clone)]
pub struct TlsConfig {
    files: Arc<TlsFiles>,
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads the files and builds the configuration. Blocking file I/O: call it before the
    /// server starts or on a blocking thread.
    pub fn load(files: TlsFiles) -> Result<TlsConfig, TlsError> {
        let config = build(&files)?;
        Ok(TlsConfig {
            files: Arc::new(files),
            current: Arc::new(RwLock::new(Arc::new(config))),
        })
    }

    /// Reads the files again and, only if everything is valid, serves the new configuration
    /// to every handshake from now on. On error the previous configuration stays. Blocking
    /// file I/O, like [`TlsConfig::load`].
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(build(&self.files)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }

    /// The files this configuration is loaded from.
    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certificates(&self) -> bool {
        self.files.client_ca.is_some()
    }

    /// The configuration for a handshake starting now.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let chain = read_certificates(&files.cert)?;
    let key = read_key(&files.key)?;
    let certified = certified_key(chain, key, files, &provider)?;

    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|err| TlsError::Config(err.to_string()))?;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(path)? {
                roots.add(cert).map_err(|err| TlsError::ClientCa {
                    path: path.clone(),
                    problem: err.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|err| TlsError::ClientCa {
                    path: path.clone(),
                    problem: err.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(OneCertificate(Arc::new(certified))));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The same certificate for every client, whatever name it asks for (SNI is not checked: a
/// client that wants another name fails its own verification).
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|err| TlsError::UnusableKey {
                path: files.key.clone(),
                problem: err.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: files.cert.clone(),
                key: files.key.clone(),
            })
        }
        // The provider cannot tell the key's public half; the handshake will show.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(err) => Err(TlsError::UnusableCertificate {
            path: files.cert.clone(),
            problem: err.to_string(),
        }),
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_problem(path: &Path, err: pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        problem: err.to_string(),
    }
}

/// Every certificate in a PEM file, in order; other PEM sections are skipped.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_file(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_problem(path, err))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key in a PEM file.
pub fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read_file(path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            let encrypted = b"-----BEGIN ENCRYPTED PRIVATE KEY-----";
            if bytes.windows(encrypted.len()).any(|w| w == encrypted) {
                Err(TlsError::EncryptedKey {
                    path: path.to_owned(),
                })
            } else {
                Err(TlsError::NoKey {
                    path: path.to_owned(),
                })
            }
        }
        Err(err) => Err(pem_problem(path, err)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    use rcgen::{CertificateParams, KeyPair};

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Dir {
            Dir(tempfile::tempdir().unwrap())
        }

        fn write(&self, name: &str, contents: &str) -> PathBuf {
            let path = self.0.path().join(name);
            fs::write(&path, contents).unwrap();
            path
        }

        /// A self-signed certificate and its key, written as `<name>.pem` and `<name>.key`.
        fn self_signed(&self, name: &str) -> TlsFiles {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(vec!["localhost".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            TlsFiles {
                cert: self.write(&format!("{name}.pem"), &cert.pem()),
                key: self.write(&format!("{name}.key"), &key.serialize_pem()),
                client_ca: None,
            }
        }
    }

    fn message(err: TlsError) -> String {
        err.to_string()
    }

    #[test]
    fn a_certificate_and_its_key_load_with_alpn_h2_first() {
        let dir = Dir::new();
        let tls = TlsConfig::load(dir.self_signed("server")).unwrap();
        assert_eq!(
            tls.current().alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        assert!(!tls.requires_client_certificates());
    }

    #[test]
    fn a_missing_file_is_named_in_the_error() {
        let dir = Dir::new();
        let mut files = dir.self_signed("server");
        files.cert = dir.0.path().join("absent.pem");
        let err = TlsConfig::load(files).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }));
        assert!(message(err).contains("absent.pem"));
    }

    #[test]
    fn a_certificate_file_without_certificates_is_refused() {
        let dir = Dir::new();
        let mut files = dir.self_signed("server");
        files.cert = dir.write("empty.pem", "not a certificate\n");
        let err = TlsConfig::load(files).unwrap_err();
        assert!(matches!(&err, TlsError::NoCertificate { path } if path.ends_with("empty.pem")));
    }

    #[test]
    fn a_certificate_given_as_the_key_is_refused() {
        let dir = Dir::new();
        let mut files = dir.self_signed("server");
        files.key = files.cert.clone();
        let err = TlsConfig::load(files).unwrap_err();
        assert!(matches!(&err, TlsError::NoKey { path } if path.ends_with("server.pem")));
        assert!(message(err).contains("BEGIN PRIVATE KEY"));
    }

    #[test]
    fn an_encrypted_key_is_refused_with_a_reason() {
        let dir = Dir::new();
        let mut files = dir.self_signed("server");
        files.key = dir.write(
            "encrypted.key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let err = TlsConfig::load(files).unwrap_err();
        assert!(matches!(err, TlsError::EncryptedKey { .. }));
    }

    #[test]
    fn broken_base64_is_a_pem_error_naming_the_file() {
        let dir = Dir::new();
        let mut files = dir.self_signed("server");
        files.key = dir.write(
            "broken.key",
            "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n",
        );
        let err = TlsConfig::load(files).unwrap_err();
        assert!(matches!(&err, TlsError::Pem { path, .. } if path.ends_with("broken.key")));
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = Dir::new();
        let first = dir.self_signed("first");
        let second = dir.self_signed("second");
        let err = TlsConfig::load(TlsFiles {
            cert: first.cert,
            key: second.key,
            client_ca: None,
        })
        .unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }));
    }

    #[test]
    fn the_chain_may_share_a_file_with_the_key() {
        let dir = Dir::new();
        let files = dir.self_signed("server");
        let both = format!(
            "{}{}",
            fs::read_to_string(&files.key).unwrap(),
            fs::read_to_string(&files.cert).unwrap()
        );
        let both = dir.write("both.pem", &both);
        assert!(
            TlsConfig::load(TlsFiles {
                cert: both.clone(),
                key: both,
                client_ca: None,
            })
            .is_ok()
        );
    }

    #[test]
    fn a_client_ca_file_without_certificates_is_refused() {
        let dir = Dir::new();
        let mut files = dir.self_signed("server");
        files.client_ca = Some(files.key.clone());
        let err = TlsConfig::load(files).unwrap_err();
        assert!(matches!(&err, TlsError::NoCertificate { path } if path.ends_with("server.key")));
    }

    #[test]
    fn a_client_ca_requires_client_certificates() {
        let dir = Dir::new();
        let mut files = dir.self_signed("server");
        files.client_ca = Some(dir.self_signed("ca").cert);
        assert!(
            TlsConfig::load(files)
                .unwrap()
                .requires_client_certificates()
        );
    }

    #[test]
    fn a_successful_reload_replaces_the_configuration() {
        let dir = Dir::new();
        let files = dir.self_signed("server");
        let tls = TlsConfig::load(files.clone()).unwrap();
        let before = tls.current();
        let other = dir.self_signed("other");
        fs::copy(&other.cert, &files.cert).unwrap();
        fs::copy(&other.key, &files.key).unwrap();
        tls.reload().unwrap();
        assert!(!Arc::ptr_eq(&before, &tls.current()));
    }

    #[test]
    fn a_failed_reload_keeps_the_previous_configuration() {
        let dir = Dir::new();
        let files = dir.self_signed("server");
        let tls = TlsConfig::load(files.clone()).unwrap();
        let before = tls.current();
        fs::write(&files.key, "garbage").unwrap();
        assert!(matches!(tls.reload(), Err(TlsError::NoKey { .. })));
        assert!(Arc::ptr_eq(&before, &tls.current()));
    }
}
