//! The engine's side of per-database keys: after a commit that deletes databases, the keyring
//! is told to destroy the keys of each deleted database and of all its descendants (and of
//! nothing else); when the engine opens, keys of databases that are not reachable go too.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ROOT, ok, scoped};
use testudo_auth::SecretHash;
use testudo_engine::{DatabaseKeyring, Engine, EngineConfig, EngineOptions};
use testudo_model::DbId;
use testudo_storage::{
    CommitError, KeyRange, Kv, KvError, LocalKv, PruneStats, ScanIter, ScanOrder, Snapshot, Ts,
    Version, VersionIter, WriteSet,
};

/// A store that behaves like per-database sealing after a shred: any value of a database in
/// `dead` read through it is an error (the engine must read such databases only through the
/// store as stored, [`DatabaseKeyring::raw_kv`]).
struct Shreddable {
    inner: Arc<dyn Kv>,
    dead: Arc<Mutex<Vec<DbId>>>,
}

struct ShreddableSnapshot {
    inner: Box<dyn Snapshot>,
    dead: Arc<Mutex<Vec<DbId>>>,
}

impl ShreddableSnapshot {
    fn check(&self, key: &[u8], version: &Version) -> Result<(), KvError> {
        let db = DbId(u64::from_be_bytes(key[..8].try_into().unwrap()));
        if version.value.is_some() && self.dead.lock().unwrap().contains(&db) {
            return Err(KvError::Corrupt(format!("database {} was shredded", db.0)));
        }
        Ok(())
    }
}

impl Kv for Shreddable {
    fn begin(&self) -> Result<Box<dyn Snapshot>, KvError> {
        Ok(Box::new(ShreddableSnapshot {
            inner: self.inner.begin()?,
            dead: Arc::clone(&self.dead),
        }))
    }
    fn commit(
        &self,
        txn: WriteSet,
        deadline: Option<std::time::Instant>,
    ) -> Result<Ts, CommitError> {
        self.inner.commit(txn, deadline)
    }
    fn last_commit_ts(&self) -> Ts {
        self.inner.last_commit_ts()
    }
    fn prune(&self, range: KeyRange, horizon: Ts, max_keys: usize) -> Result<PruneStats, KvError> {
        self.inner.prune(range, horizon, max_keys)
    }
    fn close(&self) -> Result<(), KvError> {
        self.inner.close()
    }
}

impl Snapshot for ShreddableSnapshot {
    fn ts(&self) -> Ts {
        self.inner.ts()
    }
    fn get(&self, key: &[u8], at: Ts) -> Result<Option<Version>, KvError> {
        let found = self.inner.get(key, at)?;
        if let Some(version) = &found {
            self.check(key, version)?;
        }
        Ok(found)
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
            self.check(&key, &version)?;
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
            self.check(&key, &version)?;
            Ok((key, version))
        })))
    }
    fn versions<'a>(
        &'a self,
        key: &[u8],
        ts_range: (std::ops::Bound<Ts>, std::ops::Bound<Ts>),
    ) -> Result<VersionIter<'a>, KvError> {
        let owned = key.to_vec();
        let iter = self.inner.versions(key, ts_range)?;
        Ok(Box::new(iter.map(move |item| {
            let version = item?;
            self.check(&owned, &version)?;
            Ok(version)
        })))
    }
}

struct Recorder {
    kv: Arc<dyn Kv>,
    keyed: Vec<DbId>,
    shredded: Mutex<Vec<Vec<DbId>>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recorder")
    }
}

impl DatabaseKeyring for Recorder {
    fn shred(&self, dbs: &[DbId]) -> Result<(), String> {
        self.shredded.lock().unwrap().push(dbs.to_vec());
        Ok(())
    }
    fn databases(&self) -> Vec<DbId> {
        self.keyed.clone()
    }
    fn raw_kv(&self) -> Arc<dyn Kv> {
        Arc::clone(&self.kv)
    }
}

fn open(kv: &Arc<dyn Kv>, keyed: Vec<DbId>) -> (Engine, Arc<Recorder>) {
    let recorder = Arc::new(Recorder {
        kv: Arc::clone(kv),
        keyed,
        shredded: Mutex::new(Vec::new()),
    });
    let engine = Engine::open_with(
        Arc::clone(kv),
        EngineConfig {
            root_secret: SecretHash::of(ROOT),
        },
        EngineOptions {
            database_keys: Some(recorder.clone()),
            ..EngineOptions::default()
        },
    )
    .unwrap();
    (engine, recorder)
}

