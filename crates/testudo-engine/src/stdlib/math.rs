//! `Math`: numeric functions (reference §4.2), computed as Fauna's core computes them.
//!
//! Fauna compares with Java's `Double.compare` (so `-0.0 < 0` and NaN is above every
//! number), rounds with its own double arithmetic (`round`/`trunc` below reproduce it
//! operation for operation, quirks included), and takes `sum`/`mean` over arrays and sets
//! with different arithmetic (a set's mean divides as integers when everything is integral).
//! **Invariants:** integer arithmetic never wraps (it widens as `+` does); domain errors are
//! `invalid_argument` with Fauna's wording; nothing panics on NaN, infinities or extremes.

use std::cmp::Ordering;

use testudo_fql::ast::BinOp;

use super::params::{Ty, int_param, invalid};
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Interp, R, Value, err, ops};
use crate::set::Pos;

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
        "ceil" => def("ceil", exactly(1), |_, _, a| integral_or(&a[0], f64::ceil)),
        "floor" => def("floor", exactly(1), |_, _, a| {
            integral_or(&a[0], f64::floor)
        }),
        "round" => def("round", exactly(2), |_, _, a| {
            precision(&a, round_long, round_double)
        }),
        "trunc" => def("trunc", exactly(2), |_, _, a| {
            precision(&a, trunc_long, trunc_double)
        }),
        "max" => def("max", exactly(2), |_, _, a| {
            let (x, y) = (number(&a[0], "x")?, number(&a[1], "y")?);
            Ok(if compare(x, y) == Ordering::Less {
                y
            } else {
                x
            }
            .clone())
        }),
        "min" => def("min", exactly(2), |_, _, a| {
            let (x, y) = (number(&a[0], "x")?, number(&a[1], "y")?);
            Ok(if compare(x, y) != Ordering::Greater {
                x
            } else {
                y
            }
            .clone())
        }),
        "sign" => def("sign", exactly(1), |_, _, a| {
            let x = number(&a[0], "x")?;
            Ok(Value::Int(match compare(x, &Value::Int(0)) {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            }))
        }),
        "sqrt" => def("sqrt", exactly(1), |_, _, a| {
            let x = number(&a[0], "x")?;
            if compare(x, &Value::Int(0)) == Ordering::Less {
                return Err(invalid("x", "x must be nonnegative"));
            }
            Ok(Value::Double(as_f64(x).sqrt()))
        }),
        "pow" => def("pow", exactly(2), |_, _, a| {
            let x = as_f64(number(&a[0], "x")?);
            Ok(Value::Double(x.powf(as_f64(number(&a[1], "power")?))))
        }),
        "exp" => def("exp", exactly(1), |_, _, a| apply(&a, f64::exp)),
        "log" => def("log", exactly(1), |_, _, a| positive(&a, f64::ln)),
        "log10" => def("log10", exactly(1), |_, _, a| positive(&a, f64::log10)),
        "hypot" => def("hypot", exactly(2), |_, _, a| {
            let x = as_f64(number(&a[0], "x")?);
            Ok(Value::Double(x.hypot(as_f64(number(&a[1], "y")?))))
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

fn number<'v>(v: &'v Value, param: &str) -> R<&'v Value> {
    super::params::check(v, param, Ty::Number)?;
    Ok(v)
}

fn as_f64(v: &Value) -> f64 {
    ops::as_f64(v).unwrap_or(f64::NAN)
}

/// Fauna's `compareNumbers`: exact between integers, `Double.compare` as soon as a Double
/// is involved (the integer converted to a double first).
fn compare(x: &Value, y: &Value) -> Ordering {
    match (x, y) {
        (Value::Double(_), _) | (_, Value::Double(_)) => ops::double_cmp(as_f64(x), as_f64(y)),
        _ => ops::num_cmp(x, y).unwrap_or(Ordering::Equal),
    }
}

