//! The command line of `testudo-load` (also the input of [`crate::execute`]).
//!
//! **Invariants:** every duration is finite and every count positive once [`LoadOptions::
//! validate`] passed; the defaults are the ones `scripts/bench` relies on.

use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::client::Protocol;
use crate::scenario::Scenario;

/// Closed-loop load generator for Testudo's Fauna protocol (and the hello-server baseline).
#[derive(Parser, Debug, Clone)]
#[command(name = "testudo-load")]
pub struct LoadOptions {
    /// Base URL of the server (`http://host:port`).
    #[arg(long, default_value = "http://127.0.0.1:8443")]
    pub url: String,

    /// What every request does.
    #[arg(long, value_enum)]
    pub scenario: Scenario,

    /// Keep-alive connections to open.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,

    /// Speak h2c (HTTP/2 with prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    pub h2: bool,

    /// Concurrent streams per connection (each one request at a time); needs --h2 when > 1.
    #[arg(long, default_value_t = 1)]
    pub streams: usize,

    /// Seconds of load before measuring starts (not counted).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,

    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Worker threads of the load generator's runtime. Keep it small: the generator shares
    /// the machine's cores with the server it measures.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Documents seeded for `point-read` (reads pick among them at random).
    #[arg(long, default_value_t = 10_000)]
    pub docs: usize,

    /// The secret sent as `Authorization: Bearer <secret>`.
    #[arg(long, default_value = "secret")]
    pub secret: String,

    /// Seed of the random id choice (the same seed reads the same sequence of ids).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Seconds after which one request counts as failed (and its connection is replaced).
    #[arg(long, default_value_t = 10.0)]
    pub request_timeout: f64,

    /// The server's process id: its CPU time during the measured window is reported (Linux).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Output: a human summary, or one CSV row (see --csv-header).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// With --format csv, print the header line first.
    #[arg(long)]
    pub csv_header: bool,

    /// Allow a target that is not a loopback address (a load test is traffic: aim it only at
    /// machines that are yours).
    #[arg(long)]
    pub allow_non_loopback: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Csv,
}

/// Durations are accepted up to a day: enough for any soak, and far from `Duration`'s limits.
const MAX_SECONDS: f64 = 86_400.0;

impl LoadOptions {
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".to_owned());
        }
        if self.streams == 0 {
            return Err("--streams must be at least 1".to_owned());
        }
        if self.streams > 1 && !self.h2 {
            return Err(
                "--streams above 1 needs --h2 (HTTP/1.1 has one request at a time)".to_owned(),
            );
        }
        if self.threads == 0 {
            return Err("--threads must be at least 1".to_owned());
        }
        if self.scenario == Scenario::PointRead && self.docs == 0 {
            return Err("--docs must be at least 1 for point-read".to_owned());
        }
        for (name, value, min) in [
            ("--warmup", self.warmup, 0.0),
            ("--duration", self.duration, 0.001),
            ("--request-timeout", self.request_timeout, 0.001),
        ] {
            if !(value.is_finite() && value >= min && value <= MAX_SECONDS) {
                return Err(format!(
                    "{name} must be between {min} and {MAX_SECONDS} seconds"
                ));
            }
        }
        Ok(())
    }

    pub fn protocol(&self) -> Protocol {
        if self.h2 {
            Protocol::Http2
        } else {
            Protocol::Http1
        }
    }

    pub fn warmup(&self) -> Duration {
        seconds(self.warmup)
    }

    pub fn duration(&self) -> Duration {
        seconds(self.duration)
    }

    pub fn request_timeout(&self) -> Duration {
        seconds(self.request_timeout)
    }
}

fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value.clamp(0.0, MAX_SECONDS)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> LoadOptions {
        let mut argv = vec!["testudo-load"];
        argv.extend_from_slice(args);
        LoadOptions::try_parse_from(argv).unwrap()
    }

    #[test]
    fn defaults_are_one_client_thread_sixteen_http1_connections_ten_seconds() {
        let options = parse(&["--scenario", "point-read"]);
        assert_eq!(options.validate(), Ok(()));
        assert_eq!(options.threads, 1);
        assert_eq!(options.connections, 16);
        assert_eq!(options.protocol(), Protocol::Http1);
        assert_eq!(options.duration(), Duration::from_secs(10));
    }

    #[test]
    fn scenario_names_are_kebab_case() {
        for (name, scenario) in [
            ("point-read", Scenario::PointRead),
            ("create", Scenario::Create),
            ("scan-100", Scenario::Scan100),
            ("hello", Scenario::Hello),
        ] {
            assert_eq!(parse(&["--scenario", name]).scenario, scenario);
            assert_eq!(scenario.name(), name);
        }
    }

    #[test]
    fn several_streams_per_connection_need_http2() {
        let options = parse(&["--scenario", "hello", "--streams", "4"]);
        assert!(options.validate().unwrap_err().contains("--h2"));
        let options = parse(&["--scenario", "hello", "--streams", "4", "--h2"]);
        assert_eq!(options.validate(), Ok(()));
    }

    #[test]
    fn zero_or_endless_durations_are_refused() {
        for args in [
            "--duration=0",
            "--duration=inf",
            "--warmup=-1",
            "--request-timeout=NaN",
        ] {
            let all = ["--scenario", "hello", args];
            assert!(parse(&all).validate().is_err(), "{args:?}");
        }
    }

    #[test]
    fn zero_connections_are_refused() {
        let options = parse(&["--scenario", "hello", "--connections", "0"]);
        assert!(options.validate().is_err());
    }
}
