//! Running one query: build the source, parse, then evaluate and commit as one
//! transaction, re-running it when the commit conflicts with a concurrent writer.
//!
//! **Invariants:** nothing is written unless the whole query succeeded and committed;
//! a query whose deadline passed before commit writes nothing and reports `time_out`; the
//! response's `txn_ts` is the commit timestamp of a write and the snapshot timestamp of a
//! read.

use std::rc::Rc;
use std::time::{Duration, Instant};

use testudo_fql::Span;
use testudo_fql::diagnostics::{self, Severity};
use testudo_model::{Input, Output, Ts, input::RefKey};
use testudo_storage::{CommitError, KvError};

use crate::api::{ErrorCode, Fragment, QueryError, QueryRequest, QueryResponse, Scope, Stats};
use crate::audit;
use crate::eval::{DocRef, Env, EvalError, Interp, Module, Value, err, placeholder_name};
use crate::txn::Txn;
use crate::{EngineShared, schema};

/// Deadlines shorter than this cannot be met (a commit alone needs a flush): such queries
/// are answered `time_out` at once, as Fauna answers "aggressive deadlines".
pub const MIN_TIMEOUT: Duration = Duration::from_millis(2);

/// One function call is one compute op per this many calls (at least one per query).
const CALLS_PER_COMPUTE_OP: u64 = 50;

/// The marker the engine uses for a template placeholder in query text. U+FFFF is not a
/// character FQL accepts anywhere, so user text cannot contain one.
pub const PLACEHOLDER: char = '\u{FFFF}';

