//! Per-database sealing and crypto-shredding: [`SealedKv`], a [`Kv`] decorator that seals
//! every stored value with the data key of the database its key belongs to, and
//! [`DatabaseKeys`], those keys (wrapped by the master key in `<data-dir>/dbkeys`, see
//! `dbkeys.rs`; unwrapped in memory while the store is open).
//!
//! Every key of the store starts with the 8-byte big-endian id of its database (the engine's
//! key layout; the root is 0). A value written through [`SealedKv`] is stored as
//! `1 ‖ nonce (12) ‖ AES-256-GCM(value) ‖ tag (16)` under that database's key, with a random
//! nonce and the format byte and the full key as authenticated data, so a sealed value copied
//! under another key (or into another database) does not open. Tombstones stay tombstones.
//! Destroying a database's key ([`DatabaseKeys::shred`]) makes every value of that database
//! unreadable at once: in the live store before its space is reclaimed, and in every backup,
//! which copies values as stored (backups read the inner, undecorated store).
//!
//! A key is created the first time a commit writes into a database, and is durable in
//! `dbkeys` before that commit is handed to the store, so no stored value is ever sealed
//! under a key that a crash could lose.
//!
//! **Invariants:** a value that fails authentication is reported as [`KvError::Corrupt`],
//! never returned; a value of a shredded database is reported as such (a clear error, not
//! data and not "damage"); nothing is written into a shredded database (the commit is
//! refused); versions older than the key file's `since` timestamp were written before
//! per-database keys existed and are returned as stored; key bytes live in `Zeroizing`
//! buffers only until ring has expanded them (ring's key schedules are not wiped).

mod dbkeys;

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use ring::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce};
use ring::rand::{SecureRandom, SystemRandom};
use testudo_storage::{
    CommitError, KeyRange, Kv, KvError, PruneStats, ScanIter, ScanOrder, Snapshot, Ts, Version,
    VersionIter, WriteSet,
};

use crate::keys::keyring::write_atomically;
use crate::keys::{DataKey, KeyError, MasterKey};
pub use dbkeys::{DB_KEYS_FILE, verify_db_keys};
use dbkeys::{DbKeysFile, DbKeysLock};

pub(crate) use dbkeys::rewrap as rewrap_db_keys;

/// The format byte that starts every sealed value (and is part of its authenticated data).
const SEAL_FORMAT: u8 = 1;
const TAG_LEN: usize = 16;

/// The database a key belongs to: its first 8 bytes, big-endian. Keys shorter than that are
/// not the engine's; they are counted as the root's.
pub fn database_of(key: &[u8]) -> u64 {
    key.get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}

fn shredded_error(db: u64) -> KvError {
    KvError::Corrupt(format!(
        "database {db} was deleted and its data key destroyed (crypto-shredded): its data \
         can no longer be read"
    ))
}

#[derive(Default)]
struct State {
    keys: HashMap<u64, Arc<LessSafeKey>>,
    shredded: BTreeSet<u64>,
}

/// The unwrapped per-database keys of one store directory.
pub struct DatabaseKeys {
    dir: PathBuf,
    master: MasterKey,
    since: Ts,
    state: RwLock<State>,
    /// Serializes this process's rewrites of the file (the file lock serializes processes).
    writer: Mutex<()>,
    /// Directories that get a copy of `dbkeys` after every change (e.g. the backup directory).
    mirrors: Mutex<Vec<PathBuf>>,
    random: SystemRandom,
}

impl std::fmt::Debug for DatabaseKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseKeys({}, <redacted>)", self.dir.display())
    }
}

