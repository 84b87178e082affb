//! A backup directory: listing its backups and pruning all but the newest N.
//!
//! **Invariants:** pruning deletes only complete backups (readable preamble, trailer present)
//! beyond the newest `keep` complete ones; it never deletes a partial file (a backup being
//! written, or left by a crash), an unreadable file or anything that is not a backup, and it
//! never counts them among the kept, so damaged files cannot push good backups out. Only
//! backups named `testudo-…` rotate: a `kept-…` backup (one someone asked for) is listed but
//! never pruned.

use std::path::{Path, PathBuf};

use crate::BackupError;
use crate::read::{BackupInfo, inspect};

/// The extension of a backup file.
pub const BACKUP_EXTENSION: &str = "tbk";

/// How the name of a backup that retention may delete starts (scheduled ones, and those of
/// `testudo backup create`).
pub const ROTATING_PREFIX: &str = "testudo-";

/// How the name of a backup that only an operator deletes starts.
pub const KEPT_PREFIX: &str = "kept-";

/// One file of a backup directory.
#[derive(Clone, Debug)]
pub struct BackupEntry {
    pub path: PathBuf,
    pub bytes: u64,
    pub status: EntryStatus,
}

#[derive(Clone, Debug)]
pub enum EntryStatus {
    /// A finished backup (preamble and trailer check out; chunks not read: see `verify`).
    Complete(BackupInfo),
    /// A backup being written, or an interrupted one (`.*.partial`).
    Partial,
    /// A `.tbk` whose preamble or trailer is damaged or missing.
    Unreadable(String),
}

/// What [`prune`] did.
#[derive(Clone, Debug, Default)]
pub struct PruneReport {
    pub kept: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
    /// Files left alone (partial or unreadable), with why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// The backups in `dir`: complete ones oldest first (by creation time, then snapshot
/// timestamp), then partial and unreadable files.
pub fn list_backups(dir: &Path) -> Result<Vec<BackupEntry>, BackupError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BackupError::io(dir.display(), e))?;
    let mut complete = Vec::new();
    let mut others = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| BackupError::io(dir.display(), e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry
            .metadata()
            .map_err(|e| BackupError::io(path.display(), e))?;
        if !meta.is_file() {
            continue;
        }
        let bytes = meta.len();
        if name.starts_with('.') && name.ends_with(".partial") {
            others.push(BackupEntry {
                path,
                bytes,
                status: EntryStatus::Partial,
            });
            continue;
        }
        if !name.ends_with(&format!(".{BACKUP_EXTENSION}")) {
            continue;
        }
        match inspect(&path) {
            Ok(info) if info.complete => complete.push(BackupEntry {
                path,
                bytes,
                status: EntryStatus::Complete(info),
            }),
            Ok(_) => others.push(BackupEntry {
                path,
                bytes,
                status: EntryStatus::Unreadable("no trailer: truncated or unfinished".into()),
            }),
            Err(error) => others.push(BackupEntry {
                path,
                bytes,
                status: EntryStatus::Unreadable(error.to_string()),
            }),
        }
    }
    complete.sort_by_key(|entry| match &entry.status {
        EntryStatus::Complete(info) => (info.created_unix_ms, info.snapshot_ts),
        _ => (0, 0),
    });
    others.sort_by(|a, b| a.path.cmp(&b.path));
    complete.extend(others);
    Ok(complete)
}

/// When the newest complete backup of `dir` was created (Unix ms); `None` when there is
/// none or the directory cannot be read (a schedule then runs at once).
pub fn newest_backup_ms(dir: &Path) -> Option<u64> {
    list_backups(dir)
        .ok()?
        .iter()
        .filter_map(|e| match &e.status {
            EntryStatus::Complete(info) => Some(info.created_unix_ms),
            _ => None,
        })
        .max()
}

/// Whether retention may delete the backup at `path` (see [`KEPT_PREFIX`]).
fn rotates(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with(ROTATING_PREFIX))
}

/// Deletes the complete rotating backups of `dir` beyond the newest `keep` (at least 1).
pub fn prune(dir: &Path, keep: usize) -> Result<PruneReport, BackupError> {
    if keep == 0 {
        return Err(BackupError::Invalid(
            "keep must be at least 1: pruning never deletes every backup".into(),
        ));
    }
    let entries = list_backups(dir)?;
    let mut report = PruneReport::default();
    let complete: Vec<&BackupEntry> = entries
        .iter()
        .filter(|e| matches!(e.status, EntryStatus::Complete(_)) && rotates(&e.path))
        .collect();
    let cut = complete.len().saturating_sub(keep);
    for (i, entry) in complete.iter().enumerate() {
        if i < cut {
            std::fs::remove_file(&entry.path)
                .map_err(|e| BackupError::io(entry.path.display(), e))?;
            report.removed.push(entry.path.clone());
        } else {
            report.kept.push(entry.path.clone());
        }
    }
    for entry in &entries {
        match &entry.status {
            EntryStatus::Complete(_) if rotates(&entry.path) => {}
            EntryStatus::Complete(_) => report.skipped.push((
                entry.path.clone(),
                "kept: made on request, retention never deletes it".into(),
            )),
            EntryStatus::Partial => report.skipped.push((
                entry.path.clone(),
                "partial (being written, or interrupted)".into(),
            )),
            EntryStatus::Unreadable(why) => report.skipped.push((entry.path.clone(), why.clone())),
        }
    }
    if !report.removed.is_empty() {
        crate::write::sync_dir(dir)?;
    }
    Ok(report)
}
