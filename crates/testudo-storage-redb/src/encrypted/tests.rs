//! The encrypted backend under redb: round trips, tampering, wrong keys, and crash images built
//! by the fault injector (`fault.rs`).

use std::collections::BTreeMap;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, StorageBackend, TableDefinition,
};

use super::cipher::{BlockCipher, HeaderCopy};
use super::fault::{MemFile, Op, crash_image};
use super::layout::{
    BLOCK, BLOCK_U64, DATA_START, HEADER_SLOT, PREAMBLE, PREAMBLE_U64, Preamble, SEALED,
    SEALED_U64, block_offset, header_slot_offset, logical_len,
};
use super::open::{OpenFailure, new_preamble, open_database_on};
use super::{EncryptedBackend, HeaderChoice, IntegrityError, redb_unclean};
use crate::keys::DataKey;

const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("canary_table");

fn new_file(key: &DataKey) -> MemFile {
    let cipher = BlockCipher::new(key, new_preamble(1).unwrap());
    MemFile::with_bytes(cipher.seal_preamble().unwrap())
}

fn open_with(
    file: &MemFile,
    key: &DataKey,
    builder: &redb::Builder,
) -> Result<Database, OpenFailure> {
    let file = file.clone();
    open_database_on(
        &move || Ok(Box::new(file.clone()) as Box<dyn StorageBackend>),
        key,
        builder,
    )
    .map(|(db, _)| db)
}

fn open(file: &MemFile, key: &DataKey) -> Result<Database, OpenFailure> {
    open_with(file, key, &Database::builder())
}

fn put(db: &Database, key: u64, value: &[u8]) {
    let mut txn = db.begin_write().unwrap();
    txn.set_durability(Durability::Immediate).unwrap();
    txn.open_table(TABLE).unwrap().insert(key, value).unwrap();
    txn.commit().unwrap();
}

fn contents(db: &Database) -> Result<BTreeMap<u64, Vec<u8>>, redb::Error> {
    let txn = db.begin_read()?;
    let table = match txn.open_table(TABLE) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = BTreeMap::new();
    for item in table.iter()? {
        let (k, v) = item?;
        out.insert(k.value(), v.value().to_vec());
    }
    Ok(out)
}

/// The integrity error inside a redb error, if that is what it reports.
fn integrity(error: &redb::Error) -> Option<IntegrityError> {
    match error {
        redb::Error::Io(io) => IntegrityError::from_io(io).cloned(),
        _ => None,
    }
}

fn open_failure_integrity(failure: &OpenFailure) -> Option<IntegrityError> {
    match failure {
        OpenFailure::Redb(redb::DatabaseError::Storage(redb::StorageError::Io(io)))
        | OpenFailure::Io(io) => IntegrityError::from_io(io).cloned(),
        _ => None,
    }
}

fn cipher_of(file: &MemFile, key: &DataKey) -> BlockCipher {
    let preamble = Preamble::parse(&file.bytes()[..PREAMBLE]).unwrap();
    BlockCipher::new(key, preamble)
}

/// The data block whose plaintext contains `needle`.
fn block_containing(file: &MemFile, key: &DataKey, needle: &[u8]) -> u64 {
    let cipher = cipher_of(file, key);
    let bytes = file.bytes();
    let blocks = logical_len(bytes.len() as u64) / BLOCK_U64;
    (1..blocks)
        .find(|&i| {
            let start = usize::try_from(block_offset(i).unwrap()).unwrap();
            let mut sealed = bytes[start..start + SEALED].to_vec();
            cipher
                .open_block(i, &mut sealed)
                .is_ok_and(|plain| plain.windows(needle.len()).any(|w| w == needle))
        })
        .expect("some block holds the needle")
}

