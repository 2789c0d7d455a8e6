//! Who made a request: the reference's "originator process" and "token" on Linux.
//!
//! The kernel gives each request a pid, uid and gid. Everything else — the process name, its
//! image path, its supplementary groups and capabilities — is read from `/proc/<pid>` when
//! asked, so events that never look at it pay nothing. A process that has exited by then
//! yields an error naming the pid (PID reuse: see reference "PID Reuse"; read such data
//! inside the event, while the request holds the process).

use std::fs;

use crate::error::{code, Error, Result};

/// The process behind a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Originator {
    /// Process id (the thread-group id).
    pub pid: u32,
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
    /// The process's short name (`/proc/<pid>/comm`, at most 15 bytes).
    pub fn process_name(&self) -> Result<String> {
        process_name(self.pid)
    }

    /// The full path of the process's image (`/proc/<pid>/exe`).
    pub fn image_path(&self) -> Result<String> {
        image_path(self.pid)
    }

    /// The process's credentials (`/proc/<pid>/status`).
    pub fn credentials(&self) -> Result<Credentials> {
        credentials(self.pid)
    }
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
        let me = Originator {
            pid: std::process::id(),
            uid: 0,
            gid: 0,
        };
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
    fn exited_process_is_not_found() {
        let e = process_name(u32::MAX - 1).unwrap_err();
        assert_eq!(e.code(), code::ERROR_FILE_NOT_FOUND);
    }
}
