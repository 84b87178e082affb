//! Snapshot reads of a [`LocalKv`](crate::LocalKv): `get`, `scan` and `versions` at a
//! timestamp, on top of a backend view.
//!
//! A scan walks the backend in storage order and yields, per key, the newest version at or
//! below `at`, skipping keys whose visible version is a tombstone. Versions that are not
//! visible are stepped over; after [`SKIP_LIMIT`] of them on one key the scan seeks past them
//! instead, so a key with a long history costs one seek, not a walk through it.
//!
//! **Invariants:** nothing newer than the snapshot's timestamp is ever returned (every `at` is
//! capped at it); the backend view is taken at most once per snapshot, lazily; after the
//! store is closed every read fails with `Closed`; a read error ends the iterator after being
//! yielded once.

use std::cell::OnceCell;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::backend::{Backend, BackendView, Entry, EntryIter, key_successor};
use crate::local::Shared;
use crate::{KeyRange, KvError, ScanIter, ScanOrder, Snapshot, Ts, Version, VersionIter};

/// Invisible versions stepped over on one key before seeking past them.
const SKIP_LIMIT: usize = 8;

pub(crate) struct LocalSnapshot<B: Backend> {
    shared: Arc<Shared<B>>,
    ts: Ts,
    view: OnceCell<B::View>,
}

impl<B: Backend> LocalSnapshot<B> {
    pub(crate) fn new(shared: Arc<Shared<B>>, ts: Ts) -> LocalSnapshot<B> {
        LocalSnapshot {
            shared,
            ts,
            view: OnceCell::new(),
        }
    }

    fn view(&self) -> Result<&B::View, KvError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(KvError::Closed);
        }
        if let Some(view) = self.view.get() {
            return Ok(view);
        }
        let view = self.shared.backend.view()?;
        Ok(self.view.get_or_init(|| view))
    }
}

impl<B: Backend> LocalSnapshot<B> {
    fn ascending<'a>(
        &'a self,
        range: KeyRange,
        at: Ts,
        tombstones: bool,
    ) -> Result<ScanIter<'a>, KvError> {
        let view = self.view()?;
        let entries = view.forward((&range.start, at), range.end.as_deref())?;
        Ok(Box::new(Ascending {
            view,
            entries,
            end: range.end,
            at,
            tombstones,
            current: None,
            visible_seen: false,
            stepped: 0,
            failed: false,
        }))
    }
}

impl<B: Backend> Snapshot for LocalSnapshot<B> {
    fn ts(&self) -> Ts {
        self.ts
    }

    fn get(&self, key: &[u8], at: Ts) -> Result<Option<Version>, KvError> {
        let at = at.min(self.ts);
        let mut entries = self.view()?.forward((key, at), None)?;
        match entries.next() {
            Some(Ok(entry)) if entry.key == key => Ok(Some(Version {
                ts: entry.ts,
                value: entry.value,
            })),
            Some(Ok(_)) | None => Ok(None),
            Some(Err(error)) => Err(error),
        }
    }

    fn scan<'a>(
        &'a self,
        range: KeyRange,
        at: Ts,
        order: ScanOrder,
    ) -> Result<ScanIter<'a>, KvError> {
        let at = at.min(self.ts);
        let view = self.view()?;
        match order {
            ScanOrder::Ascending => self.ascending(range, at, false),
            ScanOrder::Descending => {
                let before = range.end.as_deref().map(|end| (end, Ts::MAX));
                let entries = view.backward(&range.start, before)?;
                Ok(Box::new(Descending {
                    view,
                    entries,
                    start: range.start,
                    at,
                    pending: None,
                    failed: false,
                }))
            }
        }
    }

    fn scan_with_tombstones<'a>(
        &'a self,
        range: KeyRange,
        at: Ts,
    ) -> Result<ScanIter<'a>, KvError> {
        self.ascending(range, at.min(self.ts), true)
    }

    fn versions<'a>(
        &'a self,
        key: &[u8],
        ts_range: (Bound<Ts>, Bound<Ts>),
    ) -> Result<VersionIter<'a>, KvError> {
        let (lower, upper) = ts_range;
        let newest = match upper {
            Bound::Included(ts) => ts.min(self.ts),
            Bound::Excluded(ts) => match ts.0.checked_sub(1) {
                Some(below) => Ts(below).min(self.ts),
                None => return Ok(Box::new(std::iter::empty())),
            },
            Bound::Unbounded => self.ts,
        };
        let entries = self.view()?.forward((key, newest), None)?;
        Ok(Box::new(Versions {
            entries,
            key: key.to_vec(),
            lower,
            done: false,
        }))
    }
}

/// The versions of one key, newest first, down to a lower bound.
struct Versions<'a> {
    entries: EntryIter<'a>,
    key: Vec<u8>,
    lower: Bound<Ts>,
    done: bool,
}

impl Iterator for Versions<'_> {
    type Item = Result<Version, KvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let entry = match self.entries.next() {
            Some(Ok(entry)) => entry,
            Some(Err(error)) => {
                self.done = true;
                return Some(Err(error));
            }
            None => {
                self.done = true;
                return None;
            }
        };
        let in_range = entry.key == self.key
            && match self.lower {
                Bound::Included(lower) => entry.ts >= lower,
                Bound::Excluded(lower) => entry.ts > lower,
                Bound::Unbounded => true,
            };
        if !in_range {
            self.done = true;
            return None;
        }
        Some(Ok(Version {
            ts: entry.ts,
            value: entry.value,
        }))
    }
}

