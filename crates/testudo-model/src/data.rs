//! Persistable values: what a document field can hold.
//!
//! `null` is not stored inside objects (a field set to null is absent), but arrays may hold it.
//! Integers are stored as `i64` whatever their FQL width: reading turns them back into `Int`
//! when they fit in 32 bits, as Fauna does. References to other documents are stored by
//! immutable ids and rendered with the collection's current name.

use indexmap::IndexMap;

use crate::{CollId, Date, DocId, Time};

/// An insertion-ordered object, as FQL structs are.
pub type DataMap = IndexMap<String, Data>;

#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    Time(Time),
    Date(Date),
    Array(Vec<Data>),
    Object(DataMap),
    /// A reference to a document (user or system collection) by immutable ids.
    Ref {
        coll: CollId,
        id: DocId,
    },
    /// `TransactionTime()`: resolved to the commit timestamp of the version that holds it.
    TxnTime,
}

/// One stored version of a document: its user fields and its meta fields other than the
/// id, collection and timestamp (those live in the key and the version).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StoredDoc {
    pub fields: DataMap,
    pub ttl: Option<Time>,
}
