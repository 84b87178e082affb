//! Where the master key comes from: a key file, an environment variable, or a command that
//! prints it (so a KMS or a secrets manager can supply it without the key touching disk).
//!
//! All three carry the key as base64 text of 32 bytes (a key file may also hold the 32 raw
//! bytes). A key file must not be readable or writable by group or others; a command gets
//! [`COMMAND_TIMEOUT`] to answer and at most [`MAX_KEY_TEXT`] bytes of output.
//!
//! **Invariants:** every buffer that held key text is wiped ([`Zeroizing`]); error messages
//! name the source, never its content; a command that hangs is killed, never waited on
//! forever.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use zeroize::Zeroizing;

use super::{KEY_LEN, KeyError, MasterKey};

/// The environment variable that may carry the master key (base64).
pub const MASTER_KEY_ENV: &str = "TESTUDO_MASTER_KEY";

/// How long `--master-key-command` may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The most key text read from a file or a command: a key is 44 base64 characters.
pub const MAX_KEY_TEXT: usize = 4096;

/// One way of obtaining the master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MasterKeySource {
    /// A file holding the base64 key (or its 32 raw bytes), mode 0600 or stricter.
    File(PathBuf),
    /// The base64 key in this environment variable (usually [`MASTER_KEY_ENV`]), read when
    /// the key is loaded (the text is not kept here: `Debug` would show it).
    Env(String),
    /// A shell command (`sh -c`) that prints the base64 key on stdout and exits 0.
    Command(String),
}

impl MasterKeySource {
    /// A short description for messages (never the key).
    pub fn describe(&self) -> String {
        match self {
            MasterKeySource::File(path) => format!("the key file {}", path.display()),
            MasterKeySource::Env(var) => format!("the environment variable {var}"),
            MasterKeySource::Command(_) => "the master key command".to_owned(),
        }
    }

    /// Obtains the key.
    pub fn load(&self) -> Result<MasterKey, KeyError> {
        let name = self.describe();
        let source_error = |reason: String| KeyError::Source {
            source_name: name.clone(),
            reason,
        };
        match self {
            MasterKeySource::File(path) => {
                let bytes = read_key_file(path).map_err(source_error)?;
                if bytes.len() == KEY_LEN {
                    let mut raw = Zeroizing::new([0u8; KEY_LEN]);
                    raw.copy_from_slice(&bytes);
                    return Ok(MasterKey::from_bytes(&raw));
                }
                let text = std::str::from_utf8(&bytes).map_err(|_| KeyError::Malformed {
                    source_name: name.clone(),
                })?;
                MasterKey::from_base64(text, &name)
            }
            MasterKeySource::Env(var) => {
                let text = Zeroizing::new(std::env::var(var).map_err(|e| {
                    source_error(match e {
                        std::env::VarError::NotPresent => "it is not set".to_owned(),
                        std::env::VarError::NotUnicode(_) => "it is not valid UTF-8".to_owned(),
                    })
                })?);
                MasterKey::from_base64(&text, &name)
            }
            MasterKeySource::Command(command) => {
                let out = run_key_command(command, COMMAND_TIMEOUT).map_err(source_error)?;
                let text = std::str::from_utf8(&out).map_err(|_| KeyError::Malformed {
                    source_name: name.clone(),
                })?;
                MasterKey::from_base64(text, &name)
            }
        }
    }
}

/// Reads a key file after checking it is a regular file that only its owner can access.
fn read_key_file(path: &std::path::Path) -> Result<Zeroizing<Vec<u8>>, String> {
    let metadata = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !metadata.is_file() {
        return Err("it is not a regular file".to_owned());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.display().to_string(),
                mode,
            }
            .to_string());
        }
    }
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    read_bounded(file)
}

/// Reads at most [`MAX_KEY_TEXT`] bytes; more is an error (a key is never that long).
fn read_bounded(reader: impl Read) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut out = Zeroizing::new(Vec::with_capacity(128));
    let limit = u64::try_from(MAX_KEY_TEXT).unwrap_or(u64::MAX) + 1;
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() > MAX_KEY_TEXT {
        return Err(format!("it is longer than {MAX_KEY_TEXT} bytes"));
    }
    Ok(out)
}

/// Runs `sh -c command`, its stderr passed through, and returns its stdout. Fails if it
/// exits unsuccessfully or takes longer than `timeout` (it is then killed).
fn run_key_command(command: &str, timeout: Duration) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("it could not be started: {e}"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| "its output could not be captured".to_owned())?;
    // Read on a helper thread so that a command that never closes its output cannot hang us.
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(read_bounded(stdout));
    });
    let output = match receiver.recv_timeout(timeout) {
        Ok(output) => output,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("it did not finish within {} s", timeout.as_secs()));
        }
    };
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("it failed ({status})"));
    }
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_key_file(dir: &std::path::Path, mode: u32, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("master.key");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_private_key_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let (key, text) = MasterKey::generate().unwrap();
        let path = write_key_file(dir.path(), 0o600, &format!("{}\n", *text));
        let loaded = MasterKeySource::File(path).load().unwrap();
        assert_eq!(loaded.fingerprint(), key.fingerprint());
    }

    #[test]
    fn a_key_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (_, text) = MasterKey::generate().unwrap();
        for mode in [0o644, 0o640, 0o604, 0o620] {
            let path = write_key_file(dir.path(), mode, &text);
            let err = MasterKeySource::File(path).load().unwrap_err().to_string();
            assert!(err.contains("chmod 600"), "{mode:o}: {err}");
            assert!(!err.contains(text.as_str()), "the key leaked into {err}");
        }
    }

    #[test]
    fn a_command_supplies_the_key() {
        let (key, text) = MasterKey::generate().unwrap();
        let source = MasterKeySource::Command(format!("echo {}", *text));
        assert_eq!(source.load().unwrap().fingerprint(), key.fingerprint());
    }

    #[test]
    fn a_failing_command_is_an_error_naming_the_command_not_the_key() {
        let err = MasterKeySource::Command("exit 3".to_owned())
            .load()
            .unwrap_err();
        assert!(err.to_string().contains("failed"), "{err}");
    }

    #[test]
    fn a_command_that_hangs_is_killed() {
        let err = run_key_command("sleep 30", Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("did not finish"), "{err}");
    }

    #[test]
    fn garbage_is_not_a_key() {
        let source = MasterKeySource::Command("echo hello".to_owned());
        assert!(matches!(source.load(), Err(KeyError::Malformed { .. })));
    }
}
