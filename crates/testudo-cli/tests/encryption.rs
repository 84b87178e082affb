//! Encryption at rest over a real `testudo serve` process: the canary (a marker written through
//! HTTP never reaches the disk in plaintext; a flipped byte is an integrity error, never data;
//! the wrong key is refused and changes nothing), the refusals, `kill -9` during encrypted
//! writes, and the `testudo keys` commands (`rotate-data` offline, and online while a writer
//! keeps writing and across a `kill -9`).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestServer, blocking_query as query, testudo};
use testudo_storage_redb::keys::MasterKey;
use testudo_storage_redb::{ENCRYPTED_DATA_FILE, open_encrypted_file};

const MARKER: &str = "QUOKKA-7f3e91-CANARY";

/// A process's exit status and output, waited for at most a minute (a server that starts
/// when it should have refused is killed, and the test fails).
fn run_to_exit(mut command: Command) -> (ExitStatus, String, String) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stdout, stderr)
}

/// `testudo keys <args>`.
fn keys(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_testudo"));
    command
        .arg("keys")
        .args(args)
        .env_remove("TESTUDO_MASTER_KEY")
        .env_remove("TESTUDO_NEW_MASTER_KEY")
        .stdin(Stdio::null());
    command
}

/// A fresh master key in a private file inside `dir` (not the data directory).
fn key_file(dir: &Path, name: &str) -> (PathBuf, MasterKey) {
    let path = dir.join(name);
    let (status, stdout, stderr) =
        run_to_exit(keys(&["generate", "--out", path.to_str().unwrap()]));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("fingerprint"), "{stdout}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!stdout.contains(text.trim()), "the key was printed");
    let key = MasterKey::from_base64(&text, "test").unwrap();
    (path, key)
}

/// Every file under `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                out.insert(entry.path(), std::fs::read(entry.path()).unwrap());
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn start(data_dir: &Path, key: &Path) -> TestServer {
    TestServer::start(
        data_dir,
        &["--dev", "--master-key-file", key.to_str().unwrap()],
        &[],
    )
}

/// Stops a server gracefully.
fn stop(mut server: TestServer) {
    server.terminate();
    assert_eq!(server.wait_exit().code(), Some(0));
}

#[tokio::test]
async fn canary_the_marker_never_reaches_the_disk_a_flipped_byte_is_an_integrity_error_and_the_wrong_key_changes_nothing()
 {
    let keys_dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (key_path, key) = key_file(keys_dir.path(), "master.key");

    // Write documents holding the marker through HTTP.
    let server = start(data.path(), &key_path);
    server.wait_for_log("encryption at rest is on");
    let created = server
        .query("Collection.create({ name: 'CanaryNotes' })")
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    // Enough documents for many data pages, so that the one damaged below holds only
    // documents nothing reads while the server starts.
    let padding = "p".repeat(300);
    for batch in 0..8 {
        let statements: Vec<String> = (batch * 50..(batch + 1) * 50)
            .map(|i: u32| {
                format!(
                    "CanaryNotes.create({{ id: '{}', note: '{MARKER} {i} {padding}' }})",
                    1000 + i
                )
            })
            .collect();
        let response = server.query(&statements.join("\n")).await;
        assert_eq!(response.status, 200, "{:?}", response.body);
    }
    let read = server.query("CanaryNotes.byId('1207')!.note").await;
    assert_eq!(read.status, 200);
    assert!(read.json()["data"].as_str().unwrap().starts_with(MARKER));
    stop(server);

    // Scan every byte of the data directory.
    let files = snapshot(data.path());
    assert!(files.keys().any(|p| p.ends_with(ENCRYPTED_DATA_FILE)));
    for (path, bytes) in &files {
        for needle in [MARKER.as_bytes(), b"CanaryNotes"] {
            assert!(
                !contains(bytes, needle),
                "{} holds {}",
                path.display(),
                String::from_utf8_lossy(needle)
            );
        }
    }

    // Restart with the wrong key: a clear error, a non-zero exit, nothing written.
    let (wrong_path, _) = key_file(keys_dir.path(), "wrong.key");
    let (status, _, stderr) = run_to_exit({
        let mut command = testudo(
            data.path(),
            &[
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--master-key-file",
                wrong_path.to_str().unwrap(),
            ],
            &[],
        );
        command.env_remove("TESTUDO_MASTER_KEY");
        command
    });
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the master key does not unwrap this store's data key"),
        "{stderr}"
    );
    assert_eq!(
        snapshot(data.path()),
        files,
        "a refused start changed the data directory"
    );

    // Flip one byte in the data page that holds document 1207 (and in every stale copy of
    // that page a later commit left behind: which copy is live is redb's business).
    // The document's value is sealed under its database's key, so the page is found by the
    // sealed bytes (their random nonce makes them unique).
    let needle = stored_document(data.path(), &key, 1207);
    let file = open_encrypted_file(data.path(), &key).unwrap();
    let blocks: Vec<u64> = (1..file.blocks())
        .filter(|&i| {
            file.read_block(i)
                .unwrap()
                .is_ok_and(|plain| contains(&plain, &needle))
        })
        .collect();
    assert!(!blocks.is_empty(), "no block holds the document");
    let path = data.path().join(ENCRYPTED_DATA_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    for &block in &blocks {
        let at = file.physical_range(block).unwrap().start + 200;
        bytes[usize::try_from(at).unwrap()] ^= 0x20;
    }
    drop(file);
    std::fs::write(&path, &bytes).unwrap();
    let expected = "integrity check failed at block";

    if cfg!(debug_assertions) {
        // Debug builds of redb read every page of the file while opening it, so the damage
        // is found before the server answers anything: it refuses to start.
        let (status, _, stderr) = run_to_exit(testudo(
            data.path(),
            &[
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--master-key-file",
                key_path.to_str().unwrap(),
            ],
            &[],
        ));
        assert_eq!(status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains(MARKER), "{stderr}");
    } else {
        // Release builds open the file without reading it all: the read of the damaged page
        // fails with Fauna's internal error, and the log says why.
        let server = start(data.path(), &key_path);
        let response = server.query("CanaryNotes.byId('1207')!.note").await;
        assert_eq!(response.status, 500, "{:?}", response.body);
        assert_eq!(response.error_code(), "internal_error");
        assert!(!contains(&response.body, MARKER.as_bytes()));
        server.wait_for_log(expected);
    }
}

