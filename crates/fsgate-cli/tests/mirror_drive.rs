//! The mirror drive through the kernel: `fsgate mount mirror SOURCE MOUNTPOINT` shows a real
//! directory; what a process does on the mount lands in the source, and what is in the
//! source shows on the mount, with permissions, ownership, times, links and xattrs.

#[path = "conformance/served.rs"]
mod served;

use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use served::{is_mounted, require_root, Served, FSGATE};

/// A source directory with some content and the drive mirroring it.
struct Mirror {
    served: Served,
    source: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Empty `source` and `mnt` directories in `tmp`.
fn source_and_mountpoint(tmp: &Path) -> (PathBuf, PathBuf) {
    let (source, mnt) = (tmp.join("source"), tmp.join("mnt"));
    fs::create_dir(&source).unwrap();
    fs::create_dir(&mnt).unwrap();
    (source, mnt)
}

fn mirror(test: &str, passthrough: bool) -> Option<Mirror> {
    if !require_root(test) {
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (source, mnt) = source_and_mountpoint(tmp.path());
    fs::write(source.join("hello"), b"hello from the source").unwrap();
    fs::create_dir(source.join("dir")).unwrap();
    fs::write(source.join("dir/inner"), b"inner").unwrap();
    let served = Served::mirror(&source, &mnt, passthrough);
    Some(Mirror {
        served,
        source,
        _tmp: tmp,
    })
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let (p, n) = (
        CString::new(path.as_os_str().as_bytes()).unwrap(),
        CString::new(name).unwrap(),
    );
    let mut buf = [0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is writable for its length.
    let len = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

#[test]
fn the_source_shows_on_the_mount_with_its_inode_numbers() {
    let Some(m) = mirror(
        "the_source_shows_on_the_mount_with_its_inode_numbers",
        false,
    ) else {
        return;
    };
    assert_eq!(
        m.served.ready,
        format!(
            "ready: mounted mirror drive at {}",
            m.served.mountpoint.display()
        )
    );
    assert_eq!(
        fs::read(m.served.path("hello")).unwrap(),
        b"hello from the source"
    );
    assert_eq!(fs::read(m.served.path("dir/inner")).unwrap(), b"inner");
    let mut names: Vec<(String, u64)> = fs::read_dir(&m.served.mountpoint)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let ino = std::os::unix::fs::DirEntryExt::ino(&e);
            (e.file_name().into_string().unwrap(), ino)
        })
        .collect();
    names.sort();
    let expected: Vec<(String, u64)> = ["dir", "hello"]
        .iter()
        .map(|n| (n.to_string(), fs::metadata(m.source.join(n)).unwrap().ino()))
        .collect();
    assert_eq!(names, expected, "readdir shows the source's inode numbers");
    assert_eq!(
        fs::metadata(m.served.path("hello")).unwrap().ino(),
        fs::metadata(m.source.join("hello")).unwrap().ino()
    );
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn changes_on_the_mount_land_in_the_source() {
    let Some(m) = mirror("changes_on_the_mount_land_in_the_source", false) else {
        return;
    };
    let p = |n: &str| m.served.path(n);
    let s = |n: &str| m.source.join(n);
    fs::write(p("new"), b"written through fsgate").unwrap();
    assert_eq!(fs::read(s("new")).unwrap(), b"written through fsgate");
    fs::create_dir(p("made")).unwrap();
    fs::rename(p("new"), p("made/moved")).unwrap();
    assert_eq!(
        fs::read(s("made/moved")).unwrap(),
        b"written through fsgate"
    );
    fs::hard_link(p("made/moved"), p("linked")).unwrap();
    assert_eq!(
        fs::metadata(s("linked")).unwrap().ino(),
        fs::metadata(s("made/moved")).unwrap().ino()
    );
    assert_eq!(fs::metadata(p("linked")).unwrap().nlink(), 2);
    std::os::unix::fs::symlink("made/moved", p("sym")).unwrap();
    assert_eq!(fs::read_link(s("sym")).unwrap(), Path::new("made/moved"));
    fs::set_permissions(p("linked"), fs::Permissions::from_mode(0o640)).unwrap();
    assert_eq!(fs::metadata(s("linked")).unwrap().mode() & 0o7777, 0o640);
    std::os::unix::fs::chown(p("linked"), Some(1234), Some(5678)).unwrap();
    let meta = fs::metadata(s("linked")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (1234, 5678));
    let times = fs::FileTimes::new()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567_890));
    fs::File::options()
        .write(true)
        .open(p("linked"))
        .unwrap()
        .set_times(times)
        .unwrap();
    assert_eq!(fs::metadata(s("linked")).unwrap().mtime(), 1_234_567_890);
    let status = Command::new("setfattr")
        .args(["-n", "user.origin", "-v", "mirror"])
        .arg(p("hello"))
        .status();
    if status.is_ok_and(|s| s.success()) {
        assert_eq!(xattr(&s("hello"), "user.origin").unwrap(), b"mirror");
    }
    fs::remove_file(p("linked")).unwrap();
    fs::remove_file(p("made/moved")).unwrap();
    fs::remove_dir(p("made")).unwrap();
    assert!(!s("made").exists());
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn files_created_by_other_users_belong_to_them() {
    let Some(m) = mirror("files_created_by_other_users_belong_to_them", false) else {
        return;
    };
    fs::set_permissions(&m.source, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(
        m.source.parent().unwrap(),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    use std::os::unix::process::CommandExt;
    let status = Command::new("sh")
        .arg("-c")
        .arg("echo mine > owned && mkdir owned-dir")
        .current_dir(&m.served.mountpoint)
        .uid(4242)
        .gid(4343)
        .status()
        .unwrap();
    assert!(status.success());
    for name in ["owned", "owned-dir"] {
        let meta = fs::metadata(m.source.join(name)).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343), "{name}");
    }
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn passthrough_reads_and_writes_the_source_files_and_says_so() {
    let Some(m) = mirror(
        "passthrough_reads_and_writes_the_source_files_and_says_so",
        true,
    ) else {
        return;
    };
    assert!(
        m.served.ready.ends_with("(passthrough: kernel)"),
        "{}",
        m.served.ready
    );
    let data: Vec<u8> = (0..(8u32 << 20)).map(|i| (i * 31 % 256) as u8).collect();
    fs::write(m.source.join("big"), &data).unwrap();
    assert_eq!(fs::read(m.served.path("big")).unwrap(), data);
    let mut f = OpenOptions::new()
        .write(true)
        .open(m.served.path("big"))
        .unwrap();
    f.write_all_at(b"PASSTHROUGH", 4 << 20).unwrap();
    f.flush().unwrap();
    let mut buf = [0u8; 11];
    fs::File::open(m.source.join("big"))
        .unwrap()
        .read_exact_at(&mut buf, 4 << 20)
        .unwrap();
    assert_eq!(&buf, b"PASSTHROUGH");
    drop(f);
    let mut appended = OpenOptions::new()
        .append(true)
        .open(m.served.path("hello"))
        .unwrap();
    appended.write_all(b"!").unwrap();
    drop(appended);
    assert_eq!(
        fs::read(m.source.join("hello")).unwrap(),
        b"hello from the source!"
    );
    assert_eq!(m.served.stop().code(), Some(0));
}

#[test]
fn reading_more_files_than_the_server_may_open_works() {
    if !require_root("reading_more_files_than_the_server_may_open_works") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (source, mnt) = source_and_mountpoint(tmp.path());
    const FILES: usize = 1000;
    for i in 0..FILES {
        fs::write(source.join(format!("f{i}")), format!("file {i}")).unwrap();
    }
    // The kernel opens files by itself, and the drive keeps one source descriptor per file
    // the kernel holds: 1000 files need more than the server's 256 descriptors.
    let served = Served::spawn_with_descriptor_limit(
        &["mirror".as_ref(), source.as_os_str(), mnt.as_os_str()],
        &mnt,
        256,
    );
    for pass in 0..2 {
        for i in 0..FILES {
            assert_eq!(
                fs::read_to_string(mnt.join(format!("f{i}"))).unwrap(),
                format!("file {i}"),
                "pass {pass}"
            );
        }
    }
    served.stop();
}

#[test]
fn logged_events_are_json_lines() {
    if !require_root("logged_events_are_json_lines") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (source, mnt) = (tmp.path().join("s"), tmp.path().join("m"));
    fs::create_dir(&source).unwrap();
    fs::create_dir(&mnt).unwrap();
    let child = Command::new(FSGATE)
        .args(["mount", "mirror"])
        .arg(&source)
        .arg(&mnt)
        .args(["--log-events", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = (0..200).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(25));
        is_mounted(&mnt)
    });
    assert!(ready, "the mirror did not mount");
    fs::write(mnt.join("x"), b"1").unwrap();
    fs::remove_file(mnt.join("x")).unwrap();
    // SAFETY: kill on the pid of a child we spawned and have not reaped yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let events: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let named = |e: &str| {
        events
            .iter()
            .find(|v| v["event"] == e && v["file_name"] == "/x")
            .cloned()
    };
    let created = named("create_file").expect("a create_file event");
    assert_eq!(created["result_code"], 0);
    assert!(created["process_id"].as_u64().is_some());
    assert!(named("delete_file").is_some());
    assert!(!is_mounted(&mnt));
}

#[test]
fn a_missing_source_is_a_clear_error() {
    if !require_root("a_missing_source_is_a_clear_error") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("m")).unwrap();
    let out = Command::new(FSGATE)
        .args(["mount", "mirror"])
        .arg(tmp.path().join("nope"))
        .arg(tmp.path().join("m"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SOURCE") && err.contains("nope"), "{err}");
}
