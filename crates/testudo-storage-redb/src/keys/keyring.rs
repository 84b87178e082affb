//! The keyring file (`<data-dir>/keyring`): the store's data keys, each wrapped by the master
//! key, and which one encrypts the data file.
//!
//! A small text file, one fact per line:
//!
//! ```text
//! testudo-keyring 1
//! master 3f29c0d1a4b5e6f7
//! current 1
//! key 1 store AQz…(base64 of the wrapped key)
//! ```
//!
//! `master` is the fingerprint of the master key that wrapped every entry (so a wrong key is
//! named as such, not reported as damage). Each `key` line is an id, a label (`store` for the
//! data file's keys; other labels, e.g. per-database keys, may be added by callers) and the
//! wrapped key; the wrapping context binds the id and the label, so an entry cannot be moved
//! to another id or purpose. `current` is the id whose key seals new writes to the data file.
//!
//! While an online data-key rotation runs (`testudo keys rotate-data` with the server up), a
//! line `rotating A B` says that the data file is being re-sealed from key `A` to key `B`
//! (`current` is then `B`); both keys stay until the server has finished and removes `A` and
//! the line. Builds without online rotation refuse a keyring with that line (never half use
//! it).
//!
//! **Invariants:** the file is replaced atomically (temporary file, fsync, rename, fsync of
//! the directory), created with mode 0600; a file that does not parse is refused whole, never
//! half used; rewrapping under a new master key changes no key, only its wrapping.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{DataKey, Fingerprint, KeyError, MasterKey, WrappedKey};

/// The keyring's file name inside the data directory.
pub const KEYRING_FILE: &str = "keyring";
const HEADER: &str = "testudo-keyring 1";
/// The label of the data file's keys.
pub(crate) const STORE_LABEL: &str = "store";
/// A keyring is a few lines; anything larger is not one.
const MAX_KEYRING_BYTES: u64 = 1 << 20;

/// One wrapped key and what it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    label: String,
    wrapped: WrappedKey,
}

/// The parsed keyring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyring {
    master: Fingerprint,
    current: u32,
    entries: BTreeMap<u32, Entry>,
    /// An online rotation of the data file's key: from, to.
    rotating: Option<(u32, u32)>,
}

