//! The background index builder: fills a new index over a collection too large to index
//! inside the query that defined it, then marks the index `active` (queryable).
//!
//! It works in batches, each its own transaction: read a range of documents, write their
//! entries, commit. The batch's scan is part of its read set, so a document written
//! concurrently makes the batch conflict and re-run; writes during the build keep the index
//! current themselves (writers maintain pending indexes too). When the scan reaches the end,
//! one more transaction flips the index to `active` if its definition is unchanged.
//!
//! **Invariants:** queries never wait for a build; an index becomes queryable only when
//! every document has its entries; a build whose definition changed stops without marking
//! anything.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;

use testudo_model::codec::{decode_doc, encode_doc};
use testudo_model::{CollId, Data, DbId, DocId};
use testudo_storage::{CommitError, ScanOrder};

use crate::txn::Txn;
use crate::{EngineShared, keys, schema};

/// Documents indexed per transaction.
const BATCH: usize = 256;
/// How many times a batch is re-run after conflicts before the build gives up for now.
const MAX_RETRIES: u32 = 100;

enum Job {
    Build { db: DbId, coll: CollId },
    Stop,
}

pub struct Builder {
    jobs: Mutex<Sender<Job>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Builder {
    pub fn start(shared: Weak<EngineShared>) -> Builder {
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("testudo-index-builder".into())
            .spawn(move || run(shared, rx))
            .ok();
        Builder {
            jobs: Mutex::new(tx),
            thread: Mutex::new(thread),
        }
    }

    /// Asks for the pending indexes of a collection to be built.
    pub fn request(&self, db: DbId, coll: CollId) {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        // A send fails only after `stop`: nothing is building any more.
        let _ = jobs.send(Job::Build { db, coll });
    }

    /// Stops the builder and waits for its current batch to finish.
    pub fn stop(&self) {
        let _ = self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Job::Stop);
        if let Some(handle) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = handle.join();
        }
    }
}

fn run(shared: Weak<EngineShared>, jobs: Receiver<Job>) {
    while let Ok(Job::Build { db, coll }) = jobs.recv() {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if let Err(e) = build(&shared, db, coll) {
            tracing::error!(db = db.0, coll = coll.0, error = %e, "index build stopped");
        }
    }
}

/// Builds every pending index of one collection.
fn build(shared: &EngineShared, db: DbId, coll: CollId) -> Result<(), String> {
    let mut next = DocId(0);
    loop {
        let mut retries = 0;
        let done = loop {
            match batch(shared, db, coll, next) {
                Ok(Some(step)) => break step,
                Ok(None) => return Ok(()),
                Err(BatchError::Conflict) if retries < MAX_RETRIES => retries += 1,
                Err(BatchError::Conflict) => return Err("too many conflicting writes".into()),
                Err(BatchError::Failed(e)) => return Err(e),
            }
        };
        match done {
            Step::More(after) => next = after,
            Step::Finished => {
                let mut retries = 0;
                loop {
                    match finish(shared, db, coll) {
                        Ok(()) => return Ok(()),
                        Err(BatchError::Conflict) if retries < MAX_RETRIES => retries += 1,
                        Err(BatchError::Conflict) => {
                            return Err("too many conflicting writes".into());
                        }
                        Err(BatchError::Failed(e)) => return Err(e),
                    }
                }
            }
        }
    }
}

enum Step {
    More(DocId),
    Finished,
}

enum BatchError {
    Conflict,
    Failed(String),
}

impl From<testudo_storage::KvError> for BatchError {
    fn from(e: testudo_storage::KvError) -> Self {
        BatchError::Failed(e.to_string())
    }
}

fn commit(shared: &EngineShared, txn: Txn) -> Result<(), BatchError> {
    match shared.kv.commit(txn.into_write_set(), None) {
        Ok(_) => Ok(()),
        Err(CommitError::Conflict) => Err(BatchError::Conflict),
        Err(e) => Err(BatchError::Failed(e.to_string())),
    }
}

