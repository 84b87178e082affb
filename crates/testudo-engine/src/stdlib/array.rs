//! `Array` methods and `Array.sequence` (reference §4.3), with Fauna's signatures, edge cases
//! and messages.
//!
//! **Invariants:** a callback's arity is checked before the first element is visited (so an
//! empty array reports a wrong callback too, as Fauna does); predicates must return a
//! Boolean or null; index arguments are checked, `slice` clamps; constructors build at most
//! [`MAX_ARRAY`] elements. Array callbacks may write (arrays are eager), unlike the lazy set
//! callbacks.

use std::rc::Rc;

use super::params::{Ty, func_param, int_param, out_of_bounds, overload, type_error};
use super::{MethodDef, between, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Arity, Func, Interp, List, NullCause, R, Value, err, fail, ops};
use crate::set::{self, SetExpr};

/// The most elements an array constructor may produce (Fauna's limit).
pub const MAX_ARRAY: usize = 16_000;

pub fn static_method(name: &str) -> Option<MethodDef> {
    match name {
        "sequence" => Some(def("sequence", exactly(2), |_, _, a| {
            let from = int_param(&a[0], "from")?;
            let until = int_param(&a[1], "until")?;
            let n = (i64::from(until) - i64::from(from)).max(0);
            if n > MAX_ARRAY as i64 {
                return fail(
                    ErrorCode::ValueTooLarge,
                    format!("Value too large: range size {n} exceeds limit {MAX_ARRAY}."),
                );
            }
            Ok(Value::array((from..until).map(Value::Int).collect()))
        })),
        _ => None,
    }
}

