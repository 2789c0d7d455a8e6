//! `fsgate mount memory MOUNTPOINT` serves the sample memory drive (`fsgate-samples`) until
//! SIGINT/SIGTERM (or until someone unmounts it); `fsgate mount mirror SOURCE MOUNTPOINT`
//! does the same for the mirror drive over a real directory; `fsgate unmount MOUNTPOINT`
//! unmounts any FUSE mount. `fsgate mount remote URL MOUNTPOINT` serves the remote drive
//! (`fsgate-remote`) over an object store, with its data in a cache vault. With `--log-events` the drive is wrapped in
//! [`Logged`], which prints each event on stdout; without it the bare drive is mounted.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use fsgate_core::mountinfo::{self, MountEntry};
use fsgate_core::{Error, Result};
use fsgate_remote::{Location, RemoteDrive, RemoteOptions, UploadProgress, Uploads};
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
    /// A drive over object storage (`s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix`, `file:///dir`), its data cached in a vault. Credentials and
    /// endpoints come from the usual environment variables (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, `GOOGLE_…`, `AZURE_…`).
    Remote(RemoteArgs),
}

/// When `fsgate mount remote` uploads a closed file (`--uploads`).
#[derive(Clone, Copy, clap::ValueEnum)]
enum UploadMode {
    /// Queued at close, uploaded by the drive's upload threads.
    Background,
    /// Before `close` returns.
    Close,
}

/// `fsgate mount remote`.
#[derive(Args)]
pub struct RemoteArgs {
    /// Where the objects are: `s3://bucket/prefix`, `gs://…`, `az://…` or `file:///dir`.
    url: String,
    /// An existing empty directory.
    mountpoint: PathBuf,
    /// The cache vault's index file (created if missing), with its data in `VAULT.data`
    /// beside it. Default: `~/.cache/fsgate/remote/<URL>.vault`. Files an earlier mount
    /// with this vault left unuploaded are uploaded before mounting.
    #[arg(long = "cache", value_name = "VAULT")]
    cache: Option<PathBuf>,
    /// The store's endpoint, for `s3://` (`http://127.0.0.1:9000` for a local server) and
    /// `az://` (the account's URL, `http://127.0.0.1:10000/devstoreaccount1` for Azurite).
    #[arg(long)]
    endpoint: Option<String>,
    /// An S3 region (`s3://` only).
    #[arg(long)]
    region: Option<String>,
    /// An `object_store` setting `KEY=VALUE` (`aws_virtual_hosted_style_request=true`,
    /// `google_service_account=…`); repeatable.
    #[arg(long = "store-option", value_name = "KEY=VALUE")]
    store_options: Vec<String>,
    /// Seconds a file closed by another mount may take to show here.
    #[arg(long, default_value_t = 10.0)]
    metadata_timeout: f64,
    /// Make every write durable in the vault before it returns (the vault's journaling
    /// mode): unflushed data survives a crash of this process or the machine.
    #[arg(long)]
    journaling: bool,
    /// When a closed file is uploaded. `background` (the default): `close` returns once the
    /// data is in the vault (which a kill of this process does not lose) and eight threads
    /// upload queued files, so creating many small files costs no round trip each; a failed
    /// upload is reported in the log and retried, and other mounts see the file once its
    /// upload is done. `close`: each `close` with changes waits for the file's upload and
    /// fails with its error. `fsync` waits for the upload either way; unmounting waits for
    /// the uploads still queued.
    #[arg(long, value_enum, default_value_t = UploadMode::Background)]
    uploads: UploadMode,
    /// Seconds a closed file waits before its background upload starts: a file closed again
    /// meanwhile is uploaded once, and a burst of writes does not compete with its uploads;
    /// other mounts see the file this much later. Unmounting starts the waiting uploads.
    #[arg(long, default_value_t = 1.0)]
    upload_delay: f64,
    /// Bytes the vault keeps at most (0: no limit); least recently used clean data goes
    /// first, unuploaded data never.
    #[arg(long, default_value_t = 0)]
    cache_size: u64,
    /// Print each event on stdout.
    #[arg(long)]
    log_events: bool,
    /// Print events as JSON lines.
    #[arg(long)]
    json: bool,
    /// A drive setting, `NAME=VALUE` in the reference's spelling; repeatable.
    #[arg(long = "config", value_name = "NAME=VALUE")]
    config: Vec<String>,
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
                note: "",
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
                note: "",
            };
            mount.serve(drive, log_format(log_events, json))
        }
        MountCommand::Remote(args) => serve_remote(args),
    }
}

