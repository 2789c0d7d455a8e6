//! The overlay backend: a FUSE filesystem stacked over each filtered directory, for the
//! control fanotify cannot give (delete and rename protection, a create refused before the
//! file exists, Before and After events of every operation with the handler's own errno,
//! data changed in flight, listings edited, contexts).
//!
//! # How it works
//!
//! [`FileFilter::start_filter`](crate::filter::FileFilter::start_filter) opens each overlay
//! directory `O_PATH` and then mounts an `fsgate-vfs` drive over the very same path
//! (`MountOverContents`), so processes keep their paths and reach the drive. The drive
//! serves every request with `*at` calls on the descriptor it opened first: it is the
//! mirror drive of `fsgate-samples` (the same code the conformance suite checks) wrapped
//! in the filter's rules and events. Each request is matched against the rules by its full
//! path (the directory's path and the name), the access flags are applied, and the Before
//! event, the lower operation, the After event and the Notify event run in that order.
//!
//! # Fast routes
//!
//! - A file no data event covers (no `FS_CE_*_READ`/`_WRITE` rule, no `FS_NE_READ`/`_WRITE`
//!   notification) is routed to its lower
//!   file at open (FUSE passthrough, where the kernel allows it: Linux 6.9 and a server with
//!   `CAP_SYS_ADMIN`; otherwise the library reads and writes it with `pread`/`pwrite`):
//!   reads and writes never reach the filter.
//! - The kernel caches names and attributes (10 s) and file pages as for any drive: a
//!   `stat` or a path walk of an unchanged name costs nothing. Rule changes while running
//!   therefore reach names the kernel already cached when their entry expires.
//! - With no rule at all, no rule is evaluated; a rule is refused by the literal end of its
//!   mask (`.keep` of `*.keep`) before any wildcard is matched. A request that fires no event
//!   never looks up its caller's process id (`/proc`), and a rename looks for an object at
//!   its target only when a rule protects that name. With no rule, or rules that do not
//!   match, each request costs what the mirror drive's does: `bench/filter-overlay/run.sh`
//!   measures create, rename, delete, `mkdir`, `rmdir`, `stat` and listings at 0.88–0.98× the
//!   mirror (0.95–0.99× the mirror with passthrough, which makes the same round trips), and
//!   a `*.keep` delete-protect rule at 0.95–1.00× the overlay without it.
//!
//! # Every open reaches the overlay
//!
//! The mirror drive lets the kernel open files by itself (`KernelOpensFiles`, FUSE "no
//! open"), so its `open`+`close` costs no round trip; the overlay answers every `OPEN` and
//! `RELEASE` (two round trips: about 0.1× the mirror's `open`+`close` rate, the same as the
//! mirror with `--passthrough`). This is chosen, not missed:
//! - FUSE passthrough needs the `OPEN` answer (the kernel takes a backing file only there),
//!   and without it files are read and written through the library: the mirror's own
//!   figures without passthrough are 0.65× the bare directory on sequential reads and 0.78×
//!   on sequential writes, below the overlay's goal of 0.9×, which passthrough meets.
//! - "No open" is per connection: once the kernel is told so, it never sends `OPEN` again.
//!   Rules, reparse rules and virtual files can be added while the filter runs
//!   (`add_filter_rule` and the others after `start_filter`); an access rule on reads, writes
//!   or execution, a Before open or create event or isolation added then could never act.
//!   Choosing no-open at mount time from the rules present would make a later rule silently
//!   ineffective, which a filter must not do.
//!
//! # What processes see
//!
//! - Denials by access rules are `EACCES` (`ERROR_ACCESS_DENIED`); a Before or After
//!   handler's `Err` reaches the caller as its own errno.
//! - A create that an access rule or a Before handler refuses never reaches the lower
//!   directory: nothing is left behind.
//! - Descriptors opened into the directory before the overlay was mounted (and a process's
//!   working directory inside it) are outside the overlay: they keep reaching the lower files
//!   unfiltered. The filter's own serving threads reach the lower files through the
//!   descriptor; its other calls on the filtered path go through the overlay like anyone's
//!   (a handler must not open the file its event is about through that path: the request
//!   would wait for itself).
//! - When the filter stops, or its process dies (even by `SIGKILL`), the mount goes
//!   (`fsgate-vfs`'s watcher process unmounts it) and the path is the
//!   plain directory again. Writes are write-through (each `write(2)` has landed in the
//!   lower file when it returns), so none is lost.
//!
//! # Isolation
//!
//! `on_before_create_file` or `on_before_open_file` isolates one open by setting
//! [`ControlEvent::isolate`](crate::events::ControlEvent::isolate), and says with
//! [`backend_file_name`](crate::events::ControlEvent::backend_file_name) where that open's
//! view of the file comes from: the file itself (the default), another file (a full path;
//! under the filtered directory it is reached through the overlay's descriptor, unfiltered),
//! or nothing (empty: the events provide everything). The handler decides per open, from
//! the caller's `process_id`/`process_name` or anything else, so processes see different
//! content at one path: a backup tool the stored bytes, an editor the transformed ones, or
//! process A file X's content served from Y while process B sees X.
//!
//! How it maps to Linux:
//! - The kernel keeps one page cache and one attribute cache per inode for every process.
//!   An isolated open is therefore answered with direct I/O (`fsgate-vfs`'s
//!   [`use_direct_io`](fsgate_vfs::OpenFileParams::use_direct_io): `FOPEN_DIRECT_IO`, no
//!   kept cache, never passthrough): each of its reads and writes reaches the overlay, which
//!   serves it from the open's backend. That is the reference's "dedicated cache": none.
//!   The file's other opens keep the page cache; their reads refresh the size first and
//!   drop pages read under another size or modification time, so they never see the
//!   isolated open's bytes.
//! - While an isolated open of a file exists, the file's attributes are never cached by the
//!   kernel (zero timeouts, and what was cached is dropped at the open), so each `stat` asks
//!   the overlay, which answers per caller: a process with an isolated open of the file sees
//!   its newest isolated open's size and times (the file's own identity, owner and mode);
//!   every other process sees the file. Linux's `stat` and `fstat` carry no handle to a FUSE
//!   server, so the overlay tells callers apart by process id: a child that inherits an
//!   isolated descriptor reads and writes through it isolated, but its own `stat` or
//!   `fstat` sees the file.
//!   `truncate`, `ftruncate`, `open(O_TRUNC)` and `fallocate` from the isolating process
//!   reach its backend the same way.
//! - Another file as backend: it is opened for the open alone (read-write when allowed,
//!   with the caller's `O_APPEND`, so appends land at the backend's end), unfiltered and
//!   with the filter's rights, not the caller's (as in the reference, the handler checks
//!   the caller's access to a backend it picks); a backend that cannot be opened fails the
//!   open with its errno. Its bytes are what the open reads, its size and times what its
//!   process's `stat` shows, and the open's writes land there. Data events
//!   (`on_after_read_file`, `on_before_write_file`) still fire as the rules say, on the
//!   backend's data; query and size events do not fire for the isolated process's `stat`
//!   and `truncate`, which the backend answers.
//! - The file itself as backend: as above with the file as its own backend; the point is
//!   the uncached view (data transformed per open by the data events). Its writes change
//!   the file under the other opens' page cache: those drop their pages when they next see
//!   the file's new size or modification time, so a same-size rewrite within one tick of
//!   the kernel's coarse file clock can stay unseen by them until the next change.
//! - No backend: `on_before_query_file_info` (size and mode, starting from the file's own
//!   information), `on_after_read_file` (an empty buffer to fill with up to `length` bytes
//!   from `offset`, as for virtual files), `on_before_write_file` and
//!   `on_before_set_file_info` (size changes) fire for the open's requests without any rule
//!   asking; what the handler leaves is the answer (there is nothing to pass the request to,
//!   so `process_request` changes nothing), and the caller is told its whole buffer was
//!   written. Allocation requests (`fallocate`) fail with `ERROR_NOT_SUPPORTED`.
//! - `isolate` is ignored for directories (and for creates of anything but a file).
//! - A virtual file's opens are isolated opens without a backend: `on_before_open_file`
//!   sees `isolate` already true and an empty `backend_file_name`.
//! - File contexts: each isolated open has a file context of its own (the reference's
//!   per-open file contexts), which its events see and which `on_cleanup_context` ends when
//!   the open closes; the file's other opens share the file's context as usual (the
//!   reference lets them get separate ones too while an isolated open exists; here they do
//!   not).
//! - An isolated create makes the name in the directory (empty, visible to everyone); only
//!   the creating open's data goes to its backend (a backend file that does not exist is
//!   created).
//! - Files a Before create or open rule covers are never routed to the kernel (no
//!   passthrough), since the kernel refuses a direct-I/O open of an inode that has
//!   passthrough opens; their other opens are served by the library with the page cache.
//! - Limits the kernel imposes: a memory mapping of an isolated open reads through the
//!   inode's one page cache (shared mappings fail with `ENODEV`, private ones, as `execve`
//!   makes, see whichever bytes were cached), so isolation holds for `read`/`write`, not for
//!   mapped pages; `copy_file_range` on an isolated open falls back to reads and writes.
//!   Mode, owner and time changes, renames and deletes made through an isolated open reach
//!   the file itself. On the fanotify backend, an open whose handler sets `isolate` is
//!   refused (`EPERM`, with `on_error` saying that isolation needs the overlay): showing the
//!   real file to a process meant to be isolated would be worse.
//!
//! # Deviations from the reference
//!
//! - One backend per running filter: when a rule needs the overlay (delete or rename
//!   protection, a control flag only the overlay fires) or `config("Backend=Overlay")` asks
//!   for it, every rule is served by overlays over the rules' leading directories
//!   ([`overlay_roots`]); masks without a leading directory are refused then.
//! - `on_before_create_file`, `on_before_open_file`, `on_before_read_file` and
//!   `on_before_execute` keep their [`ControlEvent`](crate::events::ControlEvent) parameters
//!   (a handler written for the fanotify backend works unchanged; the create and open
//!   handlers get it mutable, for `isolate`, `backend_file_name` and `process_request`);
//!   every other Before and After event takes a [`FileRequest`](request::FileRequest).
//! - Execution is seen as an open with the kernel's `__FMODE_EXEC` flag.
//! - A virtual file's data comes from `on_after_read_file` (an empty buffer to fill), since
//!   `on_before_read_file` keeps its fanotify parameters; virtual files are read-only.
//! - Redirections (reparse rules, `on_reparse_file_name`) apply to lookups, opens and size
//!   changes of files; a redirected directory is not listed from its target.
//! - A caller blocked in a handler is released by the event timeout (`EIO`) or by
//!   `stop_filter`: requests still waiting for a handler [`STOP_GRACE`] after the overlay
//!   is unmounted fail with `ECONNABORTED` (the FUSE connection is ended), and any later
//!   request on a file still open through the overlay with `ENOTCONN`; the handler runs on and its
//!   result is dropped. Without such a request, files open across the stop keep being
//!   served by the detached overlay until they are closed.
//! - `ProcessRequest` in `on_before_create_file` and `on_before_open_file`
//!   ([`ControlEvent::process_request`](crate::events::ControlEvent::process_request)): a
//!   handler that clears it serves the open, which succeeds without reaching the directory
//!   (a create makes no name on disk: other processes get `ENOENT`, the creating process
//!   sees the name while its open lasts) and is then an isolated open without a backend
//!   file (see "Isolation"); no After event fires for it. The reference leaves the
//!   completion of such an open to the application's driver-level code, which a Linux
//!   process cannot have: the events serving the open are that completion here.
//! - Security is owner and group (`chown`); permission bits are file info (`chmod`).

