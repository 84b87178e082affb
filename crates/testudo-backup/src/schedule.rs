//! The schedule runner: a thread that takes a backup every `every` into a directory, prunes
//! it to the newest `keep`, and records how the last run went for metrics and queries.
//!
//! The first run is due `every` after the newest complete backup already in the directory
//! (immediately if there is none or it is older), so a restarted server neither skips a
//! backup nor takes one on every restart. A failed run is retried at the next period.
//!
//! **Invariants:** at most one backup runs at a time; a failure is recorded and logged, never
//! a panic or a stopped schedule; [`BackupScheduler::stop`] (and drop) cancels a running
//! backup at its next key (its partial file is removed) and joins the thread, so it never
//! hangs on a long backup.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use testudo_storage::Kv;
use testudo_storage_redb::keys::MasterKey;

use crate::retention::newest_backup_ms;
use crate::write::{CreatedBackup, SnapshotOptions, create_backup};
use crate::{BackupError, prune};

/// What the runner does.
#[derive(Clone)]
pub struct ScheduleConfig {
    pub dir: PathBuf,
    pub every: Duration,
    /// Complete backups kept after each run (at least 1).
    pub keep: usize,
    /// Key prefixes to back up (all keys when empty).
    pub prefixes: Vec<Vec<u8>>,
    /// Encrypts every backup under this master key.
    pub master: Option<Arc<MasterKey>>,
    /// Called after every run with its result (the audit log), not for a cancelled run.
    pub on_run: Option<RunHook>,
    /// Paces the reading (see [`SnapshotOptions::duty`]).
    pub duty: Option<f64>,
}

/// What a schedule calls after each run.
pub type RunHook = Arc<dyn Fn(&Result<CreatedBackup, BackupError>) + Send + Sync>;

/// How the schedule is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupStatus {
    /// A backup is being taken now.
    pub running: bool,
    pub runs: u64,
    pub failures: u64,
    pub last_success: Option<SystemTime>,
    pub last_backup: Option<PathBuf>,
    pub last_snapshot_ts: Option<u64>,
    pub last_bytes: Option<u64>,
    pub last_failure: Option<SystemTime>,
    pub last_error: Option<String>,
    pub next_run: Option<SystemTime>,
}

impl BackupStatus {
    /// How old the newest successful backup is (`None` if there is none yet).
    pub fn age(&self) -> Option<Duration> {
        self.last_success
            .and_then(|at| SystemTime::now().duration_since(at).ok())
    }
}

struct State {
    status: BackupStatus,
    stop: bool,
    run_now: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    cancel: AtomicBool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running schedule; stops on drop.
pub struct BackupScheduler {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl BackupScheduler {
    /// Starts the runner on its own thread.
    pub fn start(kv: Arc<dyn Kv>, config: ScheduleConfig) -> Result<BackupScheduler, BackupError> {
        if config.keep == 0 || config.every.is_zero() {
            return Err(BackupError::Invalid(
                "a backup schedule needs every > 0 and keep >= 1".into(),
            ));
        }
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| BackupError::io(config.dir.display(), e))?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                status: BackupStatus::default(),
                stop: false,
                run_now: false,
            }),
            wake: Condvar::new(),
            cancel: AtomicBool::new(false),
        });
        let thread = std::thread::Builder::new()
            .name("testudo-backup".into())
            .spawn({
                let shared = shared.clone();
                move || run(&shared, kv.as_ref(), &config)
            })
            .map_err(|e| BackupError::Io(format!("cannot start the backup thread: {e}")))?;
        Ok(BackupScheduler {
            shared,
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> BackupStatus {
        self.shared.lock().status.clone()
    }

    /// Takes a backup now (after the running one, if any).
    pub fn run_now(&self) {
        self.shared.lock().run_now = true;
        self.shared.wake.notify_all();
    }

    /// Stops the runner, cancelling a backup in progress, and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.lock().stop = true;
        self.shared.cancel.store(true, Ordering::Relaxed);
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the backup thread panicked");
        }
    }
}

impl Drop for BackupScheduler {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Parses a schedule period such as `90s`, `30m`, `6h` or `1d` (a positive whole number and
/// one unit); `None` for anything else.
pub fn parse_period(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(seconds).map(Duration::from_secs)
}

/// When the first run is due: `every` after the newest backup already there.
fn first_due(config: &ScheduleConfig) -> Instant {
    let now = Instant::now();
    let newest = newest_backup_ms(&config.dir).map(|ms| UNIX_EPOCH + Duration::from_millis(ms));
    match newest.and_then(|at| SystemTime::now().duration_since(at).ok()) {
        Some(age) if age < config.every => now + (config.every - age),
        _ => now,
    }
}

fn run(shared: &Shared, kv: &dyn Kv, config: &ScheduleConfig) {
    let mut due = first_due(config);
    loop {
        {
            let mut state = shared.lock();
            loop {
                if state.stop {
                    return;
                }
                let now = Instant::now();
                if state.run_now || now >= due {
                    state.run_now = false;
                    break;
                }
                state.status.next_run = Some(SystemTime::now() + (due - now));
                state = shared
                    .wake
                    .wait_timeout(state, due - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            state.status.running = true;
        }
        let result = once(kv, config, &shared.cancel);
        due = Instant::now() + config.every;
        let mut state = shared.lock();
        let status = &mut state.status;
        status.running = false;
        status.runs += 1;
        match result {
            Ok((path, ts, bytes)) => {
                tracing::info!(path = %path.display(), snapshot_ts = ts, bytes, "backup taken");
                status.last_success = Some(SystemTime::now());
                status.last_backup = Some(path);
                status.last_snapshot_ts = Some(ts);
                status.last_bytes = Some(bytes);
            }
            Err(BackupError::Cancelled) => return,
            Err(error) => {
                tracing::error!(%error, dir = %config.dir.display(), "scheduled backup failed");
                status.failures += 1;
                status.last_failure = Some(SystemTime::now());
                status.last_error = Some(error.to_string());
            }
        }
    }
}

fn once(
    kv: &dyn Kv,
    config: &ScheduleConfig,
    cancel: &AtomicBool,
) -> Result<(PathBuf, u64, u64), BackupError> {
    let options = SnapshotOptions {
        prefixes: config.prefixes.clone(),
        master: config.master.as_deref(),
        cancel: Some(cancel),
        duty: config.duty,
        kept: false,
    };
    let created = create_backup(kv, &config.dir, &options, &crate::no_progress);
    if let Some(hook) = &config.on_run
        && !matches!(created, Err(BackupError::Cancelled))
    {
        hook(&created);
    }
    let created = created?;
    prune(&config.dir, config.keep)?;
    Ok((created.path, created.manifest.snapshot_ts, created.bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_take_one_whole_number_and_one_unit() {
        assert_eq!(parse_period("6h"), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_period(" 90s "), Some(Duration::from_secs(90)));
        assert_eq!(parse_period("1d"), Some(Duration::from_secs(86_400)));
        for bad in [
            "",
            "h",
            "0h",
            "6",
            "6 h",
            "1.5h",
            "6hours",
            "-1h",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_period(bad), None, "{bad}");
        }
    }
}
