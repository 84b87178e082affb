//! Crash safety: a process committing in a loop is killed with SIGKILL; after reopening, every
//! commit it acknowledged is present and nothing half-written is visible.
//!
//! The test re-executes its own binary as the child (selected by an environment variable), so
//! no helper binary is needed. The child's writers each commit, in sequence, transactions that
//! write three keys at once, and print one `ack` line per acknowledged commit. The parent
//! kills the child after some acknowledgements, several rounds on the same store, and checks:
//! every acknowledged commit is there with its timestamp; every present transaction has all
//! three keys at one timestamp; each writer's transactions form a prefix (no gap); no version
//! is newer than the stored last commit timestamp, and the commit at that timestamp is there
//! (data and metadata are written together). The same runs on an encrypted store.

// Tests may unwrap: a failure is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use testudo_storage::{KeyRange, Kv, LocalKvOptions, ScanOrder, Ts, WriteSet};
use testudo_storage_redb::StoreKind;
use testudo_storage_redb::keys::MasterKey;

const CHILD_DIR: &str = "TESTUDO_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "TESTUDO_CRASH_CHILD_ROUND";
/// The master key (base64) when the child's store is encrypted.
const CHILD_KEY: &str = "TESTUDO_CRASH_CHILD_KEY";
const TEST_NAME: &str =
    "acknowledged_commits_survive_sigkill_and_no_partial_transaction_is_visible";
const TEST_NAME_ENCRYPTED: &str = "acknowledged_commits_survive_sigkill_with_encryption_at_rest";
const WRITERS: u32 = 8;
const PARTS: [&str; 3] = ["a", "b", "c"];

fn key(round: u32, writer: u32, seq: u32, part: &str) -> Vec<u8> {
    format!("w/{round:02}/{writer:02}/{seq:08}/{part}").into_bytes()
}

/// The store in `dir`, encrypted under `key` (base64) when given.
fn open(dir: &Path, key: Option<&str>) -> Arc<dyn Kv> {
    match key {
        None => testudo_storage_redb::open(dir).unwrap(),
        Some(key) => {
            let key = MasterKey::from_base64(key, "test").unwrap();
            Arc::new(
                testudo_storage_redb::open_store(dir, Some(&key), LocalKvOptions::default())
                    .unwrap(),
            )
        }
    }
}

/// The child: commit forever (bounded, in case the parent is gone), acknowledging on stdout.
fn child(dir: &Path, round: u32) {
    let master = std::env::var(CHILD_KEY).ok();
    let kv = open(dir, master.as_deref());
    let give_up = Instant::now() + Duration::from_secs(120);
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let kv = &kv;
            scope.spawn(move || {
                for seq in 0..1_000_000u32 {
                    if Instant::now() > give_up {
                        return;
                    }
                    let snapshot_ts = kv.begin().unwrap().ts();
                    let value = seq.to_string().into_bytes();
                    let writes = PARTS
                        .iter()
                        .map(|p| (key(round, writer, seq, p), Some(value.clone())))
                        .collect();
                    let ts = kv
                        .commit(
                            WriteSet {
                                snapshot_ts,
                                writes,
                                ..WriteSet::default()
                            },
                            None,
                        )
                        .unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ack {round} {writer} {seq} {}", ts.0).unwrap();
                    out.flush().unwrap();
                }
            });
        }
    });
}

#[derive(Clone, Copy, Debug)]
struct Ack {
    round: u32,
    writer: u32,
    seq: u32,
    ts: Ts,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut fields = line
        .strip_prefix("ack ")?
        .split(' ')
        .map(|f| f.parse::<u64>().ok());
    let mut next = || fields.next().flatten();
    Some(Ack {
        round: u32::try_from(next()?).ok()?,
        writer: u32::try_from(next()?).ok()?,
        seq: u32::try_from(next()?).ok()?,
        ts: Ts(next()?),
    })
}

