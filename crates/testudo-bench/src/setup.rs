//! Preparing a scenario through the public API, before any load: the collection exists, the
//! documents a scenario reads are there, and one request of the scenario succeeds.
//!
//! Idempotent: a second run against the same server reuses the collection and the documents
//! (it only creates what is missing), so `scripts/bench` can run every concurrency level
//! against one seeded server. The large seedings (`index-lookup`, `order-*`) create documents
//! numbered `0, 1, 2, …` in order, a few thousand per transaction, so what a store holds is
//! always a prefix of that numbering: an interrupted seeding resumes where it stopped, found
//! in a few cheap queries (never by counting a million documents).
//!
//! **Invariants:** a scenario is only run after one of its requests answered 200 with the
//! secret the run uses; the scan is only run over exactly [`SCAN_DOCS`] documents, and only if
//! it returns them all; `index-lookup` and `order-*` refuse a collection holding more
//! documents than asked for (their cost depends on the size), and the order scenarios only
//! run if both return the same ten documents, the ones with the largest `n`.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::{ClientError, Connection, Target};
use crate::scenario::{
    self, FILLER, INDEX_COLLECTION, INDEX_NAME, ORDER_COLLECTION, ORDER_INDEX, ORDER_TAKE,
    PASSWORD, READ_COLLECTION, SCAN_COLLECTION, SCAN_DOCS, Scenario, SecretKind, USER_COLLECTION,
    Workload, int, text, value,
};

/// Documents created per seeding query (one transaction each) by the original scenarios.
const SEED_BATCH: usize = 100;
/// The default of `--seed-batch`: documents per `Set.sequence(...).forEach(...)` seeding query.
pub const SEQUENCE_BATCH: usize = 2_000;
/// How often a long seeding reports its progress on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Ids listed per page while collecting the seeded documents.
const ID_PAGE: usize = 1_000;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the server answered {status} to a setup query: {body}")]
    Status { status: u16, body: String },
    #[error("unexpected answer to a setup query: {0}")]
    Unexpected(String),
}

/// What to prepare.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    pub scenario: Scenario,
    /// Documents the scenario reads (see `--docs`).
    pub docs: usize,
    /// Documents per seeding query for the scenarios seeded with `Set.sequence`.
    pub seed_batch: usize,
    /// Report the progress of a long seeding on stderr.
    pub progress: bool,
}

/// What setup did to the collection a scenario reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Seeding {
    /// The collection seeded (`None` for scenarios that read none).
    pub collection: Option<&'static str>,
    /// Documents it held before.
    pub found: u64,
    /// Documents created now.
    pub created: u64,
    /// Time spent creating them.
    pub elapsed: Duration,
}

impl Seeding {
    fn none() -> Seeding {
        Seeding {
            collection: None,
            found: 0,
            created: 0,
            elapsed: Duration::ZERO,
        }
    }

    pub fn docs_per_sec(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 {
            self.created as f64 / seconds
        } else {
            0.0
        }
    }
}

/// A prepared scenario: what its requests send, and what seeding did.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub workload: Workload,
    pub seeding: Seeding,
}

/// Prepares `scenario` on the server behind `target` and returns what its requests send.
pub async fn prepare(
    target: &Target,
    scenario: Scenario,
    docs: usize,
) -> Result<Workload, SetupError> {
    let options = SetupOptions {
        scenario,
        docs,
        seed_batch: SEQUENCE_BATCH,
        progress: false,
    };
    Ok(prepare_with(target, &options).await?.workload)
}

