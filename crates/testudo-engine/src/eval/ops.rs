//! Operators on values: arithmetic with Fauna's Int/Long/Double promotion, bitwise
//! operators, equality, comparison and the total order used for sorting.
//!
//! **Invariants:** integer arithmetic never wraps or panics (overflow promotes to Double,
//! exactly as Fauna does); equality and comparison never fail, whatever the two kinds.

use std::cmp::Ordering;

use testudo_fql::ast::BinOp;

use super::value::{Module, Value};
use super::{Interp, R, fail};
use crate::api::ErrorCode;

/// An integer result, narrowed to `Int` when it fits in 32 bits.
pub fn narrow(n: i64) -> Value {
    match i32::try_from(n) {
        Ok(i) => Value::Int(i),
        Err(_) => Value::Long(n),
    }
}

enum Num {
    I(i64),
    F(f64),
}

fn num(v: &Value) -> Option<Num> {
    match v {
        Value::Int(i) => Some(Num::I(i64::from(*i))),
        Value::Long(l) => Some(Num::I(*l)),
        Value::Double(d) => Some(Num::F(*d)),
        _ => None,
    }
}

pub fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(f64::from(*i)),
        Value::Long(l) => Some(*l as f64),
        Value::Double(d) => Some(*d),
        _ => None,
    }
}

fn no_operator(op: BinOp, l: &Value, r: &Value) -> R<Value> {
    if l.is_number() {
        fail(
            ErrorCode::InvalidArgument,
            format!(
                "expected value for `other` of type Number, received {}",
                r.type_name()
            ),
        )
    } else {
        fail(
            ErrorCode::InvalidFunctionInvocation,
            format!(
                "The function `{}` does not exist on `{}`",
                op.symbol(),
                l.type_name()
            ),
        )
    }
}

/// `+ - * / % **` on numbers.
pub fn arith(op: BinOp, l: &Value, r: &Value) -> R<Value> {
    let (Some(a), Some(b)) = (num(l), num(r)) else {
        return no_operator(op, l, r);
    };
    match (a, b) {
        (Num::I(x), Num::I(y)) => int_arith(op, x, y),
        (a, b) => {
            let x = match a {
                Num::I(i) => i as f64,
                Num::F(f) => f,
            };
            let y = match b {
                Num::I(i) => i as f64,
                Num::F(f) => f,
            };
            Ok(Value::Double(match op {
                BinOp::Add => x + y,
                BinOp::Sub => x - y,
                BinOp::Mul => x * y,
                BinOp::Div => x / y,
                BinOp::Rem => x % y,
                _ => x.powf(y),
            }))
        }
    }
}

fn int_arith(op: BinOp, x: i64, y: i64) -> R<Value> {
    let exact = match op {
        BinOp::Add => x.checked_add(y),
        BinOp::Sub => x.checked_sub(y),
        BinOp::Mul => x.checked_mul(y),
        BinOp::Div | BinOp::Rem if y == 0 => {
            return fail(
                ErrorCode::DivideByZero,
                "Attempted integer division by zero.",
            );
        }
        BinOp::Div => x.checked_div(y),
        BinOp::Rem => Some(x.checked_rem(y).unwrap_or(0)),
        _ => {
            if y < 0 {
                return Ok(Value::Double((x as f64).powf(y as f64)));
            }
            u32::try_from(y).ok().and_then(|e| x.checked_pow(e))
        }
    };
    Ok(match exact {
        Some(n) => narrow(n),
        None => Value::Double(match op {
            BinOp::Add => x as f64 + y as f64,
            BinOp::Sub => x as f64 - y as f64,
            BinOp::Mul => x as f64 * y as f64,
            BinOp::Div => x as f64 / y as f64,
            _ => (x as f64).powf(y as f64),
        }),
    })
}

fn to_i64_bits(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(i64::from(*i)),
        Value::Long(l) => Some(*l),
        // Java's (long) cast: truncation, saturating, NaN to 0.
        Value::Double(d) => Some(*d as i64),
        _ => None,
    }
}

