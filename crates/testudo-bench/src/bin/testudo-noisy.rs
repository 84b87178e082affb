//! `testudo-noisy`: the noisy-neighbour benchmark against a running server (see
//! `testudo_bench::noisy` and `docs/BENCHMARKS.md`). Prints a Markdown table.
//!
//! Exit codes: 0 when the run completed, 1 when it could not run.
//!
//! **Invariants:** stdout carries only the report; diagnostics go to stderr.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use testudo_bench::noisy::{NoisyOptions, run, text_report};

#[derive(Parser)]
#[command(about = "How a database flooding the server beyond its rate limit slows its sibling")]
struct Args {
    /// The server (http://127.0.0.1:port).
    #[arg(long)]
    url: String,
    /// The root secret.
    #[arg(long, default_value = "secret")]
    secret: String,
    /// `queries_per_second` of the flooded database.
    #[arg(long, default_value_t = 100)]
    limit_qps: u32,
    /// Connections flooding it.
    #[arg(long, default_value_t = 16)]
    flooders: usize,
    /// Total flood requests per second (default: closed loop, as fast as answered).
    #[arg(long)]
    flood_rate: Option<f64>,
    /// The sibling's requests per second.
    #[arg(long, default_value_t = 200.0)]
    sibling_rate: f64,
    /// Seconds of warm-up before each measured period.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// Seconds of each measured period (quiet, then flooded).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Worker threads of the generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = NoisyOptions {
        url: args.url,
        secret: args.secret,
        limit_qps: args.limit_qps,
        flooders: args.flooders,
        flood_rate: args.flood_rate,
        sibling_rate: args.sibling_rate,
        warmup: Duration::from_secs(args.warmup),
        duration: Duration::from_secs(args.duration.max(1)),
        request_timeout: Duration::from_secs(10),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("testudo-noisy: could not start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(report) => {
            print!("{}", text_report(&options, &report));
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("testudo-noisy: {err}");
            ExitCode::FAILURE
        }
    }
}
