//! The errors particular to BPF tracing.

use fsgate_core::{code, Error};

/// The error for a request to refuse or restrict an operation (a handler that removes access
/// flags, or a configuration asking for enforcement): `ERROR_NOT_SUPPORTED` (50, errno
/// `EOPNOTSUPP`).
///
/// The reference lets a handler strip access from a handle before it is created. On Linux
/// only a BPF LSM program could refuse these system calls before they act, and this
/// machine kind's kernel refuses BPF LSM (and fentry) programs with `EPERM` even for root;
/// tracepoint programs, which fsgate uses, observe after the fact. So the events are
/// notifications: the operation has already happened when the handler runs.
pub fn enforcement_unsupported(what: &str) -> Error {
    Error::from_code(
        code::ERROR_NOT_SUPPORTED,
        format!(
            "{what}: handle operations cannot be refused or restricted: the kernel refuses \
             BPF LSM programs (EPERM), so fsgate observes them from tracepoints after they \
             happen"
        ),
    )
}

/// The error for a kernel that refuses to load or attach the tracepoint programs:
/// `ERROR_NOT_SUPPORTED` (50) with the kernel's errno, or `ERROR_PRIVILEGE_NOT_HELD` (1314)
/// when the caller is not root (loading needs `CAP_BPF` and `CAP_PERFMON`, or
/// `CAP_SYS_ADMIN`).
pub(crate) fn bpf_refused(what: &str, errno: i32) -> Error {
    let reason = std::io::Error::from_raw_os_error(errno);
    if !is_root() && matches!(errno, libc::EPERM | libc::EACCES) {
        return Error::new(
            code::ERROR_PRIVILEGE_NOT_HELD,
            errno,
            format!("{what}: {reason}: loading BPF programs needs root (CAP_BPF and CAP_PERFMON)"),
        );
    }
    Error::new(
        code::ERROR_NOT_SUPPORTED,
        errno,
        format!("{what}: the kernel refused the BPF tracepoint programs: {reason}"),
    )
}

/// The errno a libbpf error carries. libbpf-rs keeps it only in the message of the
/// underlying `io::Error` ("… (os error N)"), so it is read from there; `EIO` when absent.
pub(crate) fn libbpf_errno(err: &libbpf_rs::Error) -> i32 {
    let text = format!("{err:?}");
    text.rsplit("(os error ")
        .next()
        .filter(|_| text.contains("(os error "))
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(libc::EIO)
}

/// Whether the effective user is root.
fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforcement_error_names_the_reason_and_code() {
        let e = enforcement_unsupported("desired_access");
        assert_eq!(e.code(), code::ERROR_NOT_SUPPORTED);
        assert_eq!(e.errno(), libc::EOPNOTSUPP);
        assert!(e.message().starts_with("desired_access: "));
        assert!(e.message().contains("BPF LSM"));
    }

    #[test]
    fn refusing_kernel_gets_a_coded_error() {
        let e = bpf_refused("loading the BPF programs", libc::EPERM);
        let expected = if is_root() {
            code::ERROR_NOT_SUPPORTED
        } else {
            code::ERROR_PRIVILEGE_NOT_HELD
        };
        assert_eq!(e.code(), expected);
        assert_eq!(e.errno(), libc::EPERM);
        assert!(e.message().starts_with("loading the BPF programs: "));
        let e = bpf_refused("attaching enter_kill", libc::ENOSYS);
        assert_eq!(e.code(), code::ERROR_NOT_SUPPORTED);
        assert!(e.message().contains("refused the BPF tracepoint programs"));
    }

    #[test]
    fn errno_is_read_from_libbpf_errors() {
        let err = libbpf_rs::Error::from_raw_os_error(libc::EPERM);
        assert_eq!(libbpf_errno(&err), libc::EPERM);
        let err = libbpf_rs::Error::from(std::io::Error::other("no number"));
        assert_eq!(libbpf_errno(&err), libc::EIO);
    }
}
