//! Java's number text forms, which Fauna's wire formats and display strings inherit.
//!
//! - [`java_double_to_string`] is `Double.toString` (JDK 19+ semantics: the shortest decimal
//!   that rounds back, two digits when one would do and two are closer): what `@double`,
//!   the simple format and FQL's debug strings print.
//! - [`fql_display_double`] is the core's display string (`toString()`, `+`, `#{}`): integral
//!   values without a fraction (`String.format("%.0f")`), others as `Double.toString`.
//! - [`parse_java_double`] is Scala's `toDoubleOption`, used for `@double` input.
//! - [`java_math_round`] is `Math.round(double)`.
//!
//! **Invariant:** no function here allocates except the ones returning `String`, and none
//! panics on any input (NaN, infinities, subnormals, `-0.0`).

use std::fmt::Write as _;

/// A shortest round-tripping decimal: `digits[0].digits[1..len] × 10^exp`, no trailing zeros
/// beyond the first digit.
struct Decimal {
    digits: [u8; 17],
    len: usize,
    exp: i32,
}

/// A fixed stack buffer for `core::fmt` output (Rust's float formatting is the digit source).
struct StackBuf {
    buf: [u8; 48],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        StackBuf {
            buf: [0; 48],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(self.buf.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        let slot = self.buf.get_mut(self.len..end).ok_or(std::fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// Parses Rust's `{:e}` output (`d[.ddd]e[-]x`) into a [`Decimal`].
fn parse_sci(s: &str) -> Decimal {
    let mut d = Decimal {
        digits: [0; 17],
        len: 0,
        exp: 0,
    };
    let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
    for b in mantissa.bytes().filter(u8::is_ascii_digit) {
        if let Some(slot) = d.digits.get_mut(d.len) {
            *slot = b - b'0';
            d.len += 1;
        }
    }
    d.exp = exp.parse().unwrap_or(0);
    // Rust never prints trailing zeros in shortest mode; `{:.1e}` may ("1.0e23").
    while d.len > 1 && d.digits[d.len - 1] == 0 {
        d.len -= 1;
    }
    d
}

/// The decimal Java's `Double.toString` picks for a finite, non-zero `x` (sign ignored).
fn java_decimal(x: f64) -> Decimal {
    let x = x.abs();
    let mut buf = StackBuf::new();
    let _ = write!(buf, "{x:e}");
    let shortest = parse_sci(buf.as_str());
    if shortest.len > 1 {
        return shortest;
    }
    // When one digit suffices Java still considers two-digit decimals and takes the closest
    // to `x` (so `Double.MIN_VALUE` prints as `4.9E-324`, not `5E-324`). The correctly
    // rounded two-digit decimal is the closest one; it qualifies if it reads back as `x`.
    let mut two = StackBuf::new();
    let _ = write!(two, "{x:.1e}");
    if two.as_str().parse::<f64>() == Ok(x) {
        parse_sci(two.as_str())
    } else {
        shortest
    }
}

fn push_digits(out: &mut Vec<u8>, digits: &[u8]) {
    out.extend(digits.iter().map(|d| b'0' + d));
}

fn push_int(out: &mut Vec<u8>, n: i32) {
    let mut buf = StackBuf::new();
    let _ = write!(buf, "{n}");
    out.extend_from_slice(buf.as_str().as_bytes());
}

/// Appends `Double.toString(x)` to `out`.
pub fn write_java_double(x: f64, out: &mut Vec<u8>) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if x.is_sign_negative() {
        out.push(b'-');
    }
    if x.is_infinite() {
        out.extend_from_slice(b"Infinity");
        return;
    }
    if x == 0.0 {
        out.extend_from_slice(b"0.0");
        return;
    }
    let d = java_decimal(x);
    let digits = &d.digits[..d.len];
    if (-3..7).contains(&d.exp) {
        if d.exp >= 0 {
            let int_len = d.exp as usize + 1;
            for i in 0..int_len {
                out.push(b'0' + digits.get(i).copied().unwrap_or(0));
            }
            out.push(b'.');
            match digits.get(int_len..) {
                Some(frac) if !frac.is_empty() => push_digits(out, frac),
                _ => out.push(b'0'),
            }
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-d.exp - 1) as usize));
            push_digits(out, digits);
        }
    } else {
        push_digits(out, &digits[..1]);
        out.push(b'.');
        if digits.len() > 1 {
            push_digits(out, &digits[1..]);
        } else {
            out.push(b'0');
        }
        out.push(b'E');
        push_int(out, d.exp);
    }
}