pub(crate) mod drive;
mod isolation;
mod redirect;
pub mod request;
pub(crate) mod virtual_files;

use std::path::{Path, PathBuf};

use fsgate_core::{Error, Result};
use fsgate_vfs::{Options, VirtualDrive};

use crate::events::FilterEvents;
use crate::rules::{AccessFlags, ControlFlags, RuleFlags, Rules};

use drive::OverlayDrive;
pub(crate) use drive::Shared;

/// Control flags only the overlay can fire.
const OVERLAY_CONTROL: ControlFlags = ControlFlags::all()
    .difference(ControlFlags::FS_CE_BEFORE_CREATE)
    .difference(ControlFlags::FS_CE_BEFORE_OPEN)
    .difference(ControlFlags::FS_CE_BEFORE_READ)
    .difference(ControlFlags::FS_CE_BEFORE_EXECUTE);

/// Whether rules with `flags` need the overlay backend.
pub(crate) fn needs_overlay(flags: RuleFlags) -> bool {
    flags
        .access
        .intersects(AccessFlags::ACCESS_DELETE_PROTECT | AccessFlags::ACCESS_RENAME_PROTECT)
        || flags.control.intersects(OVERLAY_CONTROL)
}

/// The directories to mount overlays on for `rules` and the `extra` directories asked for:
/// each rule's leading directory (a mask without wildcards that names an existing directory
/// is its own), keeping only the outermost of nested ones. A mask without a leading
/// directory is `ERROR_INVALID_PARAMETER` naming it.
pub fn overlay_roots(rules: &Rules, extra: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut add = |dir: PathBuf| {
        if roots.iter().any(|r| dir.starts_with(r)) {
            return;
        }
        roots.retain(|r| !r.starts_with(&dir));
        roots.push(dir);
    };
    for dir in extra {
        let dir = std::fs::canonicalize(dir)
            .map_err(|e| Error::io(format!("resolving {}", dir.display()), e))?;
        add(dir);
    }
    for rule in rules.standard.rules() {
        let pattern = rule.mask.path().pattern();
        let wild = pattern.contains(['*', '?']);
        let dir = if !wild && Path::new(pattern).is_dir() {
            Some(pattern)
        } else {
            rule.mask.path().fixed_directory()
        };
        let Some(dir) = dir else {
            return Err(Error::invalid_argument(
                "mask",
                format!(
                    "'{}' has no leading directory: the overlay backend needs one to mount over",
                    rule.mask.as_str()
                ),
            ));
        };
        add(PathBuf::from(dir));
    }
    Ok(roots)
}