impl DatabaseKeys {
    /// Loads (or creates) the per-database keys of the store in `dir`, unwrapping each with
    /// `master`. `kv` is the store itself, undecorated: a store without a key file is given
    /// one when it is empty, or when its values were written before per-database keys (it
    /// seals from its next commit on); a store whose values are sealed but whose key file is
    /// missing is refused (its data would be unreadable, and new keys would not open it).
    pub fn open(dir: &Path, master: MasterKey, kv: &dyn Kv) -> Result<Self, KeyError> {
        let _lock = DbKeysLock::acquire(dir)?;
        let file = match DbKeysFile::load(dir)? {
            Some(file) => file,
            None => {
                let last = kv.last_commit_ts();
                let since = if last.0 == 0 {
                    0
                } else if looks_sealed(kv).map_err(|e| KeyError::Keyring {
                    path: DbKeysFile::path(dir).display().to_string(),
                    reason: format!("cannot inspect the store: {e}"),
                })? {
                    return Err(KeyError::Keyring {
                        path: DbKeysFile::path(dir).display().to_string(),
                        reason: "is missing, and the store's values are sealed with the keys \
                                 it holds: copy the `dbkeys` file that belongs to this store \
                                 (kept with its backups) into the data directory"
                            .to_owned(),
                    });
                } else {
                    tracing::warn!(
                        "this encrypted store has no per-database keys yet: values written \
                         from now on are sealed per database; older ones stay sealed by the \
                         data file's key only"
                    );
                    last.0.saturating_add(1)
                };
                let file = DbKeysFile {
                    since,
                    ..DbKeysFile::default()
                };
                file.save(dir)?;
                file
            }
        };
        let mut state = State::default();
        for db in file.keys.keys() {
            let key = file.unwrap(*db, &master)?;
            state.keys.insert(*db, Arc::new(key.aead_key()));
        }
        state.shredded = file.shredded.keys().copied().collect();
        Ok(DatabaseKeys {
            dir: dir.to_path_buf(),
            master,
            since: Ts(file.since),
            state: RwLock::new(state),
            writer: Mutex::new(()),
            mirrors: Mutex::new(Vec::new()),
            random: SystemRandom::new(),
        })
    }

    /// Copies `dbkeys` into `dir` now and after every later change, so that the backups kept
    /// there can be restored with the keys they need (and a shredded database stays
    /// unreadable there too).
    pub fn mirror_to(&self, dir: &Path) -> Result<(), KeyError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _lock = DbKeysLock::acquire(&self.dir)?;
        copy_file(&self.dir, dir)?;
        self.mirrors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(dir.to_path_buf());
        Ok(())
    }

    /// The databases that have a key (the root included once anything was written to it).
    pub fn databases(&self) -> Vec<u64> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        let mut ids: Vec<u64> = state.keys.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Destroys the keys of `dbs` (the root's is never destroyed): removed from `dbkeys`
    /// (durably, and from its mirrors) and from memory. From then on their values read as
    /// shredded and nothing can be written into them.
    pub fn shred(&self, dbs: &[u64]) -> Result<(), KeyError> {
        let dbs: Vec<u64> = dbs.iter().copied().filter(|db| *db != 0).collect();
        if dbs.is_empty() {
            return Ok(());
        }
        // Memory first: a value sealed under a key being destroyed must not be written now.
        {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            for db in &dbs {
                state.keys.remove(db);
                state.shredded.insert(*db);
            }
        }
        self.rewrite(|file| {
            for db in &dbs {
                file.keys.remove(db);
                file.shredded.insert(*db, ());
            }
            Ok(())
        })
    }

    /// Was `db`'s key destroyed?
    pub fn is_shredded(&self, db: u64) -> bool {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.shredded.contains(&db)
    }

    /// Opens a value of key `key` stored at `ts` as it is in the store (sealed under its
    /// database's key) — for code that reads stored values without going through
    /// [`SealedKv`], such as a restore from a backup file into a running server.
    pub fn unseal(&self, key: &[u8], ts: Ts, stored: Vec<u8>) -> Result<Vec<u8>, KvError> {
        if ts < self.since {
            return Ok(stored);
        }
        let db = database_of(key);
        let aead = {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            match state.keys.get(&db) {
                Some(aead) => Arc::clone(aead),
                None if state.shredded.contains(&db) => return Err(shredded_error(db)),
                None => {
                    return Err(KvError::Corrupt(format!(
                        "no data key for database {db} in {}: restore the `{DB_KEYS_FILE}` \
                         file that belongs to this store",
                        self.dir.join(DB_KEYS_FILE).display()
                    )));
                }
            }
        };
        open_value(&aead, key, stored)
    }

    /// Seals `value` for key `key`, creating its database's key if it has none.
    fn seal(&self, key: &[u8], value: &[u8]) -> Result<Vec<u8>, KvError> {
        let db = database_of(key);
        let aead = self.key_for_writing(db)?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| KvError::Io("the system random number generator failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + value.len() + TAG_LEN);
        out.push(SEAL_FORMAT);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(value);
        let tag = aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad(key)),
                out.get_mut(1 + NONCE_LEN..).unwrap_or_default(),
            )
            .map_err(|_| {
                KvError::Io(format!("a value of {} bytes cannot be sealed", value.len()))
            })?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    fn key_for_writing(&self, db: u64) -> Result<Arc<LessSafeKey>, KvError> {
        {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            if let Some(aead) = state.keys.get(&db) {
                return Ok(Arc::clone(aead));
            }
            if state.shredded.contains(&db) {
                return Err(KvError::Io(format!(
                    "database {db} was deleted (its data key is destroyed): nothing can be \
                     written into it"
                )));
            }
        }
        let key = DataKey::generate().map_err(|e| KvError::Io(e.to_string()))?;
        let aead = Arc::new(key.aead_key());
        let mut created = true;
        self.rewrite(|file| {
            if file.shredded.contains_key(&db) {
                return Err(KeyError::Keyring {
                    path: DB_KEYS_FILE.to_owned(),
                    reason: format!("database {db} was shredded"),
                });
            }
            if file.keys.contains_key(&db) {
                // Another writer created it first: use theirs (it is in memory below).
                created = false;
                return Ok(());
            }
            file.insert(db, &self.master, &key)
        })
        .map_err(|e| KvError::Io(format!("cannot record the key of database {db}: {e}")))?;
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if created {
            state.keys.insert(db, Arc::clone(&aead));
            return Ok(aead);
        }
        match state.keys.get(&db) {
            Some(existing) => Ok(Arc::clone(existing)),
            None => {
                // Written by another process holding the same store (only a key tool can):
                // load it from the file.
                drop(state);
                let file = DbKeysFile::load(&self.dir)
                    .map_err(|e| KvError::Io(e.to_string()))?
                    .unwrap_or_default();
                let key = file
                    .unwrap(db, &self.master)
                    .map_err(|e| KvError::Io(e.to_string()))?;
                let aead = Arc::new(key.aead_key());
                let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
                Ok(Arc::clone(state.keys.entry(db).or_insert(aead)))
            }
        }
    }

    /// Applies `change` to the file as it is on disk, under both locks, saves it durably and
    /// refreshes the mirrors.
    fn rewrite(
        &self,
        change: impl FnOnce(&mut DbKeysFile) -> Result<(), KeyError>,
    ) -> Result<(), KeyError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _lock = DbKeysLock::acquire(&self.dir)?;
        let mut file = DbKeysFile::load(&self.dir)?.unwrap_or(DbKeysFile {
            since: self.since.0,
            ..DbKeysFile::default()
        });
        change(&mut file)?;
        file.save(&self.dir)?;
        let mirrors = self
            .mirrors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for mirror in mirrors {
            if let Err(e) = copy_file(&self.dir, &mirror) {
                // The store's own file is durable; a stale mirror is the operator's to fix.
                tracing::error!(error = %e, mirror = %mirror.display(), "cannot copy the per-database keys");
            }
        }
        Ok(())
    }
}

