//! FQL `Time` (an instant with nanosecond precision, UTC) and `Date` (a calendar day).
//!
//! Text forms follow Fauna's core, which uses `java.time`: output is `Instant.toString()` (UTC,
//! `Z`, a fraction of 0, 3, 6 or 9 digits); input accepts an ISO-8601 local date-time followed
//! by an offset, with the exact leniencies of the core's formatter (see [`Time::parse`]).
//! Calendar arithmetic is our own (proleptic Gregorian, days-from-civil and back), so no clock
//! or calendar crate is involved.
//!
//! **Invariants:** a [`Time`] built by any constructor here lies in Java `Instant`'s range
//! (years -1,000,000,000 ..= 1,000,000,000); every arithmetic operation is overflow-checked and
//! reports failure as a value, never as a panic.

use std::cmp::Ordering;
use std::fmt;

mod parse;

const NANOS_PER_SEC: i64 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;

/// The first second of year -1,000,000,000 (Java `Instant.MIN`).
const INSTANT_MIN_SECS: i64 = -31_557_014_167_219_200;
/// The last second of year 1,000,000,000 (Java `Instant.MAX`).
const INSTANT_MAX_SECS: i64 = 31_556_889_864_403_199;

/// Years a `Date` (Java `LocalDate`) and FQL time arithmetic may reach.
const YEAR_MIN: i64 = -999_999_999;
const YEAR_MAX: i64 = 999_999_999;

/// Days since 1970-01-01 of a proleptic Gregorian date. `month` is 1..=12, `day` 1..=31;
/// exact for any year whose day count fits in `i64`.
const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01: `(year, month, day)`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Saturating keeps absurd day counts (only reachable through `Date::from_days`) panic-free.
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn month_length(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

const DATE_MIN_DAYS: i64 = days_from_civil(YEAR_MIN, 1, 1);
const DATE_MAX_DAYS: i64 = days_from_civil(YEAR_MAX, 12, 31);

/// 1 = Monday ... 7 = Sunday, as `java.time.DayOfWeek`.
fn day_of_week(days: i64) -> u32 {
    // 1970-01-01 was a Thursday.
    (days.saturating_add(3).rem_euclid(7) + 1) as u32
}

fn day_of_year(days: i64) -> u32 {
    // From the civil fields rather than by subtraction, which could overflow for the absurd
    // day counts `Date::from_days` admits.
    const BEFORE_MONTH: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let (year, month, day) = civil_from_days(days);
    let before = BEFORE_MONTH
        .get((month as usize).wrapping_sub(1))
        .copied()
        .unwrap_or(0);
    before + day + u32::from(month > 2 && is_leap(year))
}

/// A unit of FQL time arithmetic (`Time.add`, `difference`, `Time.epoch`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    Nanosecond,
    Microsecond,
    Millisecond,
    Second,
    Minute,
    Hour,
    HalfDay,
    Day,
}

impl TimeUnit {
    /// Parses a unit name as FQL accepts it: singular or plural, lowercase, surrounding
    /// whitespace and control characters ignored (Java `String.trim`).
    pub fn parse(s: &str) -> Option<TimeUnit> {
        Some(match s.trim_matches(|c: char| c <= ' ') {
            "nanosecond" | "nanoseconds" => TimeUnit::Nanosecond,
            "microsecond" | "microseconds" => TimeUnit::Microsecond,
            "millisecond" | "milliseconds" => TimeUnit::Millisecond,
            "second" | "seconds" => TimeUnit::Second,
            "minute" | "minutes" => TimeUnit::Minute,
            "hour" | "hours" => TimeUnit::Hour,
            "half day" | "half days" => TimeUnit::HalfDay,
            "day" | "days" => TimeUnit::Day,
            _ => return None,
        })
    }

    /// The length of one unit in nanoseconds.
    pub fn nanos(self) -> i64 {
        match self {
            TimeUnit::Nanosecond => 1,
            TimeUnit::Microsecond => 1_000,
            TimeUnit::Millisecond => 1_000_000,
            TimeUnit::Second => NANOS_PER_SEC,
            TimeUnit::Minute => 60 * NANOS_PER_SEC,
            TimeUnit::Hour => 3_600 * NANOS_PER_SEC,
            TimeUnit::HalfDay => 43_200 * NANOS_PER_SEC,
            TimeUnit::Day => SECS_PER_DAY * NANOS_PER_SEC,
        }
    }

