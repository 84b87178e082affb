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

/// One query with `secret`, simple format; returns (status, body).
async fn run(server: &TestServer, secret: &str, fql: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "query": fql }).to_string();
    let auth = format!("Bearer {secret}");
    let response = server
        .post_query(body, &[("authorization", auth.as_str())])
        .await;
    (response.status, response.json())
}

/// `data` of a query that must succeed.
async fn ok(server: &TestServer, secret: &str, fql: &str) -> serde_json::Value {
    let (status, body) = run(server, secret, fql).await;
    assert_eq!(status, 200, "{fql}: {body}");
    body["data"].clone()
}

/// `error.code` of a query that must fail.
async fn refused(server: &TestServer, secret: &str, fql: &str) -> (String, String) {
    let (status, body) = run(server, secret, fql).await;
    assert_ne!(status, 200, "{fql} succeeded: {body}");
    (
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body.to_string(),
    )
}

/// One `POST /query/1` with `secret` over a fresh blocking connection (for a writer thread);
/// errors are ignored by the caller.
fn blocking_as(addr: std::net::SocketAddr, secret: &str, fql: &str) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let body = serde_json::json!({ "query": fql }).to_string();
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    write!(
        stream,
        "POST /query/1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {secret}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    Ok(())
}

fn server_with_backups(root: &Path, extra: &[&str]) -> (TestServer, PathBuf) {
    let data = root.join("data");
    let backups = root.join("backups");
    let mut args = vec!["--dev", "--backup-dir", path(&backups)];
    args.extend_from_slice(extra);
    (TestServer::start(&data, &args, &[]), backups)
}

const BOOKS: &str = "Books.all().order(.n).map(b => { n: b.n, title: b.title }).toArray()";

#[tokio::test]
async fn a_backup_taken_while_writes_continue_restores_as_a_new_database_equal_to_its_snapshot() {
    let root = tempfile::tempdir().unwrap();
    let (server, _) = server_with_backups(root.path(), &[]);
    ok(&server, "secret", "Database.create({ name: 'app' })").await;
    let app = "secret:app:admin";
    ok(&server, app, "Collection.create({ name: 'Books' })").await;
    ok(&server, app, "Database.create({ name: 'tenant' })").await;
    let tenant = "secret:app/tenant:admin";
    ok(&server, tenant, "Collection.create({ name: 'Notes' })").await;
    ok(&server, tenant, "Notes.create({ text: 'kept' })").await;
    ok(
        &server,
        app,
        "Set.sequence(0, 50).forEach(i => Books.create({ n: i, title: 'b' + i.toString() }))",
    )
    .await;

    // Writes keep landing while the backup is taken.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let addr = server.addr;
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 1000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let fql = format!("Books.create({{ n: {n}, title: 'during' }})");
                let _ = blocking_as(addr, "secret:app:admin", &fql);
                n += 1;
            }
            n - 1000
        })
    };
    let backup = ok(&server, "secret", "Backup.create()").await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = writer.join().unwrap();
    let name = backup["name"].as_str().unwrap().to_owned();
    assert!(backup["keys"].as_i64().unwrap() > 50, "{backup}");
    assert!(during > 0, "the writer never wrote");

    // What app held at the backup's snapshot, read from its history.
    let ts = backup["ts"].as_str().unwrap().to_owned();
    let at_backup = ok(&server, app, &format!("at(Time('{ts}')) {{ {BOOKS} }}")).await;

    // The bad deployment.
    ok(&server, app, "Books.all().forEach(.delete())").await;
    let listed = ok(&server, "secret", "Backup.all().map(.name)").await;
    assert!(
        listed.as_array().unwrap().iter().any(|n| n == &name[..]),
        "{listed}"
    );

    let restored = ok(
        &server,
        "secret",
        &format!("Backup.restore({{ backup: '{name}', name: 'app_copy', database: 'app' }})"),
    )
    .await;
    assert_eq!(restored["databases"], 2, "{restored}");
    let copy = "secret:app_copy:admin";
    assert_eq!(ok(&server, copy, BOOKS).await, at_backup);
    // The child database came along; no key of the original did.
    assert_eq!(
        ok(
            &server,
            "secret:app_copy/tenant:admin",
            "Notes.all().map(.text).toArray()"
        )
        .await,
        serde_json::json!(["kept"])
    );
    assert_eq!(ok(&server, copy, "Key.all().count()").await, 0);
    // The original is untouched by the restore.
    assert_eq!(ok(&server, app, "Books.all().count()").await, 0);
}

