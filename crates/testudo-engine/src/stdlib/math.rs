//! `Math`: numeric functions (reference §4.2).

use super::args::{arg, expected, int_arg, num_arg};
use super::{MethodDef, between, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Interp, R, Value, fail, ops};

pub fn field(name: &str) -> Option<Value> {
    Some(Value::Double(match name {
        "PI" => std::f64::consts::PI,
        "E" => std::f64::consts::E,
        "Infinity" => f64::INFINITY,
        "NaN" => f64::NAN,
        _ => return None,
    }))
}

pub fn method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "abs" => def("abs", exactly(1), abs),
        "ceil" => def("ceil", exactly(1), |_, _, a| round_like(&a, f64::ceil)),
        "floor" => def("floor", exactly(1), |_, _, a| round_like(&a, f64::floor)),
        "round" => def("round", between(1, 2), |_, _, a| {
            precision_op(&a, Rounding::Round)
        }),
        "trunc" => def("trunc", between(1, 2), |_, _, a| {
            precision_op(&a, Rounding::Trunc)
        }),
        "max" => def("max", exactly(2), |it, _, a| min_max(it, &a, true)),
        "min" => def("min", exactly(2), |it, _, a| min_max(it, &a, false)),
        "sign" => def("sign", exactly(1), sign),
        "sqrt" => def("sqrt", exactly(1), |_, _, a| {
            let x = num_arg(&arg(&a, 0), "x")?;
            if x < 0.0 {
                return fail(
                    ErrorCode::InvalidArgument,
                    "expected value for `x` to be non-negative",
                );
            }
            Ok(Value::Double(x.sqrt()))
        }),
        "pow" => def("pow", exactly(2), |_, _, a| {
            Ok(Value::Double(
                num_arg(&arg(&a, 0), "x")?.powf(num_arg(&arg(&a, 1), "exponent")?),
            ))
        }),
        "exp" => def("exp", exactly(1), |_, _, a| apply(&a, f64::exp)),
        "log" => def("log", exactly(1), |_, _, a| positive_log(&a, f64::ln)),
        "log10" => def("log10", exactly(1), |_, _, a| positive_log(&a, f64::log10)),
        "hypot" => def("hypot", exactly(2), |_, _, a| {
            Ok(Value::Double(
                num_arg(&arg(&a, 0), "x")?.hypot(num_arg(&arg(&a, 1), "y")?),
            ))
        }),
        "sin" => def("sin", exactly(1), |_, _, a| apply(&a, f64::sin)),
        "cos" => def("cos", exactly(1), |_, _, a| apply(&a, f64::cos)),
        "tan" => def("tan", exactly(1), |_, _, a| apply(&a, f64::tan)),
        "asin" => def("asin", exactly(1), |_, _, a| unit_range(&a, f64::asin)),
        "acos" => def("acos", exactly(1), |_, _, a| unit_range(&a, f64::acos)),
        "atan" => def("atan", exactly(1), |_, _, a| apply(&a, f64::atan)),
        "sinh" => def("sinh", exactly(1), |_, _, a| apply(&a, f64::sinh)),
        "cosh" => def("cosh", exactly(1), |_, _, a| apply(&a, f64::cosh)),
        "tanh" => def("tanh", exactly(1), |_, _, a| apply(&a, f64::tanh)),
        "degrees" => def("degrees", exactly(1), |_, _, a| apply(&a, f64::to_degrees)),
        "radians" => def("radians", exactly(1), |_, _, a| apply(&a, f64::to_radians)),
        "sum" => def("sum", exactly(1), sum),
        "mean" => def("mean", exactly(1), mean),
        _ => return None,
    })
}

fn apply(a: &[Value], f: fn(f64) -> f64) -> R<Value> {
    Ok(Value::Double(f(num_arg(&arg(a, 0), "x")?)))
}

fn positive_log(a: &[Value], f: fn(f64) -> f64) -> R<Value> {
    let x = num_arg(&arg(a, 0), "x")?;
    if x <= 0.0 {
        return fail(
            ErrorCode::InvalidArgument,
            "expected value for `x` to be greater than zero",
        );
    }
    Ok(Value::Double(f(x)))
}

fn unit_range(a: &[Value], f: fn(f64) -> f64) -> R<Value> {
    let x = num_arg(&arg(a, 0), "x")?;
    if !(-1.0..=1.0).contains(&x) {
        return fail(
            ErrorCode::InvalidArgument,
            "expected value for `x` to be between -1 and 1 inclusive",
        );
    }
    Ok(Value::Double(f(x)))
}

fn abs(_it: &mut Interp<'_>, _r: &Value, a: Vec<Value>) -> R<Value> {
    match arg(&a, 0) {
        Value::Int(i) => Ok(i
            .checked_abs()
            .map_or(Value::Long(i64::from(i).abs()), Value::Int)),
        Value::Long(l) => Ok(l
            .checked_abs()
            .map_or(Value::Double((l as f64).abs()), Value::Long)),
        Value::Double(d) => Ok(Value::Double(d.abs())),
        other => Err(expected("x", "Number", &other)),
    }
}

