//! The audit log end to end: written by `AuditWriter`, tampered with by hand, judged by
//! `verify`, read back by `read_records` and `tail`.

#![allow(clippy::unwrap_used)] // helpers outside #[test]: a failed unwrap is a failed test

use std::fs;
use std::path::{Path, PathBuf};

use testudo_audit::{
    AuditEvent, AuditSink, AuditWriter, CredentialRef, DatabaseRef, Denial, Filter, Ops, Outcome,
    RequestRecord, VerifyError, WriterConfig, query_hash, read_records, tail, verify,
};

fn request(i: u64, db: u64, outcome: &str) -> AuditEvent {
    AuditEvent::Request(RequestRecord {
        endpoint: "/query/1".into(),
        status: if outcome == "ok" { 200 } else { 400 },
        outcome: Outcome::error(outcome),
        duration_us: 100 + i,
        client: Some("127.0.0.1".parse().unwrap()),
        database: Some(DatabaseRef::id(db)),
        credential: Some(CredentialRef::Key {
            database: db,
            id: 400 + i,
        }),
        txn_ts: Some(1_000 + i),
        query_hash: Some(query_hash(format!("Books.byId({i})").as_bytes())),
        tags: None,
        ops: Some(Ops {
            compute: 1,
            read: 1,
            write: 0,
            contention_retries: 0,
        }),
        trace_id: None,
    })
}

fn config(dir: &Path) -> WriterConfig {
    let mut config = WriterConfig::new(dir);
    // Small segments: every test spans several.
    config.segment_bytes = 2_000;
    config
}

/// Writes `n` requests and closes the writer (which seals the last segment).
fn write_log(config: WriterConfig, n: u64) {
    let writer = AuditWriter::open(config).unwrap();
    for i in 0..n {
        writer.record(request(i, i % 3, if i % 5 == 0 { "abort" } else { "ok" }));
    }
    writer.close();
    assert_eq!(writer.stats().written, n);
    assert_eq!(writer.stats().dropped, 0);
}

fn segment(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("audit-{n:010}.log"))
}

