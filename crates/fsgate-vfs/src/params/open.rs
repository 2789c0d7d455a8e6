//! Opening and closing: create, open, cleanup, close, file info and directory listings.

use super::*;

/// `on_create_file`: a new file (`open(O_CREAT)` on a missing name, `creat`, `mknod`),
/// directory (`mkdir`), FIFO (`mkfifo`), socket name (`bind` of an `AF_UNIX` socket) or device
/// node (`mknod`). [`kind`](Self::kind) says which.
#[derive(Debug)]
pub struct CreateFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The path to create.
    pub file_name: &'a Path,
    /// [`access`] bits from the open flags; `FILE_WRITE_DATA` for `mkdir` and `mknod`.
    pub desired_access: u32,
    /// [`attributes`]: `FILE_ATTRIBUTE_DIRECTORY` for `mkdir`, otherwise
    /// `FILE_ATTRIBUTE_NORMAL`.
    pub attributes: u32,
    /// What to create: [`FileKind::File`] for `open(O_CREAT)`, `creat` and `mknod S_IFREG`,
    /// [`FileKind::Directory`] for `mkdir`, the special kinds for `mkfifo`, `bind` and
    /// `mknod`. A drive that cannot store a kind fails the event (`EPERM` is what
    /// `mknod(2)` reports for an unsupported kind).
    pub kind: FileKind,
    /// For [`FileKind::CharDevice`] and [`FileKind::BlockDevice`]: the device number
    /// (`makedev(major, minor)`) to report as `st_rdev`; 0 otherwise.
    pub rdev: u32,
    /// Permission bits the caller asked for, with its umask already applied.
    pub mode: u32,
    /// The raw Linux open flags (`O_EXCL`, `O_APPEND`, …); 0 for `mkdir` and `mknod`.
    pub flags: i32,
    /// Output: the new object's attributes, as `stat` will show them. Pre-filled with the
    /// engine's defaults (`kind`, `rdev`, `mode`, the caller's uid and gid,
    /// every time now); set [`info_filled`](Self::info_filled) once filled.
    pub info: FileInfo,
    /// Output: whether the handler filled [`info`](Self::info). Pre-filled with false. When
    /// true the library answers the kernel with `info` and fires no `on_get_file_info`;
    /// when false (drives written before this field existed) it asks `on_get_file_info`
    /// after the event, one more event per request.
    pub info_filled: bool,
    /// Who is creating the file; the handle the caller gets (for `mkdir` and `mknod`, the
    /// handle is closed at once after this event).
    pub handle_info: HandleInfo,
    /// Output: the new file's context (this is the file's first open). Empty on entry;
    /// what the handler stores here every later event of the file sees. Dropped at once if
    /// the event fails.
    pub file_context: &'a mut Option<F>,
    /// Output: the new handle's context. Empty on entry; dropped at once if the event fails.
    pub handle_context: &'a mut Option<H>,
    pub(crate) route: Option<crate::route::Route>,
    pub(crate) direct_io: bool,
}

impl<F, H> CreateFileParams<'_, F, H> {
    /// `use_direct_io`: the handle being created bypasses the kernel's caches; see
    /// [`OpenFileParams::use_direct_io`]. Has no effect for `mkdir` and `mknod`.
    pub fn use_direct_io(&mut self) {
        self.direct_io = true;
    }

    /// `route_to_file`: the handle being created reads and writes `file` (the real file that
    /// corresponds to this one, opened with the access the caller asked for) instead of
    /// firing `on_read_file`/`on_write_file`; see [`crate::route`]. `flags`:
    /// [`ROUTE_CLOSE_EVENT`](crate::route::ROUTE_CLOSE_EVENT) or 0. Has no effect for
    /// `mkdir` and `mknod`. Calling it again replaces the earlier file.
    pub fn route_to_file(&mut self, file: std::fs::File, flags: u32) {
        self.route = Some(crate::route::Route { file, flags });
    }

    /// The same request with other context slots and no route, for a drive that serves
    /// its requests through another drive's events (the file filter's overlay stacks its
    /// events on the mirror drive's). Outputs written to the copy (`info`, a route) come
    /// back with [`adopt`](Self::adopt).
    pub fn with_contexts<'b, G, K>(
        &self,
        file_context: &'b mut Option<G>,
        handle_context: &'b mut Option<K>,
    ) -> CreateFileParams<'b, G, K>
    where
        Self: 'b,
    {
        CreateFileParams {
            originator: self.originator,
            file_name: self.file_name,
            desired_access: self.desired_access,
            attributes: self.attributes,
            kind: self.kind,
            rdev: self.rdev,
            mode: self.mode,
            flags: self.flags,
            info: self.info.clone(),
            info_filled: self.info_filled,
            handle_info: self.handle_info,
            file_context,
            handle_context,
            route: None,
            direct_io: false,
        }
    }

    /// Takes the outputs of a copy made by [`with_contexts`](Self::with_contexts): its
    /// `info`, `info_filled`, route (when it set one) and direct I/O (when it asked).
    pub fn adopt<G, K>(&mut self, copy: CreateFileParams<'_, G, K>) {
        self.info = copy.info;
        self.info_filled = copy.info_filled;
        if copy.route.is_some() {
            self.route = copy.route;
        }
        self.direct_io |= copy.direct_io;
    }
}