/// Java's `Double.toString(x)`: `5123.0`, `0.30000000000000004`, `1.0E21`, `1.0E-5`, `-0.0`,
/// `Infinity`, `NaN`.
pub fn java_double_to_string(x: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_java_double(x, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends FQL's display string of a `Double` to `out` (see [`fql_display_double`]).
pub fn write_fql_display_double(x: f64, out: &mut Vec<u8>) {
    if !x.is_finite() || x.fract() != 0.0 {
        write_java_double(x, out);
        return;
    }
    // Java's `%.0f` prints the shortest digits padded with zeros, and keeps the sign of -0.0.
    if x.is_sign_negative() {
        out.push(b'-');
    }
    if x == 0.0 {
        out.push(b'0');
        return;
    }
    let d = java_decimal(x);
    push_digits(out, &d.digits[..d.len]);
    let zeros = (d.exp + 1 - d.len as i32).max(0) as usize;
    out.extend(std::iter::repeat_n(b'0', zeros));
}

/// FQL's display string of a `Double` (`toString()`, string `+`, `#{}`): integral values
/// without a fraction (`2.0` → `2`, `1e21` → `1000000000000000000000`, `-0.0` → `-0`),
/// otherwise `Double.toString` (`42.3`, `1.0E-5`, `Infinity`, `NaN`).
pub fn fql_display_double(x: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_fql_display_double(x, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Java's `Math.round(double)`: the closest `long`, ties toward positive infinity, NaN → 0,
/// saturating at the `long` range.
pub fn java_math_round(x: f64) -> i64 {
    if x.is_nan() {
        return 0;
    }
    let floor = x.floor();
    let rounded = if x - floor >= 0.5 { floor + 1.0 } else { floor };
    // `as` saturates, which is exactly Java's clamping.
    rounded as i64
}

/// The exact value of the decimal text Java prints for a non-negative integral double, as
/// the core's `BigDecimal(double)` sees it (`1e23` is exactly 10^23, not the binary value).
/// `None` if it exceeds `i128`.
pub(crate) fn integral_decimal_value(x: f64) -> Option<i128> {
    if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0) {
        return None;
    }
    if x < 9_007_199_254_740_992.0 {
        return Some(x as i128);
    }
    let d = java_decimal(x);
    let mut value: i128 = 0;
    for &digit in &d.digits[..d.len] {
        value = value.checked_mul(10)?.checked_add(i128::from(digit))?;
    }
    let scale = u32::try_from(d.exp + 1 - d.len as i32).ok()?;
    value.checked_mul(10i128.checked_pow(scale)?)
}

/// Scala's `String.toDoubleOption` as the core applies it to `@double` text: surrounding
/// characters up to U+0020 ignored, an optional sign, then `NaN`, `Infinity`, or a decimal
/// (`1`, `1.`, `.5`, `1e5`, `1.5E-3`) with an optional `f`/`F`/`d`/`D` suffix. Hexadecimal
/// floating literals, which Java also accepts, are not supported.
pub fn parse_java_double(s: &str) -> Option<f64> {
    let s = s.trim_matches(|c: char| c <= ' ');
    let (negative, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = match body {
        "NaN" => f64::NAN,
        "Infinity" => f64::INFINITY,
        _ => {
            let body = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
            if !is_decimal_literal(body) {
                return None;
            }
            body.parse::<f64>().ok()?
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// `digits [. digits] | . digits`, then an optional exponent; at least one mantissa digit.
fn is_decimal_literal(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = all_digits(int) && all_digits(frac) && !(int.is_empty() && frac.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        !digits.is_empty() && all_digits(digits)
    });
    mantissa_ok && exponent_ok
}

/// Appends the decimal text of `n` to `out`.
pub(crate) fn write_i64(n: i64, out: &mut Vec<u8>) {
    if n < 0 {
        out.push(b'-');
    }
    write_u64(n.unsigned_abs(), out);
}

/// Appends the decimal text of `n` to `out`.
pub(crate) fn write_u64(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
#[allow(clippy::approx_constant)]
mod tests {
    use super::*;

    /// Outputs of `Double.toString` on a JDK 21 (shortest-decimal algorithm).
    const JAVA_TO_STRING: &[(f64, &str)] = &[
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (1.0, "1.0"),
        (-1.0, "-1.0"),
        (5123.0, "5123.0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (0.1 + 0.1 + 0.1, "0.30000000000000004"),
        (2.0 * 3.14, "6.28"),
        (5.0 - 9.8, "-4.800000000000001"),
        (42.3, "42.3"),
        (3.14159, "3.14159"),
        (100.0, "100.0"),
        (1234567.0, "1234567.0"),
        (9999999.0, "9999999.0"),
        (1.0e7, "1.0E7"),
        (12345678.0, "1.2345678E7"),
        (1.0e21, "1.0E21"),
        (1.8e19, "1.8E19"),
        (1.0e23, "1.0E23"),
        (0.001, "0.001"),
        (0.0012, "0.0012"),
        (0.000999, "9.99E-4"),
        (1.0e-5, "1.0E-5"),
        (1.5e-10, "1.5E-10"),
        (123.456, "123.456"),
        (f64::MAX, "1.7976931348623157E308"),
        (f64::MIN_POSITIVE, "2.2250738585072014E-308"),
        (5e-324, "4.9E-324"),
        (1e-323, "9.9E-324"),
        (9_007_199_254_740_992.0, "9.007199254740992E15"),
        (9.223372036854776e18, "9.223372036854776E18"),
        (0.5, "0.5"),
        (2.5e-3, "0.0025"),
        (f64::INFINITY, "Infinity"),
        (f64::NEG_INFINITY, "-Infinity"),
        (f64::NAN, "NaN"),
    ];

    #[test]
    fn java_double_to_string_matches_known_java_outputs() {
        for &(x, expected) in JAVA_TO_STRING {
            assert_eq!(java_double_to_string(x), expected, "{x:e}");
        }
    }

    #[test]
    fn java_double_text_always_reads_back_as_the_same_double() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f64::from_bits(state);
            if !x.is_finite() {
                continue;
            }
            let text = java_double_to_string(x);
            assert_eq!(
                text.parse::<f64>().map(f64::to_bits),
                Ok(x.to_bits()),
                "{text}"
            );
            assert_eq!(
                parse_java_double(&text).map(f64::to_bits),
                Some(x.to_bits()),
                "{text}"
            );
        }
    }

    #[test]
    fn display_drops_the_fraction_of_integral_values_only() {
        for (x, expected) in [
            (42.3, "42.3"),
            (3.14159, "3.14159"),
            (2.0, "2"),
            (-2.0, "-2"),
            (0.0, "0"),
            (-0.0, "-0"),
            (5123.0, "5123"),
            (1.8e19, "18000000000000000000"),
            (1.0e23, "100000000000000000000000"),
            (9.223372036854776e18, "9223372036854776000"),
            (1.0e-5, "1.0E-5"),
            (0.5, "0.5"),
            (f64::INFINITY, "Infinity"),
            (f64::NEG_INFINITY, "-Infinity"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(fql_display_double(x), expected, "{x:e}");
        }
    }

    #[test]
    fn math_round_is_half_up_and_saturating() {
        assert_eq!(java_math_round(2.5), 3);
        assert_eq!(java_math_round(-2.5), -2);
        assert_eq!(java_math_round(0.49999999999999994), 0);
        assert_eq!(java_math_round(-0.5), 0);
        assert_eq!(java_math_round(f64::NAN), 0);
        assert_eq!(java_math_round(1e300), i64::MAX);
        assert_eq!(java_math_round(f64::NEG_INFINITY), i64::MIN);
        assert_eq!(
            java_math_round(4_503_599_627_370_497.0),
            4_503_599_627_370_497
        );
    }

    #[test]
    fn integral_values_are_read_as_their_decimal_text() {
        assert_eq!(integral_decimal_value(12.0), Some(12));
        assert_eq!(
            integral_decimal_value(1e23),
            Some(100_000_000_000_000_000_000_000)
        );
        assert_eq!(integral_decimal_value(1e40), None);
        assert_eq!(integral_decimal_value(1.5), None);
    }

    #[test]
    fn parse_java_double_accepts_java_literals_only() {
        for (s, expected) in [
            ("1.5", 1.5),
            ("-2", -2.0),
            ("+3.", 3.0),
            (".5", 0.5),
            ("1e3", 1000.0),
            ("1E+3", 1000.0),
            ("2.5e-1", 0.25),
            ("1.5f", 1.5),
            ("7D", 7.0),
            (" 4.0\n", 4.0),
            ("Infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
        ] {
            assert_eq!(parse_java_double(s), Some(expected), "{s:?}");
        }
        assert!(parse_java_double("NaN").is_some_and(f64::is_nan));
        for bad in [
            "", ".", "e5", "1e", "1e+", "inf", "nan", "infinity", "1.5.5", "1,5", "0x1p3", "--1",
            "1 2", "1ef",
        ] {
            assert_eq!(parse_java_double(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn integer_writers_cover_the_extremes() {
        let mut out = Vec::new();
        write_i64(i64::MIN, &mut out);
        out.push(b' ');
        write_u64(u64::MAX, &mut out);
        out.push(b' ');
        write_i64(0, &mut out);
        assert_eq!(out, b"-9223372036854775808 18446744073709551615 0");
    }
}
