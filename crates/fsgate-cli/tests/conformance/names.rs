//! Length limits: a name of 255 bytes works and one of 256 fails with `ENAMETOOLONG` in
//! every call that takes a name; a path of about 4,000 bytes inside the drive works, one of
//! 4,096 fails.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{e, listing};
use crate::sys;

pub fn name_length_limits(d: &Path) -> Vec<String> {
    let (longest, too_long) = ("n".repeat(255), "n".repeat(256));
    let (ok, bad) = (d.join(&longest), d.join(&too_long));
    let f = d.join("f");
    fs::write(&f, b"f").unwrap();
    let mut out = vec![format!(
        "statvfs f_namemax: {:?}",
        sys::name_max(d).map_err(|e| sys::error_name(&e))
    )];
    out.push(format!("create 255: {}", e(File::create(&ok))));
    out.push(format!("stat 255: {}", e(fs::symlink_metadata(&ok))));
    out.push(format!("listed 255: {}", listing(d).contains(&longest)));
    out.push(format!(
        "write and read 255: {}",
        e(fs::write(&ok, b"long").and_then(|()| fs::read(&ok)))
    ));
    out.push(format!(
        "rename 255 to 255: {}",
        e(fs::rename(&ok, d.join("m".repeat(255))))
    ));
    out.push(format!(
        "unlink 255: {}",
        e(fs::remove_file(d.join("m".repeat(255))))
    ));
    out.push(format!("mkdir 255: {}", e(fs::create_dir(&ok))));
    out.push(format!(
        "file in dir 255: {}",
        e(fs::write(ok.join(&longest), b"x"))
    ));
    out.push(format!(
        "unlink in dir 255: {}",
        e(fs::remove_file(ok.join(&longest)))
    ));
    out.push(format!("rmdir 255: {}", e(fs::remove_dir(&ok))));
    out.push(format!(
        "symlink 255: {}",
        e(std::os::unix::fs::symlink("f", &ok))
    ));
    out.push(format!(
        "read through symlink 255: {:?}",
        fs::read(&ok).map_err(|e| sys::error_name(&e))
    ));
    out.push(format!(
        "link 255: {}",
        e(fs::hard_link(&f, d.join("k".repeat(255))))
    ));
    out.push(format!(
        "mkfifo 255: {}",
        e(sys::mkfifo(&d.join("p".repeat(255)), 0o644))
    ));

    out.push(format!(
        "create 256: {}",
        e(OpenOptions::new().write(true).create_new(true).open(&bad))
    ));
    out.push(format!("mkdir 256: {}", e(fs::create_dir(&bad))));
    out.push(format!("stat 256: {}", e(fs::symlink_metadata(&bad))));
    out.push(format!(
        "chmod 256: {}",
        e(fs::set_permissions(&bad, fs::Permissions::from_mode(0o600)))
    ));
    out.push(format!(
        "chown 256: {}",
        e(std::os::unix::fs::chown(&bad, Some(0), Some(0)))
    ));
    out.push(format!("truncate 256: {}", e(sys::truncate(&bad, 0))));
    out.push(format!("unlink 256: {}", e(fs::remove_file(&bad))));
    out.push(format!("rmdir 256: {}", e(fs::remove_dir(&bad))));
    out.push(format!(
        "rename from 256: {}",
        e(fs::rename(&bad, d.join("g")))
    ));
    out.push(format!("rename to 256: {}", e(fs::rename(&f, &bad))));
    out.push(format!(
        "symlink named 256: {}",
        e(std::os::unix::fs::symlink("f", &bad))
    ));
    out.push(format!("link to 256: {}", e(fs::hard_link(&f, &bad))));
    out.push(format!("mkfifo 256: {}", e(sys::mkfifo(&bad, 0o644))));
    let to_long = d.join("to-long");
    out.push(format!(
        "symlink whose target is a 256-byte name: {}",
        e(std::os::unix::fs::symlink(&too_long, &to_long))
    ));
    out.push(format!(
        "its readlink length: {:?}",
        fs::read_link(&to_long)
            .map(|t| t.as_os_str().len())
            .map_err(|e| sys::error_name(&e))
    ));
    out.push(format!("open through it: {}", e(File::open(&to_long))));
    out.push(format!(
        "name lengths left: {:?}",
        listing(d).iter().map(String::len).collect::<Vec<_>>()
    ));
    out
}