/// `& | ^`: operands as 64-bit integers (Doubles truncated), result narrowed.
pub fn bitwise(op: BinOp, l: &Value, r: &Value) -> R<Value> {
    let (Some(a), Some(b)) = (to_i64_bits(l), to_i64_bits(r)) else {
        return no_operator(op, l, r);
    };
    Ok(narrow(match op {
        BinOp::BitAnd => a & b,
        BinOp::BitOr => a | b,
        _ => a ^ b,
    }))
}

pub fn negate(v: &Value) -> R<Value> {
    match v {
        Value::Int(i) => Ok(i
            .checked_neg()
            .map_or(Value::Long(-i64::from(*i)), Value::Int)),
        Value::Long(l) => Ok(l
            .checked_neg()
            .map_or(Value::Double(-(*l as f64)), Value::Long)),
        Value::Double(d) => Ok(Value::Double(-d)),
        other => fail(
            ErrorCode::InvalidFunctionInvocation,
            format!("The function `-` does not exist on `{}`", other.type_name()),
        ),
    }
}

pub fn bit_not(v: &Value) -> R<Value> {
    match to_i64_bits(v) {
        Some(n) => Ok(narrow(!n)),
        None => fail(
            ErrorCode::InvalidFunctionInvocation,
            format!("The function `~` does not exist on `{}`", v.type_name()),
        ),
    }
}

/// Java's `Double.compare`: total, with -0.0 < 0.0 and every NaN above +Infinity (and
/// equal to any other NaN).
pub fn double_cmp(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.total_cmp(&b),
    }
}

/// Numeric comparison across Int/Long/Double, exact for large integers.
pub fn num_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (num(a)?, num(b)?) {
        (Num::I(x), Num::I(y)) => Some(x.cmp(&y)),
        (Num::F(x), Num::F(y)) => Some(double_cmp(x, y)),
        (Num::I(x), Num::F(y)) => Some(int_double_cmp(x, y)),
        (Num::F(x), Num::I(y)) => Some(int_double_cmp(y, x).reverse()),
    }
}

fn int_double_cmp(i: i64, d: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() || d >= TWO_63 {
        return Ordering::Less;
    }
    if d < -TWO_63 {
        return Ordering::Greater;
    }
    // Compare exactly: integer part first, then the sign of the fraction.
    let whole = d.trunc();
    i.cmp(&(whole as i64))
        .then_with(|| 0.0f64.partial_cmp(&(d - whole)).unwrap_or(Ordering::Equal))
}

/// UTF-16 code unit order, as Fauna compares strings.
pub fn str_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// The rank of a value's kind in FQL's total order (reference §3.5).
fn rank(v: &Value) -> u8 {
    match v {
        Value::Int(_) | Value::Long(_) | Value::Double(_) => 0,
        Value::Bytes(_) => 1,
        Value::Str(_) => 2,
        Value::Array(_) => 3,
        Value::Object(_) => 4,
        Value::Id(_) => 5,
        Value::Doc(_) => 6,
        Value::Time(_) => 7,
        Value::TxnTime => 8,
        Value::Date(_) => 9,
        Value::Bool(_) => 11,
        Value::Module(_) => 12,
        Value::Set(_) => 13,
        Value::Func(f) => match **f {
            super::Func::Lambda(_) => 15,
            super::Func::Native(_) | super::Func::Udf(_) => 16,
        },
        Value::Null(_) => 255,
    }
}

/// FQL's total order over all values (sorting, `distinct`, index values). Never reads:
/// documents order by collection then id.
pub fn total_cmp(a: &Value, b: &Value) -> Ordering {
    let (ra, rb) = (rank(a), rank(b));
    if ra != rb {
        return ra.cmp(&rb);
    }
    same_kind_cmp(a, b).unwrap_or(Ordering::Equal)
}