/// The plaintext of the newest header copy that authenticates.
fn newest_header(file: &MemFile, key: &DataKey) -> Box<[u8; BLOCK]> {
    let cipher = cipher_of(file, key);
    let bytes = file.bytes();
    (0..2u8)
        .filter_map(|slot| {
            let start = usize::try_from(header_slot_offset(slot)).unwrap();
            let mut copy = bytes[start..start + HEADER_SLOT].to_vec();
            match cipher.open_header(slot, &mut copy) {
                HeaderCopy::Valid { seq, plain } => Some((seq, plain)),
                _ => None,
            }
        })
        .max_by_key(|(seq, _)| *seq)
        .unwrap()
        .1
}

fn expected(pairs: &[(u64, &str)]) -> BTreeMap<u64, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| (*k, v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn data_round_trips_through_close_and_reopen() {
    let key = DataKey::generate().unwrap();
    let file = new_file(&key);
    {
        let db = open(&file, &key).unwrap();
        for i in 0..300 {
            put(&db, i, format!("value {i}").as_bytes());
        }
    }
    let db = open(&file, &key).unwrap();
    let all = contents(&db).unwrap();
    assert_eq!(all.len(), 300);
    assert_eq!(all[&299], b"value 299");
}

#[test]
fn no_plaintext_byte_reaches_the_file() {
    let key = DataKey::generate().unwrap();
    let file = new_file(&key);
    let marker = b"CANARY-4c1f9e-MARKER";
    {
        let db = open(&file, &key).unwrap();
        for i in 0..100 {
            put(&db, i, &[&marker[..], &i.to_le_bytes()].concat());
        }
    }
    let bytes = file.bytes();
    for needle in [&marker[..], b"canary_table", b"redb"] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle),
            "{} found in the file",
            String::from_utf8_lossy(needle)
        );
    }
    assert!(block_containing(&file, &key, marker) >= 1);
}

#[test]
fn a_flipped_byte_in_a_data_block_fails_the_read_of_that_block() {
    let key = DataKey::generate().unwrap();
    let file = new_file(&key);
    let mut builder = Database::builder();
    // No page cache: every read reaches the backend.
    builder.set_cache_size(0);
    let db = open_with(&file, &key, &builder).unwrap();
    for i in 0..50 {
        put(&db, i, format!("value-{i}-{}", "x".repeat(200)).as_bytes());
    }
    let block = block_containing(&file, &key, b"value-7-");
    file.flip(block_offset(block).unwrap() + 100, 0x01);

    let err = contents(&db).unwrap_err();
    let found = integrity(&err).expect("an integrity error");
    assert_eq!(found.block, block);
    assert!(
        err.to_string()
            .contains(&format!("integrity check failed at block {block}")),
        "{err}"
    );
    // And it reaches the store's users as corruption.
    let kv = crate::error::kv_error(err);
    assert!(matches!(kv, testudo_storage::KvError::Corrupt(_)), "{kv:?}");
}

#[test]
fn a_block_moved_to_another_position_fails_authentication() {
    let key = DataKey::generate().unwrap();
    let file = new_file(&key);
    let mut builder = Database::builder();
    builder.set_cache_size(0);
    let db = open_with(&file, &key, &builder).unwrap();
    for i in 0..50 {
        put(&db, i, format!("value-{i}-{}", "y".repeat(200)).as_bytes());
    }
    let target = block_containing(&file, &key, b"value-7-");
    let other = if target > 1 { target - 1 } else { target + 1 };
    // A valid sealed block from elsewhere in the same file, with the same key.
    file.copy_within(
        block_offset(other).unwrap(),
        block_offset(target).unwrap(),
        SEALED,
    );
    let err = contents(&db).unwrap_err();
    assert_eq!(integrity(&err).map(|i| i.block), Some(target), "{err}");
}

#[test]
fn another_data_key_is_refused_before_anything_is_read() {
    let key = DataKey::generate().unwrap();
    let file = new_file(&key);
    put(&open(&file, &key).unwrap(), 1, b"one");
    let before = file.bytes();
    let other = DataKey::generate().unwrap();
    assert!(matches!(open(&file, &other), Err(OpenFailure::WrongKey)));
    assert_eq!(file.bytes(), before);
}