/// `count` nested directory names of 200 bytes each, numbered so they differ.
fn nested_components(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("{i:02}{}", "d".repeat(198)))
        .collect()
}

/// A path of exactly `len` bytes naming the same file as the relative path `rel`: `rel`
/// behind enough `./` (and one doubled slash when the padding is odd).
fn padded(rel: &str, len: usize) -> PathBuf {
    let pad = len - rel.len();
    let mut prefix = "./".repeat(pad / 2);
    if pad % 2 == 1 {
        prefix.insert(1, '/');
    }
    let p = format!("{prefix}{rel}");
    assert_eq!(p.len(), len);
    PathBuf::from(p)
}

/// A file about 3,970 bytes deep, under 19 directories of 200-byte names, made and used
/// with `*at` calls relative to the check's directory (its absolute path is longer than
/// `PATH_MAX`); paths of 4,095 bytes work and 4,096 fail with `ENAMETOOLONG`.
pub fn long_paths(d: &Path) -> Vec<String> {
    let top = File::open(d).unwrap();
    let components = nested_components(19);
    let mut out = Vec::new();
    let mut current: OwnedFd = top.as_fd().try_clone_to_owned().unwrap();
    let mut made = "ok".to_string();
    for (level, c) in components.iter().enumerate() {
        let step = sys::mkdirat(current.as_fd(), Path::new(c), 0o755).and_then(|()| {
            sys::openat(
                Some(current.as_fd()),
                Path::new(c),
                libc::O_DIRECTORY | libc::O_RDONLY,
                0,
            )
        });
        match step {
            Ok(fd) => current = fd,
            Err(err) => {
                made = format!("level {level}: {}", sys::error_name(&err));
                break;
            }
        }
    }
    out.push(format!("mkdirat 19 levels: {made}"));
    let dirs = components.join("/");
    let rel = format!("{dirs}/{}", "f".repeat(150));
    out.push(format!("relative path length: {}", rel.len()));
    let relp = Path::new(&rel);
    let at = Some(top.as_fd());
    match sys::openat(at, relp, libc::O_CREAT | libc::O_EXCL | libc::O_RDWR, 0o644) {
        Ok(fd) => {
            let mut file = File::from(fd);
            out.push("create deep: ok".into());
            out.push(format!("write deep: {}", e(file.write_all(b"deep data"))));
        }
        Err(err) => out.push(format!("create deep: {}", sys::error_name(&err))),
    }
    out.push(format!(
        "read deep: {}",
        match sys::openat(at, relp, libc::O_RDONLY, 0) {
            Ok(fd) => {
                let mut s = String::new();
                e(File::from(fd).read_to_string(&mut s).map(|_| ())) + &format!(" {s:?}")
            }
            Err(err) => sys::error_name(&err),
        }
    ));
    out.push(format!(
        "stat deep: {}",
        sys::lstatat(at, relp)
            .map_or_else(|e| sys::error_name(&e), |st| format!("size {}", st.st_size))
    ));
    out.push(format!(
        "stat from the deepest directory: {}",
        e(sys::lstatat(
            Some(current.as_fd()),
            Path::new(&"f".repeat(150))
        ))
    ));
    let exact = padded(&rel, 4095);
    out.push(format!(
        "stat through a 4095-byte path: {}",
        e(sys::lstatat(at, &exact))
    ));
    let over = padded(&rel, 4096);
    out.push(format!(
        "stat through a 4096-byte path: {}",
        e(sys::lstatat(at, &over))
    ));
    let over_new = padded(&format!("{dirs}/new"), 4096);
    out.push(format!(
        "create through a 4096-byte path: {}",
        e(sys::openat(
            at,
            &over_new,
            libc::O_CREAT | libc::O_WRONLY,
            0o644
        ))
    ));
    let mkdir_over = padded(&format!("{dirs}/new-dir"), 5000);
    out.push(format!(
        "mkdir through a 5000-byte path: {}",
        e(sys::mkdirat(top.as_fd(), &mkdir_over, 0o755))
    ));
    out.push(format!("unlink deep: {}", e(sys::unlinkat(at, relp, 0))));
    out.push(format!(
        "stat deep after unlink: {}",
        e(sys::lstatat(at, relp))
    ));
    out.push(format!(
        "rmdir deepest: {}",
        e(sys::unlinkat(at, Path::new(&dirs), libc::AT_REMOVEDIR))
    ));
    out
}