fn context(id: u32, label: &str) -> Vec<u8> {
    format!("testudo keyring entry {id} {label}").into_bytes()
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 64
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Keyring {
    /// A keyring whose only (and current) entry is `key`, the store's first data key.
    pub fn new(master: &MasterKey, key: &DataKey) -> Result<Keyring, KeyError> {
        let mut keyring = Keyring {
            master: master.fingerprint(),
            current: 0,
            entries: BTreeMap::new(),
            rotating: None,
        };
        keyring.current = keyring.insert(STORE_LABEL, master, key)?;
        Ok(keyring)
    }

    /// The path of the keyring in `dir`.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(KEYRING_FILE)
    }

    /// The fingerprint of the master key that wrapped the entries.
    pub fn master_fingerprint(&self) -> Fingerprint {
        self.master
    }

    /// The id of the key that encrypts the data file.
    pub fn current(&self) -> u32 {
        self.current
    }

    /// Makes `id` (which must exist) the data file's key id.
    pub fn set_current(&mut self, id: u32) -> Result<(), KeyError> {
        if !self.entries.contains_key(&id) {
            return Err(KeyError::Keyring {
                path: KEYRING_FILE.to_owned(),
                reason: format!("no key with id {id}"),
            });
        }
        self.current = id;
        Ok(())
    }

    /// The online rotation in progress, if any: the data file is being re-sealed from the
    /// first key id to the second.
    pub fn rotation(&self) -> Option<(u32, u32)> {
        self.rotating
    }

    /// Records (or, with `None`, clears) an online rotation; both ids must exist.
    pub fn set_rotation(&mut self, rotation: Option<(u32, u32)>) -> Result<(), KeyError> {
        if let Some((from, to)) = rotation
            && (from == to || !self.entries.contains_key(&from) || !self.entries.contains_key(&to))
        {
            return Err(KeyError::Keyring {
                path: KEYRING_FILE.to_owned(),
                reason: format!("cannot rotate from key {from} to key {to}"),
            });
        }
        self.rotating = rotation;
        Ok(())
    }

    /// The ids of the entries labelled `label`, ascending.
    pub fn ids_labelled(&self, label: &str) -> Vec<u32> {
        self.entries
            .iter()
            .filter(|(_, e)| e.label == label)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Wraps `key` under `master` as a new entry labelled `label` (lowercase letters, digits,
    /// `-`), returning its id. `master` must be the keyring's master key.
    pub fn insert(
        &mut self,
        label: &str,
        master: &MasterKey,
        key: &DataKey,
    ) -> Result<u32, KeyError> {
        self.check_master(master)?;
        if !valid_label(label) {
            return Err(KeyError::Keyring {
                path: KEYRING_FILE.to_owned(),
                reason: format!("invalid label {label:?}"),
            });
        }
        let id = self
            .entries
            .keys()
            .next_back()
            .map_or(Some(1), |last| last.checked_add(1))
            .ok_or_else(|| KeyError::Keyring {
                path: KEYRING_FILE.to_owned(),
                reason: "no key id left".to_owned(),
            })?;
        let wrapped = master.wrap(key, &context(id, label))?;
        self.entries.insert(
            id,
            Entry {
                label: label.to_owned(),
                wrapped,
            },
        );
        Ok(id)
    }

    /// Removes entry `id` (never the current one, nor one an online rotation uses). Once the
    /// keyring is saved, whatever that key encrypted is unreadable.
    pub fn remove(&mut self, id: u32) -> Result<(), KeyError> {
        if self
            .rotating
            .is_some_and(|(from, to)| id == from || id == to)
        {
            return Err(KeyError::Keyring {
                path: KEYRING_FILE.to_owned(),
                reason: format!("key {id} is in use by the data-key rotation in progress"),
            });
        }
        if id == self.current {
            return Err(KeyError::Keyring {
                path: KEYRING_FILE.to_owned(),
                reason: format!("key {id} is the data file's current key"),
            });
        }
        self.entries.remove(&id);
        Ok(())
    }

    /// Unwraps entry `id` with `master`.
    pub fn unwrap(&self, id: u32, master: &MasterKey) -> Result<DataKey, KeyError> {
        self.check_master(master)?;
        let entry = self.entries.get(&id).ok_or_else(|| KeyError::Keyring {
            path: KEYRING_FILE.to_owned(),
            reason: format!("no key with id {id}"),
        })?;
        master
            .unwrap(&entry.wrapped, &context(id, &entry.label))
            .ok_or_else(|| KeyError::TamperedKeyring {
                entry: id.to_string(),
            })
    }

    /// Every entry, unwrapped with `old` and wrapped again with `new`: the same keys under
    /// another master key.
    pub fn rewrap(&self, old: &MasterKey, new: &MasterKey) -> Result<Keyring, KeyError> {
        let mut entries = BTreeMap::new();
        for (&id, entry) in &self.entries {
            let key = self.unwrap(id, old)?;
            let wrapped = new.wrap(&key, &context(id, &entry.label))?;
            entries.insert(
                id,
                Entry {
                    label: entry.label.clone(),
                    wrapped,
                },
            );
        }
        Ok(Keyring {
            master: new.fingerprint(),
            current: self.current,
            entries,
            rotating: self.rotating,
        })
    }

    fn check_master(&self, master: &MasterKey) -> Result<(), KeyError> {
        if master.fingerprint() == self.master {
            Ok(())
        } else {
            Err(KeyError::WrongMasterKey {
                expected: self.master,
                given: master.fingerprint(),
            })
        }
    }

    /// The text of the file.
    fn render(&self) -> String {
        let mut out = format!(
            "{HEADER}\nmaster {}\ncurrent {}\n",
            self.master, self.current
        );
        if let Some((from, to)) = self.rotating {
            out.push_str(&format!("rotating {from} {to}\n"));
        }
        for (id, entry) in &self.entries {
            out.push_str(&format!(
                "key {id} {} {}\n",
                entry.label,
                entry.wrapped.to_base64()
            ));
        }
        out
    }

    fn parse(text: &str) -> Result<Keyring, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("it does not start with `{HEADER}`"));
        }
        let mut master = None;
        let mut current = None;
        let mut rotating = None;
        let mut entries = BTreeMap::new();
        for (n, line) in lines.enumerate() {
            let bad = || format!("line {} is not understood", n + 2);
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["master", hex] if master.is_none() => {
                    master = Some(Fingerprint::parse(hex).ok_or_else(bad)?);
                }
                ["current", id] if current.is_none() => {
                    current = Some(id.parse::<u32>().map_err(|_| bad())?);
                }
                ["rotating", from, to] if rotating.is_none() => {
                    let from = from.parse::<u32>().map_err(|_| bad())?;
                    let to = to.parse::<u32>().map_err(|_| bad())?;
                    rotating = Some((from, to));
                }
                ["key", id, label, wrapped] if valid_label(label) => {
                    let id = id.parse::<u32>().map_err(|_| bad())?;
                    let wrapped = WrappedKey::from_base64(wrapped).ok_or_else(bad)?;
                    let entry = Entry {
                        label: (*label).to_owned(),
                        wrapped,
                    };
                    if entries.insert(id, entry).is_some() {
                        return Err(format!("key {id} appears twice"));
                    }
                }
                [""] => {}
                _ => return Err(bad()),
            }
        }
        let master = master.ok_or("it names no master key")?;
        let current = current.ok_or("it names no current key")?;
        if !entries.contains_key(&current) {
            return Err(format!("the current key {current} is not in it"));
        }
        if let Some((from, to)) = rotating {
            let store = |id| {
                entries
                    .get(&id)
                    .is_some_and(|e: &Entry| e.label == STORE_LABEL)
            };
            if from == to || !store(from) || !store(to) {
                return Err(format!(
                    "the rotation from key {from} to key {to} names no such keys"
                ));
            }
        }
        Ok(Keyring {
            master,
            current,
            entries,
            rotating,
        })
    }

    /// Reads the keyring of `dir`; `None` if there is none.
    pub fn load(dir: &Path) -> Result<Option<Keyring>, KeyError> {
        let path = Keyring::path(dir);
        let error = |reason: String| KeyError::Keyring {
            path: path.display().to_string(),
            reason,
        };
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(e.to_string())),
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_KEYRING_BYTES), &mut text)
            .map_err(|e| error(e.to_string()))?;
        Keyring::parse(&text).map(Some).map_err(error)
    }

    /// Writes the keyring into `dir`, atomically replacing any previous one.
    pub fn save(&self, dir: &Path) -> Result<(), KeyError> {
        let path = Keyring::path(dir);
        write_atomically(&path, self.render().as_bytes()).map_err(|e| KeyError::Keyring {
            path: path.display().to_string(),
            reason: format!("cannot be written: {e}"),
        })
    }
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file: write
/// a temporary file beside it, fsync it, rename it over `path`, fsync the directory.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let tmp = dir.join(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Makes a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;

    fn master(byte: u8) -> MasterKey {
        MasterKey::from_bytes(&Zeroizing::new([byte; 32]))
    }

    #[test]
    fn a_keyring_survives_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut keyring = Keyring::new(&master(1), &DataKey::generate().unwrap()).unwrap();
        let db = keyring
            .insert("db-42", &master(1), &DataKey::generate().unwrap())
            .unwrap();
        keyring.save(dir.path()).unwrap();
        let loaded = Keyring::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded, keyring);
        assert_eq!(loaded.current(), 1);
        assert_eq!(loaded.ids_labelled("db-42"), vec![db]);
        loaded.unwrap(db, &master(1)).unwrap();
    }

    #[test]
    fn the_wrong_master_key_is_named_as_such() {
        let keyring = Keyring::new(&master(1), &DataKey::generate().unwrap()).unwrap();
        let err = keyring.unwrap(1, &master(2)).unwrap_err();
        assert!(matches!(err, KeyError::WrongMasterKey { .. }));
        assert!(
            err.to_string()
                .contains("the master key does not unwrap this store's data key")
        );
    }

    #[test]
    fn an_entry_moved_to_another_id_does_not_unwrap() {
        let mut keyring = Keyring::new(&master(1), &DataKey::generate().unwrap()).unwrap();
        let other = keyring
            .insert("store", &master(1), &DataKey::generate().unwrap())
            .unwrap();
        let moved = keyring.entries[&1].clone();
        keyring.entries.insert(other, moved);
        assert!(matches!(
            keyring.unwrap(other, &master(1)),
            Err(KeyError::TamperedKeyring { .. })
        ));
    }

    #[test]
    fn rewrapping_keeps_the_keys_and_changes_the_master() {
        let keyring = Keyring::new(&master(1), &DataKey::generate().unwrap()).unwrap();
        let rewrapped = keyring.rewrap(&master(1), &master(2)).unwrap();
        assert_eq!(rewrapped.master_fingerprint(), master(2).fingerprint());
        let a = keyring.unwrap(1, &master(1)).unwrap().aead_key();
        let b = rewrapped.unwrap(1, &master(2)).unwrap().aead_key();
        // Same key: what one seals, the other opens.
        let nonce = [7u8; 12];
        let mut data = b"same key".to_vec();
        let tag = a
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(nonce),
                ring::aead::Aad::empty(),
                &mut data,
            )
            .unwrap();
        b.open_in_place_separate_tag(
            ring::aead::Nonce::assume_unique_for_key(nonce),
            ring::aead::Aad::empty(),
            tag,
            &mut data,
            0..,
        )
        .unwrap();
        assert!(rewrapped.unwrap(1, &master(1)).is_err());
    }

    #[test]
    fn a_damaged_keyring_is_refused_whole() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::new(&master(1), &DataKey::generate().unwrap()).unwrap();
        let good = keyring.render();
        for bad in [
            good.replace("testudo-keyring 1", "testudo-keyring 2"),
            good.replace("current 1", "current 9"),
            good.replace("master ", "master zz"),
            format!("{good}surprise\n"),
            good.lines().take(3).collect::<Vec<_>>().join("\n"),
        ] {
            std::fs::write(Keyring::path(dir.path()), &bad).unwrap();
            assert!(
                matches!(Keyring::load(dir.path()), Err(KeyError::Keyring { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_rotation_in_progress_survives_save_load_and_rewrap_and_pins_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let mut keyring = Keyring::new(&master(1), &DataKey::generate().unwrap()).unwrap();
        let to = keyring
            .insert(STORE_LABEL, &master(1), &DataKey::generate().unwrap())
            .unwrap();
        keyring.set_rotation(Some((1, to))).unwrap();
        keyring.set_current(to).unwrap();
        assert!(keyring.remove(1).is_err());
        keyring.save(dir.path()).unwrap();
        let loaded = Keyring::load(dir.path()).unwrap().unwrap();
        assert_eq!(loaded.rotation(), Some((1, to)));
        let rewrapped = loaded.rewrap(&master(1), &master(2)).unwrap();
        assert_eq!(rewrapped.rotation(), Some((1, to)));
        assert!(keyring.set_rotation(Some((1, 99))).is_err());
        let text = keyring
            .render()
            .replace(&format!("rotating 1 {to}"), "rotating 1 99");
        std::fs::write(Keyring::path(dir.path()), text).unwrap();
        assert!(Keyring::load(dir.path()).is_err());
    }

    #[test]
    fn the_keyring_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Keyring::new(&master(1), &DataKey::generate().unwrap())
            .unwrap()
            .save(dir.path())
            .unwrap();
        let mode = std::fs::metadata(Keyring::path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }
}
