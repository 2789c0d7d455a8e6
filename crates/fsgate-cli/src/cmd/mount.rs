//! `fsgate mount memory MOUNTPOINT` serves the sample memory drive (`fsgate-samples`) until
//! SIGINT/SIGTERM (or until someone unmounts it); `fsgate mount mirror SOURCE MOUNTPOINT`
//! does the same for the mirror drive over a real directory; `fsgate unmount MOUNTPOINT`
//! unmounts any FUSE mount. With `--log-events` the drive is wrapped in
//! [`Logged`], which prints each event on stdout; without it the bare drive is mounted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use fsgate_core::mountinfo::{self, MountEntry};
use fsgate_core::{Error, Result};
use fsgate_samples::memory::MemoryDrive;
use fsgate_samples::mirror::MirrorDrive;
use fsgate_vfs::{Events, LogFormat, Logged, Options, VirtualDrive};

use crate::output::{ready, StopSignal};

/// Which sample drive to mount.
#[derive(Subcommand)]
pub enum MountCommand {
    /// An in-memory drive: files, directories, links, xattrs; gone when unmounted. Writes
    /// are cached by the kernel and reach the drive in batches;
    /// `--config FileCachePolicyWriteThrough=true` sends each one at once.
    Memory {
        /// An existing empty directory.
        mountpoint: PathBuf,
        /// Print each event on stdout.
        #[arg(long)]
        log_events: bool,
        /// Print events as JSON lines.
        #[arg(long)]
        json: bool,
        /// A drive setting, `NAME=VALUE` in the reference's spelling (for example
        /// `FuseReaderThreadCount=1` or `FileCache=None`); repeatable.
        #[arg(long = "config", value_name = "NAME=VALUE")]
        config: Vec<String>,
    },
    /// A real directory shown through the events: every change lands in SOURCE.
    Mirror {
        /// The directory to mirror.
        source: PathBuf,
        /// An existing empty directory.
        mountpoint: PathBuf,
        /// Route every opened file to its source file (the kernel's FUSE passthrough where
        /// it is available, otherwise served without read/write events).
        #[arg(long)]
        passthrough: bool,
        /// Print each event on stdout.
        #[arg(long)]
        log_events: bool,
        /// Print events as JSON lines.
        #[arg(long)]
        json: bool,
        /// A drive setting, `NAME=VALUE` in the reference's spelling (for example
        /// `FuseReaderThreadCount=1` or `FileCache=None`); repeatable.
        #[arg(long = "config", value_name = "NAME=VALUE")]
        config: Vec<String>,
    },
}

/// `fsgate unmount MOUNTPOINT`.
#[derive(Args)]
pub struct UnmountArgs {
    /// The mount point.
    pub mountpoint: PathBuf,
}

/// Runs a mount command.
pub fn run(command: MountCommand) -> Result<()> {
    raise_descriptor_limit();
    match command {
        MountCommand::Memory {
            mountpoint,
            log_events,
            json,
            config,
        } => {
            // The memory drive's files change only through the mount, so the kernel's
            // writeback cache hides nothing from anyone: a SQLite commit costs 17 requests
            // instead of 29, a WAL commit 1 instead of 3. Two things then differ from ext4:
            // the kernel keeps the files' modification and change times itself (recent
            // kernels set mtime at every fallocate, KEEP_SIZE included), and `st_blocks` of a
            // file being written counts the written bytes once its writer closes it.
            let options = Options {
                file_cache_policy_write_through: false,
                ..drive_options(log_events, !log_events)
            };
            let mount = Mount {
                options,
                config: &config,
                mountpoint: &mountpoint,
                kind: "memory",
                report_routing: false,
            };
            mount.serve(MemoryDrive::new(), log_format(log_events, json))
        }
        MountCommand::Mirror {
            source,
            mountpoint,
            passthrough,
            log_events,
            json,
            config,
        } => {
            let drive = MirrorDrive::new(&source, passthrough)?;
            let options = drive_options(log_events, !log_events && !passthrough);
            let mount = Mount {
                options,
                config: &config,
                mountpoint: &mountpoint,
                kind: "mirror",
                report_routing: passthrough,
            };
            mount.serve(drive, log_format(log_events, json))
        }
    }
}

/// How `--log-events` and `--json` ask for events to be printed; `None`: not at all.
fn log_format(log_events: bool, json: bool) -> Option<LogFormat> {
    log_events.then_some(if json {
        LogFormat::Json
    } else {
        LogFormat::Text
    })
}

/// The sample drives' options: their own file ids, parallel reads of one file (both read
/// under their own locks or with `pread`), and cleanup events only when they are logged (the
/// drives do nothing else at a cleanup, so without `--log-events` the kernel need not send
/// one at every `close`). With `kernel_opens`, the kernel opens files without asking
/// (`KernelOpensFiles`): neither drive checks access or keeps anything per descriptor, so
/// only a log of every open (`--log-events`) or routing every open (`--passthrough`) needs
/// each open to reach the drive. Served by root, both behave like a local filesystem (tmpfs
/// for the memory drive, the source's for the mirror): device nodes open their devices and
/// set-id programs run with their owner's rights (`AllowDevices`, `AllowSetId`); only root
/// can create device nodes or give away set-id files on them in the first place.
fn drive_options(log_events: bool, kernel_opens: bool) -> Options {
    let root = rustix::process::geteuid().is_root();
    Options {
        use_file_ids: true,
        serialize_access: false,
        fire_cleanup_events: log_events,
        kernel_opens_files: kernel_opens,
        allow_devices: root,
        allow_set_id: root,
        ..Options::default()
    }
}

/// How often a serving command checks whether its drive was unmounted from outside.
const UNMOUNT_POLL: Duration = Duration::from_millis(200);

