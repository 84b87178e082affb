//! What a redb store keeps across close and reopen, and which files it refuses.

// Tests may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used)]

use std::ops::Bound;

use testudo_storage::{KeyRange, Kv, KvError, ScanOrder, Ts, WriteSet};
use testudo_storage_redb::{DATA_FILE, open};

fn put(kv: &dyn Kv, key: &str, value: Option<&str>) -> Ts {
    let snapshot_ts = kv.begin().unwrap().ts();
    let writes = vec![(
        key.as_bytes().to_vec(),
        value.map(|v| v.as_bytes().to_vec()),
    )];
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

#[test]
fn data_and_history_survive_close_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path()).unwrap();
    let t1 = put(&*kv, "a", Some("1"));
    let t2 = put(&*kv, "a", Some("2"));
    let t3 = put(&*kv, "b", Some("x"));
    let t4 = put(&*kv, "b", None);
    kv.close().unwrap();
    drop(kv);

    let kv = open(dir.path()).unwrap();
    assert_eq!(kv.last_commit_ts(), t4);
    let s = kv.begin().unwrap();
    let versions: Vec<Ts> = s
        .versions(b"a", (Bound::Unbounded, Bound::Unbounded))
        .unwrap()
        .map(|v| v.unwrap().ts)
        .collect();
    assert_eq!(versions, vec![t2, t1]);
    let now: Vec<Vec<u8>> = s
        .scan(KeyRange::prefix(b""), s.ts(), ScanOrder::Ascending)
        .unwrap()
        .map(|item| item.unwrap().0)
        .collect();
    assert_eq!(now, vec![b"a".to_vec()]);
    assert_eq!(s.get(b"b", t3).unwrap().unwrap().value, Some(b"x".to_vec()));
    kv.close().unwrap();
}

#[test]
fn pruned_history_stays_gone_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path()).unwrap();
    put(&*kv, "a", Some("1"));
    let t2 = put(&*kv, "a", Some("2"));
    put(&*kv, "b", Some("x"));
    let t4 = put(&*kv, "b", None);
    let stats = kv.prune(KeyRange::prefix(b""), t4, 100).unwrap();
    assert_eq!((stats.keys_scanned, stats.versions_removed), (2, 3));
    kv.close().unwrap();
    drop(kv);

    let kv = open(dir.path()).unwrap();
    assert_eq!(kv.last_commit_ts(), t4);
    let s = kv.begin().unwrap();
    let history = |key: &[u8]| -> Vec<Ts> {
        s.versions(key, (Bound::Unbounded, Bound::Unbounded))
            .unwrap()
            .map(|v| v.unwrap().ts)
            .collect()
    };
    assert_eq!(history(b"a"), vec![t2]);
    assert_eq!(history(b"b"), Vec::new());
    let again = kv.prune(KeyRange::prefix(b""), t4, 100).unwrap();
    assert_eq!((again.keys_scanned, again.versions_removed), (1, 0));
    kv.close().unwrap();
}

#[test]
fn timestamps_keep_increasing_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path()).unwrap();
    put(&*kv, "a", Some("1"));
    let last_read = kv.begin().unwrap().ts();
    let last_commit = put(&*kv, "a", Some("2"));
    kv.close().unwrap();
    drop(kv);

    let kv = open(dir.path()).unwrap();
    let read = kv.begin().unwrap().ts();
    assert!(read > last_commit && read > last_read);
    assert!(put(&*kv, "a", Some("3")) > read);
    kv.close().unwrap();
}

#[test]
fn a_store_dropped_without_close_is_closed_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path()).unwrap();
    let ts = put(&*kv, "k", Some("v"));
    drop(kv);
    let kv = open(dir.path()).unwrap();
    let s = kv.begin().unwrap();
    assert_eq!(s.get(b"k", s.ts()).unwrap().unwrap().ts, ts);
    kv.close().unwrap();
}

#[test]
fn a_file_with_an_unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    open(dir.path()).unwrap().close().unwrap();
    {
        let db = redb::Database::open(dir.path().join(DATA_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let meta: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
            let mut meta = txn.open_table(meta).unwrap();
            meta.insert("format_version", 99).unwrap();
        }
        txn.commit().unwrap();
    }
    match open(dir.path()) {
        Err(KvError::Corrupt(message)) => assert!(message.contains("99"), "{message}"),
        Err(other) => panic!("expected Corrupt, got {other:?}"),
        Ok(_) => panic!("a file with format version 99 was opened"),
    }
}

#[test]
fn a_file_that_is_not_a_redb_database_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DATA_FILE), vec![0x5a; 64 * 1024]).unwrap();
    assert!(matches!(
        open(dir.path()),
        Err(KvError::Corrupt(_) | KvError::Io(_))
    ));
}
