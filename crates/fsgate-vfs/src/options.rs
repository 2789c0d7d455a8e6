//! A drive's settings: typed [`Options`] at creation, the same values through
//! `config("NAME=VALUE")` afterwards (read at mount time).

use std::time::Duration;

use fsgate_core::declare::SettingValue;
use fsgate_core::settings::{Kind, Value};
use fsgate_core::Result;

/// Which file data cache a drive uses (the reference's `FileCache` property).
///
/// `config("FileCache=…")` takes the names `System`, `None` and `UserMode` (any case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileCache {
    /// The kernel page cache, kept across opens (`FOPEN_KEEP_CACHE`): reads are answered from
    /// memory until the drive calls `notify_file_change`; writes are cached and written back
    /// later (the kernel's writeback cache) unless `file_cache_policy_write_through` is set,
    /// in which case every `write` reaches `on_write_file` before it returns.
    System,
    /// No cache (`FOPEN_DIRECT_IO`): every `read` and `write` becomes an event. `mmap` still
    /// works: private mappings on every kernel, shared ones since Linux 6.6
    /// (`FUSE_DIRECT_IO_ALLOW_MMAP`, negotiated at mount; older kernels refuse them with
    /// `ENODEV`), their pages filled and written back through the events. A write by a
    /// caller without `CAP_FSETID` clears the file's set-user-ID bit (and set-group-ID bit
    /// when the group may execute) through `on_set_file_attributes`, as ext4 does.
    None,
    /// fsgate's own LRU block cache in the serving process, behind direct I/O: reads are
    /// answered from blocks of [`BLOCK`](crate::cache::BLOCK) bytes that earlier
    /// `on_read_file` events filled, up to `user_mode_file_cache_size` bytes; writes go
    /// through to `on_write_file` and update the cached blocks.
    UserMode,
}

impl FileCache {
    pub(crate) fn name(self) -> &'static str {
        match self {
            FileCache::System => "System",
            FileCache::None => "None",
            FileCache::UserMode => "UserMode",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "system" => Ok(FileCache::System),
            "none" => Ok(FileCache::None),
            "usermode" => Ok(FileCache::UserMode),
            _ => Err(fsgate_core::Error::invalid_argument(
                names::FILE_CACHE,
                format!("{text:?} is not System, None or UserMode"),
            )),
        }
    }
}

/// The range of the cache size settings.
const SIZE: Kind = Kind::Int {
    min: 0,
    max: 100_000_000,
};

impl SettingValue for FileCache {
    fn to_value(&self) -> Value {
        Value::Text(self.name().to_string())
    }

    fn from_value(name: &str, value: &Value) -> Result<Self> {
        match value {
            Value::Text(t) => FileCache::parse(t),
            other => Err(fsgate_core::Error::invalid_argument(
                name,
                format!("holds {other}, not a cache name"),
            )),
        }
    }
}