/// Uploads with a progress bar: those of more than one part, when stdout is a terminal.
const PROGRESS_FROM: u64 = fsgate_remote::store::PART_SIZE as u64;

/// A duration given in seconds on the command line; `arg` names the flag in the error.
fn seconds(arg: &str, value: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| Error::invalid_argument(arg, format!("{value}: not a number of seconds")))
}

/// Opens the remote drive, uploads the vault's orphans, and serves it.
fn serve_remote(args: RemoteArgs) -> Result<()> {
    let mut options = Vec::new();
    for option in &args.store_options {
        let (key, value) = option.split_once('=').ok_or_else(|| {
            Error::invalid_argument("--store-option", format!("{option}: not KEY=VALUE"))
        })?;
        options.push((key.to_owned(), value.to_owned()));
    }
    let half = seconds("--metadata-timeout", args.metadata_timeout)? / 2;
    let upload_delay = seconds("--upload-delay", args.upload_delay)?;
    let vault_path = match args.cache {
        Some(path) => path,
        None => default_vault(&args.url)?,
    };
    let drive = RemoteDrive::new(RemoteOptions {
        location: Location {
            url: args.url.clone(),
            endpoint: args.endpoint,
            region: args.region,
            options,
        },
        vault_path,
        vault: fsgate_cache::VaultOptions {
            journaling: args.journaling,
            size_limit: args.cache_size,
            ..Default::default()
        },
        metadata_timeout: half,
        progress: upload_progress(),
        uploads: match args.uploads {
            UploadMode::Background => Uploads::Background,
            UploadMode::Close => Uploads::AtClose,
        },
        upload_delay,
    })?;
    let orphans = match drive.upload_orphans() {
        Ok(keys) if keys.is_empty() => String::new(),
        Ok(keys) => format!(
            " (uploaded {} orphan file(s): {})",
            keys.len(),
            keys.join(", ")
        ),
        Err(e) => {
            eprintln!("orphans stay in the vault for the next mount: {e}");
            " (orphans left in the vault)".to_owned()
        }
    };
    let options = Options {
        use_file_ids: false,
        serialize_access: false,
        // Uploads happen at each close of a descriptor, and need each open.
        fire_cleanup_events: true,
        kernel_opens_files: false,
        metadata_cache_timeout: half,
        ..Options::default()
    };
    let mount = Mount {
        options,
        config: &args.config,
        mountpoint: &args.mountpoint,
        kind: "remote",
        report_routing: false,
        note: &orphans,
    };
    mount.serve(drive, log_format(args.log_events, args.json))
}

/// `~/.cache/fsgate/remote/<URL with every byte but letters, digits, `.` and `-` as `_`>.vault`.
fn default_vault(url: &str) -> Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .ok_or_else(|| Error::invalid_argument("--cache", "no HOME to put the vault in"))?;
    let name: String = url
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(base.join("fsgate/remote").join(format!("{name}.vault")))
}

/// A progress bar per long upload on stdout, when it is a terminal.
fn upload_progress() -> Option<fsgate_remote::ProgressFn> {
    use std::collections::HashMap;
    use std::io::IsTerminal;
    use std::sync::Mutex;
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let bars: Mutex<HashMap<String, indicatif::ProgressBar>> = Mutex::new(HashMap::new());
    Some(Arc::new(move |p: UploadProgress<'_>| {
        if p.total < PROGRESS_FROM {
            return;
        }
        let mut bars = bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(p.key.to_owned()).or_insert_with(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(p.total),
                indicatif::ProgressDrawTarget::stdout(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "uploading {msg} {bar:30} {bytes}/{total_bytes} {bytes_per_sec}",
            ) {
                bar.set_style(style);
            }
            bar.set_message(p.key.to_owned());
            bar
        });
        bar.set_position(p.done);
        if p.done >= p.total {
            if let Some(bar) = bars.remove(p.key) {
                bar.finish_and_clear();
            }
        }
    }))
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
    /// What the `ready:` line adds at its end (the remote drive's orphans).
    note: &'a str,
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
            note,
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
            "mounted {kind} drive at {}{transport}{mode}{note}",
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