    /// Whether `Date` arithmetic accepts the unit (only days do).
    pub fn is_date_based(self) -> bool {
        self == TimeUnit::Day
    }
}

/// Why FQL `Time` arithmetic failed: Fauna reports these as two different errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimeRangeError {
    #[error("the result is before the minimum time")]
    BeforeMin,
    #[error("the result is after the maximum time")]
    AfterMax,
}

/// An instant, nanoseconds since the Unix epoch, in Java `Instant`'s range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    secs: i64,
    nanos: u32,
}

/// A calendar date, days since 1970-01-01 (proleptic Gregorian).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    days: i64,
}

impl Time {
    /// The Unix epoch, `1970-01-01T00:00:00Z`.
    pub const EPOCH: Time = Time { secs: 0, nanos: 0 };
    /// Java `Instant.MIN`: `-1000000000-01-01T00:00:00Z`.
    pub const MIN: Time = Time {
        secs: INSTANT_MIN_SECS,
        nanos: 0,
    };
    /// Java `Instant.MAX`: `+1000000000-12-31T23:59:59.999999999Z`.
    pub const MAX: Time = Time {
        secs: INSTANT_MAX_SECS,
        nanos: 999_999_999,
    };
    /// The earliest result FQL time arithmetic allows: `-999999999-01-01T00:00:00Z`.
    pub const FQL_MIN: Time = Time {
        secs: DATE_MIN_DAYS * SECS_PER_DAY,
        nanos: 0,
    };
    /// The latest result FQL time arithmetic allows: `+999999999-12-31T23:59:59.999999999Z`.
    pub const FQL_MAX: Time = Time {
        secs: DATE_MAX_DAYS * SECS_PER_DAY + SECS_PER_DAY - 1,
        nanos: 999_999_999,
    };

    /// A time from seconds and a nanosecond adjustment in `0..1_000_000_000`, if in range.
    pub fn new(secs: i64, nanos: u32) -> Option<Time> {
        let t = Time { secs, nanos };
        (i64::from(nanos) < NANOS_PER_SEC && (Time::MIN..=Time::MAX).contains(&t)).then_some(t)
    }

    /// Always in range: `i64` microseconds span less than 300,000 years.
    pub fn from_micros(micros: i64) -> Time {
        Time {
            secs: micros.div_euclid(1_000_000),
            nanos: (micros.rem_euclid(1_000_000) * 1000) as u32,
        }
    }

    pub fn from_nanos(nanos: i128) -> Option<Time> {
        let ns = i128::from(NANOS_PER_SEC);
        let secs = i64::try_from(nanos.div_euclid(ns)).ok()?;
        Time::new(secs, nanos.rem_euclid(ns) as u32)
    }

    pub fn to_nanos(self) -> i128 {
        i128::from(self.secs) * i128::from(NANOS_PER_SEC) + i128::from(self.nanos)
    }

    /// Microseconds since the epoch, rounded down (as Fauna's `toMicros`). Does not fit in
    /// `i64` for the farthest times; callers narrow with a check.
    pub fn to_micros(self) -> i128 {
        i128::from(self.secs) * 1_000_000 + i128::from(self.nanos / 1000)
    }

    /// Milliseconds since the epoch, rounded down (as `Instant.toEpochMilli`).
    pub fn to_millis(self) -> i128 {
        i128::from(self.secs) * 1000 + i128::from(self.nanos / 1_000_000)
    }

    /// Whole seconds since the epoch, rounded down.
    pub fn secs(self) -> i64 {
        self.secs
    }

    pub fn subsec_nanos(self) -> u32 {
        self.nanos
    }

    pub fn checked_add_nanos(self, nanos: i128) -> Option<Time> {
        Time::from_nanos(self.to_nanos().checked_add(nanos)?)
    }

    /// `Instant.plus(n, unit)`: `None` outside `Instant`'s range.
    pub fn checked_add(self, n: i64, unit: TimeUnit) -> Option<Time> {
        self.checked_add_nanos(i128::from(n) * i128::from(unit.nanos()))
    }

