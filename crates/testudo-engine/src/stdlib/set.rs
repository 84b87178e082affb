//! `Set` methods and the `Set` namespace (reference §4.4). Lazy methods build a new set
//! description; eager ones consume the set.

use std::rc::Rc;

use super::args::{arg, expected, func_arg, int_arg, set_arg, str_arg};
use super::{MethodDef, between, def, exactly};
use crate::api::ErrorCode;
use crate::eval::{Arity, Interp, NullCause, Object, R, Value, fail};
use crate::set::{self, Ordering, Pos, SetExpr, SetValue};

pub fn static_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "single" => def("single", exactly(1), |_, _, a| {
            Ok(lazy(
                SetExpr::Values(Rc::new(crate::eval::List::new(vec![arg(&a, 0)]))),
                None,
            ))
        }),
        "sequence" => def("sequence", exactly(2), |_, _, a| {
            let from = int_arg(&arg(&a, 0), "from")?;
            let until = int_arg(&arg(&a, 1), "until")?;
            Ok(lazy(SetExpr::Sequence { from, until }, None))
        }),
        "paginate" => def("paginate", between(1, 2), |it, _, a| {
            let cursor = str_arg(&arg(&a, 0), "cursor")?;
            let restored = it.open_cursor(&cursor)?;
            let size = match a.get(1) {
                Some(v) => set::page_size(int_arg(v, "size")?)?,
                None => restored.page_size,
            };
            let saved = it.read_at.replace(restored.ts);
            let saved_history = if restored.history {
                it.history_at.replace(restored.ts)
            } else {
                it.history_at
            };
            let result = page_object(it, &restored.set, &restored.pos, size);
            it.read_at = saved;
            it.history_at = saved_history;
            result
        }),
        _ => return None,
    })
}

fn lazy(expr: SetExpr, page_size: Option<usize>) -> Value {
    Value::Set(Rc::new(SetValue::with_page_size(Rc::new(expr), page_size)))
}

fn recv_set(v: &Value) -> R<Rc<SetValue>> {
    match v {
        Value::Set(s) => Ok(s.clone()),
        other => Err(expected("this", "Set", other)),
    }
}

/// A lazy method: wraps the receiver's expression, keeping its page size.
fn wrap(r: &Value, build: impl FnOnce(Rc<SetExpr>) -> SetExpr) -> R<Value> {
    let s = recv_set(r)?;
    Ok(lazy(build(s.expr.clone()), s.page_size))
}