#[test]
fn an_encrypted_store_without_its_key_and_a_plaintext_store_with_a_key_are_refused() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, _) = key_file(keys_dir.path(), "master.key");
    let serve = |dir: &Path, extra: &[&str]| {
        let mut args = vec!["--dev", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut command = testudo(dir, &args, &[]);
        command.env_remove("TESTUDO_MASTER_KEY");
        run_to_exit(command)
    };

    let encrypted = tempfile::tempdir().unwrap();
    stop(start(encrypted.path(), &key_path));
    let before = snapshot(encrypted.path());
    let (status, _, stderr) = serve(encrypted.path(), &[]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is encrypted"), "{stderr}");
    assert!(stderr.contains("--master-key-file"), "{stderr}");
    assert_eq!(snapshot(encrypted.path()), before);

    let plain = tempfile::tempdir().unwrap();
    stop(TestServer::start(plain.path(), &["--dev"], &[]));
    let before = snapshot(plain.path());
    let (status, _, stderr) = serve(
        plain.path(),
        &["--master-key-file", key_path.to_str().unwrap()],
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not encrypted"), "{stderr}");
    assert_eq!(snapshot(plain.path()), before);
}

#[test]
fn a_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, _) = key_file(keys_dir.path(), "master.key");
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let data = tempfile::tempdir().unwrap();
    let (status, _, stderr) = run_to_exit(testudo(
        data.path(),
        &[
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--master-key-file",
            key_path.to_str().unwrap(),
        ],
        &[],
    ));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
}

#[test]
fn the_key_may_come_from_the_environment_or_a_command() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, _) = key_file(keys_dir.path(), "master.key");
    let text = std::fs::read_to_string(&key_path).unwrap();
    let data = tempfile::tempdir().unwrap();
    stop(TestServer::start(
        data.path(),
        &["--dev"],
        &[("TESTUDO_MASTER_KEY", text.trim())],
    ));
    // The command runs once per start, however many parts of the server need the key (the
    // store, the audit log, the backups): a KMS is asked once.
    let runs = keys_dir.path().join("runs");
    let command = format!(
        "echo run >> {} && cat {}",
        runs.display(),
        key_path.display()
    );
    let audit = keys_dir.path().join("audit");
    let backups = keys_dir.path().join("backups");
    let server = TestServer::start(
        data.path(),
        &[
            "--dev",
            "--master-key-command",
            &command,
            "--audit-dir",
            audit.to_str().unwrap(),
            "--backup-dir",
            backups.to_str().unwrap(),
        ],
        &[],
    );
    server.wait_for_log("encryption at rest is on");
    stop(server);
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n");
}

