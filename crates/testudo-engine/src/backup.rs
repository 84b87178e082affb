//! Backups through a running server: the [`BackupService`] the engine asks to write, list
//! and read backup files, the backup schedules kept on database documents, and the restore
//! of a backup as a new child database (`stdlib/backup.rs` is its FQL face).
//!
//! The host (the CLI's `serve`) implements the service over `testudo-backup`: the engine
//! knows no file format and no directory, only database ids, key prefixes and records.
//! Backups of a database `D` are owned by `D`: a query in `D` lists and restores only
//! those (the root database's are the server-wide ones).
//!
//! **Restore** writes a backup's documents and index entries under fresh database ids in
//! bounded batches (each its own commit), then the query's own transaction makes them
//! reachable (database documents, registry entries, schema markers). Until then each new id
//! carries a deleted-database marker whose value is a "not before" time: the reclaimer
//! leaves it alone while the restore may still be running and removes the data of an
//! interrupted restore after it ([`RESTORE_GRACE`]).
//!
//! **Invariants:** nothing written by a restore is reachable before the query commits;
//! secrets (key space `0x03`) and key, token and credential documents are never restored,
//! so no secret of the backed-up database opens the restored one; a backup name is a plain
//! file name, never a path.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use testudo_model::DbId;
use testudo_model::codec::decode_doc;
use testudo_model::{Data, DocId};
use testudo_storage::KvError;

use crate::txn::Txn;
use crate::{keys, schema, tenancy};

/// How long the data of a restore in progress is protected from the reclaimer after its
/// last batch; an interrupted restore's data is reclaimed once this has passed.
pub const RESTORE_GRACE: Duration = Duration::from_secs(30 * 60);

/// A backup file as the service describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSummary {
    /// The file name (unique within its owner's backups).
    pub name: String,
    /// The snapshot's transaction timestamp (µs): the backup holds exactly the commits at or
    /// before it.
    pub snapshot_ts: u64,
    pub created_unix_ms: u64,
    pub bytes: u64,
    pub encrypted: bool,
    /// What it holds, when known without reading it through (a backup just taken).
    pub counts: Option<BackupCounts>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackupCounts {
    pub databases: u64,
    pub keys: u64,
    pub versions: u64,
}

/// How the scheduled backups of one owner are doing (times in Unix milliseconds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScheduleStatus {
    pub every: Option<Duration>,
    pub keep: Option<usize>,
    pub running: bool,
    pub runs: u64,
    pub failures: u64,
    pub last_success_unix_ms: Option<u64>,
    pub last_failure_unix_ms: Option<u64>,
    pub last_error: Option<String>,
    pub last_backup: Option<String>,
    pub next_run_unix_ms: Option<u64>,
}

/// One key of a backup with its stored versions, newest first (`None`: a tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupRecord {
    pub key: Vec<u8>,
    pub versions: Vec<(u64, Option<Vec<u8>>)>,
}

/// A verified backup, read chunk by chunk.
pub trait BackupSource: Send {
    fn snapshot_ts(&self) -> u64;
    /// The next chunk of records (keys ascending); `None` after the last.
    fn next_chunk(&mut self) -> Result<Option<Vec<BackupRecord>>, BackupFailure>;
    /// Starts over from the first chunk.
    fn rewind(&mut self) -> Result<(), BackupFailure>;
    /// From now on only the keys of these databases are used: a source may leave the
    /// values of the others as stored (it must still yield every record, in order).
    fn restrict(&mut self, _databases: &[DbId]) {}
}

/// Why the service could not do something.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BackupFailure {
    #[error("{0}")]
    NotFound(String),
    /// The file is damaged, truncated, or cannot be decrypted: nothing was restored.
    #[error("{0}")]
    Unusable(String),
    #[error("{0}")]
    Failed(String),
}

/// Where backups are written and read; implemented by the host.
pub trait BackupService: Send + Sync + std::fmt::Debug {
    /// Takes one snapshot of the keys under `prefixes` (every key when empty) into a new
    /// backup owned by `owner`.
    fn create(&self, owner: DbId, prefixes: Vec<Vec<u8>>) -> Result<BackupSummary, BackupFailure>;
    /// The complete backups `owner` owns, oldest first.
    fn list(&self, owner: DbId) -> Result<Vec<BackupSummary>, BackupFailure>;
    /// The scheduled backups of `owner` (`None` when it has no schedule).
    fn status(&self, owner: DbId) -> Option<ScheduleStatus>;
    /// Verifies the whole backup `name` of `owner`, then opens it for reading.
    fn open(&self, owner: DbId, name: &str) -> Result<Box<dyn BackupSource>, BackupFailure>;
    /// Where a backup of `owner` is (for the audit log; no secret in it).
    fn location(&self, owner: DbId, name: &str) -> String;
    /// The shortest period a `backup` schedule may set.
    fn min_schedule(&self) -> Duration {
        MIN_SCHEDULE
    }
}