/// [`prepare`] with every setting, reporting what seeding did.
pub async fn prepare_with(target: &Target, options: &SetupOptions) -> Result<Prepared, SetupError> {
    let SetupOptions { scenario, docs, .. } = *options;
    let mut conn = Connection::open(target).await?;
    let mut seeding = Seeding::none();
    let workload = match scenario {
        Scenario::PointRead => {
            ensure_collection(target, &mut conn, READ_COLLECTION).await?;
            fill(target, &mut conn, READ_COLLECTION, docs).await?;
            let ids = list_ids(target, &mut conn, READ_COLLECTION, docs).await?;
            Workload::Pick(ids.iter().map(|id| scenario::point_read_body(id)).collect())
        }
        Scenario::Create => {
            ensure_collection(target, &mut conn, scenario::WRITE_COLLECTION).await?;
            Workload::Create
        }
        Scenario::Scan100 => {
            ensure_collection(target, &mut conn, SCAN_COLLECTION).await?;
            fill(target, &mut conn, SCAN_COLLECTION, SCAN_DOCS).await?;
            Workload::Fixed(scenario::scan_body())
        }
        Scenario::Hello => Workload::Fixed(scenario::point_read_body("0")),
        Scenario::IndexLookup => {
            let indexes = format!("{{ {INDEX_NAME}: {{ terms: [{{ field: \"key\" }}] }} }}");
            ensure_collection_with(target, &mut conn, INDEX_COLLECTION, &indexes).await?;
            let found = seeded_by_key(target, &mut conn, docs).await?;
            seeding = seed_sequence(target, &mut conn, INDEX_COLLECTION, found, options).await?;
            Workload::IndexLookup { docs: docs as u64 }
        }
        Scenario::OrderIndex | Scenario::OrderScan => {
            let indexes =
                format!("{{ {ORDER_INDEX}: {{ values: [{{ field: \"n\", order: \"desc\" }}] }} }}");
            ensure_collection_with(target, &mut conn, ORDER_COLLECTION, &indexes).await?;
            let found = seeded_by_order(target, &mut conn).await?;
            if found > docs {
                return Err(too_many(ORDER_COLLECTION, &found.to_string(), docs));
            }
            seeding = seed_sequence(target, &mut conn, ORDER_COLLECTION, found, options).await?;
            check_order(target, &mut conn, docs).await?;
            Workload::Fixed(if scenario == Scenario::OrderIndex {
                scenario::order_index_body()
            } else {
                scenario::order_scan_body()
            })
        }
        Scenario::OnePlusOne => Workload::Fixed(scenario::one_plus_one_body()),
        Scenario::Login => {
            let user = ensure_user(target, &mut conn).await?;
            let user_value = || value(Value::String(user.clone()));
            let doc = || {
                [
                    text(&format!("{USER_COLLECTION}.byId(")),
                    user_value(),
                    text(")!"),
                ]
            };
            let mut fragments = vec![text("Credential.byDocument(")];
            fragments.extend(doc());
            fragments.push(text(") ?? Credential.create({ document: "));
            fragments.extend(doc());
            fragments.extend([
                text(", password: "),
                value(Value::String(PASSWORD.to_owned())),
                text(" })\nnull"),
            ]);
            query(target, &mut conn, fragments).await?;
            Workload::Fixed(scenario::login_body(&user))
        }
    };
    check_one_request(target, &mut conn, scenario, &workload).await?;
    Ok(Prepared { workload, seeding })
}

/// Creates the secret the measured requests carry, when it is not `--secret` itself: a key
/// with the `server` role, or a token for the benchmark user. Each call issues a new one.
pub async fn issue_secret(target: &Target, kind: SecretKind) -> Result<Option<String>, SetupError> {
    let mut conn = Connection::open(target).await?;
    let fragments = match kind {
        SecretKind::Root => return Ok(None),
        SecretKind::Key => vec![text("Key.create({ role: \"server\" }).secret")],
        SecretKind::Token => {
            let user = ensure_user(target, &mut conn).await?;
            vec![
                text(&format!(
                    "Token.create({{ document: {USER_COLLECTION}.byId("
                )),
                value(Value::String(user)),
                text(")! }).secret"),
            ]
        }
    };
    let secret = query(target, &mut conn, fragments).await?;
    secret
        .as_str()
        .map(|s| Some(s.to_owned()))
        .ok_or_else(|| SetupError::Unexpected(format!("a new {} secret was {secret}", kind.name())))
}

/// Sends one request of a prepared workload through `target` (the secret of the run) and
/// checks that it is answered 200.
pub async fn check_as(
    target: &Target,
    scenario: Scenario,
    workload: &Workload,
) -> Result<(), SetupError> {
    let mut conn = Connection::open(target).await?;
    check_one_request(target, &mut conn, scenario, workload).await
}

