//! `Array` methods (reference §4.3).

use super::args::{arg, array_arg, expected, func_arg, int_arg, recv_array, set_value};
use super::{MethodDef, between, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Arity, Interp, NullCause, R, Value, fail, ops};
use crate::set::{self, SetExpr};

/// The most elements an array constructor may produce (Fauna's limit).
pub const MAX_ARRAY: usize = 16_000;

pub fn static_method(name: &str) -> Option<MethodDef> {
    match name {
        "sequence" => Some(def("sequence", exactly(2), |_, _, a| {
            let from = int_arg(&arg(&a, 0), "from")?;
            let until = int_arg(&arg(&a, 1), "until")?;
            let n = until.saturating_sub(from).max(0);
            if n > MAX_ARRAY as i64 {
                return fail(
                    ErrorCode::ValueTooLarge,
                    format!("Array is too large: {n} elements exceeds the limit of {MAX_ARRAY}."),
                );
            }
            Ok(Value::array((from..until).map(ops::narrow).collect()))
        })),
        _ => None,
    }
}

pub fn method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "at" => def("at", exactly(1), at),
        "first" => def("first", exactly(0), |_, r, _| {
            Ok(recv_array(r)?.first().cloned().unwrap_or(empty()))
        }),
        "last" => def("last", exactly(0), |_, r, _| {
            Ok(recv_array(r)?.last().cloned().unwrap_or(empty()))
        }),
        "firstWhere" => def("firstWhere", exactly(1), |it, r, a| find(it, r, &a, false)),
        "lastWhere" => def("lastWhere", exactly(1), |it, r, a| find(it, r, &a, true)),
        "where" => def("where", exactly(1), filter),
        "filter" => def("filter", exactly(1), filter),
        "map" => def("map", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "mapper")?;
            let items = recv_array(r)?;
            let mut out = Vec::with_capacity(items.len());
            for v in items.iter() {
                out.push(it.call_callback(&f, "mapper", vec![v.clone()])?);
            }
            Ok(Value::array(out))
        }),
        "flatMap" => def("flatMap", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "mapper")?;
            let mut out = Vec::new();
            for v in recv_array(r)?.iter() {
                match it.call_callback(&f, "mapper", vec![v.clone()])? {
                    Value::Array(inner) => out.extend(inner.iter().cloned()),
                    other => return Err(expected("mapper", "Array", &other)),
                }
            }
            Ok(Value::array(out))
        }),
        "flatten" => def("flatten", exactly(0), |_, r, _| {
            let mut out = Vec::new();
            for v in recv_array(r)?.iter() {
                match v {
                    Value::Array(inner) => out.extend(inner.iter().cloned()),
                    other => {
                        return fail(
                            ErrorCode::InvalidArgument,
                            format!(
                                "expected all elements to be Array, received {}",
                                other.type_name()
                            ),
                        );
                    }
                }
            }
            Ok(Value::array(out))
        }),
        "forEach" => def("forEach", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "callback")?;
            for v in recv_array(r)?.iter() {
                it.call_callback(&f, "callback", vec![v.clone()])?;
            }
            Ok(Value::Null(NullCause::NoValue))
        }),
        "fold" => def("fold", exactly(2), |it, r, a| {
            fold(it, &recv_array(r)?, &a, false)
        }),
        "foldRight" => def("foldRight", exactly(2), |it, r, a| {
            fold(it, &recv_array(r)?, &a, true)
        }),
        "reduce" => def("reduce", exactly(1), |it, r, a| {
            reduce(it, &recv_array(r)?, &a, false)
        }),
        "reduceRight" => def("reduceRight", exactly(1), |it, r, a| {
            reduce(it, &recv_array(r)?, &a, true)
        }),
        "aggregate" => def("aggregate", exactly(2), |it, r, a| {
            aggregate(it, recv_array(r)?.to_vec(), &a)
        }),
        "any" => def("any", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            for v in recv_array(r)?.iter() {
                if it.predicate(&f, v.clone())? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }),
        "every" => def("every", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            for v in recv_array(r)?.iter() {
                if !it.predicate(&f, v.clone())? {
                    return Ok(Value::Bool(false));
                }
            }
            Ok(Value::Bool(true))
        }),
        "includes" => def("includes", exactly(1), |it, r, a| {
            let x = arg(&a, 0);
            for v in recv_array(r)?.iter() {
                if it.equals(v, &x)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }),
        "isEmpty" => def("isEmpty", exactly(0), |_, r, _| {
            Ok(Value::Bool(recv_array(r)?.is_empty()))
        }),
        "nonEmpty" => def("nonEmpty", exactly(0), |_, r, _| {
            Ok(Value::Bool(!recv_array(r)?.is_empty()))
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
            let mut v = recv_array(r)?.to_vec();
            v.push(arg(&a, 0));
            Ok(Value::array(v))
        }),
        "prepend" => def("prepend", exactly(1), |_, r, a| {
            let mut v = vec![arg(&a, 0)];
            v.extend(recv_array(r)?.iter().cloned());
            Ok(Value::array(v))
        }),
        "concat" => def("concat", exactly(1), |_, r, a| {
            let mut v = recv_array(r)?.to_vec();
            v.extend(array_arg(&arg(&a, 0), "other")?.iter().cloned());
            Ok(Value::array(v))
        }),
        "slice" => def("slice", between(1, 2), |_, r, a| {
            let items = recv_array(r)?;
            let len = items.len() as i64;
            let from = int_arg(&arg(&a, 0), "from")?.clamp(0, len);
            let until = match a.get(1) {
                Some(v) => int_arg(v, "until")?.clamp(0, len),
                None => len,
            };
            Ok(Value::array(if until > from {
                items[from as usize..until as usize].to_vec()
            } else {
                Vec::new()
            }))
        }),
        "take" => def("take", exactly(1), |_, r, a| {
            let items = recv_array(r)?;
            let n = int_arg(&arg(&a, 0), "limit")?;
            if n < 0 {
                return fail(
                    ErrorCode::InvalidBounds,
                    format!("expected `limit` to be non-negative, received {n}"),
                );
            }
            Ok(Value::array(
                items.iter().take(n as usize).cloned().collect(),
            ))
        }),
        "drop" => def("drop", exactly(1), |_, r, a| {
            let items = recv_array(r)?;
            let n = int_arg(&arg(&a, 0), "amount")?;
            if n < 0 {
                return fail(
                    ErrorCode::InvalidBounds,
                    format!("expected `amount` to be non-negative, received {n}"),
                );
            }
            Ok(Value::array(
                items.iter().skip(n as usize).cloned().collect(),
            ))
        }),
        "reverse" => def("reverse", exactly(0), |_, r, _| {
            let mut v = recv_array(r)?.to_vec();
            v.reverse();
            Ok(Value::array(v))
        }),
        "distinct" => def("distinct", exactly(0), |_, r, _| {
            Ok(Value::array(set::distinct(recv_array(r)?.to_vec())))
        }),
        "order" => def("order", Arity::AtLeast(0), |it, r, a| {
            let orderings = super::set::orderings(&a)?;
            Ok(Value::array(set::sort(
                it,
                recv_array(r)?.to_vec(),
                &orderings,
            )?))
        }),
        "entries" => def("entries", exactly(0), |_, r, _| {
            Ok(Value::array(
                recv_array(r)?
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Value::array(vec![ops::narrow(i as i64), v.clone()]))
                    .collect(),
            ))
        }),
        "toSet" => def("toSet", exactly(0), |_, r, _| {
            Ok(set_value(SetExpr::Values(recv_array(r)?)))
        }),
        "toString" => def("toString", exactly(0), |it, r, _| {
            it.display(r).map(Value::string)
        }),
        _ => return None,
    })
}