    /// FQL `t.add(n, unit)`: the result must stay within [`Time::FQL_MIN`]..=[`Time::FQL_MAX`].
    /// Leaving `Instant`'s range counts as [`TimeRangeError::AfterMax`] whatever the sign, as
    /// in Fauna.
    pub fn add(self, n: i64, unit: TimeUnit) -> Result<Time, TimeRangeError> {
        fql_range(self.checked_add(n, unit).ok_or(TimeRangeError::AfterMax)?)
    }

    /// FQL `t.subtract(n, unit)`; leaving `Instant`'s range is [`TimeRangeError::BeforeMin`].
    pub fn subtract(self, n: i64, unit: TimeUnit) -> Result<Time, TimeRangeError> {
        let t = self.checked_add_nanos(-(i128::from(n) * i128::from(unit.nanos())));
        fql_range(t.ok_or(TimeRangeError::BeforeMin)?)
    }

    /// FQL `t.add(x, unit)` with a `Double` amount: whole units exactly, the fraction of a
    /// unit in nanoseconds rounded toward zero; NaN and infinities fail.
    pub fn add_f64(self, amount: f64, unit: TimeUnit) -> Result<Time, TimeRangeError> {
        fql_range(
            self.shift_f64(amount, unit, true)
                .ok_or(TimeRangeError::AfterMax)?,
        )
    }

    /// FQL `t.subtract(x, unit)` with a `Double` amount.
    pub fn subtract_f64(self, amount: f64, unit: TimeUnit) -> Result<Time, TimeRangeError> {
        fql_range(
            self.shift_f64(amount, unit, false)
                .ok_or(TimeRangeError::BeforeMin)?,
        )
    }

    /// Fauna's `Timestamp.plus/minus(Double)`: a negative amount flips the direction, then the
    /// whole part (as its shortest decimal text, which is what the core's `BigDecimal` sees)
    /// times the unit is added exactly, plus the truncated nanoseconds of the fraction.
    fn shift_f64(self, amount: f64, unit: TimeUnit, forward: bool) -> Option<Time> {
        if amount < 0.0 {
            return self.shift_f64(-amount, unit, !forward);
        }
        if !amount.is_finite() {
            return None;
        }
        let whole = amount.floor();
        let fraction_nanos = unit.nanos() as f64 * (amount - whole);
        let whole_nanos =
            crate::num::integral_decimal_value(whole)?.checked_mul(i128::from(unit.nanos()))?;
        let delta = whole_nanos.checked_add(fraction_nanos as i128)?;
        self.checked_add_nanos(if forward { delta } else { -delta })
    }

    /// FQL `Time.epoch(n, unit)`; `None` outside `Instant`'s range.
    pub fn epoch(n: i64, unit: TimeUnit) -> Option<Time> {
        Time::EPOCH.checked_add(n, unit)
    }

    /// FQL `Time.epoch(x, unit)` with a `Double` amount, as the core computes it: the amount
    /// in nanoseconds rounded half up. A non-finite product gives [`Time::MAX`] (the core's
    /// `Timestamp.Max` for infinite durations); a product beyond `i64` nanoseconds fails.
    pub fn epoch_f64(amount: f64, unit: TimeUnit) -> Option<Time> {
        let nanos = unit.nanos() as f64 * amount;
        if !nanos.is_finite() {
            return Some(Time::MAX);
        }
        if nanos > i64::MAX as f64 || nanos < i64::MIN as f64 {
            return None;
        }
        Time::from_nanos(i128::from(crate::num::java_math_round(nanos)))
    }

    /// FQL `end.difference(start, unit)`: whole units from `start` to `self`, truncated toward
    /// zero. `None` when the count does not fit in `i64` (only for nanosecond-like units
    /// across centuries).
    pub fn difference(self, start: Time, unit: TimeUnit) -> Option<i64> {
        let diff = self.to_nanos() - start.to_nanos();
        i64::try_from(diff / i128::from(unit.nanos())).ok()
    }

    /// The UTC calendar date of this instant. For the few instants beyond year ±999,999,999
    /// the date is outside the range [`Date::parse`] accepts.
    pub fn date(self) -> Date {
        Date {
            days: self.secs.div_euclid(SECS_PER_DAY),
        }
    }

