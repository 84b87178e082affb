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

fn single(key: &DataKey, preamble: Preamble) -> super::Ciphers {
    super::Ciphers {
        seal: std::sync::Arc::new(BlockCipher::new(key, preamble)),
        old: None,
        cursor: 0,
    }
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
        let (backend, handle) = EncryptedBackend::open(
            Box::new(file.clone()),
            None,
            single(&key, preamble),
            HeaderChoice::Newest,
        )
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
    let (backend, handle) = EncryptedBackend::open(
        Box::new(file),
        None,
        single(&key, preamble),
        HeaderChoice::Newest,
    )
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

// ---- Online rotation of the data key (`rotation.rs`) ----

use std::sync::{Arc, Mutex};

use super::EncryptedHandle;
use super::fault::{Tape, crash_pair};
use super::open::{KeySet, open_database_with};
use super::rotation::{KeyWatch, Step};

/// Key ids in these tests: the old key is 1 (as `new_file` names it), the new one 2.
const OLD: u32 = 1;
const NEW: u32 = 2;
/// Blocks per batch in these tests: small, so that a rotation has many batches.
const TEST_BATCH: u64 = 4;

fn open_pair(
    data: &MemFile,
    journal: &MemFile,
    keys: &KeySet<'_>,
) -> Result<(Database, EncryptedHandle), OpenFailure> {
    let (data, journal) = (data.clone(), journal.clone());
    open_database_with(
        &move || Ok(Box::new(data.clone()) as Box<dyn StorageBackend>),
        Some(&move || Ok(Box::new(journal.clone()) as Box<dyn StorageBackend>)),
        keys,
        &Database::builder(),
    )
}

fn rotating<'a>(old: &'a DataKey, new: &'a DataKey) -> KeySet<'a> {
    KeySet {
        current: (NEW, new),
        previous: Some((OLD, old)),
    }
}

fn only(id: u32, key: &DataKey) -> KeySet<'_> {
    KeySet {
        current: (id, key),
        previous: None,
    }
}

/// Runs the pass to its end (bounded: a pass that never ends fails the test).
fn run_pass(handle: &EncryptedHandle) {
    for _ in 0..100_000 {
        match handle.rotation_step().unwrap() {
            Step::Finished { from, to } => {
                assert_eq!((from, to), (OLD, NEW));
                handle.end_rotation();
                return;
            }
            Step::Working => {}
            Step::Idle => panic!("no rotation is running"),
        }
    }
    panic!("the pass did not end");
}

/// A store with `n` committed values (some large, so the file has many blocks).
fn filled_store(key: &DataKey, n: u64) -> (MemFile, MemFile, BTreeMap<u64, Vec<u8>>) {
    let data = new_file(key);
    let journal = MemFile::default();
    let mut values = BTreeMap::new();
    let (db, _) = open_pair(&data, &journal, &only(OLD, key)).unwrap();
    for i in 0..n {
        let value = format!("value {i} ").repeat(if i % 10 == 0 { 400 } else { 3 });
        put(&db, i, value.as_bytes());
        values.insert(i, value.into_bytes());
    }
    drop(db);
    (data, journal, values)
}