fn round_like(a: &[Value], f: fn(f64) -> f64) -> R<Value> {
    match arg(a, 0) {
        v @ (Value::Int(_) | Value::Long(_)) => Ok(v),
        Value::Double(d) => Ok(Value::Double(f(d))),
        other => Err(expected("x", "Number", &other)),
    }
}

enum Rounding {
    Round,
    Trunc,
}

/// `Math.round(x, precision)` / `Math.trunc`: decimal places, negative for tens, hundreds.
/// Integers stay integral (as Long); Doubles stay Double.
fn precision_op(a: &[Value], mode: Rounding) -> R<Value> {
    let x = arg(a, 0);
    let precision = match a.get(1) {
        Some(p) => int_arg(p, "precision")?,
        None => 0,
    };
    let precision = i32::try_from(precision.clamp(-400, 400)).unwrap_or(0);
    let truncate = matches!(mode, Rounding::Trunc);
    match x {
        Value::Int(_) | Value::Long(_) => {
            let n = int_arg(&x, "x")?;
            if precision >= 0 {
                return Ok(Value::Long(n));
            }
            Ok(Value::Long(
                decimal_round(n as f64, precision, truncate) as i64
            ))
        }
        Value::Double(d) => Ok(Value::Double(decimal_round(d, precision, truncate))),
        other => Err(expected("x", "Number", &other)),
    }
}

/// Rounds (half up, away from zero) or truncates `d` to `precision` decimal places, on its
/// shortest decimal representation, as Java's `BigDecimal.valueOf(d).setScale(..)` does:
/// `12.345` rounds to `12.35` even though the binary double is slightly below it.
pub fn decimal_round(d: f64, precision: i32, truncate: bool) -> f64 {
    if !d.is_finite() || d == 0.0 {
        return d;
    }
    let text = format!("{:e}", d.abs());
    let Some((mantissa, exp)) = text.split_once('e') else {
        return d;
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return d;
    };
    let digits: Vec<u8> = mantissa
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    // The value is 0.d1d2d3... x 10^(exp + 1); keep this many leading digits.
    let keep = exp + 1 + precision;
    if keep >= digits.len() as i32 {
        return d;
    }
    let (mut kept, round_up) = if keep < 0 {
        (Vec::new(), false)
    } else {
        let k = keep as usize;
        (digits[..k].to_vec(), !truncate && digits[k] >= 5)
    };
    let mut scale = -precision;
    if round_up {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    if kept.is_empty() {
        kept.push(0);
        scale = 0;
    }
    let integer: String = kept.iter().map(|d| char::from(b'0' + d)).collect();
    let magnitude: f64 = format!("{integer}e{scale}").parse().unwrap_or(0.0);
    magnitude.copysign(d)
}

fn min_max(it: &mut Interp<'_>, a: &[Value], max: bool) -> R<Value> {
    let (x, y) = (arg(a, 0), arg(a, 1));
    num_arg(&x, "x")?;
    num_arg(&y, "y")?;
    let y_greater = ops::num_cmp(&y, &x) == Some(std::cmp::Ordering::Greater);
    let _ = it;
    Ok(if y_greater == max { y } else { x })
}

fn sign(_it: &mut Interp<'_>, _r: &Value, a: Vec<Value>) -> R<Value> {
    let x = num_arg(&arg(&a, 0), "x")?;
    Ok(Value::Int(if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }))
}

fn numbers(it: &mut Interp<'_>, v: &Value) -> R<Vec<Value>> {
    match v {
        Value::Array(items) => Ok(items.to_vec()),
        Value::Set(s) => crate::set::to_vec(it, &s.expr),
        other => Err(expected("numbers", "Array | Set", other)),
    }
}

fn sum(it: &mut Interp<'_>, _r: &Value, a: Vec<Value>) -> R<Value> {
    let mut total = Value::Int(0);
    for n in numbers(it, &arg(&a, 0))? {
        total = ops::arith(testudo_fql::ast::BinOp::Add, &total, &n)?;
    }
    Ok(total)
}

fn mean(it: &mut Interp<'_>, _r: &Value, a: Vec<Value>) -> R<Value> {
    let items = numbers(it, &arg(&a, 0))?;
    if items.is_empty() {
        return fail(
            ErrorCode::InvalidArgument,
            "expected `numbers` to be non-empty",
        );
    }
    let mut total = 0.0;
    for n in &items {
        total += num_arg(n, "numbers")?;
    }
    Ok(Value::Double(total / items.len() as f64))
}

#[cfg(test)]
mod tests {
    use super::decimal_round;

    #[test]
    fn rounding_works_on_the_decimal_text_of_the_double() {
        assert_eq!(decimal_round(12.345, 2, false), 12.35);
        assert_eq!(decimal_round(12.345, -1, false), 10.0);
        assert_eq!(decimal_round(12.345, 2, true), 12.34);
        assert_eq!(decimal_round(-2.5, 0, false), -3.0);
        assert_eq!(decimal_round(0.6, 0, false), 1.0);
        assert_eq!(decimal_round(0.4, 0, false), 0.0);
        assert_eq!(decimal_round(99.99, 1, false), 100.0);
        assert_eq!(decimal_round(1234.0, -5, false), 0.0);
        assert_eq!(decimal_round(1.5e300, 2, false), 1.5e300);
    }
}
