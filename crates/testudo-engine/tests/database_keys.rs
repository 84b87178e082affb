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
use testudo_storage::{Kv, LocalKv};

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
fn opening_the_engine_destroys_keys_of_unreachable_databases() {
    let kv: Arc<dyn Kv> = Arc::new(LocalKv::in_memory().unwrap());
    let (e, _) = open(&kv, Vec::new());
    ok(&e, ROOT, "Database.create({ name: 'kept' }); null");
    drop(e);
    let (_e, recorder) = open(&kv, vec![DbId::ROOT, DbId(987_654_321)]);
    let calls = recorder.shredded.lock().unwrap().clone();
    assert_eq!(calls, vec![vec![DbId(987_654_321)]]);
}