pub fn method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "at" => def("at", exactly(1), |_, r, a| {
            let items = recv(r)?;
            let i = index(&items, &a[0], "index")?;
            Ok(items[i].clone())
        }),
        "first" => def("first", exactly(0), |_, r, _| {
            Ok(recv(r)?.first().cloned().unwrap_or_else(empty))
        }),
        "last" => def("last", exactly(0), |_, r, _| {
            Ok(recv(r)?.last().cloned().unwrap_or_else(empty))
        }),
        "firstWhere" => def("firstWhere", exactly(1), |it, r, a| {
            let kept = filter(it, &recv(r)?, &a[0], "pred")?;
            Ok(kept.into_iter().next().unwrap_or_else(not_found))
        }),
        "lastWhere" => def("lastWhere", exactly(1), |it, r, a| {
            let kept = filter(it, &recv(r)?, &a[0], "pred")?;
            Ok(kept.into_iter().next_back().unwrap_or_else(not_found))
        }),
        "where" => def("where", exactly(1), |it, r, a| {
            filter(it, &recv(r)?, &a[0], "pred").map(Value::array)
        }),
        "filter" => def("filter", exactly(1), |it, r, a| {
            filter(it, &recv(r)?, &a[0], "predicate").map(Value::array)
        }),
        "map" => def("map", exactly(1), |it, r, a| {
            let f = callback(&a[0], "mapper", 1)?;
            let items = recv(r)?;
            let mut out = Vec::with_capacity(items.len());
            for v in items.iter() {
                out.push(it.call_func(&f, vec![v.clone()])?);
            }
            Ok(Value::array(out))
        }),
        "flatMap" => def("flatMap", exactly(1), |it, r, a| {
            let f = callback(&a[0], "mapper", 1)?;
            let mut out = Vec::new();
            for v in recv(r)?.iter() {
                match it.call_func(&f, vec![v.clone()])? {
                    Value::Array(inner) => out.extend(inner.iter().cloned()),
                    other => return Err(not_an_array(&other)),
                }
            }
            Ok(Value::array(out))
        }),
        "flatten" => def("flatten", exactly(0), |_, r, _| {
            let mut out = Vec::new();
            for v in recv(r)?.iter() {
                match v {
                    Value::Array(inner) => out.extend(inner.iter().cloned()),
                    other => return Err(not_an_array(other)),
                }
            }
            Ok(Value::array(out))
        }),
        "forEach" => def("forEach", exactly(1), |it, r, a| {
            let f = callback(&a[0], "fn", 1)?;
            for v in recv(r)?.iter() {
                it.call_func(&f, vec![v.clone()])?;
            }
            Ok(Value::Null(NullCause::NoValue))
        }),
        "fold" => def("fold", exactly(2), |it, r, a| {
            fold(it, &recv(r)?, &a, false)
        }),
        "foldRight" => def("foldRight", exactly(2), |it, r, a| {
            fold(it, &recv(r)?, &a, true)
        }),
        "reduce" => def("reduce", exactly(1), |it, r, a| {
            reduce(it, &recv(r)?, &a, false)
        }),
        "reduceRight" => def("reduceRight", exactly(1), |it, r, a| {
            reduce(it, &recv(r)?, &a, true)
        }),
        "aggregate" => def("aggregate", exactly(2), |it, r, a| {
            aggregate(it, recv(r)?.to_vec(), &a)
        }),
        "any" => def("any", exactly(1), |it, r, a| {
            let f = callback(&a[0], "predicate", 1)?;
            for v in recv(r)?.iter() {
                if test(it, &f, v)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }),
        "every" => def("every", exactly(1), |it, r, a| {
            let f = callback(&a[0], "predicate", 1)?;
            for v in recv(r)?.iter() {
                if !test(it, &f, v)? {
                    return Ok(Value::Bool(false));
                }
            }
            Ok(Value::Bool(true))
        }),
        "includes" => def("includes", exactly(1), |it, r, a| {
            for v in recv(r)?.iter() {
                if it.equals(v, &a[0])? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }),
        "isEmpty" => def("isEmpty", exactly(0), |_, r, _| {
            Ok(Value::Bool(recv(r)?.is_empty()))
        }),
        "nonEmpty" => def("nonEmpty", exactly(0), |_, r, _| {
            Ok(Value::Bool(!recv(r)?.is_empty()))
        }),
        "indexOf" => def("indexOf", between(1, 2), |it, r, a| {
            index_of(it, r, &a, false)
        }),
        "lastIndexOf" => def("lastIndexOf", between(1, 2), |it, r, a| {
            index_of(it, r, &a, true)
        }),
        "indexWhere" => def("indexWhere", between(1, 2), |it, r, a| {
            index_where(it, r, &a, false)
        }),
        "lastIndexWhere" => def("lastIndexWhere", between(1, 2), |it, r, a| {
            index_where(it, r, &a, true)
        }),
        "append" => def("append", exactly(1), |_, r, a| {
            let mut v = recv(r)?.to_vec();
            v.push(a[0].clone());
            Ok(Value::array(v))
        }),
        "prepend" => def("prepend", exactly(1), |_, r, a| {
            let items = recv(r)?;
            let mut v = Vec::with_capacity(items.len() + 1);
            v.push(a[0].clone());
            v.extend(items.iter().cloned());
            Ok(Value::array(v))
        }),
        "concat" => def("concat", exactly(1), |_, r, a| {
            let Value::Array(other) = &a[0] else {
                return Err(type_error("other", Ty::Array, &a[0]));
            };
            let mut v = recv(r)?.to_vec();
            v.extend(other.iter().cloned());
            Ok(Value::array(v))
        }),
        "slice" => def("slice", between(1, 2), |_, r, a| {
            overload("slice", &a, &[&[Ty::Int], &[Ty::Int, Ty::Int]])?;
            let items = recv(r)?;
            let clamp = |i: i32| usize::try_from(i).unwrap_or(0).min(items.len());
            let from = clamp(int_param(&a[0], "from")?);
            let until = match a.get(1) {
                Some(v) => clamp(int_param(v, "until")?),
                None => items.len(),
            };
            Ok(Value::array(
                items
                    .get(from..until)
                    .map(<[Value]>::to_vec)
                    .unwrap_or_default(),
            ))
        }),
        "take" => def("take", exactly(1), |_, r, a| {
            let items = recv(r)?;
            let n = int_param(&a[0], "limit")?;
            // A negative limit takes nothing (Scala's `take`, which Fauna calls).
            let n = usize::try_from(n).unwrap_or(0);
            Ok(Value::array(items.iter().take(n).cloned().collect()))
        }),
        "drop" => def("drop", exactly(1), |_, r, a| {
            let items = recv(r)?;
            // A negative amount drops nothing (Scala's `drop`, which Fauna calls).
            let n = usize::try_from(int_param(&a[0], "amount")?).unwrap_or(0);
            Ok(Value::array(items.iter().skip(n).cloned().collect()))
        }),
        "reverse" => def("reverse", exactly(0), |_, r, _| {
            let mut v = recv(r)?.to_vec();
            v.reverse();
            Ok(Value::array(v))
        }),
        "distinct" => def("distinct", exactly(0), |_, r, _| {
            Ok(Value::array(set::distinct(recv(r)?.to_vec())))
        }),
        "order" => def("order", Arity::AtLeast(0), |it, r, a| {
            let orderings = super::set::orderings(&a)?;
            Ok(Value::array(set::sort(it, recv(r)?.to_vec(), &orderings)?))
        }),
        "entries" => def("entries", exactly(0), |_, r, _| {
            Ok(Value::array(
                recv(r)?
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Value::array(vec![ops::narrow(i as i64), v.clone()]))
                    .collect(),
            ))
        }),
        "toSet" => def("toSet", exactly(0), |_, r, _| {
            Ok(super::args::set_value(SetExpr::Values(recv(r)?)))
        }),
        "toString" => def("toString", exactly(0), |it, r, _| {
            it.display(r).map(Value::string)
        }),
        _ => return None,
    })
}

