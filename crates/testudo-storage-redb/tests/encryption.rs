//! An encrypted store directory through the public API: what it refuses, what reaches the
//! disk, and key rotation.

// Tests may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use testudo_storage::{Kv, KvError, LocalKvOptions, Ts, WriteSet};
use testudo_storage_redb::keys::{KeyError, Keyring, MasterKey};
use testudo_storage_redb::{
    DATA_FILE, ENCRYPTED_DATA_FILE, StoreError, StoreKind, open_encrypted_file, open_store,
    request_rotation, rotate_data, rotate_master, rotation_status, store_kind, verify_store,
};
use zeroize::Zeroizing;

const MARKER: &str = "ZEBRA-canary-91c3f0";

fn master(byte: u8) -> MasterKey {
    MasterKey::from_bytes(&Zeroizing::new([byte; 32]))
}

fn put(kv: &dyn Kv, key: &str, value: &str) -> Ts {
    let snapshot_ts = kv.begin().unwrap().ts();
    kv.commit(
        WriteSet {
            snapshot_ts,
            writes: vec![(key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()))],
            ..WriteSet::default()
        },
        None,
    )
    .unwrap()
}

fn get(kv: &dyn Kv, key: &str) -> Option<String> {
    let s = kv.begin().unwrap();
    s.get(key.as_bytes(), s.ts())
        .unwrap()
        .and_then(|v| v.value)
        .map(|v| String::from_utf8(v).unwrap())
}

fn open(dir: &Path, key: Option<&MasterKey>) -> Result<impl Kv + use<>, StoreError> {
    open_store(dir, key, LocalKvOptions::default())
}

/// Every file of `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A store in a fresh directory with 50 marker documents, closed.
fn store_with_markers(key: &MasterKey) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let kv = open(dir.path(), Some(key)).unwrap();
    for i in 0..50 {
        put(&kv, &format!("doc/{i}"), &format!("{MARKER} number {i}"));
    }
    kv.close().unwrap();
    dir
}

#[test]
fn an_encrypted_store_keeps_its_data_and_no_plaintext_reaches_the_disk() {
    let dir = store_with_markers(&master(1));
    assert_eq!(store_kind(dir.path()).unwrap(), StoreKind::Encrypted);
    for (name, bytes) in snapshot(dir.path()) {
        assert!(
            !contains(&bytes, MARKER.as_bytes()),
            "{name} holds the marker"
        );
        assert!(!contains(&bytes, b"doc/"), "{name} holds a key");
    }
    let report = verify_store(dir.path(), &master(1)).unwrap();
    assert!(report.blocks > 1);
    assert_eq!(report.failed_count, 0);
    let kv = open(dir.path(), Some(&master(1))).unwrap();
    assert_eq!(get(&kv, "doc/7").unwrap(), format!("{MARKER} number 7"));
}

