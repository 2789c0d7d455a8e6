//! Making sure tracefs is mounted, which attaching to a tracepoint needs (libbpf reads each
//! tracepoint's id from `/sys/kernel/tracing/events/<category>/<name>/id`).

use std::path::Path;

use fsgate_core::{code, Error, Result};

/// Where libbpf looks for tracefs.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Mounts tracefs at [`TRACEFS`] unless it is there already (or reachable through
/// `/sys/kernel/debug/tracing`). The mount stays after the tracer stops: it is the system's
/// standard place and other tools expect it.
///
/// Errors: `ERROR_NOT_SUPPORTED` (50) naming the mount point and the kernel's reason when
/// tracefs is missing and cannot be mounted (no `CONFIG_TRACING`, or no `CAP_SYS_ADMIN`).
pub fn ensure_mounted() -> Result<()> {
    if Path::new(TRACEFS).join("events").is_dir()
        || Path::new("/sys/kernel/debug/tracing/events").is_dir()
    {
        return Ok(());
    }
    rustix::mount::mount(
        "tracefs",
        TRACEFS,
        "tracefs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .map_err(|e| {
        Error::new(
            code::ERROR_NOT_SUPPORTED,
            e.raw_os_error(),
            format!(
                "tracefs is not mounted at {TRACEFS} and mounting it failed ({}): \
                     BPF tracepoint programs cannot be attached without it",
                std::io::Error::from(e)
            ),
        )
    })
}
