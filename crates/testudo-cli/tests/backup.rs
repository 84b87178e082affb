//! `testudo backup` and `testudo restore` over the real binary: documents written over HTTP
//! survive backup, verify and restore into a new data directory; damaged, truncated and
//! misdirected restores are refused without writing anything.

#![allow(clippy::unwrap_used)] // helpers outside #[test]: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::TestServer;

/// `testudo <args>` run to completion, without any inherited key or secret.
fn testudo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_testudo"))
        .args(args)
        .env_remove("TESTUDO_MASTER_KEY")
        .env_remove("TESTUDO_ROOT_SECRET")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

const TITLES: &str = "Books.all().order(.n).map(b => [b.title, b.n]).toArray()";

#[tokio::test]
async fn documents_written_over_http_survive_backup_verify_and_restore() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let backups = root.path().join("backups");
    let mut server = TestServer::start(&data, &["--dev"], &[]);
    assert_eq!(
        server
            .query("Collection.create({ name: 'Books' })")
            .await
            .status,
        200
    );
    for n in 0..20 {
        let fql = format!("Books.create({{ title: 'Book {n}', n: {n} }})");
        assert_eq!(server.query(&fql).await.status, 200);
    }
    // An update and a delete: the backup holds the state at its snapshot.
    assert_eq!(
        server
            .query("Books.where(.n == 3).first()!.update({ title: 'Three' })")
            .await
            .status,
        200
    );
    assert_eq!(
        server
            .query("Books.where(.n == 4).first()!.delete()")
            .await
            .status,
        200
    );
    let before = server.query(TITLES).await;
    assert_eq!(before.status, 200, "{:?}", before.body);
    // The CLI backs up a stopped data directory: a running server's store is refused.
    let busy = testudo(&[
        "backup",
        "create",
        "--data-dir",
        path(&data),
        "--out",
        path(&backups),
    ]);
    assert_eq!(busy.status.code(), Some(2), "{}", text(&busy.stderr));
    assert!(
        text(&busy.stderr).contains("server running"),
        "{}",
        text(&busy.stderr)
    );
    server.terminate();
    assert!(server.wait_exit().success());

    let created = testudo(&[
        "backup",
        "create",
        "--data-dir",
        path(&data),
        "--out",
        path(&backups),
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let stdout = text(&created.stdout);
    let file = PathBuf::from(
        stdout
            .strip_prefix("created ")
            .and_then(|rest| rest.split(" (").next())
            .unwrap_or_else(|| panic!("{stdout}")),
    );
    assert!(file.exists(), "{stdout}");

    let verified = testudo(&["backup", "verify", path(&file)]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    assert!(
        text(&verified.stdout).starts_with("ok:"),
        "{}",
        text(&verified.stdout)
    );
    let listed = testudo(&["backup", "list", path(&backups)]);
    assert!(
        text(&listed.stdout).contains(path(&file)),
        "{}",
        text(&listed.stdout)
    );

    let restored = root.path().join("restored");
    let out = testudo(&["restore", path(&file), "--data-dir", path(&restored)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Restoring again over the restored store is refused (exit 2) and changes nothing.
    let again = testudo(&["restore", path(&file), "--data-dir", path(&restored)]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stderr));
    assert!(
        text(&again.stderr).contains("not empty"),
        "{}",
        text(&again.stderr)
    );

    let server = TestServer::start(&restored, &["--dev"], &[]);
    let after = server.query(TITLES).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.json()["data"], before.json()["data"]);
    // The restored store keeps working: new writes commit after the restored history.
    assert_eq!(
        server
            .query("Books.create({ title: 'New', n: 99 })")
            .await
            .status,
        200
    );
}

#[test]
fn a_damaged_or_truncated_backup_is_refused_and_nothing_is_restored() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let backups = root.path().join("backups");
    {
        let mut server = TestServer::start(&data, &["--dev"], &[]);
        server.terminate();
        assert!(server.wait_exit().success());
    }
    let created = testudo(&[
        "backup",
        "create",
        "--data-dir",
        path(&data),
        "--out",
        path(&backups),
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let file = std::fs::read_dir(&backups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&file).unwrap();

    let damaged = root.path().join("damaged.tbk");
    let mut flipped = bytes.clone();
    flipped[150] ^= 0x20;
    std::fs::write(&damaged, &flipped).unwrap();
    let out = testudo(&["backup", "verify", path(&damaged)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("chunk 0 is damaged"),
        "{}",
        text(&out.stderr)
    );
    let target = root.path().join("target");
    let out = testudo(&["restore", path(&damaged), "--data-dir", path(&target)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!target.exists());

    std::fs::write(&damaged, &bytes[..bytes.len() / 2]).unwrap();
    let out = testudo(&["restore", path(&damaged), "--data-dir", path(&target)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("truncated"),
        "{}",
        text(&out.stderr)
    );
    assert!(!target.exists());

    // Pruning keeps the newest; zero is refused.
    let pruned = testudo(&["backup", "prune", path(&backups), "--keep", "1"]);
    assert!(pruned.status.success(), "{}", text(&pruned.stderr));
    assert_eq!(
        testudo(&["backup", "prune", path(&backups), "--keep", "0"])
            .status
            .code(),
        Some(2)
    );
}

#[tokio::test]
async fn serve_takes_scheduled_backups_that_verify_and_keeps_only_the_newest() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let backups = root.path().join("scheduled");
    let mut server = TestServer::start(
        &data,
        &[
            "--dev",
            "--backup-dir",
            path(&backups),
            "--backup-every",
            "1s",
            "--backup-keep",
            "2",
        ],
        &[],
    );
    assert_eq!(
        server
            .query("Collection.create({ name: 'Books' })")
            .await
            .status,
        200
    );
    // Bounded wait for at least three runs (so retention has had to prune).
    let complete = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|x| x == "tbk"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut runs_seen = std::collections::BTreeSet::new();
    for _ in 0..600 {
        runs_seen.extend(complete(&backups));
        if runs_seen.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        runs_seen.len() >= 3,
        "scheduled backups seen: {runs_seen:?}"
    );
    server.terminate();
    assert!(server.wait_exit().success());
    let kept = complete(&backups);
    assert!(!kept.is_empty() && kept.len() <= 2, "kept: {kept:?}");
    for file in kept {
        let verified = testudo(&["backup", "verify", path(&file)]);
        assert!(verified.status.success(), "{}", text(&verified.stderr));
    }
}
