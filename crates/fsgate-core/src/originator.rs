//! Who made a request: the reference's "originator process" and "token" on Linux.
//!
//! The kernel gives each request a pid, uid and gid. Everything else — the process name, its
//! image path, its supplementary groups and capabilities — is read from `/proc/<pid>` when
//! asked, so events that never look at it pay nothing. A process that has exited by then
//! yields an error naming the pid (PID reuse: see reference "PID Reuse"; read such data
//! inside the event, while the request holds the process).

use std::fs;

use crate::dispatch::current_originator;
use crate::error::{code, Error, Result};

/// The process and thread behind a request.
///
/// Some sources name the process (fanotify, the process connector); FUSE names the calling
/// thread. For those, [`pid`](Self::pid) finds the thread's process (its thread-group id)
/// when first asked, from `/proc/<tid>/status`, so requests whose events never ask pay
/// nothing. Ask while the request is in flight: the calling thread then still exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Originator {
    /// The process, 0 while only the thread is known.
    pid: u32,
    /// Thread id: the thread that made the request, or the process id where the source
    /// reports only the process.
    pub tid: u32,
    /// Filesystem user id the request runs with.
    pub uid: u32,
    /// Filesystem group id the request runs with.
    pub gid: u32,
}

/// A process's credentials: the reference's "originator token".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    /// Real user id.
    pub uid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// Effective capability set, as the kernel's bit mask (`CAP_*` bit numbers).
    pub capabilities: u64,
}

impl Credentials {
    /// Whether the effective set holds capability number `cap` (for example
    /// `libc::CAP_SYS_ADMIN`-style numbers: 21 for CAP_SYS_ADMIN).
    pub fn has_capability(&self, cap: u32) -> bool {
        cap < 64 && self.capabilities & (1 << cap) != 0
    }
}

impl Originator {
    /// A request of thread `tid` of process `pid`.
    pub fn new(pid: u32, tid: u32, uid: u32, gid: u32) -> Self {
        Self { pid, tid, uid, gid }
    }

    /// A request of process `pid` whose thread is not known (`tid` is `pid`).
    pub fn of_process(pid: u32, uid: u32, gid: u32) -> Self {
        Self {
            pid,
            tid: pid,
            uid,
            gid,
        }
    }

    /// A request of thread `tid`, whose process is found when [`pid`](Self::pid) is first
    /// asked. `tid` 0 means the kernel itself (no process): `pid` is 0 too.
    pub fn of_thread(tid: u32, uid: u32, gid: u32) -> Self {
        Self {
            pid: 0,
            tid,
            uid,
            gid,
        }
    }

    /// The process id (thread-group id). For an originator made from a thread id, read from
    /// `/proc/<tid>/status` on each call until [`resolved`](Self::resolved) keeps it; the
    /// thread id itself if that thread has already exited.
    pub fn pid(&self) -> u32 {
        if self.pid != 0 || self.tid == 0 {
            return self.pid;
        }
        thread_group_id(self.tid).unwrap_or(self.tid)
    }

    /// This originator with its process id looked up now, for keeping past the request (a
    /// handle's creator).
    pub fn resolved(self) -> Self {
        Self {
            pid: self.pid(),
            ..self
        }
    }

    /// The process's short name (`/proc/<pid>/comm`, at most 15 bytes).
    pub fn process_name(&self) -> Result<String> {
        process_name(self.pid())
    }

    /// The full path of the process's image (`/proc/<pid>/exe`).
    pub fn image_path(&self) -> Result<String> {
        image_path(self.pid())
    }

    /// The process's credentials (`/proc/<pid>/status`).
    pub fn credentials(&self) -> Result<Credentials> {
        credentials(self.pid())
    }
}

// The reference's `get_originator_*` methods, shared by every class: each reads the
// originator of the request whose handler runs on this thread (see
// [`crate::dispatch::current_originator`]). Outside a handler they fail with
// `ERROR_NO_CALLBACK_ACTIVE` (614), naming the method.

/// `get_originator_process_id`: the pid (thread-group id) of the process whose request
/// fired this event, whichever of its threads made it.
pub fn get_originator_process_id() -> Result<u32> {
    Ok(current_originator("get_originator_process_id")?.pid())
}

/// `get_originator_thread_id`: the id of the thread that made the request (the process id
/// where the source reports only the process).
pub fn get_originator_thread_id() -> Result<u32> {
    Ok(current_originator("get_originator_thread_id")?.tid)
}

/// `get_originator_process_name`: that process's short name (`/proc/<pid>/comm`).
pub fn get_originator_process_name() -> Result<String> {
    current_originator("get_originator_process_name")?.process_name()
}

/// The uid the request runs with (`u32::MAX` where the source does not report it).
pub fn get_originator_user_id() -> Result<u32> {
    Ok(current_originator("get_originator_user_id")?.uid)
}

/// The gid the request runs with (`u32::MAX` where the source does not report it).
pub fn get_originator_group_id() -> Result<u32> {
    Ok(current_originator("get_originator_group_id")?.gid)
}

/// `get_originator_token`: the process's credentials (uids, gids, groups, capabilities),
/// read from `/proc/<pid>/status`; `ERROR_FILE_NOT_FOUND` (2) once it has exited.
pub fn get_originator_token() -> Result<Credentials> {
    current_originator("get_originator_token")?.credentials()
}

