//! Data-driven FQL specification tests: every `tests/fql/*.test` file runs in a fresh
//! in-memory engine, its records in order.
//!
//! Record forms (records are separated by blank lines; `#` lines are comments):
//!
//! ```text
//! statement ok            # runs the query, which must succeed
//! <fql>
//!
//! query [simple]          # runs the query; its `data` must match the JSON after `----`
//! <fql>
//! ----
//! <expected JSON>
//!
//! query error <code>      # the query must fail with this Fauna error code
//! <fql>
//! [---- <substring the message must contain>]
//! ```
//!
//! Expected JSON may contain `"<any>"` (matches any value) and `"<id>"` (any decimal id).
//! `TESTUDO_BLESS=1 cargo test -p testudo-engine --test fql_spec` rewrites the expected
//! results of `query` records from what the engine returns now.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use testudo_auth::SecretHash;
use testudo_engine::{Engine, EngineConfig, Fragment, QueryRequest, Scope};
use testudo_model::DbId;
use testudo_model::json::{Format, encode};
use testudo_storage::LocalKv;

enum Kind {
    Statement,
    Query { format: Format },
    Error { code: String },
}

struct Record {
    kind: Kind,
    fql: String,
    expected: Option<String>,
    line: usize,
}

fn parse_file(text: &str) -> Vec<Record> {
    let mut records = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim_end();
        if line.is_empty() || line.starts_with('#') {
            i += 1;
            continue;
        }
        let header_line = i + 1;
        let kind = if line == "statement ok" {
            Kind::Statement
        } else if line == "query" {
            Kind::Query {
                format: Format::Tagged,
            }
        } else if line == "query simple" {
            Kind::Query {
                format: Format::Simple,
            }
        } else if let Some(code) = line.strip_prefix("query error ") {
            Kind::Error {
                code: code.trim().to_string(),
            }
        } else {
            panic!("line {header_line}: unknown record header `{line}`");
        };
        i += 1;
        let mut fql = Vec::new();
        while i < lines.len() && !lines[i].trim_end().is_empty() && lines[i].trim_end() != "----" {
            fql.push(lines[i]);
            i += 1;
        }
        let mut expected = None;
        if i < lines.len() && lines[i].trim_end() == "----" {
            i += 1;
            let mut out = Vec::new();
            while i < lines.len() && !lines[i].trim_end().is_empty() {
                out.push(lines[i]);
                i += 1;
            }
            expected = Some(out.join("\n"));
        }
        records.push(Record {
            kind,
            fql: fql.join("\n"),
            expected,
            line: header_line,
        });
    }
    records
}

fn engine() -> Engine {
    let kv = Arc::new(LocalKv::in_memory().expect("in-memory store"));
    Engine::open(
        kv,
        EngineConfig {
            root_secret: SecretHash::of("secret"),
        },
    )
    .expect("engine opens")
}

fn request(fql: &str, format: Format) -> QueryRequest {
    QueryRequest {
        fragments: vec![Fragment::Text(fql.to_string())],
        arguments: Vec::new(),
        format,
        typecheck: None,
        linearized: false,
        deadline: Instant::now() + Duration::from_secs(30),
        timeout: Duration::from_secs(30),
        max_contention_retries: 3,
        last_txn_ts: None,
        client: None,
    }
}

/// Does `actual` match `expected`, where `"<any>"` and `"<id>"` are wildcards?
fn matches(expected: &Json, actual: &Json) -> bool {
    match (expected, actual) {
        (Json::String(e), _) if e == "<any>" => true,
        (Json::String(e), Json::String(a)) if e == "<id>" => {
            !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit())
        }
        (Json::Array(e), Json::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| matches(x, y))
        }
        (Json::Object(e), Json::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|w| matches(v, w)))
        }
        _ => expected == actual,
    }
}