/// Names are bytes: names and link targets that are not UTF-8 go in and come back unchanged
/// through create, listing, `stat`, rename, `mkdir`, `symlink`/`readlink`, `link` and
/// extended attribute names.
pub fn byte_names(d: &Path) -> Vec<String> {
    use std::ffi::{CString, OsStr};
    use std::os::unix::ffi::OsStrExt;

    let name = |b: &[u8]| OsStr::from_bytes(b).to_owned();
    let listed = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|x| format!("{:?}", x.unwrap().file_name()))
            .collect();
        v.sort();
        v
    };
    let (file, dir, moved) = (
        d.join(name(b"caf\xe9")),
        d.join(name(b"d\xff")),
        d.join(name(b"\x80moved")),
    );
    let mut out = vec![format!("create: {}", e(fs::write(&file, b"bytes")))];
    out.push(format!("listed: {:?}", listed(d)));
    out.push(format!(
        "stat size: {:?}",
        fs::metadata(&file)
            .map(|m| m.len())
            .map_err(|e| sys::error_name(&e))
    ));
    out.push(format!(
        "read: {:?}",
        fs::read(&file).map_err(|e| sys::error_name(&e))
    ));
    out.push(format!("rename: {}", e(fs::rename(&file, &moved))));
    out.push(format!("mkdir: {}", e(fs::create_dir(&dir))));
    let inner = dir.join(name(b"\xfe\xfd"));
    out.push(format!("create inside: {}", e(fs::write(&inner, b"in"))));
    out.push(format!("listed inside: {:?}", listed(&dir)));
    let link = d.join(name(b"l\xe9"));
    out.push(format!(
        "symlink: {}",
        e(std::os::unix::fs::symlink(
            OsStr::from_bytes(b"t\xe9\xff"),
            &link
        ))
    ));
    out.push(format!(
        "readlink: {:?}",
        fs::read_link(&link).map_err(|e| sys::error_name(&e))
    ));
    out.push(format!(
        "hard link: {}",
        e(fs::hard_link(&moved, d.join(name(b"h\xe9"))))
    ));
    out.push(format!("listed at the end: {:?}", listed(d)));

    let path = sys::cstring(&moved);
    let attr = CString::new(&b"user.\xe9"[..]).unwrap();
    // SAFETY: path and attr are NUL-terminated; the value is readable for its length.
    let rc = unsafe { libc::setxattr(path.as_ptr(), attr.as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    out.push(format!(
        "setxattr: {}",
        if rc == 0 {
            "ok".into()
        } else {
            sys::error_name(&io::Error::last_os_error())
        }
    ));
    let mut names = [0u8; 256];
    // SAFETY: `names` is writable for its length.
    let n = unsafe { libc::listxattr(path.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    let listed_attrs: Vec<String> = if n < 0 {
        vec![sys::error_name(&io::Error::last_os_error())]
    } else {
        names[..n as usize]
            .split(|b| *b == 0)
            .filter(|n| n.starts_with(b"user."))
            .map(|n| format!("{:?}", OsStr::from_bytes(n)))
            .collect()
    };
    out.push(format!("listxattr: {listed_attrs:?}"));
    out
}
