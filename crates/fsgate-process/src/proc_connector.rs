//! The netlink process connector: the kernel's stream of fork, exec, exit and comm events.
//!
//! A `NETLINK_CONNECTOR` datagram socket bound to the `CN_IDX_PROC` multicast group receives
//! one `nlmsghdr` + `cn_msg` + `proc_event` record per task event, for every task on the
//! machine, once a `PROC_CN_MCAST_LISTEN` request has been sent.
//!
//! Whether a process without `CAP_NET_ADMIN` may listen depends on the kernel build, not on
//! its version alone: mainline Linux 6.6 and later accept it, earlier kernels and some later
//! builds refuse it. A build refuses in one of two places, and fsgate reports both as
//! `ERROR_PRIVILEGE_NOT_HELD` (1314):
//! - at the bind to the group (`EPERM`): [`ProcConnector::open`] fails, naming
//!   `CAP_NET_ADMIN`;
//! - at the listen request: the bind succeeds and the kernel answers the request with an
//!   acknowledgement carrying `EPERM` ([`ProcEvent::Ack`] whose `request` is
//!   [`ProcConnector::listen_id`]), which the reader turns into an `on_error` (1314).
//!
//! With `CAP_NET_ADMIN` (root) every kernel accepts the listener.
//!
//! The kernel never blocks on a slow reader: when the socket's receive queue is full it drops
//! records and the next `recv` fails with `ENOBUFS`. [`ProcConnector::open`] asks for a large
//! queue (`SO_RCVBUFFORCE`, falling back to `SO_RCVBUF`), and [`Received::Overrun`] reports every
//! drop so the caller can say so instead of losing events silently.
//!
//! All syscalls go through `rustix`; the record parser ([`parse`]) is pure and tested on
//! byte buffers.
//!
//! References: connector(4) in the kernel's `Documentation/driver-api/connector.rst`,
//! `include/uapi/linux/cn_proc.h`, netlink(7).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use fsgate_core::{code, Error, Result};
use rustix::net::netlink::{SocketAddrNetlink, CONNECTOR};
use rustix::net::{sockopt, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// `CN_IDX_PROC`: the connector index (and multicast group) of the process events.
const CN_IDX_PROC: u32 = 1;
/// `CN_VAL_PROC`.
const CN_VAL_PROC: u32 = 1;
/// `PROC_CN_MCAST_LISTEN`.
const PROC_CN_MCAST_LISTEN: u32 = 1;
/// `NLMSG_DONE`: the message type connector records travel in.
const NLMSG_DONE: u16 = 3;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;

const NLMSG_HDR_LEN: usize = 16;
const CN_MSG_LEN: usize = 20;
/// `what`, `cpu`, `timestamp_ns`.
const PROC_EVENT_HDR_LEN: usize = 16;

const PROC_EVENT_NONE: u32 = 0x0000_0000;
const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_COMM: u32 = 0x0000_0200;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// One task event from the kernel. Ids are kernel task ids: `pid` names a thread, `tgid` the
/// process (thread group) it belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    /// The kernel's answer to a listen or ignore request (`err` 0: accepted). The kernel
    /// multicasts it to every listener, so a socket also sees the answers to other sockets'
    /// requests: only the one whose `request` is the socket's
    /// [`listen_id`](ProcConnector::listen_id) answers its own request.
    Ack {
        /// The errno the kernel reports (0 on success).
        err: u32,
        /// The `ack` number of the request this answers (the kernel sends that number plus
        /// one back; its `seq` is the kernel's own event counter).
        request: u32,
    },
    /// A task was created. `child_pid != child_tgid` means a new thread of `child_tgid`;
    /// otherwise a new process. `parent_pid` is the thread that called fork/clone.
    Fork {
        /// Thread that created the task.
        parent_pid: u32,
        /// Process of that thread (for a new process: its parent).
        parent_tgid: u32,
        /// The new task.
        child_pid: u32,
        /// The process the new task belongs to.
        child_tgid: u32,
    },
    /// A task replaced its program image (a successful execve).
    Exec {
        /// The task that called execve (after exec: the thread-group leader).
        pid: u32,
        /// Its process.
        tgid: u32,
    },
    /// A task changed its name (`prctl(PR_SET_NAME)` or exec).
    Comm {
        /// The task.
        pid: u32,
        /// Its process.
        tgid: u32,
        /// The new name (at most 15 bytes).
        comm: String,
    },
    /// A task exited. `pid == tgid` is the thread-group leader (the process).
    Exit {
        /// The task.
        pid: u32,
        /// Its process.
        tgid: u32,
        /// The exit code as `wait` reports it.
        exit_code: u32,
        /// The signal sent to the parent.
        exit_signal: u32,
    },
    /// An event kind fsgate does not use (uid, gid, sid, ptrace, coredump, …).
    Other {
        /// The kernel's `what` value.
        what: u32,
    },
}