fn proc_error(pid: u32, what: &str, err: std::io::Error) -> Error {
    if err.kind() == std::io::ErrorKind::NotFound {
        Error::from_code(
            code::ERROR_FILE_NOT_FOUND,
            format!("process {pid} has exited; its {what} is gone"),
        )
    } else {
        Error::io(format!("reading the {what} of process {pid}"), err)
    }
}

/// The process (thread-group id) that thread `tid` belongs to. A main thread (most callers)
/// is recognised with one `pidfd_open`, which only a thread-group leader's id passes;
/// another thread's process is read from `/proc/<tid>/status`.
pub fn thread_group_id(tid: u32) -> Result<u32> {
    let leader = rustix::process::Pid::from_raw(tid as i32)
        .and_then(|pid| rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok())
        .is_some();
    if leader {
        return Ok(tid);
    }
    let status = fs::read_to_string(format!("/proc/{tid}/status"))
        .map_err(|e| proc_error(tid, "thread group", e))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            Error::from_code(
                code::ERROR_INVALID_DATA,
                format!("/proc/{tid}/status has no valid 'Tgid:' line"),
            )
        })
}

/// The short name of process `pid` (`/proc/<pid>/comm`).
pub fn process_name(pid: u32) -> Result<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end_matches('\n').to_string())
        .map_err(|e| proc_error(pid, "name", e))
}

/// The full image path of process `pid` (`/proc/<pid>/exe`); kernel threads, which have no
/// image, yield their name in brackets.
pub fn image_path(pid: u32) -> Result<String> {
    match fs::read_link(format!("/proc/{pid}/exe")) {
        Ok(p) => Ok(p.to_string_lossy().into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Kernel threads have no exe link but still have a comm.
            process_name(pid).map(|n| format!("[{n}]"))
        }
        Err(e) => Err(proc_error(pid, "image path", e)),
    }
}

/// The credentials of process `pid`, parsed from `/proc/<pid>/status`.
pub fn credentials(pid: u32) -> Result<Credentials> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| proc_error(pid, "credentials", e))?;
    parse_status(pid, &status)
}

fn parse_status(pid: u32, status: &str) -> Result<Credentials> {
    let field = |name: &str| -> Option<&str> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let ids = |name: &str| -> Result<Vec<u32>> {
        field(name)
            .ok_or_else(|| {
                Error::from_code(
                    code::ERROR_INVALID_DATA,
                    format!("/proc/{pid}/status has no '{name}' line"),
                )
            })?
            .split_whitespace()
            .map(|s| {
                s.parse().map_err(|_| {
                    Error::from_code(
                        code::ERROR_INVALID_DATA,
                        format!("/proc/{pid}/status: bad value '{s}' in '{name}'"),
                    )
                })
            })
            .collect()
    };
    let uids = ids("Uid:")?;
    let gids = ids("Gid:")?;
    let groups = ids("Groups:").unwrap_or_default();
    let capabilities = field("CapEff:")
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .unwrap_or(0);
    let get = |v: &[u32], i: usize| v.get(i).copied().unwrap_or(u32::MAX);
    Ok(Credentials {
        uid: get(&uids, 0),
        euid: get(&uids, 1),
        gid: get(&gids, 0),
        egid: get(&gids, 1),
        groups,
        capabilities,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = Originator::of_process(std::process::id(), 0, 0);
        assert!(!me.process_name().unwrap().is_empty());
        let exe = std::env::current_exe().unwrap();
        assert_eq!(me.image_path().unwrap(), exe.to_string_lossy());
        let creds = me.credentials().unwrap();
        // SAFETY: geteuid cannot fail.
        assert_eq!(creds.euid, unsafe { libc::geteuid() });
    }

    #[test]
    fn parses_status_lines() {
        let s = "Name:\tx\nUid:\t1\t2\t3\t4\nGid:\t5\t6\t7\t8\nGroups:\t10 20 \nCapEff:\t0000000000200000\n";
        let c = parse_status(1, s).unwrap();
        assert_eq!((c.uid, c.euid, c.gid, c.egid), (1, 2, 5, 6));
        assert_eq!(c.groups, vec![10, 20]);
        assert!(c.has_capability(21));
        assert!(!c.has_capability(0));
    }

    #[test]
    fn a_thread_resolves_to_its_process() {
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            // SAFETY: gettid has no preconditions.
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            done_rx.recv().unwrap();
        });
        let tid = rx.recv().unwrap();
        let who = Originator::of_thread(tid, 0, 0);
        assert_ne!(tid, std::process::id());
        assert_eq!(who.tid, tid);
        assert_eq!(who.pid(), std::process::id());
        assert_eq!(who.resolved().pid(), std::process::id());
        done_tx.send(()).unwrap();
        t.join().unwrap();
        assert_eq!(Originator::of_thread(0, 0, 0).pid(), 0);
    }

    #[test]
    fn exited_process_is_not_found() {
        let e = process_name(u32::MAX - 1).unwrap_err();
        assert_eq!(e.code(), code::ERROR_FILE_NOT_FOUND);
    }
}