fn lines(dir: &Path, n: u64) -> Vec<String> {
    fs::read_to_string(segment(dir, n))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(dir: &Path, n: u64, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(segment(dir, n), text).unwrap();
}

fn problem(result: Result<testudo_audit::VerifyReport, VerifyError>) -> (u64, u64, String) {
    match result {
        Err(VerifyError::Broken(p)) => (p.segment, p.record, p.reason),
        other => panic!("expected a broken log, got {other:?}"),
    }
}

fn at(result: Result<testudo_audit::VerifyReport, VerifyError>) -> (u64, u64) {
    let (segment, record, _) = problem(result);
    (segment, record)
}

fn fresh_log(n: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_log(config(dir.path()), n);
    dir
}

#[test]
fn an_untouched_log_verifies_across_segments_and_restarts() {
    let dir = fresh_log(40);
    write_log(config(dir.path()), 10);
    let report = verify(dir.path(), None, None).unwrap();
    assert!(report.segments >= 4, "{report:?}");
    assert_eq!(report.first_segment, 1);
    // 50 requests plus a start and a seal per segment.
    assert_eq!(report.records, 50 + 2 * report.segments);
    assert!(!report.last_open);
}

#[test]
fn an_edited_byte_is_pinned_to_its_record() {
    let dir = fresh_log(40);
    let mut seg = lines(dir.path(), 2);
    seg[3] = seg[3].replacen("\"status\":200", "\"status\":201", 1);
    seg[3] = seg[3].replacen("\"status\":400", "\"status\":401", 1);
    write_lines(dir.path(), 2, &seg);
    let (segment, record, reason) = problem(verify(dir.path(), None, None));
    assert_eq!((segment, record), (2, 4));
    assert!(reason.contains("edited"), "{reason}");
}

#[test]
fn a_deleted_record_is_noticed_where_it_was() {
    let dir = fresh_log(40);
    let mut seg = lines(dir.path(), 2);
    seg.remove(2);
    write_lines(dir.path(), 2, &seg);
    let (segment, record, reason) = problem(verify(dir.path(), None, None));
    assert_eq!((segment, record), (2, 3));
    assert!(reason.contains("out of place"), "{reason}");
}

#[test]
fn an_inserted_record_is_pinned() {
    let dir = fresh_log(40);
    let mut seg = lines(dir.path(), 2);
    let copy = seg[2].clone();
    seg.insert(4, copy);
    write_lines(dir.path(), 2, &seg);
    assert_eq!(at(verify(dir.path(), None, None)), (2, 5));
}

#[test]
fn swapped_records_are_pinned_at_the_first_of_them() {
    let dir = fresh_log(40);
    let mut seg = lines(dir.path(), 3);
    seg.swap(2, 3);
    write_lines(dir.path(), 3, &seg);
    let (segment, record, _) = problem(verify(dir.path(), None, None));
    assert_eq!((segment, record), (3, 3));
}

#[test]
fn a_sealed_segment_cut_short_is_missing_its_seal() {
    let dir = fresh_log(40);
    let mut seg = lines(dir.path(), 2);
    let kept = seg.len() - 2;
    seg.truncate(kept);
    write_lines(dir.path(), 2, &seg);
    let (segment, record, reason) = problem(verify(dir.path(), None, None));
    assert_eq!((segment, record), (2, kept as u64 + 1));
    assert!(reason.contains("seal"), "{reason}");
}

#[test]
fn a_segment_cut_mid_record_names_the_torn_record() {
    let dir = fresh_log(40);
    let path = segment(dir.path(), 2);
    let bytes = fs::read(&path).unwrap();
    let second_newline = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(1)
        .unwrap()
        .0;
    fs::write(&path, &bytes[..second_newline + 20]).unwrap();
    let (segment, record, reason) = problem(verify(dir.path(), None, None));
    assert_eq!((segment, record), (2, 3));
    assert!(reason.contains("incomplete"), "{reason}");
}

#[test]
fn a_removed_or_reordered_segment_breaks_the_boundary() {
    let dir = fresh_log(60);
    fs::remove_file(segment(dir.path(), 3)).unwrap();
    assert_eq!(problem(verify(dir.path(), None, None)).0, 3);

    let dir = fresh_log(60);
    fs::rename(segment(dir.path(), 2), dir.path().join("x")).unwrap();
    fs::rename(segment(dir.path(), 3), segment(dir.path(), 2)).unwrap();
    fs::rename(dir.path().join("x"), segment(dir.path(), 3)).unwrap();
    assert_eq!(at(verify(dir.path(), None, None)), (2, 1));

    let dir = fresh_log(60);
    fs::remove_file(segment(dir.path(), 1)).unwrap();
    let (segment, record, reason) = problem(verify(dir.path(), None, None));
    assert_eq!((segment, record), (1, 0));
    assert!(reason.contains("retention"), "{reason}");
}

#[test]
fn retention_keeps_the_newest_segments_and_the_log_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.keep_segments = Some(3);
    write_log(config, 80);
    let report = verify(dir.path(), None, None).unwrap();
    assert_eq!(report.segments, 3);
    assert!(report.first_segment > 1);
}

#[test]
fn a_keyed_log_needs_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.key = Some([7; 32]);
    write_log(config, 10);
    assert!(matches!(
        verify(dir.path(), None, None),
        Err(VerifyError::KeyNeeded { segment: 1 })
    ));
    assert_eq!(at(verify(dir.path(), Some(&[8; 32]), None)), (1, 1));
    let report = verify(dir.path(), Some(&[7; 32]), None).unwrap();
    assert_eq!(report.unkeyed_segments, 0);
    assert!(report.keyed_segments >= 1);
    let text: String = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        !text.contains("0707070707"),
        "the key never reaches the files"
    );
}