#[test]
fn the_wrong_master_key_fails_fast_and_changes_nothing() {
    let dir = store_with_markers(&master(1));
    let before = snapshot(dir.path());
    let err = open(dir.path(), Some(&master(2))).err().unwrap();
    assert!(
        matches!(err, StoreError::Key(KeyError::WrongMasterKey { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("the master key does not unwrap this store's data key"),
        "{err}"
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn an_encrypted_store_without_a_key_and_a_plaintext_store_with_one_are_refused() {
    let encrypted = store_with_markers(&master(1));
    assert!(matches!(
        open(encrypted.path(), None).err().unwrap(),
        StoreError::NeedsKey { .. }
    ));

    let plain = tempfile::tempdir().unwrap();
    open(plain.path(), None).unwrap().close().unwrap();
    assert!(plain.path().join(DATA_FILE).exists());
    let before = snapshot(plain.path());
    assert!(matches!(
        open(plain.path(), Some(&master(1))).err().unwrap(),
        StoreError::NotEncrypted { .. }
    ));
    assert_eq!(snapshot(plain.path()), before);
}

#[test]
fn a_data_file_without_its_keyring_is_refused() {
    let dir = store_with_markers(&master(1));
    std::fs::remove_file(Keyring::path(dir.path())).unwrap();
    let err = open(dir.path(), Some(&master(1))).err().unwrap();
    assert!(matches!(err, StoreError::Inconsistent(_)), "{err}");
}

#[test]
fn a_tampered_block_is_an_integrity_error_never_data() {
    let key = master(1);
    let dir = store_with_markers(&key);
    let file = open_encrypted_file(dir.path(), &key).unwrap();
    let block = (1..file.blocks())
        .find(|&i| {
            file.read_block(i)
                .unwrap()
                .is_ok_and(|plain| contains(&plain, b"number 7"))
        })
        .unwrap();
    let at = file.physical_range(block).unwrap().start + 40;
    drop(file);
    let path = dir.path().join(ENCRYPTED_DATA_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[usize::try_from(at).unwrap()] ^= 0x04;
    std::fs::write(&path, &bytes).unwrap();

    let report = verify_store(dir.path(), &key).unwrap();
    assert_eq!(report.failed, vec![block]);
    assert_eq!(report.failed_count, 1);

    let expect = format!("integrity check failed at block {block}");
    match open(dir.path(), Some(&key)) {
        // redb's debug builds read every page while opening.
        Err(StoreError::Kv(KvError::Corrupt(message))) => {
            assert!(message.contains(&expect), "{message}");
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(kv) => {
            let s = kv.begin().unwrap();
            let err = s.get(b"doc/7", s.ts()).unwrap_err();
            assert!(
                matches!(&err, KvError::Corrupt(m) if m.contains(&expect)),
                "{err}"
            );
        }
    }
}

#[test]
fn rotating_the_master_key_rewraps_without_touching_the_data() {
    let dir = store_with_markers(&master(1));
    let data_before = std::fs::read(dir.path().join(ENCRYPTED_DATA_FILE)).unwrap();
    rotate_master(dir.path(), &master(1), &master(2)).unwrap();
    assert_eq!(
        std::fs::read(dir.path().join(ENCRYPTED_DATA_FILE)).unwrap(),
        data_before
    );
    assert!(matches!(
        open(dir.path(), Some(&master(1))).err().unwrap(),
        StoreError::Key(KeyError::WrongMasterKey { .. })
    ));
    let kv = open(dir.path(), Some(&master(2))).unwrap();
    assert_eq!(get(&kv, "doc/3").unwrap(), format!("{MARKER} number 3"));
}

#[test]
fn rotating_the_master_key_needs_the_old_one() {
    let dir = store_with_markers(&master(1));
    let before = snapshot(dir.path());
    let err = rotate_master(dir.path(), &master(9), &master(2)).unwrap_err();
    assert!(matches!(
        err,
        StoreError::Key(KeyError::WrongMasterKey { .. })
    ));
    let after = snapshot(dir.path());
    assert_eq!(after.get("keyring"), before.get("keyring"));
}

#[test]
fn rotating_the_data_key_reseals_every_block_under_a_new_key() {
    let key = master(1);
    let dir = store_with_markers(&key);
    let old = std::fs::read(dir.path().join(ENCRYPTED_DATA_FILE)).unwrap();
    let old_ids = Keyring::load(dir.path())
        .unwrap()
        .unwrap()
        .ids_labelled("store");
    let mut calls = 0;
    let report = rotate_data(dir.path(), &key, &mut |_, _| calls += 1).unwrap();
    assert!(calls > 0);
    assert!(report.blocks > 0);
    let keyring = Keyring::load(dir.path()).unwrap().unwrap();
    assert_eq!(keyring.ids_labelled("store"), vec![report.new_key_id]);
    assert!(!old_ids.contains(&report.new_key_id));

    let new = std::fs::read(dir.path().join(ENCRYPTED_DATA_FILE)).unwrap();
    assert_eq!(new.len(), old.len());
    // Every sealed block changed: compare 4124-byte blocks after the preamble.
    let changed = old[4096..]
        .chunks(4124)
        .zip(new[4096..].chunks(4124))
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        changed,
        old[4096..]
            .chunks(4124)
            .filter(|b| b.iter().any(|&x| x != 0))
            .count()
    );
    for (name, bytes) in snapshot(dir.path()) {
        assert!(
            !contains(&bytes, MARKER.as_bytes()),
            "{name} holds the marker"
        );
    }

    let kv = open(dir.path(), Some(&key)).unwrap();
    for i in 0..50 {
        assert_eq!(
            get(&kv, &format!("doc/{i}")).unwrap(),
            format!("{MARKER} number {i}")
        );
    }
    put(&kv, "after", "rotation");
    kv.close().unwrap();
    let kv = open(dir.path(), Some(&key)).unwrap();
    assert_eq!(get(&kv, "after").unwrap(), "rotation");
}

#[test]
fn the_data_key_is_not_rotated_under_a_running_store() {
    let key = master(1);
    let dir = store_with_markers(&key);
    let kv = open(dir.path(), Some(&key)).unwrap();
    let err = rotate_data(dir.path(), &key, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("is in use"), "{err}");
    assert_eq!(get(&kv, "doc/1").unwrap(), format!("{MARKER} number 1"));
}

#[test]
fn an_interrupted_data_rotation_leaves_a_store_that_opens() {
    let key = master(1);
    let dir = store_with_markers(&key);
    // What a crash between adding the new key and the rename leaves: an extra key in the
    // keyring and a half-written file beside the data.
    let mut keyring = Keyring::load(dir.path()).unwrap().unwrap();
    let extra = testudo_storage_redb::keys::DataKey::generate().unwrap();
    keyring.insert("store", &key, &extra).unwrap();
    keyring.save(dir.path()).unwrap();
    std::fs::write(dir.path().join("data.enc.rotate"), b"half written").unwrap();

    let kv = open(dir.path(), Some(&key)).unwrap();
    assert_eq!(get(&kv, "doc/2").unwrap(), format!("{MARKER} number 2"));
    kv.close().unwrap();
    // The next rotation cleans up and succeeds.
    rotate_data(dir.path(), &key, &mut |_, _| {}).unwrap();
    assert!(!dir.path().join("data.enc.rotate").exists());
    assert_eq!(
        Keyring::load(dir.path())
            .unwrap()
            .unwrap()
            .ids_labelled("store")
            .len(),
        1
    );
    let kv = open(dir.path(), Some(&key)).unwrap();
    assert_eq!(get(&kv, "doc/2").unwrap(), format!("{MARKER} number 2"));
}

fn store_keys(dir: &Path) -> Vec<u32> {
    Keyring::load(dir).unwrap().unwrap().ids_labelled("store")
}

#[test]
fn an_open_store_runs_a_requested_rotation_in_the_background() {
    let key = master(1);
    let dir = store_with_markers(&key);
    let kv = open(dir.path(), Some(&key)).unwrap();
    let old = store_keys(dir.path());
    let requested = request_rotation(dir.path(), &key).unwrap();
    assert_eq!(requested.from, old[0]);
    // Asking again while it runs names the same rotation.
    if let Ok(again) = request_rotation(dir.path(), &key) {
        assert_eq!((again.from, again.to), (requested.from, requested.to));
    }
    let mut i = 0u64;
    while rotation_status(dir.path()).unwrap().is_some() {
        put(&kv, &format!("during/{i}"), &format!("{MARKER} during {i}"));
        assert_eq!(get(&kv, "doc/7").unwrap(), format!("{MARKER} number 7"));
        i += 1;
        assert!(i < 1_000_000, "the rotation did not finish");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(store_keys(dir.path()), vec![requested.to]);
    kv.close().unwrap();
    let report = verify_store(dir.path(), &key).unwrap();
    assert_eq!(report.failed_count, 0);
    let kv = open(dir.path(), Some(&key)).unwrap();
    for n in 0..i {
        assert_eq!(
            get(&kv, &format!("during/{n}")).unwrap(),
            format!("{MARKER} during {n}")
        );
    }
    assert_eq!(get(&kv, "doc/49").unwrap(), format!("{MARKER} number 49"));
}

#[test]
fn a_rotation_requested_of_a_stopped_store_is_finished_offline() {
    let key = master(1);
    let dir = store_with_markers(&key);
    let requested = request_rotation(dir.path(), &key).unwrap();
    // Every block is readable under one of the two keys meanwhile.
    assert_eq!(verify_store(dir.path(), &key).unwrap().failed_count, 0);
    let report = rotate_data(dir.path(), &key, &mut |_, _| {}).unwrap();
    assert_eq!(
        (report.old_key_id, report.new_key_id),
        (requested.from, requested.to)
    );
    assert!(rotation_status(dir.path()).unwrap().is_none());
    assert_eq!(store_keys(dir.path()), vec![requested.to]);
    let kv = open(dir.path(), Some(&key)).unwrap();
    assert_eq!(get(&kv, "doc/3").unwrap(), format!("{MARKER} number 3"));
    kv.close().unwrap();
    // And a plain offline rotation after it works as before.
    rotate_data(dir.path(), &key, &mut |_, _| {}).unwrap();
    let kv = open(dir.path(), Some(&key)).unwrap();
    assert_eq!(get(&kv, "doc/3").unwrap(), format!("{MARKER} number 3"));
}