fn empty() -> Value {
    Value::Null(NullCause::NoSuchElement("an empty array"))
}

fn at(_it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let items = recv_array(r)?;
    let i = int_arg(&arg(&a, 0), "index")?;
    match usize::try_from(i).ok().and_then(|i| items.get(i)) {
        Some(v) => Ok(v.clone()),
        None => fail(
            ErrorCode::IndexOutOfBounds,
            format!("index {i} out of bounds for length {}", items.len()),
        ),
    }
}

fn filter(it: &mut Interp<'_>, r: &Value, a: Vec<Value>) -> R<Value> {
    let f = func_arg(&arg(&a, 0), "predicate")?;
    let mut out = Vec::new();
    for v in recv_array(r)?.iter() {
        if it.predicate(&f, v.clone())? {
            out.push(v.clone());
        }
    }
    Ok(Value::array(out))
}

fn find(it: &mut Interp<'_>, r: &Value, a: &[Value], from_end: bool) -> R<Value> {
    let f = func_arg(&arg(a, 0), "predicate")?;
    let items = recv_array(r)?;
    let order: Box<dyn Iterator<Item = &Value>> = if from_end {
        Box::new(items.iter().rev())
    } else {
        Box::new(items.iter())
    };
    for v in order {
        if it.predicate(&f, v.clone())? {
            return Ok(v.clone());
        }
    }
    Ok(Value::Null(NullCause::NoSuchElement("no matching element")))
}