/// Indexes the documents from `from` on; `None` when nothing is pending any more.
fn batch(
    shared: &EngineShared,
    db: DbId,
    coll: CollId,
    from: DocId,
) -> Result<Option<Step>, BatchError> {
    let mut txn = Txn::begin(shared.kv.as_ref())?;
    let schema = shared
        .schemas
        .get(db, &mut txn)
        .map_err(|e| BatchError::Failed(e.message.clone()))?;
    let Some(def) = schema.collection_by_id(coll) else {
        return Ok(None);
    };
    let pending: Vec<_> = def
        .indexes
        .indexes
        .iter()
        .filter(|i| !i.queryable())
        .cloned()
        .collect();
    if pending.is_empty() {
        return Ok(None);
    }
    let range = keys::doc_range(db, coll, Some(from), None);
    let page = txn.scan(&range, ScanOrder::Ascending, BATCH, None)?;
    let mut last = None;
    for (key, read) in &page.entries {
        let (Some(id), Some(bytes)) = (keys::doc_id_of(key), &read.value) else {
            continue;
        };
        let fields = decode_doc(bytes)
            .map_err(|e| BatchError::Failed(e.to_string()))?
            .fields;
        for index in &pending {
            for (k, v) in index.entries(db, coll, id, &fields) {
                txn.put(k, v);
            }
        }
        last = Some(id);
    }
    commit(shared, txn)?;
    Ok(Some(match (page.more, last) {
        (true, Some(id)) => {
            id.0.checked_add(1)
                .map_or(Step::Finished, |n| Step::More(DocId(n)))
        }
        _ => Step::Finished,
    }))
}

/// Marks the collection's pending indexes active, if the definition still has them.
fn finish(shared: &EngineShared, db: DbId, coll: CollId) -> Result<(), BatchError> {
    let mut txn = Txn::begin(shared.kv.as_ref())?;
    let key = keys::doc(db, schema::COLLECTION, DocId(coll.0));
    let Some(bytes) = txn.get(&key)?.and_then(|r| r.value) else {
        return Ok(());
    };
    let mut doc = decode_doc(&bytes).map_err(|e| BatchError::Failed(e.to_string()))?;
    let mut changed = false;
    if let Some(Data::Object(indexes)) = doc.fields.get_mut("indexes") {
        for spec in indexes.values_mut() {
            if let Data::Object(spec) = spec
                && spec.get("status") == Some(&Data::String("pending".into()))
            {
                spec.insert("status".into(), Data::String("active".into()));
                spec.insert("queryable".into(), Data::Bool(true));
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(());
    }
    txn.put(key, encode_doc(&doc));
    txn.put(keys::schema_marker(db), Vec::new());
    // Changing a definition is a schema change: the schema cache must hear of it.
    shared
        .schemas
        .changing(|| match shared.kv.commit(txn.into_write_set(), None) {
            Ok(ts) => Ok((ts, ())),
            Err(CommitError::Conflict) => Err(BatchError::Conflict),
            Err(e) => Err(BatchError::Failed(e.to_string())),
        })?;
    tracing::info!(db = db.0, coll = coll.0, "index build finished");
    Ok(())
}

/// Queues a build for every collection of `db` that has a pending index (after a restart).
pub fn resume_pending(
    shared: &Arc<EngineShared>,
    db: DbId,
) -> Result<(), testudo_storage::KvError> {
    let mut txn = Txn::begin(shared.kv.as_ref())?;
    let Ok(defs) = schema::read_all(db, schema::COLLECTION, &mut txn) else {
        return Ok(());
    };
    for (id, fields) in defs {
        let indexes = crate::index::CollectionIndexes::from_definition(&fields);
        if indexes.indexes.iter().any(|i| !i.queryable()) {
            shared.builder.request(db, CollId(id.0));
        }
    }
    Ok(())
}
