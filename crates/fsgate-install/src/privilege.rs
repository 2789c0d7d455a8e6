//! The reference's "administrative rights": on Linux, effective uid 0 or `CAP_SYS_ADMIN` in
//! the effective capability set (read from `/proc/self/status`).

use fsgate_core::{code, Error, Result};

const CAP_SYS_ADMIN: u32 = 21;

/// `ERROR_PRIVILEGE_NOT_HELD` (1314) naming `method` unless the caller may install.
pub fn require_admin(method: &str) -> Result<()> {
    if rustix::process::geteuid().is_root() || has_effective_cap(CAP_SYS_ADMIN) {
        return Ok(());
    }
    Err(Error::new(
        code::ERROR_PRIVILEGE_NOT_HELD,
        libc::EPERM,
        format!("{method} needs root (effective uid 0 or CAP_SYS_ADMIN)"),
    ))
}

fn has_effective_cap(cap: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1u64 << cap) != 0)
}
