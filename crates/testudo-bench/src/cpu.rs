//! CPU time of a process, read from `/proc/<pid>/stat` (Linux), to report how much of the
//! machine the server and the load generator used during the measured window; and of the
//! server's threads by name (`/proc/<pid>/task/*/stat`), to tell which part of the server a
//! difference between two builds or two configurations lies in (an A/B whose throughput
//! moves by ±15 % from round to round cannot say that, a thread's CPU per request can).
//!
//! `utime` and `stime` there count ticks of `USER_HZ`, which Linux fixes at 100 per second
//! for user space on every architecture this project builds for.
//!
//! **Invariants:** reading never fails loudly: a missing or unreadable file (another OS, a
//! process that exited) gives `None`, and the report leaves the columns empty.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Ticks per second of the `utime`/`stime` fields.
const USER_HZ: u64 = 100;

/// The CPU time (user + system, all threads) `pid` has used so far; `None` for this process.
pub fn process_cpu(pid: Option<u32>) -> Option<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    parse_stat(&stat)
}

/// `utime + stime` of a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<Duration> {
    let (_, user, system) = parse_line(stat)?;
    user.checked_add(system)
}

/// The command name, `utime` and `stime` of a `/proc/<pid>/stat` line. The name (field 2) may
/// contain spaces and parentheses, so fields are counted from the last `)`.
fn parse_line(stat: &str) -> Option<(&str, Duration, Duration)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let (_, name) = head.split_once('(')?;
    let mut fields = rest.split_whitespace();
    // After the name: state (3), ppid (4), …, utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = |n: u64| n.checked_mul(1_000 / USER_HZ).map(Duration::from_millis);
    Some((name, ticks(utime)?, ticks(stime)?))
}

/// One thread's name and CPU time so far, by thread id.
pub type ThreadTimes = HashMap<u32, (String, Duration, Duration)>;

/// The CPU time (user, system) of each thread `pid` has now; `None` when its threads cannot
/// be listed (another OS, a process that exited).
pub fn thread_cpu(pid: u32) -> Option<ThreadTimes> {
    let mut threads = HashMap::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(entry) = entry else { continue };
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        // A thread may end between the listing and the read: it is left out.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((name, user, system)) = parse_line(&stat) {
            threads.insert(tid, (name.to_owned(), user, system));
        }
    }
    Some(threads)
}

/// CPU time one kind of thread used in a window: user and system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Used {
    pub user: Duration,
    pub system: Duration,
}

/// What each kind of thread (threads grouped by name, a trailing number dropped: a pool's
/// `worker-1` and `worker-2` are one kind) used between two readings, the busiest first. A
/// thread that started in between counts from zero; one that ended in between is missing
/// (its time is in the process's total only).
pub fn used_by_name(before: &ThreadTimes, after: &ThreadTimes) -> Vec<(String, Used)> {
    let mut by_name: BTreeMap<&str, Used> = BTreeMap::new();
    for (tid, (name, user, system)) in after {
        let (user0, system0) = before
            .get(tid)
            .map_or((Duration::ZERO, Duration::ZERO), |(_, u, s)| (*u, *s));
        let used = by_name.entry(kind_of(name)).or_default();
        used.user += user.saturating_sub(user0);
        used.system += system.saturating_sub(system0);
    }
    let mut kinds: Vec<(String, Used)> = by_name
        .into_iter()
        .filter(|(_, used)| !(used.user + used.system).is_zero())
        .map(|(name, used)| (name.to_owned(), used))
        .collect();
    kinds.sort_by_key(|(_, used)| std::cmp::Reverse(used.user + used.system));
    kinds
}

/// A thread's name without a trailing number (and the `-` or `#` before it).
fn kind_of(name: &str) -> &str {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if stem.len() == name.len() || stem.is_empty() {
        return name;
    }
    stem.strip_suffix(['-', '#', '_']).unwrap_or(stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utime_and_stime_are_read_after_the_command_name() {
        let line = "4242 (tokio (rt) worker) S 1 4242 4242 0 -1 4194560 2046 0 0 0 \
                    250 75 0 0 20 0 9 0 1234 1000 10 0";
        assert_eq!(parse_stat(line), Some(Duration::from_millis(3_250)));
    }

    #[test]
    fn a_truncated_line_is_not_a_number() {
        assert_eq!(parse_stat("4242 (testudo) S 1 2"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn a_thread_line_gives_its_name_and_both_times() {
        let line = "4243 (audit-writer) S 1 4242 4242 0 -1 4194560 2046 0 0 0 \
                    17 3 0 0 20 0 9 0 1234 1000 10 0";
        assert_eq!(
            parse_line(line),
            Some((
                "audit-writer",
                Duration::from_millis(170),
                Duration::from_millis(30)
            ))
        );
    }

    #[test]
    fn threads_are_grouped_by_name_without_their_number() {
        assert_eq!(kind_of("tokio-rt-worker"), "tokio-rt-worker");
        assert_eq!(kind_of("worker-12"), "worker");
        assert_eq!(kind_of("pool#3"), "pool");
        assert_eq!(kind_of("h2c7"), "h2c");
        assert_eq!(kind_of("42"), "42");
    }

    #[test]
    fn use_is_counted_per_kind_from_zero_for_new_threads_and_busiest_first() {
        let ms = Duration::from_millis;
        let times = |rows: &[(u32, &str, u64, u64)]| -> ThreadTimes {
            rows.iter()
                .map(|&(tid, name, u, s)| (tid, (name.to_owned(), ms(u), ms(s))))
                .collect()
        };
        let before = times(&[
            (1, "main", 100, 10),
            (2, "worker-1", 500, 50),
            (3, "worker-2", 400, 40),
            (4, "gone", 90, 0),
        ]);
        let after = times(&[
            (1, "main", 100, 10),
            (2, "worker-1", 700, 80),
            (3, "worker-2", 450, 45),
            (5, "writer", 20, 30),
        ]);
        assert_eq!(
            used_by_name(&before, &after),
            vec![
                (
                    "worker".to_owned(),
                    Used {
                        user: ms(250),
                        system: ms(35)
                    }
                ),
                (
                    "writer".to_owned(),
                    Used {
                        user: ms(20),
                        system: ms(30)
                    }
                ),
            ]
        );
    }

    #[test]
    fn this_process_has_a_cpu_time_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu(None).is_some());
            let threads = thread_cpu(std::process::id()).unwrap_or_default();
            assert!(!threads.is_empty());
        }
    }
}
