//! The embedded storage backend: Testudo's versioned key-value store in one redb file.
//!
//! [`open`] gives the [`Kv`] the rest of the server uses: a
//! [`LocalKv`](testudo_storage::LocalKv) (clock, conflict detection, group commit) over a
//! [`RedbBackend`]. This is the only crate that names redb.
//!
//! # On-disk layout (format version 1)
//!
//! A store is a directory holding one redb file, `data.redb`, with two tables:
//!
//! - `versions`: key `(&[u8], u64)` = (user key, `u64::MAX - ts`), value `&[u8]`. redb orders
//!   tuple keys element by element, so all versions of a user key are adjacent and the newest
//!   comes first; a read at `ts` seeks to `(key, u64::MAX - ts)`. The value is a tag byte
//!   followed by the payload: `0x00` (nothing follows) is a tombstone, `0x01` is followed by
//!   the value's bytes. Any other tag, or an empty value, is reported as corruption.
//! - `meta`: key `&str`, value `u64`. `format_version` is the layout version (1);
//!   `last_commit_ts` is the timestamp of the newest commit, written in the same redb
//!   transaction as that commit's versions.
//!
//! Each commit batch is one redb write transaction committed with `Durability::Immediate`:
//! one fsync for every transaction in the group. Pruning (reclaiming versions no snapshot at
//! or after a horizon can see) deletes a key's tail, one contiguous range in `versions`; each
//! prune call is one write transaction with the same durability. redb reuses the freed pages
//! (the file does not shrink), once no read transaction older than the prune still holds them.
//!
//! **Format versions.** 1: the layout above. A file whose `format_version` is not one this
//! build knows is refused with `KvError::Corrupt` before anything is written to it; a file
//! with data but no `format_version` is refused the same way. Any change to the bytes above
//! gets a new version and a note here.
//!
//! **Encryption at rest.** An encrypted store keeps the same redb file sealed block by block
//! in `data.enc` (encrypted format version 1: preamble, two sealed copies of redb's header,
//! then 4096-byte blocks each sealed with AES-256-GCM under the data key; byte layout in
//! `encrypted/layout.rs`), and its data keys, wrapped by the master key, in `keyring`. The
//! redb layout above is unchanged inside it. A block that fails authentication is reported
//! as `KvError::Corrupt("integrity check failed at block N …")`; redb then refuses further
//! I/O on that store until it is reopened (its own policy after any I/O error).
//!
//! **Per-database keys.** On top of that, [`SealedKv`] (`sealed/`) seals each value under
//! the data key of the database its key belongs to (keys in `dbkeys`, wrapped by the master
//! key), so deleting a database can destroy its key (crypto-shredding). The bytes redb
//! stores are then `1 ‖ nonce ‖ AES-256-GCM(value) ‖ tag` instead of the value; the layout
//! above is otherwise unchanged.
//!
//! **Invariants:** every redb error is mapped to a [`KvError`] (`error.rs`); nothing here
//! panics on the file's contents (a panic inside redb while opening a damaged file is caught
//! and reported as `Corrupt`); after a crash, every acknowledged commit is present and no
//! partial batch is visible (redb's commit is atomic and the batch is one redb transaction).
//!
//! Not done here: redb's "quick repair" (allocator state saved at every commit) is off, since
//! it costs a second fsync per commit; recovery after a crash therefore walks the file once.

use std::path::Path;
use std::sync::Arc;

use testudo_storage::{Kv, KvError, LocalKv, LocalKvOptions};

mod backend;
pub mod encrypted;
mod error;
mod format;
pub mod keys;
mod rotate;
pub mod sealed;
mod store;

pub use backend::{DATA_FILE, RedbBackend, RedbView};
pub use encrypted::RotationProgress;
pub use encrypted::{EncryptedFile, IntegrityError};
pub use format::FORMAT_VERSION;
pub use rotate::{
    RotationReport, RotationStatus, data_file_in_use, request_rotation, rotate_data, rotate_master,
    rotation_status,
};
pub use sealed::{DB_KEYS_FILE, DatabaseKeys, SealedKv, adopt_db_keys, verify_db_keys};
pub use store::{
    ENCRYPTED_DATA_FILE, MAX_REPORTED, ROTATION_DUTY_ENV, StoreError, StoreKind, VerifyReport,
    open_encrypted_file, open_store, store_kind, verify_store,
};

/// Opens (or creates) the store in directory `dir` with default options.
pub fn open(dir: impl AsRef<Path>) -> Result<Arc<dyn Kv>, KvError> {
    Ok(Arc::new(open_local(dir, LocalKvOptions::default())?))
}

/// Opens (or creates) the store in directory `dir`, keeping the concrete type (for its
/// statistics and options).
pub fn open_local(
    dir: impl AsRef<Path>,
    options: LocalKvOptions,
) -> Result<LocalKv<RedbBackend>, KvError> {
    LocalKv::open(RedbBackend::open(dir)?, options)
}
