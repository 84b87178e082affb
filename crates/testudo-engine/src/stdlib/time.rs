//! `Time` and `Date` (reference §4.6).

use testudo_model::time::TimeUnit;
use testudo_model::{Date, Time};

use super::args::{arg, expected, int_arg, num_arg, str_arg};
use super::{MethodDef, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Interp, R, Value, fail, ops};

pub fn time_static(name: &str) -> Option<MethodDef> {
    Some(match name {
        "now" => def("now", exactly(0), |it, _, _| {
            Ok(Value::Time(it.now().to_time()))
        }),
        "fromString" => def("fromString", exactly(1), |it, _, a| time_apply(it, a)),
        "epoch" => def("epoch", exactly(2), |_, _, a| {
            let n = int_arg(&arg(&a, 0), "offset")?;
            let unit = time_unit(&arg(&a, 1))?;
            Time::epoch(n, unit)
                .map(Value::Time)
                .ok_or_else(out_of_range)
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

pub fn time_apply(_it: &mut Interp<'_>, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(exactly(1), args.len())?;
    let s = str_arg(&arg(&args, 0), "time")?;
    Time::parse(&s).map(Value::Time).ok_or_else(|| {
        crate::eval::err(
            ErrorCode::InvalidTime,
            format!("`{s}` is not a valid time."),
        )
    })
}

pub fn date_apply(_it: &mut Interp<'_>, args: Vec<Value>) -> R<Value> {
    crate::eval::check_arity(exactly(1), args.len())?;
    let s = str_arg(&arg(&args, 0), "date")?;
    Date::parse(&s).map(Value::Date).ok_or_else(|| {
        crate::eval::err(
            ErrorCode::InvalidDate,
            format!("`{s}` is not a valid date."),
        )
    })
}

fn out_of_range() -> Box<crate::eval::EvalError> {
    crate::eval::err(
        ErrorCode::InvalidTime,
        "Time is out of the supported range.",
    )
}

fn time_unit(v: &Value) -> R<TimeUnit> {
    let s = str_arg(v, "unit")?;
    TimeUnit::parse(&s).ok_or_else(|| {
        crate::eval::err(
            ErrorCode::InvalidUnit,
            format!("`{s}` is not a valid time unit."),
        )
    })
}

fn date_unit(v: &Value) -> R<()> {
    let s = str_arg(v, "unit")?;
    match &*s {
        "day" | "days" => Ok(()),
        _ => fail(
            ErrorCode::InvalidUnit,
            format!("`{s}` is not a valid date unit."),
        ),
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
        other => Err(expected("this", "Time", other)),
    }
}

fn recv_date(v: &Value) -> R<Date> {
    match v {
        Value::Date(d) => Ok(*d),
        other => Err(expected("this", "Date", other)),
    }
}

pub fn time_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "add" => def("add", exactly(2), |_, r, a| shift(r, &a, 1)),
        "subtract" => def("subtract", exactly(2), |_, r, a| shift(r, &a, -1)),
        "difference" => def("difference", exactly(2), |_, r, a| {
            let t = recv_time(r)?;
            let start = match arg(&a, 0) {
                Value::Time(s) => s,
                other => return Err(expected("start", "Time", &other)),
            };
            let unit = time_unit(&arg(&a, 1))?;
            t.difference(start, unit)
                .map(Value::Long)
                .ok_or_else(out_of_range)
        }),
        "toMicros" => def("toMicros", exactly(0), |_, r, _| since_epoch(r, 1_000)),
        "toMillis" => def("toMillis", exactly(0), |_, r, _| since_epoch(r, 1_000_000)),
        "toSeconds" => def("toSeconds", exactly(0), |_, r, _| {
            since_epoch(r, 1_000_000_000)
        }),
        "toString" => def("toString", exactly(0), |_, r, _| {
            Ok(Value::string(recv_time(r)?.to_string()))
        }),
        _ => return None,
    })
}

fn since_epoch(r: &Value, nanos_per_unit: i128) -> R<Value> {
    let n = recv_time(r)?.to_nanos().div_euclid(nanos_per_unit);
    i64::try_from(n)
        .map(Value::Long)
        .map_err(|_| out_of_range())
}

fn shift(r: &Value, a: &[Value], sign: i64) -> R<Value> {
    let t = recv_time(r)?;
    let n = int_arg(&arg(a, 0), "amount")?;
    let unit = time_unit(&arg(a, 1))?;
    let n = n.checked_mul(sign).ok_or_else(out_of_range)?;
    t.add(n, unit).map(Value::Time).map_err(|_| out_of_range())
}

pub fn date_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "add" => def("add", exactly(2), |_, r, a| date_shift(r, &a, 1)),
        "subtract" => def("subtract", exactly(2), |_, r, a| date_shift(r, &a, -1)),
        "difference" => def("difference", exactly(1), |_, r, a| {
            let d = recv_date(r)?;
            let start = match arg(&a, 0) {
                Value::Date(s) => s,
                other => return Err(expected("start", "Date", &other)),
            };
            Ok(Value::Long(d.days() - start.days()))
        }),
        "toString" => def("toString", exactly(0), |_, r, _| {
            Ok(Value::string(recv_date(r)?.to_string()))
        }),
        _ => return None,
    })
}

fn date_shift(r: &Value, a: &[Value], sign: i64) -> R<Value> {
    let d = recv_date(r)?;
    date_unit(&arg(a, 1))?;
    let n = num_arg(&arg(a, 0), "amount")?.round();
    if !n.is_finite() || n.abs() > 1e15 {
        return Err(out_of_range());
    }
    let days = (n as i64).checked_mul(sign).ok_or_else(out_of_range)?;
    d.add_days(days).map(Value::Date).ok_or_else(|| {
        crate::eval::err(
            ErrorCode::InvalidDate,
            "Date is out of the supported range.",
        )
    })
}