#[test]
fn serving_without_a_master_key_outside_dev_warns_loudly() {
    let data = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        data.path(),
        &["--root-secret", "a-root-secret-for-this-test"],
        &[],
    );
    server.wait_for_log("ENCRYPTION AT REST IS OFF");
    stop(server);
}

#[test]
fn acknowledged_encrypted_writes_survive_repeated_kill_9() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, _) = key_file(keys_dir.path(), "master.key");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &key_path);
    let (status, _) = query(server.addr, "Collection.create({ name: 'Ledger' })").unwrap();
    assert_eq!(status, 200);
    let mut server = Some(server);
    let mut acked = Vec::<String>::new();

    for round in 0..3 {
        let mut running = server
            .take()
            .unwrap_or_else(|| start(data.path(), &key_path));
        let round_acked = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop_writing = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..6)
            .map(|w| {
                let (acked, stop, addr) = (round_acked.clone(), stop_writing.clone(), running.addr);
                std::thread::spawn(move || {
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let pair = format!("r{round}-w{w}-{i}");
                        let fql = format!(
                            "Ledger.create({{ pair: '{pair}', half: 1 }})\n\
                             Ledger.create({{ pair: '{pair}', half: 2 }})\n1"
                        );
                        match query(addr, &fql) {
                            Ok((200, _)) => acked.lock().unwrap().push(pair),
                            Ok((status, body)) => panic!("write refused: {status} {body}"),
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        while round_acked.lock().unwrap().len() < 100 {
            assert!(Instant::now() < deadline, "writers made no progress");
            std::thread::sleep(Duration::from_millis(5));
        }
        running.kill_hard();
        stop_writing.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().unwrap();
        }
        acked.extend(round_acked.lock().unwrap().iter().cloned());

        let restarted = start(data.path(), &key_path);
        let (status, body) = query(restarted.addr, "Ledger.all().map(.pair).toArray()").unwrap();
        assert_eq!(status, 200, "{body}");
        let mut counts = BTreeMap::<String, usize>::new();
        for pair in body["data"].as_array().unwrap() {
            *counts.entry(pair.as_str().unwrap().to_owned()).or_default() += 1;
        }
        for pair in &acked {
            assert_eq!(
                counts.get(pair),
                Some(&2),
                "acknowledged write {pair} lost (round {round})"
            );
        }
        for (pair, n) in &counts {
            assert_eq!(*n, 2, "query {pair} was half applied");
        }
        server = Some(restarted);
    }
    stop(server.take().unwrap());
    for (path, bytes) in snapshot(data.path()) {
        assert!(
            !contains(&bytes, b"r0-w0-0"),
            "{} holds plaintext",
            path.display()
        );
    }
}

#[test]
fn keys_rotate_master_then_rotate_data_keep_the_data() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (old_path, _) = key_file(keys_dir.path(), "old.key");
    let (new_path, _) = key_file(keys_dir.path(), "new.key");
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().to_str().unwrap();

    let server = start(data.path(), &old_path);
    let (status, _) = query(server.addr, "Collection.create({ name: 'Kept' })").unwrap();
    assert_eq!(status, 200);
    let (status, _) = query(server.addr, "Kept.create({ id: '1', v: 'still here' })").unwrap();
    assert_eq!(status, 200);

    // The master key rotates, and the data file does not change.
    let data_file = data.path().join(ENCRYPTED_DATA_FILE);
    stop(server);
    let before = std::fs::read(&data_file).unwrap();
    let (status, stdout, stderr) = run_to_exit(keys(&[
        "rotate-master",
        "--data-dir",
        data_dir,
        "--master-key-file",
        old_path.to_str().unwrap(),
        "--new-master-key-file",
        new_path.to_str().unwrap(),
    ]));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("now wrapped by master key"), "{stdout}");
    assert_eq!(std::fs::read(&data_file).unwrap(), before);

    let (status, _, stderr) = run_to_exit({
        let mut command = testudo(
            data.path(),
            &[
                "--dev",
                "--listen",
                "127.0.0.1:0",
                "--master-key-file",
                old_path.to_str().unwrap(),
            ],
            &[],
        );
        command.env_remove("TESTUDO_MASTER_KEY");
        command
    });
    assert_eq!(status.code(), Some(2), "the old key still works: {stderr}");

    let (status, stdout, stderr) = run_to_exit(keys(&[
        "rotate-data",
        "--data-dir",
        data_dir,
        "--master-key-file",
        new_path.to_str().unwrap(),
    ]));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("re-encrypted"), "{stdout}");
    assert_ne!(std::fs::read(&data_file).unwrap(), before);

    let (status, stdout, stderr) = run_to_exit(keys(&[
        "verify",
        "--data-dir",
        data_dir,
        "--master-key-file",
        new_path.to_str().unwrap(),
    ]));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("authenticate"), "{stdout}");

    let server = start(data.path(), &new_path);
    let (status, body) = query(server.addr, "Kept.byId('1')!.v").unwrap();
    assert_eq!(
        (status, body["data"].as_str()),
        (200, Some("still here")),
        "{body}"
    );
    stop(server);
}