fn recv(v: &Value) -> R<Rc<List>> {
    super::args::recv_array(v)
}

fn empty() -> Value {
    Value::Null(NullCause::NoSuchElement("empty array"))
}

fn not_found() -> Value {
    Value::Null(NullCause::NoSuchElement("no element found"))
}

fn not_an_array(v: &Value) -> Box<crate::eval::EvalError> {
    err(
        ErrorCode::TypeMismatch,
        format!("expected type: Array<Any>, received {}", v.type_name()),
    )
}

/// A valid index into `items` (`0 <= i < length`).
fn index(items: &[Value], v: &Value, param: &str) -> R<usize> {
    let i = int_param(v, param)?;
    usize::try_from(i)
        .ok()
        .filter(|&i| i < items.len())
        .ok_or_else(|| out_of_bounds(i64::from(i), items.len()))
}

/// A callback argument that can take `n` arguments, checked before any element is visited
/// ("`mapper` should accept 1 parameter, provided function requires 2 parameters.").
pub fn callback(v: &Value, param: &str, n: usize) -> R<Rc<Func>> {
    let f = func_param(v, param)?;
    let arity = crate::eval::func_arity(&f);
    if !arity.accepts(n) {
        let s = |k: usize| if k == 1 { "" } else { "s" };
        let requires = match arity {
            Arity::Exactly(k) => format!("{k} parameter{}", s(k)),
            Arity::AtLeast(k) => format!("at least {k} parameter{}", s(k)),
            Arity::Between(lo, hi) => format!("between {lo} and {hi} parameters"),
        };
        return fail(
            ErrorCode::InvalidArgument,
            format!(
                "`{param}` should accept {n} parameter{}, provided function requires {requires}.",
                s(n)
            ),
        );
    }
    Ok(f)
}

/// Runs a predicate: `true`, or `false`/`null` for false; anything else is a type error.
fn test(it: &mut Interp<'_>, f: &Rc<Func>, v: &Value) -> R<bool> {
    match it.call_func(f, vec![v.clone()])? {
        Value::Bool(b) => Ok(b),
        Value::Null(_) => Ok(false),
        other => fail(
            ErrorCode::TypeMismatch,
            format!("expected type: Boolean, received {}", other.type_name()),
        ),
    }
}

