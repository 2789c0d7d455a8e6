//! Opening, reading, writing, truncating and syncing files; extended attributes; which
//! times each operation changes, and `utimensat` by the owner.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{content, e, listing, times};
use crate::sys::{self, SetTime};

pub fn create_open_errors(d: &Path) -> Vec<String> {
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

/// Open flags as root: symlinks under `O_EXCL`, `O_NOFOLLOW` and `O_DIRECTORY`; directories
/// opened for writing; `O_TRUNC` on a read-only open.
pub fn open_flags(d: &Path) -> Vec<String> {
    let p = |n: &str| d.join(n);
    fs::write(p("file"), b"0123456789").unwrap();
    fs::create_dir(p("dir")).unwrap();
    std::os::unix::fs::symlink("nowhere", p("dangling")).unwrap();
    std::os::unix::fs::symlink("file", p("to-file")).unwrap();
    std::os::unix::fs::symlink("dir", p("to-dir")).unwrap();
    let open = |n: &str, flags: i32| e(sys::open(&p(n), flags, 0o644));
    let mut out = vec![format!(
        "O_CREAT|O_EXCL on a dangling symlink: {}",
        open("dangling", libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY)
    )];
    out.push(format!(
        "dangling target created by O_EXCL: {}",
        p("nowhere").exists()
    ));
    out.push(format!(
        "O_CREAT on a dangling symlink: {}",
        open("dangling", libc::O_CREAT | libc::O_WRONLY)
    ));
    out.push(format!(
        "dangling target created by O_CREAT: {}",
        e(fs::symlink_metadata(p("nowhere")))
    ));
    out.push(format!(
        "O_NOFOLLOW on a symlink: {}",
        open("to-file", libc::O_NOFOLLOW | libc::O_RDONLY)
    ));
    out.push(format!(
        "O_NOFOLLOW|O_PATH on a symlink: {}",
        open("to-file", libc::O_NOFOLLOW | libc::O_PATH)
    ));
    out.push(format!(
        "O_NOFOLLOW on a file: {}",
        open("file", libc::O_NOFOLLOW | libc::O_RDONLY)
    ));
    out.push(format!(
        "O_DIRECTORY on a file: {}",
        open("file", libc::O_DIRECTORY | libc::O_RDONLY)
    ));
    out.push(format!(
        "O_DIRECTORY on a symlink to a file: {}",
        open("to-file", libc::O_DIRECTORY | libc::O_RDONLY)
    ));
    out.push(format!(
        "O_DIRECTORY on a symlink to a directory: {}",
        open("to-dir", libc::O_DIRECTORY | libc::O_RDONLY)
    ));
    out.push(format!(
        "O_DIRECTORY|O_NOFOLLOW on a symlink to a directory: {}",
        open(
            "to-dir",
            libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_RDONLY
        )
    ));
    out.push(format!(
        "O_WRONLY on a directory: {}",
        open("dir", libc::O_WRONLY)
    ));
    out.push(format!(
        "O_CREAT on a directory's name: {}",
        open("dir", libc::O_CREAT | libc::O_RDONLY)
    ));
    out.push(format!(
        "O_CREAT|O_EXCL on a directory's name: {}",
        open("dir", libc::O_CREAT | libc::O_EXCL | libc::O_RDONLY)
    ));
    out.push(format!(
        "O_CREAT|O_DIRECTORY on a new name: {}",
        open(
            "new-dir",
            libc::O_CREAT | libc::O_DIRECTORY | libc::O_RDONLY
        )
    ));
    out.push(format!(
        "O_RDONLY|O_TRUNC: {}",
        open("file", libc::O_RDONLY | libc::O_TRUNC)
    ));
    out.push(format!(
        "size after O_RDONLY|O_TRUNC: {}",
        content(&p("file"))
    ));
    out.push(format!("listing: {:?}", listing(d)));
    out
}

pub fn write_read_truncate_extend(d: &Path) -> Vec<String> {
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

pub fn o_append(d: &Path) -> Vec<String> {
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

pub fn fsync(d: &Path) -> Vec<String> {
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
        format!(
            "fdatasync directory: {}",
            e(File::open(d).and_then(|x| x.sync_data()))
        ),
        format!("size {}", fs::metadata(&f).unwrap().len()),
    ]
}

pub fn open_unlinked_file(d: &Path) -> Vec<String> {
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
    out.push(format!("listing {:?}", listing(d)));
    // Through the descriptor alone, everything still works on the nameless file, and
    // nothing reaches a new file given its old name.
    fs::write(&f, b"newcomer").unwrap();
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    out.push(format!("fsync {}", e(file.sync_all())));
    out.push(format!(
        "fchmod {}",
        e(file.set_permissions(fs::Permissions::from_mode(0o600)))
    ));
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    out.push(format!(
        "futimens {}",
        e(file.set_times(fs::FileTimes::new().set_modified(old)))
    ));
    out.push(format!("fstat mtime {}", file.metadata().unwrap().mtime()));
    out.push(format!("ftruncate {}", e(file.set_len(20))));
    out.push(format!(
        "fallocate {}",
        e(sys::fallocate(std::os::fd::AsFd::as_fd(&file), 0, 0, 30))
    ));
    out.push(format!("fsync again {}", e(file.sync_all())));
    let meta = file.metadata().unwrap();
    out.push(format!(
        "fstat mode {:o} size {}",
        meta.mode() & 0o7777,
        meta.len()
    ));
    sys::drop_cached_pages(std::os::fd::AsFd::as_fd(&file)).unwrap();
    let mut back = vec![0u8; 30];
    file.read_exact_at(&mut back, 0).unwrap();
    out.push(format!("data past the cache {back:?}"));
    let newcomer = fs::metadata(&f).unwrap();
    out.push(format!(
        "the new file under the old name: mode {:o} size {}",
        newcomer.mode() & 0o7777,
        newcomer.len()
    ));
    out
}

/// `O_TMPFILE`: a file with no name, written, then given one with `linkat`.
pub fn o_tmpfile(d: &Path) -> Vec<String> {
    let fd = match sys::open(d, libc::O_TMPFILE | libc::O_RDWR, 0o600) {
        Ok(fd) => fd,
        Err(err) => return vec![format!("open O_TMPFILE: {}", sys::error_name(&err))],
    };
    let mut out = vec!["open O_TMPFILE: ok".to_string()];
    let file = File::from(fd);
    file.write_all_at(b"nameless", 0).unwrap();
    out.push(format!("listing while nameless {:?}", listing(d)));
    // `linkat(AT_FDCWD, "/proc/self/fd/N", …, AT_SYMLINK_FOLLOW)`, as open(2) shows.
    let from = sys::cstring(Path::new(&format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    )));
    let to = sys::cstring(&d.join("named"));
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    let linked = if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    };
    out.push(format!("linkat {}", e(linked)));
    out.push(format!("content {}", content(&d.join("named"))));
    out
}