/// A backup schedule set on a database document (`backup: { every, keep }`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupSchedule {
    pub db: DbId,
    /// Names from the root (`"app/tenant1"`).
    pub path: String,
    pub every: Duration,
    pub keep: usize,
    /// The database-id prefixes of the database and its live descendants.
    pub prefixes: Vec<Vec<u8>>,
}

/// The shortest schedule period (the host may lower it for tests).
pub const MIN_SCHEDULE: Duration = Duration::from_secs(60);
/// The most backups a schedule keeps.
pub const MAX_KEEP: i64 = 1000;

/// Whether `name` can name a backup file: a plain name ending in `.tbk`, never a path.
pub fn valid_backup_name(name: &str) -> bool {
    name.len() <= 200
        && name.ends_with(".tbk")
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

/// `db` and its live descendants, parents before children (bounded by the nesting limit).
pub fn subtree(txn: &mut Txn, db: DbId) -> Result<Vec<DbId>, KvError> {
    let registry = tenancy::registry(txn)?;
    let mut out = vec![db];
    let mut depth_of = vec![0usize];
    let mut i = 0;
    while let Some(&parent) = out.get(i) {
        let depth = depth_of.get(i).copied().unwrap_or(0);
        i += 1;
        if depth >= tenancy::MAX_DEPTH {
            continue;
        }
        for (child, _) in registry.iter().filter(|(_, p)| *p == parent) {
            if tenancy::database_doc(txn, parent, *child)?.is_some() && !out.contains(child) {
                out.push(*child);
                depth_of.push(depth + 1);
            }
        }
    }
    Ok(out)
}

/// The key prefixes a backup of `db`'s subtree reads (none for the root: the whole store).
pub fn subtree_prefixes(txn: &mut Txn, db: DbId) -> Result<Vec<Vec<u8>>, KvError> {
    if db == DbId::ROOT {
        return Ok(Vec::new());
    }
    Ok(subtree(txn, db)?
        .into_iter()
        .map(|d| d.0.to_be_bytes().to_vec())
        .collect())
}

/// The path of names from the root to `db` (`""` for the root).
pub fn path_of(txn: &mut Txn, db: DbId) -> Result<String, KvError> {
    let mut names = Vec::new();
    let mut cur = db;
    for _ in 0..=tenancy::MAX_DEPTH {
        let Some(parent) = tenancy::parent_of(txn, cur)? else {
            break;
        };
        let name =
            match tenancy::database_doc(txn, parent, cur)?.and_then(|f| f.get("name").cloned()) {
                Some(Data::String(name)) => name,
                _ => cur.0.to_string(),
            };
        names.push(name);
        cur = parent;
    }
    names.reverse();
    Ok(names.join("/"))
}

/// A `backup` field of a database document, checked: `{ every: "6h", keep: 28 }`.
pub fn parse_schedule(value: &Data, min: Duration) -> Result<(Duration, usize), String> {
    let Data::Object(fields) = value else {
        return Err("Expected `{ every: String, keep: Int }`.".into());
    };
    if let Some(other) = fields
        .keys()
        .find(|k| !matches!(k.as_str(), "every" | "keep"))
    {
        return Err(format!(
            "Unexpected field `{other}`: expected `every` and `keep`."
        ));
    }
    let every = match fields.get("every") {
        Some(Data::String(text)) => parse_period(text).ok_or_else(|| {
            format!("`every` must be a period such as `30m`, `6h` or `1d`, not `{text}`.")
        })?,
        Some(_) => return Err("`every` must be a String such as `6h`.".into()),
        None => return Err("`every` is required.".into()),
    };
    if every < min {
        return Err(format!(
            "`every` must be at least {} seconds.",
            min.as_secs().max(1)
        ));
    }
    let keep = match fields.get("keep") {
        Some(Data::Int(n)) if (1..=MAX_KEEP).contains(n) => *n as usize,
        Some(_) => return Err(format!("`keep` must be an Int from 1 to {MAX_KEEP}.")),
        None => return Err("`keep` is required.".into()),
    };
    Ok((every, keep))
}

/// A period: a positive whole number and one unit of `s`, `m`, `h`, `d`.
pub fn parse_period(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    if number.is_empty() || number.len() > 9 {
        return None;
    }
    let n: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(n.checked_mul(seconds)?))
}

