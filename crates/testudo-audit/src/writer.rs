//! `AuditWriter`: the file-backed [`AuditSink`]. A bounded queue in front of one background
//! thread that appends records to the current segment, rotates and seals segments, and
//! applies retention.
//!
//! Back-pressure is the operator's choice ([`WhenFull`]): `drop` never makes a caller wait —
//! a record that finds the queue full is counted, and the writer records
//! `{"kind":"dropped","count":n}` as soon as it catches up, so the gap is itself in the
//! chained log; `block` makes the caller wait for room, so nothing is lost but a stalled
//! disk stalls queries.
//!
//! Cost on the query path: a record is built and handed to the channel; the thread is woken
//! only when it was idle (after a burst it pauses `BATCH_PAUSE` and drains what gathered),
//! so under load senders make no system call at all. Nor do they allocate: a record travels
//! in a box the writer hands back once it has written it ([`Spares`]).
//!
//! Durability: the thread writes through a buffer that it flushes to the OS whenever the
//! queue is empty, and calls `fsync` at most every [`WriterConfig::sync_interval`], at every
//! seal and at shutdown. A crash can thus lose the last interval's records, never corrupt
//! the earlier ones: at the next start a torn last line is cut off and the segment is sealed
//! with `reason: "recovered"` and the number of bytes cut.
//!
//! Every start opens a new segment; a clean shutdown seals the current one.
//!
//! **Invariants:** only the writer thread touches segment files; it only appends (and, at
//! start, cuts a torn last line); a segment is sealed before the next one is created, and
//! the next one starts from the seal's link; retention deletes only sealed segments, oldest
//! first, and records what it deleted; the key is never written anywhere.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use crate::chain::{Chain, ChainChoice, GENESIS, Link, hex, hex_link};
use crate::encode::Body;
use crate::event::AuditEvent;
use crate::seal::{self, AeadKey, SegmentKeys};
use crate::segment::{self, WriterRecord};
use crate::sink::{AuditSink, SinkStats};
use crate::time::{TimeText, format_us, now_us};

/// What `record` does when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Count the record as dropped and return at once (the default).
    Drop,
    /// Wait for room.
    Block,
}

/// How long the thread waits after a burst of records before it looks again: records
/// that arrive meanwhile are written together, without waking it.
const BATCH_PAUSE: Duration = Duration::from_millis(5);

/// How the log is written. `WriterConfig::new(dir)` documents the defaults.
#[derive(Clone)]
pub struct WriterConfig {
    pub dir: PathBuf,
    /// Records the queue holds. Default 65 536.
    pub queue: usize,
    pub when_full: WhenFull,
    /// A segment is sealed once it holds this many bytes. Default 64 MiB.
    pub segment_bytes: u64,
    /// A segment is sealed once it is this old (checked at least every `sync_interval`).
    /// Default 24 h.
    pub segment_age: Option<Duration>,
    /// Keep at most this many segments (the current one included). Default: all.
    pub keep_segments: Option<usize>,
    /// Delete sealed segments last modified longer ago than this. Default: never.
    pub keep_age: Option<Duration>,
    /// The hash new segments are chained with. Default: the cheaper one on this CPU.
    pub chain: ChainChoice,
    /// With a key, links are keyed under it (HMAC-SHA256, or BLAKE3's keyed hash under a key
    /// derived from it; `chain.rs`) instead of plain hashes.
    pub key: Option<[u8; 32]>,
    /// The longest time between `fsync`s while records arrive. Default 1 s.
    pub sync_interval: Duration,
    /// With keys, every event is sealed under a fresh data key per segment (`seal.rs`).
    /// Default: plaintext.
    pub encryption: Option<Arc<dyn SegmentKeys>>,
}

impl std::fmt::Debug for WriterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriterConfig")
            .field("dir", &self.dir)
            .field("queue", &self.queue)
            .field("when_full", &self.when_full)
            .field("segment_bytes", &self.segment_bytes)
            .field("segment_age", &self.segment_age)
            .field("keep_segments", &self.keep_segments)
            .field("keep_age", &self.keep_age)
            .field("chain", &self.chain)
            .field("keyed", &self.key.is_some())
            .field("encrypted", &self.encryption.is_some())
            .finish()
    }
}

impl WriterConfig {
    pub fn new(dir: impl Into<PathBuf>) -> WriterConfig {
        WriterConfig {
            dir: dir.into(),
            queue: 65_536,
            when_full: WhenFull::Drop,
            segment_bytes: 64 * 1024 * 1024,
            segment_age: Some(Duration::from_secs(24 * 3600)),
            keep_segments: None,
            keep_age: None,
            chain: ChainChoice::Auto,
            key: None,
            sync_interval: Duration::from_secs(1),
            encryption: None,
        }
    }
}

/// Why the log could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("audit directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("could not start the audit writer thread: {0}")]
    Thread(#[source] io::Error),
}

enum Message {
    /// Boxed: the channel preallocates a slot per queued message, and an event is ~300
    /// bytes.
    Event(Box<Queued>),
    /// Flush and fsync everything before, then answer.
    Sync(SyncSender<()>),
}

