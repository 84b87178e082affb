//! Choosing the root secret (the admin secret of the root database) at startup.
//!
//! - `--dev`: the secret is `secret`, like Fauna's development container.
//! - `--root-secret` / `TESTUDO_ROOT_SECRET`: that secret; nothing is written to disk.
//! - otherwise, on the first start of a data directory, a fresh secret is generated, shown
//!   once in a banner on stdout, and only its SHA-256 is stored in
//!   `<data-dir>/root-secret.sha256` (mode 0600, written atomically); later starts load the
//!   hash and print nothing secret.
//!
//! **Invariants:** only the hash of the root secret is kept in memory or on disk; a generated
//! secret is printed exactly once, and only after its hash is durably stored (a secret shown
//! but not stored would be useless; one stored but never shown would lock the operator out);
//! an unreadable or corrupt hash file stops the start, it is never silently replaced.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use testudo_auth::{SecretHash, generate_secret};

use crate::CliError;

/// Where the hash of a generated root secret lives inside the data directory.
pub const HASH_FILE: &str = "root-secret.sha256";

/// The secret Fauna's development container uses, and so do the drivers' test suites.
pub const DEV_SECRET: &str = "secret";

/// How the root secret is chosen. (No `Debug`: it may hold the secret.)
pub enum Source {
    Dev,
    Explicit(String),
    DataDir,
}

/// Resolves the root secret's hash, generating (and announcing) a secret if needed.
pub fn resolve(
    source: Source,
    data_dir: &Path,
    announce: &mut impl Write,
) -> Result<SecretHash, CliError> {
    match source {
        Source::Dev => Ok(SecretHash::of(DEV_SECRET)),
        Source::Explicit(secret) if secret.is_empty() => Err(CliError::Refused(
            "the root secret must not be empty".to_owned(),
        )),
        Source::Explicit(secret) => Ok(SecretHash::of(&secret)),
        Source::DataDir => from_data_dir(data_dir, announce),
    }
}

fn from_data_dir(data_dir: &Path, announce: &mut impl Write) -> Result<SecretHash, CliError> {
    let path = data_dir.join(HASH_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => SecretHash::from_hex(&text).ok_or_else(|| {
            CliError::Failed(format!(
                "{} is not a valid root secret hash; restore it, or remove it to generate a new root secret",
                path.display()
            ))
        }),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            let secret = generate_secret("fnR").map_err(|err| CliError::Failed(err.to_string()))?;
            let hash = SecretHash::of(&secret);
            write_atomically(&path, format!("{}\n", hash.to_hex()).as_bytes())
                .map_err(|err| CliError::Failed(format!("could not write {}: {err}", path.display())))?;
            print_banner(announce, &secret, &path)
                .map_err(|err| CliError::Failed(format!("could not print the root secret: {err}")))?;
            Ok(hash)
        }
        Err(err) => Err(CliError::Failed(format!("could not read {}: {err}", path.display()))),
    }
}

fn print_banner(out: &mut impl Write, secret: &str, path: &Path) -> io::Result<()> {
    let rule = "=".repeat(72);
    writeln!(out, "{rule}")?;
    writeln!(
        out,
        "testudo generated the root secret of this data directory."
    )?;
    writeln!(
        out,
        "It is shown only this once; only its hash is stored, in {}.",
        path.display()
    )?;
    writeln!(out, "Save it now:")?;
    writeln!(out)?;
    writeln!(out, "    root secret: {secret}")?;
    writeln!(out)?;
    writeln!(out, "{rule}")?;
    out.flush()
}

/// Writes `contents` to `path` so that readers see either nothing or the whole file: a
/// private temporary file in the same directory, synced, then renamed over `path`, then the
/// directory synced so the rename survives a crash.
fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(path);
    let written = (|| {
        let mut file = private_file(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    fs::File::open(dir)?.sync_all()
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(unix)]
fn private_file(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_file(path: &Path) -> io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announced(dir: &Path) -> (SecretHash, String) {
        let mut out = Vec::new();
        let hash = resolve(Source::DataDir, dir, &mut out).unwrap();
        (hash, String::from_utf8(out).unwrap())
    }

    fn secret_in(banner: &str) -> &str {
        banner
            .lines()
            .find_map(|l| l.trim().strip_prefix("root secret: "))
            .unwrap()
    }

    #[test]
    fn a_generated_secret_is_announced_once_and_its_hash_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (hash, banner) = announced(dir.path());
        let secret = secret_in(&banner);
        assert!(secret.starts_with("fnR"));
        assert!(hash.verify(secret));

        let stored = fs::read_to_string(dir.path().join(HASH_FILE)).unwrap();
        assert_eq!(stored.trim(), hash.to_hex());
        assert!(!stored.contains(secret));

        let (again, second_banner) = announced(dir.path());
        assert_eq!(again, hash);
        assert_eq!(second_banner, "");
    }

    #[cfg(unix)]
    #[test]
    fn the_hash_file_is_private_and_no_temporary_file_is_left() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        announced(dir.path());
        let mode = fs::metadata(dir.path().join(HASH_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_corrupt_hash_file_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(HASH_FILE), "not a hash").unwrap();
        let err = resolve(Source::DataDir, dir.path(), &mut Vec::new()).unwrap_err();
        assert!(matches!(err, CliError::Failed(_)));
    }

    #[test]
    fn dev_and_explicit_secrets_touch_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let dev = resolve(Source::Dev, dir.path(), &mut Vec::new()).unwrap();
        assert!(dev.verify("secret"));
        let explicit = resolve(
            Source::Explicit("s3".to_owned()),
            dir.path(),
            &mut Vec::new(),
        )
        .unwrap();
        assert!(explicit.verify("s3"));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(resolve(Source::Explicit(String::new()), dir.path(), &mut Vec::new()).is_err());
    }
}
