//! The result of one run, printed for people (text) or for `scripts/bench` (one CSV row
//! under a fixed header).
//!
//! **Invariants:** the CSV columns and their order only ever grow at the end (old run files
//! stay readable); latencies are in microseconds, rates in operations per second.

use std::fmt::Write as _;
use std::time::Duration;

use crate::options::LoadOptions;
use crate::runner::Outcome;
use crate::setup::Seeding;

pub const CSV_HEADER: &str = "scenario,protocol,connections,streams,client_threads,warmup_s,\
duration_s,ok,errors,ops_per_sec,p50_us,p99_us,max_us,mean_us,server_cores,client_cores,\
server_us_per_op,auth,server_threads_us_per_op";

/// The header of `--seed-only --format csv`: what preparing a scenario did.
pub const SEED_CSV_HEADER: &str =
    "scenario,collection,docs,found,created,seconds,docs_per_sec,seed_batch";

#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: &'static str,
    pub protocol: &'static str,
    pub connections: usize,
    pub streams: usize,
    pub client_threads: usize,
    pub warmup: Duration,
    /// The kind of secret the measured requests carried (`root`, `key`, `token`).
    pub auth: &'static str,
    pub outcome: Outcome,
    /// What preparing the scenario created.
    pub seeding: Seeding,
}

impl Report {
    pub fn new(options: &LoadOptions, outcome: Outcome, seeding: Seeding) -> Report {
        Report {
            scenario: options.scenario.name(),
            protocol: options.protocol().name(),
            connections: options.connections,
            streams: options.streams,
            client_threads: options.threads,
            warmup: options.warmup(),
            auth: options.auth.name(),
            outcome,
            seeding,
        }
    }

    pub fn csv_row(&self) -> String {
        let o = &self.outcome;
        let optional =
            |v: Option<f64>, digits: usize| v.map_or_else(String::new, |v| format!("{v:.digits$}"));
        format!(
            "{},{},{},{},{},{},{},{},{},{:.1},{},{},{},{},{},{},{},{},{}",
            self.scenario,
            self.protocol,
            self.connections,
            self.streams,
            self.client_threads,
            self.warmup.as_secs_f64(),
            o.measured.as_secs_f64(),
            o.ok,
            o.errors,
            o.ops_per_sec(),
            o.latency.p50.as_micros(),
            o.latency.p99.as_micros(),
            o.latency.max.as_micros(),
            o.latency.mean.as_micros(),
            optional(o.cores(o.server_cpu), 2),
            optional(o.cores(o.client_cpu), 2),
            optional(o.server_us_per_op(), 1),
            self.auth,
            threads_column(o),
        )
    }

    pub fn text(&self) -> String {
        let o = &self.outcome;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} over {} as {}: {} connection(s) x {} stream(s), {} client thread(s), {:.1} s measured after {:.1} s warm-up",
            self.scenario,
            self.protocol,
            self.auth,
            self.connections,
            self.streams,
            self.client_threads,
            o.measured.as_secs_f64(),
            self.warmup.as_secs_f64(),
        );
        let _ = writeln!(
            out,
            "  {:.0} ops/s   p50 {}   p99 {}   max {}   mean {}   ({} ok, {} errors)",
            o.ops_per_sec(),
            millis(o.latency.p50),
            millis(o.latency.p99),
            millis(o.latency.max),
            millis(o.latency.mean),
            o.ok,
            o.errors,
        );
        if let Some(server) = o.cores(o.server_cpu) {
            let _ = writeln!(
                out,
                "  server CPU {server:.2} cores ({:.1} us per request)",
                o.server_us_per_op().unwrap_or(0.0)
            );
        }
        for (kind, user, system) in o.server_threads_us_per_op() {
            let _ = writeln!(
                out,
                "    {kind}: {:.1} us per request ({user:.1} user, {system:.1} system)",
                user + system
            );
        }
        if let Some(client) = o.cores(o.client_cpu) {
            let _ = writeln!(out, "  load generator CPU {client:.2} cores");
        }
        out
    }
}

