//! Backups of a Testudo store: the snapshot file format, taking a snapshot online from any
//! [`Kv`](testudo_storage::Kv), verifying a file, restoring it into an empty store, retention,
//! and a schedule runner the server can start.
//!
//! **Map.** `format.rs` owns every byte of a file (preamble, frames, trailer, records);
//! `manifest.rs` what a backup says it holds; `write.rs` taking a snapshot and writing a file
//! (temp file, fsync, atomic rename); `read.rs` reading and verifying; `restore.rs` loading a
//! verified file into an empty store; `retention.rs` listing and pruning a directory;
//! `schedule.rs` the periodic runner.
//!
//! **Guarantees.** A backup is taken at one snapshot (one `Kv::begin`), so it holds exactly
//! the commits at or before its timestamp, and never blocks a writer. Every key visible at
//! that timestamp is stored with all its stored versions (history included). A file only
//! gets its final name once complete and fsynced; a file that is truncated, reordered or
//! altered in any byte fails [`verify`] naming the chunk, and is never restored. With a
//! master key, every frame is sealed with AES-256-GCM under a fresh per-backup data key
//! wrapped by the master key.
//!
//! Keys whose newest version at the snapshot is a tombstone (deleted keys) are kept with
//! their history (`Snapshot::scan_with_tombstones`), so a restored store answers reads in
//! the past as the original did.
//!
//! **Invariants:** nothing here panics on a file's contents; nothing writes into a store
//! that is not empty; a restore reads and checks the whole file before writing anything.

mod format;
mod manifest;
mod read;
mod restore;
mod retention;
mod schedule;
mod write;

use testudo_storage::KvError;
use testudo_storage_redb::StoreError;
use testudo_storage_redb::keys::KeyError;

pub use format::{CHUNK_TARGET, FORMAT_VERSION, MAX_FRAME, Record, StoredVersion};
pub use manifest::{CollectionCounts, DatabaseCounts, Manifest, rfc3339};
pub use read::{BackupInfo, VerifyReport, inspect, verify};
pub use restore::{RestoreReport, VerifiedBackup, restore_into, restore_to_dir};
pub use retention::{
    BACKUP_EXTENSION, BackupEntry, EntryStatus, KEPT_PREFIX, PruneReport, ROTATING_PREFIX,
    list_backups, newest_backup_ms, prune,
};
pub use schedule::{BackupScheduler, BackupStatus, RunHook, ScheduleConfig, parse_period};
pub use write::{
    CreatedBackup, SnapshotOptions, create_backup, normalize_prefixes, write_snapshot,
};

/// Called with the bytes done so far (raw record bytes when taking a snapshot, file bytes
/// when reading one).
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// A progress callback that ignores its calls.
pub fn no_progress(_: u64) {}

/// What a backup operation failed on.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("not a Testudo backup file")]
    NotABackup,
    #[error("backup format version {0} is not supported by this build (it reads version 1)")]
    UnsupportedVersion(u16),
    /// The file ends before its trailer: an interrupted or cut copy.
    #[error("the backup is truncated or incomplete ({0})")]
    Truncated(String),
    /// A part of the file fails its checksum, authentication or decoding.
    #[error("{what} is damaged: {reason}")]
    Damaged { what: String, reason: String },
    /// The backup is encrypted and no master key was given.
    #[error("the backup is encrypted with master key {key_id}; give that master key")]
    NeedsKey { key_id: String },
    #[error(
        "the backup was encrypted with master key {expected}, but the given master key is \
         {given}"
    )]
    WrongKey { expected: String, given: String },
    #[error("{0}")]
    Crypto(String),
    #[error("a version of {0} bytes is larger than a backup frame may hold")]
    TooLarge(usize),
    /// The restore target already holds data.
    #[error("{0}")]
    NotEmpty(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the backup was cancelled")]
    Cancelled,
}

impl BackupError {
    pub(crate) fn io(what: impl std::fmt::Display, error: std::io::Error) -> BackupError {
        BackupError::Io(format!("{what}: {error}"))
    }
}
