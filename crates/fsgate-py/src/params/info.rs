//! A file's metadata as the reference's properties (`attributes`, `size`, the four times …)
//! and their translation to [`FileInfo`].

use std::time::SystemTime;

use fsgate_vfs::attributes::{
    FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_NORMAL, FILE_ATTRIBUTE_REPARSE_POINT,
};
use fsgate_vfs::{FileInfo, FileKind};

/// The reference's attribute flags of a kind: directory, reparse point (symbolic link) or
/// normal.
pub(crate) fn attributes_of(kind: FileKind) -> u32 {
    match kind {
        FileKind::Directory => FILE_ATTRIBUTE_DIRECTORY,
        FileKind::Symlink => FILE_ATTRIBUTE_REPARSE_POINT,
        _ => FILE_ATTRIBUTE_NORMAL,
    }
}

/// The metadata properties a handler fills, as plain values.
#[derive(Clone, Debug)]
pub(crate) struct InfoValues {
    pub(crate) attributes: u32,
    pub(crate) size: u64,
    pub(crate) allocation_size: Option<u64>,
    pub(crate) file_id: u64,
    pub(crate) hard_link_count: Option<u32>,
    pub(crate) mode: Option<u32>,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) creation_time: SystemTime,
    pub(crate) last_access_time: SystemTime,
    pub(crate) last_write_time: SystemTime,
    pub(crate) change_time: SystemTime,
}

impl InfoValues {
    /// The library's pre-filled info; `mode` and `hard_link_count` start as `None`, meaning
    /// the default of whatever kind the handler's `attributes` choose.
    pub(crate) fn from_info(info: &FileInfo) -> Self {
        Self {
            attributes: attributes_of(info.kind),
            size: info.size,
            allocation_size: info.allocation_size,
            file_id: info.file_id,
            hard_link_count: None,
            mode: None,
            uid: info.uid,
            gid: info.gid,
            creation_time: info.creation_time,
            last_access_time: info.last_access_time,
            last_write_time: info.last_write_time,
            change_time: info.change_time,
        }
    }

    /// Writes the handler's values into `info`: `FILE_ATTRIBUTE_DIRECTORY` makes a
    /// directory, `FILE_ATTRIBUTE_REPARSE_POINT` a symbolic link, anything else keeps a
    /// special kind the library knew or makes a file; unset `mode` and `hard_link_count`
    /// take that kind's defaults (`0o755` and 2 for directories, `0o644` and 1 otherwise).
    pub(crate) fn store(&self, info: &mut FileInfo) {
        let kind = if self.attributes & FILE_ATTRIBUTE_DIRECTORY != 0 {
            FileKind::Directory
        } else if self.attributes & FILE_ATTRIBUTE_REPARSE_POINT != 0 {
            FileKind::Symlink
        } else if info.kind.is_special() {
            info.kind
        } else {
            FileKind::File
        };
        let defaults = FileInfo::new(kind, self.uid, self.gid, self.creation_time);
        *info = FileInfo {
            kind,
            mode: self.mode.unwrap_or(defaults.mode),
            hard_link_count: self.hard_link_count.unwrap_or(defaults.hard_link_count),
            size: self.size,
            allocation_size: self.allocation_size,
            file_id: self.file_id,
            uid: self.uid,
            gid: self.gid,
            creation_time: self.creation_time,
            last_access_time: self.last_access_time,
            last_write_time: self.last_write_time,
            change_time: self.change_time,
            rdev: info.rdev,
        };
    }
}