/// One mounted overlay.
pub(crate) struct Overlay<H: FilterEvents> {
    drive: VirtualDrive<OverlayDrive<H>>,
}

impl<H: FilterEvents> Overlay<H> {
    /// Opens `root` and mounts the overlay over it; `timeout_ms` bounds every event (a
    /// request whose handler outlives it fails with `EIO`).
    pub(crate) fn start(
        shared: Shared<H>,
        root: &Path,
        cleanup_events: bool,
        timeout_ms: u32,
    ) -> Result<Self> {
        let root = std::fs::canonicalize(root)
            .map_err(|e| Error::io(format!("resolving {}", root.display()), e))?;
        let events = OverlayDrive::new(shared, &root)?;
        let admin = rustix::process::geteuid().is_root();
        let options = Options {
            use_file_ids: true,
            serialize_access: false,
            fire_cleanup_events: cleanup_events,
            allow_devices: admin,
            allow_set_id: admin,
            mount_over_contents: true,
            ..Options::default()
        };
        let drive = VirtualDrive::new(events, options);
        drive.mount(&root, timeout_ms)?;
        Ok(Self { drive })
    }

    /// How routed files are served (kernel passthrough or the library).
    pub(crate) fn route_mode(&self) -> Result<fsgate_vfs::RouteMode> {
        self.drive.route_mode()
    }

