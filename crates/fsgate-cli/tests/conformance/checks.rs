//! The POSIX checks: each runs in a fresh directory of one target and returns what it
//! observed (errno names, bytes, counts, which times changed) as lines, so the targets can
//! be compared line by line.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A check: observations of one behaviour in `dir`.
pub type Check = fn(&Path) -> Vec<String>;

/// Every check, in the order of the topics.
pub const CHECKS: &[(&str, Check)] = &[
    ("create_open_errors", create_open_errors),
    ("write_read_truncate_extend", write_read_truncate_extend),
    ("o_append", o_append),
    ("fsync", fsync),
    ("open_unlinked_file", open_unlinked_file),
    ("link_counts", link_counts),
    ("rename_edge_cases", rename_edge_cases),
    ("directory_errors", directory_errors),
    ("symlinks", symlinks),
    ("xattrs", xattrs),
    ("times_per_operation", times_per_operation),
    ("permissions_for_other_users", permissions_for_other_users),
    ("sticky_directory", sticky_directory),
    ("setgid_inheritance", setgid_inheritance),
];

/// `ok` or the errno's name.
fn e<T>(r: io::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(err) => errno_name(err.raw_os_error().unwrap_or(0)),
    }
}

fn errno_name(n: i32) -> String {
    let known = [
        (libc::EACCES, "EACCES"),
        (libc::EPERM, "EPERM"),
        (libc::ENOENT, "ENOENT"),
        (libc::EEXIST, "EEXIST"),
        (libc::ENOTEMPTY, "ENOTEMPTY"),
        (libc::EISDIR, "EISDIR"),
        (libc::ENOTDIR, "ENOTDIR"),
        (libc::EINVAL, "EINVAL"),
        (libc::ENODATA, "ENODATA"),
        (libc::EBUSY, "EBUSY"),
        (libc::EOPNOTSUPP, "EOPNOTSUPP"),
        (libc::ELOOP, "ELOOP"),
        (libc::EBADF, "EBADF"),
    ];
    known
        .iter()
        .find(|(k, _)| *k == n)
        .map_or_else(|| format!("errno {n}"), |(_, s)| s.to_string())
}

fn c(path: &Path) -> CString {
    CString::new(path.as_os_str().as_bytes()).unwrap()
}

fn rename2(from: &Path, to: &Path, flags: u32) -> io::Result<()> {
    let (f, t) = (c(from), c(to));
    // SAFETY: both paths are NUL-terminated.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn create_open_errors(d: &Path) -> Vec<String> {
    let f = d.join("f");
    let mut out = vec![format!(
        "open missing: {}",
        e(File::open(d.join("missing")))
    )];
    out.push(format!(
        "create_new: {}",
        e(OpenOptions::new().write(true).create_new(true).open(&f))
    ));
    out.push(format!(
        "create_new again: {}",
        e(OpenOptions::new().write(true).create_new(true).open(&f))
    ));
    fs::write(&f, b"0123456789").unwrap();
    drop(
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&f)
            .unwrap(),
    );
    out.push(format!(
        "after O_TRUNC size {}",
        fs::metadata(&f).unwrap().len()
    ));
    out.push(format!(
        "open file as directory: {}",
        e(File::open(f.join("x")))
    ));
    out.push(format!(
        "O_DIRECTORY on a file: {}",
        e(OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&f))
    ));
    out
}

fn write_read_truncate_extend(d: &Path) -> Vec<String> {
    let f = d.join("f");
    fs::write(&f, b"hello, world").unwrap();
    let mut out = vec![format!(
        "read {:?}",
        String::from_utf8(fs::read(&f).unwrap())
    )];
    let file = OpenOptions::new().read(true).write(true).open(&f).unwrap();
    file.set_len(5).unwrap();
    out.push(format!("cut {:?}", fs::read(&f).unwrap()));
    file.set_len(8).unwrap();
    out.push(format!("extended {:?}", fs::read(&f).unwrap()));
    file.write_all_at(b"Z", 20).unwrap();
    out.push(format!(
        "write past end: size {}",
        fs::metadata(&f).unwrap().len()
    ));
    let mut all = Vec::new();
    File::open(&f).unwrap().read_to_end(&mut all).unwrap();
    out.push(format!(
        "hole reads zeros {}",
        all[8..20].iter().all(|b| *b == 0)
    ));
    let mut buf = [0u8; 4];
    out.push(format!(
        "read at end: {:?}",
        file.read_at(&mut buf, 21).map_err(|_| ())
    ));
    out
}

