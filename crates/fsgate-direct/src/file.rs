//! `create_file` and `delete_file`: files opened and deleted with a privileged process's
//! reach on Linux.

use std::fs::{self, File};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use fsgate_core::{code, Error, Result};
use rustix::fs::{Mode, OFlags};

use crate::error::privilege_error;
use crate::fhandle;
use crate::flags::*;

/// Opens or creates `file_name`; see `DirectAccess::create_file` for the argument mapping.
pub(crate) fn create_file(
    file_name: &str,
    desired_access: u32,
    creation_disposition: u32,
    flags_and_attributes: u32,
) -> Result<File> {
    if file_name.is_empty() {
        return Err(Error::invalid_argument("file_name", "is empty"));
    }
    let unknown = flags_and_attributes & !KNOWN_FLAGS_AND_ATTRIBUTES;
    if unknown != 0 {
        return Err(Error::invalid_argument(
            "flags_and_attributes",
            format!("bits {unknown:#010x} are not flags fsgate knows"),
        ));
    }
    let write = wants_write(desired_access);
    let mut flags = OFlags::CLOEXEC | OFlags::NOATIME;
    flags |= match creation_disposition {
        CREATE_NEW => OFlags::CREATE | OFlags::EXCL,
        CREATE_ALWAYS => OFlags::CREATE | OFlags::TRUNC,
        OPEN_EXISTING => OFlags::empty(),
        OPEN_ALWAYS => OFlags::CREATE,
        TRUNCATE_EXISTING if write => OFlags::TRUNC,
        TRUNCATE_EXISTING => {
            return Err(Error::invalid_argument(
                "creation_disposition",
                "TRUNCATE_EXISTING needs write access (GENERIC_WRITE) in desired_access",
            ))
        }
        other => {
            return Err(Error::invalid_argument(
                "creation_disposition",
                format!("{other} is not one of CREATE_NEW (1) … TRUNCATE_EXISTING (5)"),
            ))
        }
    };
    flags |= if !write {
        OFlags::RDONLY
    } else if desired_access & (GENERIC_WRITE | GENERIC_ALL | FILE_WRITE_DATA) == 0 {
        OFlags::RDWR | OFlags::APPEND
    } else {
        OFlags::RDWR
    };
    for (flag, oflag) in [
        (FILE_FLAG_NO_BUFFERING, OFlags::DIRECT),
        (FILE_FLAG_WRITE_THROUGH, OFlags::DSYNC),
        (FILE_FLAG_OPEN_REPARSE_POINT, OFlags::NOFOLLOW),
    ] {
        if flags_and_attributes & flag != 0 {
            flags |= oflag;
        }
    }
    let mode = if flags_and_attributes & FILE_ATTRIBUTE_READONLY != 0 {
        Mode::from_bits_truncate(0o444)
    } else {
        Mode::from_bits_truncate(0o644)
    };
    let path = Path::new(file_name);
    let file = File::from(open(path, flags, mode)?);
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("reading the attributes of {file_name}"), e))?;
    if meta.is_dir() && flags_and_attributes & FILE_FLAG_BACKUP_SEMANTICS == 0 {
        return Err(Error::from_code(
            code::ERROR_ACCESS_DENIED,
            format!(
                "{file_name} is a directory; pass FILE_FLAG_BACKUP_SEMANTICS to open directories"
            ),
        ));
    }
    let advice = if flags_and_attributes & FILE_FLAG_RANDOM_ACCESS != 0 {
        Some(rustix::fs::Advice::Random)
    } else if flags_and_attributes & FILE_FLAG_SEQUENTIAL_SCAN != 0 {
        Some(rustix::fs::Advice::Sequential)
    } else {
        None
    };
    if let Some(advice) = advice {
        // An access pattern hint: a filesystem that ignores it changes nothing for the caller.
        let _ = rustix::fs::fadvise(&file, 0, None, advice);
    }
    Ok(file)
}

/// The ordinary open with `O_NOATIME`, then without it (`EPERM`: the caller neither owns the
/// file nor holds `CAP_FOWNER`), then by handle (`EACCES` on an existing file).
fn open(path: &Path, flags: OFlags, mode: Mode) -> Result<OwnedFd> {
    let name = path.display();
    let first = match rustix::fs::open(path, flags, mode) {
        Ok(fd) => return Ok(fd),
        Err(rustix::io::Errno::PERM) if flags.contains(OFlags::NOATIME) => {
            return open(path, flags - OFlags::NOATIME, mode)
        }
        Err(e) => io::Error::from(e),
    };
    if first.raw_os_error() != Some(libc::EACCES) {
        return Err(match first.raw_os_error() {
            Some(libc::EEXIST) => Error::from_code(
                code::ERROR_FILE_EXISTS,
                format!("{name} exists (creation_disposition CREATE_NEW)"),
            ),
            Some(libc::EPERM) => privilege_error(first, format!("opening {name}: operation not permitted (an immutable or append-only file, or a missing CAP_FOWNER)")),
            _ => Error::io(format!("opening {name}"), first),
        });
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let by_handle = rustix::fs::open(
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(io::Error::from)
    .and_then(|dir| {
        let handle_flags = flags - (OFlags::CREATE | OFlags::EXCL);
        fhandle::open_by_handle(&dir, path, handle_flags.bits() as i32)
    });
    by_handle.map_err(|_| {
        privilege_error(
            first,
            format!("opening {name}: permission denied; the access asked for needs CAP_DAC_OVERRIDE (reads: CAP_DAC_READ_SEARCH)"),
        )
    })
}

/// A process that holds a file open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHolder {
    /// The process id.
    pub process_id: u32,
    /// The descriptor number in that process.
    pub fd: i32,
}

/// Deletes `file_name`; see `DirectAccess::delete_file`.
pub(crate) fn delete_file(file_name: &str, close_open_handles: bool) -> Result<Vec<FileHolder>> {
    if file_name.is_empty() {
        return Err(Error::invalid_argument("file_name", "is empty"));
    }
    let meta = fs::symlink_metadata(file_name)
        .map_err(|e| Error::io(format!("deleting {file_name}"), e))?;
    if meta.is_dir() {
        return Err(Error::from_code(
            code::ERROR_ACCESS_DENIED,
            format!("deleting {file_name}: it is a directory; delete_file deletes files"),
        ));
    }
    let holders = if close_open_handles {
        holders_of(meta.dev(), meta.ino())
    } else {
        Vec::new()
    };
    fs::remove_file(file_name).map_err(|e| match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => privilege_error(
            e,
            format!("deleting {file_name}: permission denied; it needs write access to the directory (CAP_DAC_OVERRIDE), CAP_FOWNER in a sticky directory, and no immutable attribute"),
        ),
        _ => Error::io(format!("deleting {file_name}"), e),
    })?;
    Ok(holders)
}

/// Every `(pid, fd)` whose descriptor refers to the inode `dev:ino`, from `/proc/*/fd`.
/// Processes that exit or hide their descriptors during the scan are skipped.
pub fn holders_of(dev: u64, ino: u64) -> Vec<FileHolder> {
    let mut holders = Vec::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return holders;
    };
    for process in procs.flatten() {
        let Some(process_id) = process.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(fds) = fs::read_dir(process.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Some(fd_no) = fd.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino) {
                holders.push(FileHolder {
                    process_id,
                    fd: fd_no,
                });
            }
        }
    }
    holders.sort_by_key(|h| (h.process_id, h.fd));
    holders
}