pub fn run(shared: &EngineShared, scope: &Scope, req: QueryRequest) -> QueryResponse {
    let started = Instant::now();
    let mut stats = Stats::default();
    let (source, placeholders) = match build_source(req.fragments) {
        Ok(built) => built,
        Err(message) => {
            return early_error(
                shared,
                started,
                ErrorCode::InvalidQuery,
                message,
                String::new(),
            );
        }
    };
    if req.timeout < MIN_TIMEOUT {
        let message = format!(
            "Client set aggressive deadline: query needs at least {} ms, timed out within {} ms",
            MIN_TIMEOUT.as_millis(),
            req.timeout.as_millis()
        );
        return early_error(shared, started, ErrorCode::TimeOut, message, String::new());
    }
    let query = match testudo_fql::parse(&source, placeholders.len()) {
        Ok(q) => q,
        Err(errors) => {
            let summary = diagnostics::render_parse_errors(&source, &errors);
            let message = diagnostics::validation_failure_message(errors.0.len());
            return early_error(shared, started, ErrorCode::InvalidQuery, message, summary);
        }
    };
    let source: Rc<str> = Rc::from(source);

    let mut retries = 0u32;
    loop {
        let txn = match Txn::begin(shared.kv.as_ref()) {
            Ok(t) => t,
            Err(e) => {
                return early_error(
                    shared,
                    started,
                    ErrorCode::Internal,
                    storage_message(&e),
                    String::new(),
                );
            }
        };
        let mut it = Interp::new(
            shared,
            txn,
            scope.clone(),
            Default::default(),
            source.clone(),
            req.deadline,
        );
        it.client = req.client;
        let outcome = evaluate(&mut it, scope, &query, &placeholders, &req.arguments);
        stats.contention_retries = retries;
        let snapshot_ts = it.txn.ts();
        let schema_version = it.schema.version;
        let summary_logs = std::mem::take(&mut it.logs);
        fill_stats(&mut stats, &it, started);
        let trail = it.trail.take();
        let audit = |ending: audit::Ending, trail: audit::Trail| {
            if let Some(sink) = &shared.audit {
                audit::record(sink.as_ref(), scope, trail, ending);
            }
        };
        match outcome {
            Err(e) => {
                audit(audit::Ending::Failed(e.code.as_str()), trail);
                let (error, summary) = render_error(&mut it, *e, &source, summary_logs);
                return QueryResponse {
                    outcome: Err(error),
                    summary,
                    txn_ts: snapshot_ts,
                    stats,
                    schema_version,
                };
            }
            Ok(output) => {
                let summary = summary_logs.join("\n\n");
                if !it.txn.has_writes() {
                    audit(audit::Ending::Succeeded(snapshot_ts), trail);
                    return QueryResponse {
                        outcome: Ok(output),
                        summary,
                        txn_ts: snapshot_ts,
                        stats,
                        schema_version,
                    };
                }
                let schema_changed = it.schema_changed();
                let auth_changed = it.auth_changed;
                let builds = std::mem::take(&mut it.pending_builds);
                // A writer used the schema as of its snapshot: a schema change committed
                // since then must make it re-run.
                it.txn.depend_on(crate::keys::schema_marker(scope.db));
                let write_set = it.into_txn().into_write_set();
                let deleted = crate::tenancy::deleted_databases(&write_set);
                let commit = || {
                    shared
                        .kv
                        .commit(write_set, Some(req.deadline))
                        .map(|ts| (ts, ()))
                };
                let committed = if schema_changed {
                    shared.schemas.changing(commit)
                } else {
                    commit()
                };
                match committed.map(|(ts, ())| ts) {
                    Ok(ts) => {
                        audit(audit::Ending::Succeeded(ts), trail);
                        if auth_changed {
                            // Before answering: the next request already sees the change.
                            shared.auth.invalidate();
                        }
                        if !deleted.is_empty() {
                            // Before answering too: a deleted database's data is unreadable
                            // once the client hears of the deletion.
                            crate::tenancy::shred_keys(shared, &deleted);
                        }
                        for coll in builds {
                            shared.builder.request(scope.db, coll);
                        }
                        let schema_version = if schema_changed { ts } else { schema_version };
                        stats.query_time_ms = elapsed_ms(started);
                        return QueryResponse {
                            outcome: Ok(output),
                            summary,
                            txn_ts: ts,
                            stats,
                            schema_version,
                        };
                    }
                    Err(CommitError::Conflict)
                        if retries < req.max_contention_retries
                            && Instant::now() < req.deadline =>
                    {
                        retries += 1;
                    }
                    Err(CommitError::Conflict) => {
                        let e = QueryError {
                            code: ErrorCode::ContendedTransaction,
                            message: "Transaction was aborted due to detection of concurrent modifications.".into(),
                            abort: None,
                            constraint_failures: Vec::new(),
                        };
                        return QueryResponse {
                            outcome: Err(e),
                            summary,
                            txn_ts: snapshot_ts,
                            stats,
                            schema_version,
                        };
                    }
                    Err(CommitError::DeadlineExceeded) => {
                        return QueryResponse {
                            outcome: Err(timeout_error(req.timeout)),
                            summary,
                            txn_ts: snapshot_ts,
                            stats,
                            schema_version,
                        };
                    }
                    Err(CommitError::Kv(e)) => {
                        tracing::error!(error = %e, "commit failed");
                        let e = QueryError {
                            code: ErrorCode::Internal,
                            message: storage_message(&e),
                            abort: None,
                            constraint_failures: Vec::new(),
                        };
                        return QueryResponse {
                            outcome: Err(e),
                            summary,
                            txn_ts: snapshot_ts,
                            stats,
                            schema_version,
                        };
                    }
                }
            }
        }
    }
}

/// Evaluates the query and materializes its result, all inside the transaction.
fn evaluate(
    it: &mut Interp<'_>,
    scope: &Scope,
    query: &testudo_fql::Query,
    placeholders: &[Input],
    arguments: &[(String, Input)],
) -> Result<Output, Box<EvalError>> {
    it.schema = it.shared.schemas.get(scope.db, &mut it.txn)?;
    if let Some((coll, id)) = scope.identity {
        // Authentication is cached; whether the identity still exists is checked in every
        // query's own snapshot (deleting the identity document ends its tokens at once).
        let key = crate::keys::doc(scope.db, coll, id);
        let live = it
            .txn
            .get(&key)?
            .and_then(|r| r.value)
            .map(|b| testudo_model::codec::decode_doc(&b))
            .transpose()?;
        let expired = live
            .as_ref()
            .and_then(|d| d.ttl)
            .is_some_and(|t| t <= it.now().to_time());
        if live.is_none() || expired {
            return Err(err(ErrorCode::Unauthorized, "Access token required"));
        }
    }
    it.assume_roles()?;
    let mut env = Env::default();
    for (name, value) in arguments {
        let v = bind_input(it, value).map_err(|m| {
            err(
                ErrorCode::InvalidRequest,
                format!("Invalid argument '{name}': {m}"),
            )
        })?;
        env = env.bind(Rc::from(name.as_str()), v);
    }
    for (i, value) in placeholders.iter().enumerate() {
        let v = bind_input(it, value)
            .map_err(|m| err(ErrorCode::InvalidQuery, format!("Invalid query value: {m}")))?;
        env = env.bind(Rc::from(placeholder_name(i).as_str()), v);
    }
    let result = it.eval_body(&query.body, &env)?;
    it.materialize(&result)
}