fn o_append(d: &Path) -> Vec<String> {
    let f = d.join("f");
    fs::write(&f, b"start|").unwrap();
    let mut a = OpenOptions::new().append(true).open(&f).unwrap();
    let mut b = OpenOptions::new().append(true).open(&f).unwrap();
    a.write_all(b"a1|").unwrap();
    b.write_all(b"b1|").unwrap();
    a.write_all(b"a2|").unwrap();
    drop((a, b));
    vec![String::from_utf8(fs::read(&f).unwrap()).unwrap()]
}

fn fsync(d: &Path) -> Vec<String> {
    let f = d.join("f");
    let mut file = File::create(&f).unwrap();
    file.write_all(&[1u8; 100_000]).unwrap();
    vec![
        format!("fsync file: {}", e(file.sync_all())),
        format!("fdatasync file: {}", e(file.sync_data())),
        format!(
            "fsync directory: {}",
            e(File::open(d).and_then(|x| x.sync_all()))
        ),
        format!("size {}", fs::metadata(&f).unwrap().len()),
    ]
}

fn open_unlinked_file(d: &Path) -> Vec<String> {
    let f = d.join("f");
    fs::write(&f, b"kept").unwrap();
    let file = OpenOptions::new().read(true).write(true).open(&f).unwrap();
    fs::remove_file(&f).unwrap();
    let mut out = vec![format!("name after unlink: {}", e(fs::metadata(&f)))];
    file.write_all_at(b"KEPT+more", 0).unwrap();
    let mut buf = vec![0u8; 9];
    file.read_exact_at(&mut buf, 0).unwrap();
    out.push(format!(
        "data through the descriptor {:?}",
        String::from_utf8(buf)
    ));
    out.push(format!("fstat nlink {}", file.metadata().unwrap().nlink()));
    out.push(format!("listing {:?}", names(d)));
    out
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|x| x.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn link_counts(d: &Path) -> Vec<String> {
    let (a, b) = (d.join("a"), d.join("b"));
    fs::write(&a, b"x").unwrap();
    let n = |p: &Path| fs::symlink_metadata(p).map(|m| m.nlink()).unwrap_or(0);
    let mut out = vec![format!("file {}", n(&a))];
    fs::hard_link(&a, &b).unwrap();
    out.push(format!("after link {} {}", n(&a), n(&b)));
    out.push(format!(
        "same inode {}",
        fs::metadata(&a).unwrap().ino() == fs::metadata(&b).unwrap().ino()
    ));
    fs::write(&b, b"shared").unwrap();
    out.push(format!("data shared {:?}", fs::read(&a).unwrap()));
    fs::remove_file(&a).unwrap();
    out.push(format!("after unlink {}", n(&b)));
    out.push(format!(
        "link to a directory: {}",
        e(fs::hard_link(d, d.join("dl")))
    ));
    let sub = d.join("s");
    fs::create_dir(&sub).unwrap();
    out.push(format!("empty directory {}", n(&sub)));
    fs::create_dir(sub.join("t")).unwrap();
    fs::create_dir(sub.join("u")).unwrap();
    out.push(format!("directory with two subdirectories {}", n(&sub)));
    fs::remove_dir(sub.join("u")).unwrap();
    out.push(format!("after rmdir {}", n(&sub)));
    out
}

fn rename_edge_cases(d: &Path) -> Vec<String> {
    let p = |n: &str| d.join(n);
    for f in ["f", "g", "h"] {
        fs::write(p(f), f).unwrap();
    }
    for x in ["dir", "empty", "full", "full/inner"] {
        fs::create_dir(p(x)).unwrap();
    }
    let mut out = vec![format!("onto itself: {}", e(fs::rename(p("f"), p("f"))))];
    out.push(format!("still there {:?}", fs::read(p("f")).unwrap()));
    out.push(format!("replace file: {}", e(fs::rename(p("g"), p("f")))));
    out.push(format!("replaced content {:?}", fs::read(p("f")).unwrap()));
    out.push(format!(
        "file over directory: {}",
        e(fs::rename(p("f"), p("dir")))
    ));
    out.push(format!(
        "directory over file: {}",
        e(fs::rename(p("dir"), p("f")))
    ));
    out.push(format!(
        "directory over non-empty directory: {}",
        e(fs::rename(p("dir"), p("full")))
    ));
    out.push(format!(
        "directory over empty directory: {}",
        e(fs::rename(p("dir"), p("empty")))
    ));
    out.push(format!(
        "directory into its own subdirectory: {}",
        e(fs::rename(p("full"), p("full/inner/x")))
    ));
    out.push(format!(
        "RENAME_NOREPLACE onto existing: {}",
        e(rename2(&p("h"), &p("f"), libc::RENAME_NOREPLACE))
    ));
    out.push(format!(
        "RENAME_NOREPLACE to a new name: {}",
        e(rename2(&p("h"), &p("h2"), libc::RENAME_NOREPLACE))
    ));
    out.push(format!(
        "missing source: {}",
        e(fs::rename(p("nope"), p("x")))
    ));
    fs::create_dir(p("other")).unwrap();
    out.push(format!(
        "across directories: {}",
        e(fs::rename(p("h2"), p("other/moved")))
    ));
    fs::hard_link(p("f"), p("f-link")).unwrap();
    out.push(format!(
        "onto a hard link of itself: {}",
        e(fs::rename(p("f"), p("f-link")))
    ));
    out.push(format!("listing {:?}", names(d)));
    out.push(format!("other {:?}", names(&p("other"))));
    out
}

fn directory_errors(d: &Path) -> Vec<String> {
    let (sub, f) = (d.join("s"), d.join("f"));
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("x"), b"").unwrap();
    fs::write(&f, b"").unwrap();
    vec![
        format!("mkdir existing: {}", e(fs::create_dir(&sub))),
        format!("mkdir over file: {}", e(fs::create_dir(&f))),
        format!("rmdir non-empty: {}", e(fs::remove_dir(&sub))),
        format!("rmdir file: {}", e(fs::remove_dir(&f))),
        format!("unlink directory: {}", e(fs::remove_file(&sub))),
        format!("rmdir missing: {}", e(fs::remove_dir(d.join("m")))),
        format!("mkdir in missing: {}", e(fs::create_dir(d.join("m/n")))),
    ]
}