/// The server's threads by kind, as `kind=user/system` in µs per request, `;`-separated and
/// the busiest first (`tokio-rt-worker=57.2/24.1;audit-writer=1.7/0.7`).
fn threads_column(o: &Outcome) -> String {
    let mut column = String::new();
    for (kind, user, system) in o.server_threads_us_per_op() {
        if !column.is_empty() {
            column.push(';');
        }
        // A kind is a thread name: no comma or `;` is expected, but one must not break the row.
        let kind: String = kind
            .chars()
            .filter(|c| !matches!(c, ',' | ';' | '='))
            .collect();
        let _ = write!(column, "{kind}={user:.1}/{system:.1}");
    }
    column
}

/// One `--seed-only` result: a line for people, or a row under [`SEED_CSV_HEADER`].
pub fn seed_text(options: &LoadOptions, seeding: &Seeding) -> String {
    let collection = seeding.collection.unwrap_or("nothing");
    format!(
        "{}: {collection} holds {} documents ({} found, {} created in {:.1} s: {:.0} per second, {} per query)\n",
        options.scenario.name(),
        seeding.found + seeding.created,
        seeding.found,
        seeding.created,
        seeding.elapsed.as_secs_f64(),
        seeding.docs_per_sec(),
        options.seed_batch,
    )
}

pub fn seed_csv_row(options: &LoadOptions, seeding: &Seeding) -> String {
    format!(
        "{},{},{},{},{},{:.2},{:.1},{}",
        options.scenario.name(),
        seeding.collection.unwrap_or(""),
        options.docs,
        seeding.found,
        seeding.created,
        seeding.elapsed.as_secs_f64(),
        seeding.docs_per_sec(),
        options.seed_batch,
    )
}

fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Summary;
    use clap::Parser;

    fn report() -> Report {
        Report {
            scenario: "point-read",
            protocol: "h1",
            connections: 16,
            streams: 1,
            client_threads: 1,
            warmup: Duration::from_secs(2),
            auth: "root",
            outcome: Outcome {
                latency: Summary {
                    count: 5_000,
                    p50: Duration::from_micros(250),
                    p99: Duration::from_micros(1_200),
                    max: Duration::from_micros(9_000),
                    mean: Duration::from_micros(300),
                },
                ok: 5_000,
                errors: 2,
                measured: Duration::from_secs(10),
                first_error: None,
                server_cpu: Some(Duration::from_secs(12)),
                client_cpu: None,
                server_threads: vec![
                    (
                        "tokio-rt-worker".to_owned(),
                        crate::cpu::Used {
                            user: Duration::from_secs(8),
                            system: Duration::from_millis(3_500),
                        },
                    ),
                    (
                        "audit,writer".to_owned(),
                        crate::cpu::Used {
                            user: Duration::from_millis(300),
                            system: Duration::from_millis(200),
                        },
                    ),
                ],
            },
            seeding: Seeding {
                collection: None,
                found: 0,
                created: 0,
                elapsed: Duration::ZERO,
            },
        }
    }

    #[test]
    fn a_csv_row_has_one_field_per_header_column() {
        let row = report().csv_row();
        assert_eq!(row.split(',').count(), CSV_HEADER.split(',').count());
        assert_eq!(
            row,
            "point-read,h1,16,1,1,2,10,5000,2,500.0,250,1200,9000,300,1.20,,2400.0,root,\
             tokio-rt-worker=1600.0/700.0;auditwriter=60.0/40.0"
        );
    }

    #[test]
    fn a_seed_row_has_one_field_per_header_column() {
        let options = LoadOptions::try_parse_from([
            "testudo-load",
            "--scenario",
            "index-lookup",
            "--docs",
            "1000",
        ])
        .unwrap();
        let seeding = Seeding {
            collection: Some("BenchIndex"),
            found: 200,
            created: 800,
            elapsed: Duration::from_secs(2),
        };
        let row = seed_csv_row(&options, &seeding);
        assert_eq!(row, "index-lookup,BenchIndex,1000,200,800,2.00,400.0,2000");
        assert_eq!(row.split(',').count(), SEED_CSV_HEADER.split(',').count());
        assert!(seed_text(&options, &seeding).contains("holds 1000 documents"));
    }

    #[test]
    fn the_text_summary_names_rate_percentiles_and_errors() {
        let text = report().text();
        assert!(text.contains("500 ops/s"), "{text}");
        assert!(text.contains("p99 1.200 ms"), "{text}");
        assert!(text.contains("2 errors"), "{text}");
        assert!(
            text.contains("server CPU 1.20 cores (2400.0 us per request)"),
            "{text}"
        );
    }
}