/// Runs one query and returns its `data` (tagged format).
async fn query(
    target: &Target,
    conn: &mut Connection,
    fragments: Vec<Value>,
) -> Result<Value, SetupError> {
    let request = target.setup_request(scenario::query_body(fragments))?;
    let reply = conn.send(request).await?;
    if reply.status != 200 {
        return Err(SetupError::Status {
            status: reply.status,
            body: String::from_utf8_lossy(&reply.body).into_owned(),
        });
    }
    let mut parsed: Value = serde_json::from_slice(&reply.body)
        .map_err(|err| SetupError::Unexpected(format!("not JSON: {err}")))?;
    parsed
        .get_mut("data")
        .map(Value::take)
        .ok_or_else(|| SetupError::Unexpected("no `data` in the response".to_owned()))
}

async fn ensure_collection(
    target: &Target,
    conn: &mut Connection,
    name: &str,
) -> Result<(), SetupError> {
    let name_value = || value(Value::String(name.to_owned()));
    query(
        target,
        conn,
        vec![
            text("Collection.byName("),
            name_value(),
            text(") ?? Collection.create({ name: "),
            name_value(),
            text(" })\nnull"),
        ],
    )
    .await?;
    Ok(())
}

/// Creates `name` with `indexes` (FQL object text) unless it exists. An existing collection is
/// used as it is: if it lacks the index, the scenario's first request fails and says so.
async fn ensure_collection_with(
    target: &Target,
    conn: &mut Connection,
    name: &str,
    indexes: &str,
) -> Result<(), SetupError> {
    let name_value = || value(Value::String(name.to_owned()));
    query(
        target,
        conn,
        vec![
            text("Collection.byName("),
            name_value(),
            text(") ?? Collection.create({ name: "),
            name_value(),
            text(&format!(", indexes: {indexes} }})\nnull")),
        ],
    )
    .await?;
    Ok(())
}

/// The id of the benchmark user (the first document of [`USER_COLLECTION`], created if there
/// is none).
async fn ensure_user(target: &Target, conn: &mut Connection) -> Result<String, SetupError> {
    ensure_collection(target, conn, USER_COLLECTION).await?;
    let id = query(
        target,
        conn,
        vec![text(&format!(
            "({USER_COLLECTION}.all().first() ?? {USER_COLLECTION}.create({{ name: \"bench\" }})).id"
        ))],
    )
    .await?;
    id.as_str()
        .map(str::to_owned)
        .ok_or_else(|| SetupError::Unexpected(format!("the user id was {id}")))
}

/// A collection holding more documents (`holds`, e.g. "12000" or "more than 10000") than
/// the run asked for.
fn too_many(collection: &str, holds: &str, wanted: usize) -> SetupError {
    SetupError::Unexpected(format!(
        "{collection} holds {holds} documents, the run asked for {wanted}: the scenario's cost \
         depends on the size, so ask for all of them with --docs or use a fresh data directory"
    ))
}

