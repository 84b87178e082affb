//! `Time` and `Date` (reference §4.6): constructors, fields, arithmetic and conversions,
//! with Fauna's signatures and messages. The calendar, parsing and range rules live in
//! `testudo_model::time`; this file only maps FQL arguments onto them.
//!
//! **Invariants:** arithmetic never overflows or panics: a result outside the supported
//! range is `invalid_time` ("Time exceeds the maximum value.") or `invalid_date`; a bad
//! unit is `invalid_unit`; `Time.now()` and `Date.today()` are the transaction's snapshot
//! time, the same for the whole query.

use testudo_model::time::{TimeRangeError, TimeUnit};
use testudo_model::{Date, Time};

use super::params::{Ty, check, str_param};
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Interp, R, Value, err, ops};

pub fn time_static(name: &str) -> Option<MethodDef> {
    Some(match name {
        "now" => def("now", exactly(0), |it, _, _| {
            Ok(Value::Time(it.now().to_time()))
        }),
        "fromString" => def("fromString", exactly(1), |it, _, a| time_apply(it, a)),
        "epoch" => def("epoch", exactly(2), |_, _, a| {
            check(&a[0], "offset", Ty::Number)?;
            let unit = time_unit(&a[1])?;
            let t = match &a[0] {
                Value::Double(d) => Time::epoch_f64(*d, unit),
                n => Time::epoch(integral(n), unit),
            };
            let negative = ops::as_f64(&a[0]).is_some_and(|d| d < 0.0);
            t.map(Value::Time).ok_or_else(|| {
                range_error(if negative {
                    TimeRangeError::BeforeMin
                } else {
                    TimeRangeError::AfterMax
                })
            })
        }),
        _ => return None,
    })
}

pub fn date_static(name: &str) -> Option<MethodDef> {
    Some(match name {
        "today" => def("today", exactly(0), |it, _, _| {
            Ok(Value::Date(it.now().to_time().date()))
        }),
        "fromString" => def("fromString", exactly(1), |it, _, a| date_apply(it, a)),
        _ => return None,
    })
}

/// `Time(s)` and `Time.fromString(s)`.
pub fn time_apply(_it: &mut Interp<'_>, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(exactly(1), args.len())?;
    let s = str_param(&args[0], "time")?;
    Time::parse(&s).map(Value::Time).ok_or_else(|| {
        err(
            ErrorCode::InvalidTime,
            format!("`{s}` is not a valid time."),
        )
    })
}

/// `Date(s)` and `Date.fromString(s)`.
pub fn date_apply(_it: &mut Interp<'_>, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(exactly(1), args.len())?;
    let s = str_param(&args[0], "date")?;
    Date::parse(&s).map(Value::Date).ok_or_else(|| {
        err(
            ErrorCode::InvalidDate,
            format!("`{s}` is not a valid date."),
        )
    })
}

fn range_error(e: TimeRangeError) -> Box<crate::eval::EvalError> {
    err(
        ErrorCode::InvalidTime,
        match e {
            TimeRangeError::BeforeMin => "Time exceeds the minimum value.",
            TimeRangeError::AfterMax => "Time exceeds the maximum value.",
        },
    )
}

fn date_range_error(forward: bool) -> Box<crate::eval::EvalError> {
    err(
        ErrorCode::InvalidDate,
        if forward {
            "Date exceeds the maximum value."
        } else {
            "Date exceeds the minimum value."
        },
    )
}

fn time_unit(v: &Value) -> R<TimeUnit> {
    let s = str_param(v, "unit")?;
    TimeUnit::parse(&s).ok_or_else(|| {
        err(
            ErrorCode::InvalidUnit,
            format!("`{s}` is not a valid time unit."),
        )
    })
}

/// An Int or Long amount (callers have checked it is a number and not a Double).
fn integral(v: &Value) -> i64 {
    match v {
        Value::Int(i) => i64::from(*i),
        Value::Long(l) => *l,
        _ => 0,
    }
}

pub fn time_field(t: Time, name: &str) -> Option<Value> {
    Some(match name {
        "year" => ops::narrow(t.year()),
        "month" => Value::Int(t.month() as i32),
        "dayOfMonth" => Value::Int(t.day_of_month() as i32),
        "dayOfWeek" => Value::Int(t.day_of_week() as i32),
        "dayOfYear" => Value::Int(t.day_of_year() as i32),
        "hour" => Value::Int(t.hour() as i32),
        "minute" => Value::Int(t.minute() as i32),
        "second" => Value::Int(t.second() as i32),
        _ => return None,
    })
}

