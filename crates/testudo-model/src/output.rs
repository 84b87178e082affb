//! A materialized query result, ready to encode in any wire format.
//!
//! The engine builds this tree inside the query's transaction (documents read in full, sets
//! cut to their first page, cursors sealed); encoders in [`crate::json`] only walk it.

use crate::{Date, Time, Ts};

#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Double(f64),
    String(String),
    Bytes(Vec<u8>),
    Time(Time),
    Date(Date),
    /// The commit timestamp of this query, known only once it commits; encoders substitute it.
    TxnTime,
    /// A document id value (`ID`): a decimal string on the wire.
    Id(u64),
    Array(Vec<Output>),
    Object(Vec<(String, Output)>),
    /// A module such as a collection, `Math` or `Collection`.
    Module(String),
    /// A live document read in full.
    Doc(Box<DocOutput>),
    /// A reference that is not read (a document stored inside another document's field).
    Ref(RefTarget),
    /// A document that could not be read, and why.
    NullDoc {
        target: RefTarget,
        cause: NullCause,
    },
    /// The first page of a set.
    SetPage {
        data: Vec<Output>,
        after: Option<String>,
    },
    /// A set left unmaterialized (nested too deep): only its cursor.
    SetCursor(String),
    /// An event source token.
    Stream(String),
    /// A function value, rendered as its display string (e.g. `[function <lambda>]`).
    Function(String),
}

/// Which document a reference points at: a user document by id or a schema document by name.
#[derive(Clone, Debug, PartialEq)]
pub enum RefTarget {
    Id { coll: String, id: u64 },
    Named { coll: String, name: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NullCause {
    NotFound,
    Deleted,
    PermissionDenied,
    CollectionDeleted,
}

impl NullCause {
    pub fn as_str(self) -> &'static str {
        match self {
            NullCause::NotFound => "not found",
            NullCause::Deleted => "deleted",
            NullCause::PermissionDenied => "permission denied",
            NullCause::CollectionDeleted => "collection deleted",
        }
    }
}

/// A document read in full. `fields` holds everything after the meta fields, in order
/// (`ttl` first when set, then user fields for user documents; definition fields for schema
/// documents).
#[derive(Clone, Debug, PartialEq)]
pub struct DocOutput {
    pub target: RefTarget,
    /// `None` means the document was written by this query: its `ts` is the commit timestamp.
    pub ts: Option<Ts>,
    pub fields: Vec<(String, Output)>,
}
