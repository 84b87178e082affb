//! Preparing a scenario through the public API, before any load: the collection exists, the
//! documents a scenario reads are there, and one request of the scenario succeeds.
//!
//! Idempotent: a second run against the same server reuses the collection and the documents
//! (it only creates what is missing), so `scripts/bench` can run every concurrency level
//! against one seeded server.
//!
//! **Invariants:** a scenario is only run after one of its requests answered 200; the scan
//! is only run over exactly [`SCAN_DOCS`] documents, and only if it returns them all.

use serde_json::Value;

use crate::client::{ClientError, Connection, Target};
use crate::scenario::{
    self, FILLER, READ_COLLECTION, SCAN_COLLECTION, SCAN_DOCS, Scenario, Workload, int, text, value,
};

/// Documents created per seeding query (one transaction each).
const SEED_BATCH: usize = 100;
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

/// Prepares `scenario` on the server behind `target` and returns what its requests send.
pub async fn prepare(
    target: &Target,
    scenario: Scenario,
    docs: usize,
) -> Result<Workload, SetupError> {
    let mut conn = Connection::open(target).await?;
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
    };
    check_one_request(target, &mut conn, scenario, &workload).await?;
    Ok(workload)
}

/// Runs one query and returns its `data` (tagged format).
async fn query(
    target: &Target,
    conn: &mut Connection,
    fragments: Vec<Value>,
) -> Result<Value, SetupError> {
    let request = target.query_request(scenario::query_body(fragments))?;
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
    Ok(())
}
