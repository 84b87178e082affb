//! Wall-clock time as RFC 3339 UTC text with microseconds (`2026-11-27T17:44:34.123456Z`),
//! and the `--since` forms the tools accept.
//!
//! **Invariants:** formatting never panics for any `u64` of microseconds up to year 9999
//! (later instants are clamped); parsing rejects anything it does not fully understand.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, now (0 if the clock is before 1970).
pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The last microsecond of 9999-12-31.
const MAX_US: u64 = 253_402_300_799_999_999;

pub fn format_us(us: u64) -> String {
    let us = us.min(MAX_US);
    let secs = us / 1_000_000;
    let frac = us % 1_000_000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// [`format_us`] for a stream of mostly increasing instants: the text of the current second
/// is kept, so most calls only rewrite the microseconds.
#[derive(Debug, Default)]
pub struct TimeText {
    second: Option<u64>,
    text: String,
}

impl TimeText {
    pub fn at(&mut self, us: u64) -> &str {
        let us = us.min(MAX_US);
        let second = us / 1_000_000;
        if self.second != Some(second) {
            self.text = format_us(second * 1_000_000);
            self.second = Some(second);
        }
        // "….SS.ffffffZ": the last seven bytes are the fraction and the `Z`; written by hand
        // (`core::fmt` showed in the writer thread's profile).
        let keep = self.text.len().saturating_sub(7);
        self.text.truncate(keep);
        let mut fraction = us % 1_000_000;
        let mut digits = [b'0'; 7];
        digits[6] = b'Z';
        for digit in digits[..6].iter_mut().rev() {
            *digit = b'0' + (fraction % 10) as u8;
            fraction /= 10;
        }
        self.text.extend(digits.iter().map(|&b| char::from(b)));
        &self.text
    }
}

/// Howard Hinnant's days-to-civil algorithm, for days since 1970-01-01 (non-negative).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y % 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).checked_sub(719_468)
}

/// Parses `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, into microseconds.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let (y, m, d) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1970 {
        return None;
    }
    let days = days_from_civil(y, m, d)?;
    let mut us = days.checked_mul(86_400_000_000)?;
    if let Some(time) = time {
        let time = time.strip_suffix('Z')?;
        let (hms, frac) = match time.split_once('.') {
            Some((hms, frac)) => (hms, Some(frac)),
            None => (time, None),
        };
        let mut parts = hms.split(':');
        let (h, mi, s) = (
            num(parts.next()?)?,
            num(parts.next()?)?,
            num(parts.next()?)?,
        );
        if parts.next().is_some() || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        us += (h * 3600 + mi * 60 + s) * 1_000_000;
        if let Some(frac) = frac {
            if frac.is_empty() || frac.len() > 9 || num(frac).is_none() {
                return None;
            }
            let mut digits: String = frac.chars().take(6).collect();
            while digits.len() < 6 {
                digits.push('0');
            }
            us += num(&digits)?;
        }
    }
    Some(us)
}

/// `--since`: an RFC 3339 instant or date, or a duration back from now (`90s`, `15m`, `2h`,
/// `7d`).
pub fn parse_since(text: &str, now_us: u64) -> Option<u64> {
    if let Some(us) = parse_rfc3339(text) {
        return Some(us);
    }
    let unit = text.chars().last()?;
    let amount: u64 = text.get(..text.len() - unit.len_utf8())?.parse().ok()?;
    let secs = match unit {
        's' => amount,
        'm' => amount.checked_mul(60)?,
        'h' => amount.checked_mul(3600)?,
        'd' => amount.checked_mul(86_400)?,
        _ => return None,
    };
    let back = Duration::from_secs(secs).as_micros();
    Some(now_us.saturating_sub(u64::try_from(back).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_round_trip_through_text() {
        for us in [0, 1, 1_798_393_474_123_456, 951_782_400_000_000, MAX_US] {
            let text = format_us(us);
            assert_eq!(parse_rfc3339(&text), Some(us), "{text}");
        }
        assert_eq!(
            format_us(951_782_400_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }

    #[test]
    fn the_cached_text_equals_the_plain_one() {
        let mut cache = TimeText::default();
        for us in [
            5,
            999_999,
            1_000_000,
            1_798_393_474_123_456,
            1_798_393_474_000_001,
            7,
        ] {
            assert_eq!(cache.at(us), format_us(us));
        }
    }

    #[test]
    fn since_accepts_dates_and_durations_and_rejects_the_rest() {
        assert_eq!(parse_rfc3339("1970-01-02"), Some(86_400_000_000));
        assert_eq!(parse_since("2m", 200_000_000), Some(80_000_000));
        assert_eq!(parse_since("1d", 5), Some(0));
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-01-01T10:00:00",
            "5w",
            "-5m",
            "m",
        ] {
            assert_eq!(parse_since(bad, 1_000_000), None, "{bad}");
        }
    }
}
