//! create_file, create_file_as_stream and delete_file on real files.

mod common;

use fsgate_testkit::require_root;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

use common::*;
use fsgate_core::code;
use fsgate_direct::flags::*;
use fsgate_direct::FileHolder;

#[test]
fn dispositions_map_to_create_exclusive_and_truncate() {
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, root) = initialized();
    let path = root.path().join("f.txt");
    let name = path.to_str().unwrap();
    let rw = GENERIC_READ | GENERIC_WRITE;

    let err = direct
        .create_file(name, GENERIC_READ, OPEN_EXISTING, 0)
        .unwrap_err();
    assert_eq!(err.code(), code::ERROR_FILE_NOT_FOUND, "{err}");
    let mut f = direct
        .create_file(name, rw, CREATE_NEW, FILE_ATTRIBUTE_NORMAL)
        .unwrap();
    f.write_all(b"hello world").unwrap();
    drop(f);
    let err = direct.create_file(name, rw, CREATE_NEW, 0).unwrap_err();
    assert_eq!(err.code(), code::ERROR_FILE_EXISTS, "{err}");
    let mut s = String::new();
    direct
        .create_file(name, GENERIC_READ, OPEN_ALWAYS, 0)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    assert_eq!(s, "hello world");
    let err = direct
        .create_file(name, GENERIC_READ, TRUNCATE_EXISTING, 0)
        .unwrap_err();
    assert_eq!(err.code(), code::ERROR_INVALID_PARAMETER);
    assert!(err.message().contains("creation_disposition"), "{err}");
    direct.create_file(name, rw, TRUNCATE_EXISTING, 0).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    std::fs::write(&path, b"abc").unwrap();
    direct.create_file(name, rw, CREATE_ALWAYS, 0).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    let mut a = direct
        .create_file(name, FILE_APPEND_DATA, OPEN_EXISTING, 0)
        .unwrap();
    a.write_all(b"one").unwrap();
    a.seek(SeekFrom::Start(0)).unwrap();
    a.write_all(b"two").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"onetwo");

    let ro = root.path().join("ro.txt");
    direct
        .create_file(
            ro.to_str().unwrap(),
            rw,
            CREATE_NEW,
            FILE_ATTRIBUTE_READONLY,
        )
        .unwrap();
    assert_eq!(std::fs::metadata(&ro).unwrap().mode() & 0o222, 0);

    assert_eq!(
        direct
            .create_file(name, GENERIC_READ, 0, 0)
            .unwrap_err()
            .code(),
        code::ERROR_INVALID_PARAMETER
    );
    assert_eq!(
        direct
            .create_file(name, GENERIC_READ, 6, 0)
            .unwrap_err()
            .code(),
        code::ERROR_INVALID_PARAMETER
    );
    let err = direct
        .create_file(name, GENERIC_READ, OPEN_EXISTING, 0x0000_8000)
        .unwrap_err();
    assert!(
        err.message().contains("flags_and_attributes") && err.message().contains("0x00008000"),
        "{err}"
    );
    let dir = root.path().to_str().unwrap();
    assert_eq!(
        direct
            .create_file(dir, GENERIC_READ, OPEN_EXISTING, 0)
            .unwrap_err()
            .code(),
        code::ERROR_ACCESS_DENIED
    );
    assert!(direct
        .create_file(dir, GENERIC_READ, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS)
        .unwrap()
        .metadata()
        .unwrap()
        .is_dir());
}

#[test]
fn reads_leave_the_access_time_alone() {
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, root) = initialized();
    let path = root.path().join("atime.txt");
    std::fs::write(&path, b"data").unwrap();
    // An access time older than the modification time: relatime would update it on a read.
    let old = std::fs::FileTimes::new().set_accessed(
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000),
    );
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_times(old)
        .unwrap();
    let before = std::fs::metadata(&path).unwrap().atime();
    let mut buf = Vec::new();
    direct
        .create_file(path.to_str().unwrap(), GENERIC_READ, OPEN_EXISTING, 0)
        .unwrap()
        .read_to_end(&mut buf)
        .unwrap();
    assert_eq!(buf, b"data");
    assert_eq!(std::fs::metadata(&path).unwrap().atime(), before);
}