#[test]
fn damage_after_a_clean_close_is_reported_and_nothing_is_written() {
    let key = DataKey::generate().unwrap();
    let file = new_file(&key);
    {
        let db = open(&file, &key).unwrap();
        put(&db, 1, b"one");
        put(&db, 2, format!("two-{}", "z".repeat(100)).as_bytes());
    }
    assert!(!redb_unclean(&newest_header(&file, &key)));
    let block = block_containing(&file, &key, b"two-");
    file.flip(block_offset(block).unwrap() + 20, 0x80);
    let before = file.bytes();
    // Debug builds of redb walk every page while opening, release builds do not: the damage
    // surfaces at the open or at the read, never as data and never as the older commit.
    match open(&file, &key) {
        Err(failure) => {
            let found = open_failure_integrity(&failure).expect("an integrity error");
            assert_eq!(found.block, block);
            assert_eq!(file.bytes(), before, "a failed open wrote to the file");
        }
        Ok(db) => {
            let err = contents(&db).unwrap_err();
            assert_eq!(integrity(&err).map(|i| i.block), Some(block));
        }
    }
}

#[test]
fn the_recovery_flag_is_where_redb_keeps_it() {
    let key = DataKey::generate().unwrap();
    let file = new_file(&key);
    let db = open(&file, &key).unwrap();
    put(&db, 1, b"one");
    assert!(redb_unclean(&newest_header(&file, &key)));
    drop(db);
    assert!(!redb_unclean(&newest_header(&file, &key)));
}

/// A store with commits {1: a} and {2: b} durable, and a recorded third commit {3: c}.
fn recorded_commit(key: &DataKey) -> (Vec<u8>, Vec<Op>) {
    let file = new_file(key);
    let db = open(&file, key).unwrap();
    put(&db, 1, b"a");
    put(&db, 2, b"b");
    let base = file.record();
    put(&db, 3, b"c");
    let ops = file.take_log();
    drop(db);
    (base, ops)
}

fn is_header_write(op: &Op) -> bool {
    matches!(op, Op::Write { offset, .. } if (PREAMBLE_U64..DATA_START).contains(offset))
}

fn state_after_crash(image: Vec<u8>, key: &DataKey) -> BTreeMap<u64, Vec<u8>> {
    let file = MemFile::with_bytes(image);
    let db = open(&file, key).unwrap_or_else(|e| panic!("the store does not open: {e:?}"));
    contents(&db).unwrap()
}

#[test]
fn a_header_write_torn_at_any_byte_leaves_the_last_or_the_previous_commit() {
    let key = DataKey::generate().unwrap();
    let (base, ops) = recorded_commit(&key);
    let previous = expected(&[(1, "a"), (2, "b")]);
    let last = expected(&[(1, "a"), (2, "b"), (3, "c")]);
    let headers: Vec<usize> = (0..ops.len())
        .filter(|&i| is_header_write(&ops[i]))
        .collect();
    assert!(!headers.is_empty(), "the commit wrote no header: {ops:?}");
    let mut outcomes = BTreeMap::new();
    for &h in &headers {
        for limit in 0..=HEADER_SLOT {
            // Every other write of the commit reached the disk; the header write stopped
            // after `limit` bytes.
            let image = crash_image(&base, &ops, |_, _| true, Some((h, limit)));
            let state = state_after_crash(image, &key);
            assert!(
                state == previous || state == last,
                "header write {h} torn at byte {limit}: {state:?}"
            );
            *outcomes.entry(state == last).or_insert(0) += 1;
            // The disk wrote in order and stopped inside the header write.
            let image = crash_image(&base, &ops, |i, _| i <= h, Some((h, limit)));
            let state = state_after_crash(image, &key);
            assert!(
                state == previous || state == last,
                "header write {h} torn at byte {limit}, later writes lost: {state:?}"
            );
        }
    }
    // Both outcomes happen: the torn writes fall back, the whole ones keep the commit.
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    // And with every write done, the commit is there.
    let image = crash_image(&base, &ops, |_, _| true, None);
    assert_eq!(state_after_crash(image, &key), last);
}

