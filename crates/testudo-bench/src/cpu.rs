//! CPU time of a process, read from `/proc/<pid>/stat` (Linux), to report how much of the
//! machine the server and the load generator used during the measured window.
//!
//! `utime` and `stime` there count ticks of `USER_HZ`, which Linux fixes at 100 per second
//! for user space on every architecture this project builds for.
//!
//! **Invariants:** reading never fails loudly: a missing or unreadable file (another OS, a
//! process that exited) gives `None`, and the report leaves the columns empty.

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

/// `utime + stime` of a `/proc/<pid>/stat` line. The command name (field 2) may contain spaces
/// and parentheses, so fields are counted from the last `)`.
fn parse_stat(stat: &str) -> Option<Duration> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // After the name: state (3), ppid (4), …, utime (14), stime (15).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime.checked_add(stime)?;
    Some(Duration::from_millis(ticks.checked_mul(1_000 / USER_HZ)?))
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
    fn this_process_has_a_cpu_time_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(process_cpu(None).is_some());
        }
    }
}
