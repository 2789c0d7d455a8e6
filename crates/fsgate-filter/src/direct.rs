//! The direct file operations (`create_file_direct` and its siblings): files the filter's
//! application opens and changes without being filtered.
//!
//! On the overlay backend a path under an overlay is opened in the lower directory through
//! the descriptor the overlay opened before it mounted, so the request never reaches the
//! overlay (no event fires, no rule applies, and a handler may open the very file its event
//! is about). Elsewhere, and on the fanotify backend, the path is opened as it is: fanotify
//! never filters the filter's own process. The returned [`File`] is an ordinary descriptor;
//! the other functions act on it.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use fsgate_core::{Error, Result};

/// The owner, group and permission bits of a file: what `query_file_security_direct`
/// returns and `set_file_security_direct` changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileSecurity {
    /// Owner uid.
    pub owner: u32,
    /// Group gid.
    pub group: u32,
    /// Permission bits (`0o7777`).
    pub mode: u32,
}

/// Opens `file_name` with open `flags` (`O_RDONLY`, `O_CREAT`, …) and `mode` outside any
/// filtering.
pub(crate) fn open_plain(file_name: &str, flags: i32, mode: u32) -> std::io::Result<File> {
    let flags = rustix::fs::OFlags::from_bits_retain(flags as u32 | libc::O_CLOEXEC as u32);
    let fd = rustix::fs::open(file_name, flags, rustix::fs::Mode::from_raw_mode(mode))?;
    Ok(File::from(fd))
}

/// An errno error naming the direct operation and the file.
pub(crate) fn failed(op: &str, what: &str, e: std::io::Error) -> Error {
    Error::from_errno(
        e.raw_os_error().unwrap_or(libc::EIO),
        format!("{op} {what}: {e}"),
    )
}

/// `set_file_size_direct`: truncates or extends `file` (opened for writing).
pub fn set_file_size(file: &File, size: u64) -> Result<()> {
    file.set_len(size)
        .map_err(|e| failed("set_file_size_direct", "of the direct file", e))
}

/// `query_file_information_direct`: the file's metadata (size, times, kind, links).
pub fn query_file_information(file: &File) -> Result<std::fs::Metadata> {
    file.metadata()
        .map_err(|e| failed("query_file_information_direct", "of the direct file", e))
}

/// `query_file_security_direct`: owner, group and permission bits.
pub fn query_file_security(file: &File) -> Result<FileSecurity> {
    let m = query_file_information(file)?;
    Ok(FileSecurity {
        owner: m.uid(),
        group: m.gid(),
        mode: m.mode() & 0o7777,
    })
}

/// `set_file_security_direct`: changes what is `Some` of owner, group and permission bits.
pub fn set_file_security(
    file: &File,
    owner: Option<u32>,
    group: Option<u32>,
    mode: Option<u32>,
) -> Result<()> {
    let what = "of the direct file";
    if owner.is_some() || group.is_some() {
        rustix::fs::fchown(
            file.as_fd(),
            owner.map(rustix::fs::Uid::from_raw),
            group.map(rustix::fs::Gid::from_raw),
        )
        .map_err(|e| failed("set_file_security_direct (chown)", what, e.into()))?;
    }
    if let Some(mode) = mode {
        rustix::fs::fchmod(file.as_fd(), rustix::fs::Mode::from_raw_mode(mode & 0o7777))
            .map_err(|e| failed("set_file_security_direct (chmod)", what, e.into()))?;
    }
    Ok(())
}
