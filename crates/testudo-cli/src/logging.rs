//! Log setup: `tracing` events to stderr, as JSON lines or human-readable text.
//!
//! **Invariants:** logs never go to stdout (stdout is for the machine-readable lines);
//! an invalid filter is a startup error, not a silently ignored setting.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

use crate::CliError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// Installs the global subscriber. `level` (`--log-level`) wins over `RUST_LOG`; with
/// neither, the level is `info`.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), CliError> {
    let filter = match level {
        Some(level) => EnvFilter::try_new(level)
            .map_err(|err| CliError::Refused(format!("invalid --log-level '{level}': {err}")))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    installed.map_err(|err| CliError::Failed(format!("could not set up logging: {err}")))
}
