//! [`RedbBackend`]: the [`Backend`] on one redb file.
//!
//! A view is a redb read transaction (redb's MVCC gives it a frozen tree); a batch is one redb
//! write transaction committed with `Durability::Immediate` (one fsync) when durable. Removing
//! tails is one write transaction too: each tail is one contiguous range of `versions`, and a
//! stretch of adjacent tails is deleted with one ranged pass.
//!
//! **Invariants:** a batch is all or nothing (an error drops the write transaction, which
//! aborts it); no redb error escapes unmapped and nothing here panics on stored bytes; a file
//! with another format version is refused before anything is written to it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, Table, WriteTransaction,
};
use testudo_storage::{Backend, BackendView, BatchWrite, Entry, EntryIter, KeyTail, KvError, Ts};

use crate::error::kv_error;
use crate::format::{
    FORMAT_VERSION, META, META_FORMAT_VERSION, META_LAST_COMMIT_TS, VERSIONS, decode_value,
    encode_value, stored_ts, ts_from_stored,
};

/// The name of the data file inside the store's directory.
pub const DATA_FILE: &str = "data.redb";

/// The embedded backend: one redb database file.
pub struct RedbBackend {
    /// `None` once closed.
    db: RwLock<Option<Database>>,
    path: PathBuf,
}

impl RedbBackend {
    /// Opens (or creates) the store in `dir` (`dir/data.redb`), creating `dir` if needed.
    /// Refuses a file written in another format version.
    pub fn open(dir: impl AsRef<Path>) -> Result<RedbBackend, KvError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)
            .map_err(|e| KvError::Io(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(DATA_FILE);
        // redb documents that opening a file damaged outside redb may panic; that must reach
        // the caller as `Corrupt`, not take the process down.
        let opened = catch_unwind(AssertUnwindSafe(|| Database::builder().create(&path)));
        let db = match opened {
            Ok(result) => result.map_err(kv_error)?,
            Err(_) => {
                return Err(KvError::Corrupt(format!(
                    "{} cannot be opened",
                    path.display()
                )));
            }
        };
        RedbBackend::from_database(db, path)
    }

    /// The backend over an opened database (e.g. one on an encrypted file): checks or writes
    /// the format version first.
    pub(crate) fn from_database(db: Database, path: PathBuf) -> Result<RedbBackend, KvError> {
        init(&db)?;
        Ok(RedbBackend {
            db: RwLock::new(Some(db)),
            path,
        })
    }

    /// The data file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db(&self) -> Result<RwLockReadGuard<'_, Option<Database>>, KvError> {
        // The guarded value is replaced in one step (close); a panic cannot leave it half set.
        let guard = self.db.read().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            return Err(KvError::Closed);
        }
        Ok(guard)
    }
}

/// Checks the format version, writing it (and the tables) into a new file.
fn init(db: &Database) -> Result<(), KvError> {
    let txn = db.begin_write().map_err(kv_error)?;
    {
        let mut meta = txn.open_table(META).map_err(kv_error)?;
        let version = meta
            .get(META_FORMAT_VERSION)
            .map_err(kv_error)?
            .map(|v| v.value());
        match version {
            Some(FORMAT_VERSION) => {}
            Some(other) => {
                return Err(KvError::Corrupt(format!(
                    "the store has format version {other}; this build reads version \
                     {FORMAT_VERSION} only"
                )));
            }
            None => {
                let versions = txn.open_table(VERSIONS).map_err(kv_error)?;
                if !versions.is_empty().map_err(kv_error)? {
                    return Err(KvError::Corrupt(
                        "the store has data but no format version".into(),
                    ));
                }
                meta.insert(META_FORMAT_VERSION, FORMAT_VERSION)
                    .map_err(kv_error)?;
            }
        }
    }
    txn.commit().map_err(kv_error)
}

impl Backend for RedbBackend {
    type View = RedbView;

    fn view(&self) -> Result<RedbView, KvError> {
        let db = self.db()?;
        let txn = db
            .as_ref()
            .ok_or(KvError::Closed)?
            .begin_read()
            .map_err(kv_error)?;
        let table = txn.open_table(VERSIONS).map_err(kv_error)?;
        Ok(RedbView { table, _txn: txn })
    }