/// Comparison within one kind; `None` when the kinds differ or have no order.
fn same_kind_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    Some(match (a, b) {
        _ if a.is_number() && b.is_number() => num_cmp(a, b)?,
        (Value::Bytes(x), Value::Bytes(y)) => x.cmp(y),
        (Value::Str(x), Value::Str(y)) => str_cmp(x, y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Time(x), Value::Time(y)) => x.cmp(y),
        (Value::Date(x), Value::Date(y)) => x.cmp(y),
        (Value::TxnTime, Value::TxnTime) => Ordering::Equal,
        (Value::Id(x), Value::Id(y)) => x.cmp(y),
        (Value::Doc(x), Value::Doc(y)) => (x.coll, x.id).cmp(&(y.coll, y.id)),
        (Value::Module(x), Value::Module(y)) => x.name().cmp(y.name()),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                let o = total_cmp(p, q);
                if o != Ordering::Equal {
                    return Some(o);
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| str_cmp(p.0, q.0));
            ys.sort_by(|p, q| str_cmp(p.0, q.0));
            for ((kx, vx), (ky, vy)) in xs.iter().zip(ys.iter()) {
                let o = str_cmp(kx, ky).then_with(|| total_cmp(vx, vy));
                if o != Ordering::Equal {
                    return Some(o);
                }
            }
            xs.len().cmp(&ys.len())
        }
        (Value::Null(_), Value::Null(_)) => Ordering::Equal,
        _ => return None,
    })
}