    fn second_of_day(self) -> u32 {
        self.secs.rem_euclid(SECS_PER_DAY) as u32
    }

    pub fn year(self) -> i64 {
        self.date().year()
    }

    pub fn month(self) -> u32 {
        self.date().month()
    }

    pub fn day_of_month(self) -> u32 {
        self.date().day_of_month()
    }

    /// 1 = Monday ... 7 = Sunday.
    pub fn day_of_week(self) -> u32 {
        self.date().day_of_week()
    }

    pub fn day_of_year(self) -> u32 {
        self.date().day_of_year()
    }

    pub fn hour(self) -> u32 {
        self.second_of_day() / 3600
    }

    pub fn minute(self) -> u32 {
        self.second_of_day() / 60 % 60
    }

    pub fn second(self) -> u32 {
        self.second_of_day() % 60
    }

    /// The nanosecond within the second (same as [`Time::subsec_nanos`]).
    pub fn nanos(self) -> u32 {
        self.nanos
    }

    /// Parses a time as Fauna's `Time("...")`, `Time.fromString` and the `@time` tag do.
    ///
    /// The grammar is Java's `ISO_LOCAL_DATE_TIME` followed by two optional offsets
    /// (`+HH:MM[:ss]` or `Z`, then `+HHMM` or `+0000`), resolved in `SMART` mode:
    /// - the year has 4 digits, or 5 to 10 digits after a mandatory `+`; a `-` allows 4 to 10
    ///   digits but not `-0000`;
    /// - `T` and `Z` may be lowercase; seconds are optional (`2020-01-01T00:00Z`); the fraction
    ///   has 0 to 9 digits and may be a bare `.`;
    /// - a day past the end of its month (at most 31) is moved back to the month's last day,
    ///   and `24:00` (with zero seconds and fraction) is midnight of the next day;
    /// - an offset is required and must lie within ±18:00; both offsets may appear if equal.
    pub fn parse(s: &str) -> Option<Time> {
        parse::time(s)
    }

    /// Writes `Instant.toString()` into `buf`, returning the used length (at most 40 bytes).
    fn format(self, buf: &mut [u8; 40]) -> usize {
        let mut w = Writer { buf, len: 0 };
        let (year, month, day) = civil_from_days(self.secs.div_euclid(SECS_PER_DAY));
        w.year(year);
        w.byte(b'-');
        w.padded(u64::from(month), 2);
        w.byte(b'-');
        w.padded(u64::from(day), 2);
        w.byte(b'T');
        w.padded(u64::from(self.hour()), 2);
        w.byte(b':');
        w.padded(u64::from(self.minute()), 2);
        w.byte(b':');
        w.padded(u64::from(self.second()), 2);
        if self.nanos != 0 {
            w.byte(b'.');
            if self.nanos.is_multiple_of(1_000_000) {
                w.padded(u64::from(self.nanos / 1_000_000), 3);
            } else if self.nanos.is_multiple_of(1000) {
                w.padded(u64::from(self.nanos / 1000), 6);
            } else {
                w.padded(u64::from(self.nanos), 9);
            }
        }
        w.byte(b'Z');
        w.len
    }

    /// Appends `Instant.toString()` to `out` without allocating.
    pub fn write_iso(self, out: &mut Vec<u8>) {
        let mut buf = [0; 40];
        let len = self.format(&mut buf);
        out.extend_from_slice(&buf[..len]);
    }
}

fn fql_range(t: Time) -> Result<Time, TimeRangeError> {
    if t < Time::FQL_MIN {
        Err(TimeRangeError::BeforeMin)
    } else if t > Time::FQL_MAX {
        Err(TimeRangeError::AfterMax)
    } else {
        Ok(t)
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0; 40];
        let len = self.format(&mut buf);
        // Only ASCII is ever written.
        f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
    }
}

impl Date {
    /// Java `LocalDate.MIN`: `-999999999-01-01`.
    pub const MIN: Date = Date {
        days: DATE_MIN_DAYS,
    };
    /// Java `LocalDate.MAX`: `+999999999-12-31`.
    pub const MAX: Date = Date {
        days: DATE_MAX_DAYS,
    };