/// The first 40 stored (sealed) bytes of the newest version of the root database's document
/// with id `id` (the engine's key layout: database id, `0x01`, collection id, document id).
fn stored_document(dir: &Path, key: &MasterKey, id: u64) -> Vec<u8> {
    let kv = testudo_storage_redb::open_store(dir, Some(key), Default::default()).unwrap();
    let snapshot = testudo_storage::Kv::begin(&kv).unwrap();
    let docs = testudo_storage::KeyRange::prefix(&[0, 0, 0, 0, 0, 0, 0, 0, 1]);
    let value = snapshot
        .scan(docs, snapshot.ts(), testudo_storage::ScanOrder::Ascending)
        .unwrap()
        .map(|item| item.unwrap())
        .find(|(k, _)| k.ends_with(&id.to_be_bytes()))
        .and_then(|(_, version)| version.value)
        .unwrap();
    drop(snapshot);
    testudo_storage::Kv::close(&kv).unwrap();
    value[..40].to_vec()
}

/// `fql` as the admin of child database `db` (the dev root secret, scoped), in the simple
/// format.
async fn query_in(server: &TestServer, db: &str, fql: &str) -> common::TestResponse {
    let body = serde_json::json!({ "query": fql }).to_string();
    let bearer = format!("Bearer secret:{db}:admin");
    server
        .client(common::Protocol::Http1)
        .await
        .post_query(body, &[("authorization", &bearer)])
        .await
}

/// A testudo subcommand other than `serve` and `keys`, run to completion.
fn tool(args: &[&str]) -> (ExitStatus, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_testudo"));
    command
        .args(args)
        .env_remove("TESTUDO_MASTER_KEY")
        .stdin(Stdio::null());
    run_to_exit(command)
}

/// Every stored value (all versions) of the store in `dir`, read without the per-database
/// keys: what a backup copies.
fn raw_values(dir: &Path, key: &MasterKey) -> Vec<Vec<u8>> {
    let kv = testudo_storage_redb::open_store(dir, Some(key), Default::default()).unwrap();
    let snapshot = testudo_storage::Kv::begin(&kv).unwrap();
    let all = testudo_storage::KeyRange {
        start: Vec::new(),
        end: None,
    };
    let keys: Vec<Vec<u8>> = snapshot
        .scan(all, snapshot.ts(), testudo_storage::ScanOrder::Ascending)
        .unwrap()
        .map(|item| item.unwrap().0)
        .collect();
    let mut values = Vec::new();
    for k in keys {
        let versions = snapshot
            .versions(&k, (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded))
            .unwrap();
        values.extend(versions.filter_map(|v| v.unwrap().value));
    }
    drop(snapshot);
    testudo_storage::Kv::close(&kv).unwrap();
    values
}

#[test]
fn the_backup_directory_keeps_the_per_database_key_file_by_default() {
    // Backups of a store sealed per database cannot be restored without `dbkeys`: with
    // `--backup-dir` and no `--db-keys-copy-dir`, the copy goes beside the backups.
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, _) = key_file(keys_dir.path(), "master.key");
    let data = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        data.path(),
        &[
            "--dev",
            "--master-key-file",
            key_path.to_str().unwrap(),
            "--backup-dir",
            backups.path().to_str().unwrap(),
        ],
        &[],
    );
    let (status, body) = query(server.addr, "Database.create({ name: 'tenant' })").unwrap();
    assert_eq!(status, 200, "{body}");
    stop(server);
    let live = std::fs::read_to_string(data.path().join("dbkeys")).unwrap();
    assert_eq!(
        std::fs::read_to_string(backups.path().join("dbkeys")).unwrap(),
        live
    );
}

