//! [`Listener`]: the one reader-thread skeleton every kernel source uses (fanotify groups,
//! the process connector, placeholders).
//!
//! The thread sleeps in `poll(2)` on the source's descriptors and on a stop `eventfd`, so it
//! wakes only when the kernel has something for it or when it is told to stop: no timer
//! tick, and stopping takes effect at once instead of at the next tick. Stopping wins over
//! readiness: once [`Listener::stop`] is called, the thread reads nothing more.

use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::thread::JoinHandle;

use rustix::event::{eventfd, poll, EventfdFlags, PollFd, PollFlags};

use crate::{threads, Error, Result};

/// What a descriptor is waited on for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// Data to read (`POLLIN`): a fanotify group, a socket.
    Readable,
    /// An exceptional condition (`POLLPRI`): `/proc/self/mountinfo` raises it when the
    /// mount table changes.
    Priority,
}

impl Interest {
    fn flags(self) -> PollFlags {
        match self {
            Interest::Readable => PollFlags::IN,
            Interest::Priority => PollFlags::PRI,
        }
    }

    fn fired(self, revents: PollFlags) -> bool {
        match self {
            // A hung-up or failed source is reported as readable: its read says why.
            Interest::Readable => {
                revents.intersects(PollFlags::IN | PollFlags::HUP | PollFlags::ERR)
            }
            Interest::Priority => revents.intersects(PollFlags::PRI | PollFlags::ERR),
        }
    }
}

/// Whether the thread goes on after a wake-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Wait for the next wake-up.
    Continue,
    /// End the thread (the source cannot be read any more).
    Stop,
}

/// A kernel source a [`Listener`] waits on, and what it does when woken.
pub trait Source: Send + 'static {
    /// The descriptors to wait on, each with what it is waited on for. Asked before every
    /// wait, so the set may change between wake-ups.
    fn descriptors(&self) -> Vec<(BorrowedFd<'_>, Interest)>;

    /// Called once per wake-up with, for each descriptor in the order
    /// [`descriptors`](Self::descriptors) gave them, whether it is ready.
    fn ready(&mut self, ready: &[bool]) -> Flow;

    /// `poll(2)` itself failed (not `EINTR`, which is retried); the thread ends after this.
    fn failed(&mut self, error: io::Error);
}

/// The stop signal: an `eventfd` that becomes readable once written.
#[derive(Debug)]
struct StopSignal(OwnedFd);

impl StopSignal {
    fn raise(&self) {
        // An eventfd write of 1 only fails when the counter would overflow, which a counter
        // written once per stop never approaches.
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }
}

/// A thread reading one [`Source`] until stopped.
#[derive(Debug)]
pub struct Listener {
    stop: Arc<StopSignal>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Starts a thread named `name` that waits on `source`'s descriptors and calls
    /// [`Source::ready`] on every wake-up. Errors: the eventfd or the thread could not be
    /// created (their errno).
    pub fn spawn<S: Source>(name: &str, source: S) -> Result<Self> {
        let stop = Arc::new(StopSignal(
            eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(|e| {
                Error::io(
                    format_args!("creating the stop eventfd of {name}"),
                    e.into(),
                )
            })?,
        ));
        let signal = Arc::clone(&stop);
        let builder = std::thread::Builder::new().name(name.into());
        let thread = threads::spawn(builder, move || run(source, &signal))
            .map_err(|e| Error::io(format_args!("starting the {name} thread"), e))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Tells the thread to stop and waits for it; the source is dropped on the thread. A
    /// thread that is inside [`Source::ready`] finishes that call first.
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.raise();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn run<S: Source>(mut source: S, stop: &StopSignal) {
    loop {
        let ready = {
            let sources = source.descriptors();
            let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(sources.len() + 1);
            fds.push(PollFd::new(&stop.0, PollFlags::IN));
            fds.extend(
                sources
                    .iter()
                    .map(|(fd, i)| PollFd::from_borrowed_fd(*fd, i.flags())),
            );
            match poll(&mut fds, None) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    drop(fds);
                    drop(sources);
                    source.failed(e.into());
                    return;
                }
            }
            if !fds[0].revents().is_empty() {
                return;
            }
            sources
                .iter()
                .zip(&fds[1..])
                .map(|((_, i), fd)| i.fired(fd.revents()))
                .collect::<Vec<bool>>()
        };
        if source.ready(&ready) == Flow::Stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::{channel, Receiver, Sender};

    /// A pipe: readable when written to; counts its wake-ups.
    struct Pipe {
        read: OwnedFd,
        wakes: Arc<AtomicUsize>,
        seen: Sender<Vec<u8>>,
    }

    impl Source for Pipe {
        fn descriptors(&self) -> Vec<(BorrowedFd<'_>, Interest)> {
            vec![(self.read.as_fd(), Interest::Readable)]
        }
        fn ready(&mut self, ready: &[bool]) -> Flow {
            self.wakes.fetch_add(1, Ordering::SeqCst);
            assert_eq!(ready, [true]);
            let mut buf = [0u8; 64];
            match rustix::io::read(&self.read, &mut buf) {
                Ok(0) | Err(_) => {
                    let _ = self.seen.send(Vec::new());
                    Flow::Stop
                }
                Ok(n) => {
                    let _ = self.seen.send(buf[..n].to_vec());
                    Flow::Continue
                }
            }
        }
        fn failed(&mut self, _error: io::Error) {}
    }

    struct Running {
        listener: Listener,
        write: OwnedFd,
        seen: Receiver<Vec<u8>>,
        wakes: Arc<AtomicUsize>,
    }

    fn pipe_listener() -> Running {
        let (read, write) = rustix::pipe::pipe().unwrap();
        let (tx, seen) = channel();
        let wakes = Arc::new(AtomicUsize::new(0));
        let listener = Listener::spawn(
            "test-listener",
            Pipe {
                read,
                wakes: Arc::clone(&wakes),
                seen: tx,
            },
        )
        .unwrap();
        Running {
            listener,
            write,
            seen,
            wakes,
        }
    }

    #[test]
    fn wakes_once_per_write_and_never_while_idle() {
        let r = pipe_listener();
        rustix::io::write(&r.write, b"one").unwrap();
        assert_eq!(r.seen.recv().unwrap(), b"one");
        rustix::io::write(&r.write, b"two").unwrap();
        assert_eq!(r.seen.recv().unwrap(), b"two");
        r.listener.stop();
        // Two writes, two wake-ups: no tick woke the thread in between.
        assert_eq!(r.wakes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn stop_ends_a_thread_that_is_waiting() {
        let r = pipe_listener();
        r.listener.stop();
        assert_eq!(r.wakes.load(Ordering::SeqCst), 0);
        // The thread is gone and dropped the source: its pipe has no reader any more.
        assert_eq!(
            rustix::io::write(&r.write, b"late"),
            Err(rustix::io::Errno::PIPE)
        );
        assert!(r.seen.recv().is_err());
    }

    #[test]
    fn a_source_that_stops_ends_the_thread_and_stop_still_returns_it() {
        let r = pipe_listener();
        drop(r.write);
        assert_eq!(r.seen.recv().unwrap(), b"");
        r.listener.stop();
        assert_eq!(r.wakes.load(Ordering::SeqCst), 1);
    }
}
