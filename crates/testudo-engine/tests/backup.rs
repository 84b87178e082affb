//! The FQL `Backup` module as a specification, over an in-memory [`BackupService`]: who may
//! use it, what a restore copies (and what it never copies), that nothing of a failed
//! restore becomes visible, schedule validation, and the audit records.

#![allow(clippy::unwrap_used)] // test support: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use common::{ROOT, fails, ok, scoped, secret_of};
use serde_json::json;
use testudo_audit::{AuditEvent, MemorySink};
use testudo_auth::SecretHash;
use testudo_engine::backup::{
    BackupCounts, BackupFailure, BackupRecord, BackupService, BackupSource, BackupSummary, DbId,
    ScheduleStatus,
};
use testudo_engine::{Engine, EngineConfig, EngineOptions};
use testudo_storage::{KeyRange, Kv, LocalKv, ScanOrder};

/// Backups kept in memory, one chunk of at most `chunk` records at a time; a backup whose
/// name starts with `poisoned` fails after its first chunks (a file damaged midway).
type Taken = (u64, Vec<BackupRecord>);

struct MemoryBackups {
    kv: Arc<dyn Kv>,
    chunk: usize,
    /// By (owner, name): the snapshot timestamp and the records.
    backups: Mutex<BTreeMap<(u64, String), Taken>>,
}

impl std::fmt::Debug for MemoryBackups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryBackups")
    }
}

impl MemoryBackups {
    fn snapshot(&self, prefixes: &[Vec<u8>]) -> (u64, Vec<BackupRecord>) {
        let snapshot = self.kv.begin().unwrap();
        let ts = snapshot.ts();
        let ranges = if prefixes.is_empty() {
            vec![KeyRange {
                start: Vec::new(),
                end: None,
            }]
        } else {
            prefixes.iter().map(|p| KeyRange::prefix(p)).collect()
        };
        let mut records = Vec::new();
        for range in ranges {
            for item in snapshot.scan(range, ts, ScanOrder::Ascending).unwrap() {
                let (key, _) = item.unwrap();
                let versions = snapshot
                    .versions(&key, (Bound::Unbounded, Bound::Included(ts)))
                    .unwrap()
                    .map(|v| {
                        let v = v.unwrap();
                        (v.ts.0, v.value)
                    })
                    .collect();
                records.push(BackupRecord { key, versions });
            }
        }
        (ts.0, records)
    }

    /// Copies `name` of `owner` as a backup that fails after its first chunks.
    fn poison(&self, owner: u64, name: &str, poisoned: &str) {
        let mut backups = self.backups.lock().unwrap();
        let copy = backups.get(&(owner, name.to_string())).unwrap().clone();
        backups.insert((owner, poisoned.to_string()), copy);
    }
}

impl BackupService for MemoryBackups {
    fn create(&self, owner: DbId, prefixes: Vec<Vec<u8>>) -> Result<BackupSummary, BackupFailure> {
        let (ts, records) = self.snapshot(&prefixes);
        let mut backups = self.backups.lock().unwrap();
        let name = format!("mem-{}.tbk", backups.len());
        let summary = BackupSummary {
            name: name.clone(),
            snapshot_ts: ts,
            created_unix_ms: ts / 1000,
            bytes: 0,
            encrypted: false,
            counts: Some(BackupCounts {
                databases: 1,
                keys: records.len() as u64,
                versions: 0,
            }),
        };
        backups.insert((owner.0, name), (ts, records));
        Ok(summary)
    }

    fn list(&self, owner: DbId) -> Result<Vec<BackupSummary>, BackupFailure> {
        Ok(self
            .backups
            .lock()
            .unwrap()
            .iter()
            .filter(|((o, _), _)| *o == owner.0)
            .map(|((_, name), (ts, _))| BackupSummary {
                name: name.clone(),
                snapshot_ts: *ts,
                created_unix_ms: ts / 1000,
                bytes: 0,
                encrypted: false,
                counts: None,
            })
            .collect())
    }

    fn status(&self, _owner: DbId) -> Option<ScheduleStatus> {
        None
    }

    fn open(&self, owner: DbId, name: &str) -> Result<Box<dyn BackupSource>, BackupFailure> {
        let backups = self.backups.lock().unwrap();
        let Some((ts, records)) = backups.get(&(owner.0, name.to_string())) else {
            return Err(BackupFailure::NotFound(format!("no backup named `{name}`")));
        };
        Ok(Box::new(MemorySource {
            ts: *ts,
            records: records.clone(),
            chunk: self.chunk,
            at: 0,
            poisoned: name.starts_with("poisoned"),
        }))
    }