/// How many documents of the `0, 1, 2, …` numbering [`INDEX_COLLECTION`] holds, found by
/// bisection over index lookups (what a store holds is a prefix of the numbering); refuses a
/// collection holding more than `wanted`.
async fn seeded_by_key(
    target: &Target,
    conn: &mut Connection,
    wanted: usize,
) -> Result<usize, SetupError> {
    // Invariant: term `lo - 1` exists (or lo = 0), term `hi` does not (or hi = wanted + 1).
    let (mut lo, mut hi) = (0usize, wanted.saturating_add(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if key_exists(target, conn, mid).await? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo > wanted {
        return Err(too_many(
            INDEX_COLLECTION,
            &format!("more than {wanted}"),
            wanted,
        ));
    }
    Ok(lo)
}

async fn key_exists(target: &Target, conn: &mut Connection, i: usize) -> Result<bool, SetupError> {
    let data = query(
        target,
        conn,
        vec![
            text(&format!("{INDEX_COLLECTION}.{INDEX_NAME}(")),
            value(Value::String(scenario::index_key(i as u64))),
            text(").first() != null"),
        ],
    )
    .await?;
    data.as_bool()
        .ok_or_else(|| SetupError::Unexpected(format!("an existence test answered {data}")))
}

/// How many documents of the `0, 1, 2, …` numbering [`ORDER_COLLECTION`] holds: one more than
/// the largest `n`, read from the top of its index.
async fn seeded_by_order(target: &Target, conn: &mut Connection) -> Result<usize, SetupError> {
    let data = query(
        target,
        conn,
        vec![text(&format!(
            "({ORDER_COLLECTION}.{ORDER_INDEX}().first()?.n ?? -1) + 1"
        ))],
    )
    .await?;
    tagged_int(&data)
}

fn tagged_int(data: &Value) -> Result<usize, SetupError> {
    data.get("@int")
        .and_then(Value::as_str)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| SetupError::Unexpected(format!("expected a count, got {data}")))
}

/// Creates documents `found..options.docs` of `collection` in order, `options.seed_batch` per
/// query (`Set.sequence(a, b).forEach(i => C.create({ key: "k<i>", n: i, s: <filler> }))`),
/// reporting progress on stderr when asked to.
async fn seed_sequence(
    target: &Target,
    conn: &mut Connection,
    collection: &'static str,
    found: usize,
    options: &SetupOptions,
) -> Result<Seeding, SetupError> {
    let wanted = options.docs;
    let started = Instant::now();
    let mut reported = started;
    let mut have = found;
    while have < wanted {
        let end = wanted.min(have.saturating_add(options.seed_batch));
        let as_int = |n: usize| value(int(i64::try_from(n).unwrap_or(i64::MAX)));
        let fragments = vec![
            text("Set.sequence("),
            as_int(have),
            text(", "),
            as_int(end),
            text(&format!(
                ").forEach(i => {collection}.create({{ key: \"k\" + i.toString(), n: i, s: "
            )),
            value(Value::String(FILLER.to_owned())),
            text(" }))\nnull"),
        ];
        query(target, conn, fragments).await?;
        have = end;
        if options.progress && reported.elapsed() >= PROGRESS_EVERY {
            reported = Instant::now();
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "seeding {collection}: {have} of {wanted} documents, {:.0} created per second",
                (have - found) as f64 / seconds
            );
        }
    }
    Ok(Seeding {
        collection: Some(collection),
        found: found as u64,
        created: (have - found) as u64,
        elapsed: started.elapsed(),
    })
}

/// Both order queries return the `min(docs, 10)` documents with the largest `n`, largest
/// first: otherwise the two scenarios would not measure the same answer.
async fn check_order(
    target: &Target,
    conn: &mut Connection,
    docs: usize,
) -> Result<(), SetupError> {
    let expected: Vec<usize> = (0..docs).rev().take(ORDER_TAKE).collect();
    for body in [scenario::order_index_body(), scenario::order_scan_body()] {
        let reply = conn.send(target.setup_request(body)?).await?;
        let parsed: Value = serde_json::from_slice(&reply.body)
            .map_err(|err| SetupError::Unexpected(format!("not JSON: {err}")))?;
        let ns: Option<Vec<usize>> = parsed["data"].as_array().map(|docs| {
            docs.iter()
                .filter_map(|doc| tagged_int(&doc["@doc"]["n"]).ok())
                .collect()
        });
        if reply.status != 200 || ns.as_ref() != Some(&expected) {
            return Err(SetupError::Unexpected(format!(
                "an order query answered {} with n = {ns:?}, expected {expected:?}",
                reply.status
            )));
        }
    }
    Ok(())
}

async fn count(
    target: &Target,
    conn: &mut Connection,
    collection: &str,
) -> Result<usize, SetupError> {
    let data = query(
        target,
        conn,
        vec![text(&format!("{collection}.all().count()"))],
    )
    .await?;
    data.get("@int")
        .and_then(Value::as_str)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| SetupError::Unexpected(format!("count was {data}")))
}

