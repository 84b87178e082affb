//! Noisy neighbours against the real binary: a child database flooded from several threads
//! beyond its `queries_per_second` gets HTTP 429 `limit_exceeded`, while its sibling's
//! queries, sent at the same time, all succeed.
//!
//! No timing is asserted: the flooded database allows one query per second and is sent
//! hundreds back to back, so some are refused however slow the machine is.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::TestServer;

/// One keep-alive HTTP/1.1 connection sending queries with one secret.
struct Conn {
    reader: BufReader<TcpStream>,
    secret: String,
}

impl Conn {
    fn open(addr: SocketAddr, secret: &str) -> Conn {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Conn {
            reader: BufReader::new(stream),
            secret: secret.to_owned(),
        }
    }

    /// Sends `fql`; returns the status and the error code (if any).
    fn query(&mut self, fql: &str) -> (u16, Option<String>) {
        let body = serde_json::json!({ "query": fql }).to_string();
        let request = format!(
            "POST /query/1 HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nX-Format: simple\r\nContent-Length: {}\r\n\r\n{body}",
            self.secret,
            body.len()
        );
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        let mut status_line = String::new();
        self.reader.read_line(&mut status_line).unwrap();
        let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let code = json["error"]["code"].as_str().map(str::to_owned);
        (status, code)
    }
}

#[test]
fn a_flooded_database_is_refused_over_its_rate_while_its_sibling_is_served() {
    let server = TestServer::dev();
    let mut root = Conn::open(server.addr, "secret");
    let (status, _) = root.query(
        "Database.create({ name: 'noisy', limits: { queries_per_second: 1 } }); \
         Database.create({ name: 'quiet' }); null",
    );
    assert_eq!(status, 200);

    let (noisy, quiet) = std::thread::scope(|scope| {
        let flooders: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut conn = Conn::open(server.addr, "secret:noisy:admin");
                    (0..60).map(|_| conn.query("1 + 1")).collect::<Vec<_>>()
                })
            })
            .collect();
        let sibling = scope.spawn(|| {
            let mut conn = Conn::open(server.addr, "secret:quiet:admin");
            (0..60).map(|_| conn.query("1 + 1")).collect::<Vec<_>>()
        });
        let noisy: Vec<_> = flooders
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        (noisy, sibling.join().unwrap())
    });

    let refused = noisy
        .iter()
        .filter(|(status, code)| *status == 429 && code.as_deref() == Some("limit_exceeded"))
        .count();
    let served = noisy.iter().filter(|(status, _)| *status == 200).count();
    assert!(refused > 0, "{noisy:?}");
    assert_eq!(refused + served, noisy.len(), "{noisy:?}");
    assert!(
        quiet.iter().all(|(status, _)| *status == 200),
        "the sibling was refused: {quiet:?}"
    );
    assert_eq!(quiet.len(), 60);
}

#[test]
fn server_wide_default_limits_apply_to_databases_that_set_none() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        &dir.path().join("data"),
        &["--dev", "--default-queries-per-second", "1"],
        &[],
    );
    let mut root = Conn::open(server.addr, "secret");
    let (status, _) = root.query(
        "Database.create({ name: 'plain' }); \
         Database.create({ name: 'generous', limits: { queries_per_second: 100000 } }); null",
    );
    assert_eq!(status, 200);
    let mut plain = Conn::open(server.addr, "secret:plain:admin");
    let answers: Vec<_> = (0..20).map(|_| plain.query("1 + 1")).collect();
    assert!(
        answers
            .iter()
            .any(|(status, code)| *status == 429 && code.as_deref() == Some("limit_exceeded")),
        "{answers:?}"
    );
    let mut generous = Conn::open(server.addr, "secret:generous:admin");
    assert!((0..20).all(|_| generous.query("1 + 1").0 == 200));
    assert!((0..20).all(|_| root.query("1 + 1").0 == 200));

    let refused = common::testudo(
        &dir.path().join("refused"),
        &[
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--default-queries-per-second",
            "0",
        ],
        &[],
    )
    .output()
    .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--default-queries-per-second"));
}

#[test]
fn refusals_are_held_back_so_a_flood_in_a_loop_is_slowed_and_the_sibling_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        &dir.path().join("data"),
        &["--dev", "--rate-limit-refusal-delay-ms", "150"],
        &[],
    );
    let mut root = Conn::open(server.addr, "secret");
    let (status, _) = root.query(
        "Database.create({ name: 'noisy', limits: { queries_per_second: 1 } }); \
         Database.create({ name: 'quiet' }); null",
    );
    assert_eq!(status, 200);

    let mut noisy = Conn::open(server.addr, "secret:noisy:admin");
    let mut refusals = 0;
    for _ in 0..8 {
        let started = std::time::Instant::now();
        let (status, code) = noisy.query("1 + 1");
        if status == 429 {
            assert_eq!(code.as_deref(), Some("limit_exceeded"));
            // Held back, whichever path refused it (the first look-up of the limits runs on
            // a blocking thread, later ones on the network thread). A lower bound only:
            // a slow machine can make it longer, never shorter.
            assert!(started.elapsed() >= Duration::from_millis(150));
            refusals += 1;
        }
    }
    assert!(refusals >= 5, "only {refusals} of 8 refused");
    // Answers that are not refusals are not held: the sibling's queries succeed at once.
    let mut quiet = Conn::open(server.addr, "secret:quiet:admin");
    assert!((0..20).all(|_| quiet.query("1 + 1").0 == 200));

    let refused = common::testudo(
        &dir.path().join("refused"),
        &[
            "--dev",
            "--listen",
            "127.0.0.1:0",
            "--rate-limit-refusal-delay-ms",
            "6000",
        ],
        &[],
    )
    .output()
    .unwrap();
    assert_eq!(refused.status.code(), Some(2));
}

#[test]
fn a_tenants_children_share_one_refusal_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(
        &dir.path().join("data"),
        &[
            "--dev",
            "--rate-limit-refusal-delay-ms",
            "1",
            "--rate-limit-refusals-per-second",
            "20",
        ],
        &[],
    );
    let mut root = Conn::open(server.addr, "secret");
    let (status, _) =
        root.query("Database.create({ name: 'tenant', limits: { queries_per_second: 1 } }); null");
    assert_eq!(status, 200);
    let mut tenant = Conn::open(server.addr, "secret:tenant:admin");
    let (status, _) =
        tenant.query("Database.create({ name: 'a' }); Database.create({ name: 'b' }); null");
    assert_eq!(status, 200);

    // One flooder per child, at once: their refusals are answered from the tenant's one
    // schedule, 20 a second between them, where a schedule per child would allow 40.
    let started = std::time::Instant::now();
    let flooders: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|child| {
            let addr = server.addr;
            std::thread::spawn(move || {
                let mut conn = Conn::open(addr, &format!("secret:tenant/{child}:admin"));
                (0..12).filter(|_| conn.query("1 + 1").0 == 429).count()
            })
        })
        .collect();
    let refusals: usize = flooders.into_iter().map(|f| f.join().unwrap()).sum();
    let elapsed = started.elapsed();
    assert!(refusals >= 18, "only {refusals} of 24 refused");
    // A lower bound only: a slow machine makes it longer, never shorter.
    let one_schedule = Duration::from_secs_f64((refusals - 2) as f64 / 20.0);
    assert!(
        elapsed >= one_schedule,
        "{refusals} refusals in {elapsed:?}: faster than one schedule allows"
    );
}
