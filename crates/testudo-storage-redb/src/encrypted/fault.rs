//! Test support: [`MemFile`], an in-memory physical file that can record every operation, and
//! [`crash_image`], which builds the file a crash would leave behind from a recorded run.
//!
//! A recorded run starts from a base image (taken after a sync) and lists every write,
//! length change and sync in order. A crash image replays a chosen subset of the operations,
//! optionally tearing one write after a given number of bytes: in-order persistence with a
//! torn last write (a process crash during the write, or a disk that writes sequentially),
//! or an arbitrary subset (power loss with writes reordered by the page cache).
//!
//! Several files can also record onto one [`Tape`] (each op tagged with its file), so that a
//! crash image of a data file and its journal can be cut at any point of their common order
//! ([`crash_pair`]).
//!
//! **Invariants:** this file exists only under `cfg(test)`; it never touches the real disk.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use redb::StorageBackend;

/// One recorded operation.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
    Sync,
}

/// Operations of several files in their common order, each tagged with its file.
pub(crate) type Tape = Arc<Mutex<Vec<(u8, Op)>>>;

#[derive(Default)]
struct State {
    bytes: Vec<u8>,
    log: Option<Vec<Op>>,
    tape: Option<(Tape, u8)>,
}

/// A shared, growable byte vector behind redb's storage interface.
#[derive(Clone, Default)]
pub(crate) struct MemFile {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for MemFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemFile")
    }
}

fn to_usize(n: u64) -> io::Result<usize> {
    usize::try_from(n).map_err(|_| io::Error::other("offset too large"))
}

impl MemFile {
    pub(crate) fn with_bytes(bytes: Vec<u8>) -> MemFile {
        MemFile {
            state: Arc::new(Mutex::new(State {
                bytes,
                log: None,
                tape: None,
            })),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn bytes(&self) -> Vec<u8> {
        self.state().bytes.clone()
    }

    /// Starts recording; returns the base image.
    pub(crate) fn record(&self) -> Vec<u8> {
        let mut state = self.state();
        state.log = Some(Vec::new());
        state.bytes.clone()
    }

    /// Starts recording onto `tape` as file `tag`; returns the base image.
    pub(crate) fn record_onto(&self, tape: &Tape, tag: u8) -> Vec<u8> {
        let mut state = self.state();
        state.tape = Some((Arc::clone(tape), tag));
        state.bytes.clone()
    }

    /// Stops recording and returns what was recorded.
    pub(crate) fn take_log(&self) -> Vec<Op> {
        self.state().log.take().unwrap_or_default()
    }

    /// XORs `mask` into the byte at `offset` (tampering behind redb's back).
    pub(crate) fn flip(&self, offset: u64, mask: u8) {
        let mut state = self.state();
        if let Some(byte) = usize::try_from(offset)
            .ok()
            .and_then(|i| state.bytes.get_mut(i))
        {
            *byte ^= mask;
        }
    }

    /// Copies `len` bytes from `from` to `to` (moving a block behind redb's back).
    pub(crate) fn copy_within(&self, from: u64, to: u64, len: usize) {
        let mut state = self.state();
        let (Ok(from), Ok(to)) = (usize::try_from(from), usize::try_from(to)) else {
            return;
        };
        state.bytes.copy_within(from..from + len, to);
    }
}

/// Applies `op` to `image`; a write stops after `limit` bytes when given (a torn write).
pub(crate) fn apply(image: &mut Vec<u8>, op: &Op, limit: Option<usize>) {
    match op {
        Op::Write { offset, data } => {
            let data = &data[..limit.unwrap_or(data.len()).min(data.len())];
            let offset = usize::try_from(*offset).unwrap_or(usize::MAX);
            if image.len() < offset + data.len() {
                image.resize(offset + data.len(), 0);
            }
            image[offset..offset + data.len()].copy_from_slice(data);
        }
        Op::SetLen(len) => image.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0),
        Op::Sync => {}
    }
}

/// The image a crash leaves: `base`, then the operations `keep` selects in order, with
/// operation `torn.0` (if selected) cut after `torn.1` bytes.
pub(crate) fn crash_image(
    base: &[u8],
    ops: &[Op],
    keep: impl Fn(usize, &Op) -> bool,
    torn: Option<(usize, usize)>,
) -> Vec<u8> {
    let mut image = base.to_vec();
    for (i, op) in ops.iter().enumerate() {
        if keep(i, op) {
            let limit = torn.and_then(|(at, limit)| (at == i).then_some(limit));
            apply(&mut image, op, limit);
        }
    }
    image
}

fn push(state: &mut State, op: &Op) {
    if let Some(log) = &mut state.log {
        log.push(op.clone());
    }
    if let Some((tape, tag)) = &state.tape {
        tape.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((*tag, op.clone()));
    }
}

/// The images of files `0` and `1` a crash leaves when it happens after the first `upto`
/// operations of `tape`: the last one torn after `torn` bytes if given; for each file whose
/// `lose_unsynced` is set, every write since its last sync is lost (power loss before the
/// page cache reached the disk; one file's writes may reach it and not the other's).
pub(crate) fn crash_pair(
    bases: [&[u8]; 2],
    tape: &[(u8, Op)],
    upto: usize,
    torn: Option<usize>,
    lose_unsynced: [bool; 2],
) -> [Vec<u8>; 2] {
    let ops = &tape[..upto.min(tape.len())];
    let last_sync = |file: u8| {
        ops.iter()
            .rposition(|(tag, op)| *tag == file && matches!(op, Op::Sync))
            .map_or(0, |i| i + 1)
    };
    let mut images = [bases[0].to_vec(), bases[1].to_vec()];
    for file in 0..2u8 {
        let keep_until = if lose_unsynced[usize::from(file)] {
            last_sync(file)
        } else {
            ops.len()
        };
        for (i, (tag, op)) in ops.iter().enumerate().take(keep_until) {
            if *tag != file {
                continue;
            }
            let limit = torn.filter(|_| i + 1 == ops.len());
            apply(&mut images[usize::from(file)], op, limit);
        }
    }
    images
}

impl StorageBackend for MemFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state().bytes.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let state = self.state();
        let start = to_usize(offset)?;
        let source = state
            .bytes
            .get(start..start + out.len())
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))?;
        out.copy_from_slice(source);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.state();
        let op = Op::SetLen(len);
        apply(&mut state.bytes, &op, None);
        push(&mut state, &op);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        push(&mut self.state(), &Op::Sync);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.state();
        let op = Op::Write {
            offset,
            data: data.to_vec(),
        };
        apply(&mut state.bytes, &op, None);
        push(&mut state, &op);
        Ok(())
    }
}
