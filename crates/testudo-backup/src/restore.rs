//! Restoring a backup into an empty store, every version at its original timestamp.
//!
//! `Kv::commit` stamps writes with new timestamps, so a restore writes below it, through the
//! store's [`Backend`]: one `write_batch` per chunk with the backup's snapshot timestamp as
//! the store's `last_commit_ts` (so the restored store's clock continues after it and new
//! commits get later timestamps), not flushed, then one flushed empty batch at the end.
//! [`restore_to_dir`] builds a fresh redb store (encrypted under the master key when one is
//! given) in a hidden sibling directory and renames it into place only once complete and
//! synced, so an interrupted restore never leaves a store that looks whole.
//!
//! **Invariants:** the whole file is verified (every chunk and the manifest) before anything
//! is written; nothing is written into a store that holds any version, or into a target
//! directory that holds any file; the second pass re-checks every chunk as it loads it, and
//! a failure then discards the partial store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use testudo_storage::{Backend, BackendView, BatchWrite, Kv, LocalKvOptions, Ts};
use testudo_storage_redb::keys::MasterKey;
use testudo_storage_redb::{StoreKind, open_store, store_kind};

use crate::manifest::Manifest;
use crate::read::{Reader, verify};
use crate::write::{random_bytes, sync_dir};
use crate::{BackupError, Progress, format};

/// What a restore loaded.
#[derive(Clone, Debug)]
pub struct RestoreReport {
    pub manifest: Manifest,
    /// Where the store now is (for [`restore_to_dir`]).
    pub path: Option<PathBuf>,
}

/// Verifies `path`, then loads it into `backend`, which must hold no version at all.
/// `progress` gets the file bytes done (two passes: verify, then load).
pub fn restore_into<B: Backend>(
    path: &Path,
    master: Option<&MasterKey>,
    backend: &B,
    progress: Progress<'_>,
) -> Result<RestoreReport, BackupError> {
    let bytes = verify_for_restore(path, master, progress)?;
    check_empty(backend)?;
    load(path, master, backend, &|done| progress(bytes + done))
}

/// A backup verified whole, then read chunk by chunk: what a running server restores from
/// (it writes the records itself, under new database ids).
pub struct VerifiedBackup {
    path: PathBuf,
    master: Option<Arc<MasterKey>>,
    reader: Reader,
    manifest: Manifest,
}

