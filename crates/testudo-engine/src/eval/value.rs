//! Runtime values of the evaluator.
//!
//! A `Value` lives for one query on one thread, so heap parts are `Rc`-shared and cloning is
//! cheap. Documents are lazy references: reading happens when a field is touched or the value
//! is materialized, always through the query's transaction.

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use indexmap::IndexMap;
use testudo_fql::ast;
use testudo_model::{CollId, Date, DocId, Time};

use super::env::Env;
use crate::set::SetValue;

/// The deepest a value may nest (arrays, structs, closures, sets within each other). Every
/// walk over a value (drop, comparison, display, encoding) recurses at most this deep, so a
/// query cannot build a value that crashes the thread that touches it.
pub const MAX_VALUE_DEPTH: u32 = 1024;

/// An array's elements, with the nesting depth computed when it was built.
#[derive(Clone, Default)]
pub struct List {
    items: Vec<Value>,
    depth: u32,
}

impl List {
    pub fn new(items: Vec<Value>) -> List {
        let depth = 1 + items.iter().map(Value::depth).max().unwrap_or(0);
        List { items, depth }
    }

    pub fn depth(&self) -> u32 {
        self.depth
    }
}

/// A struct's fields, in insertion order. Its depth is computed when it is wrapped into a
/// [`Value`] (`Value::object`), after the fields are all in.
#[derive(Clone, Default)]
pub struct Object {
    map: IndexMap<String, Value>,
    depth: u32,
}

impl Object {
    pub fn new() -> Object {
        Object::default()
    }

    pub fn with_capacity(n: usize) -> Object {
        Object {
            map: IndexMap::with_capacity(n),
            depth: 0,
        }
    }

    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Computes the depth of a fully built object.
    pub fn seal(mut self) -> Object {
        self.depth = 1 + self.map.values().map(Value::depth).max().unwrap_or(0);
        self
    }
}

impl std::ops::Deref for List {
    type Target = Vec<Value>;
    fn deref(&self) -> &Vec<Value> {
        &self.items
    }
}

impl std::ops::Deref for Object {
    type Target = IndexMap<String, Value>;
    fn deref(&self) -> &IndexMap<String, Value> {
        &self.map
    }
}

impl std::ops::DerefMut for Object {
    fn deref_mut(&mut self) -> &mut IndexMap<String, Value> {
        &mut self.map
    }
}

impl FromIterator<(String, Value)> for Object {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Object {
        Object {
            map: iter.into_iter().collect(),
            depth: 0,
        }
        .seal()
    }
}

impl Drop for List {
    fn drop(&mut self) {
        deep_drop(std::mem::take(&mut self.items));
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        deep_drop(std::mem::take(&mut self.map).into_values().collect());
    }
}

/// Drops values iteratively. A query can build arrays nested a million deep (a `fold` that
/// wraps its accumulator), and the default recursive drop would overflow the stack; here
/// every container this is the last owner of is emptied onto a heap worklist instead.
fn deep_drop(mut pending: Vec<Value>) {
    while let Some(v) = pending.pop() {
        match v {
            Value::Array(rc) => {
                if let Ok(mut list) = Rc::try_unwrap(rc) {
                    pending.append(&mut list.items);
                }
            }
            Value::Object(rc) => {
                if let Ok(mut obj) = Rc::try_unwrap(rc) {
                    pending.extend(std::mem::take(&mut obj.map).into_values());
                }
            }
            _ => {}
        }
    }
}

#[derive(Clone)]
pub enum Value {
    Null(NullCause),
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    Str(Rc<str>),
    Bytes(Rc<[u8]>),
    Time(Time),
    /// `TransactionTime()`: the commit timestamp, known only once the query commits.
    TxnTime,
    Date(Date),
    Id(u64),
    Array(Rc<List>),
    Object(Rc<Object>),
    Doc(DocRef),
    Set(Rc<SetValue>),
    Func(Rc<Func>),
    Module(Module),
}

/// Why a value is null: FQL errors name the cause ("Null value, due to missing field `x`").
#[derive(Clone, Debug, PartialEq)]
pub enum NullCause {
    Literal,
    MissingField(String),
    /// An empty set or array had no element to give (`first()`, `last()`, `reduce()`...).
    NoSuchElement(&'static str),
    /// A function returned no value (`log()`, `forEach()`).
    NoValue,
}

/// A reference to a document by immutable ids. Whether it exists is learned by reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DocRef {
    pub coll: CollId,
    pub id: DocId,
}

