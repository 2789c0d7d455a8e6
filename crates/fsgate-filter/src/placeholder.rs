//! Placeholders: files that exist with their final size but no data, filled on first access
//! by the application's [`on_hydrate_file`](crate::events::FilterEvents::on_hydrate_file).
//!
//! Linux mapping: the reference's `FILE_ATTRIBUTE_RECALL_ON_DATA_ACCESS` placeholder is a
//! sparse file carrying the extended attribute [`PLACEHOLDER_XATTR`] (its value is the size,
//! in decimal), and the recall is a fanotify pre-content event (`FAN_PRE_ACCESS`, Linux 6.14;
//! ext4, xfs and btrfs only). The filter keeps a registry of the placeholders it serves, each
//! with an inode mark for `FAN_PRE_ACCESS` in a `FAN_CLASS_PRE_CONTENT` group whose event
//! descriptors are opened `O_RDWR` with `FMODE_NONOTIFY`: the data the handler returns is
//! written through the event's own descriptor, so the write raises no event, and the
//! reader's `read(2)` (or page fault, `splice`, `copy_file_range`) returns only after the
//! range it asked for is on disk. Each byte is hydrated once (the filter remembers the
//! ranges it filled); once the whole file is filled the mark and the attribute are removed,
//! so later reads cost nothing. The registry lives in memory: after a restart the
//! application calls `register_placeholder` again (the attribute says which files are
//! placeholders, and a partly filled one is filled again from the start).
//!
//! A handler's `Err` fails the reader's call with its errno when the kernel accepts it
//! (`EIO EPERM EBUSY ETXTBSY EAGAIN ENOSPC EDQUOT`), else `EIO`; a timeout, a panic or a
//! stop fails it with `EIO`, never with unfilled zeros. The library's own process is not
//! held: its reads see the file as it is (holes read as zeros).

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

use fsgate_core::dispatch::{Dispatcher, Outcome, SerialKey, Task};
use fsgate_core::listener::{Flow, Interest, Listener, Source};
use fsgate_core::originator::Originator;
use fsgate_core::sync::lock;
use fsgate_core::{code, Error, Result};
use fsgate_fanotify::{
    fd_path, Class, Event, EventBuffer, EventMask, Group, HeldEvents, InitFlags, MarkAction,
    MarkFlags, MarkType, Response,
};

use crate::events::{FilterEvents, HydrateFile};
use crate::group;
use crate::ranges::Ranges;
use crate::volumes;

/// The extended attribute that marks a placeholder; its value is the file's size.
pub const PLACEHOLDER_XATTR: &str = "user.fsgate.placeholder";

/// The largest range one `on_hydrate_file` call is asked for.
pub const MAX_HYDRATE_CHUNK: u64 = 4 << 20;

/// The errnos a pre-content group may hand back to the reader (fs/notify/fanotify).
const DENY_ERRNOS: &[i32] = &[
    libc::EIO,
    libc::EPERM,
    libc::EBUSY,
    libc::ETXTBSY,
    libc::EAGAIN,
    libc::ENOSPC,
    libc::EDQUOT,
];

/// Device and inode number: how an event's descriptor finds its placeholder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct FileKey {
    dev: u64,
    ino: u64,
}

impl FileKey {
    fn of(fd: impl AsFd) -> std::io::Result<Self> {
        let st = rustix::fs::fstat(fd)?;
        Ok(Self {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }
}

struct Entry {
    size: u64,
    filled: Ranges,
}

type Files = Arc<Mutex<HashMap<FileKey, Entry>>>;

fn denial(e: &Error) -> Response {
    let errno = e.errno();
    Response::deny_with(if DENY_ERRNOS.contains(&errno) {
        errno
    } else {
        libc::EIO
    })
}

fn not_supported(path: &Path, e: &std::io::Error) -> Error {
    let fs = volumes::current()
        .ok()
        .and_then(|v| volumes::holding(&v, path).map(|v| v.fs_type.clone()))
        .unwrap_or_else(|| "an unknown filesystem".into());
    Error::new(
        code::ERROR_NOT_SUPPORTED,
        libc::EOPNOTSUPP,
        format!(
            "file_name: placeholders need fanotify pre-content events (FAN_PRE_ACCESS, Linux 6.14 \
             or later) on ext4, xfs or btrfs; {} is on {fs} and the kernel refused the mark ({e})",
            path.display()
        ),
    )
}

/// The running placeholder side of a filter.
pub(crate) struct PlaceholderEngine {
    group: Arc<Group>,
    files: Files,
    held: Arc<HeldEvents>,
    listener: Listener,
}

impl PlaceholderEngine {
    pub(crate) fn start<H: FilterEvents>(
        handler: Arc<H>,
        dispatcher: Arc<Dispatcher>,
    ) -> Result<Self> {
        let group = Group::new(
            Class::PreContent,
            InitFlags::CLOEXEC,
            libc::O_RDWR | libc::O_LARGEFILE | libc::O_CLOEXEC,
        )
        .map_err(|e| Error::io("creating the fanotify pre-content group (needs root)", e))?;
        let (group, files, held) = (Arc::new(group), Files::default(), Arc::default());
        let reader = Reader {
            group: Arc::clone(&group),
            files: Arc::clone(&files),
            held: Arc::clone(&held),
            handler,
            dispatcher,
            own_pid: std::process::id() as i32,
            buf: EventBuffer::default(),
        };
        Ok(Self {
            group,
            files,
            held,
            listener: Listener::spawn("fsgate-placeholder-reader", reader)?,
        })
    }

    /// Marks `file` (a placeholder of `size` bytes at `path`) and registers it.
    pub(crate) fn add(&self, path: &Path, file: &std::fs::File, size: u64) -> Result<()> {
        let key = FileKey::of(file).map_err(|e| Error::io(path.display(), e))?;
        self.group
            .mark(
                MarkAction::Add,
                MarkType::Inode,
                MarkFlags::empty(),
                EventMask::PRE_ACCESS,
                Some(file.as_fd()),
                None,
            )
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => not_supported(path, &e),
                _ => Error::io(format_args!("marking {}", path.display()), e),
            })?;
        lock(&self.files).insert(
            key,
            Entry {
                size,
                filled: Ranges::default(),
            },
        );
        Ok(())
    }

