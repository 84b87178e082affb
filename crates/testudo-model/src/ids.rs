//! Identifiers and transaction timestamps.
//!
//! All ids are immutable numbers; names are labels stored in documents. Ids are never reused.

use std::fmt;

/// A transaction timestamp: microseconds since the Unix epoch.
///
/// Every query gets one; they are strictly increasing across all queries of a server, reads
/// included. A document version is stamped with the commit timestamp of the query that wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ts(pub u64);

impl Ts {
    pub const ZERO: Ts = Ts(0);
    pub const MAX: Ts = Ts(u64::MAX);

    pub fn micros(self) -> u64 {
        self.0
    }

    /// The FQL `Time` at this timestamp.
    pub fn to_time(self) -> crate::Time {
        crate::Time::from_micros(self.0 as i64)
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The immutable id of a database. The root database has one too ([`DbId::ROOT`]), so every key
/// starts with a database id and child databases need no separate layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DbId(pub u64);

impl DbId {
    pub const ROOT: DbId = DbId(0);
}

/// The immutable id of a collection inside one database. System collections (`Collection`,
/// `Function`, `Key`, ...) have small fixed ids; user collections are allocated above
/// [`CollId::FIRST_USER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollId(pub u64);

impl CollId {
    pub const FIRST_USER: u64 = 1024;

    pub fn is_user(self) -> bool {
        self.0 >= Self::FIRST_USER
    }
}

/// A document id: a non-negative 64-bit integer, rendered as a decimal string on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocId(pub u64);

impl DocId {
    /// Fauna's ids are non-negative `i64`s; so are ours.
    pub const MAX: u64 = i64::MAX as u64;

    /// Parses a decimal id as Fauna accepts it (digits only, no sign, within `i64`).
    pub fn parse(s: &str) -> Option<DocId> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u64 = s.parse().ok()?;
        (n <= Self::MAX).then_some(DocId(n))
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_id_parse_accepts_only_decimal_i64() {
        assert_eq!(DocId::parse("0"), Some(DocId(0)));
        assert_eq!(
            DocId::parse("9223372036854775807"),
            Some(DocId(i64::MAX as u64))
        );
        assert_eq!(DocId::parse("9223372036854775808"), None);
        assert_eq!(DocId::parse("-1"), None);
        assert_eq!(DocId::parse("1a"), None);
        assert_eq!(DocId::parse(""), None);
    }
}
