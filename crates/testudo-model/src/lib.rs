//! Values that cross layer boundaries: what is stored, what goes over the wire, and the
//! clock types every layer agrees on.
//!
//! This crate does no I/O and knows nothing about FQL evaluation or storage engines. It owns
//! three value trees, each with one job:
//! - [`Data`]: what a document can persist, with the versioned binary encoding in [`codec`];
//! - [`Input`]: a decoded request argument (tagged or simple JSON), still naming collections
//!   by name because resolving names needs the schema;
//! - [`Output`]: a fully materialized query result, encoded by [`json`] in the request's format.
//!
//! Alongside them: [`time`] (FQL `Time`/`Date` with Java's text forms and calendar
//! arithmetic), [`num`] (Java's number text forms), and [`sortkey`] (the order-preserving
//! byte encoding of values that indexes sort by).
//!
//! **Invariant:** decoding never panics: every malformed byte string or JSON value becomes an
//! error value.

pub mod codec;
pub mod data;
pub mod ids;
pub mod input;
pub mod json;
pub mod num;
pub mod output;
pub mod sortkey;
pub mod time;

#[cfg(test)]
mod testgen;

pub use data::{Data, DataMap, StoredDoc};
pub use ids::{CollId, DbId, DocId, Ts};
pub use input::Input;
pub use output::{DocOutput, NullCause, Output, RefTarget};
pub use time::{Date, Time, TimeRangeError, TimeUnit};