    /// The directory the overlay is mounted on.
    pub(crate) fn root(&self) -> PathBuf {
        self.drive
            .mounting_points()
            .into_iter()
            .next()
            .unwrap_or_default()
    }

    /// Opens `path` in the lower directory when it is under this overlay (`None`
    /// otherwise): the direct file operations.
    pub(crate) fn open_direct(
        &self,
        path: &str,
        flags: i32,
        mode: u32,
    ) -> Option<std::io::Result<std::fs::File>> {
        let events = self.drive.events();
        let rel = events.relative(path)?;
        Some(events.open_lower(rel, flags, mode))
    }

    /// Unmounts: processes inside see the plain directory again, and nobody stays blocked
    /// in a handler longer than [`STOP_GRACE`].
    pub(crate) fn stop(self) -> Result<()> {
        self.drive.unmount_releasing(STOP_GRACE)
    }
}

/// How long `stop_filter` lets requests still in a handler finish before it fails them.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Whether any rule asks for cleanup events (each `close(2)` then costs a round trip).
pub(crate) fn wants_cleanup(flags: RuleFlags) -> bool {
    flags
        .control
        .intersects(ControlFlags::FS_CE_BEFORE_CLEANUP | ControlFlags::FS_CE_AFTER_CLEANUP)
}