fsgate_core::declare_settings! {
    /// How a drive serves requests. `Options::default()` suits most drives.
    pub struct Options in names {
        /// `fire_all_open_close_events`: `on_open_file`/`on_close_file` fire for every
        /// open/release (true, the default) or only for a file's first open and last release.
        pub fire_all_open_close_events: bool = true,
            FIRE_ALL = "FireAllOpenCloseEvents", Kind::Bool;
        /// `FireCleanupEvents`: fire `on_cleanup_file` at every `close(2)` of a descriptor
        /// (the kernel's `FLUSH`), true by default. A drive that has nothing to do there turns
        /// it off: the kernel then stops sending `FLUSH` at all (it is answered `ENOSYS` once),
        /// which saves one synchronous round trip per `close` (one of the four of creating
        /// an empty file). Dirty pages of the writeback cache are still written before `close`
        /// returns, and `on_close_file` still fires when the last handle goes.
        pub fire_cleanup_events: bool = true, FIRE_CLEANUP = "FireCleanupEvents", Kind::Bool;
        /// `KernelOpensFiles`: the kernel opens and closes existing files by itself, without a
        /// request to the drive (FUSE "no-open"), so `open(2)` and `close(2)` of a file whose
        /// attributes are cached cost no round trip. Default false.
        ///
        /// On, a file's `on_open_file` fires when the drive first serves the file for a
        /// descriptor the kernel opened (its first read, write, flush or fsync, asking read and
        /// write access, or read access if the drive refuses that), and before a delete or a
        /// replacing rename of its last name (so a descriptor still open keeps its contexts).
        /// That one handle serves every descriptor the kernel opens, and `on_close_file` fires
        /// when the kernel forgets the file (or at unmount). A file created through the drive
        /// (`on_create_file`) keeps its handle the same way (the kernel then sends no `RELEASE`
        /// at all).
        ///
        /// The kernel may keep a file for as long as it caches it, so the library keeps at most
        /// half the process's descriptor limit (at least 64) of these handles: past that, the
        /// oldest that no request is using close, and the file's next request opens it again. A
        /// deleted file's handle stays until the kernel forgets the file.
        ///
        /// Routes (`route_to_file`) are ignored: the kernel takes a backing file only for an
        /// open that reaches the drive. Only with `FileCache=System` (direct I/O and the
        /// user-mode cache need every open to reach the drive; with them this setting has no
        /// effect). An application that checks access in `on_open_file` or keeps
        /// per-descriptor state leaves it off, as the reference says of `FireAllOpenCloseEvents`.
        pub kernel_opens_files: bool = false, KERNEL_OPENS = "KernelOpensFiles", Kind::Bool;
        /// `serialize_events`: run every event on one worker, one at a time. Default false:
        /// events for different files run in parallel, one file's events in order.
        pub serialize_events: bool = false, SERIALIZE = "SerializeEvents", Kind::Bool;
        /// `SerializeAccess`: reads of one file wait for each other like every other event of
        /// the file (true, the default, as in the reference). Off, reads of one file whose
        /// ranges do not overlap run in parallel (the kernel's readahead keeps several in
        /// flight), still after every earlier event of the file they cannot run beside; their
        /// handlers then see the file and handle contexts shared (`&`), which is why contexts
        /// are `Sync`.
        pub serialize_access: bool = true, SERIALIZE_ACCESS = "SerializeAccess", Kind::Bool;
        /// `MinWorkerThreadCount`; 0: max(cores, 4).
        pub min_worker_thread_count: usize = 0,
            MIN_WORKERS = "MinWorkerThreadCount", Kind::Int { min: 0, max: 1024 };
        /// `MaxWorkerThreadCount`; 0: 4 × cores.
        pub max_worker_thread_count: usize = 0,
            MAX_WORKERS = "MaxWorkerThreadCount", Kind::Int { min: 0, max: 1024 };
        /// Threads reading requests from the kernel, each on its own cloned `/dev/fuse`
        /// descriptor (`FUSE_DEV_IOC_CLONE`). Default 4. Without a timeout, all but one of them
        /// also run the events of files that are idle, saving the hand-off to a worker; a
        /// handler that blocks there holds that reader (the last one keeps reading, and events
        /// then go to the workers).
        pub fuse_reader_thread_count: usize = 4,
            READERS = "FuseReaderThreadCount", Kind::Int { min: 1, max: 64 };
        /// `IoUringThreadsPerQueue`: serve requests over io_uring where the kernel offers it,
        /// with this many threads for each CPU's queue, plus two spare ones (a queue adds
        /// threads while requests wait); 2 is a good value. Default 0: requests come through `/dev/fuse` (see
        /// [`crate::transport`] for the trade-off).
        pub io_uring_threads_per_queue: usize = 0,
            URING_THREADS = "IoUringThreadsPerQueue", Kind::Int { min: 0, max: 16 };
        /// `IoUringIdlePriority`: run the io_uring threads in the kernel's `SCHED_IDLE` class,
        /// which keeps each caller on its CPU between requests (see [`crate::transport`]): up to
        /// 2–3× faster namespace operations on a VM, but the threads run only when nothing else
        /// on their CPU wants to. Default false.
        pub io_uring_idle_priority: bool = false, URING_IDLE = "IoUringIdlePriority", Kind::Bool;
        /// How long the kernel may reuse an answer of `on_get_file_info` (entries and
        /// attributes) without asking again, when `metadata_cache_enabled`. When it asks again
        /// and sees a new size or modification time, it also drops the file's cached pages.
        /// Default 10 s (the reference's metadata cache has no time limit at all: a drive whose
        /// files change behind the kernel's back calls `notify_directory_change` or
        /// `notify_file_change`; this bounds how stale a drive that does not can get).
        pub metadata_cache_timeout: Duration = Duration::from_secs(10),
            METADATA_TTL = "MetadataCacheTimeout", Kind::Int { min: 0, max: 86_400_000 };
        /// `MetadataCacheEnabled`: let the kernel reuse answers of `on_get_file_info` for
        /// `metadata_cache_timeout` (FUSE entry and attribute timeouts). Off, every `stat` and
        /// every path walk fires `on_get_file_info`. Default true.
        pub metadata_cache_enabled: bool = true,
            METADATA_ENABLED = "MetadataCacheEnabled", Kind::Bool;
        /// `MetadataCacheSize`: at most this many answers are cached at a time; answers beyond
        /// it are given a zero timeout until older ones expire. Default 100 000.
        pub metadata_cache_size: usize = 100_000, METADATA_SIZE = "MetadataCacheSize", SIZE;
        /// `NonExistentFilesCacheEnabled`: let the kernel remember, for
        /// `metadata_cache_timeout`, that a name does not exist (negative entries), so repeated
        /// lookups of a missing name fire `on_get_file_info` once. A create through the drive
        /// replaces the negative entry at once; a file created behind the kernel's back shows up
        /// after `notify_directory_change(…, Added)` or when the timeout ends. Default true.
        pub non_existent_files_cache_enabled: bool = true,
            NEGATIVE_ENABLED = "NonExistentFilesCacheEnabled", Kind::Bool;
        /// `NonExistentFilesCacheSize`: at most this many negative entries at a time. Default
        /// 10 000.
        pub non_existent_files_cache_size: usize = 10_000,
            NEGATIVE_SIZE = "NonExistentFilesCacheSize", SIZE;
        /// `FileCache`: which file data cache is used; see [`FileCache`]. Default
        /// [`FileCache::System`].
        pub file_cache: FileCache = FileCache::System, FILE_CACHE = "FileCache", Kind::Text;
        /// `FileCachePolicyWriteThrough`: with the system cache, send every write to
        /// `on_write_file` at once instead of caching it for write-back. Default **true**, unlike
        /// the reference: under the kernel's writeback cache the kernel keeps its own size and
        /// modification time of every cached file and ignores the drive's, so a change made
        /// behind its back can no longer be revealed by `notify_file_change`. Turn it off for
        /// drives whose files change only through the mount (small writes then reach the drive
        /// in page-sized or larger batches).
        pub file_cache_policy_write_through: bool = true,
            WRITE_THROUGH = "FileCachePolicyWriteThrough", Kind::Bool;
        /// `UserModeFileCacheSize`: bytes of file data the user-mode cache keeps. Default 64 MiB.
        pub user_mode_file_cache_size: u64 = 64 << 20,
            USER_CACHE_SIZE = "UserModeFileCacheSize", Kind::Int { min: 0, max: 1 << 40 };
        /// `UseFileIds`: the kernel's inode numbers are the `file_id`s that `on_get_file_info`
        /// and `on_enumerate_directory` report, so they are stable across lookups, remounts and
        /// `readdir`, and two names with one id are one inode (hard links). The root is always
        /// inode 1 whatever id it reports; every other object must report an id other than 0
        /// and 1 (a lookup that gets 0 or 1 fails with `EIO`). Off, the library numbers inodes
        /// itself. Default false.
        pub use_file_ids: bool = false, USE_FILE_IDS = "UseFileIds", Kind::Bool;
        /// `UseHardLinks`: `link(2)` reaches `on_create_hard_link`. Off, it fails with `EPERM`
        /// before any event. Default true.
        pub use_hard_links: bool = true, USE_HARD_LINKS = "UseHardLinks", Kind::Bool;
        /// Mount read-only: the kernel refuses every change with `EROFS` before any event.
        pub read_only: bool = false, READ_ONLY = "ReadOnly", Kind::Bool;
        /// Sector size reported to `on_get_volume_size`. Default 512.
        pub sector_size: u32 = 512, SECTOR_SIZE = "SectorSize", Kind::Int { min: 512, max: 65_536 };
        /// Let the kernel check permission bits against the mode, uid and gid that
        /// `on_get_file_info` reports, before events fire (`default_permissions`). Default
        /// true. Off, every access check is the drive's (see the reference's security checks).
        pub default_permissions: bool = true,
            DEFAULT_PERMISSIONS = "DefaultPermissions", Kind::Bool;
        /// `AllowDevices`: character and block device nodes on the drive open the devices they
        /// name, as on ext4 (the mount has no `nodev`). Off (the default), opening one fails
        /// with `EACCES`, which protects a machine from device nodes in content it does not
        /// control. Needs a server running as root: mounting fails with
        /// `ERROR_PRIVILEGE_NOT_HELD` (1314) otherwise.
        pub allow_devices: bool = false, ALLOW_DEVICES = "AllowDevices", Kind::Bool;
        /// `AllowSetId`: the set-user-ID and set-group-ID bits of programs on the drive take
        /// effect when they run, as on ext4 (the mount has no `nosuid`). Off (the default), they
        /// are kept and reported but ignored by `execve`. Needs a server running as root, like
        /// `allow_devices`.
        pub allow_set_id: bool = false, ALLOW_SET_ID = "AllowSetId", Kind::Bool;
        /// `MountOverContents`: the primary mounting point may be a directory with contents,
        /// which the mount hides from every process until it goes (the file filter's
        /// overlay mounts over the very directory it serves, which it opened first). Off
        /// (the default), a non-empty mounting point fails with `ENOTEMPTY`.
        pub mount_over_contents: bool = false, MOUNT_OVER_CONTENTS = "MountOverContents", Kind::Bool;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_through_config() {
        let o = Options {
            fire_all_open_close_events: false,
            sector_size: 4096,
            ..Options::default()
        };
        let s = o.settings();
        assert_eq!(s.config("FireAllOpenCloseEvents").unwrap(), "False");
        assert_eq!(s.config("fireallopencloseevents=yes").unwrap(), "True");
        assert_eq!(s.config("SectorSize").unwrap(), "4096");
        assert_eq!(s.config("FireCleanupEvents").unwrap(), "True");
        assert_eq!(s.config("SerializeAccess").unwrap(), "True");
        s.config("SerializeAccess=false").unwrap();
        s.config("FireCleanupEvents=no").unwrap();
        assert!(s.config("SectorSize=7").is_err());
        assert!(s.config("FuseReaderThreadCount=0").is_err());
        assert_eq!(s.config("IoUringThreadsPerQueue").unwrap(), "0");
        s.config("IoUringThreadsPerQueue=2").unwrap();
        assert!(s.config("IoUringThreadsPerQueue=17").is_err());
        s.config("IoUringIdlePriority=True").unwrap();
        assert_eq!(s.config("KernelOpensFiles").unwrap(), "False");
        s.config("KernelOpensFiles=True").unwrap();
        let back = Options::from_settings(&s).unwrap();
        assert!(back.kernel_opens_files);
        assert_eq!(back.io_uring_threads_per_queue, 2);
        assert!(back.io_uring_idle_priority);
        assert!(back.fire_all_open_close_events);
        assert!(!back.fire_cleanup_events);
        assert!(!back.serialize_access);
        assert_eq!(back.sector_size, 4096);
        assert_eq!(back.metadata_cache_timeout, Duration::from_secs(10));
        assert_eq!(back.file_cache, FileCache::System);
    }

    #[test]
    fn file_cache_takes_the_three_names() {
        let s = Options::default().settings();
        s.config("FileCache=usermode").unwrap();
        assert_eq!(
            Options::from_settings(&s).unwrap().file_cache,
            FileCache::UserMode
        );
        s.config("FileCache=Sometimes").unwrap();
        let e = Options::from_settings(&s).unwrap_err();
        assert!(e.message().contains("FileCache"), "{e}");
        s.config("MetadataCacheEnabled=no").unwrap();
        s.config("FileCache=None").unwrap();
        let o = Options::from_settings(&s).unwrap();
        assert!(!o.metadata_cache_enabled);
        assert_eq!(o.file_cache, FileCache::None);
    }

    #[test]
    fn unknown_settings_are_refused_by_name() {
        let e = Options::default()
            .settings()
            .config("NoSuch=1")
            .unwrap_err();
        assert!(e.message().contains("NoSuch"), "{e}");
    }
}