/// Every data block of `data` is sealed under `key` (whose id the preamble must name), and
/// so are both header copies; the other blocks were never written, or (with `old`: after a
/// crash, a page torn while redb wrote it) at least are not under the old key.
fn assert_all_under(data: &MemFile, key: &DataKey, id: u32, old: Option<&DataKey>) {
    let cipher = cipher_of(data, key);
    assert_eq!(cipher.preamble().key_id, id);
    let bytes = data.bytes();
    assert!(cipher.verify_preamble(&bytes[..PREAMBLE]));
    for slot in 0..2u8 {
        let start = usize::try_from(header_slot_offset(slot)).unwrap();
        let mut copy = bytes[start..start + HEADER_SLOT].to_vec();
        assert!(
            matches!(
                cipher.open_header(slot, &mut copy),
                HeaderCopy::Valid { .. }
            ),
            "header copy {slot}"
        );
    }
    for i in 1..logical_len(bytes.len() as u64) / BLOCK_U64 {
        let start = usize::try_from(block_offset(i).unwrap()).unwrap();
        let mut sealed = bytes[start..start + SEALED].to_vec();
        let copy = sealed.clone();
        match (cipher.open_block(i, &mut sealed), old) {
            (Ok(_), _) => {}
            (Err(e), None) => {
                assert_eq!(e.failure, super::IntegrityFailure::Unwritten, "block {i}");
            }
            (Err(_), Some(old)) => {
                let old = cipher_of(data, old);
                let old = BlockCipher::new_for_tests(&old, OLD);
                assert!(old.open_block(i, &mut copy.clone()).is_err(), "block {i}");
            }
        }
    }
}

#[test]
fn a_rotation_reseals_everything_and_the_old_key_is_not_needed_afterwards() {
    let (old, new) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
    let (data, journal, mut values) = filled_store(&old, 200);
    {
        let (db, handle) = open_pair(&data, &journal, &only(OLD, &old)).unwrap();
        handle.set_rotation_batch(TEST_BATCH);
        handle.begin_rotation(&new, NEW).unwrap();
        // Writes and reads in between batches see one consistent store.
        for round in 0..3u64 {
            assert_eq!(handle.rotation_step().unwrap(), Step::Working);
            let k = 1000 + round;
            put(&db, k, format!("during {round}").as_bytes());
            values.insert(k, format!("during {round}").into_bytes());
            assert_eq!(contents(&db).unwrap(), values);
        }
        run_pass(&handle);
        put(&db, 2000, b"after");
        values.insert(2000, b"after".to_vec());
        assert_eq!(contents(&db).unwrap(), values);
    }
    assert_all_under(&data, &new, NEW, None);
    let (db, _) = open_pair(&data, &journal, &only(NEW, &new)).unwrap();
    assert_eq!(contents(&db).unwrap(), values);
    drop(db);
    assert!(matches!(
        open_pair(&data, &journal, &only(OLD, &old)),
        Err(OpenFailure::WrongKey)
    ));
}

#[test]
fn reads_and_writes_concurrent_with_the_pass_return_what_was_written() {
    let (old, new) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
    let (data, journal, mut values) = filled_store(&old, 200);
    {
        let (db, handle) = open_pair(&data, &journal, &only(OLD, &old)).unwrap();
        handle.set_rotation_batch(4);
        handle.begin_rotation(&new, NEW).unwrap();
        let pass = {
            let handle = handle.clone();
            std::thread::spawn(move || run_pass(&handle))
        };
        let mut round = 0u64;
        while !pass.is_finished() || round < 20 {
            let k = 5000 + round;
            let value = format!("concurrent {round} ").repeat(1 + (round % 7) as usize * 50);
            put(&db, k, value.as_bytes());
            values.insert(k, value.into_bytes());
            assert_eq!(contents(&db).unwrap(), values, "round {round}");
            round += 1;
            assert!(round < 100_000, "the pass did not end");
        }
        pass.join().unwrap();
        assert_eq!(contents(&db).unwrap(), values);
    }
    assert_all_under(&data, &new, NEW, None);
    let (db, _) = open_pair(&data, &journal, &only(NEW, &new)).unwrap();
    assert_eq!(contents(&db).unwrap(), values);
}

/// What a recorded rotation looks like: the store before, the tape, and when the write
/// made during the rotation was acknowledged and the old key dropped.
struct RecordedRotation {
    old_key: DataKey,
    new_key: DataKey,
    bases: [Vec<u8>; 2],
    tape: Vec<(u8, Op)>,
    before: BTreeMap<u64, Vec<u8>>,
    after: BTreeMap<u64, Vec<u8>>,
    /// Tape positions: the concurrent commit started, and was acknowledged.
    put: (usize, usize),
    /// Tape position from which the keyring no longer holds the old key.
    dropped: usize,
}

