//! Counting engine calls that are still running, so shutdown can wait for them.
//!
//! A query runs on a blocking thread and cannot be cancelled: the engine enforces its
//! deadline and alone decides whether a write committed. If its connection goes away, the
//! call still runs to its end; shutdown waits for that before the caller closes the engine.
//!
//! Once the server has closed its connections it calls [`InFlight::close`]: from then on no
//! new engine call may start (a request task that outlived its connection, as HTTP/2 stream
//! tasks can, is refused), so `wait_idle` returning means the engine is no longer in use.
//!
//! **Invariants:** the count is exact (a guard decrements on drop, also when the call
//! panics); `wait_idle` never misses the last guard's wake-up; after `close`, every call
//! either was counted before it or is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

#[derive(Clone, Debug, Default)]
pub struct InFlight(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    count: AtomicUsize,
    closed: AtomicBool,
    idle: Notify,
}

/// Held for the duration of one engine call.
#[derive(Debug)]
pub struct Guard(Arc<Inner>);

impl InFlight {
    /// Counts one engine call, or refuses it (`None`) once [`InFlight::close`] was called.
    pub fn enter(&self) -> Option<Guard> {
        // Count first, then check: `close` sets the flag before `wait_idle` reads the count,
        // so a call is either seen by `wait_idle` or sees the flag.
        self.0.count.fetch_add(1, Ordering::SeqCst);
        let guard = Guard(Arc::clone(&self.0));
        if self.0.closed.load(Ordering::SeqCst) {
            return None;
        }
        Some(guard)
    }

    /// Refuses every later [`InFlight::enter`].
    pub fn close(&self) {
        self.0.closed.store(true, Ordering::SeqCst);
    }

    pub fn count(&self) -> usize {
        self.0.count.load(Ordering::SeqCst)
    }

    /// Resolves once no engine call is running.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.0.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a guard dropped in between still wakes us.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_idle_returns_once_every_guard_is_dropped() {
        let inflight = InFlight::default();
        inflight.wait_idle().await;
        let guard = inflight.enter().unwrap();
        let other = inflight.enter().unwrap();
        let waiter = tokio::spawn({
            let inflight = inflight.clone();
            async move { inflight.wait_idle().await }
        });
        drop(guard);
        assert_eq!(inflight.count(), 1);
        std::thread::spawn(move || drop(other)).join().unwrap();
        waiter.await.unwrap();
        assert_eq!(inflight.count(), 0);
    }

    #[test]
    fn no_call_starts_after_close() {
        let inflight = InFlight::default();
        let running = inflight.enter();
        inflight.close();
        assert!(running.is_some());
        assert!(inflight.enter().is_none());
        assert_eq!(inflight.count(), 1);
    }
}
