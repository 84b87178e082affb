//! The `Backup` module (beyond Fauna): backups of the caller's database through a running
//! server, admin only. `Backup.create()`, `Backup.all()`, `Backup.status()` and
//! `Backup.restore({ backup, name, database?, replace? })`.
//!
//! **Invariants:** only an admin reaches the service (anyone else gets
//! `permission_denied`); a query sees and restores only the backups its own database owns;
//! `Backup.create()` runs at its own snapshot, outside the query's transaction, so it is
//! refused once the query has written; a restore writes nothing reachable before the query
//! commits (see `crate::backup`), and a failed one leaves only data the reclaimer removes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use testudo_audit::{AuditEvent, BackupRecord as AuditBackup, DatabaseRef, Outcome};
use testudo_model::{Data, DbId, DocId, Time};
use testudo_storage::{CommitError, WriteSet};

use super::args::{arg, object_arg};
use super::{MethodDef, between, def, exactly};
use crate::api::ErrorCode;
use crate::authz::Action;
use crate::backup::{
    self, BackedUpDatabase, BackupFailure, BackupService, BackupSource, BackupSummary,
};
use crate::eval::{DocRef, Interp, Object, R, Value, fail};
use crate::schema::collection::{constraint_error, failure};
use crate::schema::{self, DATABASE};
use crate::{keys, tenancy};

/// Writes per restore batch commit, and their most bytes.
const RESTORE_BATCH_KEYS: usize = 1000;
const RESTORE_BATCH_BYTES: usize = 4 << 20;

pub fn module_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "create" => def("create", between(0, 0), |it, _, _| create(it)),
        "all" => def("all", exactly(0), |it, _, _| all(it)),
        "status" => def("status", exactly(0), |it, _, _| status(it)),
        "restore" => def("restore", exactly(1), |it, _, a| {
            let input = object_arg(&arg(&a, 0), "restore")?;
            restore(it, &input)
        }),
        _ => return None,
    })
}

/// The service, for an admin only.
fn service(it: &Interp<'_>) -> R<Arc<dyn BackupService>> {
    if !matches!(it.perms.perms, crate::authz::Perms::Admin) {
        return crate::gate::denied();
    }
    match &it.shared.backups {
        Some(service) => Ok(service.clone()),
        None => fail(
            ErrorCode::DisabledFeature,
            "Backups are not configured on this server: start it with `--backup-dir DIR`.",
        ),
    }
}

fn create(it: &mut Interp<'_>) -> R<Value> {
    let service = service(it)?;
    it.check_writable("create")?;
    if it.txn.has_writes() {
        return fail(
            ErrorCode::InvalidEffect,
            "`Backup.create()` takes its own snapshot and cannot follow a write in the same \
             query: call it in a query of its own.",
        );
    }
    let db = it.db();
    let prefixes = backup::subtree_prefixes(&mut it.txn, db)?;
    let result = service.create(db, prefixes);
    let (outcome, name, ts) = match &result {
        Ok(s) => (Outcome::ok(), s.name.clone(), Some(s.snapshot_ts)),
        Err(_) => (Outcome::error("backup_failed"), String::new(), None),
    };
    let target = service.location(db, &name);
    audit(it, "backup", target, outcome, ts);
    match result {
        Ok(summary) => Ok(summary_value(&summary)),
        Err(e) => failure_error(&e, "The backup failed"),
    }
}

fn all(it: &mut Interp<'_>) -> R<Value> {
    let service = service(it)?;
    match service.list(it.db()) {
        Ok(list) => Ok(Value::array(list.iter().map(summary_value).collect())),
        Err(e) => failure_error(&e, "The backups cannot be listed"),
    }
}

fn status(it: &mut Interp<'_>) -> R<Value> {
    let service = service(it)?;
    let Some(s) = service.status(it.db()) else {
        return Ok(Value::NULL);
    };
    let time = |ms: Option<u64>| {
        ms.map_or(Value::NULL, |ms| {
            Value::Time(Time::from_micros(ms.saturating_mul(1000) as i64))
        })
    };
    let age = s.last_success_unix_ms.map_or(Value::NULL, |ms| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Value::Long((now.saturating_sub(ms) / 1000) as i64)
    });
    let mut out = Object::new();
    out.insert(
        "every".into(),
        s.every
            .map_or(Value::NULL, |d| Value::string(period_text(d))),
    );
    out.insert(
        "keep".into(),
        s.keep.map_or(Value::NULL, |k| Value::Long(k as i64)),
    );
    out.insert("running".into(), Value::Bool(s.running));
    out.insert("runs".into(), Value::Long(s.runs as i64));
    out.insert("failures".into(), Value::Long(s.failures as i64));
    out.insert("last_success".into(), time(s.last_success_unix_ms));
    out.insert("age_seconds".into(), age);
    out.insert("last_failure".into(), time(s.last_failure_unix_ms));
    out.insert(
        "last_error".into(),
        s.last_error.map_or(Value::NULL, Value::string),
    );
    out.insert(
        "last_backup".into(),
        s.last_backup.map_or(Value::NULL, Value::string),
    );
    out.insert("next_run".into(), time(s.next_run_unix_ms));
    Ok(Value::object(out))
}