#[tokio::test]
async fn restoring_in_place_takes_a_safety_backup_and_keeps_the_replaced_database_renamed() {
    let root = tempfile::tempdir().unwrap();
    let (server, backups) = server_with_backups(root.path(), &[]);
    ok(&server, "secret", "Database.create({ name: 'app' })").await;
    let app = "secret:app:admin";
    ok(&server, app, "Collection.create({ name: 'Books' })").await;
    ok(
        &server,
        app,
        "Set.sequence(0, 5).forEach(i => Books.create({ n: i, title: 'x' }))",
    )
    .await;
    let name = ok(&server, "secret", "Backup.create().name").await;
    let name = name.as_str().unwrap();
    ok(&server, app, "Books.all().forEach(.delete())").await;

    let restored = ok(
        &server,
        "secret",
        &format!(
            "Backup.restore({{ backup: '{name}', name: 'app', database: 'app', replace: true }})"
        ),
    )
    .await;
    let safety = restored["safety_backup"].as_str().unwrap().to_owned();
    let replaced = restored["replaced"].as_str().unwrap().to_owned();
    assert!(backups.join(&safety).is_file(), "{restored}");
    assert_eq!(ok(&server, app, "Books.all().count()").await, 5);
    let old = format!("secret:{replaced}:admin");
    assert_eq!(ok(&server, &old, "Books.all().count()").await, 0);
    // Without replace, an existing name is refused.
    let (code, _) = refused(
        &server,
        "secret",
        &format!("Backup.restore({{ backup: '{name}', name: 'app', database: 'app' }})"),
    )
    .await;
    assert_eq!(code, "constraint_failure");
}

#[tokio::test]
async fn backups_are_for_admins_and_a_damaged_backup_restores_nothing() {
    let root = tempfile::tempdir().unwrap();
    let (server, backups) = server_with_backups(root.path(), &[]);
    ok(&server, "secret", "Collection.create({ name: 'Books' })").await;
    let key = ok(&server, "secret", "Key.create({ role: 'server' }).secret").await;
    for fql in ["Backup.create()", "Backup.all()", "Backup.status()"] {
        let (code, body) = refused(&server, key.as_str().unwrap(), fql).await;
        assert_eq!(code, "permission_denied", "{fql}: {body}");
    }
    let (code, _) = refused(&server, "secret", "Books.create({ n: 1 }); Backup.create()").await;
    assert_eq!(code, "invalid_effect");

    let name = ok(&server, "secret", "Backup.create().name").await;
    let file = backups.join(name.as_str().unwrap());
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(backups.join("testudo-cut.tbk"), &bytes[..bytes.len() / 2]).unwrap();
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    std::fs::write(backups.join("testudo-flipped.tbk"), &flipped).unwrap();
    for damaged in [
        "testudo-cut.tbk",
        "testudo-flipped.tbk",
        "testudo-missing.tbk",
    ] {
        let (code, body) = refused(
            &server,
            "secret",
            &format!("Backup.restore({{ backup: '{damaged}', name: 'broken' }})"),
        )
        .await;
        assert!(
            code == "invalid_argument" || code == "document_not_found",
            "{damaged}: {body}"
        );
    }
    assert_eq!(
        ok(&server, "secret", "Database.byName('broken') == null").await,
        true
    );
    let (code, _) = refused(
        &server,
        "secret",
        "Backup.restore({ backup: '../data/x.tbk', name: 'broken' })",
    )
    .await;
    assert_eq!(code, "constraint_failure");
}

#[tokio::test]
async fn backup_schedules_on_database_documents_are_checked_and_run() {
    let root = tempfile::tempdir().unwrap();
    let (server, backups) = server_with_backups(
        root.path(),
        &["--backup-tick-ms", "100", "--backup-min-every-secs", "1"],
    );
    for bad in [
        "{ every: '0s', keep: 2 }",
        "{ every: 'soon', keep: 2 }",
        "{ every: '1h', keep: 0 }",
        "{ every: '1h', keep: 1001 }",
        "{ every: '1h', keep: 2, at: 3 }",
        "{ keep: 2 }",
        "'1h'",
    ] {
        let (code, body) = refused(
            &server,
            "secret",
            &format!("Database.create({{ name: 'bad', backup: {bad} }})"),
        )
        .await;
        assert_eq!(code, "constraint_failure", "{bad}: {body}");
    }
    ok(
        &server,
        "secret",
        "Database.create({ name: 'sched', backup: { every: '1s', keep: 2 } })",
    )
    .await;
    ok(
        &server,
        "secret:sched:admin",
        "Collection.create({ name: 'Books' })",
    )
    .await;
    let mut status = serde_json::Value::Null;
    for _ in 0..600 {
        status = ok(&server, "secret:sched:admin", "Backup.status()").await;
        if status["runs"].as_i64().unwrap_or(0) >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(status["runs"].as_i64().unwrap_or(0) >= 3, "{status}");
    assert_eq!(status["keep"], 2);
    let listed = ok(&server, "secret:sched:admin", "Backup.all().length").await;
    assert!(listed.as_i64().unwrap() <= 2 && listed.as_i64().unwrap() >= 1);
    let dirs: Vec<_> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("db-"))
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    // Removing the schedule is allowed; an update checks it like a create.
    let (code, _) = refused(
        &server,
        "secret",
        "Database.byName('sched')!.update({ backup: { every: '1h', keep: -1 } })",
    )
    .await;
    assert_eq!(code, "constraint_failure");
    ok(
        &server,
        "secret",
        "Database.byName('sched')!.update({ backup: null })",
    )
    .await;
}

