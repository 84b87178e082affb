//! The FQL standard library: one module per type or namespace, each exposing a method table
//! (`method(name)`), fields (`field`), and for namespaces their static functions.
//!
//! Lookups are static `match`es on the name: no allocation, no registry to initialize.

pub mod access;
pub mod access_provider;
pub mod args;
pub mod array;
pub mod backup;
pub mod bytes;
pub mod collection;
pub mod database;
pub mod document;
pub mod function;
pub mod global;
pub mod math;
pub mod object;
pub mod params;
pub mod query;
pub mod role;
pub mod set;
pub mod string;
pub mod system;
pub mod time;

use std::rc::Rc;

use crate::api::ErrorCode;
use crate::eval::value::NativeImpl;
use crate::eval::{Arity, Func, Interp, Module, Native, R, Value, fail};

/// A method or function: its FQL name, how many arguments it takes, and its code.
#[derive(Clone, Copy)]
pub struct MethodDef {
    pub name: &'static str,
    pub arity: Arity,
    pub imp: NativeImpl,
}

pub const fn def(name: &'static str, arity: Arity, imp: NativeImpl) -> MethodDef {
    MethodDef { name, arity, imp }
}

pub const fn exactly(n: usize) -> Arity {
    Arity::Exactly(n)
}

pub const fn between(lo: usize, hi: usize) -> Arity {
    Arity::Between(lo, hi)
}

/// The method `name` of a value's type.
pub fn method(recv: &Value, name: &str) -> Option<MethodDef> {
    match recv {
        Value::Str(_) => string::method(name),
        Value::Array(_) => array::method(name),
        Value::Set(_) => set::method(name),
        Value::Doc(r) if r.coll == crate::schema::CREDENTIAL => {
            access::credential_method(name).or_else(|| document::method(name))
        }
        Value::Doc(_) => document::method(name),
        Value::Time(_) => time::time_method(name),
        Value::Date(_) => time::date_method(name),
        Value::Module(m) => module_method(m, name),
        Value::Object(_) => None,
        Value::Bytes(_) => bytes::method(name),
        Value::Null(_)
        | Value::Bool(_)
        | Value::Int(_)
        | Value::Long(_)
        | Value::Double(_)
        | Value::Id(_)
        | Value::Func(_)
        | Value::TxnTime => scalar_method(recv, name),
    }
}

fn scalar_method(recv: &Value, name: &str) -> Option<MethodDef> {
    match (recv, name) {
        (_, "toString") => Some(def("toString", exactly(0), to_string)),
        _ => None,
    }
}

fn to_string(it: &mut Interp<'_>, recv: &Value, _args: Vec<Value>) -> R<Value> {
    it.display(recv).map(Value::string)
}

fn module_method(m: &Module, name: &str) -> Option<MethodDef> {
    match m {
        Module::Collection(_) => collection::user_collection_method(name),
        Module::Builtin(module) => match *module {
            "Math" => math::method(name),
            "Time" => time::time_static(name),
            "Date" => time::date_static(name),
            "Set" => set::static_method(name),
            "Array" => array::static_method(name),
            "Object" => object::static_method(name),
            "Bytes" => bytes::static_method(name),
            "Query" => query::method(name),
            "Collection" => collection::collection_module_method(name),
            "Function" => function::function_module_method(name),
            "Role" => role::role_module_method(name),
            "AccessProvider" => access_provider::module_method(name),
            "Database" => database::database_module_method(name),
            "Backup" => backup::module_method(name),
            "Key" => access::key_module_method(name),
            "Token" => access::token_module_method(name),
            "Credential" => access::credential_module_method(name),
            _ => None,
        }
        .or_else(|| (name == "toString").then_some(def("toString", exactly(0), module_to_string))),
    }
}

fn module_to_string(_it: &mut Interp<'_>, recv: &Value, _args: Vec<Value>) -> R<Value> {
    match recv {
        Value::Module(m) => Ok(Value::str(m.name())),
        _ => Ok(Value::NULL),
    }
}