    /// Stops reading, removes every mark and fails the reads still waiting with `EIO`.
    pub(crate) fn stop(self) {
        let _ = self.group.mark(
            MarkAction::Flush,
            MarkType::Inode,
            MarkFlags::empty(),
            EventMask::empty(),
            None,
            None,
        );
        self.listener.stop();
        self.held.release(Response::deny_with(libc::EIO));
    }
}

struct Reader<H> {
    group: Arc<Group>,
    files: Files,
    held: Arc<HeldEvents>,
    handler: Arc<H>,
    dispatcher: Arc<Dispatcher>,
    own_pid: i32,
    buf: EventBuffer,
}

impl<H: FilterEvents> Source for Reader<H> {
    fn descriptors(&self) -> Vec<(BorrowedFd<'_>, Interest)> {
        vec![(self.group.as_fd(), Interest::Readable)]
    }

    fn ready(&mut self, _ready: &[bool]) -> Flow {
        for event in group::read(&*self.handler, &self.group, &mut self.buf) {
            self.decide(event);
        }
        Flow::Continue
    }

    fn failed(&mut self, e: std::io::Error) {
        group::wait_failed(&*self.handler, &e);
    }
}

impl<H: FilterEvents> Reader<H> {
    /// Decides one pre-content event. Every early return drops the event, which allows it.
    fn decide(&self, mut event: Event) {
        let Some(permission) = event.permission.take() else {
            return;
        };
        if event.pid == self.own_pid || !event.mask.contains(EventMask::PRE_ACCESS) {
            return;
        }
        let Ok(key) = FileKey::of(&permission) else {
            return;
        };
        let (start, end) = {
            let files = lock(&self.files);
            let Some(entry) = files.get(&key) else {
                return;
            };
            let (offset, count) = event.range().unwrap_or((0, 0));
            let start = offset.min(entry.size);
            let end = if count == 0 {
                entry.size
            } else {
                offset.saturating_add(count).min(entry.size)
            };
            if entry.filled.missing(start, end).is_empty() {
                return;
            }
            (start, end)
        };
        let pid = event.pid.max(0) as u32;
        let creds = fsgate_core::originator::credentials(pid).ok();
        let origin = Originator::of_process(
            pid,
            creds.as_ref().map_or(u32::MAX, |c| c.euid),
            creds.as_ref().map_or(u32::MAX, |c| c.egid),
        );
        let file = match permission.as_fd().try_clone_to_owned() {
            Ok(fd) => std::fs::File::from(fd),
            Err(e) => {
                self.handler.on_error(
                    code::ERROR_GEN_FAILURE,
                    &format!("duplicating a pre-content event's descriptor: {e}"),
                );
                let _ = permission.answer(Response::deny_with(libc::EIO));
                return;
            }
        };
        let job = Hydration {
            group: Arc::clone(&self.group),
            files: Arc::clone(&self.files),
            handler: Arc::clone(&self.handler),
            file,
            key,
            pid,
        };
        let held = self.held.hold(permission);
        self.dispatcher.dispatch(
            Task::new(move || job.run(start, end))
                .key(SerialKey(key.ino ^ key.dev.rotate_left(32)))
                .originator(origin)
                .then(move |outcome| {
                    let response = match outcome {
                        Outcome::Done(Ok(())) => Response::allow(),
                        Outcome::Done(Err(e)) => denial(&e),
                        _ => Response::deny_with(libc::EIO),
                    };
                    let _ = held.answer(response);
                }),
        );
    }
}