/// Turns a visible version into a scan item, unless it is a tombstone.
fn live(entry: Entry) -> Option<(Vec<u8>, Version)> {
    let value = entry.value?;
    Some((
        entry.key,
        Version {
            ts: entry.ts,
            value: Some(value),
        },
    ))
}

/// An ascending scan: per key, versions come newest first.
struct Ascending<'a, V: BackendView> {
    view: &'a V,
    entries: EntryIter<'a>,
    end: Option<Vec<u8>>,
    at: Ts,
    /// Whether a key whose visible version is a tombstone is returned (as `value: None`).
    tombstones: bool,
    /// The key being walked.
    current: Option<Vec<u8>>,
    /// Whether `current`'s visible version was already handled (the rest are older).
    visible_seen: bool,
    /// Entries of `current` stepped over since the last seek.
    stepped: usize,
    failed: bool,
}

impl<V: BackendView> Iterator for Ascending<'_, V> {
    type Item = Result<(Vec<u8>, Version), KvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let entry = match self.entries.next()? {
                Ok(entry) => entry,
                Err(error) => return self.fail(error),
            };
            if self.current.as_deref() != Some(entry.key.as_slice()) {
                self.stepped = 0;
                self.visible_seen = entry.ts <= self.at;
                if self.visible_seen {
                    self.current = Some(entry.key.clone());
                    match self.visible(entry) {
                        Some(item) => return Some(Ok(item)),
                        None => continue,
                    }
                }
                self.current = Some(entry.key);
            } else if !self.visible_seen && entry.ts <= self.at {
                self.visible_seen = true;
                match self.visible(entry) {
                    Some(item) => return Some(Ok(item)),
                    None => continue,
                }
            }
            self.stepped += 1;
            if self.stepped > SKIP_LIMIT
                && let Err(error) = self.seek_past_invisible()
            {
                return self.fail(error);
            }
        }
    }
}

impl<V: BackendView> Ascending<'_, V> {
    fn visible(&self, entry: Entry) -> Option<(Vec<u8>, Version)> {
        if self.tombstones {
            let version = Version {
                ts: entry.ts,
                value: entry.value,
            };
            return Some((entry.key, version));
        }
        live(entry)
    }

    /// Seeks to `current`'s visible version, or past `current` once it has been handled.
    fn seek_past_invisible(&mut self) -> Result<(), KvError> {
        self.stepped = 0;
        let Some(current) = self.current.as_deref() else {
            return Ok(());
        };
        let entries = if self.visible_seen {
            self.view
                .forward((&key_successor(current), Ts::MAX), self.end.as_deref())?
        } else {
            self.view.forward((current, self.at), self.end.as_deref())?
        };
        self.entries = entries;
        Ok(())
    }

    fn fail(&mut self, error: KvError) -> Option<Result<(Vec<u8>, Version), KvError>> {
        self.failed = true;
        Some(Err(error))
    }
}

/// A descending scan: keys come in reverse order, and per key, versions oldest first.
struct Descending<'a, V: BackendView> {
    view: &'a V,
    entries: EntryIter<'a>,
    start: Vec<u8>,
    at: Ts,
    /// The first entry of the next key, read while finishing the previous one.
    pending: Option<Entry>,
    failed: bool,
}

impl<V: BackendView> Iterator for Descending<'_, V> {
    type Item = Result<(Vec<u8>, Version), KvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            let first = match self
                .pending
                .take()
                .map(Ok)
                .or_else(|| self.entries.next())?
            {
                Ok(entry) => entry,
                Err(error) => return self.fail(error),
            };
            match self.visible_version(first) {
                Ok(Some(entry)) => match live(entry) {
                    Some(item) => return Some(Ok(item)),
                    None => continue,
                },
                Ok(None) => continue,
                Err(error) => return self.fail(error),
            }
        }
    }
}

impl<V: BackendView> Descending<'_, V> {
    /// Consumes the versions of `first`'s key (oldest first) and returns the newest one at or
    /// below `at`, leaving the iterator on the previous key.
    fn visible_version(&mut self, first: Entry) -> Result<Option<Entry>, KvError> {
        let key = first.key.clone();
        // Once a version newer than `at` shows up, every later one is newer too.
        let mut settled = first.ts > self.at;
        let mut best = (!settled).then_some(first);
        let mut stepped = 0;
        loop {
            if stepped >= SKIP_LIMIT {
                if !settled {
                    best = match self
                        .view
                        .forward((&key, self.at), None)?
                        .next()
                        .transpose()?
                    {
                        Some(entry) if entry.key == key => Some(entry),
                        _ => None,
                    };
                }
                self.entries = self.view.backward(&self.start, Some((&key, Ts::MAX)))?;
                return Ok(best);
            }
            match self.entries.next().transpose()? {
                None => return Ok(best),
                Some(entry) if entry.key != key => {
                    self.pending = Some(entry);
                    return Ok(best);
                }
                Some(entry) => {
                    stepped += 1;
                    if !settled {
                        if entry.ts <= self.at {
                            best = Some(entry);
                        } else {
                            settled = true;
                        }
                    }
                }
            }
        }
    }

    fn fail(&mut self, error: KvError) -> Option<Result<(Vec<u8>, Version), KvError>> {
        self.failed = true;
        Some(Err(error))
    }
}
