//! The `Database` system module: child databases as documents of their parent.

use testudo_model::{Data, DataMap, DbId, DocId};

use super::args::{arg, object_arg};
use super::{MethodDef, def, exactly};
use crate::authz::Action;
use crate::eval::{DocRef, Interp, Object, R, Value};
use crate::schema::collection::{constraint_error, failure};
use crate::schema::{DATABASE, database::validate};
use crate::{keys, tenancy};

pub fn database_module_method(name: &str) -> Option<MethodDef> {
    Some(match name {
        "create" => def("create", exactly(1), |it, _, a| {
            it.check_writable("create")?;
            let input = object_arg(&arg(&a, 0), "definition")?;
            let (r, _) = create_child(it, &input)?;
            Ok(Value::Doc(r))
        }),
        "restore" => def("restore", exactly(1), |it, _, a| {
            it.check_writable("restore")?;
            let input = object_arg(&arg(&a, 0), "restore")?;
            restore(it, &input)
        }),
        other => return super::system::listing_method_for(DATABASE, other),
    })
}

/// Creates a child database of the current one from its definition.
fn create_child(it: &mut Interp<'_>, input: &Object) -> R<(DocRef, DbId)> {
    let db = it.db();
    if tenancy::depth(&mut it.txn, db)? >= tenancy::MAX_DEPTH {
        return Err(constraint_error(
            "Failed to create document in collection Database.",
            vec![failure(
                "name",
                format!("Databases nest at most {} levels deep.", tenancy::MAX_DEPTH),
            )],
        ));
    }
    let child = DbId(it.new_id().0);
    let mut input = input.clone();
    let schedule = take_schedule(it, &mut input, "create")?;
    let mut stored = validate(it, &input, child, "create")?;
    if let Some(schedule) = schedule {
        stored.insert("backup".into(), schedule);
    }
    let r = DocRef {
        coll: DATABASE,
        id: DocId(child.0),
    };
    it.put_doc(r, Action::Create, "create", stored, None)?;
    // The child's registry entry and schema marker: it exists from this commit on.
    it.txn
        .put(keys::db_parent(child), it.db().0.to_be_bytes().to_vec());
    it.txn.put(keys::schema_marker(child), Vec::new());
    Ok((r, child))
}

/// The most a point-in-time restore copies in its one transaction.
pub const MAX_RESTORE_KEYS: usize = 200_000;
pub const MAX_RESTORE_BYTES: u64 = 128 * 1024 * 1024;

/// `Database.restore({ from, at, name, ...definition })` (beyond Fauna): a new child
/// database `name` holding what the child database `from` held at time `at` — collections
/// and their settings, documents, indexes, functions, roles and access providers — read from
/// the retained history, without a backup. Nothing existing is touched. Keys, tokens,
/// credentials and child databases are not restored: secrets of the old database never open
/// the new one, and access is granted again deliberately. Documents carry the restore's
/// timestamp. Admin only.
fn restore(it: &mut Interp<'_>, input: &Object) -> R<Value> {
    if !matches!(it.perms.perms, crate::authz::Perms::Admin) {
        return crate::gate::denied();
    }
    let from = match input.get("from") {
        Some(Value::Str(name)) => name.to_string(),
        _ => return restore_error("from", "Expected the name of a child database."),
    };
    let here = it.db();
    let Some(source) = tenancy::child_named(&mut it.txn, here, &from)? else {
        return restore_error("from", format!("No child database named `{from}`."));
    };
    let at = match input.get("at") {
        Some(t @ (Value::Time(_) | Value::TxnTime)) => it.snapshot_time_arg(t)?,
        _ => return restore_error("at", "Expected a Time."),
    };
    let mut definition: Object = Object::clone(input);
    definition.shift_remove("from");
    definition.shift_remove("at");
    let (r, target) = create_child(it, &definition)?;

    let now = it.now();
    let source_schema = crate::schema::Schema::load(source, now, &mut it.txn)?;
    let excluded = [
        DATABASE,
        crate::schema::KEY,
        crate::schema::TOKEN,
        crate::schema::CREDENTIAL,
    ];
    // Every collection the source has now must still retain `at`, or documents it held then
    // (deleted since) might be missing from the copy.
    for def in source_schema.collections() {
        if at
            .0
            .saturating_add(crate::reclaim::retention_micros(Some(def)))
            < now.0
        {
            return restore_error(
                "at",
                format!(
                    "{} is before the history retained for collection `{}` of `{from}`: restore from a backup instead.",
                    at.to_time(),
                    def.name
                ),
            );
        }
    }
    let mut range = keys::db_range(source);
    let (mut copied, mut bytes) = (0usize, 0u64);
    let mut checked: Vec<u64> = Vec::new();
    loop {
        let page = it.txn.scan(
            &range,
            testudo_storage::ScanOrder::Ascending,
            1024,
            Some(at),
        )?;
        let mut last = None;
        for (key, read) in page.entries {
            last = Some(key.clone());
            let (Some(space), Some(value)) = (key.get(8).copied(), read.value) else {
                continue;
            };
            // Documents and index entries only: metadata is rebuilt, secrets never copied.
            if space != keys::SPACE_DOC && space != keys::SPACE_INDEX {
                continue;
            }
            let Some(coll) = key
                .get(9..17)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(|b| testudo_model::CollId(u64::from_be_bytes(b)))
            else {
                continue;
            };
            if excluded.contains(&coll) {
                continue;
            }
            if !checked.contains(&coll.0) {
                let retention = crate::reclaim::retention_micros(
                    source_schema.collection_by_id(coll).map(|d| &**d),
                );
                if at.0.saturating_add(retention) < it.now().0 {
                    return restore_error(
                        "at",
                        format!(
                            "{} is before the history retained for collection `{}` of `{from}`: restore from a backup instead.",
                            at.to_time(),
                            source_schema
                                .collection_by_id(coll)
                                .map_or_else(|| coll.0.to_string(), |d| d.name.clone())
                        ),
                    );
                }
                checked.push(coll.0);
            }
            copied += 1;
            bytes += (key.len() + value.len()) as u64;
            if copied > MAX_RESTORE_KEYS || bytes > MAX_RESTORE_BYTES {
                return crate::eval::fail(
                    crate::api::ErrorCode::LimitExceeded,
                    format!(
                        "`{from}` is too large to restore in one transaction (more than {MAX_RESTORE_KEYS} entries or {} MiB): restore from a backup instead.",
                        MAX_RESTORE_BYTES >> 20
                    ),
                );
            }
            let mut new_key = target.0.to_be_bytes().to_vec();
            new_key.extend_from_slice(&key[8..]);
            it.txn.put(new_key, value);
        }
        match (page.more, last) {
            (true, Some(key)) => {
                let mut next = key;
                next.push(0);
                range = testudo_storage::KeyRange {
                    start: next,
                    end: range.end.clone(),
                };
            }
            _ => break,
        }
    }
    it.auth_changed = true;
    Ok(Value::Doc(r))
}

