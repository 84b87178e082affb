//! Backups end to end at the `Kv` level: consistency under concurrent writers, history and
//! timestamps surviving a restore, encrypted stores, prefixes, retention and the schedule.

// Tests may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used)]

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use testudo_backup::{
    BackupError, BackupScheduler, EntryStatus, KEPT_PREFIX, ScheduleConfig, SnapshotOptions,
    create_backup, list_backups, no_progress, prune, restore_into, restore_to_dir, verify,
};
use testudo_storage::{
    CommitError, KeyRange, Kv, LocalKv, LocalKvOptions, MemBackend, ScanOrder, Ts, Version,
    WriteSet,
};
use testudo_storage_redb::keys::{KEY_LEN, MasterKey};
use testudo_storage_redb::open_store;
use zeroize::Zeroizing;

const ACCOUNTS: u64 = 20;
const START: u64 = 1_000;

fn account(i: u64) -> Vec<u8> {
    let mut key = 0u64.to_be_bytes().to_vec();
    key.extend_from_slice(b"acct");
    key.extend_from_slice(&i.to_be_bytes());
    key
}

fn amount(value: &[u8]) -> u64 {
    u64::from_be_bytes(value.try_into().unwrap())
}

fn write(kv: &dyn Kv, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Ts {
    let txn = WriteSet {
        snapshot_ts: kv.begin().unwrap().ts(),
        writes,
        ..Default::default()
    };
    kv.commit(txn, None).unwrap()
}

/// Moves `n` from one account to another in one conflict-checked transaction.
fn transfer(kv: &dyn Kv, from: u64, to: u64, n: u64) -> Result<Ts, CommitError> {
    let snapshot = kv.begin()?;
    let ts = snapshot.ts();
    let read = |i| {
        amount(
            &snapshot
                .get(&account(i), ts)
                .unwrap()
                .unwrap()
                .value
                .unwrap(),
        )
    };
    let (a, b) = (read(from), read(to));
    let n = n.min(a);
    let txn = WriteSet {
        snapshot_ts: ts,
        read_keys: vec![account(from), account(to)],
        writes: vec![
            (account(from), Some((a - n).to_be_bytes().to_vec())),
            (account(to), Some((b + n).to_be_bytes().to_vec())),
        ],
        ..Default::default()
    };
    kv.commit(txn, None)
}

fn all_versions(kv: &dyn Kv, at: Ts) -> Vec<(Vec<u8>, Vec<Version>)> {
    let snapshot = kv.begin().unwrap();
    let everything = KeyRange {
        start: Vec::new(),
        end: None,
    };
    snapshot
        .scan(everything, at, ScanOrder::Ascending)
        .unwrap()
        .map(|item| {
            let (key, _) = item.unwrap();
            let versions = snapshot
                .versions(&key, (Bound::Unbounded, Bound::Included(at)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            (key, versions)
        })
        .collect()
}

#[test]
fn a_snapshot_taken_under_concurrent_transfers_restores_the_invariant_total() {
    let source = Arc::new(LocalKv::in_memory().unwrap());
    write(
        source.as_ref(),
        (0..ACCOUNTS)
            .map(|i| (account(i), Some(START.to_be_bytes().to_vec())))
            .collect(),
    );
    // Filler keys make the scan long enough for transfers to commit while it runs.
    for batch in 0..10u64 {
        write(
            source.as_ref(),
            (0..500u64)
                .map(|i| {
                    let mut key = 1u64.to_be_bytes().to_vec();
                    key.extend_from_slice(&(batch * 500 + i).to_be_bytes());
                    (key, Some(vec![7u8; 200]))
                })
                .collect(),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..2u64)
        .map(|seed| {
            let (kv, stop, done) = (source.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut state = seed * 7 + 3;
                while !stop.load(Ordering::Relaxed) {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    let from = (state >> 33) % ACCOUNTS;
                    let to = (from + 1 + (state >> 40) % (ACCOUNTS - 1)) % ACCOUNTS;
                    match transfer(kv.as_ref(), from, to, (state >> 50) % 100) {
                        Ok(_) => {
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(CommitError::Conflict) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    while done.load(Ordering::Relaxed) < 100 {
        std::thread::yield_now();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut backups = Vec::new();
    for _ in 0..3 {
        let before = done.load(Ordering::Relaxed);
        backups.push(
            create_backup(
                source.as_ref(),
                dir.path(),
                &SnapshotOptions::default(),
                &no_progress,
            )
            .unwrap(),
        );
        while done.load(Ordering::Relaxed) < before + 50 {
            std::thread::yield_now();
        }
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }

    for backup in backups {
        let ts = Ts(backup.manifest.snapshot_ts);
        let backend = MemBackend::new();
        restore_into(&backup.path, None, &backend, &no_progress).unwrap();
        let restored = LocalKv::open(backend, LocalKvOptions::default()).unwrap();
        assert!(restored.last_commit_ts() >= ts);

        let now = restored.begin().unwrap();
        let total: u64 = (0..ACCOUNTS)
            .map(|i| {
                amount(
                    &now.get(&account(i), now.ts())
                        .unwrap()
                        .unwrap()
                        .value
                        .unwrap(),
                )
            })
            .sum();
        assert_eq!(total, ACCOUNTS * START);
        // Every key, with its whole history, equals the source at the snapshot timestamp.
        assert_eq!(
            all_versions(&restored, ts),
            all_versions(source.as_ref(), ts)
        );
        assert_eq!(
            all_versions(&restored, now.ts()),
            all_versions(source.as_ref(), ts)
        );
        // New commits land after the snapshot.
        assert!(write(&restored, vec![(account(0), None)]) > ts);
    }
}

fn master(byte: u8) -> MasterKey {
    MasterKey::from_bytes(&Zeroizing::new([byte; KEY_LEN]))
}

/// A redb store with history, a deleted key and two databases' keys.
fn history_store(dir: &Path, key: Option<&MasterKey>) -> Ts {
    let kv = open_store(dir, key, LocalKvOptions::default()).unwrap();
    let db = |id: u64, rest: &[u8]| {
        let mut key = id.to_be_bytes().to_vec();
        key.extend_from_slice(rest);
        key
    };
    for round in 0..3u8 {
        write(
            &kv,
            (0..100u8)
                .map(|i| (db(u64::from(i % 2), &[1, i]), Some(vec![round, i])))
                .collect(),
        );
    }
    write(
        &kv,
        vec![(db(0, &[1, 0]), None), (db(5, b"x"), Some(b"y".to_vec()))],
    );
    let ts = kv.last_commit_ts();
    kv.close().unwrap();
    ts
}

#[test]
fn an_encrypted_store_restores_with_history_and_timestamps_into_a_new_directory() {
    let root = tempfile::tempdir().unwrap();
    let key = master(3);
    let source_dir = root.path().join("source");
    history_store(&source_dir, Some(&key));
    let source = open_store(&source_dir, Some(&key), LocalKvOptions::default()).unwrap();
    let options = SnapshotOptions {
        master: Some(&key),
        ..Default::default()
    };
    let backup = create_backup(
        &source,
        &root.path().join("backups"),
        &options,
        &no_progress,
    )
    .unwrap();
    let manifest = &backup.manifest;
    assert_eq!(manifest.encryption, "aes-256-gcm");
    assert_eq!(manifest.key_id, Some(key.fingerprint().to_string()));
    // 100 keys of database 0 and 1, three versions each (one of them then deleted: its
    // tombstone and history are kept); one of db 5.
    assert_eq!(manifest.keys, 101);
    assert_eq!(manifest.tombstones, 1);
    assert_eq!(
        manifest.databases.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![0, 1, 5]
    );
    assert_eq!(manifest.databases[0].keys, 50);

    let target = root.path().join("restored");
    let report = restore_to_dir(&backup.path, Some(&key), &target, &no_progress).unwrap();
    assert_eq!(report.manifest.versions, manifest.versions);
    let restored = open_store(&target, Some(&key), LocalKvOptions::default()).unwrap();
    let ts = Ts(manifest.snapshot_ts);
    assert!(restored.last_commit_ts() >= ts);
    assert_eq!(all_versions(&restored, ts), all_versions(&source, ts));
    // Reads at an older timestamp see the old versions, at their original timestamps.
    let early = all_versions(&source, ts)[0].1.last().unwrap().ts;
    // A key deleted by the snapshot is there too, with its history: before its deletion it
    // reads as it did.
    let expected = all_versions(&source, early);
    assert_eq!(expected[0].0, [&0u64.to_be_bytes()[..], &[1, 0]].concat());
    assert_eq!(all_versions(&restored, early), expected);
    let deleted_key = &expected[0].0;
    let now = restored.begin().unwrap();
    assert_eq!(now.get(deleted_key, now.ts()).unwrap().unwrap().value, None);
    drop(now);
    restored.close().unwrap();

    // An existing empty directory is a valid target too (a mount point, say).
    let empty = root.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    restore_to_dir(&backup.path, Some(&key), &empty, &no_progress).unwrap();
    let again = open_store(&empty, Some(&key), LocalKvOptions::default()).unwrap();
    assert_eq!(all_versions(&again, ts), all_versions(&source, ts));
    again.close().unwrap();

    // The restored store is encrypted: it does not open without the key.
    assert!(open_store(&target, None, LocalKvOptions::default()).is_err());
    // A non-empty target is refused, and nothing in it changes.
    let error = restore_to_dir(&backup.path, Some(&key), &target, &no_progress).unwrap_err();
    assert!(matches!(error, BackupError::NotEmpty(_)), "{error}");
    // The wrong key and no key are refused before anything is created.
    let other = root.path().join("other");
    let error = restore_to_dir(&backup.path, Some(&master(4)), &other, &no_progress).unwrap_err();
    assert!(matches!(error, BackupError::WrongKey { .. }), "{error}");
    let error = restore_to_dir(&backup.path, None, &other, &no_progress).unwrap_err();
    assert!(matches!(error, BackupError::NeedsKey { .. }), "{error}");
    assert!(!other.exists());
}

#[test]
fn a_truncated_or_damaged_backup_is_refused_before_anything_is_written() {
    let root = tempfile::tempdir().unwrap();
    history_store(&root.path().join("source"), None);
    let source = open_store(&root.path().join("source"), None, LocalKvOptions::default()).unwrap();
    let backup = create_backup(
        &source,
        root.path(),
        &SnapshotOptions::default(),
        &no_progress,
    )
    .unwrap();
    let bytes = std::fs::read(&backup.path).unwrap();
    let target = root.path().join("target");

    std::fs::write(&backup.path, &bytes[..bytes.len() - 20]).unwrap();
    let error = restore_to_dir(&backup.path, None, &target, &no_progress).unwrap_err();
    assert!(matches!(error, BackupError::Truncated(_)), "{error}");
    assert!(!target.exists());

    let mut damaged = bytes.clone();
    damaged[200] ^= 0x80;
    std::fs::write(&backup.path, &damaged).unwrap();
    let error = restore_to_dir(&backup.path, None, &target, &no_progress).unwrap_err();
    assert!(error.to_string().contains("chunk 0 is damaged"), "{error}");
    assert!(!target.exists());
    // Nothing but the backup and the source are left behind (no staging directory).
    let names: Vec<_> = std::fs::read_dir(root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_prefix_filter_keeps_only_the_named_databases() {
    let root = tempfile::tempdir().unwrap();
    history_store(&root.path().join("source"), None);
    let source = open_store(&root.path().join("source"), None, LocalKvOptions::default()).unwrap();
    let options = SnapshotOptions {
        prefixes: vec![1u64.to_be_bytes().to_vec(), 5u64.to_be_bytes().to_vec()],
        ..Default::default()
    };
    let backup = create_backup(&source, root.path(), &options, &no_progress).unwrap();
    let ids: Vec<u64> = backup.manifest.databases.iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![1, 5]);
    assert_eq!(backup.manifest.keys, 51);
    assert_eq!(backup.manifest.prefixes.len(), 2);
    let report = verify(&backup.path, None, &no_progress).unwrap();
    assert_eq!(report.manifest.unwrap().keys, 51);
}

#[test]
fn restoring_into_a_store_that_holds_data_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let source = LocalKv::in_memory().unwrap();
    write(&source, vec![(b"k".to_vec(), Some(b"v".to_vec()))]);
    let backup = create_backup(
        &source,
        root.path(),
        &SnapshotOptions::default(),
        &no_progress,
    )
    .unwrap();
    let error = restore_into(&backup.path, None, source.backend(), &no_progress).unwrap_err();
    assert!(matches!(error, BackupError::NotEmpty(_)), "{error}");
}

#[test]
fn pruning_keeps_the_newest_complete_backups_and_never_touches_other_files() {
    let root = tempfile::tempdir().unwrap();
    let kv = LocalKv::in_memory().unwrap();
    let mut paths = Vec::new();
    for i in 0..4u8 {
        write(&kv, vec![(vec![i], Some(vec![i]))]);
        paths.push(
            create_backup(&kv, root.path(), &SnapshotOptions::default(), &no_progress)
                .unwrap()
                .path,
        );
    }
    std::fs::write(root.path().join(".abc.partial"), b"half").unwrap();
    std::fs::write(root.path().join("junk.tbk"), b"not a backup").unwrap();
    std::fs::write(root.path().join("notes.txt"), b"keep me").unwrap();
    let listed = list_backups(root.path()).unwrap();
    assert_eq!(listed.len(), 6);
    assert!(matches!(listed[0].status, EntryStatus::Complete(_)));
    assert_eq!(listed[0].path, paths[0]);

    let report = prune(root.path(), 2).unwrap();
    assert_eq!(report.removed, paths[..2].to_vec());
    assert_eq!(report.kept, paths[2..].to_vec());
    assert_eq!(report.skipped.len(), 2);
    for name in [".abc.partial", "junk.tbk", "notes.txt"] {
        assert!(root.path().join(name).exists(), "{name}");
    }
    assert!(prune(root.path(), 0).is_err());
}

#[test]
fn pruning_never_deletes_a_backup_made_on_request() {
    let root = tempfile::tempdir().unwrap();
    let kv = LocalKv::in_memory().unwrap();
    let kept_options = SnapshotOptions {
        kept: true,
        ..SnapshotOptions::default()
    };
    write(&kv, vec![(vec![1], Some(vec![1]))]);
    let asked = create_backup(&kv, root.path(), &kept_options, &no_progress).unwrap();
    let name = asked.path.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with(KEPT_PREFIX), "{name}");
    let mut scheduled = Vec::new();
    for i in 2..5u8 {
        write(&kv, vec![(vec![i], Some(vec![i]))]);
        let created =
            create_backup(&kv, root.path(), &SnapshotOptions::default(), &no_progress).unwrap();
        scheduled.push(created.path);
    }

    let report = prune(root.path(), 1).unwrap();
    assert_eq!(report.removed, scheduled[..2].to_vec());
    assert_eq!(report.kept, scheduled[2..].to_vec());
    assert!(asked.path.exists());
    assert!(report.skipped.iter().any(|(path, _)| *path == asked.path));
    // Still listed (and restorable) like any other backup.
    assert!(
        list_backups(root.path())
            .unwrap()
            .iter()
            .any(|e| e.path == asked.path)
    );
}

#[test]
fn the_schedule_takes_a_backup_prunes_and_reports_its_status() {
    let root = tempfile::tempdir().unwrap();
    let kv: Arc<dyn Kv> = Arc::new(LocalKv::in_memory().unwrap());
    write(kv.as_ref(), vec![(b"k".to_vec(), Some(b"v".to_vec()))]);
    let config = ScheduleConfig {
        dir: root.path().to_path_buf(),
        every: Duration::from_secs(3600),
        keep: 2,
        prefixes: Vec::new(),
        master: Some(Arc::new(master(9))),
        on_run: None,
        duty: None,
    };
    // The directory is empty, so the first backup is due at once; two more on demand.
    let scheduler = BackupScheduler::start(kv.clone(), config.clone()).unwrap();
    for runs in 1..=3 {
        while scheduler.status().runs < runs {
            std::thread::sleep(Duration::from_millis(10));
        }
        if runs < 3 {
            scheduler.run_now();
        }
    }
    let status = scheduler.status();
    scheduler.stop();
    assert_eq!(status.failures, 0);
    assert!(status.last_success.is_some() && status.last_error.is_none());
    let last = status.last_backup.unwrap();
    assert!(
        verify(&last, Some(&master(9)), &no_progress)
            .unwrap()
            .authenticated
    );
    assert_eq!(list_backups(root.path()).unwrap().len(), 2);

    // Restarted with a fresh backup in the directory, the next run waits a full period.
    let scheduler = BackupScheduler::start(kv, config).unwrap();
    let next = loop {
        if let Some(next) = scheduler.status().next_run {
            break next;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(next > std::time::SystemTime::now() + Duration::from_secs(3000));
    assert_eq!(scheduler.status().runs, 0);
    scheduler.stop();
}
