//! FQL `Time` (an instant with nanosecond precision, UTC) and `Date` (a calendar day).
//!
//! Text forms follow Fauna's core: output is `java.time.Instant.toString()` (UTC, `Z`, a
//! fraction of 0, 3, 6 or 9 digits), input accepts an ISO-8601 date-time with an offset.

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
    pub fn from_micros(micros: i64) -> Time {
        Time { secs: micros.div_euclid(1_000_000), nanos: (micros.rem_euclid(1_000_000) * 1000) as u32 }
    }

    pub fn secs(self) -> i64 {
        self.secs
    }

    pub fn subsec_nanos(self) -> u32 {
        self.nanos
    }
}

impl Date {
    pub fn from_days(days: i64) -> Date {
        Date { days }
    }

    pub fn days(self) -> i64 {
        self.days
    }
}