/// Runs one child until it acknowledged `kill_after` commits, kills it, returns every ack it
/// printed (including those printed between the decision and the kill).
fn crash_round(dir: &Path, round: u32, kill_after: usize, key: Option<&str>) -> Vec<Ack> {
    let test = if key.is_some() {
        TEST_NAME_ENCRYPTED
    } else {
        TEST_NAME
    };
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_ROUND, round.to_string());
    if let Some(key) = key {
        command.env(CHILD_KEY, key);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut acks = Vec::new();
    for line in lines.by_ref() {
        if let Some(ack) = parse_ack(&line.unwrap()) {
            acks.push(ack);
            if acks.len() >= kill_after {
                break;
            }
        }
    }
    assert_eq!(
        acks.len(),
        kill_after,
        "the child stopped before it was killed"
    );
    child.kill().unwrap(); // SIGKILL on Unix.
    acks.extend(
        lines
            .map_while(Result::ok)
            .filter_map(|line| parse_ack(&line)),
    );
    child.wait().unwrap();
    acks
}

fn verify(kv: &dyn Kv, acks: &[Ack]) {
    let s = kv.begin().unwrap();
    for ack in acks {
        for part in PARTS {
            let version = s
                .get(&key(ack.round, ack.writer, ack.seq, part), s.ts())
                .unwrap();
            assert_eq!(
                version.map(|v| v.ts),
                Some(ack.ts),
                "acknowledged commit {ack:?} is missing"
            );
        }
    }
    // (round, writer, seq) -> timestamps of its parts.
    let mut present: BTreeMap<(u32, u32, u32), Vec<Ts>> = BTreeMap::new();
    for item in s
        .scan(KeyRange::prefix(b"w/"), s.ts(), ScanOrder::Ascending)
        .unwrap()
    {
        let (key, version) = item.unwrap();
        let text = String::from_utf8(key).unwrap();
        let fields: Vec<u32> = text
            .split('/')
            .skip(1)
            .take(3)
            .map(|f| f.parse().unwrap())
            .collect();
        present
            .entry((fields[0], fields[1], fields[2]))
            .or_default()
            .push(version.ts);
    }
    let last_commit = kv.last_commit_ts();
    let mut newest = Ts::ZERO;
    let mut next_seq: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    for ((round, writer, seq), stamps) in &present {
        assert_eq!(
            stamps.len(),
            PARTS.len(),
            "transaction {round}/{writer}/{seq} is partial"
        );
        assert!(
            stamps.iter().all(|ts| *ts == stamps[0]),
            "one transaction, one timestamp"
        );
        let expected = next_seq.entry((*round, *writer)).or_insert(0);
        assert_eq!(
            *seq, *expected,
            "writer {round}/{writer} has a gap before {seq}"
        );
        *expected += 1;
        newest = newest.max(stamps[0]);
    }
    assert_eq!(
        newest, last_commit,
        "the stored last commit timestamp disagrees with the data"
    );
}

/// Three rounds of: a child commits, is killed, the parent reopens and checks.
fn crash_rounds(key: Option<&str>) {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        let round = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
        child(Path::new(&dir), round);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut acks = Vec::new();
    for round in 0..3u32 {
        acks.extend(crash_round(
            dir.path(),
            round,
            150 + 100 * round as usize,
            key,
        ));
        let kv = open(dir.path(), key);
        verify(&*kv, &acks);
        // Time goes on after the crash, too.
        assert!(kv.begin().unwrap().ts() > acks.iter().map(|a| a.ts).max().unwrap());
        kv.close().unwrap();
    }
    let kind = testudo_storage_redb::store_kind(dir.path()).unwrap();
    assert_eq!(kind == StoreKind::Encrypted, key.is_some());
}

#[test]
fn acknowledged_commits_survive_sigkill_and_no_partial_transaction_is_visible() {
    crash_rounds(None);
}

#[test]
fn acknowledged_commits_survive_sigkill_with_encryption_at_rest() {
    let key = MasterKey::generate().unwrap().1;
    // The child gets the key through the environment; the parent keeps the same one.
    let key = std::env::var(CHILD_KEY).unwrap_or_else(|_| key.to_string());
    crash_rounds(Some(&key));
}