/// A record on its way to the writer thread: the time `record` was called and the event,
/// which the writer takes out to write (and drop) before it hands the box back.
struct Queued {
    time_us: u64,
    event: Option<AuditEvent>,
}

/// How many emptied boxes wait for reuse at most: enough for the bursts between two drains
/// of a busy writer; what a larger burst allocated is freed.
const SPARE_BOXES: usize = 4096;

/// Boxes the writer has emptied, for `record` to fill again.
///
/// Without them each record's box would be allocated on a query thread and freed on the
/// writer's. glibc's allocator serves each thread from one of several arenas and handles
/// such frees worst: it locks the allocating arena and later consolidates its fast bins.
/// At 64 connections on 2 cores that cost about a tenth of the point-read throughput with
/// auditing on (docs/BENCHMARKS.md, "Audit log on vs off").
///
/// `record` only ever `try_lock`s: when the writer is handing boxes back it allocates a
/// new one instead of waiting.
#[derive(Default)]
struct Spares {
    #[expect(clippy::vec_box, reason = "the boxes are what is reused")]
    boxes: Mutex<Vec<Box<Queued>>>,
}

impl Spares {
    /// A box holding `event`, reused when one is spare.
    fn fill(&self, time_us: u64, event: AuditEvent) -> Box<Queued> {
        let spare = self.boxes.try_lock().ok().and_then(|mut boxes| boxes.pop());
        match spare {
            Some(mut queued) => {
                queued.time_us = time_us;
                queued.event = Some(event);
                queued
            }
            None => Box::new(Queued {
                time_us,
                event: Some(event),
            }),
        }
    }

    /// Takes back the box of a record the queue refused, unless the spares are busy or
    /// full (never waits: this is the query path).
    fn give_back_refused(&self, mut queued: Box<Queued>) {
        queued.event = None;
        if let Ok(mut boxes) = self.boxes.try_lock()
            && boxes.len() < SPARE_BOXES
        {
            boxes.push(queued);
        }
    }

    /// Takes back emptied boxes, up to [`SPARE_BOXES`]; the rest are freed.
    #[expect(clippy::vec_box, reason = "the boxes are what is reused")]
    fn give_back(&self, emptied: &mut Vec<Box<Queued>>) {
        if let Ok(mut boxes) = self.boxes.lock() {
            let room = SPARE_BOXES.saturating_sub(boxes.len());
            let start = emptied.len().saturating_sub(room);
            boxes.extend(emptied.drain(start..));
        }
        emptied.clear();
    }
}

#[derive(Debug, Default)]
struct Counters {
    depth: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    /// Dropped but not yet recorded in the log.
    unrecorded: AtomicU64,
    write_errors: AtomicU64,
}

/// The file-backed audit sink. Dropping it (or [`AuditWriter::close`]) drains the queue,
/// seals the current segment and stops the thread.
pub struct AuditWriter {
    sender: SyncSender<Message>,
    when_full: WhenFull,
    counters: Arc<Counters>,
    spares: Arc<Spares>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for AuditWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditWriter")
            .field("when_full", &self.when_full)
            .field("stats", &self.stats())
            .finish()
    }
}