fn symlinks(d: &Path) -> Vec<String> {
    fs::write(d.join("target"), b"through").unwrap();
    std::os::unix::fs::symlink("target", d.join("l")).unwrap();
    std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
    let lm = fs::symlink_metadata(d.join("l")).unwrap();
    vec![
        format!("readlink {:?}", fs::read_link(d.join("l")).unwrap()),
        format!(
            "lstat is link {} size {}",
            lm.file_type().is_symlink(),
            lm.len()
        ),
        format!("read through {:?}", fs::read(d.join("l")).unwrap()),
        format!("dangling: {}", e(fs::read(d.join("dangling")))),
        format!(
            "symlink over existing: {}",
            e(std::os::unix::fs::symlink("x", d.join("target")))
        ),
    ]
}

fn xattrs(d: &Path) -> Vec<String> {
    let f = d.join("f");
    fs::write(&f, b"").unwrap();
    let path = c(&f);
    let name = CString::new("user.fsgate").unwrap();
    let set = |flags: i32, v: &[u8]| {
        // SAFETY: path and name are NUL-terminated; `v` is readable for its length.
        let rc = unsafe {
            libc::setxattr(
                path.as_ptr(),
                name.as_ptr(),
                v.as_ptr().cast(),
                v.len(),
                flags,
            )
        };
        e(if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        })
    };
    let get = || {
        let mut buf = [0u8; 64];
        // SAFETY: `buf` is writable for its length.
        let n = unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n < 0 {
            errno_name(io::Error::last_os_error().raw_os_error().unwrap_or(0))
        } else {
            String::from_utf8_lossy(&buf[..n as usize]).into_owned()
        }
    };
    let mut out = vec![format!("get missing: {}", get())];
    out.push(format!(
        "replace missing: {}",
        set(libc::XATTR_REPLACE, b"v")
    ));
    out.push(format!("create: {}", set(libc::XATTR_CREATE, b"one")));
    out.push(format!("create again: {}", set(libc::XATTR_CREATE, b"two")));
    out.push(format!("replace: {}", set(libc::XATTR_REPLACE, b"three")));
    out.push(format!("get: {}", get()));
    // SAFETY: path and name are NUL-terminated.
    let rc = unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) };
    out.push(format!("remove: {}", rc == 0));
    out.push(format!("get removed: {}", get()));
    out
}