#[test]
fn deleting_a_database_destroys_its_key_and_its_descendants_keys_only() {
    let kv: Arc<dyn Kv> = Arc::new(LocalKv::in_memory().unwrap());
    let (e, recorder) = open(&kv, Vec::new());
    ok(&e, ROOT, "Database.create({ name: 'a' }); null");
    ok(&e, ROOT, "Database.create({ name: 'sibling' }); null");
    ok(&e, &scoped("a"), "Database.create({ name: 'b' }); null");
    ok(
        &e,
        &scoped("a"),
        "Collection.create({ name: 'Things' }); null",
    );
    ok(&e, &scoped("a"), "Things.create({ n: 1 }); null");
    assert!(recorder.shredded.lock().unwrap().is_empty());

    // A deletion that aborts commits nothing and destroys nothing.
    let _ = common::q(&e, ROOT, "Database.byName('a')!.delete(); abort(0)");
    assert!(recorder.shredded.lock().unwrap().is_empty());

    ok(&e, ROOT, "Database.byName('a')!.delete(); null");
    let calls = recorder.shredded.lock().unwrap().clone();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].len(), 2, "a and its child b: {calls:?}");
    assert!(!calls[0].contains(&DbId::ROOT));
    // The sibling is untouched and still works.
    ok(
        &e,
        &scoped("sibling"),
        "Collection.create({ name: 'Ok' }); null",
    );
    assert_eq!(recorder.shredded.lock().unwrap().len(), 1);

    // The reclaimer removes the deleted databases' data through the store as stored.
    e.reclaim_now_with_min_retention(Duration::ZERO).unwrap();
}

#[test]
fn the_reclaimer_removes_a_shredded_database_without_reading_its_values() {
    let inner: Arc<dyn Kv> = Arc::new(LocalKv::in_memory().unwrap());
    let dead = Arc::new(Mutex::new(Vec::new()));
    let kv: Arc<dyn Kv> = Arc::new(Shreddable {
        inner: Arc::clone(&inner),
        dead: Arc::clone(&dead),
    });
    let recorder = Arc::new(Recorder {
        kv: Arc::clone(&inner),
        keyed: Vec::new(),
        shredded: Mutex::new(Vec::new()),
    });
    let e = Engine::open_with(
        kv,
        EngineConfig {
            root_secret: SecretHash::of(ROOT),
        },
        EngineOptions {
            database_keys: Some(recorder.clone()),
            ..EngineOptions::default()
        },
    )
    .unwrap();
    ok(&e, ROOT, "Database.create({ name: 'gone' }); null");
    ok(&e, ROOT, "Database.create({ name: 'stays' }); null");
    for db in ["gone", "stays"] {
        ok(
            &e,
            &scoped(db),
            "Collection.create({ name: 'Things' }); null",
        );
        ok(&e, &scoped(db), "Things.create({ n: 1 }); null");
    }
    ok(&e, ROOT, "Database.byName('gone')!.delete(); null");
    let shredded = recorder.shredded.lock().unwrap().concat();
    assert_eq!(shredded.len(), 1);
    dead.lock().unwrap().extend(shredded.iter().copied());

    e.reclaim_now_with_min_retention(Duration::ZERO).unwrap();
    let snapshot = inner.begin().unwrap();
    let left = snapshot
        .scan(
            KeyRange::prefix(&shredded[0].0.to_be_bytes()),
            snapshot.ts(),
            ScanOrder::Ascending,
        )
        .unwrap()
        .count();
    assert_eq!(left, 0, "the deleted database still has live keys");
    assert_eq!(ok(&e, &scoped("stays"), "Things.all().count()"), 1);
}

#[test]
fn opening_the_engine_destroys_keys_of_deleted_databases_and_keeps_unknown_ones() {
    let kv: Arc<dyn Kv> = Arc::new(LocalKv::in_memory().unwrap());
    let (e, recorder) = open(&kv, Vec::new());
    ok(&e, ROOT, "Database.create({ name: 'kept' }); null");
    ok(&e, ROOT, "Database.create({ name: 'gone' }); null");
    ok(&e, ROOT, "Database.byName('gone')!.delete(); null");
    // As if that shred had failed: the key is still there at the next start.
    let gone = recorder.shredded.lock().unwrap().concat();
    assert_eq!(gone.len(), 1);
    drop(e);
    // An id the registry does not know (a database created after the backup this store was
    // restored from) keeps its key.
    let unknown = DbId(987_654_321);
    let (_e, recorder) = open(&kv, vec![DbId::ROOT, gone[0], unknown]);
    let calls = recorder.shredded.lock().unwrap().clone();
    assert_eq!(calls, vec![gone]);
}