/// File tag 2 on the tape: the keyring lost the old key.
const KEYRING: u8 = 2;

fn recorded_rotation() -> RecordedRotation {
    let (old_key, new_key) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
    let (old, new) = (&old_key, &new_key);
    let (data, journal, before) = filled_store(old, 120);
    let (db, handle) = open_pair(&data, &journal, &only(OLD, old)).unwrap();
    handle.set_rotation_batch(TEST_BATCH);
    let tape: Tape = Arc::default();
    let bases = [data.record_onto(&tape, 0), journal.record_onto(&tape, 1)];
    handle.begin_rotation(new, NEW).unwrap();
    for _ in 0..3 {
        assert_eq!(handle.rotation_step().unwrap(), Step::Working);
    }
    let start = tape.lock().unwrap().len();
    put(&db, 777, b"written during the rotation");
    let acked = tape.lock().unwrap().len();
    let mut after = before.clone();
    after.insert(777, b"written during the rotation".to_vec());
    loop {
        match handle.rotation_step().unwrap() {
            Step::Working => {}
            Step::Finished { .. } => break,
            Step::Idle => panic!("no rotation"),
        }
    }
    let dropped = {
        let mut tape = tape.lock().unwrap();
        tape.push((KEYRING, Op::Sync));
        tape.len()
    };
    handle.end_rotation();
    drop(db);
    let tape = tape.lock().unwrap().clone();
    RecordedRotation {
        old_key,
        new_key,
        bases,
        tape,
        before,
        after,
        put: (start, acked),
        dropped,
    }
}

/// Opens a crash image, checks that it holds exactly the acknowledged writes, finishes the
/// rotation, and checks that the new key alone opens it with the same contents.
fn check_crash_image(rec: &RecordedRotation, upto: usize, images: [Vec<u8>; 2], what: &str) {
    let (old, new) = (&rec.old_key, &rec.new_key);
    let [data, journal] = images.map(MemFile::with_bytes);
    let keys = if upto >= rec.dropped {
        only(NEW, new)
    } else {
        rotating(old, new)
    };
    let (db, handle) = open_pair(&data, &journal, &keys)
        .unwrap_or_else(|e| panic!("{what}: the crash image does not open: {e:?}"));
    let found = contents(&db).unwrap_or_else(|e| panic!("{what}: {e}"));
    if upto >= rec.put.1 {
        assert_eq!(found, rec.after, "{what}: an acknowledged write is missing");
    } else if upto <= rec.put.0 {
        assert_eq!(found, rec.before, "{what}");
    } else {
        assert!(found == rec.before || found == rec.after, "{what}");
    }
    if upto < rec.dropped {
        handle.set_rotation_batch(64);
        run_pass(&handle);
    }
    drop(db);
    assert_all_under(&data, new, NEW, Some(old));
    let (db, _) = open_pair(&data, &journal, &only(NEW, new))
        .unwrap_or_else(|e| panic!("{what}: the new key alone does not open it: {e:?}"));
    assert_eq!(
        contents(&db).unwrap(),
        found,
        "{what}: the resumed rotation changed data"
    );
}

