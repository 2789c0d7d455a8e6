//! The queue of files waiting for their upload, served by a few threads of the drive's own.
//!
//! A file closed with changes is queued once (the drive keeps it from being queued twice);
//! [`UPLOAD_THREADS`] threads take files from the queue and upload them in parallel. A file
//! whose upload failed comes back after [`RETRY_DELAY`]. At unmount the drive waits until
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
    waiting: VecDeque<T>,
    /// Failed uploads and when to try them again.
    retry: Vec<(Instant, T)>,
    running: usize,
    stopping: bool,
}

impl<T> UploadQueue<T> {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(QueueState {
                waiting: VecDeque::new(),
                retry: Vec::new(),
                running: 0,
                stopping: false,
            }),
            wake: Condvar::new(),
            ended: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item` for an upload by the next free thread.
    pub(crate) fn push(&self, item: T) {
        self.lock().waiting.push_back(item);
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
            if let Some(item) = state.waiting.pop_front() {
                state.running += 1;
                return Some(item);
            }
            let wait = state
                .retry
                .iter()
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

    /// Waits until every queued file was tried and no upload runs; returns the files whose
    /// upload failed (now out of the queue).
    pub(crate) fn drain(&self) -> Vec<T> {
        let mut state = self.lock();
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
        let queue = UploadQueue::new();
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
}