impl VerifiedBackup {
    /// Verifies every chunk and the manifest of `path` (authenticated when encrypted), then
    /// opens it at its first chunk. Nothing is read from it before it verifies.
    pub fn open(
        path: &Path,
        master: Option<Arc<MasterKey>>,
    ) -> Result<VerifiedBackup, BackupError> {
        if master.is_none() && crate::inspect(path)?.encrypted {
            verify_for_restore(path, None, &crate::no_progress)?;
        }
        let report = verify(path, master.as_deref(), &crate::no_progress)?;
        let manifest = match (report.authenticated, report.manifest) {
            (true, Some(manifest)) => manifest,
            _ => {
                return Err(BackupError::NeedsKey {
                    key_id: report.info.key_id.unwrap_or_default(),
                });
            }
        };
        let reader = Reader::open(path, master.as_deref(), false)?;
        Ok(VerifiedBackup {
            path: path.to_path_buf(),
            master,
            reader,
            manifest,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The next chunk's records (every chunk is checked again as it is read); `None` after
    /// the last.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<format::Record>>, BackupError> {
        self.reader.next_chunk()
    }

    /// Starts over at the first chunk.
    pub fn rewind(&mut self) -> Result<(), BackupError> {
        self.reader = Reader::open(&self.path, self.master.as_deref(), false)?;
        Ok(())
    }
}

/// Fails unless `path` verifies fully (authenticated when encrypted); returns its size.
fn verify_for_restore(
    path: &Path,
    master: Option<&MasterKey>,
    progress: Progress<'_>,
) -> Result<u64, BackupError> {
    if master.is_none() {
        // An encrypted backup cannot be restored without its key: say so before reading it.
        let info = crate::inspect(path)?;
        if info.encrypted {
            return Err(BackupError::NeedsKey {
                key_id: info.key_id.unwrap_or_default(),
            });
        }
    }
    let report = verify(path, master, progress)?;
    if !report.authenticated || report.manifest.is_none() {
        return Err(BackupError::NeedsKey {
            key_id: report.info.key_id.unwrap_or_default(),
        });
    }
    Ok(report.info.bytes)
}

fn check_empty<B: Backend>(backend: &B) -> Result<(), BackupError> {
    let view = backend.view()?;
    let mut entries = view.forward((&[], Ts::MAX), None)?;
    if backend.last_commit_ts()? != Ts::ZERO || entries.next().is_some() {
        return Err(BackupError::NotEmpty(
            "the target store is not empty; restore only into a new, empty store".into(),
        ));
    }
    Ok(())
}

fn load<B: Backend>(
    path: &Path,
    master: Option<&MasterKey>,
    backend: &B,
    progress: Progress<'_>,
) -> Result<RestoreReport, BackupError> {
    let mut reader = Reader::open(path, master, false)?;
    let last_commit = Ts(reader.info.snapshot_ts);
    while let Some(records) = reader.next_chunk()? {
        let writes: Vec<BatchWrite<'_>> = records
            .iter()
            .flat_map(|record| {
                record.versions.iter().map(|version| BatchWrite {
                    key: &record.key,
                    ts: Ts(version.ts),
                    value: version.value.as_deref(),
                })
            })
            .collect();
        backend.write_batch(&writes, last_commit, false)?;
        progress(reader.position);
    }
    let manifest = reader.manifest()?.ok_or_else(|| BackupError::NeedsKey {
        key_id: reader.info.key_id.clone().unwrap_or_default(),
    })?;
    // One flush makes every batch above durable.
    backend.write_batch(&[], last_commit, true)?;
    Ok(RestoreReport {
        manifest,
        path: None,
    })
}

/// Verifies `path`, then restores it as a new store in `target`, which must not exist or be
/// an empty directory. With `master`, the backup is decrypted with it and the new store is
/// encrypted at rest under it.
pub fn restore_to_dir(
    path: &Path,
    master: Option<&MasterKey>,
    target: &Path,
    progress: Progress<'_>,
) -> Result<RestoreReport, BackupError> {
    check_target(target)?;
    let bytes = verify_for_restore(path, master, progress)?;
    let parent = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| BackupError::io(parent.display(), e))?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "store".into());
    let staging = parent.join(format!(
        ".{name}.restoring-{}",
        format::hex(&random_bytes::<6>()?)
    ));
    let result = build(path, master, &staging, &|done| progress(bytes + done)).and_then(|report| {
        check_target(target)?;
        // `rename` replaces an empty directory atomically; anything else was refused above.
        std::fs::rename(&staging, target).map_err(|e| BackupError::io(target.display(), e))?;
        sync_dir(&parent)?;
        Ok(report)
    });
    match result {
        Ok(mut report) => {
            report.path = Some(target.to_path_buf());
            Ok(report)
        }
        Err(error) => {
            if let Err(remove) = std::fs::remove_dir_all(&staging)
                && remove.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %staging.display(), %remove, "cannot remove a partial restore");
            }
            Err(error)
        }
    }
}

fn build(
    path: &Path,
    master: Option<&MasterKey>,
    staging: &Path,
    progress: Progress<'_>,
) -> Result<RestoreReport, BackupError> {
    let kv = open_store(staging, master, LocalKvOptions::default())?;
    let loaded =
        check_empty(kv.backend()).and_then(|()| load(path, master, kv.backend(), progress));
    // Close even after a failure, so the files are released before they are removed.
    let closed = kv.close();
    let report = loaded?;
    closed?;
    Ok(report)
}

/// `target` must be absent or an empty directory.
fn check_target(target: &Path) -> Result<(), BackupError> {
    let refuse = |why: &str| {
        BackupError::NotEmpty(format!(
            "{} {why}; restore only into a new or empty data directory (nothing existing is \
             touched)",
            target.display()
        ))
    };
    match std::fs::read_dir(target) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(refuse("is not empty"));
            }
            if store_kind(target)? != StoreKind::Empty {
                return Err(refuse("holds a store"));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(refuse("is a file")),
        Err(e) => Err(BackupError::io(target.display(), e)),
    }
}