fn pause() {
    std::thread::sleep(Duration::from_millis(30));
}

/// Which of atime, mtime, ctime of `p` changed across `op`.
fn times(p: &Path, op: impl FnOnce()) -> String {
    let before = fs::symlink_metadata(p).unwrap();
    pause();
    op();
    let after = fs::symlink_metadata(p).unwrap();
    let t = |m: &fs::Metadata| {
        (
            (m.atime(), m.atime_nsec()),
            (m.mtime(), m.mtime_nsec()),
            (m.ctime(), m.ctime_nsec()),
        )
    };
    let (b, a) = (t(&before), t(&after));
    let mut changed = Vec::new();
    if a.0 != b.0 {
        changed.push("atime");
    }
    if a.1 != b.1 {
        changed.push("mtime");
    }
    if a.2 != b.2 {
        changed.push("ctime");
    }
    changed.join("+")
}

fn times_per_operation(d: &Path) -> Vec<String> {
    let f = d.join("f");
    fs::write(&f, b"data").unwrap();
    let mut out = Vec::new();
    out.push(format!(
        "dir on create: {}",
        times(d, || fs::write(d.join("g"), b"").unwrap())
    ));
    out.push(format!(
        "dir on unlink: {}",
        times(d, || fs::remove_file(d.join("g")).unwrap())
    ));
    out.push(format!(
        "dir on mkdir: {}",
        times(d, || fs::create_dir(d.join("s")).unwrap())
    ));
    out.push(format!(
        "dir on rename within: {}",
        times(d, || fs::rename(d.join("s"), d.join("t")).unwrap())
    ));
    out.push(format!(
        "file on write: {}",
        times(&f, || OpenOptions::new()
            .write(true)
            .open(&f)
            .unwrap()
            .write_all_at(b"D", 0)
            .unwrap())
    ));
    out.push(format!(
        "file on truncate: {}",
        times(&f, || OpenOptions::new()
            .write(true)
            .open(&f)
            .unwrap()
            .set_len(2)
            .unwrap())
    ));
    out.push(format!(
        "file on chmod: {}",
        times(&f, || fs::set_permissions(
            &f,
            fs::Permissions::from_mode(0o600)
        )
        .unwrap())
    ));
    out.push(format!(
        "file on link: {}",
        times(&f, || fs::hard_link(&f, d.join("f2")).unwrap())
    ));
    out.push(format!(
        "file on rename: {}",
        times(&f, || {
            fs::rename(&f, d.join("f3")).unwrap();
            fs::rename(d.join("f3"), &f).unwrap();
        })
    ));
    out.push(format!(
        "file on open and close: {}",
        times(&f, || drop(File::open(&f).unwrap()))
    ));
    let explicit = fs::FileTimes::new()
        .set_accessed(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_007));
    File::options()
        .write(true)
        .open(&f)
        .unwrap()
        .set_times(explicit)
        .unwrap();
    let m = fs::metadata(&f).unwrap();
    out.push(format!("utimensat exact: {} {}", m.atime(), m.mtime()));
    // relatime: a read updates atime when it is not newer than mtime (it is not, after
    // utimensat above), then not again until mtime moves.
    out.push(format!(
        "file on first read: {}",
        times(&f, || drop(fs::read(&f).unwrap()))
    ));
    out.push(format!(
        "file on second read: {}",
        times(&f, || drop(fs::read(&f).unwrap()))
    ));
    out
}