/// Takes the `backup` schedule (beyond Fauna: `{ every: "6h", keep: 28 }`) out of a
/// database definition, checked, to be stored beside what `validate` returns. `null`
/// removes it.
fn take_schedule(it: &Interp<'_>, def: &mut Object, verb: &str) -> R<Option<Data>> {
    let Some(value) = def.shift_remove("backup") else {
        return Ok(None);
    };
    if matches!(value, Value::Null(_)) {
        return Ok(None);
    }
    let refuse = |message: String| {
        Err(constraint_error(
            format!("Failed to {verb} document in collection Database."),
            vec![failure("backup", message)],
        ))
    };
    let Some(service) = &it.shared.backups else {
        return refuse(
            "Backups are not configured on this server: start it with `--backup-dir DIR`.".into(),
        );
    };
    let data = crate::docs::to_data(&value)?;
    match crate::backup::parse_schedule(&data, service.min_schedule()) {
        Ok(_) => Ok(Some(data)),
        Err(message) => refuse(message),
    }
}

fn restore_error<T>(field: &str, message: impl Into<String>) -> R<T> {
    Err(constraint_error(
        "Failed to restore database.",
        vec![failure(field, message)],
    ))
}

/// Updates or replaces a database document (rename, flags, data).
pub fn write_definition(it: &mut Interp<'_>, r: DocRef, patch: &Object, replace: bool) -> R<Value> {
    let verb = if replace { "replace" } else { "update" };
    it.check_writable(verb)?;
    let current = it.require_doc(r)?;
    let merged: Object = if replace {
        patch.clone()
    } else {
        let mut base: DataMap = crate::docs::fields_to_data(&current)?;
        crate::docs::merge_patch(&mut base, patch)?;
        base.into_iter()
            .map(|(k, v)| (k, crate::docs::from_data(v, None)))
            .collect()
    };
    let mut merged = merged;
    let schedule = take_schedule(it, &mut merged, verb)?;
    let mut stored = validate(it, &merged, DbId(r.id.0), verb)?;
    if let Some(schedule) = schedule {
        stored.insert("backup".into(), schedule);
    }
    it.put_doc(r, Action::Write, verb, stored, None)?;
    it.auth_changed = true;
    Ok(Value::Doc(r))
}

/// Deletes a child database: it and every descendant become unreachable when this commits
/// (their secrets stop working); their data is reclaimed in the background.
pub fn delete_database(it: &mut Interp<'_>, r: DocRef) -> R<Value> {
    it.refuse_if_protected("delete a database")?;
    it.require_doc(r)?;
    it.delete_doc_version(r)?;
    it.txn.put(keys::db_garbage(DbId(r.id.0)), Vec::new());
    it.auth_changed = true;
    Ok(Value::Doc(r))
}
