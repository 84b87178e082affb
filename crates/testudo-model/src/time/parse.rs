//! The text grammar of FQL times and dates: Java's ISO formatters as Fauna's core configures
//! them, reproduced byte by byte (see [`super::Time::parse`] for the accepted forms).
//!
//! **Invariant:** a cursor only ever moves forward over bytes it has checked; any input, ASCII
//! or not, fails to match rather than panicking.

use super::{
    DATE_MAX_DAYS, Date, SECS_PER_DAY, Time, YEAR_MAX, YEAR_MIN, days_from_civil, month_length,
};

/// [`Time::parse`].
pub(super) fn time(s: &str) -> Option<Time> {
    let mut p = Cursor::new(s);
    let (year, month, day) = p.local_date()?;
    if !matches!(p.next(), Some(b'T' | b't')) {
        return None;
    }
    let hour = p.two_digits()?;
    p.expect(b':')?;
    let minute = p.two_digits()?;
    let (mut second, mut nanos) = (0, 0);
    if p.peek() == Some(b':') {
        p.pos += 1;
        second = p.two_digits()?;
        if p.peek() == Some(b'.') {
            p.pos += 1;
            nanos = p.fraction();
        }
    }
    let mut offset = p.offset_colon();
    if let Some(second_offset) = p.offset_compact(offset) {
        offset = Some(second_offset);
    }
    if !p.at_end() {
        return None;
    }
    let offset = offset?;

    // SMART resolution of the date: days 29..=31 past the month's end are clamped.
    if !(YEAR_MIN..=YEAR_MAX).contains(&year)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
    {
        return None;
    }
    let day = day.min(month_length(year, month));
    let mut days = days_from_civil(year, month, day);
    if minute > 59 || second > 59 {
        return None;
    }
    let hour = match hour {
        24 if minute == 0 && second == 0 && nanos == 0 => {
            days += 1;
            if days > DATE_MAX_DAYS {
                return None;
            }
            0
        }
        0..=23 => hour,
        _ => return None,
    };
    let local = days * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second);
    Time::new(local - i64::from(offset), nanos)
}

/// [`Date::parse`].
pub(super) fn date(s: &str) -> Option<Date> {
    let mut p = Cursor::new(s);
    let (year, month, day) = p.local_date()?;
    if !p.at_end() {
        return None;
    }
    Date::from_ymd(year, month, day)
}

/// A byte cursor over ASCII-only grammar; any non-ASCII byte simply fails to match.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor {
            b: s.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.pos + ahead).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn at_end(&self) -> bool {
        self.pos == self.b.len()
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    fn digit_at(&self, ahead: usize) -> Option<u32> {
        self.peek_at(ahead)
            .filter(u8::is_ascii_digit)
            .map(|d| u32::from(d - b'0'))
    }

    fn two_digits(&mut self) -> Option<u32> {
        let v = self.digit_at(0)? * 10 + self.digit_at(1)?;
        self.pos += 2;
        Some(v)
    }

    /// `YYYY-MM-DD` with Java's `EXCEEDS_PAD` year sign rules; fields are not validated.
    fn local_date(&mut self) -> Option<(i64, u32, u32)> {
        let sign = match self.peek() {
            Some(c @ (b'+' | b'-')) => {
                self.pos += 1;
                Some(c)
            }
            _ => None,
        };
        let start = self.pos;
        let mut year: i64 = 0;
        while self.pos - start < 10 {
            let Some(d) = self.digit_at(0) else { break };
            year = year * 10 + i64::from(d);
            self.pos += 1;
        }
        let width = self.pos - start;
        let sign_ok = match sign {
            None => width == 4,
            Some(b'+') => width > 4,
            _ => width >= 4 && year != 0,
        };
        if !sign_ok {
            return None;
        }
        if sign == Some(b'-') {
            year = -year;
        }
        self.expect(b'-')?;
        let month = self.two_digits()?;
        self.expect(b'-')?;
        let day = self.two_digits()?;
        Some((year, month, day))
    }

    /// Up to nine fraction digits, scaled to nanoseconds.
    fn fraction(&mut self) -> u32 {
        let mut nanos = 0;
        let mut count = 0;
        while count < 9 {
            let Some(d) = self.digit_at(0) else { break };
            nanos = nanos * 10 + d;
            self.pos += 1;
            count += 1;
        }
        nanos * 10u32.pow(9 - count)
    }

    /// Java's `appendOffset("+HH:MM:ss", "Z")`, as an optional section: on failure the
    /// cursor does not move. Offsets beyond ±18:00 or with out-of-range fields fail the
    /// whole parse in Java (an exception, not a skipped section); here they return `None`
    /// too and leave text behind, which fails the parse all the same.
    fn offset_colon(&mut self) -> Option<i32> {
        if matches!(self.peek(), Some(b'Z' | b'z')) {
            self.pos += 1;
            return Some(0);
        }
        let sign = self.offset_sign()?;
        let hours = self.digit_at(1)? * 10 + self.digit_at(2)?;
        if self.peek_at(3) != Some(b':') {
            return None;
        }
        let minutes = self.digit_at(4)? * 10 + self.digit_at(5)?;
        let mut len = 6;
        let mut seconds = 0;
        if self.peek_at(6) == Some(b':')
            && let (Some(a), Some(b)) = (self.digit_at(7), self.digit_at(8))
        {
            seconds = a * 10 + b;
            len = 9;
        }
        let offset = offset_secs(sign, hours, minutes, seconds)?;
        self.pos += len;
        Some(offset)
    }

    /// Java's `appendOffset("+HHMM", "+0000")` as an optional section. A value that differs
    /// from an offset already parsed is a conflict, which fails the section.
    fn offset_compact(&mut self, earlier: Option<i32>) -> Option<i32> {
        let offset = if self.b.get(self.pos..self.pos + 5) == Some(b"+0000") {
            (0, 5)
        } else {
            let sign = self.offset_sign()?;
            let hours = self.digit_at(1)? * 10 + self.digit_at(2)?;
            let minutes = self.digit_at(3)? * 10 + self.digit_at(4)?;
            (offset_secs(sign, hours, minutes, 0)?, 5)
        };
        if earlier.is_some_and(|e| e != offset.0) {
            return None;
        }
        self.pos += offset.1;
        Some(offset.0)
    }

    fn offset_sign(&self) -> Option<i32> {
        match self.peek()? {
            b'+' => Some(1),
            b'-' => Some(-1),
            _ => None,
        }
    }
}

/// A `ZoneOffset` in seconds: fields in range and the total within ±18:00.
fn offset_secs(sign: i32, hours: u32, minutes: u32, seconds: u32) -> Option<i32> {
    if hours > 23 || minutes > 59 || seconds > 59 {
        return None;
    }
    let total = (hours * 3600 + minutes * 60 + seconds) as i32;
    (total <= 18 * 3600).then_some(sign * total)
}
