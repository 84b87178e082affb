//! The hand-off from the query threads to the writer thread: a bounded batch queue.
//!
//! Senders push onto one `Vec` under a mutex; the writer takes the whole `Vec` at once,
//! leaving its own drained one in its place. Why not `std::sync::mpsc::sync_channel`: a
//! bounded channel is a ring of `capacity` slots that every message moves one slot along, so
//! with the default 65,536-record queue the hand-off swept about 2 MB of memory through both
//! cores' caches every few seconds, and the request threads paid for it in misses (about
//! 1.5 µs a request at 64 connections on 2 vCPUs; docs/BENCHMARKS.md, "Audit log on vs
//! off"). Here the two `Vec`s that take turns hold one burst each, so the memory the
//! hand-off touches stays small and warm whatever the capacity.
//!
//! **Invariants:** at most `capacity` items wait (the writer's batch in hand is not counted);
//! items come out in the order they went in; once closed, nothing more is accepted; a sender
//! wakes the writer only when it is asleep waiting for items, and a waiting sender (the
//! `block` policy) is woken whenever the writer takes a batch.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

pub(crate) struct Queue<T> {
    inner: Mutex<Inner<T>>,
    capacity: usize,
    /// The writer waits here for items.
    items: Condvar,
    /// Blocked senders wait here for room.
    room: Condvar,
}

struct Inner<T> {
    waiting: Vec<T>,
    writer_asleep: bool,
    senders_blocked: usize,
    closed: bool,
}

/// Why [`Queue::push`] handed the item back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    Full,
    Closed,
}

impl<T> Queue<T> {
    pub(crate) fn new(capacity: usize) -> Queue<T> {
        Queue {
            inner: Mutex::new(Inner {
                waiting: Vec::new(),
                writer_asleep: false,
                senders_blocked: 0,
                closed: false,
            }),
            capacity: capacity.max(1),
            items: Condvar::new(),
            room: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T>> {
        // Nothing panics while holding the lock; if something did, the `Vec` is still whole.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends `item`; when the queue is full, waits for room if `wait_for_room`, else hands
    /// it back at once.
    pub(crate) fn push(&self, item: T, wait_for_room: bool) -> Result<(), (T, Refused)> {
        let mut inner = self.lock();
        loop {
            if inner.closed {
                return Err((item, Refused::Closed));
            }
            if inner.waiting.len() < self.capacity {
                break;
            }
            if !wait_for_room {
                return Err((item, Refused::Full));
            }
            inner.senders_blocked += 1;
            inner = self
                .room
                .wait(inner)
                .unwrap_or_else(PoisonError::into_inner);
            inner.senders_blocked -= 1;
        }
        inner.waiting.push(item);
        let wake = inner.writer_asleep;
        drop(inner);
        if wake {
            self.items.notify_one();
        }
        Ok(())
    }

    /// Items waiting for the writer.
    pub(crate) fn len(&self) -> usize {
        self.lock().waiting.len()
    }

    /// Moves every waiting item into `batch`, which must be empty, waiting up to `timeout`
    /// for one when none waits. Returns `false` once the queue is closed and nothing waits.
    pub(crate) fn take(&self, batch: &mut Vec<T>, timeout: Duration) -> bool {
        debug_assert!(batch.is_empty());
        let mut inner = self.lock();
        if inner.waiting.is_empty() && !inner.closed {
            inner.writer_asleep = true;
            inner = self
                .items
                .wait_timeout_while(inner, timeout, |inner| {
                    inner.waiting.is_empty() && !inner.closed
                })
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            inner.writer_asleep = false;
        }
        let open = !(inner.closed && inner.waiting.is_empty());
        std::mem::swap(&mut inner.waiting, batch);
        let blocked = inner.senders_blocked > 0;
        drop(inner);
        if blocked {
            self.room.notify_all();
        }
        open
    }

    /// Refuses every later push and returns what still waits.
    pub(crate) fn close(&self) -> Vec<T> {
        let mut inner = self.lock();
        inner.closed = true;
        let left = std::mem::take(&mut inner.waiting);
        drop(inner);
        self.room.notify_all();
        self.items.notify_all();
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn items_come_out_in_order_and_a_full_queue_refuses_without_waiting() {
        let queue = Queue::new(3);
        for i in 0..3 {
            queue.push(i, false).unwrap();
        }
        assert_eq!(queue.push(3, false), Err((3, Refused::Full)));
        assert_eq!(queue.len(), 3);
        let mut batch = Vec::new();
        assert!(queue.take(&mut batch, Duration::ZERO));
        assert_eq!(batch, [0, 1, 2]);
        // The batch in hand does not count: there is room again.
        queue.push(4, false).unwrap();
        batch.clear();
        assert!(queue.take(&mut batch, Duration::ZERO));
        assert_eq!(batch, [4]);
    }

    #[test]
    fn take_waits_for_an_item_or_the_timeout() {
        let queue = Arc::new(Queue::new(8));
        let mut batch = Vec::new();
        let started = Instant::now();
        assert!(queue.take(&mut batch, Duration::from_millis(20)));
        assert!(batch.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(20));

        let sender = Arc::clone(&queue);
        let pushed = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            sender.push(7, false)
        });
        // Woken by the push, well before this timeout.
        assert!(queue.take(&mut batch, Duration::from_secs(60)));
        assert_eq!(batch, [7]);
        pushed.join().unwrap().unwrap();
    }

    #[test]
    fn a_blocked_sender_gets_in_once_the_writer_takes_a_batch() {
        let queue = Arc::new(Queue::new(1));
        queue.push(1, true).unwrap();
        let sender = Arc::clone(&queue);
        let blocked = std::thread::spawn(move || sender.push(2, true));
        // Still waiting: the queue is full until a batch is taken.
        while queue.lock().senders_blocked == 0 {
            std::thread::yield_now();
        }
        let mut batch = Vec::new();
        assert!(queue.take(&mut batch, Duration::ZERO));
        assert_eq!(batch, [1]);
        blocked.join().unwrap().unwrap();
        batch.clear();
        assert!(queue.take(&mut batch, Duration::ZERO));
        assert_eq!(batch, [2]);
    }

    #[test]
    fn a_closed_queue_refuses_pushes_frees_blocked_senders_and_returns_what_waited() {
        let queue = Arc::new(Queue::new(1));
        queue.push(1, false).unwrap();
        let sender = Arc::clone(&queue);
        let blocked = std::thread::spawn(move || sender.push(2, true));
        while queue.lock().senders_blocked == 0 {
            std::thread::yield_now();
        }
        assert_eq!(queue.close(), [1]);
        assert_eq!(blocked.join().unwrap(), Err((2, Refused::Closed)));
        assert_eq!(queue.push(3, false), Err((3, Refused::Closed)));
        let mut batch = Vec::new();
        assert!(!queue.take(&mut batch, Duration::from_secs(60)));
    }
}