#[tokio::test]
async fn a_deleted_database_is_unreadable_in_an_older_backup_while_its_sibling_restores() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, key) = key_file(keys_dir.path(), "master.key");
    let key_arg = key_path.to_str().unwrap();
    let data = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let backups_arg = backups.path().to_str().unwrap();
    let serve_args = [
        "--dev",
        "--master-key-file",
        key_arg,
        "--db-keys-copy-dir",
        backups_arg,
    ];

    let server = TestServer::start(data.path(), &serve_args, &[]);
    for db in ["doomed", "kept"] {
        let (status, body) =
            query(server.addr, &format!("Database.create({{ name: '{db}' }})")).unwrap();
        assert_eq!(status, 200, "{body}");
        let setup = query_in(&server, db, "Collection.create({ name: 'Notes' })").await;
        assert_eq!(setup.status, 200, "{:?}", setup.body);
        let write = format!("Notes.create({{ id: '1', note: '{MARKER}-{db}' }})");
        let written = query_in(&server, db, &write).await;
        assert_eq!(written.status, 200, "{:?}", written.body);
    }
    stop(server);

    // Every value is sealed under its database's key: not even the block-decrypted store
    // holds the marker.
    for value in raw_values(data.path(), &key) {
        assert!(
            !contains(&value, MARKER.as_bytes()),
            "a value is not sealed"
        );
    }
    // Offline `keys verify` checks the per-database keys too.
    let (status, stdout, stderr) = run_to_exit(keys(&[
        "verify",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--master-key-file",
        key_arg,
    ]));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("per-database keys unwrap"), "{stdout}");

    // A backup taken while `doomed` exists.
    let (status, _, stderr) = tool(&[
        "backup",
        "create",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--out",
        backups_arg,
        "--master-key-file",
        key_arg,
    ]);
    assert!(status.success(), "{stderr}");
    let backup_file = std::fs::read_dir(backups.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap() != "dbkeys" && !p.to_str().unwrap().ends_with(".tmp"))
        .unwrap();

    // `doomed` is deleted: its key is destroyed here and in the copy beside the backups.
    let server = TestServer::start(data.path(), &serve_args, &[]);
    let (status, body) = query(server.addr, "Database.byName('doomed')!.delete()").unwrap();
    assert_eq!(status, 200, "{body}");
    stop(server);
    let copy = std::fs::read_to_string(backups.path().join("dbkeys")).unwrap();
    assert!(copy.contains("shredded "), "{copy}");
    assert_eq!(
        copy,
        std::fs::read_to_string(data.path().join("dbkeys")).unwrap()
    );

    // The old backup restores, but without the key file it is refused, not misread.
    let restored = tempfile::tempdir().unwrap();
    let restored_dir = restored.path().join("store");
    let (status, _, stderr) = tool(&[
        "restore",
        backup_file.to_str().unwrap(),
        "--data-dir",
        restored_dir.to_str().unwrap(),
        "--master-key-file",
        key_arg,
    ]);
    assert!(status.success(), "{stderr}");
    let (status, _, stderr) = run_to_exit(testudo(
        &restored_dir,
        &[
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--master-key-file",
            key_arg,
        ],
        &[],
    ));
    assert!(!status.success());
    assert!(stderr.contains("copy the `dbkeys` file"), "{stderr}");

    // With the key file kept beside the backups (taken from there by `--db-keys-copy-dir`):
    // the sibling reads, the deleted database's documents are a clear error, never data.
    let server = TestServer::start(&restored_dir, &serve_args, &[]);
    assert_eq!(
        std::fs::read_to_string(restored_dir.join("dbkeys")).unwrap(),
        copy
    );
    let kept = query_in(&server, "kept", "Notes.byId('1')!.note").await;
    assert_eq!(kept.status, 200, "{:?}", kept.body);
    assert_eq!(kept.json()["data"], format!("{MARKER}-kept"));
    let doomed = query_in(&server, "doomed", "Notes.byId('1')!.note").await;
    assert_ne!(doomed.status, 200);
    assert!(!contains(&doomed.body, MARKER.as_bytes()));
    server.wait_for_log("crypto-shredded");
    stop(server);
}

