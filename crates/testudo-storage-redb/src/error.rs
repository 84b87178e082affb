//! The one mapping from redb's errors to [`KvError`].
//!
//! **Invariants:** every redb error becomes `Io`, `Corrupt` or `Closed` here and nowhere else;
//! damage to the file (or a file this build cannot read) is `Corrupt`, and so is a block of an
//! encrypted file that fails its integrity check (it reaches redb as an I/O error carrying an
//! [`IntegrityError`]); a closed database is `Closed`, everything else is `Io`.

use testudo_storage::KvError;

use crate::encrypted::IntegrityError;

pub(crate) fn kv_error(error: impl Into<redb::Error>) -> KvError {
    match error.into() {
        redb::Error::Io(io) if IntegrityError::from_io(&io).is_some() => {
            KvError::Corrupt(io.to_string())
        }
        redb::Error::PreviousIo => KvError::Io(
            "an earlier I/O error or failed integrity check stopped the store; restart the \
             server (see the log for the first error)"
                .to_owned(),
        ),
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
