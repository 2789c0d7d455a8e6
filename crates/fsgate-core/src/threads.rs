//! The threads fsgate starts leave the application's signals to the application.
//!
//! A program tells its process to stop or reconfigure with signals the kernel delivers to
//! any one thread that does not block them. Every thread an fsgate class starts — the
//! dispatcher's workers and watchdog, listeners, FUSE readers, flushers — blocks
//! [`APPLICATION_SIGNALS`], so those signals reach one of the application's own threads.
//! Without this a Ctrl-C could land in a worker: its handler would still run, but a main
//! thread asleep in `sigwait`, `pause` or Python's `threading.Event().wait()` would never
//! wake up. Signals a thread raises for itself (a fault, `SIGPIPE` on a closed pipe) are
//! not affected.
//!
//! Threads inherit the signal mask of the thread that starts them, so starting a thread
//! with [`spawn`], or calling code that starts threads (a library's own) inside
//! [`with_application_signals_blocked`], covers the thread and everything it starts. A
//! library that starts threads later from threads of its own takes
//! [`block_application_signals`] as its thread-start hook (tokio's `on_thread_start`).

use std::io;
use std::thread::{Builder, JoinHandle};

use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};

/// The signals fsgate's threads block: the ones a program is told to stop, reload or look
/// at its children with.
pub const APPLICATION_SIGNALS: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGCHLD,
];

fn application_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in APPLICATION_SIGNALS {
        set.add(signal);
    }
    set
}

/// Blocks [`APPLICATION_SIGNALS`] in the calling thread for good: for threads fsgate owns,
/// from a library's thread-start hook.
pub fn block_application_signals() {
    // Fails only for an invalid `how`; the thread then keeps its mask.
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&application_signals()), None);
}

/// Runs `f` with [`APPLICATION_SIGNALS`] blocked in the calling thread, then restores its
/// mask: every thread `f` starts, directly or through a library, keeps them blocked.
pub fn with_application_signals_blocked<R>(f: impl FnOnce() -> R) -> R {
    let mut previous = SigSet::empty();
    // pthread_sigmask fails only for an invalid `how`: the mask is then unchanged, and the
    // threads started below merely keep the caller's.
    let blocked = pthread_sigmask(
        SigmaskHow::SIG_BLOCK,
        Some(&application_signals()),
        Some(&mut previous),
    )
    .is_ok();
    let result = f();
    if blocked {
        let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
    }
    result
}

/// Starts a thread, as `builder.spawn(f)`, with [`APPLICATION_SIGNALS`] blocked in it.
pub fn spawn<F, T>(builder: Builder, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    with_application_signals_blocked(|| builder.spawn(f))
}

/// Whether `signal` is blocked in the calling thread.
pub fn is_blocked(signal: Signal) -> bool {
    SigSet::thread_get_mask().is_ok_and(|mask| mask.contains(signal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_threads_block_the_application_signals_and_the_caller_keeps_its_mask() {
        let before = SigSet::thread_get_mask().unwrap();
        let seen = spawn(Builder::new(), || {
            let inner = std::thread::spawn(|| APPLICATION_SIGNALS.map(is_blocked))
                .join()
                .unwrap();
            (APPLICATION_SIGNALS.map(is_blocked), inner)
        })
        .unwrap()
        .join()
        .unwrap();
        assert_eq!(seen.0, [true; 8], "the thread itself");
        assert_eq!(seen.1, [true; 8], "a thread it starts");
        let after = SigSet::thread_get_mask().unwrap();
        for signal in Signal::iterator() {
            assert_eq!(before.contains(signal), after.contains(signal), "{signal}");
        }
    }
}
