//! `testudo-load`: runs one scenario against a server and prints what it measured (see
//! `testudo-load --help` and `docs/BENCHMARKS.md`).
//!
//! Exit codes: 0 when the run completed (even with failed requests: they are in the
//! report), 1 when it could not run (bad options, server unreachable, setup failed).
//!
//! **Invariants:** stdout carries only the report; diagnostics go to stderr.

use std::process::ExitCode;

use clap::Parser;
use testudo_bench::options::OutputFormat;
use testudo_bench::report::{self, CSV_HEADER, SEED_CSV_HEADER};
use testudo_bench::{LoadOptions, execute, seed};

fn main() -> ExitCode {
    let options = LoadOptions::parse();
    if let Err(message) = options.validate() {
        eprintln!("testudo-load: {message}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("testudo-load: could not start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    if options.seed_only {
        let seeding = match runtime.block_on(seed(&options)) {
            Ok(seeding) => seeding,
            Err(err) => {
                eprintln!("testudo-load: {err}");
                return ExitCode::FAILURE;
            }
        };
        match options.format {
            OutputFormat::Text => print!("{}", report::seed_text(&options, &seeding)),
            OutputFormat::Csv => {
                if options.csv_header {
                    println!("{SEED_CSV_HEADER}");
                }
                println!("{}", report::seed_csv_row(&options, &seeding));
            }
        }
        return ExitCode::SUCCESS;
    }
    let report = match runtime.block_on(execute(&options)) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("testudo-load: {err}");
            return ExitCode::FAILURE;
        }
    };
    if report.seeding.created > 0 {
        eprint!(
            "testudo-load: {}",
            report::seed_text(&options, &report.seeding)
        );
    }
    if let Some(first) = &report.outcome.first_error {
        eprintln!(
            "testudo-load: {} request(s) failed in the measured window; first failure: {first}",
            report.outcome.errors
        );
    }
    match options.format {
        OutputFormat::Text => print!("{}", report.text()),
        OutputFormat::Csv => {
            if options.csv_header {
                println!("{CSV_HEADER}");
            }
            println!("{}", report.csv_row());
        }
    }
    ExitCode::SUCCESS
}