fn period_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn summary_value(s: &BackupSummary) -> Value {
    let mut out = Object::new();
    out.insert("name".into(), Value::str(&s.name));
    out.insert(
        "ts".into(),
        Value::Time(Time::from_micros(s.snapshot_ts as i64)),
    );
    out.insert(
        "created".into(),
        Value::Time(Time::from_micros(
            s.created_unix_ms.saturating_mul(1000) as i64
        )),
    );
    out.insert("bytes".into(), Value::Long(s.bytes as i64));
    out.insert("encrypted".into(), Value::Bool(s.encrypted));
    let count = |n: Option<u64>| n.map_or(Value::NULL, |n| Value::Long(n as i64));
    out.insert(
        "databases".into(),
        count(s.counts.as_ref().map(|c| c.databases)),
    );
    out.insert("keys".into(), count(s.counts.as_ref().map(|c| c.keys)));
    out.insert(
        "versions".into(),
        count(s.counts.as_ref().map(|c| c.versions)),
    );
    Value::object(out)
}

fn failure_error<T>(e: &BackupFailure, what: &str) -> R<T> {
    match e {
        BackupFailure::NotFound(m) => fail(ErrorCode::DocumentNotFound, format!("{what}: {m}")),
        BackupFailure::Unusable(m) => fail(ErrorCode::InvalidArgument, format!("{what}: {m}")),
        BackupFailure::Failed(m) => fail(ErrorCode::Abort, format!("{what}: {m}")),
    }
}

fn audit(it: &mut Interp<'_>, operation: &str, target: String, outcome: Outcome, ts: Option<u64>) {
    let Some(sink) = &it.shared.audit else {
        return;
    };
    let db = it.db();
    let path = backup::path_of(&mut it.txn, db).ok();
    sink.record(AuditEvent::Backup(AuditBackup {
        operation: operation.into(),
        target,
        outcome,
        database: Some(DatabaseRef {
            id: db.0,
            path: path.map(Into::into),
        }),
        credential: Some(crate::audit::credential_ref(&it.scope)),
        snapshot_ts: ts,
    }));
}

fn restore_error<T>(field: &str, message: impl Into<String>) -> R<T> {
    Err(constraint_error(
        "Failed to restore the backup.",
        vec![failure(field, message)],
    ))
}

/// What the caller asked to restore.
struct Request {
    backup: String,
    name: String,
    database: Option<String>,
    replace: bool,
}

fn parse_request(input: &Object) -> R<Request> {
    for key in input.keys() {
        if !matches!(key.as_str(), "backup" | "name" | "database" | "replace") {
            return restore_error(key, "Unexpected field provided.");
        }
    }
    let text = |field: &str| match input.get(field) {
        Some(Value::Str(s)) => Ok(Some(s.to_string())),
        None | Some(Value::Null(_)) => Ok(None),
        Some(other) => restore_error(
            field,
            format!("Expected String, provided {}", other.type_name()),
        ),
    };
    let Some(backup) = text("backup")? else {
        return restore_error("backup", "Missing required field.");
    };
    if !backup::valid_backup_name(&backup) {
        return restore_error(
            "backup",
            "Expected the name of a backup, as `Backup.all()` lists it.",
        );
    }
    let Some(name) = text("name")? else {
        return restore_error("name", "Missing required field.");
    };
    let replace = match input.get("replace") {
        None | Some(Value::Null(_)) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return restore_error(
                "replace",
                format!("Expected Boolean, provided {}", other.type_name()),
            );
        }
    };
    Ok(Request {
        backup,
        name,
        database: text("database")?,
        replace,
    })
}

/// `Backup.restore(...)`: see the module documentation and `crate::backup`.
fn restore(it: &mut Interp<'_>, input: &Object) -> R<Value> {
    let service = service(it)?;
    it.check_writable("restore")?;
    let request = parse_request(input)?;
    let here = it.db();
    let target = service.location(here, &request.backup);
    let result = restore_with(it, service.as_ref(), &request);
    let (outcome, ts) = match &result {
        Ok((_, ts)) => (Outcome::ok(), Some(*ts)),
        Err(e) => (Outcome::error(e.code.as_str()), None),
    };
    audit(it, "restore", target, outcome, ts);
    result.map(|(v, _)| v)
}

