//! One query's transaction: a snapshot to read from, a buffer of its own writes, and the
//! record of what it read (for conflict detection at commit).
//!
//! **Invariants:** every read of current data goes through here, so a transaction always
//! sees its own writes and every key or range it depended on is reported to the commit path;
//! nothing reaches the store before commit; historical reads (`at(ts)` in the past) never
//! see this transaction's writes.

use std::collections::BTreeMap;
use std::ops::Bound;

use testudo_storage::{KeyRange, Kv, KvError, ScanOrder, Snapshot, Ts, WriteSet};

/// A value read through the transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Read {
    /// The version's timestamp; `None` when this transaction wrote it (its timestamp will be
    /// the commit timestamp).
    pub ts: Option<Ts>,
    /// `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct IoStats {
    pub bytes_read: u64,
    pub bytes_written: u64,
}

pub struct Txn {
    snapshot: Box<dyn Snapshot>,
    read_keys: Vec<Vec<u8>>,
    read_ranges: Vec<KeyRange>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub io: IoStats,
}

/// One page of a range scan: entries in scan order, and whether the range had more.
pub struct ScanPage {
    pub entries: Vec<(Vec<u8>, Read)>,
    pub more: bool,
}

impl Txn {
    pub fn begin(kv: &dyn Kv) -> Result<Txn, KvError> {
        Ok(Txn {
            snapshot: kv.begin()?,
            read_keys: Vec::new(),
            read_ranges: Vec::new(),
            writes: BTreeMap::new(),
            io: IoStats::default(),
        })
    }

    /// The snapshot timestamp: the transaction time of a read-only query.
    pub fn ts(&self) -> Ts {
        self.snapshot.ts()
    }

    pub fn has_writes(&self) -> bool {
        !self.writes.is_empty()
    }

    /// The current value of `key` as this transaction sees it.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<Read>, KvError> {
        if let Some(value) = self.writes.get(key) {
            return Ok(Some(Read {
                ts: None,
                value: value.clone(),
            }));
        }
        self.read_keys.push(key.to_vec());
        self.get_committed(key, self.snapshot.ts())
    }

    /// The value of `key` as of `at` (at or before the snapshot), ignoring this
    /// transaction's writes. Past versions never change, so nothing is recorded.
    pub fn get_at(&mut self, key: &[u8], at: Ts) -> Result<Option<Read>, KvError> {
        self.get_committed(key, at.min(self.snapshot.ts()))
    }

    fn get_committed(&mut self, key: &[u8], at: Ts) -> Result<Option<Read>, KvError> {
        let version = self.snapshot.get(key, at)?;
        Ok(version.map(|v| {
            self.io.bytes_read += v.value.as_ref().map_or(0, |b| b.len() as u64);
            Read {
                ts: Some(v.ts),
                value: v.value,
            }
        }))
    }

    /// Up to `limit` live entries of `range` in `order`, merged with this transaction's own
    /// writes when reading current data (`at == None`).
    pub fn scan(
        &mut self,
        range: &KeyRange,
        order: ScanOrder,
        limit: usize,
        at: Option<Ts>,
    ) -> Result<ScanPage, KvError> {
        let snap_ts = self.snapshot.ts();
        let read_at = at.map_or(snap_ts, |t| t.min(snap_ts));
        let mut committed = self.snapshot.scan(range.clone(), read_at, order)?;
        let own: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = if at.is_some() {
            Vec::new()
        } else {
            let bounds = (
                Bound::Included(range.start.clone()),
                range.end.clone().map_or(Bound::Unbounded, Bound::Excluded),
            );
            match order {
                ScanOrder::Ascending => self.writes.range(bounds).collect(),
                ScanOrder::Descending => self.writes.range(bounds).rev().collect(),
            }
        };
        let mut own = own.into_iter();
        let before = |a: &[u8], b: &[u8]| match order {
            ScanOrder::Ascending => a < b,
            ScanOrder::Descending => a > b,
        };

        let mut entries = Vec::new();
        let mut bytes = 0u64;
        let mut more = false;
        let mut head_committed = committed.next().transpose()?;
        let mut head_own = own.next();
        loop {
            let take_own = match (&head_committed, &head_own) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((c, _)), Some((o, _))) => *o == c || before(o, c),
            };
            if entries.len() >= limit {
                more = true;
                break;
            }
            if take_own {
                let Some((key, value)) = head_own.take() else {
                    break;
                };
                if head_committed.as_ref().is_some_and(|(c, _)| c == key) {
                    head_committed = committed.next().transpose()?;
                }
                if let Some(v) = value {
                    entries.push((
                        key.clone(),
                        Read {
                            ts: None,
                            value: Some(v.clone()),
                        },
                    ));
                }
                head_own = own.next();
            } else if let Some((key, version)) = head_committed.take() {
                bytes += version.value.as_ref().map_or(0, |b| b.len() as u64);
                entries.push((
                    key,
                    Read {
                        ts: Some(version.ts),
                        value: version.value,
                    },
                ));
                head_committed = committed.next().transpose()?;
            }
        }
        drop(committed);
        self.io.bytes_read += bytes;
        if at.is_none() {
            self.record_scanned(
                range,
                order,
                more,
                entries.last().map(|(k, _)| k.as_slice()),
            );
        }
        Ok(ScanPage { entries, more })
    }

    /// Records the part of `range` a scan depended on: all of it if it ran to the end,
    /// otherwise up to and including the last key it returned.
    fn record_scanned(
        &mut self,
        range: &KeyRange,
        order: ScanOrder,
        more: bool,
        last: Option<&[u8]>,
    ) {
        let consumed = match (more, last) {
            (false, _) | (true, None) => range.clone(),
            (true, Some(last)) => match order {
                ScanOrder::Ascending => {
                    let mut end = last.to_vec();
                    end.push(0);
                    KeyRange {
                        start: range.start.clone(),
                        end: Some(end),
                    }
                }
                ScanOrder::Descending => KeyRange {
                    start: last.to_vec(),
                    end: range.end.clone(),
                },
            },
        };
        self.read_ranges.push(consumed);
    }

    /// Makes the commit depend on `key` not changing after the snapshot, without reading
    /// it (the caller already knows what it needs about the key).
    pub fn depend_on(&mut self, key: Vec<u8>) {
        self.read_keys.push(key);
    }

    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.io.bytes_written += value.len() as u64;
        self.writes.insert(key, Some(value));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    pub fn into_write_set(self) -> WriteSet {
        let snapshot_ts = self.snapshot.ts();
        WriteSet {
            snapshot_ts,
            read_keys: self.read_keys,
            read_ranges: self.read_ranges,
            writes: self.writes.into_iter().collect(),
        }
    }
}
