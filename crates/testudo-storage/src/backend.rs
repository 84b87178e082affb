//! The raw backend under [`LocalKv`](crate::LocalKv): an ordered store of versioned entries.
//!
//! A backend knows nothing of clocks, conflicts or snapshots at a timestamp. It stores
//! entries keyed by `(user key, ts)` in *storage order* (key ascending, then ts descending, so
//! the newest version of a key comes first), hands out consistent read views, and applies a
//! batch of entries plus the last commit timestamp atomically.
//!
//! **Invariants a backend keeps:**
//! - A view never changes: it shows exactly the batches applied before it was taken, whatever
//!   is written (or reclaimed) after. Taking a view never waits for a batch in flight.
//! - `write_batch` is all or nothing: on `Err`, no entry of the batch is visible to any view,
//!   now or after a restart. With `durable`, `Ok` means the batch survives a crash.
//! - It never panics on stored bytes: damage is reported as [`KvError::Corrupt`].
//!
//! Reclaiming old versions ([`Backend::remove_tails`]) deletes *tails*: every version of a key
//! at or below a timestamp. In storage order (all versions of a key adjacent, oldest last) a
//! tail is one contiguous range, so a backend can delete it as one range. Deciding which
//! tails may go is not the backend's business (see `prune.rs`).

use crate::{KvError, Ts};

/// One stored version, as a backend yields it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub ts: Ts,
    /// `None` is a tombstone.
    pub value: Option<Vec<u8>>,
}

/// One version to store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchWrite<'a> {
    pub key: &'a [u8],
    pub ts: Ts,
    pub value: Option<&'a [u8]>,
}

/// The tail of one key: every stored version of `key` with a timestamp `<= through`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyTail<'a> {
    pub key: &'a [u8],
    pub through: Ts,
    /// A hint: few entries are stored between the previous tail of the same call and this
    /// one (the caller read them all one by one), so removing both in one pass over the
    /// stretch costs less than seeking to each. What is removed never depends on it.
    pub adjacent: bool,
}

/// Entries in the order a view method promises, each possibly a read error.
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<Entry, KvError>> + 'a>;

/// An ordered, versioned, atomically written store.
pub trait Backend: Send + Sync + 'static {
    type View: BackendView + 'static;

    /// A consistent view of every batch applied so far.
    fn view(&self) -> Result<Self::View, KvError>;

    /// Applies `writes` (no `(key, ts)` pair twice, none already stored) and records
    /// `last_commit_ts`, atomically. With `durable`, returns only once the batch is on stable
    /// storage (one flush for the whole batch).
    fn write_batch(
        &self,
        writes: &[BatchWrite<'_>],
        last_commit_ts: Ts,
        durable: bool,
    ) -> Result<(), KvError>;

    /// Removes every version each of `tails` names, atomically, and returns how many stored
    /// versions that removed (versions already gone are not counted). `tails` are in key
    /// order, one per key at most. Views taken before are
    /// unaffected; `last_commit_ts` does not move. With `durable`, returns only once the
    /// removal is on stable storage.
    ///
    /// The caller promises that every `through` is at most the `last_commit_ts` of a batch
    /// already applied, so no later batch ever writes into a removed tail.
    fn remove_tails(&self, tails: &[KeyTail<'_>], durable: bool) -> Result<u64, KvError>;

    /// The `last_commit_ts` of the newest applied batch (`Ts::ZERO` for an empty store).
    fn last_commit_ts(&self) -> Result<Ts, KvError>;

    /// Flushes and releases the store. Later writes fail with [`KvError::Closed`]; views
    /// taken before may fail too.
    fn close(&self) -> Result<(), KvError>;
}

/// A consistent read view of a [`Backend`].
///
/// A *position* `(key, ts)` names the place of that version in storage order, whether or not
/// it is stored: entries at or after it are those with a greater key, or the same key and a
/// timestamp `<= ts`. `(key, Ts::MAX)` is therefore the first position of `key`.
pub trait BackendView: Send {
    /// Entries at or after position `from`, in storage order, whose key is below `end`
    /// (`None`: no bound).
    fn forward(&self, from: (&[u8], Ts), end: Option<&[u8]>) -> Result<EntryIter<'_>, KvError>;

    /// Entries strictly before position `before` (`None`: the end of the store), in reverse
    /// storage order (key descending, then ts ascending), whose key is at least `start`.
    fn backward(&self, start: &[u8], before: Option<(&[u8], Ts)>)
    -> Result<EntryIter<'_>, KvError>;
}

/// The smallest key greater than `key` (every key starting with `key` and longer sorts after
/// it, and `key ++ [0]` is the first of them).
pub(crate) fn key_successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}