#[test]
fn file_stream_reads_writes_seeks_and_truncates() {
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, root) = initialized();
    let path = root.path().join("s.bin");
    let mut s = direct
        .create_file_as_stream(
            path.to_str().unwrap(),
            GENERIC_READ | GENERIC_WRITE,
            CREATE_NEW,
            0,
        )
        .unwrap();
    assert!(s.readable() && s.writable() && s.seekable());
    s.write_all(b"0123456789").unwrap();
    assert_eq!(s.length().unwrap(), 10);
    s.seek(SeekFrom::Start(3)).unwrap();
    let mut b = [0u8; 4];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"3456");
    assert_eq!(s.truncate(None).unwrap(), 7);
    assert_eq!(s.length().unwrap(), 7);
    s.seek(SeekFrom::End(0)).unwrap();
    s.write_all(b"X").unwrap();
    s.close().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"0123456X");
    let mut r = direct
        .create_file_as_stream(path.to_str().unwrap(), GENERIC_READ, OPEN_EXISTING, 0)
        .unwrap();
    assert!(!r.writable());
    assert!(r.write(b"no").is_err());
    assert_eq!(
        r.truncate(Some(1)).unwrap_err().code(),
        code::ERROR_ACCESS_DENIED
    );
}

#[test]
fn delete_file_reports_the_processes_holding_it() {
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, root) = initialized();
    let path = root.path().join("held.txt");
    std::fs::write(&path, b"held").unwrap();
    let ours = std::fs::File::open(&path).unwrap();
    let mut child = Command::new("sleep")
        .arg("30")
        .stdin(std::fs::File::open(&path).unwrap())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let holders = direct.delete_file(path.to_str().unwrap(), true);
    let child_pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    let holders = holders.unwrap();
    assert!(!path.exists());
    use std::os::fd::AsRawFd;
    assert!(
        holders.contains(&FileHolder {
            process_id: std::process::id(),
            fd: ours.as_raw_fd()
        }),
        "{holders:?}"
    );
    assert!(
        holders.contains(&FileHolder {
            process_id: child_pid,
            fd: 0
        }),
        "{holders:?}"
    );
    assert_eq!(holders.len(), 2, "{holders:?}");
    let mut s = String::new();
    (&ours).read_to_string(&mut s).unwrap();
    assert_eq!(
        s, "held",
        "an open descriptor keeps reading the deleted file"
    );

    let other = root.path().join("plain.txt");
    std::fs::write(&other, b"x").unwrap();
    assert!(direct
        .delete_file(other.to_str().unwrap(), false)
        .unwrap()
        .is_empty());
    assert!(!other.exists());
    let err = direct
        .delete_file(other.to_str().unwrap(), false)
        .unwrap_err();
    assert_eq!(err.code(), code::ERROR_FILE_NOT_FOUND);
    assert_eq!(
        direct
            .delete_file(root.path().to_str().unwrap(), true)
            .unwrap_err()
            .code(),
        code::ERROR_ACCESS_DENIED
    );
}

#[test]
fn read_search_capability_opens_files_behind_closed_directories() {
    if let Ok(args) = std::env::var(CHILD_ENV) {
        let (root, file) = args.split_once('\n').unwrap();
        let direct = initialized_in(std::path::Path::new(root));
        let mut got = String::new();
        direct
            .create_file(file, GENERIC_READ, OPEN_EXISTING, 0)
            .unwrap()
            .read_to_string(&mut got)
            .unwrap();
        assert_eq!(got, "secret");
        let err = direct
            .create_file(file, GENERIC_READ | GENERIC_WRITE, OPEN_EXISTING, 0)
            .unwrap_err();
        assert_eq!(err.code(), code::ERROR_PRIVILEGE_NOT_HELD, "{err}");
        assert!(err.message().contains("CAP_DAC_OVERRIDE"), "{err}");
        println!("child: read with CAP_DAC_READ_SEARCH, write refused");
        return;
    }
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let root = install_root();
    let dir = root.path().join("private");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("secret.txt");
    std::fs::write(&file, b"secret").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&dir, Some(1234), Some(1234)).unwrap();
    std::os::unix::fs::chown(&file, Some(1234), Some(1234)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = run_unprivileged(
        "read_search_capability_opens_files_behind_closed_directories",
        "+dac_read_search",
        &format!("{}\n{}", root.path().display(), file.display()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("child: read with CAP_DAC_READ_SEARCH, write refused"),
        "{stdout}"
    );
}