impl AuditWriter {
    /// Opens (or creates) the log in `config.dir`: seals a segment a crash left open, opens
    /// the next segment and starts the writer thread.
    pub fn open(config: WriterConfig) -> Result<AuditWriter, OpenError> {
        let io_err = |source| OpenError::Io {
            path: config.dir.clone(),
            source,
        };
        create_dir(&config.dir).map_err(io_err)?;
        let chain = Chain::current(config.chain, config.key.as_ref());
        let mut state = State::open(&config, chain).map_err(io_err)?;
        let (sender, rx) = mpsc::sync_channel(config.queue.max(1));
        let counters = Arc::new(Counters::default());
        let spares = Arc::new(Spares::default());
        let thread_counters = Arc::clone(&counters);
        let thread_spares = Arc::clone(&spares);
        let thread = std::thread::Builder::new()
            .name("audit-writer".to_owned())
            .spawn(move || state.run(&rx, &thread_counters, &thread_spares))
            .map_err(OpenError::Thread)?;
        Ok(AuditWriter {
            sender,
            when_full: config.when_full,
            counters,
            spares,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Waits until every record handed over before this call is written and synced.
    pub fn sync(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        if self.sender.send(Message::Sync(tx)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Drains the queue, seals the current segment and stops the thread. Later records are
    /// counted as dropped. Idempotent.
    pub fn close(&self) {
        let thread = self.thread.lock().ok().and_then(|mut thread| thread.take());
        if let Some(thread) = thread {
            // A `Sync` whose answer channel is already closed tells the thread to stop,
            // after everything queued before it.
            let (tx, rx) = mpsc::sync_channel(1);
            drop(rx);
            let _ = self.sender.send(Message::Sync(tx));
            let _ = thread.join();
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.close();
    }
}

impl AuditSink for AuditWriter {
    fn record(&self, event: AuditEvent) {
        let message = Message::Event(self.spares.fill(now_us(), event));
        let counters = &self.counters;
        // Counted before the send, so the thread's decrement never comes first.
        counters.depth.fetch_add(1, Ordering::Relaxed);
        let refused = match self.when_full {
            WhenFull::Drop => match self.sender.try_send(message) {
                Ok(()) => None,
                Err(TrySendError::Full(message) | TrySendError::Disconnected(message)) => {
                    Some(message)
                }
            },
            WhenFull::Block => self.sender.send(message).err().map(|err| err.0),
        };
        if let Some(message) = refused {
            // The box goes back to the spares like a written one (a full queue means a
            // stalled disk: no time to start freeing across threads).
            if let Message::Event(queued) = message {
                self.spares.give_back_refused(queued);
            }
            counters.depth.fetch_sub(1, Ordering::Relaxed);
            counters.dropped.fetch_add(1, Ordering::Relaxed);
            counters.unrecorded.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stats(&self) -> SinkStats {
        let c = &self.counters;
        SinkStats {
            queue_depth: c.depth.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            write_errors: c.write_errors.load(Ordering::Relaxed),
        }
    }
}

fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// The current segment.
struct Active {
    number: u64,
    file: BufWriter<File>,
    bytes: u64,
    records: u64,
    opened: Instant,
}

/// Everything the writer thread owns.
struct State {
    dir: PathBuf,
    chain: Chain,
    segment_bytes: u64,
    segment_age: Option<Duration>,
    keep_segments: Option<usize>,
    keep_age: Option<Duration>,
    sync_interval: Duration,
    encryption: Option<Arc<dyn SegmentKeys>>,
    /// The current segment's data key, when encrypted.
    sealing: Option<AeadKey>,
    /// Reused by sealing.
    sealed: Vec<u8>,
    /// The link of the last record written.
    last: Link,
    /// The `seq` of the last record written.
    seq: u64,
    active: Active,
    last_sync: Instant,
    dirty: bool,
    /// Reused buffers: the record being written, and sealing's working space.
    record: Vec<u8>,
    scratch: Vec<u8>,
    time: TimeText,
}

impl State {
    fn open(config: &WriterConfig, chain: Chain) -> io::Result<State> {
        let dir = config.dir.clone();
        let mut existing = segment::list(&dir)?;
        // A crash between creating a segment and writing its start record leaves an empty
        // file: it holds nothing, and the chain continues from the one before.
        while let Some(&number) = existing.last() {
            let path = segment::path(&dir, number);
            if fs::metadata(&path)?.len() > 0 {
                break;
            }
            fs::remove_file(&path)?;
            existing.pop();
        }
        let (last, seq, next) = match existing.last() {
            None => (GENESIS, 0, 1),
            Some(&number) => {
                let (last, seq) = recover(&dir, number, &chain, config.key.as_ref())?;
                (last, seq, number + 1)
            }
        };
        let active = create_segment(&dir, next)?;
        let mut state = State {
            dir,
            chain,
            segment_bytes: config.segment_bytes.max(1),
            segment_age: config.segment_age,
            keep_segments: config.keep_segments,
            keep_age: config.keep_age,
            sync_interval: config.sync_interval,
            encryption: config.encryption.clone(),
            sealing: None,
            sealed: Vec::new(),
            last,
            seq,
            active,
            last_sync: Instant::now(),
            dirty: false,
            record: Vec::with_capacity(1024),
            scratch: Vec::with_capacity(1024),
            time: TimeText::default(),
        };
        state.start_segment()?;
        state.apply_retention()?;
        state.sync()?;
        Ok(state)
    }

    fn run(&mut self, rx: &Receiver<Message>, counters: &Counters, spares: &Spares) {
        let mut emptied = Vec::with_capacity(SPARE_BOXES);
        loop {
            let timeout = self.sync_interval;
            let message = match rx.recv_timeout(timeout) {
                Ok(message) => Some(message),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut stop = false;
            let message_seen = message.is_some();
            if let Some(message) = message {
                stop = self.handle(message, counters, &mut emptied);
                // Drain what is queued before flushing: one flush per burst.
                while !stop && let Ok(message) = rx.try_recv() {
                    stop = self.handle(message, counters, &mut emptied);
                    if emptied.len() >= SPARE_BOXES {
                        spares.give_back(&mut emptied);
                    }
                }
                spares.give_back(&mut emptied);
            }
            self.note_drops(counters);
            let due = self.last_sync.elapsed() >= self.sync_interval;
            let result = if stop || due {
                self.sync()
            } else {
                self.active.file.flush()
            };
            if let Err(err) = result {
                counters.write_errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %err, "audit log: could not flush");
            }
            if self
                .segment_age
                .is_some_and(|age| self.active.opened.elapsed() >= age)
                && self.active.records > 1
            {
                self.rotate(counters);
            }
            if stop {
                break;
            }
            if message_seen {
                // Under load, let records gather instead of being woken for each one: a
                // sender wakes this thread only when it is blocked in `recv`, and a wake-up
                // (a futex call and a context switch) costs more than writing the record.
                std::thread::sleep(BATCH_PAUSE);
            }
        }
        if let Err(err) = self.seal("shutdown").and_then(|()| self.sync()) {
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "audit log: could not seal the segment at shutdown");
        }
    }

    /// Handles one message, leaving an event's box in `emptied`; `true` when the thread must
    /// stop.
    #[expect(clippy::vec_box, reason = "the boxes are what is reused")]
    fn handle(
        &mut self,
        message: Message,
        counters: &Counters,
        emptied: &mut Vec<Box<Queued>>,
    ) -> bool {
        match message {
            Message::Event(mut queued) => {
                counters.depth.fetch_sub(1, Ordering::Relaxed);
                let time_us = queued.time_us;
                // Taken out, and dropped here once written, so that what the event owns is
                // freed on this thread and a spare box holds nothing.
                let event = queued.event.take();
                emptied.push(queued);
                let Some(event) = event else { return false };
                match self.append(time_us, &event, true) {
                    Ok(()) => {
                        counters.written.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(err) => {
                        counters.write_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::error!(error = %err, "audit log: a record could not be written");
                    }
                }
                if self.active.bytes >= self.segment_bytes {
                    self.rotate(counters);
                }
                false
            }
            Message::Sync(answer) => {
                self.note_drops(counters);
                if let Err(err) = self.sync() {
                    counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %err, "audit log: could not sync");
                }
                // A closed answer channel is the shutdown signal (see `shutdown`).
                answer.send(()).is_err()
            }
        }
    }

    /// Records the drops counted since the last such record.
    fn note_drops(&mut self, counters: &Counters) {
        let count = counters.unrecorded.swap(0, Ordering::Relaxed);
        if count > 0
            && let Err(err) = self.append(now_us(), &WriterRecord::Dropped { count }, false)
        {
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "audit log: could not record dropped records");
        }
    }

    fn rotate(&mut self, counters: &Counters) {
        let result = self
            .seal("rotation")
            .and_then(|()| self.sync())
            .and_then(|()| {
                self.active = create_segment(&self.dir, self.active.number + 1)?;
                self.start_segment()
            })
            .and_then(|()| self.apply_retention());
        if let Err(err) = result {
            counters.write_errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %err, "audit log: rotation failed");
        }
    }

    /// Appends one record; `secret` records (events) are sealed when the segment is
    /// encrypted, bookkeeping records never are.
    fn append(&mut self, time_us: u64, body: &dyn Body, secret: bool) -> io::Result<()> {
        let time = self.time.at(time_us);
        let seq = self.seq + 1;
        segment::encode_record(&mut self.record, seq, time, body)?;
        if secret && let Some(key) = &self.sealing {
            seal::seal(key, seq, &self.record, &mut self.scratch, &mut self.sealed)?;
            std::mem::swap(&mut self.record, &mut self.sealed);
        }
        let link = self.chain.link(&self.last, &self.record);
        let file = &mut self.active.file;
        file.write_all(&hex_link(&link))?;
        file.write_all(b" ")?;
        file.write_all(&self.record)?;
        file.write_all(b"\n")?;
        self.active.bytes += u64::try_from(self.record.len() + 66).unwrap_or(u64::MAX);
        self.active.records += 1;
        self.seq += 1;
        self.last = link;
        self.dirty = true;
        Ok(())
    }

    /// Writes the current segment's start record; an encrypted log draws the segment's
    /// fresh data key here (never reused: one key per segment).
    fn start_segment(&mut self) -> io::Result<()> {
        self.sealing = None;
        let (encryption, key_id, data_key) = match &self.encryption {
            None => (None, None, None),
            Some(keys) => {
                let (key, wrapped) = keys.fresh()?;
                self.sealing = Some(key);
                (
                    Some(seal::ALGORITHM),
                    Some(keys.fingerprint()),
                    Some(seal::encode_wrapped(&wrapped)),
                )
            }
        };
        let start = WriterRecord::SegmentStart {
            segment: self.active.number,
            chain: self.chain.name(),
            previous: hex(&self.last),
            encryption,
            key_id,
            data_key,
        };
        self.append(now_us(), &start, false)
    }

    fn seal(&mut self, reason: &'static str) -> io::Result<()> {
        let seal = WriterRecord::Seal {
            segment: self.active.number,
            records: self.active.records,
            last: hex(&self.last),
            reason,
            truncated_bytes: 0,
        };
        self.append(now_us(), &seal, false)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.active.file.flush()?;
        if self.dirty {
            self.active.file.get_ref().sync_data()?;
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Deletes the oldest sealed segments beyond the limits and records the deletion.
    fn apply_retention(&mut self) -> io::Result<()> {
        if self.keep_segments.is_none() && self.keep_age.is_none() {
            return Ok(());
        }
        let numbers = segment::list(&self.dir)?;
        let sealed: Vec<u64> = numbers
            .iter()
            .copied()
            .filter(|&n| n < self.active.number)
            .collect();
        let mut remove_through = None;
        if let Some(keep) = self.keep_segments {
            let excess = numbers.len().saturating_sub(keep.max(1));
            if let Some(&n) = sealed.get(..excess).and_then(<[u64]>::last) {
                remove_through = Some(n);
            }
        }
        if let Some(age) = self.keep_age {
            let now = SystemTime::now();
            for &n in &sealed {
                let modified = fs::metadata(segment::path(&self.dir, n))?.modified()?;
                let old = now
                    .duration_since(modified)
                    .is_ok_and(|elapsed| elapsed > age);
                if !old {
                    break;
                }
                remove_through = Some(remove_through.map_or(n, |r: u64| r.max(n)));
            }
        }
        let Some(through) = remove_through else {
            return Ok(());
        };
        for &n in sealed.iter().filter(|&&n| n <= through) {
            fs::remove_file(segment::path(&self.dir, n))?;
        }
        self.append(
            now_us(),
            &WriterRecord::Retention {
                removed_through: through,
            },
            false,
        )
    }
}

fn create_segment(dir: &Path, number: u64) -> io::Result<Active> {
    let mut options = OpenOptions::new();
    options.create_new(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(segment::path(dir, number))?;
    // The new name must survive a crash, or the chain would seem to lose a segment.
    File::open(dir)?.sync_all()?;
    Ok(Active {
        number,
        file: BufWriter::with_capacity(64 * 1024, file),
        bytes: 0,
        records: 0,
        opened: Instant::now(),
    })
}

/// Reads the last segment to continue the chain after it. If it is not sealed (the server
/// stopped without sealing it), cuts off a torn last line and seals it as recovered, linked
/// with the chain the segment names (an older version may have written it with another
/// kind than `current`, which is used only when the segment's own cannot be had).
/// Returns the last link and `seq`.
fn recover(
    dir: &Path,
    number: u64,
    current: &Chain,
    key: Option<&[u8; 32]>,
) -> io::Result<(Link, u64)> {
    let path = segment::path(dir, number);
    let mut reader = BufReader::new(File::open(&path)?);
    let mut buf = Vec::new();
    let mut last = GENESIS;
    let mut seq = 0;
    let mut records = 0;
    let mut sealed = false;
    let mut good_bytes = 0u64;
    let mut torn = 0u64;
    let mut chain = None;
    while segment::read_raw(&mut reader, &mut buf)?.is_some() {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        match segment::parse(&buf) {
            Ok(line) => {
                if records == 0 && line.kind() == Some(segment::START) {
                    chain = line
                        .str_field("chain")
                        .and_then(|name| Chain::named(name, key).ok());
                }
                last = line.link;
                seq = line.seq().unwrap_or(seq);
                records += 1;
                sealed = line.kind() == Some(segment::SEAL);
                good_bytes += len;
            }
            Err(segment::LineError::Incomplete) => torn = len,
            // A complete but unreadable line stays for `verify` to report.
            Err(_) => good_bytes += len,
        }
    }
    if sealed {
        return Ok((last, seq));
    }
    let file = OpenOptions::new().append(true).open(&path)?;
    if torn > 0 {
        file.set_len(good_bytes)?;
    }
    let seal = WriterRecord::Seal {
        segment: number,
        records,
        last: hex(&last),
        reason: "recovered",
        truncated_bytes: torn,
    };
    let time = format_us(now_us());
    let mut record = Vec::new();
    segment::encode_record(&mut record, seq + 1, &time, &seal)?;
    let link = chain.as_ref().unwrap_or(current).link(&last, &record);
    let mut line = hex(&link).into_bytes();
    line.push(b' ');
    line.extend_from_slice(&record);
    line.push(b'\n');
    let mut file = file;
    file.write_all(&line)?;
    file.sync_data()?;
    tracing::warn!(
        segment = number,
        truncated_bytes = torn,
        "audit log: sealed a segment left open by an unclean stop"
    );
    Ok((link, seq + 1))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::{Outcome, RequestRecord};
    use crate::read::{Filter, read_records};

    fn event() -> AuditEvent {
        AuditEvent::Request(RequestRecord {
            endpoint: "/query/1".into(),
            status: 200,
            outcome: Outcome::ok(),
            duration_us: 1,
            client: None,
            database: None,
            credential: None,
            txn_ts: None,
            query_hash: None,
            tags: None,
            ops: None,
            trace_id: None,
        })
    }

    /// A request record with these tags (tests tell records apart by them).
    pub(crate) fn tagged(tag: &str) -> AuditEvent {
        let AuditEvent::Request(mut record) = event() else {
            unreachable!()
        };
        record.tags = Some(tag.into());
        AuditEvent::Request(record)
    }

    #[test]
    fn records_dropped_on_a_full_queue_are_counted_and_noted_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = WriterConfig::new(dir.path());
        config.queue = 1;
        let writer = AuditWriter::open(config).unwrap();
        // Stall the thread: it cannot answer on a rendezvous channel nobody receives from.
        let (stall, release) = mpsc::sync_channel(0);
        writer.sender.send(Message::Sync(stall)).unwrap();
        for _ in 0..5 {
            writer.record(event());
        }
        let dropped = writer.stats().dropped;
        // The queue holds one message: at most one of the five got in.
        assert!(dropped >= 4, "{dropped}");
        // The refused records' boxes went back to the spares, empty: one box served them all.
        {
            let spares = writer.spares.boxes.lock().unwrap();
            assert_eq!(spares.len(), 1);
            assert!(spares[0].event.is_none());
        }
        release.recv().unwrap();
        writer.close();

        let mut noted = 0;
        read_records(dir.path(), &Filter::default(), None, |record| {
            let json: serde_json::Value = serde_json::from_slice(record).unwrap();
            if json["kind"] == "dropped" {
                noted += json["count"].as_u64().unwrap();
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(noted, dropped);
        assert_eq!(writer.stats().written + dropped, 5);
        crate::verify::verify(dir.path(), None, None).unwrap();
    }

    #[test]
    fn written_records_hand_their_boxes_back_empty_and_later_records_reuse_them() {
        let dir = tempfile::tempdir().unwrap();
        let writer = AuditWriter::open(WriterConfig::new(dir.path())).unwrap();
        let spare_count = || writer.spares.boxes.lock().unwrap().len();
        let spare_addresses = || -> Vec<usize> {
            let boxes = writer.spares.boxes.lock().unwrap();
            assert!(boxes.iter().all(|queued| queued.event.is_none()));
            boxes
                .iter()
                .map(|queued| &raw const **queued as usize)
                .collect()
        };
        assert_eq!(spare_count(), 0);

        for _ in 0..10 {
            writer.record(event());
        }
        writer.sync();
        let spares = spare_addresses();
        assert_eq!(spares.len(), 10, "every written record's box comes back");

        // The next record travels in a spare box: one fewer waits (the thread, stalled, cannot
        // have handed it back yet), and once written the same boxes are spare again.
        let (stall, release) = mpsc::sync_channel(0);
        writer.sender.send(Message::Sync(stall)).unwrap();
        writer.record(event());
        assert_eq!(spare_count(), 9);
        release.recv().unwrap();
        writer.sync();
        let mut again = spare_addresses();
        again.sort_unstable();
        let mut before = spares;
        before.sort_unstable();
        assert_eq!(again, before);
        assert_eq!(writer.stats().written, 11);
    }

    #[test]
    fn spare_boxes_are_capped_and_the_rest_freed() {
        let spares = Spares::default();
        let mut emptied: Vec<_> = (0..SPARE_BOXES + 10)
            .map(|_| {
                let mut queued = spares.fill(0, event());
                queued.event = None;
                queued
            })
            .collect();
        spares.give_back(&mut emptied);
        assert!(emptied.is_empty());
        assert_eq!(spares.boxes.lock().unwrap().len(), SPARE_BOXES);
        let mut more = vec![spares.fill(1, event())];
        more[0].event = None;
        assert_eq!(spares.boxes.lock().unwrap().len(), SPARE_BOXES - 1);
        spares.give_back(&mut more);
        assert_eq!(spares.boxes.lock().unwrap().len(), SPARE_BOXES);
    }

    fn every_byte(dir: &Path) -> Vec<u8> {
        let mut all = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            all.extend(fs::read(entry.unwrap().path()).unwrap());
        }
        all
    }

    fn export(dir: &Path, keys: Option<&dyn SegmentKeys>) -> Result<Vec<String>, ReadError> {
        let mut out = Vec::new();
        read_records(dir, &Filter::default(), keys, |record| {
            out.push(String::from_utf8(record.to_vec()).unwrap());
            Ok(())
        })?;
        Ok(out)
    }

    use crate::read::ReadError;
    use crate::seal::testing::RawKeys;
    use crate::verify::{VerifyError, verify};

    #[test]
    fn an_encrypted_log_hides_its_records_and_opens_only_under_the_master_key() {
        let marker = "marker-5d1c0e-never-in-the-files";
        let dir = tempfile::tempdir().unwrap();
        let keys: Arc<dyn SegmentKeys> = Arc::new(RawKeys([9; 32]));
        let mut config = WriterConfig::new(dir.path());
        config.encryption = Some(Arc::clone(&keys));
        // Small segments: several data keys, and records on both sides of a rotation.
        config.segment_bytes = 600;
        let writer = AuditWriter::open(config).unwrap();
        for i in 0..10 {
            writer.record(tagged(&format!("{marker}-{i}")));
        }
        writer.close();

        let bytes = every_byte(dir.path());
        assert!(!bytes.windows(marker.len()).any(|w| w == marker.as_bytes()));
        assert!(!bytes.windows(9).any(|w| w == b"/query/1\""));

        let records = export(dir.path(), Some(keys.as_ref())).unwrap();
        assert_eq!(records.len(), 10);
        for (i, record) in records.iter().enumerate() {
            let json: serde_json::Value = serde_json::from_str(record).unwrap();
            assert_eq!(json["kind"], "request");
            assert_eq!(json["tags"], format!("{marker}-{i}"));
        }

        assert!(matches!(
            export(dir.path(), None),
            Err(ReadError::KeyNeeded { segment: 1 })
        ));
        let wrong = RawKeys([10; 32]);
        assert!(matches!(
            export(dir.path(), Some(&wrong)),
            Err(ReadError::WrongKey { segment: 1, .. })
        ));
        assert!(matches!(
            verify(dir.path(), None, Some(&wrong)),
            Err(VerifyError::WrongKey { segment: 1, .. })
        ));

        let unopened = verify(dir.path(), None, None).unwrap();
        assert!(unopened.segments > 1, "{unopened:?}");
        assert_eq!(unopened.encrypted_segments, unopened.segments);
        assert_eq!(unopened.opened_records, 0);
        let opened = verify(dir.path(), None, Some(keys.as_ref())).unwrap();
        assert_eq!(opened.opened_records, 10);
    }

    #[test]
    fn a_changed_encrypted_record_fails_verification_with_or_without_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = RawKeys([3; 32]);
        let mut config = WriterConfig::new(dir.path());
        config.encryption = Some(Arc::new(RawKeys([3; 32])));
        let writer = AuditWriter::open(config).unwrap();
        writer.record(event());
        writer.record(event());
        writer.close();

        let path = segment::path(dir.path(), 1);
        let text = fs::read_to_string(&path).unwrap();
        let at = text.find("\"data\":\"").unwrap() + 10;
        let mut bytes = text.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        fs::write(&path, &bytes).unwrap();
        for keys in [None, Some(&keys as &dyn SegmentKeys)] {
            match verify(dir.path(), None, keys) {
                Err(VerifyError::Broken(problem)) => {
                    assert_eq!((problem.segment, problem.record), (1, 2), "{problem}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Writes segment `number` as an earlier version did with `chain` (SHA-256 or
    /// HMAC-SHA256): a start record, one request record tagged `tag`, and, when `sealed`, a
    /// seal. Returns the last link and `seq`.
    fn old_segment(
        dir: &Path,
        number: u64,
        chain: &Chain,
        (previous, seq): (Link, u64),
        tag: &str,
        sealed: bool,
    ) -> (Link, u64) {
        let mut lines = Vec::new();
        let mut last = previous;
        let mut seq = seq;
        let mut write = |body: &dyn Body, last: &mut Link, seq: &mut u64| {
            *seq += 1;
            let mut record = Vec::new();
            let time = format_us(1_795_803_691_266_621 + *seq);
            segment::encode_record(&mut record, *seq, &time, body).unwrap();
            *last = chain.link(last, &record);
            lines.extend_from_slice(&hex_link(last));
            lines.push(b' ');
            lines.extend_from_slice(&record);
            lines.push(b'\n');
        };
        let start = WriterRecord::SegmentStart {
            segment: number,
            chain: chain.name(),
            previous: hex(&previous),
            encryption: None,
            key_id: None,
            data_key: None,
        };
        write(&start, &mut last, &mut seq);
        write(&tagged(tag), &mut last, &mut seq);
        if sealed {
            let before_seal = last;
            let seal = WriterRecord::Seal {
                segment: number,
                records: 2,
                last: hex(&before_seal),
                reason: "shutdown",
                truncated_bytes: 0,
            };
            write(&seal, &mut last, &mut seq);
        }
        fs::write(segment::path(dir, number), lines).unwrap();
        (last, seq)
    }

    fn tags(dir: &Path) -> Vec<String> {
        export(dir, None)
            .unwrap()
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap()["tags"].to_string())
            .collect()
    }

    fn chain_of(dir: &Path, number: u64) -> String {
        let text = fs::read_to_string(segment::path(dir, number)).unwrap();
        let first = text.lines().next().unwrap();
        let json: serde_json::Value = serde_json::from_str(&first[65..]).unwrap();
        json["chain"].as_str().unwrap().to_owned()
    }

    #[test]
    fn sha256_segments_of_earlier_versions_verify_and_read_before_blake3_ones() {
        let dir = tempfile::tempdir().unwrap();
        let end = old_segment(dir.path(), 1, &Chain::Sha256, (GENESIS, 0), "old", true);
        let mut config = WriterConfig::new(dir.path());
        config.chain = ChainChoice::Blake3;
        let writer = AuditWriter::open(config).unwrap();
        writer.record(tagged("new"));
        writer.close();

        assert_eq!(chain_of(dir.path(), 1), "sha256");
        assert_eq!(chain_of(dir.path(), 2), "blake3");
        let report = verify(dir.path(), None, None).unwrap();
        assert_eq!((report.segments, report.records), (2, 6));
        assert_eq!(tags(dir.path()), ["\"old\"", "\"new\""]);
        // The new segment continues from the old one's last link.
        let start = fs::read_to_string(segment::path(dir.path(), 2)).unwrap();
        assert!(start.contains(&hex(&end.0)), "{start}");

        // An edit of the old segment is still found, at its record.
        let path = segment::path(dir.path(), 1);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.replacen("\"old\"", "\"odd\"", 1)).unwrap();
        match verify(dir.path(), None, None) {
            Err(VerifyError::Broken(problem)) => {
                assert_eq!((problem.segment, problem.record), (1, 2), "{problem}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_hmac_segment_of_an_earlier_version_and_a_keyed_blake3_one_verify_under_the_key() {
        let key = [5; 32];
        let dir = tempfile::tempdir().unwrap();
        let hmac = Chain::named("hmac-sha256", Some(&key)).unwrap();
        old_segment(dir.path(), 1, &hmac, (GENESIS, 0), "old", true);
        let mut config = WriterConfig::new(dir.path());
        config.key = Some(key);
        config.chain = ChainChoice::Blake3;
        let writer = AuditWriter::open(config).unwrap();
        writer.record(tagged("new"));
        writer.close();

        assert_eq!(chain_of(dir.path(), 2), "blake3-keyed");
        let report = verify(dir.path(), Some(&key), None).unwrap();
        assert_eq!((report.keyed_segments, report.unkeyed_segments), (2, 0));
        assert!(matches!(
            verify(dir.path(), None, None),
            Err(VerifyError::KeyNeeded { segment: 1 })
        ));
        match verify(dir.path(), Some(&[6; 32]), None) {
            Err(VerifyError::Broken(problem)) => assert_eq!(problem.segment, 1, "{problem}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(tags(dir.path()), ["\"old\"", "\"new\""]);
    }

    #[test]
    fn a_log_moved_between_cpus_alternates_chains_and_verifies_as_one() {
        // Each start picks its chain (`Auto` by CPU); here forced, both ways, keyed and not.
        for key in [None, Some([3; 32])] {
            let dir = tempfile::tempdir().unwrap();
            let choices = [
                ChainChoice::Blake3,
                ChainChoice::Sha256,
                ChainChoice::Blake3,
            ];
            for (i, choice) in choices.into_iter().enumerate() {
                let mut config = WriterConfig::new(dir.path());
                config.chain = choice;
                config.key = key;
                let writer = AuditWriter::open(config).unwrap();
                writer.record(tagged(&format!("r{i}")));
                writer.close();
            }
            let names: Vec<String> = (1..=3).map(|n| chain_of(dir.path(), n)).collect();
            let expected = match key {
                None => ["blake3", "sha256", "blake3"],
                Some(_) => ["blake3-keyed", "hmac-sha256", "blake3-keyed"],
            };
            assert_eq!(names, expected);
            let report = verify(dir.path(), key.as_ref(), None).unwrap();
            assert_eq!((report.segments, report.records), (3, 9));
            assert_eq!(tags(dir.path()), ["\"r0\"", "\"r1\"", "\"r2\""]);

            // An edit in the SHA-256 segment is found at its record.
            let path = segment::path(dir.path(), 2);
            let text = fs::read_to_string(&path).unwrap();
            fs::write(&path, text.replacen("\"r1\"", "\"r9\"", 1)).unwrap();
            match verify(dir.path(), key.as_ref(), None) {
                Err(VerifyError::Broken(problem)) => {
                    assert_eq!((problem.segment, problem.record), (2, 2), "{problem}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn an_unsealed_sha256_segment_is_sealed_with_its_own_chain_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        old_segment(dir.path(), 1, &Chain::Sha256, (GENESIS, 0), "old", false);
        let writer = AuditWriter::open(WriterConfig::new(dir.path())).unwrap();
        writer.record(tagged("new"));
        writer.close();

        let sealed = fs::read_to_string(segment::path(dir.path(), 1)).unwrap();
        assert!(sealed.contains("\"reason\":\"recovered\""), "{sealed}");
        let report = verify(dir.path(), None, None).unwrap();
        assert_eq!((report.segments, report.records), (2, 6));
        assert_eq!(tags(dir.path()), ["\"old\"", "\"new\""]);
    }

    #[test]
    fn a_plaintext_log_continued_encrypted_reads_as_one_log() {
        let dir = tempfile::tempdir().unwrap();
        let writer = AuditWriter::open(WriterConfig::new(dir.path())).unwrap();
        writer.record(tagged("before"));
        writer.close();
        let keys = RawKeys([4; 32]);
        let mut config = WriterConfig::new(dir.path());
        config.encryption = Some(Arc::new(RawKeys([4; 32])));
        let writer = AuditWriter::open(config).unwrap();
        writer.record(tagged("after"));
        writer.close();

        let records = export(dir.path(), Some(&keys)).unwrap();
        let tags: Vec<String> = records
            .iter()
            .map(|r| serde_json::from_str::<serde_json::Value>(r).unwrap()["tags"].to_string())
            .collect();
        assert_eq!(tags, ["\"before\"", "\"after\""]);
        let report = verify(dir.path(), None, Some(&keys)).unwrap();
        assert_eq!((report.encrypted_segments, report.opened_records), (1, 1));
        assert!(matches!(
            export(dir.path(), None),
            Err(ReadError::KeyNeeded { segment: 2 })
        ));
    }
}
