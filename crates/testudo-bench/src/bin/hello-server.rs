//! `hello-server`: the bare-hyper baseline of the benchmarks (see `testudo_bench::hello`).
//! Prints `hello-server listening on http://<addr>` once bound; stops on SIGINT or SIGTERM.
//!
//! **Invariants:** listens on loopback unless told otherwise; stdout carries only the
//! listening line.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Parser)]
#[command(
    name = "hello-server",
    about = "Bare hyper server answering a fixed JSON body."
)]
struct Args {
    /// The address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,

    /// Worker threads of the runtime (default: one per core, like `testudo serve`).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(threads) = args.threads {
        runtime.worker_threads(threads.max(1));
    }
    let result = runtime
        .build()
        .map_err(|err| format!("could not start the runtime: {err}"))
        .and_then(|runtime| runtime.block_on(run(&args.listen)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("hello-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(listen: &str) -> Result<(), String> {
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|err| err.to_string())?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|err| err.to_string())?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|err| format!("could not listen on {listen}: {err}"))?;
    let local = listener.local_addr().map_err(|err| err.to_string())?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "hello-server listening on http://{local}")
            .and_then(|()| out.flush())
            .map_err(|err| err.to_string())?;
    }
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
    };
    testudo_bench::hello::serve(listener, shutdown)
        .await
        .map_err(|err| err.to_string())
}