pub fn fold(it: &mut Interp<'_>, items: &[Value], a: &[Value], right: bool) -> R<Value> {
    let mut acc = arg(a, 0);
    let f = func_arg(&arg(a, 1), "reducer")?;
    if right {
        for v in items.iter().rev() {
            acc = it.call_callback(&f, "reducer", vec![acc, v.clone()])?;
        }
    } else {
        for v in items.iter() {
            acc = it.call_callback(&f, "reducer", vec![acc, v.clone()])?;
        }
    }
    Ok(acc)
}

pub fn reduce(it: &mut Interp<'_>, items: &[Value], a: &[Value], right: bool) -> R<Value> {
    let f = func_arg(&arg(a, 0), "reducer")?;
    let ordered: Vec<&Value> = if right {
        items.iter().rev().collect()
    } else {
        items.iter().collect()
    };
    let mut iter = ordered.into_iter();
    let Some(first) = iter.next() else {
        return Ok(Value::Null(NullCause::NoSuchElement("an empty array")));
    };
    let mut acc = first.clone();
    for v in iter {
        acc = it.call_callback(&f, "reducer", vec![acc, v.clone()])?;
    }
    Ok(acc)
}

/// Combines pairwise in a balanced tree, then with the seed.
pub fn aggregate(it: &mut Interp<'_>, mut items: Vec<Value>, a: &[Value]) -> R<Value> {
    let seed = arg(a, 0);
    let f = func_arg(&arg(a, 1), "combiner")?;
    if items.is_empty() {
        return Ok(seed);
    }
    while items.len() > 1 {
        let mut next = Vec::with_capacity(items.len().div_ceil(2));
        let mut iter = items.into_iter();
        while let Some(x) = iter.next() {
            match iter.next() {
                Some(y) => next.push(it.call_callback(&f, "combiner", vec![x, y])?),
                None => next.push(x),
            }
        }
        items = next;
    }
    let result = items.pop().unwrap_or(Value::NULL);
    it.call_callback(&f, "combiner", vec![result, seed])
}

/// The indexes to search, in search order: from `start` forward, or from `end` backward.
/// An explicit bound must be a valid index.
fn positions(len: usize, bound: Option<&Value>, last: bool) -> R<Vec<usize>> {
    let bound = match bound {
        Some(v) => {
            let b = int_arg(v, if last { "end" } else { "start" })?;
            match usize::try_from(b).ok().filter(|&b| b < len) {
                Some(b) => Some(b),
                None => {
                    return fail(
                        ErrorCode::IndexOutOfBounds,
                        format!("index {b} out of bounds for length {len}"),
                    );
                }
            }
        }
        None => None,
    };
    Ok(if last {
        match bound.or(len.checked_sub(1)) {
            Some(end) => (0..=end).rev().collect(),
            None => Vec::new(),
        }
    } else {
        (bound.unwrap_or(0)..len).collect()
    })
}

fn index_of(it: &mut Interp<'_>, r: &Value, a: &[Value], last: bool) -> R<Value> {
    let items = recv_array(r)?;
    let x = arg(a, 0);
    for i in positions(items.len(), a.get(1), last)? {
        if it.equals(&items[i], &x)? {
            return Ok(ops::narrow(i as i64));
        }
    }
    Ok(Value::Null(NullCause::NoSuchElement("no matching element")))
}

fn index_where(it: &mut Interp<'_>, r: &Value, a: &[Value], last: bool) -> R<Value> {
    let items = recv_array(r)?;
    let f = func_arg(&arg(a, 0), "predicate")?;
    for i in positions(items.len(), a.get(1), last)? {
        if it.predicate(&f, items[i].clone())? {
            return Ok(ops::narrow(i as i64));
        }
    }
    Ok(Value::Null(NullCause::NoSuchElement("no matching element")))
}