#[test]
fn a_commit_whose_pages_never_reached_the_disk_opens_at_the_previous_commit() {
    let key = DataKey::generate().unwrap();
    let (base, ops) = recorded_commit(&key);
    let previous = expected(&[(1, "a"), (2, "b")]);
    // Power loss with the page cache's own order: the header copies landed, the new pages
    // did not.
    let image = crash_image(&base, &ops, |_, op| is_header_write(op), None);
    assert_eq!(state_after_crash(image, &key), previous);
    // Or the pages landed torn.
    let pages: Vec<usize> = (0..ops.len())
        .filter(|&i| matches!(&ops[i], Op::Write { offset, .. } if *offset >= DATA_START))
        .collect();
    for &page in &pages {
        for limit in [1, SEALED / 2, SEALED - 1] {
            let image = crash_image(
                &base,
                &ops,
                |i, op| is_header_write(op) || i == page,
                Some((page, limit)),
            );
            let state = state_after_crash(image, &key);
            assert!(
                state == previous,
                "page write {page} torn at {limit}: {state:?}"
            );
        }
    }
}

#[test]
fn partial_writes_read_back_at_any_offset() {
    let key = DataKey::generate().unwrap();
    let file = new_file(&key);
    let preamble = Preamble::parse(&file.bytes()[..PREAMBLE]).unwrap();
    let reopen = || {
        let (backend, handle) =
            EncryptedBackend::open(Box::new(file.clone()), &key, preamble, HeaderChoice::Newest)
                .unwrap()
                .unwrap();
        handle.finish_open().unwrap();
        backend
    };
    let backend = reopen();
    let len = 6 * BLOCK;
    backend.set_len(len as u64).unwrap();
    let mut model = vec![0u8; len];
    // Fill every block once, as redb does before reading.
    backend.write(0, &model).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |bound: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        usize::try_from(seed % bound as u64).unwrap()
    };
    for round in 0..300u32 {
        let at = next(len);
        let n = 1 + next((len - at).min(3 * BLOCK));
        let fill = u8::try_from(round % 251).unwrap();
        backend.write(at as u64, &vec![fill; n]).unwrap();
        model[at..at + n].fill(fill);
        let from = next(len);
        let m = 1 + next(len - from);
        let mut out = vec![0u8; m];
        backend.read(from as u64, &mut out).unwrap();
        assert_eq!(out, model[from..from + m], "round {round}");
    }
    backend.sync_data().unwrap();
    drop(backend);
    let mut all = vec![0u8; len];
    reopen().read(0, &mut all).unwrap();
    assert_eq!(all, model);
}

#[test]
fn writes_past_the_end_and_odd_lengths_are_refused() {
    let key = DataKey::generate().unwrap();
    let file = new_file(&key);
    let preamble = Preamble::parse(&file.bytes()[..PREAMBLE]).unwrap();
    let (backend, handle) =
        EncryptedBackend::open(Box::new(file), &key, preamble, HeaderChoice::Newest)
            .unwrap()
            .unwrap();
    handle.finish_open().unwrap();
    backend.set_len(2 * BLOCK_U64).unwrap();
    assert!(backend.write(2 * BLOCK_U64 - 1, &[1, 2]).is_err());
    assert!(backend.set_len(100).is_err());
    let mut out = [0u8; 2];
    assert!(backend.read(2 * BLOCK_U64 - 1, &mut out).is_err());
    assert_eq!(SEALED_U64, 4124);
}