/// `on_open_file`: an existing file or directory is opened (`open` without creating,
/// `opendir`). With `fire_all_open_close_events` off, fires only for the first open of a file.
#[derive(Debug)]
pub struct OpenFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The path being opened.
    pub file_name: &'a Path,
    /// [`access`] bits from the open flags.
    pub desired_access: u32,
    /// [`attributes`]: `FILE_ATTRIBUTE_DIRECTORY` for `opendir`, otherwise
    /// `FILE_ATTRIBUTE_NORMAL`.
    pub attributes: u32,
    /// What is opened: [`FileKind::Directory`] for `opendir`, otherwise the kind the
    /// library's inode table knows for the name (from `on_get_file_info`), usually
    /// [`FileKind::File`]. There is no share mode: Linux opens share everything, so a drive
    /// that wants exclusive opens refuses the second open itself (for example with
    /// `ERROR_SHARING_VIOLATION`, which callers see as `ETXTBSY`).
    pub kind: FileKind,
    /// The raw Linux open flags. `O_TRUNC` has already been applied through
    /// `on_set_file_size(0)` before this event.
    pub flags: i32,
    /// Who is opening the file.
    pub handle_info: HandleInfo,
    /// The file's context: empty on the file's first open (store one here), what the
    /// first open stored otherwise. What the handler stores on a first open is dropped at
    /// once if the event fails.
    pub file_context: &'a mut Option<F>,
    /// Output: the new handle's context. Empty on entry; dropped at once if the event fails.
    pub handle_context: &'a mut Option<H>,
    pub(crate) route: Option<crate::route::Route>,
    pub(crate) direct_io: bool,
}

impl<F, H> OpenFileParams<'_, F, H> {
    /// `use_direct_io`: this handle bypasses the kernel's caches, whatever the drive's
    /// [`FileCache`](crate::FileCache), so that its reads and writes can differ from those of
    /// the file's other handles (the file filter's isolation). Consequences:
    ///
    /// - Every `read` and `write` of the handle reaches the drive (`FOPEN_DIRECT_IO`, no
    ///   `FOPEN_KEEP_CACHE`); a route set on this open is served by the library
    ///   (`pread`/`pwrite`), never by kernel passthrough.
    /// - While the handle is open, the file's attributes and name are answered with a zero
    ///   timeout (every `stat`, `fstat` and path walk asks `on_get_file_info` again, so the
    ///   drive can answer each caller differently), and what the kernel had cached of the
    ///   file's attributes is dropped when the open is answered. The file's other handles
    ///   keep their caching: the kernel lets direct and cached handles of one inode coexist.
    ///   A cached handle's reads refresh the file's attributes first (the drive negotiates
    ///   `FUSE_AUTO_INVAL_DATA`), and a size or modification time that differs from the one
    ///   its pages were read with drops those pages, so a cached handle never reads past the
    ///   size the drive gives *its* caller nor pages older than the file's last change.
    ///   Direct writes never fill the page cache; a write that ends past the size the kernel
    ///   knows raises that size until the next answer of `on_get_file_info`.
    /// - Memory mappings are the exception the kernel imposes: a shared mapping (`MAP_SHARED`)
    ///   of the handle fails with `ENODEV` unless the drive negotiated
    ///   `FUSE_DIRECT_IO_ALLOW_MMAP` (`FileCache` other than `System`); a private mapping
    ///   (`execve`, the dynamic loader) reads through the inode's one page cache, which
    ///   cached handles share.
    /// - The kernel refuses (`EIO`) a handle that is not passthrough for an inode that has
    ///   passthrough handles open: a drive that mixes both on one file must not route the
    ///   file's other opens to the kernel.
    /// - Ignored for directories, and with `KernelOpensFiles` (the kernel opens files
    ///   itself, with the page cache).
    pub fn use_direct_io(&mut self) {
        self.direct_io = true;
    }

    /// `route_to_file`: this handle reads and writes `file` (the real file that corresponds
    /// to this one, opened with the access the caller asked for) instead of firing
    /// `on_read_file`/`on_write_file`; see [`crate::route`]. `flags`:
    /// [`ROUTE_CLOSE_EVENT`](crate::route::ROUTE_CLOSE_EVENT) or 0. Ignored for directories.
    /// With `fire_all_open_close_events` off, only the first open fires this event, so only
    /// it can route.
    pub fn route_to_file(&mut self, file: std::fs::File, flags: u32) {
        self.route = Some(crate::route::Route { file, flags });
    }

    /// The same request with other context slots and no route, for a drive that serves
    /// its requests through another drive's events (see
    /// [`CreateFileParams::with_contexts`]). A route set on the copy comes back with
    /// [`adopt`](Self::adopt).
    pub fn with_contexts<'b, G, K>(
        &self,
        file_context: &'b mut Option<G>,
        handle_context: &'b mut Option<K>,
    ) -> OpenFileParams<'b, G, K>
    where
        Self: 'b,
    {
        OpenFileParams {
            originator: self.originator,
            file_name: self.file_name,
            desired_access: self.desired_access,
            attributes: self.attributes,
            kind: self.kind,
            flags: self.flags,
            handle_info: self.handle_info,
            file_context,
            handle_context,
            route: None,
            direct_io: false,
        }
    }

    /// Takes the route a copy made by [`with_contexts`](Self::with_contexts) set, if any,
    /// and its [`use_direct_io`](Self::use_direct_io).
    pub fn adopt<G, K>(&mut self, copy: OpenFileParams<'_, G, K>) {
        if copy.route.is_some() {
            self.route = copy.route;
        }
        self.direct_io |= copy.direct_io;
    }
}

