//! Smaller pieces of evaluation: `isa`, `at(ts)` arguments, schema names, logging.

use std::rc::Rc;

use testudo_fql::Span;
use testudo_model::Ts;

use super::value::CollHandle;
use super::{Interp, Module, R, Value, fail};
use crate::api::ErrorCode;
use crate::{keys, schema};

impl Interp<'_> {
    /// `x isa M`.
    pub fn isa(&mut self, v: &Value, m: &Value) -> R<bool> {
        let Value::Module(module) = m else {
            return fail(
                ErrorCode::InvalidArgument,
                format!(
                    "expected value for `isa` of type Module, received {}",
                    m.type_name()
                ),
            );
        };
        Ok(match module {
            Module::Collection(c) => matches!(v, Value::Doc(r) if r.coll == c.id),
            Module::Builtin(name) => match *name {
                "Number" => v.is_number(),
                "Int" => matches!(v, Value::Int(_)),
                "Long" => matches!(v, Value::Long(_)),
                "Double" | "Float" => matches!(v, Value::Double(_)),
                "String" => matches!(v, Value::Str(_)),
                "Boolean" => matches!(v, Value::Bool(_)),
                "Null" => v.is_null(),
                "Array" => matches!(v, Value::Array(_)),
                "Object" => matches!(v, Value::Object(_) | Value::Doc(_) | Value::Module(_)),
                "Struct" => matches!(v, Value::Object(_)),
                "Set" => matches!(v, Value::Set(_)),
                "Time" => matches!(v, Value::Time(_)),
                "TransactionTime" => matches!(v, Value::TxnTime),
                "Date" => matches!(v, Value::Date(_)),
                "ID" => matches!(v, Value::Id(_)),
                "Bytes" => matches!(v, Value::Bytes(_)),
                "Doc" => matches!(v, Value::Doc(_)),
                "Function" => matches!(v, Value::Func(_)),
                other => match schema::system_by_name(other) {
                    Some(coll) => matches!(v, Value::Doc(r) if r.coll == coll),
                    None => false,
                },
            },
        })
    }

    /// The argument of `at(ts)`: a Time (or `TransactionTime()`), not in the future.
    pub fn snapshot_time_arg(&mut self, t: &Value) -> R<Ts> {
        let now = self.now();
        let micros = match t {
            Value::TxnTime => return Ok(now),
            Value::Time(t) => t.to_nanos().div_euclid(1000),
            other => {
                return fail(
                    ErrorCode::TypeMismatch,
                    format!("expected type: Time, received {}", other.type_name()),
                );
            }
        };
        let Ok(micros) = u64::try_from(micros) else {
            return fail(
                ErrorCode::InvalidArgument,
                "`at` time must not be before 1970-01-01T00:00:00Z",
            );
        };
        if micros > now.0 {
            return fail(
                ErrorCode::InvalidArgument,
                "`at` time must not be in the future",
            );
        }
        Ok(Ts(micros))
    }

    /// A name the database's schema gives meaning to: a user collection, else a user
    /// function.
    pub fn schema_value(&self, name: &str) -> Option<Value> {
        if let Some(def) = self.schema.collection(name) {
            let handle = CollHandle {
                id: def.id,
                name: def.name.clone(),
            };
            return Some(Value::Module(Module::Collection(Rc::new(handle))));
        }
        self.schema
            .function(name)
            .map(|def| Value::Func(Rc::new(super::Func::Udf(def.clone()))))
    }

    /// Refuses a destructive schema change in a protected database.
    pub fn refuse_if_protected(&mut self, what: &str) -> R<()> {
        let db = self.db();
        if crate::tenancy::inherited_flag(&mut self.txn, db, "protected", false)? {
            return fail(
                ErrorCode::ConstraintFailure,
                format!("Cannot {what} in a protected database."),
            );
        }
        Ok(())
    }

    /// Marks the database's schema as changed by this transaction.
    pub fn bump_schema(&mut self) {
        self.schema_bumped = true;
        self.txn.put(keys::schema_marker(self.db()), Vec::new());
    }

    /// Appends a `log()`/`dbg()` line, attributed to the call being evaluated.
    pub fn log_line(&mut self, text: String) {
        let line = self.call_span.map_or(1, |s| line_of(&self.source, s));
        self.logs.push(format!("info at *query*:{line}: {text}"));
    }
}

fn line_of(source: &str, span: Span) -> usize {
    let end = (span.start as usize).min(source.len());
    source.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
