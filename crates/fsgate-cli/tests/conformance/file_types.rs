//! Every file type — regular file, directory, symlink, FIFO, Unix socket, character and
//! block device — through every metadata call, and the I/O that goes through the special
//! files: a FIFO's pipe, a socket's connection, `/dev/null`'s semantics.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::Duration;

use super::{e, listing};
use crate::sys::{self, SetTime};

/// Every kind of file, in the order the checks report them.
const KINDS: [&str; 7] = ["file", "dir", "symlink", "fifo", "socket", "char", "block"];

/// The name of the `S_IFMT` bits of `mode`.
fn type_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFREG => "file",
        libc::S_IFDIR => "dir",
        libc::S_IFLNK => "symlink",
        libc::S_IFIFO => "fifo",
        libc::S_IFSOCK => "socket",
        libc::S_IFCHR => "char",
        libc::S_IFBLK => "block",
        _ => "unknown",
    }
}

/// The kind `read_dir` reports for an entry (`d_type`, or `lstat` where that is unknown).
fn entry_type(t: fs::FileType) -> &'static str {
    if t.is_file() {
        "file"
    } else if t.is_dir() {
        "dir"
    } else if t.is_symlink() {
        "symlink"
    } else if t.is_fifo() {
        "fifo"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() {
        "char"
    } else if t.is_block_device() {
        "block"
    } else {
        "unknown"
    }
}

/// Type, permission bits, link count, device numbers (devices only) and size (files and
/// symlinks only) of `p` itself.
fn describe(p: &Path) -> String {
    let m = match fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(err) => return sys::error_name(&err),
    };
    let kind = type_name(m.mode());
    let mut s = format!(
        "type {kind} mode {:o} nlink {}",
        m.mode() & 0o7777,
        m.nlink()
    );
    if kind == "char" || kind == "block" {
        s += &format!(" rdev {}:{}", libc::major(m.rdev()), libc::minor(m.rdev()));
    }
    if kind == "file" || kind == "symlink" {
        s += &format!(" size {}", m.len());
    }
    s
}

/// Makes a file of `kind` at `p`; a socket stays bound while the returned listener lives.
fn make(kind: &str, p: &Path) -> (io::Result<()>, Option<UnixListener>) {
    let made = match kind {
        "file" => OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(p)
            .map(drop),
        "dir" => fs::DirBuilder::new().mode(0o755).create(p),
        "symlink" => std::os::unix::fs::symlink("file", p),
        "fifo" => sys::mkfifo(p, 0o644),
        "socket" => {
            return UnixListener::bind(p).map_or_else(|e| (Err(e), None), |l| (Ok(()), Some(l)))
        }
        "char" => sys::mknod(p, libc::S_IFCHR | 0o600, 1, 3),
        "block" => sys::mknod(p, libc::S_IFBLK | 0o600, 7, 0),
        _ => unreachable!("no such kind {kind}"),
    };
    (made, None)
}

/// Creation, `lstat`, `chmod`, `lchown`, `utimensat`, `link`, `readdir`'s type, `rename`
/// and `unlink`/`rmdir` of every kind of file.
pub fn file_types_metadata(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut listeners = Vec::new();
    for kind in KINDS {
        let (made, listener) = make(kind, &d.join(kind));
        listeners.extend(listener);
        out.push(format!("{kind} create: {}", e(made)));
    }
    for kind in KINDS {
        let p = d.join(kind);
        out.push(format!("{kind} lstat: {}", describe(&p)));
        let chmod = if kind == "symlink" {
            sys::chmod_nofollow(&p, 0o640)
        } else {
            fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o640))
        };
        out.push(format!(
            "{kind} chmod 0640: {} then {}",
            e(chmod),
            describe(&p)
        ));
        let chown = std::os::unix::fs::lchown(&p, Some(1000), Some(1001));
        let owner = fs::symlink_metadata(&p).map_or_else(
            |e| sys::error_name(&e),
            |m| format!("{}:{}", m.uid(), m.gid()),
        );
        out.push(format!(
            "{kind} lchown 1000:1001: {} then {owner}",
            e(chown)
        ));
        let utimes = sys::utimes_nofollow(
            &p,
            SetTime::At(1_000_000_000, 5),
            SetTime::At(1_000_000_007, 9),
        );
        let set = fs::symlink_metadata(&p).map_or_else(
            |e| sys::error_name(&e),
            |m| {
                format!(
                    "atime {}.{:09} mtime {}.{:09}",
                    m.atime(),
                    m.atime_nsec(),
                    m.mtime(),
                    m.mtime_nsec()
                )
            },
        );
        out.push(format!("{kind} utimensat: {} then {set}", e(utimes)));
        let link = d.join(format!("{kind}-link"));
        out.push(format!(
            "{kind} link: {} then {} / {}",
            e(fs::hard_link(&p, &link)),
            describe(&p),
            describe(&link)
        ));
    }
    let mut types: Vec<String> = fs::read_dir(d)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let kind = entry
                .file_type()
                .map_or_else(|e| sys::error_name(&e), |t| entry_type(t).into());
            format!("{}={kind}", entry.file_name().to_string_lossy())
        })
        .collect();
    types.sort();
    out.push(format!("readdir types: {types:?}"));
    for kind in KINDS {
        let (p, q) = (d.join(kind), d.join(format!("{kind}-renamed")));
        out.push(format!(
            "{kind} rename: {} then old {} new {}",
            e(fs::rename(&p, &q)),
            describe(&p),
            describe(&q)
        ));
    }
    for kind in KINDS {
        let (q, link) = (
            d.join(format!("{kind}-renamed")),
            d.join(format!("{kind}-link")),
        );
        let removed = if kind == "dir" {
            fs::remove_dir(&q)
        } else {
            fs::remove_file(&q)
        };
        out.push(format!(
            "{kind} unlink: {} then {} / link {}",
            e(removed),
            describe(&q),
            describe(&link)
        ));
    }
    drop(listeners);
    out.push(format!("left: {:?}", listing(d)));
    out
}