/// A field of a non-struct, non-document value (`"abc".length`, `Math.PI`, `t.year`).
pub fn field(it: &mut Interp<'_>, recv: &Value, name: &str) -> R<Option<Value>> {
    Ok(match recv {
        Value::Str(s) if name == "length" => Some(Value::Int(len_i32(s.chars().count()))),
        Value::Array(a) if name == "length" => Some(Value::Int(len_i32(a.len()))),
        Value::Time(t) => time::time_field(*t, name),
        Value::Date(d) => time::date_field(*d, name),
        Value::Module(Module::Builtin("Math")) => math::field(name),
        Value::Module(Module::Collection(c)) if name == "definition" => {
            Some(collection::definition_of(c.id))
        }
        Value::Func(f) => function::udf_field(f, name),
        Value::Module(_) | Value::Set(_) => None,
        _ => {
            let _ = it;
            None
        }
    })
}

fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Calling a module as a function (`Time("...")`, `ID(1)`, `Product("123")`).
pub fn module_apply(it: &mut Interp<'_>, m: &Module, args: Vec<Value>) -> R<Value> {
    match m {
        Module::Collection(c) => collection::by_id(it, c, args),
        Module::Builtin(name) => match *name {
            "Time" => time::time_apply(it, args),
            "Date" => time::date_apply(it, args),
            "ID" => global::id_apply(it, args),
            "Bytes" => bytes::apply(it, args),
            "TransactionTime" => {
                crate::eval::check_arity(Arity::Exactly(0), args.len())?;
                Ok(Value::TxnTime)
            }
            "Collection" => collection::collection_apply(it, args),
            "Function" => function::function_apply(it, args),
            other => fail(
                ErrorCode::TypeMismatch,
                format!("`{other}` is not a function."),
            ),
        },
    }
}

/// Modules every query can name.
const BUILTIN_MODULES: &[&str] = &[
    "Array",
    "Boolean",
    "Bytes",
    "Date",
    "ID",
    "Doc",
    "Math",
    "Null",
    "Number",
    "Int",
    "Long",
    "Double",
    "Float",
    "Object",
    "Set",
    "SetCursor",
    "EventSource",
    "String",
    "Struct",
    "Time",
    "TransactionTime",
    "UUID",
    "Query",
    "Collection",
    "Function",
    "Role",
    "AccessProvider",
    "Database",
    "Backup",
    "Key",
    "Credential",
    "Token",
    "FQL",
];

/// Testudo's own modules, beyond Fauna's. A Fauna application may already have a collection
/// or a function of one of these names, so they are not reserved, and wherever a name is
/// resolved the database's schema is asked first ([`is_extension_module`]).
const EXTENSION_MODULES: &[&str] = &["Backup"];

/// Is `name` one of Testudo's own modules, which a schema name of the same spelling hides?
pub fn is_extension_module(name: &str) -> bool {
    EXTENSION_MODULES.contains(&name)
}

/// A built-in global: a module or a global function.
pub fn global(name: &str) -> Option<Value> {
    if let Some(m) = BUILTIN_MODULES.iter().find(|m| **m == name) {
        return Some(Value::Module(Module::Builtin(m)));
    }
    if name == "Credentials" {
        return Some(Value::Module(Module::Builtin("Credential")));
    }
    if name == "Float" {
        return Some(Value::Module(Module::Builtin("Double")));
    }
    global::function(name).map(|m| {
        Value::Func(Rc::new(Func::Native(Native {
            name: m.name,
            recv: Value::NULL,
            arity: m.arity,
            imp: m.imp,
        })))
    })
}

/// Is `name` taken by the language or the standard library (and so unusable as a
/// collection or function name)?
pub fn is_reserved_name(name: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "if", "else", "at", "match", "case", "let", "null", "true", "false", "isa", "join", "on",
        "of", "FQL", "_",
    ];
    const TYPES: &[&str] = &[
        "Any",
        "Never",
        "struct",
        "interface",
        "type",
        "function",
        "collection",
    ];
    const OTHER: &[&str] = &[
        "Credentials",
        "Float",
        "Ref",
        "NullDoc",
        "Tuple",
        "double",
        "int",
        "long",
        "string",
        "boolean",
        "number",
    ];
    KEYWORDS.contains(&name)
        || TYPES.contains(&name)
        || OTHER.contains(&name)
        || (BUILTIN_MODULES.contains(&name) && !is_extension_module(name))
        || global::function(name).is_some()
}