/// The `key` lines of the keyring in `dir` (id and label) and whether it records a rotation.
fn keyring_state(dir: &Path) -> (Vec<(u32, String)>, bool) {
    let text = std::fs::read_to_string(dir.join("keyring")).unwrap();
    let keys = text
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split(' ').collect();
            match words.as_slice() {
                ["key", id, label, _] => Some((id.parse().unwrap(), (*label).to_owned())),
                _ => None,
            }
        })
        .collect();
    (keys, text.lines().any(|l| l.starts_with("rotating ")))
}

/// Creates `n` documents of about `size` bytes each in `Bulk`, ten per query.
fn fill(addr: std::net::SocketAddr, n: usize, size: usize) {
    let filler = "z".repeat(size);
    for start in (0..n).step_by(10) {
        let creates: Vec<String> = (start..(start + 10).min(n))
            .map(|i| format!("Bulk.create({{ n: {i}, filler: '{filler}' }})"))
            .collect();
        let (status, body) = query(addr, &format!("{}\n1", creates.join("\n"))).unwrap();
        assert_eq!(status, 200, "{body}");
    }
}

/// Every `Bulk` document number and `Ledger` tag on the server.
fn stored_marks(addr: std::net::SocketAddr) -> (usize, Vec<String>) {
    let (status, body) = query(addr, "Bulk.all().count()").unwrap();
    assert_eq!(status, 200, "{body}");
    let bulk = body["data"].as_u64().unwrap() as usize;
    let (status, body) = query(addr, "Ledger.all().map(.tag).toArray()").unwrap();
    assert_eq!(status, 200, "{body}");
    let tags = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    (bulk, tags)
}

/// A thread that keeps writing `Ledger` documents until told to stop; returns the tags of
/// the acknowledged ones.
fn writer(
    addr: std::net::SocketAddr,
    prefix: &'static str,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut acked = Vec::new();
        for i in 0.. {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let tag = format!("{prefix}-{i}");
            match query(addr, &format!("Ledger.create({{ tag: '{tag}' }})\n1")) {
                Ok((200, _)) => acked.push(tag),
                Ok((status, body)) => panic!("write refused: {status} {body}"),
                Err(_) => break,
            }
        }
        acked
    })
}

fn rotate_data(data_dir: &Path, key: &Path, extra: &[&str]) -> (ExitStatus, String, String) {
    let mut args = vec![
        "rotate-data",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--master-key-file",
        key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_to_exit(keys(&args))
}

/// The two collections the rotation tests fill (`Bulk`) and write to meanwhile (`Ledger`).
fn create_rotation_collections(addr: std::net::SocketAddr) {
    for name in ["Bulk", "Ledger"] {
        let (status, _) = query(addr, &format!("Collection.create({{ name: '{name}' }})")).unwrap();
        assert_eq!(status, 200);
    }
}

/// `bulk` documents are in `Bulk`, and every acknowledged write in `acked` is stored.
fn assert_all_stored(addr: std::net::SocketAddr, bulk: usize, acked: &[String]) {
    let (stored, tags) = stored_marks(addr);
    assert_eq!(stored, bulk);
    for tag in acked {
        assert!(tags.contains(tag), "acknowledged write {tag} lost");
    }
}

fn verify_blocks(data_dir: &Path, key: &Path) {
    let (status, stdout, stderr) = run_to_exit(keys(&[
        "verify",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--master-key-file",
        key.to_str().unwrap(),
    ]));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("authenticate"), "{stdout}");
}