fn run_file(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("readable test file");
    let records = parse_file(&text);
    let engine = engine();
    let scope = Scope::admin(DbId::ROOT);
    let bless = std::env::var_os("TESTUDO_BLESS").is_some();
    let mut failures = Vec::new();
    let mut blessed: Vec<(usize, String)> = Vec::new();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    for rec in &records {
        let format = match rec.kind {
            Kind::Query { format } => format,
            _ => Format::Tagged,
        };
        let response = engine.query(&scope, request(&rec.fql, format));
        let here = format!("{name}:{}", rec.line);
        match (&rec.kind, &response.outcome) {
            (Kind::Statement, Ok(_)) => {}
            (Kind::Statement, Err(e)) => failures.push(format!(
                "{here}: statement failed: {} {}",
                e.code.as_str(),
                e.message
            )),
            (Kind::Query { format }, Ok(output)) => {
                let mut buf = Vec::new();
                encode(output, *format, response.txn_ts, &mut buf);
                let actual: Json = serde_json::from_slice(&buf).expect("engine output is JSON");
                let expected = rec.expected.as_deref().map(serde_json::from_str::<Json>);
                match expected {
                    Some(Ok(exp)) if matches(&exp, &actual) => {}
                    _ if bless => blessed.push((rec.line, actual.to_string())),
                    Some(Ok(exp)) => {
                        failures.push(format!("{here}: expected {exp}\n      got {actual}"))
                    }
                    Some(Err(e)) => {
                        failures.push(format!("{here}: expected result is not JSON: {e}"))
                    }
                    None => failures.push(format!("{here}: no expected result; got {actual}")),
                }
            }
            (Kind::Query { .. }, Err(e)) => failures.push(format!(
                "{here}: query failed: {} {}",
                e.code.as_str(),
                e.message
            )),
            (Kind::Error { code }, Err(e)) => {
                if e.code.as_str() != code {
                    failures.push(format!(
                        "{here}: expected error {code}, got {} ({})",
                        e.code.as_str(),
                        e.message
                    ));
                } else if let Some(part) = &rec.expected
                    && !e.message.contains(part.as_str())
                {
                    failures.push(format!(
                        "{here}: error message `{}` does not contain `{part}`",
                        e.message
                    ));
                }
            }
            (Kind::Error { code }, Ok(output)) => {
                let mut buf = Vec::new();
                encode(output, Format::Tagged, response.txn_ts, &mut buf);
                failures.push(format!(
                    "{here}: expected error {code}, got {}",
                    String::from_utf8_lossy(&buf)
                ));
            }
        }
    }
    if bless && !blessed.is_empty() {
        rewrite(path, &text, &blessed);
    }
    failures
}

/// Replaces the expected results of the given records (by header line) in the file.
fn rewrite(path: &Path, text: &str, blessed: &[(usize, String)]) {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        out.push(lines[i].to_string());
        if let Some((_, actual)) = blessed.iter().find(|(l, _)| *l == i + 1) {
            i += 1;
            while i < lines.len()
                && !lines[i].trim_end().is_empty()
                && lines[i].trim_end() != "----"
            {
                out.push(lines[i].to_string());
                i += 1;
            }
            if i < lines.len() && lines[i].trim_end() == "----" {
                i += 1;
                while i < lines.len() && !lines[i].trim_end().is_empty() {
                    i += 1;
                }
            }
            out.push("----".to_string());
            out.push(actual.clone());
            continue;
        }
        i += 1;
    }
    std::fs::write(path, out.join("\n") + "\n").expect("test file is writable");
}

#[test]
fn fql_spec_files_pass() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fql exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "test"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no spec files found");
    // Queries run on a thread with the stack the server gives them.
    let (failures, records) = std::thread::Builder::new()
        .stack_size(testudo_engine::QUERY_STACK_BYTES)
        .spawn(move || {
            let mut failures = Vec::new();
            let mut records = 0;
            for f in &files {
                records += parse_file(&std::fs::read_to_string(f).expect("readable")).len();
                failures.extend(run_file(f));
            }
            (failures, records)
        })
        .expect("spawn spec thread")
        .join()
        .expect("spec thread did not panic");
    assert!(
        failures.is_empty(),
        "{} of {records} records failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