/// Creates documents until `collection` holds `wanted`; refuses a collection that holds more
/// (a scenario's cost depends on its size).
async fn fill(
    target: &Target,
    conn: &mut Connection,
    collection: &str,
    wanted: usize,
) -> Result<(), SetupError> {
    let mut have = count(target, conn, collection).await?;
    if have > wanted && collection == SCAN_COLLECTION {
        return Err(SetupError::Unexpected(format!(
            "{collection} holds {have} documents, the scan needs exactly {wanted}"
        )));
    }
    while have < wanted {
        let batch = SEED_BATCH.min(wanted - have);
        // `[C.create({...}).id, ...]`: one transaction creating `batch` documents.
        let mut fragments = vec![text("[")];
        for i in 0..batch {
            let n = i64::try_from(have + i).unwrap_or(i64::MAX);
            fragments.extend([
                text(&format!("{collection}.create({{ n: ")),
                value(int(n)),
                text(", s: "),
                value(Value::String(FILLER.to_owned())),
                text(if i + 1 == batch { " }).id" } else { " }).id, " }),
            ]);
        }
        fragments.push(text("]"));
        let created = query(target, conn, fragments).await?;
        if created.as_array().map(Vec::len) != Some(batch) {
            return Err(SetupError::Unexpected(format!(
                "creating {batch} documents answered {created}"
            )));
        }
        have += batch;
    }
    Ok(())
}

/// The ids of the first `wanted` documents of `collection`, page by page.
async fn list_ids(
    target: &Target,
    conn: &mut Connection,
    collection: &str,
    wanted: usize,
) -> Result<Vec<String>, SetupError> {
    let mut ids = Vec::with_capacity(wanted);
    let mut page = query(
        target,
        conn,
        vec![text(&format!(
            "{collection}.all().map(.id).paginate({ID_PAGE})"
        ))],
    )
    .await?;
    loop {
        let data = page
            .get("data")
            .and_then(Value::as_array)
            .ok_or_else(|| SetupError::Unexpected(format!("a page of ids was {page}")))?;
        for id in data {
            let id = id
                .as_str()
                .ok_or_else(|| SetupError::Unexpected(format!("an id was {id}")))?;
            if ids.len() < wanted {
                ids.push(id.to_owned());
            }
        }
        let after = page.get("after").and_then(Value::as_str).map(str::to_owned);
        match after {
            Some(cursor) if ids.len() < wanted => {
                page = query(
                    target,
                    conn,
                    vec![
                        text("Set.paginate("),
                        value(Value::String(cursor)),
                        text(")"),
                    ],
                )
                .await?;
            }
            _ => break,
        }
    }
    if ids.len() != wanted {
        return Err(SetupError::Unexpected(format!(
            "{collection} lists {} ids, {wanted} were seeded",
            ids.len()
        )));
    }
    Ok(ids)
}

/// Sends one request of the workload and checks its answer.
async fn check_one_request(
    target: &Target,
    conn: &mut Connection,
    scenario: Scenario,
    workload: &Workload,
) -> Result<(), SetupError> {
    let body = workload.body(&mut scenario::Rng::new(0), 0);
    let reply = conn.send(target.query_request(body)?).await?;
    if reply.status != 200 {
        return Err(SetupError::Status {
            status: reply.status,
            body: String::from_utf8_lossy(&reply.body).into_owned(),
        });
    }
    if scenario == Scenario::Scan100 {
        let parsed: Value = serde_json::from_slice(&reply.body)
            .map_err(|err| SetupError::Unexpected(format!("not JSON: {err}")))?;
        let returned = parsed["data"].as_array().map(Vec::len);
        if returned != Some(SCAN_DOCS) {
            return Err(SetupError::Unexpected(format!(
                "the scan returned {returned:?} documents instead of {SCAN_DOCS}"
            )));
        }
    }
    if let Some(check) = answer_check(scenario) {
        let parsed: Value = serde_json::from_slice(&reply.body)
            .map_err(|err| SetupError::Unexpected(format!("not JSON: {err}")))?;
        let data = &parsed["data"];
        if !check(data) {
            return Err(SetupError::Unexpected(format!(
                "{} answered {data} to its first request",
                scenario.name()
            )));
        }
    }
    Ok(())
}

/// What the first answer of a scenario must look like, beyond a 200, when the run uses the
/// setup secret (a token reads documents as null: it has no role yet).
fn answer_check(scenario: Scenario) -> Option<fn(&Value) -> bool> {
    match scenario {
        Scenario::IndexLookup => Some(|data| {
            data["@doc"]["key"]
                .as_str()
                .is_some_and(|key| key.starts_with('k'))
        }),
        Scenario::OnePlusOne => Some(|data| data["@int"] == "2"),
        Scenario::Login => Some(|data| {
            data["@doc"]["coll"]["@mod"] == "Token" && data["@doc"]["secret"].is_string()
        }),
        _ => None,
    }
}