    /// The raw constructor for decoded values; does not check the range.
    pub fn from_days(days: i64) -> Date {
        Date { days }
    }

    pub fn days(self) -> i64 {
        self.days
    }

    /// A date from its fields, if it exists and lies within years ±999,999,999.
    pub fn from_ymd(year: i64, month: u32, day: u32) -> Option<Date> {
        ((YEAR_MIN..=YEAR_MAX).contains(&year)
            && (1..=12).contains(&month)
            && day >= 1
            && day <= month_length(year, month))
        .then(|| Date {
            days: days_from_civil(year, month, day),
        })
    }

    /// Parses `YYYY-MM-DD` as Java's `LocalDate.parse` (strict): the year rules of
    /// [`Time::parse`], and the day must exist in its month.
    pub fn parse(s: &str) -> Option<Date> {
        parse::date(s)
    }

    pub fn year(self) -> i64 {
        civil_from_days(self.days).0
    }

    pub fn month(self) -> u32 {
        civil_from_days(self.days).1
    }

    pub fn day_of_month(self) -> u32 {
        civil_from_days(self.days).2
    }

    /// 1 = Monday ... 7 = Sunday.
    pub fn day_of_week(self) -> u32 {
        day_of_week(self.days)
    }

    pub fn day_of_year(self) -> u32 {
        day_of_year(self.days)
    }

    /// `LocalDate.plusDays`: `None` outside years ±999,999,999.
    pub fn add_days(self, n: i64) -> Option<Date> {
        let days = self.days.checked_add(n)?;
        (DATE_MIN_DAYS..=DATE_MAX_DAYS)
            .contains(&days)
            .then_some(Date { days })
    }

    /// Days from `start` to `self` (negative when `start` is later).
    pub fn difference(self, start: Date) -> i64 {
        self.days.saturating_sub(start.days)
    }

    /// Midnight UTC of this date. Dates out of range (only constructible with
    /// [`Date::from_days`]) saturate to [`Time::MIN`] or [`Time::MAX`].
    pub fn at_midnight(self) -> Time {
        match self
            .days
            .checked_mul(SECS_PER_DAY)
            .and_then(|secs| Time::new(secs, 0))
        {
            Some(t) => t,
            None if self.days < 0 => Time::MIN,
            None => Time::MAX,
        }
    }

    fn format(self, buf: &mut [u8; 40]) -> usize {
        let mut w = Writer { buf, len: 0 };
        let (year, month, day) = civil_from_days(self.days);
        w.year(year);
        w.byte(b'-');
        w.padded(u64::from(month), 2);
        w.byte(b'-');
        w.padded(u64::from(day), 2);
        w.len
    }

    /// Appends `LocalDate.toString()` to `out` without allocating.
    pub fn write_iso(self, out: &mut Vec<u8>) {
        let mut buf = [0; 40];
        let len = self.format(&mut buf);
        out.extend_from_slice(&buf[..len]);
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0; 40];
        let len = self.format(&mut buf);
        f.write_str(std::str::from_utf8(&buf[..len]).map_err(|_| fmt::Error)?)
    }
}

/// A fixed buffer for the ISO forms; every write is bounds-checked and silently dropped when
/// full (40 bytes fit the longest form with room to spare).
struct Writer<'a> {
    buf: &'a mut [u8; 40],
    len: usize,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// `n` in decimal, left-padded with zeros to `width` digits.
    fn padded(&mut self, mut n: u64, width: usize) {
        let mut digits = [0u8; 20];
        let mut count = 0;
        while n > 0 || count < width {
            digits[count] = b'0' + (n % 10) as u8;
            n /= 10;
            count += 1;
            if count == digits.len() {
                break;
            }
        }
        for &d in digits[..count].iter().rev() {
            self.byte(d);
        }
    }

    /// `LocalDate.toString()`'s year: four digits at least, `+` above 9999, `-` below zero.
    fn year(&mut self, year: i64) {
        match year.cmp(&0) {
            Ordering::Less => self.byte(b'-'),
            _ if year > 9999 => self.byte(b'+'),
            _ => {}
        }
        self.padded(year.unsigned_abs(), 4);
    }
}

#[cfg(test)]
mod tests;