/// What one `recv` produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// This many bytes of records are in the buffer.
    Records(usize),
    /// The receive queue overflowed: the kernel dropped records.
    Overrun,
    /// The receive queue is empty.
    Idle,
}

/// A socket subscribed to the kernel's process events.
#[derive(Debug)]
pub struct ProcConnector {
    fd: OwnedFd,
    listen_id: u32,
}

impl ProcConnector {
    /// Opens the socket (non-blocking: a reader waits for it with `poll`, see
    /// [`fsgate_core::listener`]), joins the process events group, asks for `recv_buffer`
    /// bytes of receive queue and sends the listen request, numbered
    /// [`listen_id`](Self::listen_id).
    ///
    /// Errors: `ERROR_PRIVILEGE_NOT_HELD` (1314, errno `EPERM` or `EACCES`) when the kernel
    /// refuses the bind, which kernels before 6.6 and some later builds do for a caller
    /// without `CAP_NET_ADMIN`; other socket errors with their errno. A build that accepts
    /// the bind but refuses the listen request answers asynchronously: see
    /// [`ProcEvent::Ack`].
    ///
    /// References: netlink(7), `include/uapi/linux/cn_proc.h`.
    pub fn open(recv_buffer: usize) -> Result<Self> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
            Some(CONNECTOR),
        )
        .map_err(|e| Error::io("opening a NETLINK_CONNECTOR socket", e.into()))?;
        rustix::net::bind(&fd, &SocketAddrNetlink::new(0, CN_IDX_PROC)).map_err(|e| {
            if e == rustix::io::Errno::PERM || e == rustix::io::Errno::ACCESS {
                Error::new(
                    code::ERROR_PRIVILEGE_NOT_HELD,
                    e.raw_os_error(),
                    "this kernel lets only processes with CAP_NET_ADMIN join the process \
                     connector group (mainline Linux 6.6 and later let any process join, this \
                     build does not): run with CAP_NET_ADMIN, e.g. as root",
                )
            } else {
                Error::io("binding to the process connector group", e.into())
            }
        })?;
        if sockopt::set_socket_recv_buffer_size_force(&fd, recv_buffer).is_err() {
            sockopt::set_socket_recv_buffer_size(&fd, recv_buffer)
                .map_err(|e| Error::io("setting SO_RCVBUF on the connector socket", e.into()))?;
        }
        // The port id the kernel gave the socket is unique on the machine while the socket
        // lives: as the request's ack number it tells this socket's answer from the answers
        // to other listeners, which the kernel multicasts to this socket too.
        let port = rustix::net::getsockname(&fd)
            .and_then(SocketAddrNetlink::try_from)
            .map_err(|e| Error::io("reading the connector socket's port id", e.into()))?
            .pid();
        let request = listen_request(port, port);
        rustix::net::sendto(
            &fd,
            &request,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )
        .map_err(|e| Error::io("sending PROC_CN_MCAST_LISTEN", e.into()))?;
        Ok(Self {
            fd,
            listen_id: port,
        })
    }

    /// The number of this socket's listen request (its `ack` field): the kernel's answer
    /// to it is the [`ProcEvent::Ack`] whose `request` is this number.
    pub fn listen_id(&self) -> u32 {
        self.listen_id
    }

    /// The receive queue size the kernel granted, in bytes.
    pub fn recv_buffer(&self) -> Result<usize> {
        sockopt::socket_recv_buffer_size(&self.fd)
            .map_err(|e| Error::io("reading SO_RCVBUF", e.into()))
    }

    /// Receives one datagram of records into `buf` (use at least 8 KiB) without waiting:
    /// [`Received::Idle`] when the queue is empty.
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<Received> {
        loop {
            return match rustix::net::recv(&self.fd, &mut *buf, RecvFlags::DONTWAIT) {
                Ok((n, _)) => Ok(Received::Records(n)),
                Err(rustix::io::Errno::INTR) => continue,
                Err(rustix::io::Errno::AGAIN) => Ok(Received::Idle),
                Err(rustix::io::Errno::NOBUFS) => Ok(Received::Overrun),
                Err(e) => Err(Error::io(
                    "receiving from the process connector",
                    io::Error::from(e),
                )),
            };
        }
    }
}