fn apply(a: &[Value], f: fn(f64) -> f64) -> R<Value> {
    Ok(Value::Double(f(as_f64(number(&a[0], "x")?))))
}

fn positive(a: &[Value], f: fn(f64) -> f64) -> R<Value> {
    let x = number(&a[0], "x")?;
    if compare(x, &Value::Int(0)) != Ordering::Greater {
        return Err(invalid("x", "x must be positive"));
    }
    Ok(Value::Double(f(as_f64(x))))
}

fn unit_range(a: &[Value], f: fn(f64) -> f64) -> R<Value> {
    let x = as_f64(number(&a[0], "x")?);
    // NaN passes through, as in Fauna.
    if !x.is_nan() && !(-1.0..=1.0).contains(&x) {
        return Err(invalid("x", "argument must lie in [-1, 1]"));
    }
    Ok(Value::Double(f(x)))
}

fn abs(_it: &mut Interp<'_>, _r: &Value, a: Vec<Value>) -> R<Value> {
    // Fauna's `abs` wraps the most negative Int and Long back to themselves; here they
    // widen, as negation does.
    match number(&a[0], "x")? {
        Value::Int(i) => Ok(i
            .checked_abs()
            .map_or(Value::Long(i64::from(*i).abs()), Value::Int)),
        Value::Long(l) => Ok(l
            .checked_abs()
            .map_or(Value::Double((*l as f64).abs()), Value::Long)),
        other => Ok(Value::Double(as_f64(other).abs())),
    }
}

fn integral_or(v: &Value, f: fn(f64) -> f64) -> R<Value> {
    match number(v, "x")? {
        Value::Double(d) => Ok(Value::Double(f(*d))),
        integral => Ok(integral.clone()),
    }
}

/// `round(x, precision)` / `trunc(x, precision)`: integers give a Long, Doubles a Double.
fn precision(a: &[Value], long: fn(i64, i32) -> i64, double: fn(f64, i32) -> f64) -> R<Value> {
    let x = number(&a[0], "x")?;
    let p = int_param(&a[1], "precision")?;
    Ok(match x {
        Value::Int(i) => Value::Long(long(i64::from(*i), p)),
        Value::Long(l) => Value::Long(long(*l, p)),
        other => Value::Double(double(as_f64(other), p)),
    })
}

fn pow10(p: i32) -> f64 {
    10f64.powf(f64::from(p))
}

/// Java's `(int)` of a double: truncation, saturating, NaN to 0 (Rust's `as` does the same).
fn java_int(d: f64) -> i64 {
    i64::from(d as i32)
}

// Fauna's rounding, operation for operation: in Java, `(long)` of a double truncates
// toward zero and saturates, which Rust's `as` also does. Note the quirks this keeps:
// rounding adds 0.5 before truncating toward zero, so negative halves round up
// (`round(-2.5, 0)` is `-2`), and a whole number with precision 0 or less moves:
// `round(-3, 0)` is `-2`.

fn round_long(n: i64, p: i32) -> i64 {
    if p > 0 {
        return n;
    }
    let scale = pow10(p);
    ((((n as f64) * scale + 0.5) as i64) as f64 / scale) as i64
}

fn round_double(x: f64, p: i32) -> f64 {
    if p > 0 {
        let scale = java_int(pow10(p));
        let whole = x as i64;
        let fraction = ((x - whole as f64 + 0.5 / scale as f64) * scale as f64) as i64;
        whole as f64 + fraction as f64 / scale as f64
    } else {
        let scale = pow10(p);
        (((x * scale + 0.5) as i64) as f64 / scale) as i64 as f64
    }
}

fn trunc_long(n: i64, p: i32) -> i64 {
    if p > 0 {
        return n;
    }
    let scale = pow10(p);
    ((((n as f64) * scale) as i64) as f64 / scale) as i64
}

