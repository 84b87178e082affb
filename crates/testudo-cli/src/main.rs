//! The `testudo` binary: command-line parsing and exit codes. Each command lives in its own
//! module (`serve.rs`, `keys.rs`, `backup.rs`); this file only wires them.
//!
//! Exit codes: 0 success, 1 failure, 2 a refused configuration or a usage error (clap's own
//! convention for usage errors).
//!
//! **Invariants:** nothing secret is ever printed except a freshly generated root secret,
//! exactly once (see `root_secret.rs`); stdout carries only machine-readable lines and that
//! banner — logs go to stderr.

mod audit;
mod backup;
mod keys;
mod logging;
mod root_secret;
mod serve;
mod store;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

// No `Debug` on the argument types: they may hold the root secret.
#[derive(Parser)]
#[command(
    name = "testudo",
    version,
    about = "A document database that speaks Fauna's FQL v10 wire protocol."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the database server.
    Serve(serve::ServeArgs),
    /// Manage the keys of encryption at rest (generate, rotate, verify).
    Keys(keys::KeysArgs),
    /// Take, list, verify and prune backups of a stopped data directory.
    Backup(backup::BackupArgs),
    /// Restore a backup into a new, empty data directory.
    Restore(backup::RestoreArgs),
    /// Verify, tail and export the audit log.
    Audit(audit::AuditArgs),
}

/// A failure that ends the program, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The configuration is refused on purpose (exit code 2).
    #[error("{0}")]
    Refused(String),
    /// Anything else that went wrong (exit code 1).
    #[error("{0}")]
    Failed(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Keys(args) => keys::run(args),
        Command::Backup(args) => backup::run(args),
        Command::Restore(args) => backup::restore(args),
        Command::Audit(args) => audit::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("testudo: {err}");
            match err {
                CliError::Refused(_) => ExitCode::from(2),
                CliError::Failed(_) => ExitCode::FAILURE,
            }
        }
    }
}