/// A request value as a runtime value, resolving collection names against the schema.
fn bind_input(it: &mut Interp<'_>, input: &Input) -> Result<Value, String> {
    Ok(match input {
        Input::Null => Value::NULL,
        Input::Bool(b) => Value::Bool(*b),
        Input::Int(i) => Value::Int(*i),
        Input::Long(l) => Value::Long(*l),
        Input::Double(d) => Value::Double(*d),
        Input::String(s) => Value::str(s),
        Input::Bytes(b) => Value::Bytes(Rc::from(b.as_slice())),
        Input::Time(t) => Value::Time(*t),
        Input::Date(d) => Value::Date(*d),
        Input::Array(items) => Value::array(
            items
                .iter()
                .map(|i| bind_input(it, i))
                .collect::<Result<_, _>>()?,
        ),
        Input::Object(fields) => {
            let mut o = crate::eval::Object::with_capacity(fields.len());
            for (k, v) in fields {
                o.insert(k.clone(), bind_input(it, v)?);
            }
            Value::object(o)
        }
        Input::Module(name) => {
            let schema_first = crate::stdlib::is_extension_module(name)
                .then(|| it.schema_value(name))
                .flatten();
            if let Some(m) = schema_first {
                return Ok(m);
            }
            match crate::stdlib::global(name).filter(|v| matches!(v, Value::Module(_))) {
                Some(m) => m,
                None => it
                    .schema_value(name)
                    .ok_or_else(|| format!("no such module `{name}`"))?,
            }
        }
        Input::Ref { coll, key } => {
            if let Some(system) = schema::system_by_name(coll) {
                match key {
                    RefKey::Id(id) => Value::Doc(DocRef {
                        coll: system,
                        id: *id,
                    }),
                    RefKey::Name(name) if system == schema::COLLECTION => {
                        match it.schema.collection(name) {
                            Some(def) => Value::Doc(DocRef {
                                coll: schema::COLLECTION,
                                id: testudo_model::DocId(def.id.0),
                            }),
                            None => return Err(format!("no such schema object `{name}`")),
                        }
                    }
                    RefKey::Name(name) => return Err(format!("no such schema object `{name}`")),
                }
            } else {
                let Some(Value::Module(Module::Collection(c))) = it.schema_value(coll) else {
                    return Err(format!("no such collection `{coll}`"));
                };
                match key {
                    RefKey::Id(id) => Value::Doc(DocRef {
                        coll: c.id,
                        id: *id,
                    }),
                    RefKey::Name(_) => {
                        return Err(format!("documents of `{coll}` are identified by id"));
                    }
                }
            }
        }
    })
}

/// Joins the template fragments into one source text, marking each value with
/// [`PLACEHOLDER`].
fn build_source(fragments: Vec<Fragment>) -> Result<(String, Vec<Input>), String> {
    let mut source = String::new();
    let mut values = Vec::new();
    for f in fragments {
        match f {
            Fragment::Text(t) => {
                if t.contains(PLACEHOLDER) {
                    return Err("The query contains an invalid character (U+FFFF).".into());
                }
                source.push_str(&t);
            }
            Fragment::Value(v) => {
                source.push(PLACEHOLDER);
                values.push(v);
            }
        }
    }
    Ok((source, values))
}

fn render_error(
    it: &mut Interp<'_>,
    e: EvalError,
    source: &str,
    logs: Vec<String>,
) -> (QueryError, String) {
    let abort = match (&e.code, e.abort) {
        (ErrorCode::Abort, Some(v)) => Some(it.materialize(&v).unwrap_or(Output::Null)),
        _ => None,
    };
    let message = if e.code == ErrorCode::TimeOut {
        "Client set aggressive deadline: the query did not finish before its timeout.".to_string()
    } else {
        e.message
    };
    // An error inside a user function points into the function's body.
    let (source_name, source) = match &e.origin {
        Some((name, text)) => (format!("*{name}*"), &**text),
        None => ("*query*".to_string(), source),
    };
    let span = e.span.unwrap_or(Span {
        start: 0,
        end: source.len() as u32,
    });
    let diagnostic = diagnostics::Diagnostic::new(Severity::Error, message.clone(), span);
    let mut summary_parts = logs;
    summary_parts.push(diagnostic.render_in(&source_name, source));
    let error = QueryError {
        code: e.code,
        message,
        abort,
        constraint_failures: e.constraint_failures,
    };
    (error, summary_parts.join("\n\n"))
}