/// A module: a built-in namespace or a user collection.
#[derive(Clone, Debug, PartialEq)]
pub enum Module {
    Builtin(&'static str),
    Collection(Rc<CollHandle>),
}

/// A user collection as a module: its id never changes, its name is what the query saw.
#[derive(Debug, PartialEq)]
pub struct CollHandle {
    pub id: CollId,
    pub name: String,
}

impl Module {
    pub fn name(&self) -> &str {
        match self {
            Module::Builtin(name) => name,
            Module::Collection(c) => &c.name,
        }
    }
}

pub enum Func {
    /// A closure: code shared with the syntax tree, plus the environment it captured.
    Lambda(Closure),
    /// A built-in function or a method bound to its receiver.
    Native(Native),
    /// A user-defined function from the schema.
    Udf(std::sync::Arc<crate::schema::function::FunctionDef>),
}

pub struct Closure {
    pub code: LambdaCode,
    /// 1 + the deepest value the closure captured.
    pub depth: u32,
    pub env: Env,
    /// The source text the code was parsed from, and where in it the lambda is: cursors
    /// carry functions as FQL text plus the values they captured.
    pub source: Rc<str>,
    pub span: testudo_fql::Span,
}

#[derive(Clone)]
pub enum LambdaCode {
    Full(Arc<ast::Lambda>),
    /// A short lambda (`.name > 1`): one implicit parameter.
    Short(Arc<ast::Expr>),
}

impl Closure {
    pub fn arity(&self) -> Arity {
        match &self.code {
            LambdaCode::Full(l) if l.variadic.is_some() => Arity::AtLeast(l.params.len()),
            LambdaCode::Full(l) => Arity::Exactly(l.params.len()),
            LambdaCode::Short(_) => Arity::Exactly(1),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    Exactly(usize),
    AtLeast(usize),
    Between(usize, usize),
}

impl Arity {
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
            Arity::Between(lo, hi) => n >= lo && n <= hi,
        }
    }

    /// The smallest number of arguments a callback of this arity can take.
    pub fn min(self) -> usize {
        match self {
            Arity::Exactly(k) | Arity::AtLeast(k) | Arity::Between(k, _) => k,
        }
    }
}

pub type NativeImpl = fn(&mut crate::eval::Interp, &Value, Vec<Value>) -> crate::eval::R<Value>;

/// A built-in function. `recv` is the receiver of a bound method (`"abc".concat`), or
/// `Value::Null` for a free function.
pub struct Native {
    pub name: &'static str,
    pub recv: Value,
    pub arity: Arity,
    pub imp: NativeImpl,
}

impl Value {
    pub const NULL: Value = Value::Null(NullCause::Literal);

    pub fn str(s: &str) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn string(s: String) -> Value {
        Value::Str(Rc::from(s))
    }

    pub fn array(items: Vec<Value>) -> Value {
        Value::Array(Rc::new(List::new(items)))
    }

    pub fn object(fields: Object) -> Value {
        Value::Object(Rc::new(fields.seal()))
    }

    /// How deeply this value nests (0 for scalars and documents).
    pub fn depth(&self) -> u32 {
        match self {
            Value::Array(l) => l.depth(),
            Value::Object(o) => o.depth(),
            Value::Func(f) => match &**f {
                Func::Lambda(c) => c.depth,
                Func::Native(n) => n.recv.depth(),
                Func::Udf(_) => 1,
            },
            Value::Set(s) => s.depth,
            _ => 0,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null(_))
    }

    /// The FQL type name used in error messages (`Int`, `String`, `Array<Any>`...).
    pub fn type_name(&self) -> String {
        match self {
            Value::Null(_) => "Null".into(),
            Value::Bool(_) => "Boolean".into(),
            Value::Int(_) => "Int".into(),
            Value::Long(_) => "Long".into(),
            Value::Double(_) => "Double".into(),
            Value::Str(_) => "String".into(),
            Value::Bytes(_) => "Bytes".into(),
            Value::Time(_) => "Time".into(),
            Value::TxnTime => "TransactionTime".into(),
            Value::Date(_) => "Date".into(),
            Value::Id(_) => "ID".into(),
            Value::Array(_) => "Array".into(),
            Value::Object(_) => "Object".into(),
            Value::Doc(_) => "Document".into(),
            Value::Set(_) => "Set".into(),
            Value::Func(_) => "Function".into(),
            Value::Module(m) => match m {
                Module::Builtin(name) => format!("{name}Module"),
                Module::Collection(c) => format!("{}Collection", c.name),
            },
        }
    }

    pub fn is_number(&self) -> bool {
        matches!(self, Value::Int(_) | Value::Long(_) | Value::Double(_))
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::eval::display::debug_string(self))
    }
}

impl fmt::Debug for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Func::Lambda(_) => f.write_str("[function <lambda>]"),
            Func::Native(n) => write!(f, "[function {}()]", n.name),
            Func::Udf(u) => write!(f, "[function {}()]", u.name),
        }
    }
}
