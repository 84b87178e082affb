//! Where JWKS documents come from: the `JwksFetcher` trait, the `file:` fetcher for
//! air-gapped setups and tests, and `SchemeFetcher`, which routes a URI to the fetcher for its
//! scheme. The HTTP(S) fetcher lives in `http.rs`.
//!
//! **Invariants:** a fetcher returns at most `MAX_JWKS_BYTES` bytes or an error, never a
//! partial document; the `file:` fetcher reads only regular files inside its root directory
//! (after resolving `..` and symbolic links), so an access provider's `jwks_uri` cannot be
//! used to probe the rest of the file system; errors never echo the document's content.

use std::fs::File;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use super::{HttpJwksFetcher, JwtError, MAX_JWKS_BYTES};

/// Fetches the raw bytes of a JWKS document. Implementations block the calling thread (the
/// cache calls them at most once per URI per refresh interval) and must bound their time.
pub trait JwksFetcher: Send + Sync {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, JwtError>;
}

/// Reads `file:` URIs (`file:///abs/path`, `file:/abs/path`, `file://localhost/abs/path`)
/// below a root directory.
#[derive(Debug, Clone)]
pub struct FileJwksFetcher {
    root: PathBuf,
}

impl FileJwksFetcher {
    /// A fetcher that serves files inside `root` only.
    pub fn new(root: impl Into<PathBuf>) -> FileJwksFetcher {
        FileJwksFetcher { root: root.into() }
    }

    fn path_of(uri: &str) -> Result<&Path, JwtError> {
        let rest = uri
            .strip_prefix("file:")
            .ok_or_else(|| unavailable("not a file: URI"))?;
        let path = if let Some(after) = rest.strip_prefix("//") {
            // Only an empty authority or "localhost": a file on another host is not ours.
            after
                .strip_prefix("localhost")
                .filter(|p| p.starts_with('/'))
                .or_else(|| after.starts_with('/').then_some(after))
                .ok_or_else(|| unavailable("file: URI names another host"))?
        } else {
            rest
        };
        // Percent-escapes, queries and fragments are not worth decoding for a config value.
        if !path.starts_with('/') || path.contains(['%', '?', '#']) {
            return Err(unavailable("file: URI must be a plain absolute path"));
        }
        Ok(Path::new(path))
    }
}

impl JwksFetcher for FileJwksFetcher {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, JwtError> {
        let requested = Self::path_of(uri)?;
        let root = self
            .root
            .canonicalize()
            .map_err(|_| unavailable("the JWKS directory does not exist"))?;
        // The same answer for "missing" and "outside the root" so nothing is learned about
        // files the fetcher must not read.
        let not_found = || unavailable("no such JWKS file");
        let path = requested.canonicalize().map_err(|_| not_found())?;
        if !path.starts_with(&root) || !path.is_file() {
            return Err(not_found());
        }
        let file = File::open(&path).map_err(|_| not_found())?;
        let mut bytes = Vec::new();
        file.take(MAX_JWKS_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| unavailable("could not read the JWKS file"))?;
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(unavailable("JWKS file larger than 1 MiB"));
        }
        Ok(bytes)
    }
}

/// Sends `http:`/`https:` URIs to an HTTP fetcher and `file:` URIs to a file fetcher; a
/// scheme without a fetcher is refused.
#[derive(Debug, Default)]
pub struct SchemeFetcher {
    pub http: Option<HttpJwksFetcher>,
    pub file: Option<FileJwksFetcher>,
}

impl JwksFetcher for SchemeFetcher {
    fn fetch(&self, uri: &str) -> Result<Vec<u8>, JwtError> {
        let scheme = uri.split_once(':').map(|(scheme, _)| scheme);
        match scheme {
            Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {
                match &self.http {
                    Some(http) => http.fetch(uri),
                    None => Err(unavailable("http(s) JWKS URIs are disabled")),
                }
            }
            Some(s) if s.eq_ignore_ascii_case("file") => match &self.file {
                Some(file) => file.fetch(uri),
                None => Err(unavailable("file: JWKS URIs are disabled")),
            },
            _ => Err(unavailable("unsupported JWKS URI scheme")),
        }
    }
}

pub(crate) fn unavailable(reason: &str) -> JwtError {
    JwtError::JwksUnavailable(reason.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uri_spellings_name_the_same_path() {
        for uri in [
            "file:///etc/jwks.json",
            "file:/etc/jwks.json",
            "file://localhost/etc/jwks.json",
        ] {
            assert_eq!(
                FileJwksFetcher::path_of(uri).unwrap(),
                Path::new("/etc/jwks.json")
            );
        }
    }

    #[test]
    fn file_uris_with_a_host_or_relative_path_are_refused() {
        for uri in [
            "file://idp.example/etc/jwks.json",
            "file:jwks.json",
            "file:///etc/jwks%2ejson",
            "http://x/",
        ] {
            assert!(FileJwksFetcher::path_of(uri).is_err(), "{uri}");
        }
    }

    #[test]
    fn files_outside_the_root_are_not_read() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("jwks.json");
        std::fs::write(&inside, br#"{"keys":[]}"#).unwrap();
        let fetcher = FileJwksFetcher::new(root.path());
        let uri = format!("file://{}", inside.display());
        assert_eq!(fetcher.fetch(&uri).unwrap(), br#"{"keys":[]}"#);
        let escape = format!("file://{}/../../etc/passwd", root.path().display());
        assert_eq!(
            fetcher.fetch(&escape),
            Err(JwtError::JwksUnavailable("no such JWKS file".into()))
        );
        let directory = format!("file://{}", root.path().display());
        assert!(fetcher.fetch(&directory).is_err());
    }

    #[test]
    fn files_over_the_size_cap_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let big = root.path().join("big.json");
        std::fs::write(&big, vec![b' '; MAX_JWKS_BYTES + 1]).unwrap();
        let fetcher = FileJwksFetcher::new(root.path());
        assert!(fetcher.fetch(&format!("file://{}", big.display())).is_err());
    }

    #[test]
    fn a_scheme_without_a_fetcher_is_refused() {
        let fetcher = SchemeFetcher::default();
        for uri in ["https://idp/jwks", "file:///x", "ftp://idp/jwks", "jwks"] {
            assert!(
                matches!(fetcher.fetch(uri), Err(JwtError::JwksUnavailable(_))),
                "{uri}"
            );
        }
    }
}