/// `on_cleanup_file`: a descriptor of the handle was closed (`close(2)`, FUSE `FLUSH`). Fires
/// once per `close` of each duplicate; the handle itself lives on until `on_close_file`.
/// Never fires when [`Options::fire_cleanup_events`](crate::Options::fire_cleanup_events) is
/// off.
#[derive(Debug)]
pub struct CleanupFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path (its last known name, even if it was deleted while open).
    pub file_name: &'a Path,
    /// The handle being cleaned up.
    pub handle_info: HandleInfo,
    /// The file's context.
    pub file_context: Option<&'a mut F>,
    /// The handle's context.
    pub handle_context: Option<&'a mut H>,
}

/// `on_close_file`: a handle was released (FUSE `RELEASE`/`RELEASEDIR`: the last descriptor
/// referring to it is gone). With `fire_all_open_close_events` off, fires only for the last
/// release of the file. The handle context is dropped right after this event; the file
/// context too when this is the file's last handle.
#[derive(Debug)]
pub struct CloseFileParams<'a, F, H> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The file's path (its last known name, even if it was deleted while open).
    pub file_name: &'a Path,
    /// The handle being closed.
    pub handle_info: HandleInfo,
    /// Whether this is the file's last open handle (its context is dropped after the event).
    pub last_handle: bool,
    /// The file's context.
    pub file_context: Option<&'a mut F>,
    /// The handle's context.
    pub handle_context: Option<&'a mut H>,
}

/// `on_get_file_info`: a lookup or `stat`. Set `file_exists` and fill `info`; leaving
/// `file_exists` false makes the name not exist (`ENOENT`), except for `/`, which always
/// exists as a directory.
#[derive(Debug)]
pub struct GetFileInfoParams<'a, F> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The path asked about.
    pub file_name: &'a Path,
    /// Output: whether the file exists. Pre-filled with false.
    pub file_exists: bool,
    /// Output: its metadata, pre-filled with defaults (see [`FileInfo`]).
    pub info: FileInfo,
    /// The file's context, when the file is open.
    pub file_context: Option<&'a mut F>,
}

/// `on_enumerate_directory`: fires repeatedly for one listing, once per entry, until a
/// handler leaves `file_found` false. `.` and `..` are added by the library.
#[derive(Debug)]
pub struct EnumerateDirectoryParams<'a, F, H, N> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The directory being listed.
    pub directory_name: &'a Path,
    /// The entries wanted: always `*` on Linux (the kernel filters nothing).
    pub mask: &'a str,
    /// Whether names compare case-sensitively: always true on Linux.
    pub case_sensitive: bool,
    /// True on the first call of a listing (start from the first entry).
    pub restart: bool,
    /// Output: whether this call found an entry. Pre-filled with false.
    pub file_found: bool,
    /// Output: the entry's name (a name, not a path). Must be non-empty and contain no `/`.
    pub file_name: OsString,
    /// Output: the entry's metadata; only `kind` and `file_id` reach a plain `readdir`.
    pub info: FileInfo,
    /// The directory's context (the directory is open while it is listed).
    pub file_context: Option<&'a mut F>,
    /// The context of the directory handle being read.
    pub handle_context: Option<&'a mut H>,
    /// The listing's context: empty at the listing's first `on_enumerate_directory` (store
    /// a cursor here); kept between its calls and dropped after
    /// `on_close_directory_enumeration`.
    pub enumeration_context: &'a mut Option<N>,
}

/// `on_close_directory_enumeration`: a listing ended (`closedir`); its context is dropped
/// right after.
#[derive(Debug)]
pub struct CloseDirectoryEnumerationParams<'a, F, N> {
    /// Who made the request that fired this event: its thread, process (resolved when
    /// first asked), and filesystem uid and gid — what the `get_originator_*` functions
    /// return, without a thread-local. pid and tid 0: the kernel's own request (writeback,
    /// a handle closed at unmount or evicted).
    pub originator: Originator,
    /// The directory that was listed.
    pub directory_name: &'a Path,
    /// The directory's context.
    pub file_context: Option<&'a mut F>,
    /// The listing's context.
    pub enumeration_context: Option<&'a mut N>,
}