    fn location(&self, owner: DbId, name: &str) -> String {
        format!("memory:{}/{name}", owner.0)
    }
}

struct MemorySource {
    ts: u64,
    records: Vec<BackupRecord>,
    chunk: usize,
    at: usize,
    poisoned: bool,
}

impl BackupSource for MemorySource {
    fn snapshot_ts(&self) -> u64 {
        self.ts
    }

    fn next_chunk(&mut self) -> Result<Option<Vec<BackupRecord>>, BackupFailure> {
        if self.at >= self.records.len() {
            return Ok(None);
        }
        // Damaged past its middle: found only while copying (a real file fails verification
        // before; this checks the engine does not rely on that).
        if self.poisoned && self.at * 2 >= self.records.len() {
            return Err(BackupFailure::Unusable("chunk 7 is damaged".into()));
        }
        let end = (self.at + self.chunk).min(self.records.len());
        let out = self.records[self.at..end].to_vec();
        self.at = end;
        Ok(Some(out))
    }

    fn rewind(&mut self) -> Result<(), BackupFailure> {
        self.at = 0;
        Ok(())
    }
}

fn engine_with_backups() -> (Engine, Arc<MemoryBackups>, Arc<MemorySink>) {
    let kv: Arc<dyn Kv> = Arc::new(LocalKv::in_memory().unwrap());
    let backups = Arc::new(MemoryBackups {
        kv: kv.clone(),
        chunk: 100,
        backups: Mutex::new(BTreeMap::new()),
    });
    let audit = Arc::new(MemorySink::new());
    let options = EngineOptions {
        backups: Some(backups.clone()),
        audit: Some(audit.clone()),
        ..EngineOptions::default()
    };
    let config = EngineConfig {
        root_secret: SecretHash::of(ROOT),
    };
    (
        Engine::open_with(kv, config, options).unwrap(),
        backups,
        audit,
    )
}

#[test]
fn a_restore_copies_documents_indexes_and_schema_but_never_keys() {
    let (e, _, _) = engine_with_backups();
    ok(&e, ROOT, "Database.create({ name: 'app' })");
    let app = scoped("app");
    ok(
        &e,
        &app,
        "Collection.create({ name: 'Order', indexes: { byCustomer: { terms: [{ field: 'customer' }] } } })",
    );
    ok(
        &e,
        &app,
        "Set.sequence(0, 30).forEach(i => Order.create({ customer: if (i % 2 == 0) 'ann' else 'bob', total: i }))",
    );
    let old_key = secret_of(&ok(&e, &app, "Key.create({ role: 'admin' })"));
    let name = ok(&e, &app, "Backup.create().name");
    ok(&e, &app, "Order.all().forEach(.delete())");

    let restored = ok(
        &e,
        &app,
        &format!(
            "Backup.restore({{ backup: '{}', name: 'copy' }})",
            name.as_str().unwrap()
        ),
    );
    assert_eq!(restored["databases"], json!(1));
    // A child of the caller: `app/copy`.
    let copy = format!("{ROOT}:app/copy:admin");
    assert_eq!(ok(&e, &copy, "Order.all().count()"), json!(30));
    assert_eq!(ok(&e, &copy, "Order.byCustomer('ann').count()"), json!(15));
    assert_eq!(ok(&e, &copy, "Key.all().count()"), json!(0));
    // The old key opens the old database only.
    assert_eq!(ok(&e, &old_key, "Order.all().count()"), json!(0));
}

#[test]
fn a_collection_or_function_named_backup_hides_the_module_in_its_database_only() {
    // A Fauna application may already have a `Backup` collection: Testudo's module must not
    // break it, nor hide it.
    let (e, _, _) = engine_with_backups();
    ok(&e, ROOT, "Database.create({ name: 'legacy' })");
    let legacy = scoped("legacy");
    ok(&e, &legacy, "Collection.create({ name: 'Backup' })");
    ok(&e, &legacy, "Backup.create({ note: 'a user document' })");
    assert_eq!(ok(&e, &legacy, "Backup.all().count()"), json!(1));
    assert_eq!(
        ok(&e, &legacy, "Backup.all().first()!.note"),
        json!("a user document")
    );
    // Elsewhere the name is still the module.
    assert!(ok(&e, ROOT, "Backup.create().name").is_string());
    // A function of that name too.
    ok(&e, ROOT, "Database.create({ name: 'fn' })");
    let with_fn = scoped("fn");
    ok(
        &e,
        &with_fn,
        "Function.create({ name: 'Backup', body: 'x => x + 1' })",
    );
    assert_eq!(ok(&e, &with_fn, "Backup(41)"), json!(42));
}