/// Every backup schedule set on a live database document, with the subtree it covers.
pub fn schedules(txn: &mut Txn) -> Result<Vec<BackupSchedule>, KvError> {
    let mut out = Vec::new();
    for db in subtree(txn, DbId::ROOT)? {
        let Some(parent) = tenancy::parent_of(txn, db)? else {
            continue;
        };
        let Some(fields) = tenancy::database_doc(txn, parent, db)? else {
            continue;
        };
        let Some(value) = fields.get("backup") else {
            continue;
        };
        // Validated when written; a value that no longer parses is skipped, not fatal.
        let Ok((every, keep)) = parse_schedule(value, Duration::from_secs(1)) else {
            continue;
        };
        out.push(BackupSchedule {
            db,
            path: path_of(txn, db)?,
            every,
            keep,
            prefixes: subtree_prefixes(txn, db)?,
        });
    }
    Ok(out)
}

/// The value of a restore's deleted-database marker: protected until `RESTORE_GRACE` from
/// now (Unix µs, big-endian).
pub fn restoring_marker_value() -> Vec<u8> {
    let until = SystemTime::now()
        .checked_add(RESTORE_GRACE)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(u64::MAX, |d| d.as_micros() as u64);
    until.to_be_bytes().to_vec()
}

/// Whether a deleted-database marker still protects a restore in progress.
pub fn marker_protects(value: &[u8]) -> bool {
    let Ok(bytes) = <[u8; 8]>::try_from(value) else {
        return false;
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    u64::from_be_bytes(bytes) > now
}

/// A database document found in a backup: the child `id`, its parent and its name.
#[derive(Clone, Debug)]
pub struct BackedUpDatabase {
    pub id: DbId,
    pub parent: DbId,
    pub name: String,
}

/// The database documents of one chunk of records (their newest version, if live).
pub fn database_docs(records: &[BackupRecord], out: &mut Vec<BackedUpDatabase>) {
    for record in records {
        let Some((parent, space, coll, id)) = split_key(&record.key) else {
            continue;
        };
        if space != keys::SPACE_DOC || coll != schema::DATABASE.0 {
            continue;
        }
        let Some((_, Some(value))) = record.versions.first() else {
            continue;
        };
        let Ok(doc) = decode_doc(value) else { continue };
        if let Some(Data::String(name)) = doc.fields.get("name") {
            out.push(BackedUpDatabase {
                id: DbId(id),
                parent,
                name: name.clone(),
            });
        }
    }
}

/// A document or index key's database id, key space, collection id and (for a document)
/// document id; `None` for shorter keys.
pub fn split_key(key: &[u8]) -> Option<(DbId, u8, u64, u64)> {
    let db = u64::from_be_bytes(key.get(0..8)?.try_into().ok()?);
    let space = *key.get(8)?;
    let coll = u64::from_be_bytes(key.get(9..17)?.try_into().ok()?);
    let id = key
        .get(17..25)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes);
    Some((DbId(db), space, coll, id))
}

/// The key of a document of a restored database, `id` replacing the document id.
pub fn with_doc_id(key: &[u8], id: DocId) -> Vec<u8> {
    let mut out = key.get(..17).map(<[u8]>::to_vec).unwrap_or_default();
    out.extend_from_slice(&id.0.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_are_plain_file_names_never_paths() {
        assert!(valid_backup_name("testudo-20261127T211200Z-123.tbk"));
        assert!(!valid_backup_name("../x.tbk"));
        assert!(!valid_backup_name("db-1/x.tbk"));
        assert!(!valid_backup_name(".x.tbk"));
        assert!(!valid_backup_name("x.partial"));
    }

    #[test]
    fn schedules_accept_periods_of_a_minute_and_more_and_refuse_the_rest() {
        let schedule = |every: &str, keep: i64| {
            let mut m = testudo_model::DataMap::new();
            m.insert("every".into(), Data::String(every.into()));
            m.insert("keep".into(), Data::Int(keep));
            parse_schedule(&Data::Object(m), MIN_SCHEDULE)
        };
        assert_eq!(schedule("6h", 28), Ok((Duration::from_secs(6 * 3600), 28)));
        assert_eq!(schedule("1m", 1), Ok((Duration::from_secs(60), 1)));
        assert!(schedule("30s", 1).is_err());
        assert!(schedule("6x", 1).is_err());
        assert!(schedule("h", 1).is_err());
        assert!(schedule("6h", 0).is_err());
        assert!(schedule("6h", 1001).is_err());
        let mut extra = testudo_model::DataMap::new();
        extra.insert("every".into(), Data::String("6h".into()));
        extra.insert("keep".into(), Data::Int(2));
        extra.insert("at".into(), Data::Int(2));
        assert!(parse_schedule(&Data::Object(extra), MIN_SCHEDULE).is_err());
    }

    #[test]
    fn a_restore_marker_protects_until_its_time_and_an_empty_marker_never() {
        assert!(marker_protects(&restoring_marker_value()));
        assert!(!marker_protects(&[]));
        assert!(!marker_protects(&1u64.to_be_bytes()));
    }
}