#[test]
fn keys_rotate_data_re_encrypts_online_while_a_writer_keeps_writing() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, _) = key_file(keys_dir.path(), "master.key");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &key_path);
    create_rotation_collections(server.addr);
    fill(server.addr, 200, 4000);
    let (before, _) = keyring_state(data.path());
    assert_eq!(before.len(), 1);

    let stop_writing = Arc::new(AtomicBool::new(false));
    let writing = writer(server.addr, "online", Arc::clone(&stop_writing));
    let (status, stdout, stderr) = rotate_data(data.path(), &key_path, &[]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("while the server ran"), "{stdout}");
    stop_writing.store(true, Ordering::Relaxed);
    let acked = writing.join().unwrap();

    // Only the new key is left, and nothing acknowledged is missing.
    let (after, rotating) = keyring_state(data.path());
    assert!(!rotating);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_ne!(after[0].0, before[0].0);
    assert_all_stored(server.addr, 200, &acked);
    // The server said what it did, by key ids, never with key material.
    server.wait_for_log("data-key rotation started");
    server.wait_for_log("data-key rotation finished");
    let key_text = std::fs::read_to_string(&key_path).unwrap();
    for line in server.stderr() {
        assert!(
            !line.contains(key_text.trim()),
            "the master key was logged: {line}"
        );
    }
    stop(server);
    verify_blocks(data.path(), &key_path);

    let server = start(data.path(), &key_path);
    assert_all_stored(server.addr, 200, &acked);
    stop(server);
}

#[test]
fn an_online_rotation_killed_by_kill_9_resumes_at_the_next_start_and_loses_nothing() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (key_path, _) = key_file(keys_dir.path(), "master.key");
    let data = tempfile::tempdir().unwrap();
    // A slow pass (1% of the time), so that the kill lands in the middle of it.
    let slow = [("TESTUDO_ROTATION_DUTY", "0.01")];
    let key_arg = ["--dev", "--master-key-file", key_path.to_str().unwrap()];
    let mut server = TestServer::start(data.path(), &key_arg, &slow);
    create_rotation_collections(server.addr);
    fill(server.addr, 600, 8000);
    let stop_writing = Arc::new(AtomicBool::new(false));
    let writing = writer(server.addr, "killed", Arc::clone(&stop_writing));

    let (status, stdout, stderr) = rotate_data(data.path(), &key_path, &["--no-wait"]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("requested"), "{stdout}");
    // Kill it once the pass has rewritten a batch (the journal records its cursor).
    let journal = data.path().join(format!("{ENCRYPTED_DATA_FILE}.journal"));
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::metadata(&journal).map_or(0, |m| m.len()) == 0 {
        assert!(
            Instant::now() < deadline,
            "the server never started the rotation"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill_hard();
    stop_writing.store(true, Ordering::Relaxed);
    let acked = writing.join().unwrap();
    let (held, rotating) = keyring_state(data.path());
    assert!(rotating, "the rotation finished before the kill: {held:?}");
    assert_eq!(held.len(), 2);

    // The next start resumes it; `rotate-data` waits for the same rotation to finish.
    let server = start(data.path(), &key_path);
    let (status, stdout, stderr) = rotate_data(data.path(), &key_path, &[]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("while the server ran"), "{stdout}");
    let (after, rotating) = keyring_state(data.path());
    assert!(!rotating);
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(
        after[0].0, held[1].0,
        "the resumed rotation used another key"
    );
    assert_all_stored(server.addr, 600, &acked);
    stop(server);
    verify_blocks(data.path(), &key_path);
}

#[test]
fn rotate_data_beside_a_server_that_predates_rotate_master_is_refused_until_it_restarts() {
    let keys_dir = tempfile::tempdir().unwrap();
    let (old_path, _) = key_file(keys_dir.path(), "old.key");
    let (new_path, _) = key_file(keys_dir.path(), "new.key");
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &old_path);
    create_rotation_collections(server.addr);
    fill(server.addr, 20, 100);

    let (status, _, stderr) = run_to_exit(keys(&[
        "rotate-master",
        "--data-dir",
        data.path().to_str().unwrap(),
        "--master-key-file",
        old_path.to_str().unwrap(),
        "--new-master-key-file",
        new_path.to_str().unwrap(),
    ]));
    assert!(status.success(), "{stderr}");
    // The server still holds the old key: a data key wrapped under the new one would be
    // useless to it, so the rotation is refused up front, and nothing changes.
    let (before, _) = keyring_state(data.path());
    let (status, _, stderr) = rotate_data(data.path(), &new_path, &["--no-wait"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("restart the server"), "{stderr}");
    assert_eq!(keyring_state(data.path()), (before, false));

    stop(server);
    let server = start(data.path(), &new_path);
    let (status, stdout, stderr) = rotate_data(data.path(), &new_path, &[]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("while the server ran"), "{stdout}");
    assert_all_stored(server.addr, 20, &[]);
    stop(server);
}
