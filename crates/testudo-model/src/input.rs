//! A decoded request value (`arguments` or a template `{"value": ...}`).
//!
//! Names of collections and schema documents stay names: resolving them needs the schema of
//! the database the request runs in, which only the engine has.

#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    Time(crate::Time),
    Date(crate::Date),
    Array(Vec<Input>),
    Object(Vec<(String, Input)>),
    /// `{"@mod": "Name"}`
    Module(String),
    /// `{"@ref": {...}}` or `{"@doc": {...}}`: a document of `coll` by id, or a named schema
    /// document when `coll` is a system collection such as `Collection`.
    Ref {
        coll: String,
        key: RefKey,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum RefKey {
    Id(crate::DocId),
    Name(String),
}
