//! The queue of files waiting for their upload, served by a few threads of the drive's own.
//!
//! A file closed with changes is queued once (the drive keeps it from being queued twice)
//! and becomes due after the queue's delay; [`UPLOAD_THREADS`] threads take due files from
//! the queue and upload them in parallel. A file whose upload failed comes back after
//! [`RETRY_DELAY`]. At unmount the drive makes every queued file due at once and waits until
//! the queue is empty and no upload runs ([`UploadQueue::drain`]).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Uploads running at once.
pub(crate) const UPLOAD_THREADS: usize = 8;

/// How long a file whose upload failed waits before the next try.
pub(crate) const RETRY_DELAY: Duration = Duration::from_secs(5);

/// Files waiting for an upload, in the order they were closed.
pub(crate) struct UploadQueue<T> {
    state: Mutex<QueueState<T>>,
    /// A file was queued, a retry fell due, or the queue stops.
    wake: Condvar,
    /// An upload ended.
    ended: Condvar,
}

struct QueueState<T> {
    /// Files and when they fall due, in that order (every file waits the same delay).
    waiting: VecDeque<(Instant, T)>,
    /// Failed uploads and when to try them again.
    retry: Vec<(Instant, T)>,
    running: usize,
    stopping: bool,
    /// How long a queued file waits before its upload.
    delay: Duration,
}

impl<T> UploadQueue<T> {
    /// A queue whose files fall due `delay` after they are pushed.
    pub(crate) fn new(delay: Duration) -> Self {
        Self {
            state: Mutex::new(QueueState {
                waiting: VecDeque::new(),
                retry: Vec::new(),
                running: 0,
                stopping: false,
                delay,
            }),
            wake: Condvar::new(),
            ended: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item` for an upload by the next free thread once the delay has passed.
    pub(crate) fn push(&self, item: T) {
        let mut state = self.lock();
        let due = Instant::now() + state.delay;
        state.waiting.push_back((due, item));
        drop(state);
        self.wake.notify_one();
    }

    /// The next file to upload, waiting for one; `None` once the queue stops. The caller
    /// reports the upload's end with [`finished`](Self::finished).
    pub(crate) fn next(&self) -> Option<T> {
        let mut state = self.lock();
        loop {
            if state.stopping {
                return None;
            }
            let now = Instant::now();
            if let Some(i) = state.retry.iter().position(|(due, _)| *due <= now) {
                let (_, item) = state.retry.swap_remove(i);
                state.running += 1;
                return Some(item);
            }
            if state.waiting.front().is_some_and(|(due, _)| *due <= now) {
                if let Some((_, item)) = state.waiting.pop_front() {
                    state.running += 1;
                    return Some(item);
                }
            }
            let wait = state
                .retry
                .iter()
                .chain(state.waiting.front())
                .map(|(due, _)| due.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::from_secs(3600));
            state = self
                .wake
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Ends an upload [`next`](Self::next) handed out; `failed`: the file, to try again after
    /// [`RETRY_DELAY`].
    pub(crate) fn finished(&self, failed: Option<T>) {
        let mut state = self.lock();
        state.running -= 1;
        if let Some(item) = failed {
            state.retry.push((Instant::now() + RETRY_DELAY, item));
        }
        drop(state);
        self.ended.notify_all();
    }

    /// Files queued or being uploaded.
    pub(crate) fn pending(&self) -> usize {
        let state = self.lock();
        state.waiting.len() + state.running + state.retry.len()
    }

    /// Makes every queued file due now, waits until each was tried and no upload runs;
    /// returns the files whose upload failed (now out of the queue).
    pub(crate) fn drain(&self) -> Vec<T> {
        let mut state = self.lock();
        let now = Instant::now();
        state.delay = Duration::ZERO;
        for (due, _) in &mut state.waiting {
            *due = now;
        }
        self.wake.notify_all();
        while !state.waiting.is_empty() || state.running > 0 {
            state = self.ended.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.retry.drain(..).map(|(_, item)| item).collect()
    }

    /// Stops the threads: [`next`](Self::next) returns `None` from now on.
    pub(crate) fn stop(&self) {
        self.lock().stopping = true;
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_come_out_in_order_and_failures_wait_for_their_retry() {
        let queue = UploadQueue::new(Duration::ZERO);
        queue.push(1);
        queue.push(2);
        assert_eq!(queue.pending(), 2);
        assert_eq!(queue.next(), Some(1));
        queue.finished(Some(1));
        assert_eq!(queue.next(), Some(2));
        queue.finished(None);
        // 1 waits for its retry, so drain returns it at once.
        assert_eq!(queue.drain(), vec![1]);
        assert_eq!(queue.pending(), 0);
        queue.stop();
        assert_eq!(queue.next(), None);
    }

    #[test]
    fn files_wait_for_the_delay_unless_the_queue_drains() {
        let queue = std::sync::Arc::new(UploadQueue::new(Duration::from_secs(3600)));
        queue.push(1);
        let worker = {
            let queue = std::sync::Arc::clone(&queue);
            std::thread::spawn(move || {
                let item = queue.next();
                queue.finished(None);
                item
            })
        };
        // The worker waits for the hour's delay; draining makes the file due now.
        assert!(queue.drain().is_empty());
        assert_eq!(worker.join().unwrap(), Some(1));
        assert_eq!(queue.pending(), 0);
    }
}
