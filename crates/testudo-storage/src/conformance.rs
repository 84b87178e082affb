//! The conformance suite: the properties every [`Kv`] implementation must have, written once
//! and run on each backend (`MemBackend` here, redb in `testudo-storage-redb`, more later).
//!
//! Each property is a `pub fn` taking a factory that returns a fresh, empty store; [`ALL`]
//! lists them and [`run_all`] runs them in turn. A backend's test file usually expands
//! [`conformance_tests!`](crate::conformance_tests) to get one `#[test]` per property.
//!
//! **Invariants:** properties only use the [`Kv`] trait; each starts from a fresh store and
//! closes it; none depends on timing (concurrency is checked through invariants, never through
//! sleeps or durations).

// A failed property is a failed test: panicking with a message is the point here.
#![allow(clippy::unwrap_used)]

use std::ops::Bound;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::{
    CommitError, KeyRange, Kv, KvError, PruneStats, ScanOrder, Snapshot, Ts, Version, WriteSet,
};

/// A factory of fresh, empty stores.
pub type MakeKv<'a> = &'a dyn Fn() -> Arc<dyn Kv>;
/// One property.
pub type Property = fn(MakeKv<'_>);

/// Every property, by name.
pub const ALL: &[(&str, Property)] = &[
    (
        "timestamps_strictly_increase_across_begins_and_commits",
        timestamps_strictly_increase_across_begins_and_commits,
    ),
    (
        "a_snapshot_does_not_see_later_commits",
        a_snapshot_does_not_see_later_commits,
    ),
    (
        "get_reads_the_newest_version_at_or_before_at",
        get_reads_the_newest_version_at_or_before_at,
    ),
    (
        "scans_skip_tombstones_and_respect_bounds_in_both_orders",
        scans_skip_tombstones_and_respect_bounds_in_both_orders,
    ),
    (
        "a_scan_at_an_older_timestamp_sees_the_older_world",
        a_scan_at_an_older_timestamp_sees_the_older_world,
    ),
    (
        "versions_lists_history_newest_first_within_bounds",
        versions_lists_history_newest_first_within_bounds,
    ),
    (
        "reading_a_key_written_after_the_snapshot_conflicts",
        reading_a_key_written_after_the_snapshot_conflicts,
    ),
    (
        "a_phantom_insert_into_a_read_range_conflicts",
        a_phantom_insert_into_a_read_range_conflicts,
    ),
    (
        "disjoint_reads_and_writes_do_not_conflict",
        disjoint_reads_and_writes_do_not_conflict,
    ),
    (
        "a_scan_with_tombstones_also_returns_deleted_keys",
        a_scan_with_tombstones_also_returns_deleted_keys,
    ),
    (
        "blind_writes_to_one_key_both_succeed",
        blind_writes_to_one_key_both_succeed,
    ),
    (
        "a_conflicting_transaction_applies_nothing",
        a_conflicting_transaction_applies_nothing,
    ),
    (
        "a_read_only_commit_validates_its_reads",
        a_read_only_commit_validates_its_reads,
    ),
    (
        "an_expired_deadline_applies_nothing",
        an_expired_deadline_applies_nothing,
    ),
    (
        "the_last_write_to_a_key_in_one_transaction_wins",
        the_last_write_to_a_key_in_one_transaction_wins,
    ),
    (
        "last_commit_ts_is_the_newest_commit",
        last_commit_ts_is_the_newest_commit,
    ),
    (
        "a_snapshot_sees_every_commit_acknowledged_before_it_began",
        a_snapshot_sees_every_commit_acknowledged_before_it_began,
    ),
    (
        "concurrent_transfers_are_serializable",
        concurrent_transfers_are_serializable,
    ),
    (
        "pruning_keeps_every_snapshot_at_or_after_the_horizon_identical",
        pruning_keeps_every_snapshot_at_or_after_the_horizon_identical,
    ),
    (
        "pruning_removes_tombstoned_keys_entirely",
        pruning_removes_tombstoned_keys_entirely,
    ),
    (
        "pruning_removes_exactly_the_hidden_versions",
        pruning_removes_exactly_the_hidden_versions,
    ),
    (
        "pruning_in_steps_covers_the_range_exactly_once",
        pruning_in_steps_covers_the_range_exactly_once,
    ),
    (
        "a_transaction_that_read_pruned_history_conflicts",
        a_transaction_that_read_pruned_history_conflicts,
    ),
    (
        "commits_and_reads_stay_correct_while_pruning",
        commits_and_reads_stay_correct_while_pruning,
    ),
    (
        "close_makes_every_later_call_fail_cleanly",
        close_makes_every_later_call_fail_cleanly,
    ),
];

/// Runs every property, naming each on stderr first (so a failure says which one).
pub fn run_all(make: MakeKv<'_>) {
    for (name, property) in ALL {
        eprintln!("conformance: {name}");
        property(make);
    }
}

/// Expands to one `#[test]` per conformance property, each calling `$make` (an expression
/// whose value is a `Fn() -> Arc<dyn Kv>`) for its stores.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(@tests $make;
            timestamps_strictly_increase_across_begins_and_commits,
            a_snapshot_does_not_see_later_commits,
            get_reads_the_newest_version_at_or_before_at,
            scans_skip_tombstones_and_respect_bounds_in_both_orders,
            a_scan_at_an_older_timestamp_sees_the_older_world,
            versions_lists_history_newest_first_within_bounds,
            reading_a_key_written_after_the_snapshot_conflicts,
            a_phantom_insert_into_a_read_range_conflicts,
            disjoint_reads_and_writes_do_not_conflict,
            a_scan_with_tombstones_also_returns_deleted_keys,
            blind_writes_to_one_key_both_succeed,
            a_conflicting_transaction_applies_nothing,
            a_read_only_commit_validates_its_reads,
            an_expired_deadline_applies_nothing,
            the_last_write_to_a_key_in_one_transaction_wins,
            last_commit_ts_is_the_newest_commit,
            a_snapshot_sees_every_commit_acknowledged_before_it_began,
            concurrent_transfers_are_serializable,
            pruning_keeps_every_snapshot_at_or_after_the_horizon_identical,
            pruning_removes_tombstoned_keys_entirely,
            pruning_removes_exactly_the_hidden_versions,
            pruning_in_steps_covers_the_range_exactly_once,
            a_transaction_that_read_pruned_history_conflicts,
            commits_and_reads_stay_correct_while_pruning,
            close_makes_every_later_call_fail_cleanly,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[test]
            fn $name() {
                let make = $make;
                $crate::conformance::$name(&make);
            }
        )+

        #[test]
        fn every_conformance_property_has_a_test() {
            let names: &[&str] = &[$(stringify!($name)),+];
            let all: Vec<&str> = $crate::conformance::ALL.iter().map(|(name, _)| *name).collect();
            assert_eq!(names, all.as_slice());
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn b(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

fn writes(list: &[(&str, Option<&str>)]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    list.iter().map(|(k, v)| (b(k), v.map(b))).collect()
}

/// Commits `list` without reading anything.
fn put(kv: &dyn Kv, list: &[(&str, Option<&str>)]) -> Ts {
    let snapshot_ts = kv.begin().unwrap().ts();
    let txn = WriteSet {
        snapshot_ts,
        writes: writes(list),
        ..WriteSet::default()
    };
    kv.commit(txn, None).unwrap()
}

fn get(snapshot: &dyn Snapshot, key: &str, at: Ts) -> Option<Version> {
    snapshot.get(key.as_bytes(), at).unwrap()
}

fn value(snapshot: &dyn Snapshot, key: &str) -> Option<String> {
    get(snapshot, key, snapshot.ts())
        .and_then(|v| v.value)
        .map(|v| String::from_utf8(v).unwrap())
}

fn scan(
    snapshot: &dyn Snapshot,
    range: KeyRange,
    at: Ts,
    order: ScanOrder,
) -> Vec<(String, String)> {
    snapshot
        .scan(range, at, order)
        .unwrap()
        .map(|item| {
            let (key, version) = item.unwrap();
            assert!(
                version.ts <= at,
                "a scan returned a version newer than `at`"
            );
            let value = version.value.expect("a scan returned a tombstone");
            (
                String::from_utf8(key).unwrap(),
                String::from_utf8(value).unwrap(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn everything() -> KeyRange {
    KeyRange {
        start: Vec::new(),
        end: None,
    }
}

fn version_list(
    snapshot: &dyn Snapshot,
    key: &str,
    range: (Bound<Ts>, Bound<Ts>),
) -> Vec<(Ts, Option<String>)> {
    snapshot
        .versions(key.as_bytes(), range)
        .unwrap()
        .map(|v| {
            let v = v.unwrap();
            (v.ts, v.value.map(|v| String::from_utf8(v).unwrap()))
        })
        .collect()
}

fn is_conflict<T: std::fmt::Debug>(result: Result<T, CommitError>) -> bool {
    match result {
        Err(CommitError::Conflict) => true,
        Ok(_) => false,
        Err(other) => panic!("expected a conflict or success, got {other:?}"),
    }
}

/// A small deterministic generator (xorshift), so concurrent properties need no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

// ---------------------------------------------------------------------------------------------
// Timestamps and snapshots

pub fn timestamps_strictly_increase_across_begins_and_commits(make: MakeKv<'_>) {
    let kv = make();
    let mut seen = Vec::new();
    for i in 0..100 {
        let snapshot = kv.begin().unwrap();
        seen.push(snapshot.ts());
        if i % 3 == 0 {
            let txn = WriteSet {
                snapshot_ts: snapshot.ts(),
                read_keys: vec![b("k")],
                writes: writes(&[("k", Some("v"))]),
                ..WriteSet::default()
            };
            let ts = kv.commit(txn, None).unwrap();
            assert!(ts > snapshot.ts(), "a commit is stamped after its snapshot");
            seen.push(ts);
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "timestamps must strictly increase: {seen:?}"
    );
    kv.close().unwrap();
}

pub fn a_snapshot_does_not_see_later_commits(make: MakeKv<'_>) {
    let kv = make();
    let t1 = put(&*kv, &[("a", Some("1"))]);
    let old = kv.begin().unwrap();
    put(&*kv, &[("a", Some("2")), ("b", Some("1"))]);
    put(&*kv, &[("a", None)]);
    assert_eq!(value(&*old, "a").as_deref(), Some("1"));
    assert_eq!(
        get(&*old, "a", Ts::MAX),
        Some(Version {
            ts: t1,
            value: Some(b("1"))
        })
    );
    assert_eq!(value(&*old, "b"), None);
    assert_eq!(
        scan(&*old, everything(), Ts::MAX, ScanOrder::Ascending),
        pairs(&[("a", "1")])
    );
    assert_eq!(
        version_list(&*old, "a", (Bound::Unbounded, Bound::Unbounded)).len(),
        1
    );
    let new = kv.begin().unwrap();
    assert_eq!(value(&*new, "a"), None);
    assert_eq!(value(&*new, "b").as_deref(), Some("1"));
    kv.close().unwrap();
}

pub fn get_reads_the_newest_version_at_or_before_at(make: MakeKv<'_>) {
    let kv = make();
    let t1 = put(&*kv, &[("a", Some("1"))]);
    let t2 = put(&*kv, &[("a", Some("2"))]);
    let t3 = put(&*kv, &[("a", None)]);
    let s = kv.begin().unwrap();
    assert_eq!(
        get(&*s, "a", s.ts()),
        Some(Version {
            ts: t3,
            value: None
        })
    );
    assert_eq!(
        get(&*s, "a", t3),
        Some(Version {
            ts: t3,
            value: None
        })
    );
    assert_eq!(
        get(&*s, "a", Ts(t3.0 - 1)),
        Some(Version {
            ts: t2,
            value: Some(b("2"))
        })
    );
    assert_eq!(
        get(&*s, "a", t2),
        Some(Version {
            ts: t2,
            value: Some(b("2"))
        })
    );
    assert_eq!(
        get(&*s, "a", t1),
        Some(Version {
            ts: t1,
            value: Some(b("1"))
        })
    );
    assert_eq!(get(&*s, "a", Ts(t1.0 - 1)), None);
    assert_eq!(get(&*s, "", s.ts()), None);
    assert_eq!(get(&*s, "a\0", s.ts()), None);
    assert_eq!(get(&*s, "b", s.ts()), None);
    kv.close().unwrap();
}

pub fn a_scan_with_tombstones_also_returns_deleted_keys(make: MakeKv<'_>) {
    let kv = make();
    let t1 = put(
        &*kv,
        &[("a", Some("a1")), ("b", Some("b1")), ("c", Some("c1"))],
    );
    // A long history on a key that ends deleted (past the scan's skip limit).
    for i in 2..=40 {
        put(&*kv, &[("b", Some(&format!("b{i}")))]);
    }
    put(&*kv, &[("b", None), ("d", Some("d1"))]);
    put(&*kv, &[("a", None)]);
    let s = kv.begin().unwrap();
    let listed = |range: KeyRange, at: Ts| -> Vec<(String, Option<String>)> {
        s.scan_with_tombstones(range, at)
            .unwrap()
            .map(|item| {
                let (key, version) = item.unwrap();
                assert!(version.ts <= at, "a version newer than `at`");
                (
                    String::from_utf8(key).unwrap(),
                    version.value.map(|v| String::from_utf8(v).unwrap()),
                )
            })
            .collect()
    };
    let now = |key: &str, value: Option<&str>| (key.to_owned(), value.map(str::to_owned));
    assert_eq!(
        listed(everything(), s.ts()),
        vec![
            now("a", None),
            now("b", None),
            now("c", Some("c1")),
            now("d", Some("d1"))
        ]
    );
    // At an older time the deleted keys were live, and `d` did not exist yet.
    assert_eq!(
        listed(everything(), t1),
        vec![
            now("a", Some("a1")),
            now("b", Some("b1")),
            now("c", Some("c1"))
        ]
    );
    assert_eq!(
        listed(KeyRange::new("b", "d"), s.ts()),
        vec![now("b", None), now("c", Some("c1"))]
    );
    // The ordinary scan still skips them.
    assert_eq!(
        scan(&*s, everything(), s.ts(), ScanOrder::Ascending),
        pairs(&[("c", "c1"), ("d", "d1")])
    );
    kv.close().unwrap();
}

pub fn scans_skip_tombstones_and_respect_bounds_in_both_orders(make: MakeKv<'_>) {
    let kv = make();
    put(
        &*kv,
        &[
            ("a", Some("a1")),
            ("b", Some("b1")),
            ("c", Some("c1")),
            ("d", Some("d1")),
        ],
    );
    // A long history on one key, and a key whose newest version is a tombstone.
    for i in 2..=20 {
        put(&*kv, &[("c", Some(&format!("c{i}")))]);
    }
    put(
        &*kv,
        &[
            ("b", None),
            ("e", Some("e1")),
            ("e\0", Some("e0")),
            ("f", Some("f1")),
        ],
    );
    let s = kv.begin().unwrap();
    let at = s.ts();
    let all = pairs(&[
        ("a", "a1"),
        ("c", "c20"),
        ("d", "d1"),
        ("e", "e1"),
        ("e\0", "e0"),
        ("f", "f1"),
    ]);
    assert_eq!(scan(&*s, everything(), at, ScanOrder::Ascending), all);
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(scan(&*s, everything(), at, ScanOrder::Descending), reversed);

    let bounded = pairs(&[("c", "c20"), ("d", "d1")]);
    assert_eq!(
        scan(&*s, KeyRange::new("b", "e"), at, ScanOrder::Ascending),
        bounded
    );
    let mut bounded_desc = bounded.clone();
    bounded_desc.reverse();
    assert_eq!(
        scan(&*s, KeyRange::new("b", "e"), at, ScanOrder::Descending),
        bounded_desc
    );

    let prefix = pairs(&[("e", "e1"), ("e\0", "e0")]);
    assert_eq!(
        scan(&*s, KeyRange::prefix(b"e"), at, ScanOrder::Ascending),
        prefix
    );
    assert_eq!(
        scan(&*s, KeyRange::new("c", "c"), at, ScanOrder::Ascending),
        Vec::new()
    );
    assert_eq!(
        scan(&*s, KeyRange::new("d", "c"), at, ScanOrder::Descending),
        Vec::new()
    );
    let open_end = KeyRange {
        start: b("d\0"),
        end: None,
    };
    assert_eq!(
        scan(&*s, open_end.clone(), at, ScanOrder::Descending),
        pairs(&[("f", "f1"), ("e\0", "e0"), ("e", "e1")])
    );
    assert_eq!(scan(&*s, open_end, at, ScanOrder::Ascending).len(), 3);
    kv.close().unwrap();
}

pub fn a_scan_at_an_older_timestamp_sees_the_older_world(make: MakeKv<'_>) {
    let kv = make();
    put(&*kv, &[("a", Some("a1")), ("b", Some("b1"))]);
    let mut mid = Ts::ZERO;
    for i in 2..=15 {
        let ts = put(&*kv, &[("b", Some(&format!("b{i}")))]);
        if i == 7 {
            mid = ts;
        }
    }
    put(&*kv, &[("a", None), ("c", Some("c1"))]);
    let s = kv.begin().unwrap();
    let old = pairs(&[("a", "a1"), ("b", "b7")]);
    assert_eq!(scan(&*s, everything(), mid, ScanOrder::Ascending), old);
    let mut old_desc = old.clone();
    old_desc.reverse();
    assert_eq!(
        scan(&*s, everything(), mid, ScanOrder::Descending),
        old_desc
    );
    let now = pairs(&[("b", "b15"), ("c", "c1")]);
    assert_eq!(scan(&*s, everything(), s.ts(), ScanOrder::Ascending), now);
    kv.close().unwrap();
}

pub fn versions_lists_history_newest_first_within_bounds(make: MakeKv<'_>) {
    let kv = make();
    let t1 = put(
        &*kv,
        &[("k", Some("1")), ("j", Some("x")), ("k\0", Some("y"))],
    );
    let t2 = put(&*kv, &[("k", None)]);
    let before_t3 = kv.begin().unwrap();
    let t3 = put(&*kv, &[("k", Some("3"))]);
    let s = kv.begin().unwrap();
    let one = Some("1".to_string());
    let three = Some("3".to_string());
    use Bound::{Excluded, Included, Unbounded};
    assert_eq!(
        version_list(&*s, "k", (Unbounded, Unbounded)),
        vec![(t3, three.clone()), (t2, None), (t1, one.clone())]
    );
    assert_eq!(
        version_list(&*s, "k", (Included(t2), Unbounded)),
        vec![(t3, three), (t2, None)]
    );
    assert_eq!(
        version_list(&*s, "k", (Excluded(t1), Excluded(t3))),
        vec![(t2, None)]
    );
    assert_eq!(
        version_list(&*s, "k", (Unbounded, Included(t1))),
        vec![(t1, one.clone())]
    );
    assert_eq!(
        version_list(&*s, "k", (Unbounded, Excluded(Ts::ZERO))),
        Vec::new()
    );
    assert_eq!(
        version_list(&*s, "missing", (Unbounded, Unbounded)),
        Vec::new()
    );
    assert_eq!(
        version_list(&*before_t3, "k", (Unbounded, Unbounded)),
        vec![(t2, None), (t1, one)]
    );
    kv.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Conflicts and atomicity

pub fn reading_a_key_written_after_the_snapshot_conflicts(make: MakeKv<'_>) {
    let kv = make();
    put(&*kv, &[("x", Some("1"))]);
    let s = kv.begin().unwrap();
    put(&*kv, &[("x", Some("2"))]);
    let txn = WriteSet {
        snapshot_ts: s.ts(),
        read_keys: vec![b("x")],
        writes: writes(&[("y", Some("from x=1"))]),
        ..WriteSet::default()
    };
    assert!(is_conflict(kv.commit(txn, None)));
    assert_eq!(value(&*kv.begin().unwrap(), "y"), None);
    kv.close().unwrap();
}

pub fn a_phantom_insert_into_a_read_range_conflicts(make: MakeKv<'_>) {
    let kv = make();
    put(&*kv, &[("p/1", Some("a"))]);
    let s = kv.begin().unwrap();
    put(&*kv, &[("p/2", Some("b"))]);
    let txn = WriteSet {
        snapshot_ts: s.ts(),
        read_ranges: vec![KeyRange::prefix(b"p/")],
        writes: writes(&[("count", Some("1"))]),
        ..WriteSet::default()
    };
    assert!(is_conflict(kv.commit(txn, None)));
    kv.close().unwrap();
}

pub fn disjoint_reads_and_writes_do_not_conflict(make: MakeKv<'_>) {
    let kv = make();
    let s = kv.begin().unwrap();
    put(&*kv, &[("a", Some("1")), ("d", Some("1"))]);
    let txn = WriteSet {
        snapshot_ts: s.ts(),
        read_keys: vec![b("b")],
        read_ranges: vec![KeyRange::new("b", "d"), KeyRange::new("e", "f")],
        writes: writes(&[("b", Some("2")), ("a", Some("2"))]),
    };
    let ts = kv.commit(txn, None).unwrap();
    assert!(ts > s.ts());
    let now = kv.begin().unwrap();
    assert_eq!(value(&*now, "a").as_deref(), Some("2"));
    assert_eq!(value(&*now, "b").as_deref(), Some("2"));
    kv.close().unwrap();
}

pub fn blind_writes_to_one_key_both_succeed(make: MakeKv<'_>) {
    let kv = make();
    let s1 = kv.begin().unwrap();
    let s2 = kv.begin().unwrap();
    let first = WriteSet {
        snapshot_ts: s2.ts(),
        writes: writes(&[("k", Some("1"))]),
        ..WriteSet::default()
    };
    let second = WriteSet {
        snapshot_ts: s1.ts(),
        writes: writes(&[("k", Some("2"))]),
        ..WriteSet::default()
    };
    let t1 = kv.commit(first, None).unwrap();
    let t2 = kv.commit(second, None).unwrap();
    assert!(t1 < t2);
    let now = kv.begin().unwrap();
    assert_eq!(value(&*now, "k").as_deref(), Some("2"));
    assert_eq!(
        version_list(&*now, "k", (Bound::Unbounded, Bound::Unbounded)).len(),
        2
    );
    kv.close().unwrap();
}

pub fn a_conflicting_transaction_applies_nothing(make: MakeKv<'_>) {
    let kv = make();
    put(&*kv, &[("x", Some("1"))]);
    let s = kv.begin().unwrap();
    let winner = put(&*kv, &[("x", Some("2"))]);
    let txn = WriteSet {
        snapshot_ts: s.ts(),
        read_keys: vec![b("x")],
        writes: writes(&[
            ("a", Some("1")),
            ("x", Some("3")),
            ("z", None),
            ("zz", Some("1")),
        ]),
        ..WriteSet::default()
    };
    assert!(is_conflict(kv.commit(txn, None)));
    assert_eq!(kv.last_commit_ts(), winner);
    let now = kv.begin().unwrap();
    assert_eq!(
        scan(&*now, everything(), now.ts(), ScanOrder::Ascending),
        pairs(&[("x", "2")])
    );
    assert_eq!(
        version_list(&*now, "z", (Bound::Unbounded, Bound::Unbounded)),
        Vec::new()
    );
    kv.close().unwrap();
}

pub fn a_read_only_commit_validates_its_reads(make: MakeKv<'_>) {
    let kv = make();
    let s = kv.begin().unwrap();
    let unchanged = WriteSet {
        snapshot_ts: s.ts(),
        read_keys: vec![b("x")],
        ..WriteSet::default()
    };
    let ts = kv.commit(unchanged, None).unwrap();
    assert!(ts > s.ts());
    let s = kv.begin().unwrap();
    put(&*kv, &[("x", Some("1"))]);
    let changed = WriteSet {
        snapshot_ts: s.ts(),
        read_keys: vec![b("x")],
        ..WriteSet::default()
    };
    assert!(is_conflict(kv.commit(changed, None)));
    kv.close().unwrap();
}

pub fn an_expired_deadline_applies_nothing(make: MakeKv<'_>) {
    let kv = make();
    let s = kv.begin().unwrap();
    let txn = WriteSet {
        snapshot_ts: s.ts(),
        writes: writes(&[("late", Some("1"))]),
        ..WriteSet::default()
    };
    let expired = Instant::now();
    assert!(matches!(
        kv.commit(txn, Some(expired)),
        Err(CommitError::DeadlineExceeded)
    ));
    assert_eq!(value(&*kv.begin().unwrap(), "late"), None);
    assert_eq!(kv.last_commit_ts(), Ts::ZERO);
    // A deadline far away does not get in the way.
    let txn = WriteSet {
        snapshot_ts: s.ts(),
        writes: writes(&[("late", Some("2"))]),
        ..WriteSet::default()
    };
    let later = Instant::now() + Duration::from_secs(3600);
    let ts = kv.commit(txn, Some(later)).unwrap();
    assert_eq!(
        get(&*kv.begin().unwrap(), "late", Ts::MAX),
        Some(Version {
            ts,
            value: Some(b("2"))
        })
    );
    kv.close().unwrap();
}

pub fn the_last_write_to_a_key_in_one_transaction_wins(make: MakeKv<'_>) {
    let kv = make();
    put(
        &*kv,
        &[
            ("k", Some("1")),
            ("j", Some("x")),
            ("k", Some("2")),
            ("j", None),
            ("i", None),
            ("i", Some("i")),
        ],
    );
    let s = kv.begin().unwrap();
    assert_eq!(value(&*s, "k").as_deref(), Some("2"));
    assert_eq!(value(&*s, "j"), None);
    assert_eq!(value(&*s, "i").as_deref(), Some("i"));
    assert_eq!(
        version_list(&*s, "k", (Bound::Unbounded, Bound::Unbounded)).len(),
        1
    );
    assert_eq!(
        version_list(&*s, "j", (Bound::Unbounded, Bound::Unbounded)).len(),
        1
    );
    kv.close().unwrap();
}

pub fn last_commit_ts_is_the_newest_commit(make: MakeKv<'_>) {
    let kv = make();
    assert_eq!(kv.last_commit_ts(), Ts::ZERO);
    let t1 = put(&*kv, &[("a", Some("1"))]);
    assert_eq!(kv.last_commit_ts(), t1);
    let t2 = put(&*kv, &[("b", Some("1"))]);
    assert_eq!(kv.last_commit_ts(), t2);
    kv.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Concurrency

pub fn a_snapshot_sees_every_commit_acknowledged_before_it_began(make: MakeKv<'_>) {
    let kv = make();
    let (acks, received) = mpsc::channel::<(String, Ts)>();
    std::thread::scope(|scope| {
        for writer in 0..4 {
            let kv = &kv;
            let acks = acks.clone();
            scope.spawn(move || {
                for i in 0..25 {
                    let key = format!("ack/{writer}/{i}");
                    let ts = put(&**kv, &[(&key, Some("1"))]);
                    acks.send((key, ts)).unwrap();
                }
            });
        }
        drop(acks);
        for (key, ts) in received {
            let s = kv.begin().unwrap();
            assert!(s.ts() > ts);
            assert_eq!(
                get(&*s, &key, s.ts()),
                Some(Version {
                    ts,
                    value: Some(b("1"))
                })
            );
        }
    });
    kv.close().unwrap();
}

const ACCOUNTS: u64 = 8;
const INITIAL_BALANCE: u64 = 100;
const WRITERS: u64 = 4;
const TRANSFERS_PER_WRITER: u64 = 40;

fn account(i: u64) -> String {
    format!("acct/{i}")
}

fn balance(snapshot: &dyn Snapshot, key: &str, at: Ts) -> u64 {
    let version = get(snapshot, key, at).expect("every account exists");
    String::from_utf8(version.value.expect("no account is deleted"))
        .unwrap()
        .parse()
        .unwrap()
}

/// The sum of all balances seen by one scan at `at`.
fn total(snapshot: &dyn Snapshot, at: Ts) -> u64 {
    let accounts = scan(
        snapshot,
        KeyRange::prefix(b"acct/"),
        at,
        ScanOrder::Ascending,
    );
    assert_eq!(accounts.len() as u64, ACCOUNTS);
    accounts
        .iter()
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum()
}

/// One transfer, retried on conflict until it commits. With a `pin`, each attempt's snapshot
/// is pinned (see [`pinned_begin`]).
fn transfer(kv: &dyn Kv, rng: &mut Rng, pin: Option<&AtomicU64>) {
    for _attempt in 0..100_000 {
        let s = match pin {
            Some(pin) => pinned_begin(kv, pin),
            None => kv.begin().unwrap(),
        };
        let from = account(rng.below(ACCOUNTS));
        let to = account(rng.below(ACCOUNTS));
        let amount = rng.below(30);
        let from_balance = balance(&*s, &from, s.ts());
        let to_balance = balance(&*s, &to, s.ts());
        let ops = value(&*s, "ops").map_or(0, |v| v.parse::<u64>().unwrap());
        let moved = amount.min(from_balance);
        let mut txn = WriteSet {
            snapshot_ts: s.ts(),
            read_keys: vec![b(&from), b(&to), b("ops")],
            ..WriteSet::default()
        };
        txn.writes
            .push((b(&from), Some(b(&(from_balance - moved).to_string()))));
        // Same key twice when from == to: the later write (the unchanged balance) wins.
        txn.writes.push((
            b(&to),
            Some(b(&(to_balance + moved
                - if from == to { moved } else { 0 })
            .to_string())),
        ));
        txn.writes.push((b("ops"), Some(b(&(ops + 1).to_string()))));
        match kv.commit(txn, None) {
            Ok(_) => return,
            Err(CommitError::Conflict) => continue,
            Err(other) => panic!("transfer failed: {other:?}"),
        }
    }
    panic!("a transfer kept conflicting");
}

pub fn concurrent_transfers_are_serializable(make: MakeKv<'_>) {
    let kv = make();
    let initial: Vec<(String, String)> = (0..ACCOUNTS)
        .map(|i| (account(i), INITIAL_BALANCE.to_string()))
        .collect();
    let initial_refs: Vec<(&str, Option<&str>)> = initial
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    put(&*kv, &initial_refs);
    let expected_total = ACCOUNTS * INITIAL_BALANCE;
    let writers_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let mut checks = 0u64;
            while !writers_done.load(Ordering::Acquire) || checks == 0 {
                let s = kv.begin().unwrap();
                assert_eq!(
                    total(&*s, s.ts()),
                    expected_total,
                    "a snapshot saw money appear or vanish"
                );
                checks += 1;
            }
        });
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let kv = &kv;
                scope.spawn(move || {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (w + 1));
                    for _ in 0..TRANSFERS_PER_WRITER {
                        transfer(&**kv, &mut rng, None);
                    }
                })
            })
            .collect();
        // Whatever the writers did, stop the others before failing, or they would spin on.
        let finished: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        writers_done.store(true, Ordering::Release);
        for result in finished {
            result.unwrap();
        }
        reader.join().unwrap();
    });
    let s = kv.begin().unwrap();
    assert_eq!(
        value(&*s, "ops"),
        Some((WRITERS * TRANSFERS_PER_WRITER).to_string()),
        "a transfer was lost"
    );
    // Every state in the history balances, not only the ones the reader happened to see.
    let history: Vec<Ts> = version_list(&*s, "ops", (Bound::Unbounded, Bound::Unbounded))
        .into_iter()
        .map(|(ts, _)| ts)
        .collect();
    assert_eq!(history.len() as u64, WRITERS * TRANSFERS_PER_WRITER);
    for ts in history {
        assert_eq!(
            total(&*s, ts),
            expected_total,
            "the state at {ts} does not balance"
        );
    }
    kv.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Pruning

/// Prunes `range` in calls of `max_keys` keys until it is done; returns the summed stats and
/// every `resume_at` seen.
fn prune_all(
    kv: &dyn Kv,
    range: &KeyRange,
    horizon: Ts,
    max_keys: usize,
) -> (PruneStats, Vec<Vec<u8>>) {
    let mut total = PruneStats::default();
    let mut resumes = Vec::new();
    let mut range = range.clone();
    loop {
        let step = kv.prune(range.clone(), horizon, max_keys).unwrap();
        assert!(
            step.keys_scanned <= max_keys as u64,
            "looked at too many keys"
        );
        total.keys_scanned += step.keys_scanned;
        total.versions_removed += step.versions_removed;
        match step.resume_at {
            Some(next) => {
                assert!(
                    range.contains(&next),
                    "resume_at {next:?} is outside the range"
                );
                assert!(next > range.start, "a step made no progress");
                resumes.push(next.clone());
                range.start = next;
            }
            None => return (total, resumes),
        }
    }
}

/// A fresh snapshot, after setting `pin` (owned by one thread, whose previous snapshot is no
/// longer used) to the last commit timestamp, which is below the new snapshot. A pruner that
/// keeps its horizon at or below every pin never prunes what a pinned snapshot sees.
fn pinned_begin(kv: &dyn Kv, pin: &AtomicU64) -> Box<dyn Snapshot> {
    pin.store(kv.last_commit_ts().0, Ordering::SeqCst);
    let s = kv.begin().unwrap();
    assert!(s.ts().0 > pin.load(Ordering::SeqCst));
    s
}

/// The versions of one key, newest first (`None`: a tombstone).
type History = Vec<(Ts, Option<String>)>;

/// Every version of every key in `keys`, newest first per key.
fn all_versions(snapshot: &dyn Snapshot, keys: &[&str]) -> Vec<(String, History)> {
    keys.iter()
        .map(|key| {
            let versions = version_list(snapshot, key, (Bound::Unbounded, Bound::Unbounded));
            (key.to_string(), versions)
        })
        .collect()
}

/// Everything a read at `at` returns: scans in both orders and over a sub-range, and per key
/// its `get` (a tombstone counted as absent) and its versions above `horizon` (and at it,
/// except a tombstone: a prune at `horizon` removes that one).
#[derive(Debug, PartialEq)]
struct Observed {
    ascending: Vec<(String, String)>,
    descending: Vec<(String, String)>,
    sub_range: Vec<(String, String)>,
    gets: Vec<Option<Version>>,
    versions: Vec<History>,
}

fn observe(snapshot: &dyn Snapshot, keys: &[&str], at: Ts, horizon: Ts) -> Observed {
    Observed {
        ascending: scan(snapshot, everything(), at, ScanOrder::Ascending),
        descending: scan(snapshot, everything(), at, ScanOrder::Descending),
        sub_range: scan(snapshot, KeyRange::new("b", "f"), at, ScanOrder::Descending),
        gets: keys
            .iter()
            .map(|key| get(snapshot, key, at).filter(|v| v.value.is_some()))
            .collect(),
        versions: keys
            .iter()
            .map(|key| {
                let mut list = version_list(
                    snapshot,
                    key,
                    (Bound::Included(horizon), Bound::Included(at)),
                );
                list.retain(|(ts, value)| *ts > horizon || value.is_some());
                list
            })
            .collect(),
    }
}

/// For each key, how many versions a prune at `horizon` removes: those below the newest one
/// at or below `horizon`, and that one too if it is a tombstone.
fn hidden_count(history: &[(String, History)], horizon: Ts) -> u64 {
    history
        .iter()
        .map(|(_, versions)| {
            let old: Vec<_> = versions.iter().filter(|(ts, _)| *ts <= horizon).collect();
            match old.first() {
                None => 0,
                Some((_, None)) => old.len() as u64,
                Some((_, Some(_))) => old.len() as u64 - 1,
            }
        })
        .sum()
}

const PRUNE_KEYS: &[&str] = &["a", "b", "c", "d", "e", "f", "g", "h"];

pub fn pruning_keeps_every_snapshot_at_or_after_the_horizon_identical(make: MakeKv<'_>) {
    let kv = make();
    put(
        &*kv,
        &[
            ("a", Some("a1")),
            ("b", Some("b1")),
            ("c", Some("c1")),
            ("d", Some("d1")),
            ("f", Some("f1")),
            ("g", None),
        ],
    );
    // A long history on both sides of the horizon.
    for i in 0..12 {
        put(&*kv, &[("h", Some(&format!("h-old{i}")))]);
    }
    put(&*kv, &[("a", Some("a2")), ("b", None)]);
    let horizon = put(&*kv, &[("a", Some("a3")), ("d", None), ("f", Some("f2"))]);
    let mut after = Vec::new();
    for i in 0..12 {
        after.push(put(&*kv, &[("h", Some(&format!("h-new{i}")))]));
    }
    after.push(put(
        &*kv,
        &[("a", Some("a4")), ("b", Some("b3")), ("e", Some("e1"))],
    ));
    let before = kv.begin().unwrap();
    let mut stamps = vec![horizon, Ts(horizon.0 + 1), before.ts()];
    stamps.extend(after);
    let seen: Vec<Observed> = stamps
        .iter()
        .map(|&at| observe(&*before, PRUNE_KEYS, at, horizon))
        .collect();

    let (stats, _) = prune_all(&*kv, &everything(), horizon, 3);
    assert!(stats.versions_removed > 0);
    // `before` read before the prune and `after` reads only after it.
    for s in [before, kv.begin().unwrap()] {
        for (at, expected) in stamps.iter().zip(&seen) {
            assert_eq!(
                &observe(&*s, PRUNE_KEYS, *at, horizon),
                expected,
                "a read at {at} changed (horizon {horizon})"
            );
        }
    }
    kv.close().unwrap();
}

pub fn pruning_removes_tombstoned_keys_entirely(make: MakeKv<'_>) {
    let kv = make();
    put(&*kv, &[("x", Some("1")), ("y", Some("1"))]);
    put(&*kv, &[("x", None)]);
    let t3 = put(&*kv, &[("y", None)]);
    let t4 = put(&*kv, &[("y", Some("2"))]);
    let t5 = put(&*kv, &[("z", Some("1"))]);
    let t6 = put(&*kv, &[("z", None)]);
    let stats = kv.prune(everything(), t3, 100).unwrap();
    assert_eq!(stats.versions_removed, 4);
    let s = kv.begin().unwrap();
    let unbounded = (Bound::Unbounded, Bound::Unbounded);
    assert_eq!(version_list(&*s, "x", unbounded), Vec::new());
    assert_eq!(get(&*s, "x", s.ts()), None);
    assert_eq!(
        version_list(&*s, "y", unbounded),
        vec![(t4, Some("2".to_string()))]
    );
    assert_eq!(
        version_list(&*s, "z", unbounded),
        vec![(t6, None), (t5, Some("1".to_string()))]
    );
    // Once deleted before the horizon and never written again, a key is gone.
    kv.prune(everything(), t6, 100).unwrap();
    let s = kv.begin().unwrap();
    assert_eq!(version_list(&*s, "z", unbounded), Vec::new());
    assert_eq!(
        scan(&*s, everything(), s.ts(), ScanOrder::Ascending),
        pairs(&[("y", "2")])
    );
    for prefix in [b"x", b"z"] {
        let left = kv
            .prune(KeyRange::prefix(prefix), kv.last_commit_ts(), 100)
            .unwrap();
        assert_eq!(
            left,
            PruneStats::default(),
            "nothing is left under {prefix:?}"
        );
    }
    // A pruned key can be written again like a new one.
    let t7 = put(&*kv, &[("x", Some("3"))]);
    let s = kv.begin().unwrap();
    assert_eq!(
        version_list(&*s, "x", unbounded),
        vec![(t7, Some("3".to_string()))]
    );
    kv.close().unwrap();
}

pub fn pruning_removes_exactly_the_hidden_versions(make: MakeKv<'_>) {
    let kv = make();
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let mut middle = Ts::ZERO;
    for round in 0..10 {
        // Key i gets a version in rounds >= i, and every third write is a delete.
        let writes: Vec<(String, Option<String>)> = keys
            .iter()
            .enumerate()
            .filter(|(i, _)| round >= *i)
            .map(|(i, key)| {
                (
                    key.clone(),
                    ((round + i) % 3 != 0).then(|| format!("{round}")),
                )
            })
            .collect();
        let refs: Vec<(&str, Option<&str>)> = writes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        let ts = put(&*kv, &refs);
        if round == 5 {
            middle = ts;
        }
    }
    let stored = |kv: &dyn Kv| -> u64 {
        let s = kv.begin().unwrap();
        all_versions(&*s, &key_refs)
            .iter()
            .map(|(_, v)| v.len() as u64)
            .sum()
    };
    let before = all_versions(&*kv.begin().unwrap(), &key_refs);
    let total = stored(&*kv);
    assert_eq!(total, 55);
    // A horizon between two commits.
    let horizon = Ts(middle.0 + 1);
    let expected = hidden_count(&before, horizon);
    assert!(expected > 0);
    let stats = kv.prune(everything(), horizon, 100).unwrap();
    assert_eq!(stats.versions_removed, expected);
    assert_eq!(stats.keys_scanned, 10);
    assert_eq!(stored(&*kv), total - expected);
    assert_eq!(
        kv.prune(everything(), horizon, 100)
            .unwrap()
            .versions_removed,
        0
    );

    // A horizon beyond the last commit counts as the last commit.
    let last = kv.last_commit_ts();
    let now = all_versions(&*kv.begin().unwrap(), &key_refs);
    let expected = hidden_count(&now, last);
    let stats = kv.prune(everything(), Ts::MAX, 100).unwrap();
    assert_eq!(stats.versions_removed, expected);
    let s = kv.begin().unwrap();
    for (key, versions) in all_versions(&*s, &key_refs) {
        assert!(
            versions.len() <= 1,
            "{key} kept hidden versions: {versions:?}"
        );
        assert!(
            versions.iter().all(|(_, v)| v.is_some()),
            "{key} kept a tombstone"
        );
    }
    kv.close().unwrap();
}

pub fn pruning_in_steps_covers_the_range_exactly_once(make: MakeKv<'_>) {
    let kv = make();
    let keys: Vec<String> = (0..20).map(|i| format!("k/{i:02}")).collect();
    for round in 0..2 {
        let mut writes: Vec<(&str, Option<&str>)> =
            keys.iter().map(|k| (k.as_str(), Some("v"))).collect();
        writes.extend([("j", Some("v")), ("l", Some("v")), ("k", Some("v"))]);
        if round == 1 {
            writes.push(("k/\u{ff}", None));
        }
        put(&*kv, &writes);
    }
    let horizon = kv.last_commit_ts();
    let range = KeyRange::prefix(b"k/");
    let none = kv.prune(range.clone(), horizon, 0).unwrap();
    assert_eq!(
        none,
        PruneStats {
            keys_scanned: 0,
            versions_removed: 0,
            resume_at: Some(b("k/00")),
        }
    );
    let (stats, resumes) = prune_all(&*kv, &range, horizon, 3);
    let expected_resumes: Vec<Vec<u8>> = (1..7).map(|i| b(&format!("k/{:02}", i * 3))).collect();
    assert_eq!(resumes, expected_resumes);
    assert_eq!(stats.keys_scanned, 21);
    assert_eq!(stats.versions_removed, 21);
    let s = kv.begin().unwrap();
    for key in ["j", "k", "l"] {
        assert_eq!(
            version_list(&*s, key, (Bound::Unbounded, Bound::Unbounded)).len(),
            2,
            "{key} is outside the range"
        );
    }
    for key in &keys {
        assert_eq!(
            version_list(&*s, key, (Bound::Unbounded, Bound::Unbounded)).len(),
            1
        );
    }
    kv.close().unwrap();
}

pub fn a_transaction_that_read_pruned_history_conflicts(make: MakeKv<'_>) {
    let kv = make();
    put(&*kv, &[("k", Some("1")), ("p/1", Some("1"))]);
    let old = kv.begin().unwrap();
    let horizon = put(&*kv, &[("k", Some("2")), ("p/1", None)]);
    assert!(
        kv.prune(everything(), horizon, 100)
            .unwrap()
            .versions_removed
            > 0
    );
    // Whatever `old` reads now, what it read cannot be committed on.
    let _ = old.get(b"k", old.ts());
    let read_key = WriteSet {
        snapshot_ts: old.ts(),
        read_keys: vec![b("k")],
        writes: writes(&[("out", Some("from k"))]),
        ..WriteSet::default()
    };
    assert!(is_conflict(kv.commit(read_key, None)));
    let read_range = WriteSet {
        snapshot_ts: old.ts(),
        read_ranges: vec![KeyRange::prefix(b"p/")],
        writes: writes(&[("out", Some("from p"))]),
        ..WriteSet::default()
    };
    assert!(is_conflict(kv.commit(read_range, None)));
    let blind = WriteSet {
        snapshot_ts: old.ts(),
        writes: writes(&[("out", Some("blind"))]),
        ..WriteSet::default()
    };
    assert!(kv.commit(blind, None).is_ok());
    kv.close().unwrap();
}

pub fn commits_and_reads_stay_correct_while_pruning(make: MakeKv<'_>) {
    let kv = make();
    let initial: Vec<(String, String)> = (0..ACCOUNTS)
        .map(|i| (account(i), INITIAL_BALANCE.to_string()))
        .collect();
    let initial_refs: Vec<(&str, Option<&str>)> = initial
        .iter()
        .map(|(k, v)| (k.as_str(), Some(v.as_str())))
        .collect();
    put(&*kv, &initial_refs);
    let expected_total = ACCOUNTS * INITIAL_BALANCE;
    // One pin per writer and one for the reader: no prune goes above the lowest.
    let pins: Vec<AtomicU64> = (0..=WRITERS).map(|_| AtomicU64::new(0)).collect();
    let horizon = || {
        Ts(pins
            .iter()
            .map(|p| p.load(Ordering::SeqCst))
            .min()
            .unwrap_or(0))
    };
    let writers_done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| {
            let pin = &pins[WRITERS as usize];
            let mut checks = 0u64;
            while !writers_done.load(Ordering::Acquire) || checks == 0 {
                let s = pinned_begin(&*kv, pin);
                assert_eq!(total(&*s, s.ts()), expected_total, "a snapshot lost money");
                checks += 1;
            }
        });
        // Two pruners with different step sizes and horizons, overlapping on every key.
        let pruners: Vec<_> = [(2usize, 0u64), (5, 1)]
            .into_iter()
            .map(|(max_keys, lag)| {
                let (kv, horizon, writers_done) = (&kv, &horizon, &writers_done);
                scope.spawn(move || {
                    let mut previous = Ts::ZERO;
                    let mut removed = 0;
                    while !writers_done.load(Ordering::Acquire) {
                        let now = horizon();
                        let at = if lag == 0 { now } else { previous };
                        removed += prune_all(&**kv, &everything(), at, max_keys)
                            .0
                            .versions_removed;
                        previous = now;
                    }
                    removed
                })
            })
            .collect();
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (kv, pin) = (&kv, &pins[w as usize]);
                scope.spawn(move || {
                    let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ (w + 1));
                    for _ in 0..TRANSFERS_PER_WRITER {
                        transfer(&**kv, &mut rng, Some(pin));
                    }
                })
            })
            .collect();
        // Whatever the writers did, stop the others before failing, or they would spin on.
        let finished: Vec<_> = writers.into_iter().map(|w| w.join()).collect();
        writers_done.store(true, Ordering::Release);
        for result in finished {
            result.unwrap();
        }
        reader.join().unwrap();
        for pruner in pruners {
            pruner.join().unwrap();
        }
    });
    // Nobody reads any more: everything hidden can go.
    prune_all(&*kv, &everything(), kv.last_commit_ts(), 4);
    let s = kv.begin().unwrap();
    assert_eq!(total(&*s, s.ts()), expected_total);
    assert_eq!(
        value(&*s, "ops"),
        Some((WRITERS * TRANSFERS_PER_WRITER).to_string()),
        "a transfer was lost"
    );
    for i in 0..ACCOUNTS {
        let history = version_list(&*s, &account(i), (Bound::Unbounded, Bound::Unbounded));
        assert_eq!(history.len(), 1, "account {i} kept hidden versions");
    }
    kv.close().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Closing

