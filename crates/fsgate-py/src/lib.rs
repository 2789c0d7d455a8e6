//! The Python edition of fsgate: the native module `fsgate._fsgate` behind the `fsgate`
//! package (built by maturin into an abi3 wheel for CPython ≥ 3.9): the virtual drive, direct
//! access with its stream, the process filter and the file monitor, under fsgate's names and the
//! reference's (`CBFS`, `CBDirect`, `CBFSDirectStream`, `CBProcess`, `CBMonitor`).
//!
//! ```python
//! from fsgate import VirtualDrive      # or the reference's name: from fsgate import CBFS
//!
//! drive = VirtualDrive()
//! drive.on_get_file_info = lambda p: setattr(p, "file_exists", p.file_name == "/")
//! drive.mount("/mnt/empty-dir")
//! ...
//! drive.unmount()
//! ```
//!
//! # Mapping
//!
//! | reference (Python edition) | fsgate (Python) | Rust |
//! |---|---|---|
//! | `class CBFS` | `VirtualDrive` (`CBFS` is the same class) | [`fsgate_vfs::VirtualDrive`] |
//! | `create_storage()`, `initialize()` | no-ops (no driver, no storage object) | — |
//! | `mount_media(timeout)` | records the timeout; the mount happens at the first `add_mounting_point` (FUSE mounts on a directory) | `mount` |
//! | `add_mounting_point(mp, flags, auth_id)` | first call mounts, later ones add bind mounts | `mount`, `add_mounting_point` |
//! | `delete_mounting_point`, `unmount_media`, `delete_storage` | same names | `delete_mounting_point`, `unmount` |
//! | — | `mount(mounting_point, timeout=0)`, `unmount()` | `mount`, `unmount` |
//! | `config("Name=Value")`, `active`, `fire_all_open_close_events`, `serialize_events` | same names | `config`, `active`, setters |
//! | `notify_directory_change`, `reset_timeout`, `get_originator_process_id`/`_name`/`thread_id` | same names | same |
//! | `on_create_file = handler` … | each `on_*` is a property; `VirtualDrive.EVENTS` lists them | [`fsgate_vfs::Events`] |
//! | `CBFSCreateFileEventParams` … | `CreateFileParams` …, with the `CBFS…EventParams` names as aliases | `fsgate_vfs::CreateFileParams` … |
//! | `ResultCode` | `result_code`: a reference code (5 → `EACCES`) or a negated errno (`-errno.ENOENT`) | `Err(Error)` |
//! | exception with `code`, `message` | `FsgateError(code, message)` | [`fsgate_core::Error`] |
//! | `FileContext`, `HandleContext`, `EnumerationContext` | any Python object, released with the Rust context | [`fsgate_vfs::Events::FileContext`] |
//! | `class CBDirect` | `DirectAccess` (`CBDirect` is the same class) | [`fsgate_direct::DirectAccess`] |
//! | `initialize`, `install`, `uninstall`, `get_driver_status`, `get_driver_version`, `config`, `tag`, `on_error` | same names | same |
//! | `open_volume(volume_name, desired_access, force_unmount) -> int` | returns a `VolumeHandle` object (`close()`, `with`) instead of an integer | [`fsgate_direct::VolumeHandle`] |
//! | `get_sector_count`, `get_sector_size`, `read_sectors`, `write_sectors` | same names and parameters; `get_physical_sector_size` added | same |
//! | `class CBProcess` | `ProcessFilter` (`CBProcess` is the same class) | [`fsgate_process::ProcessFilter`] |
//! | `initialize`, `install`, `start_filter`, `stop_filter`, `active`, `add_/remove_filtered_/ignored_process_by_id/_by_name`, `get_process_name`, running-process snapshot, `track_command_line`, `tag`, `config`, `reset_timeout` | same names | same |
//! | `on_process_creation`, `on_process_termination`, `on_thread_creation`, `on_thread_termination`, `on_process_handle_operation`, `on_thread_handle_operation`, `on_error` | same names; params `ProcessCreationParams` … with the `CBProcess…EventParams` aliases | [`fsgate_process::ProcessEvents`] |
//! | `class CBMonitor` | `FileMonitor` (`CBMonitor` is the same class) | [`fsgate_filter::monitor::FileMonitor`] |
//! | `add_filter_rule(mask, flags)`, `delete_filter_rule`, `delete_all_filter_rules`, `add_passthrough_rule`, `start_filter`, `stop_filter`, `active`, `config` | same names (`FS_NE_*` flags) | same |
//! | `on_notify_create_file` … `on_notify_delete_file`, `on_error` | same names; one params class `NotifyParams` (aliases `CBMonitorNotify…EventParams`) | [`fsgate_filter::events::MonitorEvents`] |
//! | the installer DLL's functions | `install`, `uninstall`, `get_driver_status`, `get_driver_version`, `verify_installed` (each with an optional `root`), and `build_package(outfile, helper_binary)` (what `fsgate package` does) | [`fsgate_install::Installer`], [`fsgate_install::Package::build`] |
//!
//! Names are `str` as `os.fsdecode` gives them (surrogate escapes for bytes that are not
//! UTF-8), so any name the kernel allows reaches the handler and round-trips through the
//! names a handler returns (`p.file_name` of a listing). Times are timezone-aware
//! `datetime`s. Metadata uses the reference's `attributes` (0x10 directory, 0x400
//! symbolic link) plus Linux's `mode`, `uid`, `gid`.
//!
//! # Handlers and errors
//!
//! A handler receives one params object; it reads inputs and sets outputs. Setting
//! `result_code` fails the caller's system call with that code's errno. An exception fails
//! it with `EIO` and fires `on_error` (`error_code` 31, `description` naming the event and
//! the exception); without an `on_error` handler the traceback goes to stderr. Contexts a
//! handler stores (`p.file_context = obj` in `on_create_file`/`on_open_file`) come back in
//! every later event of the file or handle, and are released (their `__del__` runs) right
//! after their last event, as the table in [`fsgate_vfs`] says.
//!
//! `on_read_file` gets `p.buffer`, a writable `memoryview` over the library's own request
//! buffer, and `on_write_file` a read-only one: no copy on either side. The view is
//! released when the handler returns (using it later raises `ValueError`); a *slice* of it
//! kept past the handler is the one thing Python cannot revoke, so copy what you keep
//! (`bytes(p.buffer[a:b])`).
//!
//! # What a handler costs
//!
//! The kernel's fast paths never enter Python: cached attributes and names (the metadata
//! cache), cached pages (the system file cache), events left unhandled (an unset `on_*`
//! does the Rust default without touching the interpreter) and, with `KernelOpensFiles`,
//! opens and closes. A handled event costs, on top of its FUSE round trip, taking the GIL
//! on the dispatcher's thread (each thread keeps its Python thread state from its first
//! event, so this is a lock, not a thread-state setup), one params object, the call, and
//! reading the outputs back. The GIL serialises all handlers of a process and competes
//! with every other Python thread in it. A listing calls `on_enumerate_directory` once per
//! entry. Methods that wait for the kernel or for running handlers (`mount`, `unmount`,
//! `add_mounting_point`, notifications, `open_volume`) release the GIL while they wait.
//!
//! Measured on the 2-core development VM (shared with other builds, so runs vary by up to
//! a third) with `bench/python/namespace_rates.py 5000 --rust target/release/fsgate`, a
//! child process creating, stating, opening and closing, and deleting 5,000 files: the
//! Python memory drive (`python/examples/memory_drive.py` with `KernelOpensFiles`) did 9–14 k
//! creates/s and 16–25 k unlinks/s where the Rust sample memory drive (`fsgate mount
//! memory`) did 9–18 k and 25–34 k in the same runs; stat and open-close rates were the
//! same (no handler runs). A create fires three Python events (the negative lookup,
//! `on_create_file` with `info_filled`, the parent's attributes), an unlink two.
//!
//! # Deviations, and what is not offered (yet)
//!
//! - Virtual drive methods not offered yet: `get_handle_creator_token` and
//!   `get_originator_token` (a credentials object to design), and the reference's indexed
//!   mounting-point properties (`mounting_points` is a list). `handle_info` is a
//!   `HandleInfo` object rather than an integer handle.
//! - `route_to_file` takes the real file's path (the library opens it with the caller's
//!   access; a create creates it) instead of the reference's file-info handle.
//! - The create, link and attribute events' `info` output is not offered as properties:
//!   the library asks `on_get_file_info` after them, except after an `on_create_file` that
//!   sets `info_filled` (the library's assumed attributes of the new object are right).
//! - `share_mode`, `nt_create_disposition`, `nt_desired_access` and the `file_info`
//!   handle of the reference's create event: Windows notions (see
//!   `fsgate_vfs`'s deviations); `handle_id`, `mode` and `flags` carry the Linux facts.
//! - Setting `file_context` in an event of an object that is not open (no slot exists)
//!   fails the event with `ERROR_INVALID_PARAMETER`.
//! - Direct access: `create_file`, `create_file_as_stream`, `delete_file`, `open_memory`,
//!   `open_memory_as_stream` and `shutdown_system` are not bound yet;
//!   `open_volume_as_stream` gives a `DirectStream` (alias `CBFSDirectStream`). `read_sectors` fills a `bytearray` in place
//!   and `write_sectors` writes `bytes` and `bytearray` in place; other buffers cost one
//!   copy, because the stable ABI of CPython 3.9 (this wheel's floor) has no buffer
//!   protocol.
//! - File monitor: the volume events (`on_before_filter_attach_to_volume` …) and the rule
//!   qualifiers (`add_filter_rule_ex`) are not bound yet. The file filter class (control
//!   events, access rules) is not bound yet.

use pyo3::prelude::*;

mod attach;
mod buffer;
mod context;
mod direct;
mod drive;
mod error;
mod events;
mod filter;
mod filter_events;
mod hooks;
mod install;
mod memory;
mod monitor;
mod params;
mod process;
mod rules;
mod stream;
mod token;

/// The native module `fsgate._fsgate`; the `fsgate` package re-exports it.
#[pymodule]
fn _fsgate(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<drive::VirtualDrive>()?;
    m.add_class::<direct::DirectAccess>()?;
    m.add_class::<direct::VolumeHandle>()?;
    m.add_class::<memory::MemoryHandle>()?;
    m.add_class::<stream::DirectStream>()?;
    process::register(m)?;
    monitor::register(m)?;
    filter::register(m)?;
    filter_events::register(m)?;
    token::register(m)?;
    m.add(
        "CBFSDirectStream",
        m.py().get_type::<stream::DirectStream>(),
    )?;
    install::register(m)?;
    params::register(m)?;
    Ok(())
}
