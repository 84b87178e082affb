//! CPU cost of the audit log per record, on both sides of the queue: pushes N request records
//! shaped like the server's (`testudo-server/src/observe.rs` builds them the same way)
//! through an [`AuditWriter`] and reports the CPU µs per record of the producing thread and of
//! the writer thread, read from `/proc/thread-self/stat` and `/proc/self/task/<tid>/stat`.
//!
//! ```sh
//! cargo run --release -p testudo-audit --example writer_cost -- [records] [rate] [keyed|plain] [auto|sha256|blake3]
//! ```
//!
//! `records` defaults to 200,000; `rate` (records per second, default 40,000; 0: as fast as
//! the writer takes them) sends them in bursts every 5 ms like a busy server would; `keyed`
//! chains under a key; the last argument picks the hash (default `auto`, as `serve` does). The log goes to a fresh temporary directory and is verified at the
//! end (its verification time is not counted).
//!
//! **Invariants:** measures only; figures are CPU time (user + system), not wall time, so
//! they hold on a loaded machine to the extent that caches and frequency do.

use std::sync::Arc;
use std::time::{Duration, Instant};

use testudo_audit::{
    AuditEvent, AuditSink, AuditWriter, ChainChoice, CredentialRef, DatabaseRef, Ops, Outcome,
    QueryHash, RequestRecord, TraceId, WhenFull, WriterConfig, query_hash_parts, verify,
};

/// Ticks per second of the `utime`/`stime` fields of `/proc/*/stat`.
const USER_HZ: f64 = 100.0;

fn cpu_of(stat_path: &str) -> Duration {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    let ticks = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            let mut fields = rest.split_whitespace().skip(11);
            let user: u64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
            let system: u64 = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
            user + system
        })
        .unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / USER_HZ)
}

/// The `stat` file of the thread named `audit-writer`.
fn writer_stat() -> Option<String> {
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() == "audit-writer" {
            return Some(path.join("stat").to_string_lossy().into_owned());
        }
    }
    None
}

/// What the query handler leaves for `observe::answered`, as in a point read by the root key.
struct Facts {
    database_path: Arc<str>,
    query_hash: QueryHash,
    txn_ts: u64,
}

/// `observe::answered`'s construction of the record, from borrowed request facts.
fn record(facts: &Facts, i: u64, traceparent: &str) -> AuditEvent {
    let endpoint: &'static str = "/query/1";
    let outcome: &'static str = "ok";
    AuditEvent::Request(RequestRecord {
        endpoint: endpoint.into(),
        status: 200,
        outcome: Outcome::code(outcome),
        duration_us: 700 + i % 300,
        client: Some(std::net::IpAddr::from([127, 0, 0, 1])),
        database: Some(DatabaseRef {
            id: 0,
            path: Some(Arc::clone(&facts.database_path)),
        }),
        credential: Some(CredentialRef::Root),
        txn_ts: Some(facts.txn_ts + i),
        query_hash: Some(facts.query_hash),
        tags: None,
        ops: Some(Ops {
            compute: 1,
            read: 1,
            write: 0,
            contention_retries: 0,
        }),
        trace_id: traceparent.get(3..35).and_then(TraceId::parse),
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(40_000);
    let keyed = args.next().is_some_and(|a| a == "keyed");
    let chain = match args.next().as_deref() {
        None | Some("auto") => ChainChoice::Auto,
        Some("sha256") => ChainChoice::Sha256,
        Some("blake3") => ChainChoice::Blake3,
        Some(other) => {
            eprintln!("writer_cost: unknown chain {other:?} (auto, sha256 or blake3)");
            std::process::exit(2);
        }
    };

    let dir = std::env::temp_dir().join(format!("writer-cost-{}", std::process::id()));
    let mut config = WriterConfig::new(&dir);
    config.when_full = WhenFull::Block;
    config.chain = chain;
    if keyed {
        config.key = Some([7; 32]);
    }
    let writer = AuditWriter::open(config).expect("open the log");
    // The thread names itself once it runs: look until it has.
    let mut writer_stat_path = None;
    for _ in 0..1000 {
        writer_stat_path = writer_stat();
        if writer_stat_path.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let writer_stat = writer_stat_path.expect("the writer thread");
    let facts = Facts {
        database_path: Arc::from(""),
        query_hash: query_hash_parts([Some("Product.byId("), None, Some(")")]),
        txn_ts: 1_795_803_691_266_621,
    };
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    // Bursts every 5 ms: `rate / 200` records each.
    let burst = if rate == 0 {
        records
    } else {
        (rate / 200).max(1)
    };
    let producer_before = cpu_of("/proc/thread-self/stat");
    let writer_before = cpu_of(&writer_stat);
    let started = Instant::now();
    let mut sent = 0;
    while sent < records {
        let n = burst.min(records - sent);
        for i in sent..sent + n {
            writer.record(record(&facts, i, traceparent));
        }
        sent += n;
        if rate > 0 {
            let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    }
    let producer = cpu_of("/proc/thread-self/stat") - producer_before;
    writer.sync();
    let writer_cpu = cpu_of(&writer_stat) - writer_before;
    let wall = started.elapsed();
    let stats = writer.stats();
    writer.close();

    let bytes: u64 = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let report = verify(&dir, keyed.then_some(&[7u8; 32]), None);
    let _ = std::fs::remove_dir_all(&dir);

    let per = |d: Duration| d.as_secs_f64() * 1e6 / records as f64;
    println!(
        "records {records} rate {rate}/s chain {:?} {} wall {:.2} s written {} dropped {} bytes/record {:.0}",
        chain,
        if keyed { "keyed" } else { "plain" },
        wall.as_secs_f64(),
        stats.written,
        stats.dropped,
        bytes as f64 / records as f64,
    );
    println!(
        "producer {:.2} µs/record  writer {:.2} µs/record  total {:.2} µs/record",
        per(producer),
        per(writer_cpu),
        per(producer + writer_cpu)
    );
    match report {
        Ok(report) => println!("verified: {} records", report.records),
        Err(err) => {
            println!("verification failed: {err}");
            std::process::exit(1);
        }
    }
}