#[test]
fn a_segment_left_open_by_a_crash_is_sealed_at_the_next_start() {
    let dir = fresh_log(10);
    let last = *testudo_audit_segments(dir.path()).last().unwrap();
    // Act out a crash: no seal, and half a record at the end.
    let mut seg = lines(dir.path(), last);
    seg.pop();
    let torn = seg[seg.len() - 1][..40].to_owned();
    let mut text = seg.join("\n");
    text.push('\n');
    text.push_str(&torn);
    fs::write(segment(dir.path(), last), text).unwrap();
    assert!(verify(dir.path(), None, None).is_err());

    write_log(config(dir.path()), 5);
    let report = verify(dir.path(), None, None).unwrap();
    assert!(!report.last_open);
    let recovered = lines(dir.path(), last);
    let seal = recovered.last().unwrap();
    assert!(seal.contains("\"reason\":\"recovered\""), "{seal}");
    assert!(seal.contains("\"truncated_bytes\":40"), "{seal}");
}

fn testudo_audit_segments(dir: &Path) -> Vec<u64> {
    let mut numbers: Vec<u64> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix("audit-")?
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

#[test]
fn records_given_after_close_are_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::open(config(dir.path())).unwrap();
    writer.record(request(1, 0, "ok"));
    writer.close();
    writer.record(request(2, 0, "ok"));
    let stats = writer.stats();
    assert_eq!((stats.written, stats.dropped, stats.queue_depth), (1, 1, 0));
    verify(dir.path(), None, None).unwrap();
}

#[test]
fn export_filters_by_time_database_and_outcome() {
    let dir = fresh_log(30);
    let writer = AuditWriter::open(config(dir.path())).unwrap();
    writer.record(AuditEvent::Denied(Denial {
        database: DatabaseRef {
            id: 9,
            path: Some("app/tenant".into()),
        },
        credential: CredentialRef::Token {
            database: 9,
            id: 5,
            identity: Some((1024, 7)),
        },
        role: "customer".to_owned(),
        action: "write".to_owned(),
        resource: "Orders/12".to_owned(),
        reason: "predicate false".to_owned(),
        txn_ts: None,
    }));
    writer.close();
    let collect = |filter: Filter| {
        let mut out = Vec::new();
        read_records(dir.path(), &filter, None, |r| {
            out.push(serde_json::from_slice::<serde_json::Value>(r).unwrap());
            Ok(())
        })
        .unwrap();
        out
    };
    let all = collect(Filter::default());
    assert_eq!(all.iter().filter(|r| r["kind"] == "request").count(), 30);
    assert!(
        all.iter()
            .all(|r| r["kind"] != "seal" && r["kind"] != "segment_start")
    );

    let db1 = collect(Filter {
        database: Some("1".to_owned()),
        ..Filter::default()
    });
    assert_eq!(db1.len(), 10);
    let by_path = collect(Filter {
        database: Some("app/tenant".to_owned()),
        ..Filter::default()
    });
    assert_eq!(by_path.len(), 1);

    let errors = collect(Filter {
        outcome: Some("error".to_owned()),
        ..Filter::default()
    });
    assert_eq!(
        errors.len(),
        6 + 1,
        "every fifth request aborted, and the denial"
    );
    let aborts = collect(Filter {
        outcome: Some("abort".to_owned()),
        ..Filter::default()
    });
    assert_eq!(aborts.len(), 6);

    let future = collect(Filter {
        since_us: Some(u64::MAX / 2),
        ..Filter::default()
    });
    assert!(future.is_empty());
    let past = collect(Filter {
        since_us: Some(0),
        ..Filter::default()
    });
    assert_eq!(past.len(), all.len());

    let last = tail(dir.path(), 2, &Filter::default(), None).unwrap();
    assert_eq!(last.len(), 2);
    let last: serde_json::Value = serde_json::from_slice(&last[1]).unwrap();
    assert_eq!(last["kind"], "denied");
    assert_eq!(last["credential"]["type"], "token");
}

#[test]
fn a_request_record_is_one_flat_json_object_without_the_query_text() {
    let dir = tempfile::tempdir().unwrap();
    write_log(config(dir.path()), 1);
    let records = tail(dir.path(), 1, &Filter::default(), None).unwrap();
    let text = String::from_utf8(records[0].clone()).unwrap();
    assert!(text.starts_with("{\"seq\":2,\"time\":\""), "{text}");
    assert!(text.contains("\"kind\":\"request\""), "{text}");
    assert!(!text.contains("Books.byId"), "{text}");
    assert!(
        text.contains(&query_hash(b"Books.byId(0)").to_string()),
        "{text}"
    );
}
