//! `testudo-bench`: a closed-loop HTTP load generator for Testudo (`testudo-load`) and the
//! bare-hyper baseline server it is compared with (`hello-server`). Not published.
//!
//! A run is: resolve the target, prepare the scenario over one connection (create and seed
//! its collection through the public API, idempotently), create the key or token the run
//! authenticates with if asked to (`--auth`), open N keep-alive connections
//! (HTTP/1.1, or h2c with S streams each), let every stream send one request after another
//! for a warm-up and then a measured period, and summarise the measured latencies
//! (ops/s, p50, p99, max, errors).
//!
//! Map: `options.rs` (the command line), `client.rs` (connections and requests),
//! `scenario.rs` (the request bodies, exactly as a Fauna driver sends them), `setup.rs`
//! (seeding), `runner.rs` (the workers and the clock), `latency.rs` (percentiles),
//! `report.rs` (text and CSV), `cpu.rs` (CPU time used by the server and the generator),
//! `hello.rs` (the baseline server), `noisy.rs` (the noisy-neighbour benchmark,
//! `testudo-noisy`).
//!
//! **Invariants:** every request is bounded in time and every run ends by itself (warm-up +
//! duration + one request timeout); nothing here asserts on timings — figures are measured
//! and reported, never judged; requests go only to loopback addresses unless the caller
//! explicitly allows otherwise.

pub mod client;
pub mod cpu;
pub mod hello;
pub mod latency;
pub mod noisy;
pub mod options;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod setup;

use std::sync::Arc;

pub use options::LoadOptions;
pub use report::Report;
pub use scenario::Scenario;

/// Why a load run could not be carried out (errors of single requests during the run are
/// counted in the [`Report`] instead).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Client(#[from] client::ClientError),
    #[error("preparing the scenario failed: {0}")]
    Setup(#[from] setup::SetupError),
    #[error("invalid options: {0}")]
    Options(String),
}

/// Prepares `options.scenario` against `options.url` and runs it; the whole load test in one
/// call.
pub async fn execute(options: &LoadOptions) -> Result<Report, LoadError> {
    let (admin, prepared) = prepare(options).await?;
    let target = match setup::issue_secret(&admin, options.auth).await? {
        Some(secret) => {
            let target = client::Target::resolve(
                &options.url,
                options.protocol(),
                &secret,
                options.allow_non_loopback,
            )
            .await?;
            setup::check_as(&target, options.scenario, &prepared.workload).await?;
            Arc::new(target)
        }
        None => Arc::new(admin),
    };
    let outcome = runner::run(
        Arc::clone(&target),
        Arc::new(prepared.workload),
        &runner::RunConfig {
            connections: options.connections,
            streams: options.streams,
            warmup: options.warmup(),
            duration: options.duration(),
            request_timeout: options.request_timeout(),
            seed: options.seed,
            server_pid: options.server_pid,
        },
    )
    .await?;
    Ok(Report::new(options, outcome, prepared.seeding))
}

/// Only prepares `options.scenario` (creating and seeding what it reads): `--seed-only`.
pub async fn seed(options: &LoadOptions) -> Result<setup::Seeding, LoadError> {
    Ok(prepare(options).await?.1.seeding)
}

async fn prepare(options: &LoadOptions) -> Result<(client::Target, setup::Prepared), LoadError> {
    options.validate().map_err(LoadError::Options)?;
    let admin = client::Target::resolve(
        &options.url,
        options.protocol(),
        &options.secret,
        options.allow_non_loopback,
    )
    .await?;
    let setup = setup::SetupOptions {
        scenario: options.scenario,
        docs: options.docs,
        seed_batch: options.seed_batch,
        progress: true,
    };
    let prepared = setup::prepare_with(&admin, &setup).await?;
    Ok((admin, prepared))
}
