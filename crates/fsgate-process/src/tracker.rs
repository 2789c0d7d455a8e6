//! The connector reader: keeps the process table and the rules current and fires the
//! notification events.
//!
//! One thread reads the process connector and, for each record, updates the table and the
//! rules' descendant sets under one lock, decides from the rules whether the record fires an
//! event, and hands the event to the dispatcher keyed by process, so events of one process
//! reach the application in kernel order. Nothing slow happens on this thread: an exec's
//! image and command line come from its exact kernel record (`exec_records`), and only where
//! there is none from `/proc/<pid>/exe` (and `cmdline` when `track_command_line` is on), so a
//! fork storm does not overflow the socket's receive queue. It reads the socket in batches
//! (see [`GATHER`]).

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fsgate_core::dispatch::Dispatcher;
use fsgate_core::listener::{Flow, Interest, Listener, Source};
use fsgate_core::{code, Result};

use crate::events::{
    EventsToFire, ProcessCreation, ProcessTermination, ThreadCreation, ThreadTermination,
};
use crate::exec_names::ExecNames;
use crate::exec_records::ExecRecords;
use crate::proc_connector::{self, ProcConnector, ProcEvent, Received};
use crate::shared::{Shared, EVENTS_LOST};
use crate::snapshot::command_line;

/// How long the reader lets records gather once it has drained the socket, before it waits
/// for the next one: in a burst of process activity it then wakes once per batch instead of
/// once per record (each record is one datagram), which roughly halves its CPU time. Events
/// reach the handlers at most this much later.
const GATHER: Duration = Duration::from_millis(1);

/// Starts the reader thread on an open connector; `records` are the kernel's exec records
/// when its programs are loaded.
pub fn spawn(
    connector: ProcConnector,
    records: Option<ExecRecords>,
    shared: Arc<Shared>,
    dispatcher: Arc<Dispatcher>,
) -> Result<Listener> {
    // Marked before the start returns, so that execs right after it are seen.
    let names = ExecNames::new();
    let reader = Reader {
        listen_id: connector.listen_id(),
        connector,
        names: Naming { names, records },
        shared,
        dispatcher,
        buf: vec![0u8; 64 * 1024],
    };
    Listener::spawn("fsgate-proc-connector", reader)
}

/// Where an exec's image and command line come from: the kernel's exec records when loaded,
/// else `/proc` and the fanotify exec-open names.
#[derive(Default)]
pub struct Naming {
    /// Images opened for execution (finds a script's own path, and names images when there
    /// is no exec record).
    pub names: Option<ExecNames>,
    /// The kernel's exact exec records.
    pub records: Option<ExecRecords>,
}

/// The connector socket's reader.
struct Reader {
    connector: ProcConnector,
    listen_id: u32,
    names: Naming,
    shared: Arc<Shared>,
    dispatcher: Arc<Dispatcher>,
    buf: Vec<u8>,
}

impl Reader {
    /// Applies every record queued now; [`Flow::Stop`] when the socket failed for good.
    fn drain(&mut self) -> Flow {
        loop {
            match self.connector.try_recv(&mut self.buf) {
                Ok(Received::Idle) => return Flow::Continue,
                Ok(Received::Overrun) => self.shared.error(
                    &self.dispatcher,
                    EVENTS_LOST,
                    "the process connector's receive queue overflowed: the kernel dropped process \
                     events, some creations and terminations were not reported"
                        .into(),
                ),
                Ok(Received::Records(n)) => match proc_connector::parse(&self.buf[..n]) {
                    Ok(events) => {
                        for event in events {
                            handle(
                                &self.shared,
                                &mut self.names,
                                &self.dispatcher,
                                self.listen_id,
                                event,
                            );
                        }
                    }
                    Err(e) => self.shared.error(&self.dispatcher, e.code(), e.to_string()),
                },
                Err(e) => {
                    self.shared.error(
                        &self.dispatcher,
                        e.code(),
                        format!("process connector failed, no more process events: {e}"),
                    );
                    return Flow::Stop;
                }
            }
        }
    }
}