fn trunc_double(x: f64, p: i32) -> f64 {
    if p > 0 {
        let scale = java_int(pow10(p));
        let whole = x as i64;
        let fraction = ((x - whole as f64) * scale as f64) as i64;
        whole as f64 + fraction as f64 / scale as f64
    } else {
        let scale = pow10(p);
        ((x * scale) as i64) as f64 / scale
    }
}

/// The numbers of `sum`/`mean`'s argument, streamed (a set is not held in memory at once).
fn for_each_number(
    it: &mut Interp<'_>,
    method: &str,
    v: &Value,
    mut f: impl FnMut(&Value) -> R<()>,
) -> R<()> {
    let each = |n: &Value, f: &mut dyn FnMut(&Value) -> R<()>| {
        if n.is_number() {
            f(n)
        } else {
            Err(invalid("numbers", "all array elements must be numbers"))
        }
    };
    match v {
        Value::Array(items) => {
            for n in items.iter() {
                each(n, &mut f)?;
            }
        }
        Value::Set(s) => {
            let mut iter = crate::set::open(&s.expr, &Pos::Start)?;
            while let Some(n) = iter.next(it)? {
                each(&n, &mut f)?;
            }
        }
        _ => return unreachable_overload(method, v),
    }
    Ok(())
}

/// The overload error of `sum`/`mean` for an argument that is neither an array nor a set.
fn unreachable_overload(method: &str, v: &Value) -> R<()> {
    Err(err(
        ErrorCode::InvalidArgument,
        format!(
            "expected arguments to `{method}` of type (Array<Number>) | (Set<Number>), received ({})",
            v.type_name()
        ),
    ))
}

fn add(x: &Value, y: &Value) -> R<Value> {
    ops::arith(BinOp::Add, x, y)
}

fn sum(it: &mut Interp<'_>, _r: &Value, a: Vec<Value>) -> R<Value> {
    let mut total = Value::Int(0);
    for_each_number(it, "sum", &a[0], |n| {
        total = add(&total, n)?;
        Ok(())
    })?;
    Ok(total)
}

/// An array's mean divides by the count as a Double (`NaN` when empty); a set's divides by
/// the count as a number, so integral sums give a truncated integer and an empty set
/// `divide_by_zero`, as in Fauna.
fn mean(it: &mut Interp<'_>, _r: &Value, a: Vec<Value>) -> R<Value> {
    let mut total = Value::Int(0);
    let mut count: i64 = 0;
    for_each_number(it, "mean", &a[0], |n| {
        total = add(&total, n)?;
        count += 1;
        Ok(())
    })?;
    let divisor = match &a[0] {
        Value::Array(_) => Value::Double(count as f64),
        _ => ops::narrow(count),
    };
    ops::arith(BinOp::Div, &total, &divisor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_reproduces_fauna_double_arithmetic() {
        assert_eq!(round_double(12.345, 2), 12.35);
        assert_eq!(round_double(12.345, -1), 10.0);
        assert_eq!(trunc_double(12.345, 2), 12.34);
        assert_eq!(round_double(2.5, 0), 3.0);
        assert_eq!(round_double(-2.5, 0), -2.0);
        assert_eq!(round_double(f64::NAN, 0), 0.0);
        assert_eq!(round_long(1234, -2), 1200);
        assert_eq!(round_long(1250, -2), 1300);
        assert_eq!(round_long(-3, 0), -2);
        assert_eq!(trunc_long(1299, -2), 1200);
        assert_eq!(round_long(i64::MAX, -1), i64::MAX);
        assert!(trunc_double(1.5e300, 5).is_finite());
    }

    #[test]
    fn comparisons_follow_java_double_compare() {
        assert_eq!(
            compare(&Value::Double(-0.0), &Value::Int(0)),
            Ordering::Less
        );
        assert_eq!(
            compare(&Value::Double(f64::NAN), &Value::Int(0)),
            Ordering::Greater
        );
        assert_eq!(compare(&Value::Long(5), &Value::Int(5)), Ordering::Equal);
    }
}