pub fn xattrs(d: &Path) -> Vec<String> {
    let f = d.join("f");
    fs::write(&f, b"").unwrap();
    let path = sys::cstring(&f);
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
            sys::error_name(&io::Error::last_os_error())
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

pub fn times_per_operation(d: &Path) -> Vec<String> {
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
        .set_accessed(UNIX_EPOCH + Duration::from_secs(1_000_000_000))
        .set_modified(UNIX_EPOCH + Duration::from_secs(1_000_000_007));
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

/// `atime` and `mtime` of `p` to the nanosecond, or the errno of `lstat`.
fn exact_times(p: &Path) -> String {
    match fs::symlink_metadata(p) {
        Ok(m) => format!(
            "atime {}.{:09} mtime {}.{:09}",
            m.atime(),
            m.atime_nsec(),
            m.mtime(),
            m.mtime_nsec()
        ),
        Err(err) => sys::error_name(&err),
    }
}

/// Whether both of `p`'s times are within a minute of now (set by `UTIME_NOW`).
fn times_are_recent(p: &Path) -> String {
    let m = fs::symlink_metadata(p).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    format!(
        "atime recent {} mtime recent {}",
        (now - m.atime()).abs() < 60,
        (now - m.mtime()).abs() < 60
    )
}

/// `utimensat` by the owner: exact nanoseconds, `UTIME_OMIT` for one or both times,
/// `UTIME_NOW`, through a descriptor (`futimens`), and on a symlink itself.
pub fn utimensat_by_owner(d: &Path) -> Vec<String> {
    let f = d.join("f");
    fs::write(&f, b"data").unwrap();
    let set = |a, m| e(sys::utimes_nofollow(&f, a, m));
    let mut out = vec![format!(
        "explicit: {}",
        set(
            SetTime::At(1_000_000_000, 123_456_789),
            SetTime::At(1_000_000_007, 999_999_999)
        )
    )];
    out.push(format!("after explicit: {}", exact_times(&f)));
    out.push(format!(
        "atime only, mtime UTIME_OMIT: {}",
        set(SetTime::At(1_200_000_000, 5), SetTime::Omit)
    ));
    out.push(format!("after atime only: {}", exact_times(&f)));
    out.push(format!(
        "mtime only, atime UTIME_OMIT: {}",
        set(SetTime::Omit, SetTime::At(1_300_000_000, 7))
    ));
    out.push(format!("after mtime only: {}", exact_times(&f)));
    out.push(format!(
        "both UTIME_OMIT: {}",
        set(SetTime::Omit, SetTime::Omit)
    ));
    out.push(format!("after both UTIME_OMIT: {}", exact_times(&f)));
    out.push(format!(
        "both UTIME_NOW: {}",
        set(SetTime::Now, SetTime::Now)
    ));
    out.push(format!("after both UTIME_NOW: {}", times_are_recent(&f)));
    let file = File::options().write(true).open(&f).unwrap();
    let through_descriptor = fs::FileTimes::new()
        .set_accessed(UNIX_EPOCH + Duration::new(1_400_000_000, 11))
        .set_modified(UNIX_EPOCH + Duration::new(1_400_000_001, 13));
    out.push(format!(
        "futimens: {}",
        e(file.set_times(through_descriptor))
    ));
    out.push(format!("after futimens: {}", exact_times(&f)));
    let link = d.join("link");
    std::os::unix::fs::symlink("f", &link).unwrap();
    out.push(format!(
        "symlink itself: {}",
        e(sys::utimes_nofollow(
            &link,
            SetTime::At(1_500_000_000, 1),
            SetTime::At(1_500_000_002, 3)
        ))
    ));
    out.push(format!("symlink after: {}", exact_times(&link)));
    out.push(format!("its target after: {}", exact_times(&f)));
    out
}