impl Source for Reader {
    fn descriptors(&self) -> Vec<(BorrowedFd<'_>, Interest)> {
        vec![(self.connector.as_fd(), Interest::Readable)]
    }

    fn ready(&mut self, _ready: &[bool]) -> Flow {
        // Drain, let records gather, drain again, then wait: in a burst of process activity
        // the thread wakes once per batch instead of once per record.
        for round in 0..2 {
            if self.drain() == Flow::Stop {
                return Flow::Stop;
            }
            if round == 0 {
                std::thread::sleep(GATHER);
            }
        }
        Flow::Continue
    }

    fn failed(&mut self, e: std::io::Error) {
        self.shared.error(
            &self.dispatcher,
            code::ERROR_GEN_FAILURE,
            format!("process connector: polling failed, no more process events: {e}"),
        );
    }
}

/// Applies one kernel record. `listen_id` numbers this filter's listen request: only the
/// kernel's answer to that request can report that this filter was refused.
pub fn handle(
    shared: &Arc<Shared>,
    naming: &mut Naming,
    dispatcher: &Dispatcher,
    listen_id: u32,
    event: ProcEvent,
) {
    match event {
        ProcEvent::Fork {
            parent_pid,
            parent_tgid,
            child_pid,
            child_tgid,
        } => {
            if child_pid == child_tgid {
                let mut st = shared.lock();
                st.table.fork(parent_tgid, parent_pid, child_tgid);
                let image = st.table.image(parent_tgid).to_string();
                st.rules.fork(parent_tgid, &image, child_tgid);
            } else if shared.fires(EventsToFire::THREAD_CREATION) {
                let selected = {
                    let st = shared.lock();
                    shared.selects(&st, child_tgid)
                };
                if selected {
                    // A new thread's fork record names the process's parent, not the thread
                    // that called clone: only the process is known.
                    let ev = ThreadCreation {
                        process_id: child_tgid,
                        thread_id: child_pid,
                        creating_process_id: child_tgid,
                        creating_thread_id: 0,
                    };
                    shared.notify(
                        dispatcher,
                        child_tgid,
                        child_tgid,
                        "thread_creation",
                        move |h| h.on_thread_creation(&ev),
                    );
                }
            }
        }
        ProcEvent::Exec { tgid, .. } => {
            let record = naming.records.as_mut().and_then(|r| r.take(tgid));
            // The record's image is exact even when the process is gone; a path too deep for
            // a record is read from /proc instead.
            let running = match &record {
                Some(r) if !r.path_truncated => Some(r.image_path.to_string_lossy().into_owned()),
                _ => std::fs::read_link(format!("/proc/{tgid}/exe"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .ok(),
            };
            let opened = naming
                .names
                .as_mut()
                .and_then(|n| n.take(tgid, running.as_deref()));
            let process_name = running
                .clone()
                .or_else(|| opened.clone())
                .unwrap_or_default();
            let image = opened.or(running).unwrap_or_default();
            let mut st = shared.lock();
            // Fired already from a permission event for this very image; an image whose
            // name is unknown (the process is gone) is assumed to be it.
            let already = st
                .exec_fired
                .remove(&tgid)
                .is_some_and(|fired| image.is_empty() || fired.contains(&image));
            let info = st.table.exec(tgid, process_name.clone()).clone();
            if already || !shared.fires(EventsToFire::PROCESS_CREATION) {
                return;
            }
            let creator = if info.creator != 0 {
                info.creator
            } else {
                info.ppid
            };
            if !shared.selects(&st, creator) {
                return;
            }
            drop(st);
            let command_line = if !shared.track_command_line.load(Ordering::Relaxed) {
                String::new()
            } else if let Some(r) = record.as_ref().filter(|r| !r.arguments_truncated) {
                r.command_line()
            } else {
                command_line(tgid)
            };
            let mut ev = ProcessCreation {
                process_id: tgid,
                parent_process_id: info.ppid,
                creating_process_id: creator,
                creating_thread_id: info.creator_thread,
                file_open_name_available: image.starts_with('/'),
                process_name,
                image_file_name: image,
                command_line,
            };
            shared.notify(dispatcher, tgid, creator, "process_creation", move |h| {
                h.on_process_creation(&mut ev)
            });
        }
        ProcEvent::Exit { pid, tgid, .. } if pid == tgid => {
            let mut st = shared.lock();
            let selected = shared.selects(&st, tgid);
            let fire = shared.fires(EventsToFire::PROCESS_TERMINATION) && selected;
            if selected {
                st.departed.record(tgid);
            }
            let info = st.table.exit(tgid);
            if let Some(n) = naming.names.as_mut() {
                n.forget(tgid);
            }
            if let Some(r) = naming.records.as_mut() {
                r.forget(tgid);
            }
            st.rules.exit(tgid);
            st.exec_fired.remove(&tgid);
            drop(st);
            if fire {
                let ev = ProcessTermination {
                    process_id: tgid,
                    process_name: info.map(|i| i.image).unwrap_or_default(),
                };
                shared.notify(dispatcher, tgid, tgid, "process_termination", move |h| {
                    h.on_process_termination(&ev)
                });
            }
        }
        ProcEvent::Exit { pid, tgid, .. } => {
            if !shared.fires(EventsToFire::THREAD_TERMINATION) {
                return;
            }
            let selected = {
                let st = shared.lock();
                shared.selects(&st, tgid)
            };
            if selected {
                let ev = ThreadTermination {
                    process_id: tgid,
                    thread_id: pid,
                };
                shared.notify(dispatcher, tgid, tgid, "thread_termination", move |h| {
                    h.on_thread_termination(&ev)
                });
            }
        }
        ProcEvent::Ack { err, request } if err != 0 && request == listen_id => shared.error(
            dispatcher,
            code::ERROR_PRIVILEGE_NOT_HELD,
            format!(
                "the kernel refused this filter's process connector listen request (errno \
                 {err}): this kernel build lets only processes with CAP_NET_ADMIN listen, so \
                 process events may be missing; run with CAP_NET_ADMIN, e.g. as root"
            ),
        ),
        ProcEvent::Ack { .. } | ProcEvent::Comm { .. } | ProcEvent::Other { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use fsgate_core::dispatch::{Hooks, Options};

    use super::*;
    use crate::events::ProcessEvents;

    #[derive(Default)]
    struct Errors(Mutex<Vec<(u32, String)>>);

    impl ProcessEvents for Errors {}
    impl Hooks for Errors {
        fn on_error(&self, error_code: u32, description: &str) {
            self.0
                .lock()
                .unwrap()
                .push((error_code, description.to_string()));
        }
    }

    /// The kernel multicasts every answer to a listen request to every listener: another
    /// program's refused request must not be reported as this filter's.
    #[test]
    fn only_the_refusal_of_this_filters_listen_request_is_reported() {
        let errors = Arc::new(Errors::default());
        let shared = Arc::new(Shared::new(errors.clone()));
        let dispatcher =
            Dispatcher::new(Options::default(), errors.clone() as Arc<dyn Hooks>).unwrap();
        let mut names = Naming::default();
        let eperm = libc::EPERM as u32;
        let mine = 4242;
        for ack in [
            ProcEvent::Ack {
                err: eperm,
                request: mine + 1,
            },
            ProcEvent::Ack {
                err: 0,
                request: mine,
            },
        ] {
            handle(&shared, &mut names, &dispatcher, mine, ack);
        }
        dispatcher.wait_idle();
        assert!(errors.0.lock().unwrap().is_empty());
        let refused = ProcEvent::Ack {
            err: eperm,
            request: mine,
        };
        handle(&shared, &mut names, &dispatcher, mine, refused);
        dispatcher.wait_idle();
        let got = errors.0.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, code::ERROR_PRIVILEGE_NOT_HELD);
        assert!(got[0].1.contains("CAP_NET_ADMIN"), "{got:?}");
        dispatcher.shutdown();
    }
}
