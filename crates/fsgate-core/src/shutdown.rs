//! `shutdown_system`: the reference's shutdown or reboot, shared by the direct access and
//! process filter classes.
//!
//! On a machine run by systemd the request becomes `shutdown` with a delay and a message that
//! logged-in users see (`shutdown -r +M "prompt"`, or `-h`/`-r now` without a delay); without
//! systemd it is `sync(2)` then `reboot(2)`. The decision ([`plan`]) is separate from the
//! doing ([`Executor`]) so tests check the exact command without ever running it.
//!
//! Linux differences: `shutdown` takes whole minutes, so a timeout in seconds rounds up to
//! the next minute (0 stays "now"); `force_close_apps` is always what happens on Linux
//! (services are stopped, then remaining processes get SIGTERM and SIGKILL), so the flag is
//! accepted and has no other effect; the prompt is the wall message.

use std::io;
use std::path::Path;
use std::process::Command;

use crate::error::{code, Error, Result};
use crate::originator::credentials;

/// `CAP_SYS_BOOT`, which `reboot(2)` and systemd's shutdown need.
pub const CAP_SYS_BOOT: u32 = 22;

/// What the caller asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Message shown to logged-in users.
    pub shutdown_prompt: String,
    /// Delay in seconds before the shutdown (0: now).
    pub timeout: u32,
    /// Close applications without asking (always so on Linux).
    pub force_close_apps: bool,
    /// Reboot after shutting down.
    pub reboot: bool,
}

/// How the request will be carried out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Run this command line (systemd's `shutdown`).
    Command(Vec<String>),
    /// `sync(2)` then `reboot(2)` with `RB_AUTOBOOT` (reboot) or `RB_POWER_OFF`.
    Syscall {
        /// Reboot rather than power off.
        reboot: bool,
    },
}

/// Carries out a [`Plan`]; tests inject one that records instead.
pub trait Executor {
    /// Whether the machine runs systemd (`/run/systemd/system` exists).
    fn has_systemd(&self) -> bool;
    /// Whether the calling process holds `CAP_SYS_BOOT`.
    fn may_shut_down(&self) -> bool;
    /// Runs the plan; returns once the system has accepted it.
    fn execute(&self, plan: &Plan) -> io::Result<()>;
}

/// The real machine.
pub struct System;

impl Executor for System {
    fn has_systemd(&self) -> bool {
        Path::new("/run/systemd/system").is_dir()
    }

    fn may_shut_down(&self) -> bool {
        credentials(std::process::id()).is_ok_and(|c| c.has_capability(CAP_SYS_BOOT))
    }

    fn execute(&self, plan: &Plan) -> io::Result<()> {
        match plan {
            Plan::Command(argv) => {
                let (program, args) = argv
                    .split_first()
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
                let status = Command::new(program).args(args).status()?;
                if status.success() {
                    Ok(())
                } else {
                    Err(io::Error::other(format!("{program} exited with {status}")))
                }
            }
            Plan::Syscall { reboot } => {
                // SAFETY: sync has no preconditions.
                unsafe { libc::sync() };
                let how = if *reboot {
                    libc::RB_AUTOBOOT
                } else {
                    libc::RB_POWER_OFF
                };
                // SAFETY: reboot takes a plain integer command; on success it does not return.
                if unsafe { libc::reboot(how) } == 0 {
                    Ok(())
                } else {
                    Err(io::Error::last_os_error())
                }
            }
        }
    }
}

/// The plan for `request` on a machine with or without systemd.
pub fn plan(request: &Request, has_systemd: bool) -> Plan {
    if !has_systemd {
        return Plan::Syscall {
            reboot: request.reboot,
        };
    }
    let when = match request.timeout {
        0 => "now".to_string(),
        secs => format!("+{}", secs.div_ceil(60)),
    };
    let mut argv = vec![
        "shutdown".to_string(),
        if request.reboot { "-r" } else { "-h" }.to_string(),
        when,
    ];
    if !request.shutdown_prompt.is_empty() {
        argv.push(request.shutdown_prompt.clone());
    }
    Plan::Command(argv)
}

/// Shuts down or reboots: `Ok(false)` when the process lacks `CAP_SYS_BOOT` (nothing is
/// attempted), `Ok(true)` once the system accepted the request, an error when it refused.
pub fn shutdown_system(request: &Request, executor: &dyn Executor) -> Result<bool> {
    if !executor.may_shut_down() {
        return Ok(false);
    }
    let plan = plan(request, executor.has_systemd());
    executor.execute(&plan).map_err(|e| {
        Error::io(format!("shutdown_system: carrying out {plan:?}"), e)
            .context("the system refused the shutdown")
    })?;
    Ok(true)
}

/// Reports `ERROR_PRIVILEGE_NOT_HELD` when `shutdown_system` returned false and the caller
/// wants an error instead.
pub fn privilege_error() -> Error {
    Error::from_code(
        code::ERROR_PRIVILEGE_NOT_HELD,
        "shutdown_system needs CAP_SYS_BOOT (run as root)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    struct Recorder {
        systemd: bool,
        allowed: bool,
        ran: RefCell<Vec<Plan>>,
    }

    impl Executor for Recorder {
        fn has_systemd(&self) -> bool {
            self.systemd
        }
        fn may_shut_down(&self) -> bool {
            self.allowed
        }
        fn execute(&self, plan: &Plan) -> io::Result<()> {
            self.ran.borrow_mut().push(plan.clone());
            Ok(())
        }
    }

    fn request(timeout: u32, reboot: bool) -> Request {
        Request {
            shutdown_prompt: "maintenance".into(),
            timeout,
            force_close_apps: true,
            reboot,
        }
    }

    #[test]
    fn systemd_gets_shutdown_with_minutes_and_message() {
        let r = Recorder {
            systemd: true,
            allowed: true,
            ran: RefCell::default(),
        };
        assert!(shutdown_system(&request(90, true), &r).unwrap());
        assert_eq!(
            r.ran.borrow()[0],
            Plan::Command(vec![
                "shutdown".into(),
                "-r".into(),
                "+2".into(),
                "maintenance".into()
            ])
        );
        assert_eq!(
            plan(&request(0, false), true),
            Plan::Command(vec![
                "shutdown".into(),
                "-h".into(),
                "now".into(),
                "maintenance".into()
            ])
        );
    }

    #[test]
    fn without_systemd_the_syscall_is_planned() {
        assert_eq!(
            plan(&request(10, true), false),
            Plan::Syscall { reboot: true }
        );
    }

    #[test]
    fn missing_privilege_returns_false_and_does_nothing() {
        let r = Recorder {
            systemd: true,
            allowed: false,
            ran: RefCell::default(),
        };
        assert!(!shutdown_system(&request(0, true), &r).unwrap());
        assert!(r.ran.borrow().is_empty());
    }
}
