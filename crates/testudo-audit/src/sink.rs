//! `AuditSink`: the one interface the engine and the server record through.
//!
//! **Invariants:** `record` never blocks the caller on I/O — at most, under the operator's
//! `block` policy, it waits for room in a bounded queue; it never fails loudly (a record
//! that cannot be kept is counted, see [`SinkStats`]); implementations are `Send + Sync`
//! and cheap to share behind an `Arc`.

use std::sync::Mutex;

use crate::event::AuditEvent;

/// Where audit events go.
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Hands one event over. The sink stamps the time of this call.
    fn record(&self, event: AuditEvent);

    /// Counters for `/metrics`.
    fn stats(&self) -> SinkStats {
        SinkStats::default()
    }
}

/// What a sink has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Events waiting to be written.
    pub queue_depth: u64,
    /// Events accepted by `record` and written.
    pub written: u64,
    /// Events lost: refused because the queue was full (policy `drop`), or given after the
    /// sink was closed.
    pub dropped: u64,
    /// Failed writes to disk (each one also loses its record).
    pub write_errors: u64,
}

/// Keeps events in memory: for tests of the code that emits them.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemorySink {
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// Everything recorded so far, in order.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events
            .lock()
            .map(|events| events.clone())
            .unwrap_or_default()
    }
}

impl AuditSink for MemorySink {
    fn record(&self, event: AuditEvent) {
        if let Ok(mut events) = self.events.lock() {
            events.push(event);
        }
    }

    fn stats(&self) -> SinkStats {
        let written = self.events.lock().map(|e| e.len()).unwrap_or(0);
        SinkStats {
            written: u64::try_from(written).unwrap_or(u64::MAX),
            ..SinkStats::default()
        }
    }
}