#[tokio::test]
async fn the_cli_creates_lists_and_restores_backups_through_a_running_server() {
    let root = tempfile::tempdir().unwrap();
    let (server, _) = server_with_backups(root.path(), &[]);
    ok(&server, "secret", "Collection.create({ name: 'Books' })").await;
    ok(&server, "secret", "Books.create({ n: 1, title: 'one' })").await;
    let url = format!("http://{}", server.addr);
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--url", &url]);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_testudo"))
            .args(&all)
            .env("TESTUDO_SECRET", "secret")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, err) = cli(&["backup", "create"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let name = out.split_whitespace().nth(1).unwrap().to_owned();
    let (code, out, err) = cli(&["backup", "list"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&name), "{out}");
    let (code, out, err) = cli(&["restore", "--backup", &name, "--into", "copy"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(
        ok(
            &server,
            "secret:copy:admin",
            "Books.all().map(.title).toArray()"
        )
        .await,
        serde_json::json!(["one"])
    );
    // The server's refusal is the CLI's: an existing name without --replace.
    let (code, _, err) = cli(&["restore", "--backup", &name, "--into", "copy"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("constraint_failure"), "{err}");
}

#[tokio::test]
async fn on_an_encrypted_store_a_restore_opens_values_sealed_per_database() {
    let root = tempfile::tempdir().unwrap();
    let key = root.path().join("master.key");
    let generated = testudo(&["keys", "generate", "--out", path(&key)]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let (server, backups) = server_with_backups(root.path(), &["--master-key-file", path(&key)]);
    ok(&server, "secret", "Database.create({ name: 'app' })").await;
    let app = "secret:app:admin";
    ok(&server, app, "Collection.create({ name: 'Notes' })").await;
    ok(&server, app, "Notes.create({ text: 'sealed words' })").await;
    let name = ok(&server, "secret", "Backup.create().name").await;
    let name = name.as_str().unwrap();
    // Held as stored: neither the backup nor its values are readable without the keys.
    let bytes = std::fs::read(backups.join(name)).unwrap();
    assert!(!bytes.windows(12).any(|w| w == b"sealed words"));
    ok(
        &server,
        "secret",
        &format!("Backup.restore({{ backup: '{name}', name: 'copy', database: 'app' }})"),
    )
    .await;
    assert_eq!(
        ok(
            &server,
            "secret:copy:admin",
            "Notes.all().map(.text).toArray()"
        )
        .await,
        serde_json::json!(["sealed words"])
    );
}

#[tokio::test]
async fn a_deleted_databases_data_stays_unreadable_while_its_sibling_restores_through_the_server() {
    let root = tempfile::tempdir().unwrap();
    let key = root.path().join("master.key");
    let generated = testudo(&["keys", "generate", "--out", path(&key)]);
    assert!(generated.status.success(), "{}", text(&generated.stderr));
    let (server, _) = server_with_backups(root.path(), &["--master-key-file", path(&key)]);
    for db in ["doomed", "kept"] {
        ok(
            &server,
            "secret",
            &format!("Database.create({{ name: '{db}' }})"),
        )
        .await;
        let admin = format!("secret:{db}:admin");
        ok(&server, &admin, "Collection.create({ name: 'Notes' })").await;
        ok(
            &server,
            &admin,
            &format!("Notes.create({{ text: '{db}' }})"),
        )
        .await;
    }
    let name = ok(&server, "secret", "Backup.create().name").await;
    let name = name.as_str().unwrap();
    ok(&server, "secret", "Database.byName('doomed')!.delete()").await;
    ok(
        &server,
        "secret",
        &format!("Backup.restore({{ backup: '{name}', name: 'kept2', database: 'kept' }})"),
    )
    .await;
    assert_eq!(
        ok(
            &server,
            "secret:kept2:admin",
            "Notes.all().map(.text).toArray()"
        )
        .await,
        serde_json::json!(["kept"])
    );
    let (code, body) = refused(
        &server,
        "secret",
        &format!("Backup.restore({{ backup: '{name}', name: 'undead', database: 'doomed' }})"),
    )
    .await;
    assert_eq!(code, "invalid_argument", "{body}");
    assert_eq!(
        ok(&server, "secret", "Database.byName('undead') == null").await,
        true
    );
}