#[test]
fn only_an_admin_reaches_backups_and_an_unconfigured_server_says_so() {
    let (e, _, _) = engine_with_backups();
    let server = secret_of(&ok(&e, ROOT, "Key.create({ role: 'server' })"));
    for fql in [
        "Backup.create()",
        "Backup.all()",
        "Backup.status()",
        "Backup.restore({ backup: 'x.tbk', name: 'y' })",
    ] {
        fails(&e, &server, fql, "permission_denied");
    }
    let plain = common::engine();
    fails(&plain, ROOT, "Backup.create()", "disabled_feature");
    fails(
        &plain,
        ROOT,
        "Database.create({ name: 'a', backup: { every: '6h', keep: 2 } })",
        "constraint_failure",
    );
}

#[test]
fn a_restore_that_fails_midway_leaves_nothing_visible() {
    let (e, backups, audit) = engine_with_backups();
    ok(&e, ROOT, "Collection.create({ name: 'Item' })");
    ok(
        &e,
        ROOT,
        "Set.sequence(0, 3000).forEach(i => Item.create({ i: i }))",
    );
    let name = ok(&e, ROOT, "Backup.create().name");
    backups.poison(0, name.as_str().unwrap(), "poisoned.tbk");
    fails(
        &e,
        ROOT,
        "Backup.restore({ backup: 'poisoned.tbk', name: 'half' })",
        "invalid_argument",
    );
    assert_eq!(ok(&e, ROOT, "Database.byName('half') == null"), json!(true));
    assert_eq!(ok(&e, ROOT, "Database.all().count()"), json!(0));
    let restores: Vec<_> = audit
        .events()
        .into_iter()
        .filter_map(|event| match event {
            AuditEvent::Backup(record) => Some(record),
            _ => None,
        })
        .collect();
    assert_eq!(restores.len(), 2, "{restores:?}");
    assert!(restores[0].outcome.is_ok() && restores[0].operation == "backup");
    assert!(!restores[1].outcome.is_ok() && restores[1].operation == "restore");
    // Both name who asked: here the root secret.
    for record in &restores {
        assert_eq!(record.credential, Some(testudo_audit::CredentialRef::Root));
    }
    // The same backup, undamaged, restores whole.
    let restored = ok(
        &e,
        ROOT,
        &format!(
            "Backup.restore({{ backup: '{}', name: 'whole' }})",
            name.as_str().unwrap()
        ),
    );
    assert_eq!(restored["documents"], json!(3000));
    assert_eq!(ok(&e, &scoped("whole"), "Item.all().count()"), json!(3000));
}

#[test]
fn backup_create_refuses_to_follow_a_write_in_the_same_query() {
    let (e, _, _) = engine_with_backups();
    ok(&e, ROOT, "Collection.create({ name: 'Item' })");
    fails(
        &e,
        ROOT,
        "Item.create({ i: 1 }); Backup.create()",
        "invalid_effect",
    );
    assert_eq!(ok(&e, ROOT, "Item.all().count()"), json!(0));
    assert_eq!(ok(&e, ROOT, "Backup.all().length"), json!(0));
}

#[test]
fn backup_schedules_are_validated_strictly_and_listed_by_the_engine() {
    let (e, _, _) = engine_with_backups();
    for bad in [
        "{ every: '30s', keep: 2 }",
        "{ every: '6 h', keep: 2 }",
        "{ every: 6, keep: 2 }",
        "{ every: '6h', keep: 0 }",
        "{ every: '6h', keep: 1001 }",
        "{ every: '6h' }",
        "{ every: '6h', keep: 2, at: '01:00' }",
        "true",
    ] {
        fails(
            &e,
            ROOT,
            &format!("Database.create({{ name: 'a', backup: {bad} }})"),
            "constraint_failure",
        );
    }
    ok(
        &e,
        ROOT,
        "Database.create({ name: 'a', backup: { every: '6h', keep: 28 } })",
    );
    ok(&e, &scoped("a"), "Database.create({ name: 'b' })");
    let schedules = e.backup_schedules().unwrap();
    assert_eq!(schedules.len(), 1);
    assert_eq!(schedules[0].path, "a");
    assert_eq!(schedules[0].keep, 28);
    assert_eq!(schedules[0].every.as_secs(), 6 * 3600);
    // The database and its child.
    assert_eq!(schedules[0].prefixes.len(), 2);
    assert_eq!(
        ok(&e, ROOT, "Database.byName('a')!.backup"),
        json!({ "every": "6h", "keep": 28 })
    );
    ok(&e, ROOT, "Database.byName('a')!.update({ backup: null })");
    assert!(e.backup_schedules().unwrap().is_empty());
}
