//! What an opener asked for: fanotify's open permission event carries only a descriptor the
//! kernel opened for the listener, never the caller's `open(2)` flags. While the caller is
//! held in the permission event, its thread sits in the system call, so
//! `/proc/<tid>/syscall` shows the call and its arguments; this module decodes the open
//! flags from it (`openat2(2)` keeps them in a struct read from `/proc/<tid>/mem`).
//! This needs root (ptrace read access) and the thread id, which is why the filter's group
//! reports thread ids.

use std::fs;
use std::os::unix::fs::FileExt;

/// The access an open asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenRequest {
    /// Opened for reading (`O_RDONLY` or `O_RDWR`).
    pub read: bool,
    /// Opened for writing (`O_WRONLY`, `O_RDWR` or `O_TRUNC`).
    pub write: bool,
    /// `O_CREAT | O_EXCL`: the reference's CREATE_NEW, the only "create" request.
    pub create_new: bool,
    /// The flags were known (false: the thread was not in an open call we could decode,
    /// and the fields above are conservative guesses: read and write).
    pub known: bool,
}

impl OpenRequest {
    /// Decodes open flags.
    pub fn from_flags(flags: u64) -> Self {
        let flags = flags as i32;
        let acc = flags & libc::O_ACCMODE;
        Self {
            read: acc == libc::O_RDONLY || acc == libc::O_RDWR,
            write: acc == libc::O_WRONLY || acc == libc::O_RDWR || flags & libc::O_TRUNC != 0,
            create_new: flags & libc::O_CREAT != 0 && flags & libc::O_EXCL != 0,
            known: true,
        }
    }

    /// What to assume when the flags cannot be read: both read and write, not a create.
    pub fn unknown() -> Self {
        Self {
            read: true,
            write: true,
            create_new: false,
            known: false,
        }
    }
}

/// Which argument of which system call holds the open flags.
enum FlagsAt {
    Arg(usize),
    Fixed(u64),
    OpenHow(usize),
}

fn flags_location(nr: i64) -> Option<FlagsAt> {
    #[cfg(target_arch = "x86_64")]
    {
        if nr == libc::SYS_open {
            return Some(FlagsAt::Arg(1));
        }
        if nr == libc::SYS_creat {
            return Some(FlagsAt::Fixed(
                (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
            ));
        }
    }
    if nr == libc::SYS_openat {
        Some(FlagsAt::Arg(2))
    } else if nr == libc::SYS_openat2 {
        Some(FlagsAt::OpenHow(2))
    } else if nr == libc::SYS_open_by_handle_at {
        Some(FlagsAt::Arg(2))
    } else {
        None
    }
}

/// Parses the text of `/proc/<tid>/syscall` ("nr arg0 … arg5 sp pc", args in hex) into the
/// system call number and its six arguments.
pub fn parse_syscall(text: &str) -> Option<(i64, [u64; 6])> {
    let mut it = text.split_whitespace();
    let nr: i64 = it.next()?.parse().ok()?;
    let mut args = [0u64; 6];
    for a in &mut args {
        let s = it.next()?;
        *a = u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()?;
    }
    Some((nr, args))
}

/// The open request thread `tid` is blocked in, or [`OpenRequest::unknown`].
pub fn open_request(tid: u32) -> OpenRequest {
    let Ok(text) = fs::read_to_string(format!("/proc/{tid}/syscall")) else {
        return OpenRequest::unknown();
    };
    let Some((nr, args)) = parse_syscall(&text) else {
        return OpenRequest::unknown();
    };
    match flags_location(nr) {
        Some(FlagsAt::Arg(i)) => OpenRequest::from_flags(args[i]),
        Some(FlagsAt::Fixed(f)) => OpenRequest::from_flags(f),
        Some(FlagsAt::OpenHow(i)) => {
            // struct open_how { u64 flags; u64 mode; u64 resolve; }: flags come first.
            let mut buf = [0u8; 8];
            match fs::File::open(format!("/proc/{tid}/mem"))
                .and_then(|m| m.read_exact_at(&mut buf, args[i]))
            {
                Ok(()) => OpenRequest::from_flags(u64::from_ne_bytes(buf)),
                Err(_) => OpenRequest::unknown(),
            }
        }
        None => OpenRequest::unknown(),
    }
}

/// The real uid of process `pid`, from `/proc/<pid>/status`.
pub fn uid_of(pid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_openat_line() {
        let line = "257 0xffffff9c 0x7ffd1234 0xc2 0x1b6 0x0 0x0 0x7ffd0000 0x7f00aa\n";
        let (nr, args) = parse_syscall(line).unwrap();
        assert_eq!(nr, 257);
        assert_eq!(args[0], 0xffffff9c);
        assert_eq!(args[2], 0xc2);
        assert_eq!(parse_syscall("running\n"), None);
    }

    #[test]
    fn decodes_access_and_create_new() {
        let r = OpenRequest::from_flags(libc::O_RDONLY as u64);
        assert!(r.read && !r.write && !r.create_new && r.known);
        let w = OpenRequest::from_flags((libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC) as u64);
        assert!(!w.read && w.write && !w.create_new);
        let c = OpenRequest::from_flags((libc::O_RDWR | libc::O_CREAT | libc::O_EXCL) as u64);
        assert!(c.read && c.write && c.create_new);
        let t = OpenRequest::from_flags((libc::O_RDONLY | libc::O_TRUNC) as u64);
        assert!(t.write);
    }
}