fn restore_with(
    it: &mut Interp<'_>,
    service: &dyn BackupService,
    request: &Request,
) -> R<(Value, u64)> {
    let here = it.db();
    let existing = tenancy::child_named(&mut it.txn, here, &request.name)?;
    match (existing, request.replace) {
        (Some(_), false) => {
            return restore_error(
                "name",
                format!(
                    "A database with the name `{}` already exists: choose another name, or \
                     give `replace: true` to replace it.",
                    request.name
                ),
            );
        }
        (None, true) => {
            return restore_error(
                "name",
                format!("No child database named `{}` to replace.", request.name),
            );
        }
        _ => {}
    }
    if let Some(problem) = crate::schema::collection::check_identifier(&request.name) {
        return restore_error("name", problem);
    }

    let mut source = match service.open(here, &request.backup) {
        Ok(source) => source,
        Err(e) => return failure_error(&e, &format!("Backup `{}`", request.backup)),
    };
    let snapshot_ts = source.snapshot_ts();

    // Pass 1: the database tree inside the backup.
    let mut databases: Vec<BackedUpDatabase> = Vec::new();
    while let Some(chunk) = next_chunk(source.as_mut(), &request.backup)? {
        backup::database_docs(&chunk, &mut databases);
    }
    let mut selected = here;
    if let Some(path) = &request.database {
        for name in path.split('/').filter(|n| !n.is_empty()) {
            match databases
                .iter()
                .find(|d| d.parent == selected && d.name == name)
            {
                Some(d) => selected = d.id,
                None => {
                    return restore_error(
                        "database",
                        format!("The backup holds no database `{path}`."),
                    );
                }
            }
        }
    }
    // The restored subtree, parents first, each with its depth below `selected`.
    let mut tree: Vec<(DbId, Option<DbId>, usize)> = vec![(selected, None, 0)];
    let mut i = 0;
    while let Some(&(db, _, depth)) = tree.get(i) {
        i += 1;
        for child in databases.iter().filter(|d| d.parent == db) {
            if depth + 1 >= tenancy::MAX_DEPTH || tree.iter().any(|(t, _, _)| *t == child.id) {
                continue;
            }
            tree.push((child.id, Some(db), depth + 1));
        }
    }
    let height = tree.iter().map(|(_, _, d)| *d).max().unwrap_or(0);
    if tenancy::depth(&mut it.txn, here)? + 1 + height > tenancy::MAX_DEPTH {
        return restore_error(
            "database",
            format!(
                "Restored here, the backup's databases would nest more than {} levels deep.",
                tenancy::MAX_DEPTH
            ),
        );
    }

    // A safety backup of the database being replaced, before anything is written.
    let safety = match existing {
        Some(old) if request.replace => {
            let prefixes = backup::subtree_prefixes(&mut it.txn, old)?;
            let prefixes = if prefixes.is_empty() {
                vec![old.0.to_be_bytes().to_vec()]
            } else {
                prefixes
            };
            match service.create(here, prefixes) {
                Ok(summary) => Some(summary),
                Err(e) => {
                    return failure_error(
                        &e,
                        "The safety backup of the database being replaced failed; nothing was \
                         restored",
                    );
                }
            }
        }
        _ => None,
    };

    let ids: HashMap<u64, DbId> = tree
        .iter()
        .map(|(old, _, _)| (old.0, DbId(it.new_id().0)))
        .collect();
    let new_id = |old: DbId| ids.get(&old.0).copied();
    let copied = copy_records(it, source.as_mut(), &request.backup, &ids)?;

    // The one transaction that makes the restored databases reachable.
    let Some(top) = new_id(selected) else {
        return fail(ErrorCode::Abort, "The restore lost its own database.");
    };
    let mut replaced_name = None;
    if let (Some(old), true) = (existing, request.replace) {
        let Some(mut fields) = tenancy::database_doc(&mut it.txn, here, old)? else {
            return restore_error("name", "The database to replace is gone.");
        };
        let renamed = format!("{}_replaced_{}", request.name, it.now().0);
        fields.insert("name".into(), Data::String(renamed.clone()));
        let r = DocRef {
            coll: DATABASE,
            id: DocId(old.0),
        };
        it.put_doc(r, Action::Write, "update", fields, None)?;
        replaced_name = Some(renamed);
    }
    let mut definition = Object::new();
    definition.insert("name".into(), Value::str(&request.name));
    let stored = schema::database::validate(it, &definition, top, "create")?;
    let top_ref = DocRef {
        coll: DATABASE,
        id: DocId(top.0),
    };
    it.put_doc(top_ref, Action::Create, "create", stored, None)?;
    for (old, parent, _) in &tree {
        let Some(new) = new_id(*old) else { continue };
        let parent = match parent {
            Some(p) => new_id(*p).unwrap_or(here),
            None => here,
        };
        it.txn
            .put(keys::db_parent(new), parent.0.to_be_bytes().to_vec());
        it.txn.put(keys::schema_marker(new), Vec::new());
        it.txn.delete(keys::db_garbage(new));
    }
    it.auth_changed = true;
    // The restore's own work is not the query's: give what follows its usual time.
    it.deadline = it.deadline.max(Instant::now() + Duration::from_secs(10));

    let mut out = Object::new();
    out.insert("database".into(), Value::Doc(top_ref));
    out.insert("backup".into(), Value::str(&request.backup));
    out.insert(
        "ts".into(),
        Value::Time(Time::from_micros(snapshot_ts as i64)),
    );
    out.insert("databases".into(), Value::Long(tree.len() as i64));
    out.insert("documents".into(), Value::Long(copied as i64));
    out.insert(
        "safety_backup".into(),
        safety.map_or(Value::NULL, |s| Value::string(s.name)),
    );
    out.insert(
        "replaced".into(),
        replaced_name.map_or(Value::NULL, Value::string),
    );
    Ok((Value::object(out), snapshot_ts))
}

