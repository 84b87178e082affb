//! The one mapping from redb's errors to [`KvError`].
//!
//! **Invariants:** every redb error becomes `Io`, `Corrupt` or `Closed` here and nowhere else;
//! damage to the file (or a file this build cannot read) is `Corrupt`, a closed database is
//! `Closed`, everything else is `Io`.

use testudo_storage::KvError;

pub(crate) fn kv_error(error: impl Into<redb::Error>) -> KvError {
    match error.into() {
        redb::Error::Corrupted(message) => KvError::Corrupt(message),
        redb::Error::UpgradeRequired(version) => KvError::Corrupt(format!(
            "the redb file needs an upgrade from redb format {version}"
        )),
        redb::Error::DatabaseClosed => KvError::Closed,
        error @ (redb::Error::TableTypeMismatch { .. }
        | redb::Error::TypeDefinitionChanged { .. }
        | redb::Error::TableIsMultimap(_)
        | redb::Error::TableIsNotMultimap(_)) => KvError::Corrupt(error.to_string()),
        // redb's error enum is non-exhaustive: anything new is an I/O-class failure until
        // someone decides otherwise.
        error => KvError::Io(error.to_string()),
    }
}
