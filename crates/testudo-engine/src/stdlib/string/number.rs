//! `parseInt`, `parseLong`, `parseDouble`, `parseNumber`: Java's `Integer.parseInt`,
//! `Long.parseLong` and `Double.parseDouble`, which is what Fauna calls.
//!
//! **Invariants:** text that Java rejects gives `null` (never an error); overflow gives
//! `null`, never a wrapped number; only a radix outside 2..=36 is an error. Digits are those
//! Java's `Character.digit` accepts: ASCII, fullwidth forms, and the decimal digits of other
//! scripts listed in [`ZERO_DIGITS`].

use super::super::params::{Ty, int_param, invalid, overload};
use crate::eval::{NullCause, R, Value};

fn invalid_number() -> Value {
    Value::Null(NullCause::NoSuchElement("an invalid number"))
}

/// `parseInt([radix])` (`int` true) or `parseLong([radix])`.
pub fn parse_int(s: &str, a: &[Value], int: bool) -> R<Value> {
    let name = if int { "parseInt" } else { "parseLong" };
    overload(name, a, &[&[], &[Ty::Int]])?;
    let radix = match a.first() {
        Some(v) => int_param(v, "radix")?,
        None => 10,
    };
    let Some(radix) = u32::try_from(radix).ok().filter(|r| (2..=36).contains(r)) else {
        return Err(invalid(
            "format",
            "invalid radix, expected a number from 2-36",
        ));
    };
    let (min, max) = if int {
        (i64::from(i32::MIN), i64::from(i32::MAX))
    } else {
        (i64::MIN, i64::MAX)
    };
    Ok(match java_parse_integer(s, radix, min, max) {
        Some(n) if int => i32::try_from(n).map_or_else(|_| invalid_number(), Value::Int),
        Some(n) => Value::Long(n),
        None => invalid_number(),
    })
}

/// `parseDouble()`.
pub fn parse_double(s: &str) -> Value {
    java_parse_double(s).map_or_else(invalid_number, Value::Double)
}

/// `parseNumber()`: an Int if the text is one, else a Long, else a Double, else null.
pub fn parse_number(s: &str) -> Value {
    if let Some(n) = java_parse_integer(s, 10, i64::from(i32::MIN), i64::from(i32::MAX)) {
        return crate::eval::ops::narrow(n);
    }
    if let Some(n) = java_parse_integer(s, 10, i64::MIN, i64::MAX) {
        return Value::Long(n);
    }
    parse_double(s)
}