/// Copies `from/dbkeys` into `data_dir` when `data_dir` has none (a store restored from a
/// backup, started with the key-file copy kept beside the backups). Returns whether it did.
pub fn adopt_db_keys(from: &Path, data_dir: &Path) -> Result<bool, KeyError> {
    let _lock = DbKeysLock::acquire(data_dir)?;
    if DbKeysFile::path(data_dir).exists() || !DbKeysFile::path(from).exists() {
        return Ok(false);
    }
    // Refuse a copy that does not parse before it becomes the store's.
    DbKeysFile::load(from)?;
    copy_file(from, data_dir)?;
    Ok(true)
}

fn copy_file(from: &Path, to: &Path) -> Result<(), KeyError> {
    let source = from.join(DB_KEYS_FILE);
    let target = to.join(DB_KEYS_FILE);
    let bytes = std::fs::read(&source).map_err(|e| KeyError::Keyring {
        path: source.display().to_string(),
        reason: e.to_string(),
    })?;
    write_atomically(&target, &bytes).map_err(|e| KeyError::Keyring {
        path: target.display().to_string(),
        reason: format!("cannot be written: {e}"),
    })
}

/// Root values looked at to tell a store of sealed values from an older one.
const SEAL_PROBE: usize = 10_000;

/// Do the root database's values (the first [`SEAL_PROBE`] of them) all have the shape of a
/// sealed value? A store written before per-database keys has short ones (the engine's
/// schema marker is empty), so this tells such a store from one that lost its key file.
fn looks_sealed(kv: &dyn Kv) -> Result<bool, KvError> {
    let snapshot = kv.begin()?;
    let ts = snapshot.ts();
    let root = KeyRange::prefix(&0u64.to_be_bytes());
    for item in snapshot
        .scan(root, ts, ScanOrder::Ascending)?
        .take(SEAL_PROBE)
    {
        let (_, version) = item?;
        if let Some(value) = version.value
            && (value.len() < 1 + NONCE_LEN + TAG_LEN || value.first() != Some(&SEAL_FORMAT))
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The authenticated data of a sealed value: the format byte and the full key.
fn aad(key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(1 + key.len());
    aad.push(SEAL_FORMAT);
    aad.extend_from_slice(key);
    aad
}

fn open_value(aead: &LessSafeKey, key: &[u8], mut stored: Vec<u8>) -> Result<Vec<u8>, KvError> {
    let failed = || {
        KvError::Corrupt(format!(
            "a value of database {} fails its integrity check",
            database_of(key)
        ))
    };
    if stored.len() < 1 + NONCE_LEN + TAG_LEN || stored.first() != Some(&SEAL_FORMAT) {
        return Err(failed());
    }
    let nonce = stored
        .get(1..1 + NONCE_LEN)
        .and_then(|n| Nonce::try_assume_unique_for_key(n).ok())
        .ok_or_else(failed)?;
    // `open_within` moves the plaintext to the front of the buffer.
    let len = aead
        .open_within(nonce, Aad::from(aad(key)), &mut stored, 1 + NONCE_LEN..)
        .map_err(|_| failed())?
        .len();
    stored.truncate(len);
    Ok(stored)
}

/// A [`Kv`] whose values are sealed per database (see the module docs).
pub struct SealedKv {
    inner: Arc<dyn Kv>,
    keys: Arc<DatabaseKeys>,
}

impl SealedKv {
    pub fn new(inner: Arc<dyn Kv>, keys: Arc<DatabaseKeys>) -> SealedKv {
        SealedKv { inner, keys }
    }

    /// The undecorated store (values as stored: sealed), for backups.
    pub fn inner(&self) -> &Arc<dyn Kv> {
        &self.inner
    }

    pub fn keys(&self) -> &Arc<DatabaseKeys> {
        &self.keys
    }
}

impl Kv for SealedKv {
    fn begin(&self) -> Result<Box<dyn Snapshot>, KvError> {
        Ok(Box::new(SealedSnapshot {
            inner: self.inner.begin()?,
            keys: Arc::clone(&self.keys),
        }))
    }

    fn commit(&self, mut txn: WriteSet, deadline: Option<Instant>) -> Result<Ts, CommitError> {
        for (key, value) in &mut txn.writes {
            if let Some(plain) = value {
                *plain = self.keys.seal(key, plain)?;
            }
        }
        self.inner.commit(txn, deadline)
    }

    fn last_commit_ts(&self) -> Ts {
        self.inner.last_commit_ts()
    }

    fn prune(&self, range: KeyRange, horizon: Ts, max_keys: usize) -> Result<PruneStats, KvError> {
        self.inner.prune(range, horizon, max_keys)
    }

    // Sealing adds no commits or batches of its own: the store's counters are the answer
    // (without this, /metrics loses the commit series on every encrypted store).
    fn commit_stats(&self) -> Option<testudo_storage::CommitStats> {
        self.inner.commit_stats()
    }

    fn close(&self) -> Result<(), KvError> {
        self.inner.close()
    }
}

struct SealedSnapshot {
    inner: Box<dyn Snapshot>,
    keys: Arc<DatabaseKeys>,
}

impl SealedSnapshot {
    fn open(&self, key: &[u8], version: Version) -> Result<Version, KvError> {
        Ok(Version {
            ts: version.ts,
            value: version
                .value
                .map(|v| self.keys.unseal(key, version.ts, v))
                .transpose()?,
        })
    }
}

impl Snapshot for SealedSnapshot {
    fn ts(&self) -> Ts {
        self.inner.ts()
    }

    fn get(&self, key: &[u8], at: Ts) -> Result<Option<Version>, KvError> {
        self.inner
            .get(key, at)?
            .map(|v| self.open(key, v))
            .transpose()
    }

    fn scan<'a>(
        &'a self,
        range: KeyRange,
        at: Ts,
        order: ScanOrder,
    ) -> Result<ScanIter<'a>, KvError> {
        let iter = self.inner.scan(range, at, order)?;
        Ok(Box::new(iter.map(move |item| {
            let (key, version) = item?;
            let version = self.open(&key, version)?;
            Ok((key, version))
        })))
    }

    fn scan_with_tombstones<'a>(
        &'a self,
        range: KeyRange,
        at: Ts,
    ) -> Result<ScanIter<'a>, KvError> {
        let iter = self.inner.scan_with_tombstones(range, at)?;
        Ok(Box::new(iter.map(move |item| {
            let (key, version) = item?;
            let version = self.open(&key, version)?;
            Ok((key, version))
        })))
    }

    fn versions<'a>(
        &'a self,
        key: &[u8],
        ts_range: (Bound<Ts>, Bound<Ts>),
    ) -> Result<VersionIter<'a>, KvError> {
        let owned = key.to_vec();
        let iter = self.inner.versions(key, ts_range)?;
        Ok(Box::new(
            iter.map(move |item| item.and_then(|v| self.open(&owned, v))),
        ))
    }
}

