//! A drive's settings: typed [`Options`] at creation, the same values through
//! `config("NAME=VALUE")` afterwards (read at mount time).

use std::time::Duration;

use fsgate_core::settings::{Kind, Value};
use fsgate_core::{Result, Settings};

/// Setting names, as `config` spells them.
pub(crate) mod names {
    pub const FIRE_ALL: &str = "FireAllOpenCloseEvents";
    pub const SERIALIZE: &str = "SerializeEvents";
    pub const MIN_WORKERS: &str = "MinWorkerThreadCount";
    pub const MAX_WORKERS: &str = "MaxWorkerThreadCount";
    pub const READERS: &str = "FuseReaderThreadCount";
    pub const METADATA_TTL: &str = "MetadataCacheTimeout";
    pub const FILE_CACHE: &str = "FileCache";
    pub const READ_ONLY: &str = "ReadOnly";
    pub const SECTOR_SIZE: &str = "SectorSize";
    pub const DEFAULT_PERMISSIONS: &str = "DefaultPermissions";
}

/// How a drive serves requests. `Options::default()` suits most drives.
#[derive(Clone, Debug)]
pub struct Options {
    /// `fire_all_open_close_events`: `on_open_file`/`on_close_file` fire for every
    /// open/release (true, the default) or only for a file's first open and last release.
    pub fire_all_open_close_events: bool,
    /// `serialize_events`: run every event on one worker, one at a time. Default false:
    /// events for different files run in parallel, one file's events in order.
    pub serialize_events: bool,
    /// `MinWorkerThreadCount`; 0: max(cores, 4).
    pub min_worker_thread_count: usize,
    /// `MaxWorkerThreadCount`; 0: 4 × cores.
    pub max_worker_thread_count: usize,
    /// Threads reading requests from the kernel, each on its own cloned `/dev/fuse`
    /// descriptor (`FUSE_DEV_IOC_CLONE`). Default 2.
    pub fuse_reader_thread_count: usize,
    /// How long the kernel may reuse an answer of `on_get_file_info` (entries and
    /// attributes) without asking again; zero asks every time. Default 1 s.
    pub metadata_cache_timeout: Duration,
    /// Keep file data in the kernel page cache across opens (`FOPEN_KEEP_CACHE`). Default
    /// false: each open drops the file's cached pages, so data changed behind the kernel's
    /// back shows up at the next open.
    pub file_cache: bool,
    /// Mount read-only: the kernel refuses every change with `EROFS` before any event.
    pub read_only: bool,
    /// Sector size reported to `on_get_volume_size`. Default 512.
    pub sector_size: u32,
    /// Let the kernel check permission bits against the mode, uid and gid that
    /// `on_get_file_info` reports, before events fire (`default_permissions`). Default
    /// true. Off, every access check is the drive's (see the reference's security checks).
    pub default_permissions: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            fire_all_open_close_events: true,
            serialize_events: false,
            min_worker_thread_count: 0,
            max_worker_thread_count: 0,
            fuse_reader_thread_count: 2,
            metadata_cache_timeout: Duration::from_secs(1),
            file_cache: false,
            read_only: false,
            sector_size: 512,
            default_permissions: true,
        }
    }
}

fn int(v: usize) -> Value {
    Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

impl Options {
    /// The `config` table holding these options as its initial values.
    pub(crate) fn settings(&self) -> Settings {
        use names::*;
        Settings::new()
            .with(
                FIRE_ALL,
                Kind::Bool,
                Value::Bool(self.fire_all_open_close_events),
            )
            .with(SERIALIZE, Kind::Bool, Value::Bool(self.serialize_events))
            .with(
                MIN_WORKERS,
                Kind::Int { min: 0, max: 1024 },
                int(self.min_worker_thread_count),
            )
            .with(
                MAX_WORKERS,
                Kind::Int { min: 0, max: 1024 },
                int(self.max_worker_thread_count),
            )
            .with(
                READERS,
                Kind::Int { min: 1, max: 64 },
                int(self.fuse_reader_thread_count),
            )
            .with(
                METADATA_TTL,
                Kind::Int {
                    min: 0,
                    max: 86_400_000,
                },
                Value::Int(
                    i64::try_from(self.metadata_cache_timeout.as_millis()).unwrap_or(i64::MAX),
                ),
            )
            .with(FILE_CACHE, Kind::Bool, Value::Bool(self.file_cache))
            .with(READ_ONLY, Kind::Bool, Value::Bool(self.read_only))
            .with(
                SECTOR_SIZE,
                Kind::Int {
                    min: 512,
                    max: 65_536,
                },
                Value::Int(i64::from(self.sector_size)),
            )
            .with(
                DEFAULT_PERMISSIONS,
                Kind::Bool,
                Value::Bool(self.default_permissions),
            )
            .with_build_info()
    }

    /// The options as the `config` table has them now.
    pub(crate) fn from_settings(s: &Settings) -> Result<Self> {
        use names::*;
        let count = |name| -> Result<usize> { Ok(usize::try_from(s.get_int(name)?).unwrap_or(0)) };
        Ok(Self {
            fire_all_open_close_events: s.get_bool(FIRE_ALL)?,
            serialize_events: s.get_bool(SERIALIZE)?,
            min_worker_thread_count: count(MIN_WORKERS)?,
            max_worker_thread_count: count(MAX_WORKERS)?,
            fuse_reader_thread_count: count(READERS)?,
            metadata_cache_timeout: Duration::from_millis(
                u64::try_from(s.get_int(METADATA_TTL)?).unwrap_or(0),
            ),
            file_cache: s.get_bool(FILE_CACHE)?,
            read_only: s.get_bool(READ_ONLY)?,
            sector_size: u32::try_from(s.get_int(SECTOR_SIZE)?).unwrap_or(512),
            default_permissions: s.get_bool(DEFAULT_PERMISSIONS)?,
        })
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
        assert!(s.config("SectorSize=7").is_err());
        assert!(s.config("FuseReaderThreadCount=0").is_err());
        let back = Options::from_settings(&s).unwrap();
        assert!(back.fire_all_open_close_events);
        assert_eq!(back.sector_size, 4096);
        assert_eq!(back.metadata_cache_timeout, Duration::from_secs(1));
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