/// `p`'s size, or the errno of `lstat`.
fn size(p: &Path) -> String {
    fs::symlink_metadata(p).map_or_else(|e| sys::error_name(&e), |m| m.len().to_string())
}

/// Reads up to 64 bytes from `r` as text, or the errno.
fn read_text(mut r: impl Read) -> String {
    let mut buf = [0u8; 64];
    match r.read(&mut buf) {
        Ok(n) => format!("{:?}", String::from_utf8_lossy(&buf[..n])),
        Err(err) => sys::error_name(&err),
    }
}

/// Writes `bytes` to `w` once: the count written, or the errno.
fn write_once(mut w: impl Write, bytes: &[u8]) -> String {
    match w.write(bytes) {
        Ok(n) => format!("{n} bytes"),
        Err(err) => sys::error_name(&err),
    }
}

/// Data through the special files: a FIFO opened read+write and as two ends, a socket bound
/// in the directory (also after a rename), and a character device node with `/dev/null`'s
/// numbers.
pub fn file_types_io(d: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let fifo = d.join("fifo");
    out.push(format!("mkfifo: {}", e(sys::mkfifo(&fifo, 0o666))));
    let nonblocking = |flags: i32| sys::open(&fifo, flags | libc::O_NONBLOCK, 0).map(File::from);
    match nonblocking(libc::O_RDWR) {
        Ok(both) => {
            out.push(format!(
                "fifo O_RDWR write: {}",
                write_once(&both, b"through the fifo")
            ));
            out.push(format!("fifo O_RDWR read: {}", read_text(&both)));
        }
        Err(err) => out.push(format!("fifo O_RDWR: {}", sys::error_name(&err))),
    }
    out.push(format!(
        "fifo O_WRONLY without a reader: {}",
        e(nonblocking(libc::O_WRONLY))
    ));
    match nonblocking(libc::O_RDONLY) {
        Ok(reader) => {
            out.push(format!("fifo empty read: {}", read_text(&reader)));
            match nonblocking(libc::O_WRONLY) {
                Ok(writer) => {
                    out.push(format!(
                        "fifo writer: {}",
                        write_once(&writer, b"one end to the other")
                    ));
                    out.push(format!("fifo reader: {}", read_text(&reader)));
                }
                Err(err) => out.push(format!("fifo O_WRONLY: {}", sys::error_name(&err))),
            }
        }
        Err(err) => out.push(format!("fifo O_RDONLY: {}", sys::error_name(&err))),
    }
    out.push(format!("fifo size after: {}", size(&fifo)));

    let sock = d.join("sock");
    match UnixListener::bind(&sock) {
        Ok(listener) => {
            listener.set_nonblocking(true).unwrap();
            out.push(format!(
                "socket bind again: {}",
                e(UnixListener::bind(&sock))
            ));
            out.push(format!("socket connect: {}", exchange(&listener, &sock)));
            let moved = d.join("sock-moved");
            out.push(format!("socket rename: {}", e(fs::rename(&sock, &moved))));
            out.push(format!(
                "socket connect after rename: {}",
                exchange(&listener, &moved)
            ));
            out.push(format!(
                "socket connect old name: {}",
                e(UnixStream::connect(&sock))
            ));
            out.push(format!("socket open(2): {}", e(File::open(&moved))));
        }
        Err(err) => out.push(format!("socket bind: {}", sys::error_name(&err))),
    }
    fs::write(d.join("plain"), b"").unwrap();
    out.push(format!(
        "connect to a regular file: {}",
        e(UnixStream::connect(d.join("plain")))
    ));

    let null = d.join("null");
    out.push(format!(
        "mknod char 1:3: {}",
        e(sys::mknod(&null, libc::S_IFCHR | 0o666, 1, 3))
    ));
    match OpenOptions::new().read(true).write(true).open(&null) {
        Ok(dev) => {
            out.push(format!(
                "char device write: {}",
                write_once(&dev, b"discarded")
            ));
            out.push(format!("char device read: {}", read_text(&dev)));
        }
        Err(err) => out.push(format!("char device open: {}", sys::error_name(&err))),
    }
    out.push(format!("char device size after: {}", size(&null)));
    out.push(format!("left: {:?}", listing(d)));
    out
}

/// Connects to `listener` at `path`, sends `ping` and reads it on the accepted end.
fn exchange(listener: &UnixListener, path: &Path) -> String {
    let mut client = match UnixStream::connect(path) {
        Ok(c) => c,
        Err(err) => return sys::error_name(&err),
    };
    if let Err(err) = client.write_all(b"ping") {
        return format!("write {}", sys::error_name(&err));
    }
    let (server, _) = match listener.accept() {
        Ok(accepted) => accepted,
        Err(err) => return format!("accept {}", sys::error_name(&err)),
    };
    server.set_nonblocking(false).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    format!("ok, server read {}", read_text(&server))
}
