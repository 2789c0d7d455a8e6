//! A probe of what the running kernel build allows on the test mounts (it decides which
//! documented outcome a test asserts; a test never skips on it). The mounts themselves come
//! from `fsgate-testkit`.

use std::os::fd::AsFd;
use std::path::Path;

use fsgate_fanotify::{Class, EventMask, Group, InitFlags, MarkAction, MarkFlags, MarkType};

/// Whether the kernel accepts a fanotify pre-content mark (`FAN_PRE_ACCESS`, Linux 6.14; the
/// filesystem must allow it) on a regular file in `dir`: asked with plain fanotify calls on
/// a scratch file that is removed again. Panics when the kernel build has no pre-content
/// groups at all: fsgate-filter does not document what its filters do then.
pub fn kernel_allows_pre_content_marks_in(dir: &Path) -> bool {
    let scratch = dir.join(".fsgate-pre-content-probe");
    let file = std::fs::File::create(&scratch).unwrap();
    let group = Group::new(
        Class::PreContent,
        InitFlags::CLOEXEC,
        libc::O_RDWR | libc::O_LARGEFILE,
    )
    .unwrap_or_else(|e| {
        panic!(
            "fanotify_init(FAN_CLASS_PRE_CONTENT) failed ({e}): this kernel build has no \
             fanotify permission events"
        )
    });
    let marked = group.mark(
        MarkAction::Add,
        MarkType::Inode,
        MarkFlags::empty(),
        EventMask::PRE_ACCESS,
        Some(file.as_fd()),
        None,
    );
    drop(group);
    drop(file);
    std::fs::remove_file(&scratch).unwrap();
    match marked {
        Ok(()) => true,
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::EOPNOTSUPP)) => false,
        Err(e) => panic!("marking {} for FAN_PRE_ACCESS: {e}", scratch.display()),
    }
}