pub fn close_makes_every_later_call_fail_cleanly(make: MakeKv<'_>) {
    let kv = make();
    put(&*kv, &[("a", Some("1"))]);
    let s = kv.begin().unwrap();
    let unread = kv.begin().unwrap();
    assert_eq!(value(&*s, "a").as_deref(), Some("1"));
    kv.close().unwrap();
    assert!(matches!(
        unread.get(b"a", unread.ts()),
        Err(KvError::Closed)
    ));
    assert!(matches!(kv.begin(), Err(KvError::Closed)));
    let txn = WriteSet {
        snapshot_ts: s.ts(),
        writes: writes(&[("b", Some("1"))]),
        ..WriteSet::default()
    };
    assert!(matches!(
        kv.commit(txn, None),
        Err(CommitError::Kv(KvError::Closed))
    ));
    assert!(matches!(s.get(b"a", s.ts()), Err(KvError::Closed)));
    assert!(matches!(
        s.scan(everything(), s.ts(), ScanOrder::Ascending),
        Err(KvError::Closed)
    ));
    assert!(matches!(
        s.versions(b"a", (Bound::Unbounded, Bound::Unbounded)),
        Err(KvError::Closed)
    ));
    assert!(matches!(
        kv.prune(everything(), Ts::MAX, 10),
        Err(KvError::Closed)
    ));
    assert!(matches!(kv.close(), Err(KvError::Closed)));
}
