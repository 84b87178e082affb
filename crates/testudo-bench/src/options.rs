//! The command line of `testudo-load` (also the input of [`crate::execute`]).
//!
//! **Invariants:** every duration is finite and every count positive once [`LoadOptions::
//! validate`] passed; the defaults are the ones `scripts/bench` relies on.

use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::client::Protocol;
use crate::scenario::{Scenario, SecretKind};

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

    /// Documents seeded for `point-read` and `index-lookup` (requests pick among them at
    /// random) and for `order-index` / `order-scan` (which sort them).
    #[arg(long, default_value_t = 10_000)]
    pub docs: usize,

    /// Documents created per seeding query by the scenarios that seed with
    /// `Set.sequence(a, b).forEach(...)` (`index-lookup`, `order-*`): one transaction each.
    #[arg(long, default_value_t = 2_000)]
    pub seed_batch: usize,

    /// Only prepare the scenario (create and seed what it reads, resuming where an earlier,
    /// interrupted seeding stopped), print what seeding did, and exit without load.
    #[arg(long)]
    pub seed_only: bool,

    /// The secret sent as `Authorization: Bearer <secret>`: every setup query uses it, and so
    /// do the measured requests unless --auth says otherwise.
    #[arg(long, default_value = "secret")]
    pub secret: String,

    /// The kind of secret the measured requests carry: `--secret` itself, or a key or a token
    /// that setup creates with it.
    #[arg(long, value_enum, default_value_t = SecretKind::Root)]
    pub auth: SecretKind,

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

/// The largest seeding transaction: far below the engine's limits, and a few seconds of work.
pub const MAX_SEED_BATCH: usize = 10_000;

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
        if self.scenario.needs_docs() && self.docs == 0 {
            return Err(format!(
                "--docs must be at least 1 for {}",
                self.scenario.name()
            ));
        }
        if self.seed_batch == 0 || self.seed_batch > MAX_SEED_BATCH {
            return Err(format!(
                "--seed-batch must be between 1 and {MAX_SEED_BATCH}"
            ));
        }
        if self.scenario == Scenario::Hello && self.auth != SecretKind::Root {
            return Err(
                "hello-server has no keys or tokens: --auth needs a Testudo scenario".to_owned(),
            );
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
            ("index-lookup", Scenario::IndexLookup),
            ("order-index", Scenario::OrderIndex),
            ("order-scan", Scenario::OrderScan),
            ("one-plus-one", Scenario::OnePlusOne),
            ("login", Scenario::Login),
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
    fn the_measured_requests_use_the_setup_secret_unless_told_otherwise() {
        assert_eq!(
            parse(&["--scenario", "one-plus-one"]).auth,
            SecretKind::Root
        );
        let options = parse(&["--scenario", "one-plus-one", "--auth", "token"]);
        assert_eq!(options.auth, SecretKind::Token);
        assert_eq!(options.validate(), Ok(()));
        let hello = parse(&["--scenario", "hello", "--auth", "key"]);
        assert!(hello.validate().unwrap_err().contains("--auth"));
    }

    #[test]
    fn scenarios_that_read_seeded_documents_need_at_least_one() {
        for scenario in ["point-read", "index-lookup", "order-index", "order-scan"] {
            let options = parse(&["--scenario", scenario, "--docs", "0"]);
            assert!(
                options.validate().unwrap_err().contains("--docs"),
                "{scenario}"
            );
        }
        assert_eq!(
            parse(&["--scenario", "login", "--docs", "0"]).validate(),
            Ok(())
        );
    }

    #[test]
    fn seeding_batches_are_bounded() {
        for batch in ["0", "10001"] {
            let options = parse(&["--scenario", "index-lookup", "--seed-batch", batch]);
            assert!(options.validate().unwrap_err().contains("--seed-batch"));
        }
    }

    #[test]
    fn zero_connections_are_refused() {
        let options = parse(&["--scenario", "hello", "--connections", "0"]);
        assert!(options.validate().is_err());
    }
}