/// One pre-content event being served on a worker.
struct Hydration<H> {
    group: Arc<Group>,
    files: Files,
    handler: Arc<H>,
    /// A duplicate of the event's descriptor (same open file, so writes through it raise
    /// no event); the event itself stays with the completion that answers it.
    file: std::fs::File,
    key: FileKey,
    pid: u32,
}

impl<H: FilterEvents> Hydration<H> {
    fn run(&self, start: u64, end: u64) -> Result<()> {
        // Recomputed here: an earlier event of this file (serialized before us) may have
        // filled part of the range meanwhile.
        let (size, missing) = match lock(&self.files).get(&self.key) {
            Some(e) => (e.size, e.filled.missing(start, end)),
            None => return Ok(()),
        };
        let file_name = fd_path(self.file.as_fd())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let file = &self.file;
        for (s, e) in missing {
            let mut at = s;
            while at < e {
                let len = (e - at).min(MAX_HYDRATE_CHUNK);
                let mut p = HydrateFile {
                    file_name: file_name.clone(),
                    offset: at,
                    file_size: size,
                    process_id: self.pid,
                    buffer: vec![0; len as usize],
                };
                self.handler.on_hydrate_file(&mut p)?;
                if p.buffer.len() as u64 != len {
                    return Err(Error::invalid_argument(
                        "buffer",
                        format_args!(
                            "on_hydrate_file must return exactly {len} bytes for offset {at} of {file_name}, got {}",
                            p.buffer.len()
                        ),
                    ));
                }
                file.write_all_at(&p.buffer, at)
                    .map_err(|err| Error::io(format_args!("filling {file_name}"), err))?;
                if let Some(entry) = lock(&self.files).get_mut(&self.key) {
                    entry.filled.insert(at, at + len);
                }
                at += len;
            }
        }
        let complete = lock(&self.files)
            .get(&self.key)
            .is_some_and(|e| e.filled.covers(e.size));
        if complete {
            self.finish(file, &file_name);
        }
        Ok(())
    }

    /// The file is whole: it stops being a placeholder.
    fn finish(&self, file: &std::fs::File, file_name: &str) {
        if let Err(e) = self.group.mark(
            MarkAction::Remove,
            MarkType::Inode,
            MarkFlags::empty(),
            EventMask::PRE_ACCESS,
            Some(file.as_fd()),
            None,
        ) {
            self.handler.on_error(
                code::ERROR_GEN_FAILURE,
                &format!("removing the placeholder mark of {file_name}: {e}"),
            );
        }
        if let Err(e) = rustix::fs::fremovexattr(file, PLACEHOLDER_XATTR) {
            self.handler.on_error(
                code::ERROR_GEN_FAILURE,
                &format!("removing {PLACEHOLDER_XATTR} from {file_name}: {e}"),
            );
        }
        lock(&self.files).remove(&self.key);
    }
}

/// Creates `path` as a placeholder of `size` bytes: a new sparse file carrying
/// [`PLACEHOLDER_XATTR`]. Fails if the file exists.
pub(crate) fn create(path: &Path, size: u64) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(|e| Error::io(format_args!("creating {}", path.display()), e))?;
    let made = file
        .set_len(size)
        .and_then(|()| {
            rustix::fs::fsetxattr(
                &file,
                PLACEHOLDER_XATTR,
                size.to_string().as_bytes(),
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(std::io::Error::from)
        })
        .map_err(|e| Error::io(format_args!("making {} a placeholder", path.display()), e));
    if let Err(e) = made {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(file)
}

/// Opens an existing placeholder and reads its size from [`PLACEHOLDER_XATTR`].
pub(crate) fn open(path: &Path) -> Result<(std::fs::File, u64)> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::io(format_args!("opening {}", path.display()), e))?;
    let mut value = [0u8; 32];
    let n = rustix::fs::fgetxattr(&file, PLACEHOLDER_XATTR, &mut value[..]).map_err(|e| {
        Error::invalid_argument(
            "file_name",
            format_args!(
                "{} is not a placeholder (no {PLACEHOLDER_XATTR} attribute: {e})",
                path.display()
            ),
        )
    })?;
    let size = std::str::from_utf8(&value[..n])
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            Error::invalid_argument(
                "file_name",
                format_args!(
                    "{} has a malformed {PLACEHOLDER_XATTR} value",
                    path.display()
                ),
            )
        })?;
    Ok((file, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_errors_map_to_errnos_the_kernel_accepts() {
        let e = Error::from_errno(libc::ENOSPC, "full");
        assert_eq!(denial(&e), Response::deny_with(libc::ENOSPC));
        let e = Error::from_errno(libc::ENOENT, "gone");
        assert_eq!(denial(&e), Response::deny_with(libc::EIO));
    }
}