impl AsFd for ProcConnector {
    /// The socket, for `poll`.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// The `nlmsghdr` + `cn_msg` + `PROC_CN_MCAST_LISTEN` request from netlink port `port`,
/// numbered `id` (in `cn_msg.ack`: the kernel overwrites `seq` in its answer).
fn listen_request(port: u32, id: u32) -> Vec<u8> {
    let total = NLMSG_HDR_LEN + CN_MSG_LEN + 4;
    let mut m = Vec::with_capacity(total);
    m.extend_from_slice(&(total as u32).to_ne_bytes());
    m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&port.to_ne_bytes());
    m.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&id.to_ne_bytes());
    m.extend_from_slice(&4u16.to_ne_bytes());
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2)
        .and_then(|s| s.try_into().ok())
        .map(u16::from_ne_bytes)
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .and_then(|s| s.try_into().ok())
        .map(u32::from_ne_bytes)
}

/// Parses every process event record in one datagram, in order. Records that are too
/// short, not from the process connector, or netlink errors are skipped; `Err` names the
/// first malformed header so a caller can report it.
pub fn parse(datagram: &[u8]) -> Result<Vec<ProcEvent>> {
    let mut events = Vec::new();
    let mut at = 0;
    while at + NLMSG_HDR_LEN <= datagram.len() {
        let len = u32_at(datagram, at).unwrap_or(0) as usize;
        let kind = u16_at(datagram, at + 4).unwrap_or(0);
        if len < NLMSG_HDR_LEN || at + len > datagram.len() {
            return Err(Error::from_code(
                code::ERROR_INVALID_DATA,
                format!(
                    "malformed netlink header at byte {at}: length {len} in a {}-byte datagram",
                    datagram.len()
                ),
            ));
        }
        if kind != NLMSG_ERROR {
            if let Some(event) = parse_cn_msg(&datagram[at + NLMSG_HDR_LEN..at + len]) {
                events.push(event);
            }
        }
        at += (len + 3) & !3;
    }
    Ok(events)
}