/// Runs a Python script as `uid`/`gid` in `dir` (std drops root's supplementary groups); returns its
/// stdout. `t(label, f)` in the script prints `label ok` or `label ERRNO`.
fn as_user(uid: u32, gid: u32, dir: &Path, script: &str) -> Vec<String> {
    use std::os::unix::process::CommandExt;
    let prelude = "import errno, os, sys\n\
        def t(label, f):\n    \
            try:\n        f(); print(label, 'ok')\n    \
            except OSError as e:\n        print(label, errno.errorcode[e.errno])\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .current_dir(dir)
        .uid(uid)
        .gid(gid)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python as {uid}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn permissions_for_other_users(d: &Path) -> Vec<String> {
    fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    fs::write(d.join("root-file"), b"r").unwrap();
    fs::set_permissions(d.join("root-file"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(d.join("secret"), b"s").unwrap();
    fs::set_permissions(d.join("secret"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::create_dir(d.join("closed")).unwrap();
    fs::set_permissions(d.join("closed"), fs::Permissions::from_mode(0o700)).unwrap();
    let mut out = as_user(
        1000,
        1000,
        d,
        "t('read 0644', lambda: open('root-file').read())\n\
         t('write 0644', lambda: open('root-file', 'a').write('x'))\n\
         t('read 0600', lambda: open('secret').read())\n\
         t('list 0700 dir', lambda: os.listdir('closed'))\n\
         t('create in 0700 dir', lambda: open('closed/x', 'w'))\n\
         t('chmod not owner', lambda: os.chmod('root-file', 0o666))\n\
         t('chown to self', lambda: os.chown('root-file', 1000, 1000))\n\
         t('create own', lambda: open('mine', 'w').write('m'))\n\
         t('chmod own', lambda: os.chmod('mine', 0o640))\n\
         t('chgrp own to foreign group', lambda: os.chown('mine', -1, 0))\n\
         t('utime not owner', lambda: os.utime('root-file', (1, 1)))\n\
         t('utime now not owner', lambda: os.utime('root-file'))\n",
    );
    let m = fs::metadata(d.join("mine")).unwrap();
    out.push(format!(
        "own file: uid {} gid {} mode {:o}",
        m.uid(),
        m.gid(),
        m.mode() & 0o7777
    ));
    out
}

fn sticky_directory(d: &Path) -> Vec<String> {
    fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    let s = d.join("sticky");
    fs::create_dir(&s).unwrap();
    fs::set_permissions(&s, fs::Permissions::from_mode(0o1777)).unwrap();
    let mut out = vec![format!(
        "mode {:o}",
        fs::metadata(&s).unwrap().mode() & 0o7777
    )];
    out.extend(as_user(
        1000,
        1000,
        &s,
        "t('create', lambda: open('a', 'w').write('a'))\n\
         t('create second', lambda: open('b', 'w').write('b'))\n",
    ));
    out.extend(as_user(
        1001,
        1001,
        &s,
        "t('unlink other user file', lambda: os.unlink('a'))\n\
         t('rename other user file', lambda: os.rename('a', 'c'))\n\
         t('create own', lambda: open('z', 'w'))\n\
         t('unlink own', lambda: os.unlink('z'))\n",
    ));
    out.extend(as_user(
        1000,
        1000,
        &s,
        "t('owner unlinks', lambda: os.unlink('a'))\n",
    ));
    out.push(format!("left {:?}", names(&s)));
    out
}

fn setgid_inheritance(d: &Path) -> Vec<String> {
    fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
    let g = d.join("shared");
    fs::create_dir(&g).unwrap();
    std::os::unix::fs::chown(&g, Some(0), Some(4321)).unwrap();
    fs::set_permissions(&g, fs::Permissions::from_mode(0o2777)).unwrap();
    let mut out = as_user(
        1000,
        1000,
        &g,
        "t('create file', lambda: open('f', 'w'))\n\
         t('mkdir', lambda: os.mkdir('sub', 0o755))\n",
    );
    for name in ["f", "sub"] {
        let m = fs::metadata(g.join(name)).unwrap();
        out.push(format!(
            "{name}: uid {} gid {} mode {:o}",
            m.uid(),
            m.gid(),
            m.mode() & 0o7777
        ));
    }
    let plain = d.join("plain");
    fs::create_dir(&plain).unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o777)).unwrap();
    out.extend(as_user(
        1000,
        1000,
        &plain,
        "t('create', lambda: open('f', 'w'))\n",
    ));
    let m = fs::metadata(plain.join("f")).unwrap();
    out.push(format!("without setgid: gid {}", m.gid()));
    out
}
