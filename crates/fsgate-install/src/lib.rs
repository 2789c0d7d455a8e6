//! Deployment of fsgate's system pieces: the reference's `install`, `uninstall`,
//! `get_driver_status`, `get_driver_version` and the `initialize` check, shared by every
//! class, plus a C ABI installer library (`libfsgate_install.so`, header
//! `include/fsgate_install.h`).
//!
//! # Linux mapping
//!
//! fsgate ships no kernel driver. Its "system driver" is the set of kernel facilities it
//! stands on (FUSE, fanotify permission events, the netlink process connector, later BPF LSM)
//! and a few files:
//!
//! | reference | fsgate |
//! |---|---|
//! | `.cab` file | a tar package with `manifest.json` (version, SHA-256 per file): [`Package`] |
//! | driver files in the Windows system directory | `/usr/lib/fsgate/<major>/fsgate` (helper binary) and `manifest.json` |
//! | driver service and its start type | `fsgate-<major>.service` (systemd oneshot) and its `multi-user.target.wants` link |
//! | — | `/usr/lib/modules-load.d/fsgate.conf` (loads `fuse`), `/usr/lib/tmpfiles.d/fsgate.conf` (creates `/dev/fuse`) |
//! | ProductGUID registry entries | `/var/lib/fsgate/registry.json`, one entry per (GUID, major), under a `flock` |
//! | "marked for removal at reboot" | `R` lines in `/etc/tmpfiles.d/fsgate-pending-removal.conf` |
//! | extended logging (`LoggingEnabled`) | `/etc/fsgate/fsgate.conf`: [`logging_enabled`], [`set_logging_enabled`] |
//! | install flags that become settings | the same file, with the reference's setting names ([`config`]) |
//! | Installer DLL (`*A` functions) | `libfsgate_install.so`: `fsgate_install`, `fsgate_uninstall`, … ([`ffi`]) |
//!
//! # Use
//!
//! ```no_run
//! use std::path::Path;
//! use fsgate_install::{Installer, Package};
//!
//! # fn main() -> fsgate_core::Result<()> {
//! let root = Path::new("/tmp/image");              // or "/" for this machine
//! Package::build(Path::new("/tmp/fsgate.pkg"), Path::new("/usr/bin/fsgate"))?;
//! let installer = Installer::new(root);
//! let guid = "{6FA3C0A1-0D2B-4C6E-9F10-AA00BB11CC22}";
//! let reboot = installer.install(Path::new("/tmp/fsgate.pkg"), guid, "", 0)?;
//! installer.verify_installed(guid)?;                // what initialize(guid) checks
//! # let _ = reboot; Ok(()) }
//! ```
//!
//! Tests and release tooling build packages of any version with
//! [`Package::build_with_version`].
//!
//! # Alternative roots
//!
//! An [`Installer`] whose root is not `/` writes only under that root and never runs
//! `systemctl` or `modprobe`; what it reports about kernel facilities describes the running
//! kernel. Status under such a root is at most `MODULE_STATUS_STOPPED`.
//!
//! # Deviations from the reference
//!
//! - Flag `0x4` is both `INSTALL_OVERWRITE_SAME_VERSION` and `INSTALL_REQUESTS_VIA_DRIVER_STACK`
//!   (see [`flags`]).
//! - Toggling `LoggingEnabled` needs no reboot; classes read it when they initialize.
//! - Replacing a running helper needs no reboot (the old inode lives until it exits); only a
//!   helper that is running when its major is uninstalled is removed at the next boot.
//! - `reboot_needed` from `install` is true only on the live system when FUSE cannot be made
//!   available now (the modules-load.d snippet loads it at boot), or when
//!   `INSTALL_REMOVE_OLD_VERSIONS` had to schedule files that are in use.

pub mod ffi;
pub mod flags;
mod in_use;
mod installer;
pub mod package;
mod privilege;

// The read side of an installation lives in `fsgate-registry`, so that classes which only
// check an installation do not pull in the package builder; its modules keep their paths
// here.
pub use fsgate_registry::{
    config, facilities, guid, layout, logging_enabled, registry, set_logging_enabled, version,
    Installation, MODULE_STATUS_NOT_PRESENT, MODULE_STATUS_RUNNING, MODULE_STATUS_STOPPED,
};
use fsgate_registry::{fsutil, service};

pub use installer::{InstallAction, InstallReport, Installer, UninstallReport};
pub use package::{Manifest, Package};
pub use version::Version;