impl Interp<'_> {
    /// `==`: deep, type-aware, never an error. A document that does not exist equals null.
    pub fn equals(&mut self, a: &Value, b: &Value) -> R<bool> {
        Ok(match (a, b) {
            (Value::Null(_), Value::Null(_)) => true,
            (Value::Doc(_), Value::Null(_)) => self.is_nullish(a)?,
            (Value::Null(_), Value::Doc(_)) => self.is_nullish(b)?,
            (Value::Id(id), Value::Str(s)) | (Value::Str(s), Value::Id(id)) => {
                testudo_model::DocId::parse(s).is_some_and(|d| d.0 == *id)
            }
            (Value::Id(id), n) | (n, Value::Id(id)) if n.is_number() => {
                num_cmp(&Value::Long(*id as i64), n) == Some(Ordering::Equal)
            }
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if !self.equals(p, q)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Object(x), Value::Object(y)) => {
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (k, v) in x.iter() {
                    match y.get(k) {
                        Some(w) if self.equals(v, w)? => {}
                        _ => return Ok(false),
                    }
                }
                true
            }
            (Value::Func(x), Value::Func(y)) => std::rc::Rc::ptr_eq(x, y),
            (Value::Set(x), Value::Set(y)) => std::rc::Rc::ptr_eq(x, y),
            (Value::Module(Module::Builtin(x)), Value::Module(Module::Builtin(y))) => x == y,
            (Value::Module(Module::Collection(x)), Value::Module(Module::Collection(y))) => {
                x.id == y.id
            }
            _ => rank(a) == rank(b) && same_kind_cmp(a, b) == Some(Ordering::Equal),
        })
    }

    /// `< > <= >=`: defined within a kind; different kinds compare as `false`.
    pub fn compare_op(&mut self, op: BinOp, a: &Value, b: &Value) -> R<bool> {
        let ord = match (a, b) {
            (Value::Id(id), Value::Str(s)) => testudo_model::DocId::parse(s).map(|d| id.cmp(&d.0)),
            (Value::Str(s), Value::Id(id)) => testudo_model::DocId::parse(s).map(|d| d.0.cmp(id)),
            (Value::Id(id), n) if n.is_number() => num_cmp(&Value::Long(*id as i64), n),
            (n, Value::Id(id)) if n.is_number() => num_cmp(n, &Value::Long(*id as i64)),
            (Value::Null(_), _) | (_, Value::Null(_)) => None,
            _ if rank(a) == rank(b) => same_kind_cmp(a, b),
            _ => None,
        };
        Ok(match ord {
            None => false,
            Some(o) => match op {
                BinOp::Lt => o == Ordering::Less,
                BinOp::Gt => o == Ordering::Greater,
                BinOp::Le => o != Ordering::Greater,
                _ => o != Ordering::Less,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(a: Value, b: Value) -> Value {
        arith(BinOp::Add, &a, &b).unwrap()
    }

    #[test]
    fn int_addition_widens_to_long_then_double() {
        assert!(matches!(
            add(Value::Int(1_000_000_000), Value::Int(2_000_000_000)),
            Value::Long(3_000_000_000)
        ));
        match add(
            Value::Long(9_000_000_000_000_000_000),
            Value::Long(9_000_000_000_000_000_000),
        ) {
            Value::Double(d) => assert_eq!(d, 1.8e19),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn integer_division_truncates_and_rejects_zero() {
        assert!(matches!(
            arith(BinOp::Div, &Value::Int(987), &Value::Int(-382)).unwrap(),
            Value::Int(-2)
        ));
        let e = arith(BinOp::Div, &Value::Int(234), &Value::Int(0)).unwrap_err();
        assert_eq!(e.code, ErrorCode::DivideByZero);
        assert!(
            matches!(arith(BinOp::Div, &Value::Int(234), &Value::Double(0.0)).unwrap(), Value::Double(d) if d == f64::INFINITY)
        );
    }

    #[test]
    fn min_int_division_by_minus_one_does_not_panic() {
        let v = arith(BinOp::Div, &Value::Long(i64::MIN), &Value::Int(-1)).unwrap();
        assert!(matches!(v, Value::Double(_)));
        assert!(matches!(
            arith(BinOp::Rem, &Value::Long(i64::MIN), &Value::Int(-1)).unwrap(),
            Value::Int(0)
        ));
    }

    #[test]
    fn power_is_right_sized() {
        assert!(matches!(
            arith(BinOp::Pow, &Value::Int(2), &Value::Int(9)).unwrap(),
            Value::Int(512)
        ));
        assert!(matches!(
            arith(BinOp::Pow, &Value::Int(2), &Value::Int(40)).unwrap(),
            Value::Long(1_099_511_627_776)
        ));
        assert!(matches!(
            arith(BinOp::Pow, &Value::Int(2), &Value::Int(100)).unwrap(),
            Value::Double(_)
        ));
        assert!(
            matches!(arith(BinOp::Pow, &Value::Int(2), &Value::Int(-1)).unwrap(), Value::Double(d) if d == 0.5)
        );
    }

    #[test]
    fn negation_of_the_smallest_int_widens() {
        assert!(matches!(
            negate(&Value::Int(i32::MIN)).unwrap(),
            Value::Long(2_147_483_648)
        ));
        assert!(matches!(
            negate(&Value::Long(i64::MIN)).unwrap(),
            Value::Double(_)
        ));
    }

    #[test]
    fn bitwise_truncates_doubles() {
        // (1 + 2 + 4.1) & (1.2 + 4) = 7 & 5 = 5
        assert!(matches!(
            bitwise(BinOp::BitAnd, &Value::Double(7.1), &Value::Double(5.2)).unwrap(),
            Value::Int(5)
        ));
        assert!(matches!(bit_not(&Value::Int(7)).unwrap(), Value::Int(-8)));
    }

    #[test]
    fn total_order_puts_numbers_first_and_null_last() {
        let mut values = [
            Value::NULL,
            Value::str("a"),
            Value::Bool(true),
            Value::Int(3),
            Value::Double(1.5),
        ];
        values.sort_by(total_cmp);
        assert!(matches!(values[0], Value::Double(_)));
        assert!(matches!(values[1], Value::Int(3)));
        assert!(matches!(values[2], Value::Str(_)));
        assert!(matches!(values[3], Value::Bool(true)));
        assert!(matches!(values[4], Value::Null(_)));
    }

    #[test]
    fn java_double_compare_semantics() {
        assert_eq!(double_cmp(-0.0, 0.0), Ordering::Less);
        assert_eq!(double_cmp(f64::NAN, f64::INFINITY), Ordering::Greater);
        assert_eq!(double_cmp(f64::NAN, f64::NAN), Ordering::Equal);
        assert_eq!(double_cmp(-f64::NAN, 1.0), Ordering::Greater);
    }

    #[test]
    fn large_integers_compare_exactly_against_doubles() {
        let big = Value::Long(9_007_199_254_740_993);
        assert_eq!(
            num_cmp(&big, &Value::Double(9_007_199_254_740_992.0)),
            Some(Ordering::Greater)
        );
        assert_eq!(
            num_cmp(&Value::Int(1), &Value::Double(1.0)),
            Some(Ordering::Equal)
        );
        assert_eq!(
            num_cmp(&Value::Int(1), &Value::Double(1.5)),
            Some(Ordering::Less)
        );
    }

    #[test]
    fn strings_order_by_utf16_code_units() {
        // U+FF61 sorts after U+1F600 in UTF-8 byte order but before it in UTF-16.
        assert_eq!(str_cmp("\u{1F600}", "\u{FF61}"), Ordering::Less);
    }
}