fn next_chunk(source: &mut dyn BackupSource, name: &str) -> R<Option<Vec<backup::BackupRecord>>> {
    match source.next_chunk() {
        Ok(chunk) => Ok(chunk),
        Err(e) => failure_error(&e, &format!("Backup `{name}`")),
    }
}

/// Pass 2: writes the newest live version of every document and index entry of the
/// restored databases under their new ids, in batches of their own commits. Returns the
/// documents of user collections written.
fn copy_records(
    it: &mut Interp<'_>,
    source: &mut dyn BackupSource,
    name: &str,
    ids: &HashMap<u64, DbId>,
) -> R<u64> {
    let kv = it.shared.kv.clone();
    let commit = |writes: Vec<(Vec<u8>, Option<Vec<u8>>)>| -> R<()> {
        let set = WriteSet {
            snapshot_ts: kv.last_commit_ts(),
            read_keys: Vec::new(),
            read_ranges: Vec::new(),
            writes,
        };
        match kv.commit(set, None) {
            Ok(_) => Ok(()),
            Err(CommitError::Kv(e)) => Err(e.into()),
            Err(e) => fail(
                ErrorCode::Abort,
                format!("The restore could not write: {e}"),
            ),
        }
    };
    let markers = |writes: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>| {
        let value = backup::restoring_marker_value();
        for new in ids.values() {
            writes.push((keys::db_garbage(*new), Some(value.clone())));
        }
    };
    // The markers first: from here on, whatever is written is reclaimed if the restore
    // never commits.
    let mut first = Vec::new();
    markers(&mut first);
    commit(first)?;
    let mut marked_at = Instant::now();

    let excluded = [schema::KEY.0, schema::TOKEN.0, schema::CREDENTIAL.0];
    let restored: Vec<DbId> = ids.keys().map(|id| DbId(*id)).collect();
    source.restrict(&restored);
    let mut documents = 0u64;
    let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::new();
    let mut bytes = 0usize;
    source
        .rewind()
        .or_else(|e| failure_error(&e, &format!("Backup `{name}`")))?;
    while let Some(chunk) = next_chunk(source, name)? {
        if Instant::now() >= it.deadline {
            return fail(
                ErrorCode::TimeOut,
                "Query time limit exceeded while restoring: give the query a longer timeout \
                 (`X-Query-Timeout-Ms`).",
            );
        }
        for record in chunk {
            let Some((db, space, coll, doc)) = backup::split_key(&record.key) else {
                continue;
            };
            let Some(new) = ids.get(&db.0) else { continue };
            if space != keys::SPACE_DOC && space != keys::SPACE_INDEX {
                continue;
            }
            if excluded.contains(&coll) || (space == keys::SPACE_INDEX && coll == DATABASE.0) {
                continue;
            }
            let Some((_, Some(value))) = record.versions.into_iter().next() else {
                continue;
            };
            let mut key = new.0.to_be_bytes().to_vec();
            key.extend_from_slice(record.key.get(8..).unwrap_or_default());
            if space == keys::SPACE_DOC && coll == DATABASE.0 {
                // A child database's document is keyed by the child's id: its new one.
                let Some(child) = ids.get(&doc) else { continue };
                key = backup::with_doc_id(&key, DocId(child.0));
            }
            if space == keys::SPACE_DOC && coll >= testudo_model::CollId::FIRST_USER {
                documents += 1;
            }
            bytes += key.len() + value.len();
            batch.push((key, Some(value)));
            if batch.len() >= RESTORE_BATCH_KEYS || bytes >= RESTORE_BATCH_BYTES {
                if marked_at.elapsed() > backup::RESTORE_GRACE / 4 {
                    markers(&mut batch);
                    marked_at = Instant::now();
                }
                commit(std::mem::take(&mut batch))?;
                bytes = 0;
            }
        }
    }
    if !batch.is_empty() {
        commit(batch)?;
    }
    Ok(documents)
}