#[test]
fn a_crash_at_any_point_of_a_rotation_loses_no_acknowledged_write_and_the_rotation_resumes() {
    let rec = recorded_rotation();
    assert!(rec.tape.len() > 50 && rec.put.0 > 0 && rec.dropped > rec.put.1);
    let bases = [&rec.bases[0][..], &rec.bases[1][..]];
    // The pass's batches, the journal, the header copies, the preamble and the keyring all
    // happen in this recording.
    assert!(
        rec.tape
            .iter()
            .any(|(tag, op)| *tag == 1 && matches!(op, Op::Sync))
    );
    assert!(
        rec.tape
            .iter()
            .any(|(tag, op)| *tag == 0 && matches!(op, Op::Write { offset: 0, .. }))
    );
    for upto in 0..=rec.tape.len() {
        let images = crash_pair(bases, &rec.tape, upto, None, [false, false]);
        check_crash_image(&rec, upto, images, &format!("crash after op {upto}"));
        let images = crash_pair(bases, &rec.tape, upto, None, [true, true]);
        check_crash_image(&rec, upto, images, &format!("power loss after op {upto}"));
        if let Some((tag, Op::Write { data, .. })) = upto.checked_sub(1).map(|i| &rec.tape[i]) {
            for cut in [1, data.len() / 2, data.len() - 1] {
                let images = crash_pair(bases, &rec.tape, upto, Some(cut), [false, false]);
                check_crash_image(&rec, upto, images, &format!("op {upto} torn at {cut}"));
                if *tag == 0 {
                    // The data file's write reached the disk torn, the journal's unsynced
                    // writes did not.
                    let images = crash_pair(bases, &rec.tape, upto, Some(cut), [false, true]);
                    let what = format!("op {upto} torn at {cut}, journal unsynced lost");
                    check_crash_image(&rec, upto, images, &what);
                }
            }
        }
    }
}

#[test]
fn a_torn_journal_is_ignored_and_a_block_that_authenticates_is_never_overwritten() {
    let (old, new) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
    let (data, journal, values) = filled_store(&old, 60);
    {
        let (_db, handle) = open_pair(&data, &journal, &only(OLD, &old)).unwrap();
        handle.set_rotation_batch(TEST_BATCH);
        handle.begin_rotation(&new, NEW).unwrap();
        assert_eq!(handle.rotation_step().unwrap(), Step::Working);
    }
    let keys = [(OLD, &old), (NEW, &new)];
    let before = data.bytes();
    let file_id = cipher_of(&data, &old).preamble().file_id;
    let under_new = BlockCipher::new(
        &new,
        Preamble {
            key_id: NEW,
            file_id,
        },
    );
    let span = |i: u64| {
        let start = usize::try_from(block_offset(i).unwrap()).unwrap();
        start..start + SEALED
    };
    let block = (1..=TEST_BATCH)
        .find(|&i| {
            under_new
                .open_block(i, &mut before[span(i)].to_vec())
                .is_ok()
        })
        .unwrap();
    let write_journal = |bytes: &[u8]| {
        journal.set_len(0).unwrap();
        journal.write(0, bytes).unwrap();
    };
    // A journal naming a block that authenticates: nothing is replayed.
    let mut record = super::rotation::Record {
        from: OLD,
        to: NEW,
        cursor: TEST_BATCH + 1,
        preamble: None,
        blocks: vec![(block, vec![0x5A; SEALED])],
    };
    write_journal(&record.encode_for_tests());
    super::rotation::recover(&data, &journal, &keys).unwrap();
    assert!(
        data.bytes() == before,
        "an authenticating block was overwritten"
    );
    // A torn block and a torn journal: the journal is not trusted.
    data.flip(block_offset(block).unwrap() + 100, 0xFF);
    let damaged = data.bytes();
    record.blocks = vec![(block, before[span(block)].to_vec())];
    let bytes = record.encode_for_tests();
    write_journal(&bytes[..bytes.len() - 1]);
    assert_eq!(
        super::rotation::recover(&data, &journal, &keys).unwrap(),
        None
    );
    assert!(data.bytes() == damaged, "a torn journal was replayed");
    // The same journal whole: the torn block is restored from it.
    write_journal(&bytes);
    let recorded = super::rotation::recover(&data, &journal, &keys).unwrap();
    assert_eq!(recorded, Some((OLD, NEW, TEST_BATCH + 1)));
    assert!(data.bytes() == before, "the torn block was not restored");
    let (db, _) = open_pair(&data, &journal, &rotating(&old, &new)).unwrap();
    assert_eq!(contents(&db).unwrap(), values);
}

