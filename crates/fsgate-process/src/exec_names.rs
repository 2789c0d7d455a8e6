//! The image each exec opened, caught as it happens, for processes too short-lived for
//! `/proc/<pid>/exe` to be read when the connector's exec record is handled.
//!
//! A fanotify notification group with `FAN_OPEN_EXEC` marks on every mount present at start
//! reports, for each `execve`, the process id and a descriptor of the image it opened. The
//! kernel queues that event during the `execve`, before the connector's exec record exists,
//! so when the connector reader meets an exec record it first drains this group (without
//! blocking) and then finds the image by pid. Every image a process opened for execution
//! since its last exec record is kept, in order: the program, a script's interpreter, the
//! ELF interpreter, and images of execs that failed after the open. The one reported is the
//! image the process now runs (`/proc/<pid>/exe`), or the script just before it when that
//! image is a script's interpreter; when the process is already gone, the first one. Mounts
//! made after the
//! start are not marked; for them the image comes from `/proc/<pid>/exe`.

use std::collections::HashMap;
use std::os::fd::AsFd;

use fsgate_fanotify::{
    Class, EventBuffer, EventMask, Group, InitFlags, MarkAction, MarkFlags, MarkType,
};

/// The notification group and the images seen but not yet claimed.
pub struct ExecNames {
    group: Group,
    buf: EventBuffer,
    pending: HashMap<u32, Vec<String>>,
}

impl ExecNames {
    /// Creates the group and marks every mount of this thread's mount table; `None` when
    /// fanotify is unavailable (then images come from `/proc` only).
    pub fn new() -> Option<Self> {
        let group = Group::new(
            Class::Notif,
            InitFlags::CLOEXEC | InitFlags::NONBLOCK | InitFlags::UNLIMITED_QUEUE,
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_LARGEFILE,
        )
        .map_err(|e| tracing::warn!("exec image names from /proc only: {e}"))
        .ok()?;
        let mounts = fsgate_core::mountinfo::current().unwrap_or_default();
        for mount in &mounts {
            // Pseudo filesystems refuse marks; they hold no executables.
            let _ = group.mark(
                MarkAction::Add,
                MarkType::Mount,
                MarkFlags::empty(),
                EventMask::OPEN_EXEC,
                None,
                Some(mount.mount_point.as_path()),
            );
        }
        Some(Self {
            group,
            buf: EventBuffer::default(),
            pending: HashMap::new(),
        })
    }

    /// Reads every queued exec open without blocking.
    fn drain(&mut self) {
        while let Ok(events) = self.group.read_events(&mut self.buf) {
            if events.is_empty() {
                return;
            }
            for ev in events {
                let (Ok(pid), Some(fd)) = (u32::try_from(ev.pid), ev.fd.as_ref()) else {
                    continue;
                };
                if let Ok(path) = fsgate_fanotify::fd_path(fd.as_fd()) {
                    self.pending
                        .entry(pid)
                        .or_default()
                        .push(path.to_string_lossy().into_owned());
                }
            }
        }
    }

    /// The image process `pid` opened for the exec being reported, given the image it now
    /// runs when that is still readable; `None` when none was seen, or when `running` is
    /// known and was not among them (an image on an unmarked mount).
    pub fn take(&mut self, pid: u32, running: Option<&str>) -> Option<String> {
        self.drain();
        let opened = self.pending.remove(&pid)?;
        pick(opened, running, is_script)
    }

    /// Forgets an exited process (its exec failed or was never reported).
    pub fn forget(&mut self, pid: u32) {
        self.pending.remove(&pid);
    }
}

/// Chooses the exec's image from the images `opened` in order (see the module docs).
fn pick(
    mut opened: Vec<String>,
    running: Option<&str>,
    is_script: impl Fn(&str) -> bool,
) -> Option<String> {
    let Some(running) = running else {
        return (!opened.is_empty()).then(|| opened.swap_remove(0));
    };
    let at = opened.iter().position(|o| o == running)?;
    if at > 0 && is_script(&opened[at - 1]) {
        return Some(opened.swap_remove(at - 1));
    }
    Some(opened.swap_remove(at))
}

/// Whether `path` starts with `#!` (its exec runs an interpreter).
fn is_script(path: &str) -> bool {
    let mut magic = [0u8; 2];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok_and(|()| &magic == b"#!")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_running_image_or_its_script_is_picked() {
        let ld = "/lib64/ld-linux-x86-64.so.2";
        let scripts = |p: &str| p.ends_with(".sh");
        // A program: itself, not its ELF interpreter.
        let got = pick(v(&["/t/prog", ld]), Some("/t/prog"), scripts);
        assert_eq!(got.as_deref(), Some("/t/prog"));
        // A script: the script, not the shell that runs it.
        let got = pick(
            v(&["/t/s.sh", "/usr/bin/dash", ld]),
            Some("/usr/bin/dash"),
            scripts,
        );
        assert_eq!(got.as_deref(), Some("/t/s.sh"));
        // An exec that failed after opening its image does not name the next one.
        let got = pick(v(&["/t/bad", "/t/prog", ld]), Some("/t/prog"), scripts);
        assert_eq!(got.as_deref(), Some("/t/prog"));
        // The process is gone: the first image opened.
        let got = pick(v(&["/t/prog", ld]), None, scripts);
        assert_eq!(got.as_deref(), Some("/t/prog"));
        // The program lies on an unmarked mount: only its interpreter was seen.
        assert_eq!(pick(v(&[ld]), Some("/new/prog"), scripts), None);
        assert_eq!(pick(Vec::new(), None, scripts), None);
    }
}
