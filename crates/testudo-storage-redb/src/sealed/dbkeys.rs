//! The per-database key file, `dbkeys`: one data key per database, each wrapped by the master
//! key, kept outside the store so that destroying a key (crypto-shredding) is one small file
//! rewrite, and so that a backup of the store never carries the keys that open it.
//!
//! ```text
//! testudo-dbkeys 1
//! since 0
//! key 0 9f2c4e1a0b7d3e55 AbC…=
//! key 7340032 9f2c4e1a0b7d3e55 XyZ…=
//! shredded 8388608
//! ```
//!
//! `since` is the first commit timestamp whose values are sealed per database (0 for a store
//! created with per-database keys; the next timestamp for an encrypted store that existed
//! before them: its older versions stay sealed only by the data file's key). A `key` line is a
//! database id, the fingerprint of the master key that wrapped it (per line, so a master-key
//! rotation that races a running server's rewrite of this file leaves each line readable
//! with one of the two keys, never a mixed file), and the wrapped key; the wrapping context
//! binds the database id, so a line moved to another id does not unwrap. A `shredded` line
//! records that the database's key was destroyed, so reading its data fails with "deleted"
//! rather than "missing key".
//!
//! **Invariants:** the file is replaced atomically (temporary file, fsync, rename, fsync of
//! the directory) and is created with mode 0600; every rewrite happens under the exclusive
//! lock `dbkeys.lock` and starts from the file as it is on disk, so two writers (the server
//! and `keys rotate-master`) never lose each other's changes; a file that does not parse is
//! refused whole.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::keys::keyring::write_atomically;
use crate::keys::{DataKey, Fingerprint, KeyError, MasterKey, WrappedKey};

/// The per-database key file's name inside the data directory.
pub const DB_KEYS_FILE: &str = "dbkeys";
const LOCK_FILE: &str = "dbkeys.lock";
const HEADER: &str = "testudo-dbkeys 1";
/// A few thousand databases of ~120 bytes a line; anything far larger is not this file.
const MAX_BYTES: u64 = 64 << 20;

/// One database's key line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) master: Fingerprint,
    pub(crate) wrapped: WrappedKey,
}

/// The parsed file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DbKeysFile {
    pub(crate) since: u64,
    pub(crate) keys: BTreeMap<u64, Line>,
    pub(crate) shredded: BTreeMap<u64, ()>,
}

/// The wrapping context of database `db`'s key: a line moved to another id does not unwrap.
pub(crate) fn context(db: u64) -> Vec<u8> {
    format!("testudo database key db-{db}").into_bytes()
}

fn error(path: &Path, reason: impl Into<String>) -> KeyError {
    KeyError::Keyring {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

impl DbKeysFile {
    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join(DB_KEYS_FILE)
    }

    /// Wraps `key` for database `db` under `master` and records it.
    pub(crate) fn insert(
        &mut self,
        db: u64,
        master: &MasterKey,
        key: &DataKey,
    ) -> Result<(), KeyError> {
        let wrapped = master.wrap(key, &context(db))?;
        self.keys.insert(
            db,
            Line {
                master: master.fingerprint(),
                wrapped,
            },
        );
        Ok(())
    }

    /// Unwraps database `db`'s key with `master`.
    pub(crate) fn unwrap(&self, db: u64, master: &MasterKey) -> Result<DataKey, KeyError> {
        let line = self.keys.get(&db).ok_or_else(|| KeyError::Keyring {
            path: DB_KEYS_FILE.to_owned(),
            reason: format!("no key for database {db}"),
        })?;
        if line.master != master.fingerprint() {
            return Err(KeyError::WrongMasterKey {
                expected: line.master,
                given: master.fingerprint(),
            });
        }
        master
            .unwrap(&line.wrapped, &context(db))
            .ok_or_else(|| KeyError::TamperedKeyring {
                entry: format!("{DB_KEYS_FILE} database {db}"),
            })
    }

    fn render(&self) -> String {
        let mut out = format!("{HEADER}\nsince {}\n", self.since);
        for (db, line) in &self.keys {
            out.push_str(&format!(
                "key {db} {} {}\n",
                line.master,
                line.wrapped.to_base64()
            ));
        }
        for db in self.shredded.keys() {
            out.push_str(&format!("shredded {db}\n"));
        }
        out
    }

    fn parse(text: &str) -> Result<DbKeysFile, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("it does not start with `{HEADER}`"));
        }
        let mut since = None;
        let mut file = DbKeysFile::default();
        for (n, line) in lines.enumerate() {
            let bad = || format!("line {} is not understood", n + 2);
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["since", ts] if since.is_none() => {
                    since = Some(ts.parse::<u64>().map_err(|_| bad())?);
                }
                ["key", db, master, wrapped] => {
                    let db = db.parse::<u64>().map_err(|_| bad())?;
                    let line = Line {
                        master: Fingerprint::parse(master).ok_or_else(bad)?,
                        wrapped: WrappedKey::from_base64(wrapped).ok_or_else(bad)?,
                    };
                    if file.keys.insert(db, line).is_some() {
                        return Err(format!("database {db} has two keys"));
                    }
                }
                ["shredded", db] => {
                    let db = db.parse::<u64>().map_err(|_| bad())?;
                    file.shredded.insert(db, ());
                }
                [""] => {}
                _ => return Err(bad()),
            }
        }
        if let Some(db) = file.shredded.keys().find(|db| file.keys.contains_key(db)) {
            return Err(format!("database {db} is both keyed and shredded"));
        }
        file.since = since.ok_or("it has no `since` line")?;
        Ok(file)
    }

    /// Reads `dir`'s file; `None` if there is none.
    pub(crate) fn load(dir: &Path) -> Result<Option<DbKeysFile>, KeyError> {
        let path = DbKeysFile::path(dir);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(&path, e.to_string())),
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_BYTES), &mut text)
            .map_err(|e| error(&path, e.to_string()))?;
        DbKeysFile::parse(&text)
            .map(Some)
            .map_err(|reason| error(&path, reason))
    }

    /// Replaces `dir`'s file atomically.
    pub(crate) fn save(&self, dir: &Path) -> Result<(), KeyError> {
        let path = DbKeysFile::path(dir);
        write_atomically(&path, self.render().as_bytes())
            .map_err(|e| error(&path, format!("cannot be written: {e}")))
    }
}