pub fn date_field(d: Date, name: &str) -> Option<Value> {
    Some(match name {
        "year" => ops::narrow(d.year()),
        "month" => Value::Int(d.month() as i32),
        "dayOfMonth" => Value::Int(d.day_of_month() as i32),
        "dayOfWeek" => Value::Int(d.day_of_week() as i32),
        "dayOfYear" => Value::Int(d.day_of_year() as i32),
        _ => return None,
    })
}

fn recv_time(v: &Value) -> R<Time> {
    match v {
        Value::Time(t) => Ok(*t),
        _ => Err(err(ErrorCode::Internal, "time method called on a non-time")),
    }
}

fn recv_date(v: &Value) -> R<Date> {
    match v {
        Value::Date(d) => Ok(*d),
        _ => Err(err(ErrorCode::Internal, "date method called on a non-date")),
    }
}

pub fn time_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "add" => def("add", exactly(2), |_, r, a| shift(r, &a, true)),
        "subtract" => def("subtract", exactly(2), |_, r, a| shift(r, &a, false)),
        "difference" => def("difference", exactly(2), |_, r, a| {
            let t = recv_time(r)?;
            let Value::Time(start) = &a[0] else {
                return Err(super::params::type_error("start", Ty::Time, &a[0]));
            };
            let unit = time_unit(&a[1])?;
            t.difference(*start, unit).map(ops::narrow).ok_or_else(|| {
                err(
                    ErrorCode::InvalidArgument,
                    "invalid argument `start`: the difference does not fit in a Long",
                )
            })
        }),
        "toMicros" => def("toMicros", exactly(0), |_, r, _| {
            since_epoch(recv_time(r)?.to_micros())
        }),
        "toMillis" => def("toMillis", exactly(0), |_, r, _| {
            since_epoch(recv_time(r)?.to_millis())
        }),
        "toSeconds" => def("toSeconds", exactly(0), |_, r, _| {
            since_epoch(i128::from(recv_time(r)?.secs()))
        }),
        "toString" => def("toString", exactly(0), |_, r, _| {
            Ok(Value::string(recv_time(r)?.to_string()))
        }),
        _ => return None,
    })
}

/// A count since the epoch, narrowed to an Int when it fits (as Fauna's `Value.Number`).
fn since_epoch(n: i128) -> R<Value> {
    i64::try_from(n).map(ops::narrow).map_err(|_| {
        err(
            ErrorCode::InvalidTime,
            "Time is too far from the epoch to count in a Long.",
        )
    })
}

/// `t.add(amount, unit)` (`forward`) or `t.subtract(amount, unit)`.
fn shift(r: &Value, a: &[Value], forward: bool) -> R<Value> {
    let t = recv_time(r)?;
    check(&a[0], "amount", Ty::Number)?;
    let unit = time_unit(&a[1])?;
    let shifted = match (&a[0], forward) {
        (Value::Double(d), true) => t.add_f64(*d, unit),
        (Value::Double(d), false) => t.subtract_f64(*d, unit),
        (n, true) => t.add(integral(n), unit),
        (n, false) => t.subtract(integral(n), unit),
    };
    shifted.map(Value::Time).map_err(range_error)
}

pub fn date_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "add" => def("add", exactly(2), |_, r, a| date_shift(r, &a, true)),
        "subtract" => def("subtract", exactly(2), |_, r, a| date_shift(r, &a, false)),
        "difference" => def("difference", exactly(1), |_, r, a| {
            let d = recv_date(r)?;
            let Value::Date(start) = &a[0] else {
                return Err(super::params::type_error("start", Ty::Date, &a[0]));
            };
            Ok(Value::Long(d.difference(*start)))
        }),
        "toString" => def("toString", exactly(0), |_, r, _| {
            Ok(Value::string(recv_date(r)?.to_string()))
        }),
        _ => return None,
    })
}

/// `d.add(amount, "days")`: Double amounts round as Java's `Math.round` (halves up, NaN to
/// zero).
fn date_shift(r: &Value, a: &[Value], forward: bool) -> R<Value> {
    let d = recv_date(r)?;
    check(&a[0], "amount", Ty::Number)?;
    let unit = str_param(&a[1], "unit")?;
    if !TimeUnit::parse(&unit).is_some_and(TimeUnit::is_date_based) {
        return Err(err(
            ErrorCode::InvalidUnit,
            format!("`{unit}` is not a valid date unit."),
        ));
    }
    let days = match &a[0] {
        Value::Double(x) => testudo_model::num::java_math_round(*x),
        n => integral(n),
    };
    let delta = if forward {
        Some(days)
    } else {
        days.checked_neg()
    };
    let grows = (days >= 0) == forward;
    delta
        .and_then(|n| d.add_days(n))
        .map(Value::Date)
        .ok_or_else(|| date_range_error(grows))
}