/// One sample drive to serve: how to mount it, and what its `ready:` line says.
struct Mount<'a> {
    options: Options,
    /// The `--config NAME=VALUE` settings, applied after `options`.
    config: &'a [String],
    mountpoint: &'a Path,
    /// The drive's name in the `ready:` line (`memory`, `mirror`).
    kind: &'a str,
    /// Whether the `ready:` line says how routed files are served.
    report_routing: bool,
}

impl Mount<'_> {
    /// Serves `drive`, wrapped in [`Logged`] writing each event to stdout when `log` asks
    /// for it; the bare drive otherwise, which pays nothing for logging.
    fn serve(self, drive: impl Events, log: Option<LogFormat>) -> Result<()> {
        match log {
            Some(format) => self.serve_events(Logged::new(drive, format, std::io::stdout())),
            None => self.serve_events(drive),
        }
    }

    /// Mounts `events` with the options and the `--config` settings, says `ready:`, and
    /// serves until SIGINT/SIGTERM or until the mount goes away from outside (`fsgate
    /// unmount`, `umount`); then unmounts. The `ready:` line says `over io_uring` when
    /// requests come that way; with `report_routing`, it also says how routed files are
    /// served (`passthrough: kernel` or `passthrough: fsgate`).
    fn serve_events<E: Events>(self, events: E) -> Result<()> {
        let Mount {
            options,
            config,
            mountpoint,
            kind,
            report_routing,
        } = self;
        let stop = StopSignal::register()?;
        let drive = Arc::new(VirtualDrive::new(events, options));
        for setting in config {
            drive
                .config(setting)
                .map_err(|e| e.context(format!("--config {setting}")))?;
        }
        drive.mount(mountpoint, 0)?;
        let mode = match (report_routing, drive.route_mode()?) {
            (false, _) => "",
            (true, fsgate_vfs::RouteMode::Passthrough) => " (passthrough: kernel)",
            (true, fsgate_vfs::RouteMode::Library) => " (passthrough: fsgate)",
        };
        let transport = match drive.transport()? {
            fsgate_vfs::Transport::IoUring { .. } => " over io_uring",
            fsgate_vfs::Transport::DevFuse { reason } => {
                if drive.config("IoUringThreadsPerQueue")? != "0" {
                    tracing::warn!("IoUringThreadsPerQueue: serving over /dev/fuse: {reason}");
                }
                ""
            }
        };
        ready(format_args!(
            "mounted {kind} drive at {}{transport}{mode}",
            mountpoint.display()
        ));
        let handle = stop.handle();
        let watched = Arc::clone(&drive);
        std::thread::spawn(move || {
            while watched.active() {
                std::thread::sleep(UNMOUNT_POLL);
            }
            handle.close();
        });
        stop.wait();
        drive.unmount()
    }
}

/// Runs `fsgate unmount`: refuses anything that is not a FUSE mount, then asks
/// `fusermount3 -u`, which unmounts FUSE mounts for root and for the user who mounted them.
pub fn unmount(args: UnmountArgs) -> Result<()> {
    let path = std::fs::canonicalize(&args.mountpoint)
        .map_err(|e| Error::io(format!("unmount: {}", args.mountpoint.display()), e))?;
    if fuse_mount_type(&mountinfo::current()?, &path).is_none() {
        return Err(Error::invalid_argument(
            "MOUNTPOINT",
            format!("{} is not a FUSE mount", path.display()),
        ));
    }
    let out = Command::new("fusermount3")
        .arg("-u")
        .arg(&path)
        .output()
        .map_err(|e| Error::io("running fusermount3 (package fuse3)", e))?;
    if !out.status.success() {
        return Err(Error::from_errno(
            libc::EBUSY,
            format!(
                "fusermount3 -u {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

/// The filesystem type of the topmost mount at `path` when it is a FUSE mount (`fuse`,
/// `fuse.NAME`, `fuseblk`).
fn fuse_mount_type(mounts: &[MountEntry], path: &Path) -> Option<String> {
    mounts
        .iter()
        .rev()
        .find(|m| m.mount_point == path)
        .map(|m| m.fs_type.clone())
        .filter(|t| t == "fuse" || t == "fuseblk" || t.starts_with("fuse."))
}

/// Raises this process's soft limit on open descriptors to its hard limit. A drive keeps a
/// handle for each file the kernel has open or cached (the mirror holds one source
/// descriptor per handle), and the usual soft limit of 1024 is far below what reading a
/// tree asks; the library keeps its handles within half the limit in force at mount.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::debug!(
                    "raising the descriptor limit: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
90 22 0:50 / /tmp/a\\040b rw,nosuid,nodev shared:60 - fuse.fsgate-memory fsgate-memory rw,user_id=0
91 22 0:51 / /mnt/t rw shared:61 - tmpfs tmpfs rw
92 91 0:52 / /mnt/t rw shared:62 - fuse fsgate rw
";

    #[test]
    fn finds_fuse_mounts_by_unescaped_path() {
        assert_eq!(
            fuse_mount_type(&mountinfo::parse(MOUNTINFO), Path::new("/tmp/a b")).as_deref(),
            Some("fuse.fsgate-memory")
        );
    }

    #[test]
    fn the_topmost_mount_decides() {
        assert_eq!(
            fuse_mount_type(&mountinfo::parse(MOUNTINFO), Path::new("/mnt/t")).as_deref(),
            Some("fuse")
        );
    }

    #[test]
    fn other_filesystems_and_plain_directories_are_not_fuse() {
        assert_eq!(
            fuse_mount_type(&mountinfo::parse(MOUNTINFO), Path::new("/")),
            None
        );
        assert_eq!(
            fuse_mount_type(&mountinfo::parse(MOUNTINFO), Path::new("/tmp")),
            None
        );
    }
}
