//! fanotify against the real kernel, on private tmpfs mounts.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use fsgate_fanotify::{
    fd_path, fid_path, Class, EventBuffer, EventMask, FidKind, Group, InitFlags, MarkAction,
    MarkFlags, MarkType, Permission, Response,
};
use fsgate_testkit::{require_root, TmpfsMount};

#[test]
fn fid_group_reports_create_and_rename_with_names_and_paths() {
    require_root!("fanotify groups need root (CAP_SYS_ADMIN)");
    let mnt = TmpfsMount::new();
    let group = Group::new(
        Class::Notif,
        InitFlags::CLOEXEC
            | InitFlags::NONBLOCK
            | InitFlags::REPORT_FID
            | InitFlags::REPORT_DFID_NAME,
        libc::O_RDONLY,
    )
    .unwrap();
    group
        .mark(
            MarkAction::Add,
            MarkType::Filesystem,
            MarkFlags::empty(),
            EventMask::CREATE | EventMask::RENAME | EventMask::DELETE | EventMask::ONDIR,
            None,
            Some(mnt.path()),
        )
        .unwrap();
    let root = File::open(mnt.path()).unwrap();
    std::fs::create_dir(mnt.path().join("d")).unwrap();
    std::fs::write(mnt.path().join("d/a.txt"), b"x").unwrap();
    std::fs::rename(mnt.path().join("d/a.txt"), mnt.path().join("b.txt")).unwrap();
    std::fs::remove_file(mnt.path().join("b.txt")).unwrap();

    let mut buf = EventBuffer::default();
    let events = group.read_events(&mut buf).unwrap();
    let me = std::process::id() as i32;
    let summary: Vec<(EventMask, String)> = events
        .iter()
        .map(|e| {
            assert_eq!(e.pid, me);
            assert!(e.fd.is_none());
            let path = match e.fid(FidKind::DirName) {
                Some(f) => fid_path(root.as_fd(), f).unwrap().display().to_string(),
                None => {
                    let old = fid_path(root.as_fd(), e.fid(FidKind::OldDirName).unwrap()).unwrap();
                    let new = fid_path(root.as_fd(), e.fid(FidKind::NewDirName).unwrap()).unwrap();
                    format!("{} -> {}", old.display(), new.display())
                }
            };
            (e.mask, path)
        })
        .collect();
    let p = |s: &str| mnt.path().join(s).display().to_string();
    assert_eq!(
        summary,
        vec![
            (EventMask::CREATE | EventMask::ONDIR, p("d")),
            (EventMask::CREATE, p("d/a.txt")),
            (
                EventMask::RENAME,
                format!("{} -> {}", p("d/a.txt"), p("b.txt"))
            ),
            (EventMask::DELETE, p("b.txt")),
        ]
    );
}

/// Marks the mount `mnt` for `FAN_OPEN_PERM`, runs `cat file` in a child and hands every
/// permission event to `decide`, with whether it is the child's open of `file`, until that
/// open was seen. Returns the child's output and the group (still marked).
fn cat_under_open_perm(
    mnt: &Path,
    file: &Path,
    mut decide: impl FnMut(Permission, bool),
) -> (Output, Group) {
    let group = Group::new(Class::Content, InitFlags::CLOEXEC, libc::O_RDONLY).unwrap();
    group
        .mark(
            MarkAction::Add,
            MarkType::Mount,
            MarkFlags::empty(),
            EventMask::OPEN_PERM,
            None,
            Some(mnt),
        )
        .unwrap();
    let child = Command::new("cat")
        .arg(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = EventBuffer::default();
    let mut seen = false;
    while !seen {
        assert!(
            group.wait(10_000).unwrap(),
            "no permission event within 10 s"
        );
        for mut e in group.read_events(&mut buf).unwrap() {
            assert_eq!(e.mask, EventMask::OPEN_PERM);
            assert!(e.fd.is_none());
            let permission = e.permission.take().unwrap();
            let cats = e.pid == child.id() as i32 && fd_path(permission.as_fd()).unwrap() == file;
            seen |= cats;
            decide(permission, cats);
        }
    }
    (child.wait_with_output().unwrap(), group)
}

#[test]
fn permission_group_denies_open_in_child_and_allows_after_flush() {
    require_root!("fanotify groups need root (CAP_SYS_ADMIN)");
    let mnt = TmpfsMount::new();
    let file = mnt.path().join("secret");
    std::fs::write(&file, b"data").unwrap();
    let (out, group) = cat_under_open_perm(mnt.path(), &file, |permission, cats| {
        let verdict = if cats {
            Response::deny_with(libc::EACCES)
        } else {
            Response::allow()
        };
        permission.answer(verdict).unwrap();
    });
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Operation not permitted"),
        "cat said: {stderr}"
    );

    group
        .mark(
            MarkAction::Flush,
            MarkType::Mount,
            MarkFlags::empty(),
            EventMask::empty(),
            None,
            None,
        )
        .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
}

#[test]
fn a_dropped_permission_event_allows_the_operation() {
    require_root!("fanotify groups need root (CAP_SYS_ADMIN)");
    let mnt = TmpfsMount::new();
    let file = mnt.path().join("plain");
    std::fs::write(&file, b"readable").unwrap();
    // Every event, the child's included, is dropped unanswered: each allows.
    let (out, _group) = cat_under_open_perm(mnt.path(), &file, |permission, _| drop(permission));
    assert!(out.status.success());
    assert_eq!(out.stdout, b"readable");
}