/// The first code point of each run of ten decimal digits (Unicode `Nd`) outside ASCII.
const ZERO_DIGITS: &[u32] = &[
    0x0660, 0x06F0, 0x07C0, 0x0966, 0x09E6, 0x0A66, 0x0AE6, 0x0B66, 0x0BE6, 0x0C66, 0x0CE6, 0x0D66,
    0x0DE6, 0x0E50, 0x0ED0, 0x0F20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// Java's `Character.digit(c, radix)`.
fn java_digit(c: char, radix: u32) -> Option<u32> {
    let cp = c as u32;
    let value = match c {
        '0'..='9' | 'a'..='z' | 'A'..='Z' => c.to_digit(36)?,
        // Fullwidth Latin letters.
        '\u{FF21}'..='\u{FF3A}' => cp - 0xFF21 + 10,
        '\u{FF41}'..='\u{FF5A}' => cp - 0xFF41 + 10,
        _ => {
            let zero = ZERO_DIGITS
                .iter()
                .rev()
                .find(|&&z| z <= cp && cp < z + 10)?;
            cp - zero
        }
    };
    (value < radix).then_some(value)
}

/// Java's `parseInt`/`parseLong` algorithm: an optional sign then at least one digit, no
/// whitespace; `None` on anything else or when the value leaves `min..=max`.
fn java_parse_integer(s: &str, radix: u32, min: i64, max: i64) -> Option<i64> {
    let (negative, digits) = match s.chars().next()? {
        '-' => (true, &s[1..]),
        '+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() {
        return None;
    }
    // Accumulate negatively, as Java does, so the most negative value is reachable.
    let limit = if negative { min } else { -max };
    let mut acc: i64 = 0;
    for c in digits.chars() {
        let d = i64::from(java_digit(c, radix)?);
        acc = acc.checked_mul(i64::from(radix))?.checked_sub(d)?;
        if acc < limit {
            return None;
        }
    }
    if negative {
        Some(acc)
    } else {
        acc.checked_neg()
    }
}

/// Java's `Double.parseDouble`: surrounding characters up to U+0020 ignored, an optional
/// sign, then `NaN`, `Infinity`, a decimal, or a hexadecimal floating literal
/// (`0x1.8p1`), with an optional `f`/`F`/`d`/`D` suffix.
pub fn java_parse_double(s: &str) -> Option<f64> {
    if let Some(d) = testudo_model::num::parse_java_double(s) {
        return Some(d);
    }
    let t = s.trim_matches(|c: char| c <= ' ');
    let (negative, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let hex = body
        .strip_prefix("0x")
        .or_else(|| body.strip_prefix("0X"))?;
    let magnitude = parse_hex_float(hex.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(hex))?;
    Some(if negative { -magnitude } else { magnitude })
}

/// `HexDigits [. HexDigits] p [+-] Digits` (at least one hex digit; the exponent is
/// required). Significant digits past the 30th are dropped, an approximation only text
/// longer than any `double` needs can notice.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mantissa, exponent) = s.split_once(['p', 'P'])?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let exp_digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if exp_digits.is_empty() || !exp_digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Exponents beyond any double's reach saturate (the result is 0 or Infinity anyway).
    let mut exp: i64 = exp_digits
        .bytes()
        .try_fold(0i64, |acc, b| {
            acc.checked_mul(10)?.checked_add(i64::from(b - b'0'))
        })
        .unwrap_or(i64::MAX)
        .min(100_000);
    if exponent.starts_with('-') {
        exp = -exp;
    }
    let mut value: u128 = 0;
    let mut kept = 0;
    for (i, c) in int.chars().chain(frac.chars()).enumerate() {
        let d = c.to_digit(16)?;
        let fractional = i >= int.len();
        if kept < 30 {
            value = value * 16 + u128::from(d);
            if value != 0 {
                kept += 1;
            }
            if fractional {
                exp -= 4;
            }
        } else if !fractional {
            exp += 4;
        }
    }
    let mut result = value as f64;
    // Scale by 2^exp in steps that cannot overflow the intermediate.
    while exp != 0 && result != 0.0 && result.is_finite() {
        let step = exp.clamp(-1000, 1000);
        result *= 2f64.powi(step as i32);
        exp -= step;
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_as_java_does() {
        let int = |s| java_parse_integer(s, 10, i64::from(i32::MIN), i64::from(i32::MAX));
        assert_eq!(int("-2147483648"), Some(-2_147_483_648));
        assert_eq!(int("2147483648"), None);
        assert_eq!(int("+7"), Some(7));
        assert_eq!(int("+"), None);
        assert_eq!(int("-"), None);
        assert_eq!(int(" 1"), None);
        assert_eq!(int("١٢٣"), Some(123));
        assert_eq!(int("１２"), Some(12));
        assert_eq!(java_parse_integer("zz", 36, i64::MIN, i64::MAX), Some(1295));
        assert_eq!(
            java_parse_integer("-8000000000000000", 16, i64::MIN, i64::MAX),
            Some(i64::MIN)
        );
        assert_eq!(
            java_parse_integer("8000000000000000", 16, i64::MIN, i64::MAX),
            None
        );
    }

    #[test]
    fn doubles_parse_as_java_does() {
        assert_eq!(java_parse_double(" 1.5d "), Some(1.5));
        assert_eq!(java_parse_double("0x1.8p1"), Some(3.0));
        assert_eq!(java_parse_double("-0X.8P-1f"), Some(-0.25));
        assert_eq!(java_parse_double("0x1p99999999999"), Some(f64::INFINITY));
        assert_eq!(java_parse_double("0x10"), None);
        assert_eq!(java_parse_double("inf"), None);
        assert_eq!(java_parse_double("1_000"), None);
        assert!(java_parse_double("NaN").is_some_and(f64::is_nan));
    }
}