/// One `cn_msg` carrying a `proc_event`; `None` when it is not a process event.
fn parse_cn_msg(msg: &[u8]) -> Option<ProcEvent> {
    let idx = u32_at(msg, 0)?;
    let val = u32_at(msg, 4)?;
    let ack = u32_at(msg, 12)?;
    let data_len = usize::from(u16_at(msg, 16)?);
    if idx != CN_IDX_PROC || val != CN_VAL_PROC {
        return None;
    }
    let ev = msg.get(CN_MSG_LEN..CN_MSG_LEN + data_len)?;
    let what = u32_at(ev, 0)?;
    let d = ev.get(PROC_EVENT_HDR_LEN..)?;
    Some(match what {
        PROC_EVENT_NONE => ProcEvent::Ack {
            err: u32_at(d, 0)?,
            request: ack.wrapping_sub(1),
        },
        PROC_EVENT_FORK => ProcEvent::Fork {
            parent_pid: u32_at(d, 0)?,
            parent_tgid: u32_at(d, 4)?,
            child_pid: u32_at(d, 8)?,
            child_tgid: u32_at(d, 12)?,
        },
        PROC_EVENT_EXEC => ProcEvent::Exec {
            pid: u32_at(d, 0)?,
            tgid: u32_at(d, 4)?,
        },
        PROC_EVENT_COMM => {
            let raw = d.get(8..24)?;
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            ProcEvent::Comm {
                pid: u32_at(d, 0)?,
                tgid: u32_at(d, 4)?,
                comm: String::from_utf8_lossy(&raw[..end]).into_owned(),
            }
        }
        PROC_EVENT_EXIT => ProcEvent::Exit {
            pid: u32_at(d, 0)?,
            tgid: u32_at(d, 4)?,
            exit_code: u32_at(d, 8)?,
            exit_signal: u32_at(d, 12)?,
        },
        other => ProcEvent::Other { what: other },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datagram as the kernel builds it: nlmsghdr, cn_msg, proc_event header, `data`.
    fn record(what: u32, data: &[u32], extra: &[u8]) -> Vec<u8> {
        let mut ev = Vec::new();
        ev.extend_from_slice(&what.to_ne_bytes());
        ev.extend_from_slice(&1u32.to_ne_bytes());
        ev.extend_from_slice(&123_456_789u64.to_ne_bytes());
        for v in data {
            ev.extend_from_slice(&v.to_ne_bytes());
        }
        ev.extend_from_slice(extra);
        let mut cn = Vec::new();
        cn.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        cn.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        cn.extend_from_slice(&7u32.to_ne_bytes());
        cn.extend_from_slice(&42u32.to_ne_bytes());
        cn.extend_from_slice(&(ev.len() as u16).to_ne_bytes());
        cn.extend_from_slice(&0u16.to_ne_bytes());
        cn.extend_from_slice(&ev);
        let len = NLMSG_HDR_LEN + cn.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(len as u32).to_ne_bytes());
        m.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(&cn);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn fork_of_a_process_and_of_a_thread() {
        let process = parse(&record(PROC_EVENT_FORK, &[100, 100, 200, 200], &[])).unwrap();
        assert_eq!(
            process,
            vec![ProcEvent::Fork {
                parent_pid: 100,
                parent_tgid: 100,
                child_pid: 200,
                child_tgid: 200
            }]
        );
        let thread = parse(&record(PROC_EVENT_FORK, &[101, 100, 201, 100], &[])).unwrap();
        assert_eq!(
            thread,
            vec![ProcEvent::Fork {
                parent_pid: 101,
                parent_tgid: 100,
                child_pid: 201,
                child_tgid: 100
            }]
        );
    }

    #[test]
    fn exec_exit_comm_and_ack() {
        assert_eq!(
            parse(&record(PROC_EVENT_EXEC, &[300, 300], &[])).unwrap(),
            vec![ProcEvent::Exec {
                pid: 300,
                tgid: 300
            }]
        );
        assert_eq!(
            parse(&record(PROC_EVENT_EXIT, &[301, 300, 256, 17, 1, 1], &[])).unwrap(),
            vec![ProcEvent::Exit {
                pid: 301,
                tgid: 300,
                exit_code: 256,
                exit_signal: 17
            }]
        );
        let mut comm = *b"worker-one\0\0\0\0\0\0";
        comm[15] = 0;
        assert_eq!(
            parse(&record(PROC_EVENT_COMM, &[5, 5], &comm)).unwrap(),
            vec![ProcEvent::Comm {
                pid: 5,
                tgid: 5,
                comm: "worker-one".into()
            }]
        );
        assert_eq!(
            parse(&record(PROC_EVENT_NONE, &[0], &[])).unwrap(),
            vec![ProcEvent::Ack {
                err: 0,
                request: 41
            }]
        );
        assert_eq!(
            parse(&record(0x4, &[1, 1, 0, 0], &[])).unwrap(),
            vec![ProcEvent::Other { what: 0x4 }]
        );
    }

    #[test]
    fn several_records_in_one_datagram_keep_their_order() {
        let mut d = record(PROC_EVENT_FORK, &[1, 1, 2, 2], &[]);
        d.extend(record(PROC_EVENT_EXEC, &[2, 2], &[]));
        d.extend(record(PROC_EVENT_EXIT, &[2, 2, 0, 17, 1, 1], &[]));
        let events = parse(&d).unwrap();
        assert_eq!(events.len(), 3);
        assert!(matches!(events[0], ProcEvent::Fork { child_pid: 2, .. }));
        assert!(matches!(events[1], ProcEvent::Exec { pid: 2, .. }));
        assert!(matches!(events[2], ProcEvent::Exit { pid: 2, .. }));
    }

    #[test]
    fn truncated_and_foreign_records_are_refused_or_skipped() {
        let mut d = record(PROC_EVENT_EXEC, &[2, 2], &[]);
        d.truncate(d.len() - 8);
        assert!(parse(&d).unwrap_err().message().contains("malformed"));
        let mut foreign = record(PROC_EVENT_EXEC, &[2, 2], &[]);
        foreign[NLMSG_HDR_LEN..NLMSG_HDR_LEN + 4].copy_from_slice(&9u32.to_ne_bytes());
        assert!(parse(&foreign).unwrap().is_empty());
        let mut short = record(PROC_EVENT_FORK, &[1, 1], &[]);
        assert!(parse(&short).unwrap().is_empty());
        short.clear();
        assert!(parse(&short).unwrap().is_empty());
    }

    #[test]
    fn listen_request_layout() {
        let m = listen_request(42, 99);
        assert_eq!(m.len(), 40);
        assert_eq!(u32_at(&m, 0), Some(40));
        assert_eq!(u16_at(&m, 4), Some(NLMSG_DONE));
        assert_eq!(u32_at(&m, 12), Some(42));
        assert_eq!(u32_at(&m, 16), Some(CN_IDX_PROC));
        assert_eq!(u32_at(&m, 28), Some(99), "cn_msg ack");
        assert_eq!(u16_at(&m, 32), Some(4));
        assert_eq!(u32_at(&m, 36), Some(PROC_CN_MCAST_LISTEN));
    }
}