/// The elements a predicate keeps. Every element is tested, as in Fauna (`firstWhere` too).
fn filter(it: &mut Interp<'_>, items: &[Value], pred: &Value, param: &str) -> R<Vec<Value>> {
    let f = callback(pred, param, 1)?;
    let mut out = Vec::new();
    for v in items {
        if test(it, &f, v)? {
            out.push(v.clone());
        }
    }
    Ok(out)
}

pub fn fold(it: &mut Interp<'_>, items: &[Value], a: &[Value], right: bool) -> R<Value> {
    let mut acc = a[0].clone();
    let f = callback(&a[1], "reducer", 2)?;
    if right {
        for v in items.iter().rev() {
            acc = it.call_func(&f, vec![acc, v.clone()])?;
        }
    } else {
        for v in items {
            acc = it.call_func(&f, vec![acc, v.clone()])?;
        }
    }
    Ok(acc)
}

pub fn reduce(it: &mut Interp<'_>, items: &[Value], a: &[Value], right: bool) -> R<Value> {
    let f = callback(&a[0], "reducer", 2)?;
    let mut ordered: Box<dyn Iterator<Item = &Value>> = if right {
        Box::new(items.iter().rev())
    } else {
        Box::new(items.iter())
    };
    let Some(first) = ordered.next() else {
        return Ok(empty());
    };
    let mut acc = first.clone();
    for v in ordered {
        acc = it.call_func(&f, vec![acc, v.clone()])?;
    }
    Ok(acc)
}

/// Combines pairwise in a balanced tree, then with the seed; the seed alone when empty.
pub fn aggregate(it: &mut Interp<'_>, mut items: Vec<Value>, a: &[Value]) -> R<Value> {
    let seed = a[0].clone();
    let f = callback(&a[1], "combiner", 2)?;
    if items.is_empty() {
        return Ok(seed);
    }
    while items.len() > 1 {
        let mut next = Vec::with_capacity(items.len().div_ceil(2));
        let mut iter = items.into_iter();
        while let Some(x) = iter.next() {
            match iter.next() {
                Some(y) => next.push(it.call_func(&f, vec![x, y])?),
                None => next.push(x),
            }
        }
        items = next;
    }
    let result = items.pop().unwrap_or(Value::NULL);
    it.call_func(&f, vec![result, seed])
}

/// The indexes to search, in search order: from `start` forward, or from `end` backward.
/// An explicit bound must be a valid index.
fn positions(items: &[Value], bound: Option<&Value>, last: bool) -> R<Vec<usize>> {
    let bound = match bound {
        Some(v) => Some(index(items, v, if last { "end" } else { "start" })?),
        None => None,
    };
    Ok(if last {
        match bound.or(items.len().checked_sub(1)) {
            Some(end) => (0..=end).rev().collect(),
            None => Vec::new(),
        }
    } else {
        (bound.unwrap_or(0)..items.len()).collect()
    })
}

fn index_of(it: &mut Interp<'_>, r: &Value, a: &[Value], last: bool) -> R<Value> {
    let name = if last { "lastIndexOf" } else { "indexOf" };
    overload(name, a, &[&[Ty::Any], &[Ty::Any, Ty::Int]])?;
    let items = recv(r)?;
    for i in positions(&items, a.get(1), last)? {
        if it.equals(&items[i], &a[0])? {
            return Ok(ops::narrow(i as i64));
        }
    }
    Ok(not_found())
}

fn index_where(it: &mut Interp<'_>, r: &Value, a: &[Value], last: bool) -> R<Value> {
    let name = if last { "lastIndexWhere" } else { "indexWhere" };
    overload(name, a, &[&[Ty::Func], &[Ty::Func, Ty::Int]])?;
    let items = recv(r)?;
    let order = positions(&items, a.get(1), last)?;
    let f = callback(&a[0], "predicate", 1)?;
    for i in order {
        if test(it, &f, &items[i])? {
            return Ok(ops::narrow(i as i64));
        }
    }
    Ok(not_found())
}
