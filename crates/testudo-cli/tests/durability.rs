//! Durability over a real process: every write the server acknowledged survives `kill -9`,
//! and a query killed mid-commit is all-or-nothing.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{TestServer, blocking_query as query};

#[test]
fn acknowledged_writes_survive_kill_9_and_each_query_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path(), &["--dev"], &[]);
    let (status, _) = query(server.addr, "Collection.create({ name: 'Ledger' })").unwrap();
    assert_eq!(status, 200);

    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let (acked, stop, addr) = (acked.clone(), stop.clone(), server.addr);
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    // Two documents per query: after a crash, both or neither may exist.
                    let pair = format!("w{w}-{i}");
                    let fql = format!("Ledger.create({{ pair: '{pair}', half: 1 }})\nLedger.create({{ pair: '{pair}', half: 2 }})\n1");
                    match query(addr, &fql) {
                        Ok((200, _)) => acked.lock().unwrap().push(pair),
                        Ok((status, body)) => panic!("write refused: {status} {body}"),
                        // The server died under us: stop writing.
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    while acked.lock().unwrap().len() < 300 {
        assert!(Instant::now() < deadline, "writers made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Kill while writers are mid-request.
    server.kill_hard();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let server = TestServer::start(dir.path(), &["--dev"], &[]);
    let (status, body) = query(server.addr, "Ledger.all().map(.pair).toArray()").unwrap();
    assert_eq!(status, 200, "{body}");
    let mut counts = std::collections::HashMap::<String, usize>::new();
    for pair in body["data"].as_array().unwrap() {
        *counts
            .entry(pair.as_str().unwrap().to_string())
            .or_default() += 1;
    }
    for pair in &acked {
        assert_eq!(
            counts.get(pair),
            Some(&2),
            "acknowledged write {pair} lost after kill -9"
        );
    }
    for (pair, n) in &counts {
        assert_eq!(*n, 2, "query {pair} was half applied");
    }
    assert!(counts.len() >= acked.len());
    eprintln!(
        "{} writes acknowledged before kill -9, {} found after restart",
        acked.len(),
        counts.len()
    );
}