/// The exclusive lock every rewrite of `dir`'s `dbkeys` holds (released on drop). Blocks
/// until it is free: rewrites are short.
pub(crate) struct DbKeysLock {
    _file: File,
}

impl DbKeysLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DbKeysLock, KeyError> {
        let path = dir.join(LOCK_FILE);
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .map_err(|e| error(&path, format!("cannot be opened: {e}")))?;
        file.lock()
            .map_err(|e| error(&path, format!("cannot be locked: {e}")))?;
        Ok(DbKeysLock { _file: file })
    }
}

/// Rewraps every line of `dir`'s `dbkeys` wrapped by `old` under `new` (lines already under
/// `new` are left as they are, so an interrupted rotation can simply be run again). Returns
/// how many lines were rewrapped; a missing file rewraps nothing.
pub(crate) fn rewrap(dir: &Path, old: &MasterKey, new: &MasterKey) -> Result<usize, KeyError> {
    let _lock = DbKeysLock::acquire(dir)?;
    let Some(mut file) = DbKeysFile::load(dir)? else {
        return Ok(0);
    };
    let mut changed = 0;
    let ids: Vec<u64> = file.keys.keys().copied().collect();
    for db in ids {
        let line_master = file.keys.get(&db).map(|l| l.master);
        if line_master == Some(new.fingerprint()) {
            continue;
        }
        let key = file.unwrap(db, old)?;
        file.insert(db, new, &key)?;
        changed += 1;
    }
    if changed > 0 {
        file.save(dir)?;
    }
    Ok(changed)
}

/// Checks that every key of `dir`'s `dbkeys` unwraps with `master`. Returns the number of
/// keys and of shredded databases; `None` when there is no such file.
pub fn verify_db_keys(dir: &Path, master: &MasterKey) -> Result<Option<(usize, usize)>, KeyError> {
    let Some(file) = DbKeysFile::load(dir)? else {
        return Ok(None);
    };
    for db in file.keys.keys() {
        file.unwrap(*db, master)?;
    }
    Ok(Some((file.keys.len(), file.shredded.len())))
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&Zeroizing::new([byte; 32]))
    }

    #[test]
    fn a_key_file_survives_save_and_load_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut file = DbKeysFile {
            since: 17,
            ..DbKeysFile::default()
        };
        file.insert(0, &master(1), &DataKey::generate().unwrap())
            .unwrap();
        file.insert(42, &master(1), &DataKey::generate().unwrap())
            .unwrap();
        file.shredded.insert(9, ());
        file.save(dir.path()).unwrap();
        let loaded = DbKeysFile::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded, file);
        loaded.unwrap(42, &master(1)).unwrap();
        let mode = std::fs::metadata(DbKeysFile::path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }

    #[test]
    fn a_key_line_moved_to_another_database_does_not_unwrap() {
        let mut file = DbKeysFile::default();
        file.insert(1, &master(1), &DataKey::generate().unwrap())
            .unwrap();
        let moved = file.keys[&1].clone();
        file.keys.insert(2, moved);
        assert!(matches!(
            file.unwrap(2, &master(1)),
            Err(KeyError::TamperedKeyring { .. })
        ));
    }

    #[test]
    fn rewrapping_is_resumable_and_verify_needs_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = DbKeysFile::default();
        for db in [0, 5, 6] {
            file.insert(db, &master(1), &DataKey::generate().unwrap())
                .unwrap();
        }
        // As if a rotation had been interrupted after one line.
        let key = file.unwrap(5, &master(1)).unwrap();
        file.insert(5, &master(2), &key).unwrap();
        file.save(dir.path()).unwrap();
        assert!(verify_db_keys(dir.path(), &master(2)).is_err());
        assert_eq!(rewrap(dir.path(), &master(1), &master(2)).unwrap(), 2);
        assert_eq!(
            verify_db_keys(dir.path(), &master(2)).unwrap(),
            Some((3, 0))
        );
        assert!(matches!(
            verify_db_keys(dir.path(), &master(1)),
            Err(KeyError::WrongMasterKey { .. })
        ));
    }

    #[test]
    fn a_damaged_key_file_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = DbKeysFile::default();
        file.insert(3, &master(1), &DataKey::generate().unwrap())
            .unwrap();
        let good = file.render();
        for bad in [
            good.replace("testudo-dbkeys 1", "testudo-dbkeys 2"),
            good.replace("since 0\n", ""),
            good.replace("key 3 ", "key x "),
            format!("{good}shredded 3\n"),
            format!("{good}surprise\n"),
        ] {
            std::fs::write(DbKeysFile::path(dir.path()), &bad).unwrap();
            assert!(
                matches!(DbKeysFile::load(dir.path()), Err(KeyError::Keyring { .. })),
                "{bad}"
            );
        }
    }
}