/// The metadata properties of a params class holding an `info: InfoValues` field: getters and
/// setters named as the reference's (`attributes`, `size`, `creation_time`, …) plus Linux's
/// `mode`, `uid`, `gid`. Times are timezone-aware `datetime`s.
macro_rules! info_properties {
    ($class:ty) => {
        #[pyo3::pymethods]
        impl $class {
            /// `FILE_ATTRIBUTE_*` flags: 0x10 directory, 0x400 symbolic link.
            #[getter]
            fn attributes(&self) -> u32 {
                self.info.attributes
            }
            #[setter]
            fn set_attributes(&mut self, v: u32) {
                self.info.attributes = v;
            }
            /// Size in bytes.
            #[getter]
            fn size(&self) -> u64 {
                self.info.size
            }
            #[setter]
            fn set_size(&mut self, v: u64) {
                self.info.size = v;
            }
            /// Space used in bytes; `None`: the same as `size`.
            #[getter]
            fn allocation_size(&self) -> Option<u64> {
                self.info.allocation_size
            }
            #[setter]
            fn set_allocation_size(&mut self, v: Option<u64>) {
                self.info.allocation_size = v;
            }
            /// The file's id (the inode number with `UseFileIds`).
            #[getter]
            fn file_id(&self) -> u64 {
                self.info.file_id
            }
            #[setter]
            fn set_file_id(&mut self, v: u64) {
                self.info.file_id = v;
            }
            /// Number of names; `None`: 2 for directories, 1 otherwise.
            #[getter]
            fn hard_link_count(&self) -> Option<u32> {
                self.info.hard_link_count
            }
            #[setter]
            fn set_hard_link_count(&mut self, v: Option<u32>) {
                self.info.hard_link_count = v;
            }
            /// Permission bits; `None`: `0o755` for directories, `0o644` otherwise.
            #[getter]
            fn mode(&self) -> Option<u32> {
                self.info.mode
            }
            #[setter]
            fn set_mode(&mut self, v: Option<u32>) {
                self.info.mode = v;
            }
            /// Owner.
            #[getter]
            fn uid(&self) -> u32 {
                self.info.uid
            }
            #[setter]
            fn set_uid(&mut self, v: u32) {
                self.info.uid = v;
            }
            /// Group.
            #[getter]
            fn gid(&self) -> u32 {
                self.info.gid
            }
            #[setter]
            fn set_gid(&mut self, v: u32) {
                self.info.gid = v;
            }
            /// Creation time.
            #[getter]
            fn creation_time(&self) -> std::time::SystemTime {
                self.info.creation_time
            }
            #[setter]
            fn set_creation_time(&mut self, v: std::time::SystemTime) {
                self.info.creation_time = v;
            }
            /// Last access (`st_atime`).
            #[getter]
            fn last_access_time(&self) -> std::time::SystemTime {
                self.info.last_access_time
            }
            #[setter]
            fn set_last_access_time(&mut self, v: std::time::SystemTime) {
                self.info.last_access_time = v;
            }
            /// Last data change (`st_mtime`).
            #[getter]
            fn last_write_time(&self) -> std::time::SystemTime {
                self.info.last_write_time
            }
            #[setter]
            fn set_last_write_time(&mut self, v: std::time::SystemTime) {
                self.info.last_write_time = v;
            }
            /// Last metadata change (`st_ctime`).
            #[getter]
            fn change_time(&self) -> std::time::SystemTime {
                self.info.change_time
            }
            #[setter]
            fn set_change_time(&mut self, v: std::time::SystemTime) {
                self.info.change_time = v;
            }
        }
    };
}
pub(crate) use info_properties;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_choose_the_kind_and_its_defaults() {
        let t = SystemTime::UNIX_EPOCH;
        let mut info = FileInfo::new(FileKind::File, 1, 2, t);
        let mut v = InfoValues::from_info(&info);
        assert_eq!(v.attributes, FILE_ATTRIBUTE_NORMAL);
        v.attributes = FILE_ATTRIBUTE_DIRECTORY;
        v.size = 7;
        v.store(&mut info);
        assert_eq!(
            (info.kind, info.mode, info.hard_link_count, info.size),
            (FileKind::Directory, 0o755, 2, 7)
        );
        v.attributes = FILE_ATTRIBUTE_NORMAL;
        v.mode = Some(0o600);
        v.store(&mut info);
        assert_eq!(
            (info.kind, info.mode, info.hard_link_count),
            (FileKind::File, 0o600, 1)
        );
    }
}