#[cfg(test)]
mod tests {
    use testudo_storage::{LocalKv, LocalKvOptions, MemBackend};
    use zeroize::Zeroizing;

    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_bytes(&Zeroizing::new([3u8; 32]))
    }

    struct Fixture {
        dir: tempfile::TempDir,
        inner: Arc<dyn Kv>,
        sealed: SealedKv,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Kv> =
            Arc::new(LocalKv::open(MemBackend::new(), LocalKvOptions::default()).unwrap());
        let keys = Arc::new(DatabaseKeys::open(dir.path(), master(), inner.as_ref()).unwrap());
        let sealed = SealedKv::new(Arc::clone(&inner), keys);
        Fixture { dir, inner, sealed }
    }

    fn key(db: u64, rest: &[u8]) -> Vec<u8> {
        let mut key = db.to_be_bytes().to_vec();
        key.extend_from_slice(rest);
        key
    }

    fn write(kv: &dyn Kv, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Ts {
        let snapshot_ts = kv.begin().unwrap().ts();
        kv.commit(
            WriteSet {
                snapshot_ts,
                writes,
                ..WriteSet::default()
            },
            None,
        )
        .unwrap()
    }

    fn get(kv: &dyn Kv, key: &[u8]) -> Result<Option<Version>, KvError> {
        let snapshot = kv.begin()?;
        let ts = snapshot.ts();
        snapshot.get(key, ts)
    }

    #[test]
    fn values_are_sealed_in_the_inner_store_and_open_through_the_decorator() {
        let f = fixture();
        let marker = b"canary-per-database-7f3e".to_vec();
        write(&f.sealed, vec![(key(5, b"doc"), Some(marker.clone()))]);
        let raw = get(f.inner.as_ref(), &key(5, b"doc")).unwrap().unwrap();
        let stored = raw.value.unwrap();
        assert!(!stored.windows(marker.len()).any(|w| w == marker.as_slice()));
        assert_eq!(stored.len(), marker.len() + 1 + NONCE_LEN + TAG_LEN);
        let opened = get(&f.sealed, &key(5, b"doc")).unwrap().unwrap();
        assert_eq!(opened.value, Some(marker));
        assert_eq!(opened.ts, raw.ts);
    }

    #[test]
    fn the_store_s_commit_counters_show_through_the_decorator() {
        let f = fixture();
        write(&f.sealed, vec![(key(5, b"doc"), Some(b"v".to_vec()))]);
        let stats = f
            .sealed
            .commit_stats()
            .expect("the inner store keeps counters");
        assert_eq!(Some(stats), f.inner.commit_stats());
        assert_eq!(stats.commits, 1);
    }

    #[test]
    fn a_sealed_value_copied_under_another_key_fails_its_integrity_check() {
        let f = fixture();
        write(&f.sealed, vec![(key(5, b"a"), Some(b"secret".to_vec()))]);
        // The same database and another database (whose key exists too).
        write(&f.sealed, vec![(key(6, b"a"), Some(b"other".to_vec()))]);
        let stored = get(f.inner.as_ref(), &key(5, b"a"))
            .unwrap()
            .unwrap()
            .value
            .unwrap();
        write(
            f.inner.as_ref(),
            vec![
                (key(5, b"b"), Some(stored.clone())),
                (key(6, b"a"), Some(stored)),
            ],
        );
        for moved in [key(5, b"b"), key(6, b"a")] {
            let err = get(&f.sealed, &moved).unwrap_err();
            assert!(
                matches!(&err, KvError::Corrupt(m) if m.contains("fails its integrity check")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_flipped_bit_in_a_sealed_value_is_reported_never_returned() {
        let f = fixture();
        write(&f.sealed, vec![(key(5, b"a"), Some(b"secret".to_vec()))]);
        let stored = get(f.inner.as_ref(), &key(5, b"a"))
            .unwrap()
            .unwrap()
            .value
            .unwrap();
        for i in 0..stored.len() {
            let mut damaged = stored.clone();
            damaged[i] ^= 0x10;
            write(f.inner.as_ref(), vec![(key(5, b"a"), Some(damaged))]);
            assert!(
                matches!(get(&f.sealed, &key(5, b"a")), Err(KvError::Corrupt(_))),
                "byte {i}"
            );
        }
    }

    #[test]
    fn a_shredded_database_reads_as_shredded_and_refuses_writes_but_not_tombstones() {
        let f = fixture();
        write(
            &f.sealed,
            vec![
                (key(5, b"a"), Some(b"gone".to_vec())),
                (key(9, b"a"), Some(b"kept".to_vec())),
            ],
        );
        f.sealed.keys().shred(&[5]).unwrap();
        assert!(f.sealed.keys().is_shredded(5) && !f.sealed.keys().is_shredded(9));
        let err = get(&f.sealed, &key(5, b"a")).unwrap_err();
        assert!(err.to_string().contains("crypto-shredded"), "{err}");
        assert_eq!(
            get(&f.sealed, &key(9, b"a")).unwrap().unwrap().value,
            Some(b"kept".to_vec())
        );
        let refused = f.sealed.commit(
            WriteSet {
                snapshot_ts: f.sealed.last_commit_ts(),
                writes: vec![(key(5, b"new"), Some(b"x".to_vec()))],
                ..WriteSet::default()
            },
            None,
        );
        assert!(refused.is_err());
        // Reclaiming a shredded database needs no key: tombstones are not sealed.
        write(&f.sealed, vec![(key(5, b"a"), None)]);
        assert_eq!(get(&f.sealed, &key(5, b"a")).unwrap().unwrap().value, None);
        // The key is gone from the file for good, and a reopened keyring still says why.
        let reopened = DatabaseKeys::open(f.dir.path(), master(), f.inner.as_ref()).unwrap();
        assert_eq!(reopened.databases(), vec![9]);
        let err = reopened
            .unseal(&key(5, b"x"), Ts(99), vec![1; 40])
            .unwrap_err();
        assert!(err.to_string().contains("crypto-shredded"), "{err}");
    }

    #[test]
    fn scans_and_versions_unseal_and_keep_tombstones() {
        let f = fixture();
        let first = write(&f.sealed, vec![(key(5, b"a"), Some(b"one".to_vec()))]);
        write(
            &f.sealed,
            vec![
                (key(5, b"a"), Some(b"two".to_vec())),
                (key(5, b"b"), Some(b"bee".to_vec())),
            ],
        );
        write(&f.sealed, vec![(key(5, b"b"), None)]);
        let snapshot = f.sealed.begin().unwrap();
        let ts = snapshot.ts();
        let scanned: Vec<(Vec<u8>, Option<Vec<u8>>)> = snapshot
            .scan(KeyRange::prefix(&key(5, b"")), ts, ScanOrder::Ascending)
            .unwrap()
            .map(|r| r.map(|(k, v)| (k, v.value)).unwrap())
            .collect();
        assert_eq!(scanned, vec![(key(5, b"a"), Some(b"two".to_vec()))]);
        let history: Vec<Option<Vec<u8>>> = snapshot
            .versions(&key(5, b"a"), (Bound::Unbounded, Bound::Unbounded))
            .unwrap()
            .map(|v| v.unwrap().value)
            .collect();
        assert_eq!(history, vec![Some(b"two".to_vec()), Some(b"one".to_vec())]);
        let old = snapshot.get(&key(5, b"a"), first).unwrap().unwrap();
        assert_eq!(old.value, Some(b"one".to_vec()));
        let b: Vec<Option<Vec<u8>>> = snapshot
            .versions(&key(5, b"b"), (Bound::Unbounded, Bound::Unbounded))
            .unwrap()
            .map(|v| v.unwrap().value)
            .collect();
        assert_eq!(b, vec![None, Some(b"bee".to_vec())]);
    }

    #[test]
    fn keys_persist_across_reopen_and_unseal_opens_raw_values() {
        let f = fixture();
        write(&f.sealed, vec![(key(7, b"a"), Some(b"kept".to_vec()))]);
        let raw = get(f.inner.as_ref(), &key(7, b"a")).unwrap().unwrap();
        let reopened = DatabaseKeys::open(f.dir.path(), master(), f.inner.as_ref()).unwrap();
        assert_eq!(
            reopened
                .unseal(&key(7, b"a"), raw.ts, raw.value.unwrap())
                .unwrap(),
            b"kept".to_vec()
        );
        assert!(matches!(
            DatabaseKeys::open(
                f.dir.path(),
                MasterKey::from_bytes(&Zeroizing::new([4u8; 32])),
                f.inner.as_ref()
            ),
            Err(KeyError::WrongMasterKey { .. })
        ));
    }

    #[test]
    fn versions_written_before_per_database_keys_are_returned_as_stored() {
        let dir = tempfile::tempdir().unwrap();
        let inner: Arc<dyn Kv> =
            Arc::new(LocalKv::open(MemBackend::new(), LocalKvOptions::default()).unwrap());
        // As the engine does: the root's schema marker is an empty value.
        write(inner.as_ref(), vec![(key(0, b"marker"), Some(Vec::new()))]);
        write(
            inner.as_ref(),
            vec![(key(5, b"a"), Some(b"legacy".to_vec()))],
        );
        let keys = Arc::new(DatabaseKeys::open(dir.path(), master(), inner.as_ref()).unwrap());
        let sealed = SealedKv::new(Arc::clone(&inner), keys);
        assert_eq!(
            get(&sealed, &key(5, b"a")).unwrap().unwrap().value,
            Some(b"legacy".to_vec())
        );
        write(&sealed, vec![(key(5, b"a"), Some(b"new".to_vec()))]);
        assert_eq!(
            get(&sealed, &key(5, b"a")).unwrap().unwrap().value,
            Some(b"new".to_vec())
        );
        assert_ne!(
            get(inner.as_ref(), &key(5, b"a")).unwrap().unwrap().value,
            Some(b"new".to_vec())
        );
    }

    #[test]
    fn a_store_of_sealed_values_without_its_key_file_is_refused() {
        let f = fixture();
        write(&f.sealed, vec![(key(0, b"marker"), Some(Vec::new()))]);
        write(&f.sealed, vec![(key(5, b"a"), Some(b"x".to_vec()))]);
        std::fs::remove_file(f.dir.path().join(DB_KEYS_FILE)).unwrap();
        let err = DatabaseKeys::open(f.dir.path(), master(), f.inner.as_ref()).unwrap_err();
        assert!(err.to_string().contains("copy the `dbkeys` file"), "{err}");
        assert!(!f.dir.path().join(DB_KEYS_FILE).exists());
    }

    #[test]
    fn a_restored_store_adopts_the_copy_of_its_key_file() {
        let f = fixture();
        let mirror = tempfile::tempdir().unwrap();
        f.sealed.keys().mirror_to(mirror.path()).unwrap();
        write(&f.sealed, vec![(key(5, b"a"), Some(b"x".to_vec()))]);
        let restored = tempfile::tempdir().unwrap();
        assert!(adopt_db_keys(mirror.path(), restored.path()).unwrap());
        // Never over an existing key file.
        assert!(!adopt_db_keys(mirror.path(), restored.path()).unwrap());
        let keys = DatabaseKeys::open(restored.path(), master(), f.inner.as_ref()).unwrap();
        assert_eq!(keys.databases(), vec![5]);
    }

    #[test]
    fn a_mirror_follows_every_change_of_the_key_file() {
        let f = fixture();
        let mirror = tempfile::tempdir().unwrap();
        f.sealed.keys().mirror_to(mirror.path()).unwrap();
        write(&f.sealed, vec![(key(5, b"a"), Some(b"x".to_vec()))]);
        f.sealed.keys().shred(&[5]).unwrap();
        assert_eq!(
            std::fs::read(mirror.path().join(DB_KEYS_FILE)).unwrap(),
            std::fs::read(f.dir.path().join(DB_KEYS_FILE)).unwrap()
        );
        let copy = DbKeysFile::load(mirror.path()).unwrap().unwrap();
        assert!(copy.shredded.contains_key(&5));
    }
}