struct TestWatch {
    request: Option<(DataKey, u32)>,
    finished: Arc<Mutex<Option<(u32, u32)>>>,
}

impl KeyWatch for TestWatch {
    fn requested(&mut self, current: u32) -> Option<(DataKey, u32)> {
        assert_eq!(current, OLD);
        self.request.take()
    }

    fn finished(&mut self, from: u32, to: u32) -> Result<(), String> {
        *self.finished.lock().unwrap() = Some((from, to));
        Ok(())
    }
}

#[test]
fn the_maintenance_thread_runs_a_requested_rotation_and_reports_it_finished() {
    let (old, new) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
    let (data, journal, values) = filled_store(&old, 100);
    let finished = Arc::new(Mutex::new(None));
    {
        let (db, handle) = open_pair(&data, &journal, &only(OLD, &old)).unwrap();
        handle.set_rotation_duty(1.0);
        handle
            .start_maintenance(Box::new(TestWatch {
                request: Some((new, NEW)),
                finished: Arc::clone(&finished),
            }))
            .unwrap();
        let mut waited = 0;
        while finished.lock().unwrap().is_none() {
            assert_eq!(contents(&db).unwrap(), values);
            std::thread::sleep(std::time::Duration::from_millis(10));
            waited += 1;
            assert!(waited < 30_000, "the rotation did not finish");
        }
    }
    assert_eq!(*finished.lock().unwrap(), Some((OLD, NEW)));
}

#[test]
fn a_block_written_while_its_batch_is_resealed_keeps_the_newer_content() {
    let (old, new) = (DataKey::generate().unwrap(), DataKey::generate().unwrap());
    let file = new_file(&old);
    let journal = MemFile::default();
    let preamble = Preamble::parse(&file.bytes()[..PREAMBLE]).unwrap();
    let (backend, handle) = EncryptedBackend::open(
        Box::new(file.clone()),
        Some(Box::new(journal.clone())),
        single(&old, preamble),
        HeaderChoice::Newest,
    )
    .unwrap()
    .unwrap();
    handle.finish_open().unwrap();
    let backend = Arc::new(backend);
    backend.set_len(8 * BLOCK_U64).unwrap();
    backend.write(0, &[0xAB; BLOCK]).unwrap();
    for i in 1..8u8 {
        backend
            .write(u64::from(i) * BLOCK_U64, &[i; BLOCK])
            .unwrap();
    }
    backend.sync_data().unwrap();
    handle.set_rotation_batch(8);
    handle.begin_rotation(&new, NEW).unwrap();
    let writer = Arc::clone(&backend);
    handle.set_between_phases(Some(Box::new(move || {
        writer.write(3 * BLOCK_U64, &[0xEE; BLOCK]).unwrap();
    })));
    assert_eq!(handle.rotation_step().unwrap(), Step::Working);
    handle.set_between_phases(None);
    let read_block = |backend: &EncryptedBackend, i: u64| {
        let mut out = vec![0u8; BLOCK];
        backend.read(i * BLOCK_U64, &mut out).unwrap();
        out
    };
    assert_eq!(read_block(&backend, 3), vec![0xEE; BLOCK]);
    run_pass(&handle);
    drop(backend);
    let under_new = Preamble {
        key_id: NEW,
        file_id: preamble.file_id,
    };
    let (backend, handle) = EncryptedBackend::open(
        Box::new(file),
        None,
        single(&new, under_new),
        HeaderChoice::Newest,
    )
    .unwrap()
    .unwrap();
    handle.finish_open().unwrap();
    assert_eq!(read_block(&backend, 0), vec![0xAB; BLOCK]);
    assert_eq!(read_block(&backend, 3), vec![0xEE; BLOCK]);
    for i in [1u8, 2, 4, 5, 6, 7] {
        assert_eq!(
            read_block(&backend, u64::from(i)),
            vec![i; BLOCK],
            "block {i}"
        );
    }
}