    fn write_batch(
        &self,
        writes: &[BatchWrite<'_>],
        last_commit_ts: Ts,
        durable: bool,
    ) -> Result<(), KvError> {
        let db = self.db()?;
        let txn = begin_write(db.as_ref().ok_or(KvError::Closed)?, durable)?;
        {
            let mut table = txn.open_table(VERSIONS).map_err(kv_error)?;
            let mut value = Vec::new();
            for write in writes {
                encode_value(write.value, &mut value);
                table
                    .insert((write.key, stored_ts(write.ts)), value.as_slice())
                    .map_err(kv_error)?;
            }
            let mut meta = txn.open_table(META).map_err(kv_error)?;
            meta.insert(META_LAST_COMMIT_TS, last_commit_ts.0)
                .map_err(kv_error)?;
        }
        txn.commit().map_err(kv_error)
    }

    fn remove_tails(&self, tails: &[KeyTail<'_>], durable: bool) -> Result<u64, KvError> {
        let db = self.db()?;
        let txn = begin_write(db.as_ref().ok_or(KvError::Closed)?, durable)?;
        let mut removed = 0u64;
        {
            let mut table = txn.open_table(VERSIONS).map_err(kv_error)?;
            for stretch in stretches(tails) {
                removed += remove_stretch(&mut table, stretch)?;
            }
        }
        if removed == 0 {
            // Nothing to make durable: spare the fsync.
            txn.abort().map_err(kv_error)?;
            return Ok(0);
        }
        txn.commit().map_err(kv_error)?;
        Ok(removed)
    }

    fn last_commit_ts(&self) -> Result<Ts, KvError> {
        let db = self.db()?;
        let txn = db
            .as_ref()
            .ok_or(KvError::Closed)?
            .begin_read()
            .map_err(kv_error)?;
        let meta = txn.open_table(META).map_err(kv_error)?;
        let last = meta.get(META_LAST_COMMIT_TS).map_err(kv_error)?;
        Ok(Ts(last.map_or(0, |v| v.value())))
    }

    fn close(&self) -> Result<(), KvError> {
        let db = self
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match db {
            Some(db) => db.close().map_err(kv_error),
            None => Err(KvError::Closed),
        }
    }
}

/// Splits `tails` into stretches of adjacent tails (each starts at a tail not marked
/// `adjacent`), each removed in one pass.
fn stretches<'t, 'k>(tails: &'t [KeyTail<'k>]) -> impl Iterator<Item = &'t [KeyTail<'k>]> {
    tails.chunk_by(|_, next| next.adjacent)
}

/// Removes the tails of one stretch with one ranged pass: from the first tail's start to the
/// last key's end, deleting exactly the entries inside some tail. A seek per tail costs about
/// as much as reading a few dozen entries, so over entries the caller just walked one pass is
/// cheaper; a lone tail is its own range.
fn remove_stretch(table: &mut VersionsTable, stretch: &[KeyTail<'_>]) -> Result<u64, KvError> {
    let (Some(first), Some(last)) = (stretch.first(), stretch.last()) else {
        return Ok(0);
    };
    // Older versions have larger stored timestamps: a tail runs from `through` to the end of
    // its key.
    let range = (first.key, stored_ts(first.through))..=(last.key, u64::MAX);
    let mut removed = 0u64;
    let mut next = 0usize;
    table
        .retain_in(range, |(key, stored), _| {
            // The pass goes in key order, and so do the tails.
            while stretch.get(next).is_some_and(|tail| tail.key < key) {
                next += 1;
            }
            let inside = stretch
                .get(next)
                .is_some_and(|tail| tail.key == key && stored >= stored_ts(tail.through));
            removed += u64::from(inside);
            !inside
        })
        .map_err(kv_error)?;
    Ok(removed)
}

/// A write transaction with the store's durability: one fsync at commit when `durable`.
fn begin_write(db: &Database, durable: bool) -> Result<WriteTransaction, KvError> {
    let mut txn = db.begin_write().map_err(kv_error)?;
    let durability = if durable {
        Durability::Immediate
    } else {
        Durability::None
    };
    txn.set_durability(durability).map_err(kv_error)?;
    Ok(txn)
}

type VersionsTable<'t> = Table<'t, (&'static [u8], u64), &'static [u8]>;
type VersionsView = ReadOnlyTable<(&'static [u8], u64), &'static [u8]>;

/// A redb read transaction on the versions table.
pub struct RedbView {
    table: VersionsView,
    // Dropped after `table` (fields drop in order).
    _txn: ReadTransaction,
}

/// One item of a range over the versions table.
type RawItem = Result<
    (
        redb::AccessGuard<'static, (&'static [u8], u64)>,
        redb::AccessGuard<'static, &'static [u8]>,
    ),
    redb::StorageError,
>;

fn entry(item: RawItem) -> Result<Entry, KvError> {
    let (key, value) = item.map_err(kv_error)?;
    let (user_key, stored) = key.value();
    Ok(Entry {
        key: user_key.to_vec(),
        ts: ts_from_stored(stored),
        value: decode_value(value.value())?,
    })
}

impl BackendView for RedbView {
    fn forward(&self, from: (&[u8], Ts), end: Option<&[u8]>) -> Result<EntryIter<'_>, KvError> {
        if end.is_some_and(|end| from.0 >= end) {
            return Ok(Box::new(std::iter::empty()));
        }
        let lower = (from.0, stored_ts(from.1));
        let range = match end {
            // The first position of `end` is `(end, 0)`: everything before it has a smaller key.
            Some(end) => self.table.range(lower..(end, 0)),
            None => self.table.range(lower..),
        }
        .map_err(kv_error)?;
        Ok(Box::new(range.map(entry)))
    }

    fn backward(
        &self,
        start: &[u8],
        before: Option<(&[u8], Ts)>,
    ) -> Result<EntryIter<'_>, KvError> {
        let lower = (start, 0u64);
        let range = match before {
            Some((key, ts)) => {
                let upper = (key, stored_ts(ts));
                if upper <= lower {
                    return Ok(Box::new(std::iter::empty()));
                }
                self.table.range(lower..upper)
            }
            None => self.table.range(lower..),
        }
        .map_err(kv_error)?;
        Ok(Box::new(range.rev().map(entry)))
    }
}