pub fn method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "where" => def("where", exactly(1), |_, r, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            wrap(r, |e| SetExpr::Where(e, f))
        }),
        "map" => def("map", exactly(1), |_, r, a| {
            let f = func_arg(&arg(&a, 0), "mapper")?;
            wrap(r, |e| SetExpr::Map(e, f))
        }),
        "flatMap" => def("flatMap", exactly(1), |_, r, a| {
            let f = func_arg(&arg(&a, 0), "mapper")?;
            wrap(r, |e| SetExpr::FlatMap(e, f))
        }),
        "take" => def("take", exactly(1), |_, r, a| {
            let n = non_negative(&arg(&a, 0), "limit")?;
            wrap(r, |e| SetExpr::Take(e, n))
        }),
        "drop" => def("drop", exactly(1), |_, r, a| {
            let n = non_negative(&arg(&a, 0), "amount")?;
            wrap(r, |e| SetExpr::Drop(e, n))
        }),
        "order" => def("order", Arity::AtLeast(0), |_, r, a| {
            let o = orderings(&a)?;
            wrap(r, |e| SetExpr::Order(e, Rc::new(o)))
        }),
        "reverse" => def("reverse", exactly(0), |_, r, _| wrap(r, SetExpr::Reverse)),
        "distinct" => def("distinct", exactly(0), |_, r, _| wrap(r, SetExpr::Distinct)),
        "concat" => def("concat", exactly(1), |_, r, a| {
            let other = set_arg(&arg(&a, 0), "other")?;
            wrap(r, |e| SetExpr::Concat(e, other))
        }),
        "pageSize" => def("pageSize", exactly(1), |_, r, a| {
            let size = set::page_size(int_arg(&arg(&a, 0), "size")?)?;
            let s = recv_set(r)?;
            Ok(Value::Set(Rc::new(SetValue::with_page_size(
                s.expr.clone(),
                Some(size),
            ))))
        }),
        "toSet" => def("toSet", exactly(0), |_, r, _| Ok(r.clone())),
        "toString" => def("toString", exactly(0), |_, _, _| Ok(Value::str("[set]"))),
        "first" => def("first", exactly(0), |it, r, _| {
            let s = recv_set(r)?;
            let mut iter = set::open(&s.expr, &Pos::Start)?;
            Ok(iter.next(it)?.unwrap_or(empty()))
        }),
        "last" => def("last", exactly(0), |it, r, _| {
            let s = recv_set(r)?;
            let mut iter = set::open(&s.expr, &Pos::Start)?;
            let mut last = None;
            while let Some(v) = iter.next(it)? {
                last = Some(v);
            }
            Ok(last.unwrap_or(empty()))
        }),
        "firstWhere" => def("firstWhere", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            let s = recv_set(r)?;
            let mut iter = set::open(&s.expr, &Pos::Start)?;
            while let Some(v) = iter.next(it)? {
                if it.predicate(&f, v.clone())? {
                    return Ok(v);
                }
            }
            Ok(empty())
        }),
        "lastWhere" => def("lastWhere", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            let s = recv_set(r)?;
            let mut iter = set::open(&s.expr, &Pos::Start)?;
            let mut found = None;
            while let Some(v) = iter.next(it)? {
                if it.predicate(&f, v.clone())? {
                    found = Some(v);
                }
            }
            Ok(found.unwrap_or(empty()))
        }),
        "any" => def("any", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            let s = recv_set(r)?;
            let mut iter = set::open(&s.expr, &Pos::Start)?;
            while let Some(v) = iter.next(it)? {
                if it.predicate(&f, v)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }),
        "every" => def("every", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "predicate")?;
            let s = recv_set(r)?;
            let mut iter = set::open(&s.expr, &Pos::Start)?;
            while let Some(v) = iter.next(it)? {
                if !it.predicate(&f, v)? {
                    return Ok(Value::Bool(false));
                }
            }
            Ok(Value::Bool(true))
        }),
        "includes" => def("includes", exactly(1), |it, r, a| {
            let x = arg(&a, 0);
            let s = recv_set(r)?;
            let mut iter = set::open(&s.expr, &Pos::Start)?;
            while let Some(v) = iter.next(it)? {
                if it.equals(&v, &x)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }),
        "isEmpty" => def("isEmpty", exactly(0), |it, r, _| {
            let s = recv_set(r)?;
            Ok(Value::Bool(
                set::open(&s.expr, &Pos::Start)?.next(it)?.is_none(),
            ))
        }),
        "nonEmpty" => def("nonEmpty", exactly(0), |it, r, _| {
            let s = recv_set(r)?;
            Ok(Value::Bool(
                set::open(&s.expr, &Pos::Start)?.next(it)?.is_some(),
            ))
        }),
        "count" => def("count", exactly(0), |it, r, _| {
            let s = recv_set(r)?;
            let mut iter = set::open(&s.expr, &Pos::Start)?;
            let mut n: i64 = 0;
            while iter.next(it)?.is_some() {
                n += 1;
            }
            Ok(crate::eval::ops::narrow(n))
        }),
        "fold" => def("fold", exactly(2), |it, r, a| {
            let items = set::to_vec(it, &recv_set(r)?.expr)?;
            super::array::fold(it, &items, &a, false)
        }),
        "foldRight" => def("foldRight", exactly(2), |it, r, a| {
            let items = set::to_vec(it, &recv_set(r)?.expr)?;
            super::array::fold(it, &items, &a, true)
        }),
        "reduce" => def("reduce", exactly(1), |it, r, a| {
            let items = set::to_vec(it, &recv_set(r)?.expr)?;
            super::array::reduce(it, &items, &a, false)
        }),
        "reduceRight" => def("reduceRight", exactly(1), |it, r, a| {
            let items = set::to_vec(it, &recv_set(r)?.expr)?;
            super::array::reduce(it, &items, &a, true)
        }),
        "aggregate" => def("aggregate", exactly(2), |it, r, a| {
            let items = set::to_vec(it, &recv_set(r)?.expr)?;
            super::array::aggregate(it, items, &a)
        }),
        "forEach" => def("forEach", exactly(1), |it, r, a| {
            let f = func_arg(&arg(&a, 0), "callback")?;
            // Gather first: the callback may write to the collection being iterated.
            let items = set::to_vec(it, &recv_set(r)?.expr)?;
            for v in items {
                it.call_callback(&f, "callback", vec![v])?;
            }
            Ok(Value::Null(NullCause::NoValue))
        }),
        "toArray" => def("toArray", exactly(0), |it, r, _| {
            Ok(Value::array(set::to_vec(it, &recv_set(r)?.expr)?))
        }),
        "paginate" => def("paginate", between(0, 1), |it, r, a| {
            let s = recv_set(r)?;
            let size = match a.first() {
                Some(v) => set::page_size(int_arg(v, "size")?)?,
                None => s.page_size.unwrap_or(set::DEFAULT_PAGE_SIZE),
            };
            page_object(it, &s, &Pos::Start, size)
        }),
        "eventSource" | "toStream" | "eventsOn" | "changesOn" => {
            def("eventSource", Arity::AtLeast(0), |_, _, _| {
                fail(
                    ErrorCode::DisabledFeature,
                    "Event sources are not supported by this server yet.",
                )
            })
        }
        _ => return None,
    })
}