fn timeout_error(timeout: Duration) -> QueryError {
    QueryError {
        code: ErrorCode::TimeOut,
        message: format!(
            "Client set aggressive deadline: the query did not commit within its timeout of {} ms.",
            timeout.as_millis()
        ),
        abort: None,
        constraint_failures: Vec::new(),
    }
}

fn storage_message(e: &testudo_storage::KvError) -> String {
    tracing::error!(error = %e, "storage failure");
    "The server could not access its storage.".into()
}

/// An error before any transaction ran: parse errors, bad placeholders, hopeless deadlines.
/// It still reports a fresh transaction timestamp, as every query response does.
/// The answer to a query a storage failure stopped before it began.
pub fn storage_failure(shared: &EngineShared, started: Instant, e: &KvError) -> QueryResponse {
    early_error(
        shared,
        started,
        ErrorCode::Internal,
        storage_message(e),
        String::new(),
    )
}

/// The answer to a query refused by a database's rate limits (nothing of it ran). It reads
/// no storage — it may be built on the network thread, and a flood of refusals should cost
/// as little as possible: the transaction time is the newest commit's, the schema version
/// the one last loaded for the database (0 if none was).
pub fn rate_limited(
    shared: &EngineShared,
    db: testudo_model::DbId,
    started: Instant,
    refusal: &crate::limits::Refusal,
) -> QueryResponse {
    let kind = match refusal.limit {
        "read_ops_per_second" => "read",
        "write_ops_per_second" => "write",
        _ => "compute",
    };
    QueryResponse {
        outcome: Err(QueryError {
            code: ErrorCode::LimitExceeded,
            message: format!(
                "Rate limit exceeded: database {} is over its `{}` limit. Retry later.",
                refusal.db.0, refusal.limit
            ),
            abort: None,
            constraint_failures: Vec::new(),
        }),
        summary: String::new(),
        txn_ts: shared.kv.last_commit_ts(),
        stats: Stats {
            compute_ops: 1,
            query_time_ms: elapsed_ms(started),
            rate_limits_hit: vec![kind],
            ..Stats::default()
        },
        schema_version: shared.schemas.cached_version(db).unwrap_or(Ts::ZERO),
    }
}

fn early_error(
    shared: &EngineShared,
    started: Instant,
    code: ErrorCode,
    message: String,
    summary: String,
) -> QueryResponse {
    let (txn_ts, schema_version) = match Txn::begin(shared.kv.as_ref()) {
        Ok(mut txn) => {
            let version = txn
                .get(&crate::keys::schema_marker(testudo_model::DbId::ROOT))
                .ok()
                .flatten()
                .and_then(|r| r.ts)
                .unwrap_or(Ts::ZERO);
            (txn.ts(), version)
        }
        Err(_) => (shared.kv.last_commit_ts(), Ts::ZERO),
    };
    let stats = Stats {
        compute_ops: 1,
        query_time_ms: elapsed_ms(started),
        ..Stats::default()
    };
    QueryResponse {
        outcome: Err(QueryError {
            code,
            message,
            abort: None,
            constraint_failures: Vec::new(),
        }),
        summary,
        txn_ts,
        stats,
        schema_version,
    }
}

fn fill_stats(stats: &mut Stats, it: &Interp<'_>, started: Instant) {
    stats.compute_ops = it.calls.div_ceil(CALLS_PER_COMPUTE_OP).max(1);
    stats.read_ops = it.doc_reads;
    stats.write_ops = it.doc_writes;
    stats.storage_bytes_read = it.txn.io.bytes_read;
    stats.storage_bytes_write = it.txn.io.bytes_written;
    stats.query_time_ms = elapsed_ms(started);
}

/// Elapsed milliseconds, rounded up: a query always takes some time.
fn elapsed_ms(started: Instant) -> u64 {
    let micros = started.elapsed().as_micros();
    u64::try_from(micros.div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}
