//! Prints create, delete and rename events on the filesystem holding a directory, with full
//! paths resolved from the kernel's directory ids and names.
//!
//! `cargo run -p fsgate-fanotify --example watch -- /mnt/data` (as root; Ctrl-C to stop).
//! A filesystem mark sees every mount of that filesystem; a FID group is used because only
//! FID groups report directory entry events (create, delete, rename).

use std::fs::File;
use std::os::fd::AsFd;

use fsgate_fanotify::{
    fid_path, Class, EventBuffer, EventMask, FidKind, Group, InitFlags, MarkAction, MarkFlags,
    MarkType,
};

fn main() -> std::io::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".into());
    let root = File::open(&dir)?;
    let group = Group::new(
        Class::Notif,
        InitFlags::CLOEXEC | InitFlags::REPORT_FID | InitFlags::REPORT_DFID_NAME,
        libc::O_RDONLY,
    )?;
    group.mark(
        MarkAction::Add,
        MarkType::Filesystem,
        MarkFlags::empty(),
        EventMask::CREATE | EventMask::DELETE | EventMask::RENAME | EventMask::ONDIR,
        Some(root.as_fd()),
        None,
    )?;
    let mut buf = EventBuffer::default();
    loop {
        for event in group.read_events(&mut buf)? {
            let path = |kind| {
                event
                    .fid(kind)
                    .map(|f| match fid_path(root.as_fd(), f) {
                        Ok(p) => p.display().to_string(),
                        Err(_) => format!("ID|{}", f.handle.to_hex()),
                    })
                    .unwrap_or_default()
            };
            if event.mask.contains(EventMask::RENAME) {
                let (old, new) = (path(FidKind::OldDirName), path(FidKind::NewDirName));
                println!("{:?} pid={} {old} -> {new}", event.mask, event.pid);
            } else {
                println!(
                    "{:?} pid={} {}",
                    event.mask,
                    event.pid,
                    path(FidKind::DirName)
                );
            }
        }
    }
}