fn empty() -> Value {
    Value::Null(NullCause::NoSuchElement("an empty set"))
}

fn non_negative(v: &Value, param: &str) -> R<u64> {
    let n = int_arg(v, param)?;
    u64::try_from(n).map_err(|_| {
        crate::eval::err(
            ErrorCode::InvalidBounds,
            format!("expected `{param}` to be non-negative, received {n}"),
        )
    })
}

/// `{ data: [...], after?: "<cursor>" }` for a page of `s` starting at `start`.
pub fn page_object(it: &mut Interp<'_>, s: &SetValue, start: &Pos, size: usize) -> R<Value> {
    let page = set::page(it, &s.expr, start, size)?;
    let mut out = Object::with_capacity(2);
    out.insert("data".into(), Value::array(page.data));
    if let Some(pos) = page.after {
        let cursor = it.seal_cursor(s, &pos, size)?;
        out.insert("after".into(), Value::string(cursor));
    }
    Ok(Value::object(out))
}

/// Parses `order()` arguments: accessor functions (ascending), or `asc(f)` / `desc(f)`.
pub fn orderings(args: &[Value]) -> R<Vec<Ordering>> {
    let mut out = Vec::with_capacity(args.len());
    for a in args {
        out.push(match a {
            Value::Func(f) => Ordering {
                key: Some(f.clone()),
                descending: false,
            },
            Value::Object(o) if o.len() == 1 => {
                let (dir, f) = o
                    .iter()
                    .next()
                    .map(|(k, v)| (k.as_str(), v))
                    .unwrap_or(("", a));
                let descending = match dir {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(expected("ordering", "Function | Ordering", a)),
                };
                let key = match f {
                    Value::Func(f) => Some(f.clone()),
                    Value::Null(_) => None,
                    other => return Err(expected("ordering", "Function", other)),
                };
                Ordering { key, descending }
            }
            other => return Err(expected("ordering", "Function | Ordering", other)),
        });
    }
    Ok(out)
}
