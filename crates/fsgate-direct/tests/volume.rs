//! Volumes on real loop devices: the lock, force_unmount, sector I/O compared with dd,
//! geometry, streams at unaligned offsets, bounds and access checks, privilege errors.

mod common;

use fsgate_testkit::require_root;
use std::io::{Read, Seek, SeekFrom, Write};

use common::*;
use fsgate_core::code;
use fsgate_direct::flags::{GENERIC_READ, GENERIC_WRITE};
use fsgate_direct::{AlignedBuf, DirectAccess, VolumeKind};
use fsgate_install::Installer;

const MIB: u64 = 1 << 20;

#[test]
fn initialize_fails_without_installation_and_methods_are_not_ready() {
    let _one_at_a_time = common::one_at_a_time();
    let empty = tempfile::tempdir().unwrap();
    let direct = DirectAccess::with_installer(Installer::new(empty.path()));
    let err = direct.initialize(GUID).unwrap_err();
    assert_eq!(err.code(), code::ERROR_FILE_NOT_FOUND, "{err}");
    let err = direct
        .open_volume("/dev/null", GENERIC_READ, false)
        .unwrap_err();
    assert_eq!(err.code(), code::ERROR_NOT_READY);
    assert!(err.message().contains("open_volume"), "{err}");
    assert_eq!(
        direct.open_memory().unwrap_err().code(),
        code::ERROR_NOT_READY
    );
    assert_eq!(
        direct
            .delete_file("/nonexistent", false)
            .unwrap_err()
            .code(),
        code::ERROR_NOT_READY
    );
    assert_eq!(direct.get_driver_version(GUID).unwrap(), 0);
}

#[test]
fn mounted_volume_is_in_use_until_force_unmount() {
    let _one_at_a_time = common::one_at_a_time();
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, _root) = initialized();
    let dev = LoopDevice::new(32 * MIB, None);
    dev.mkfs_ext4();
    let device = dev.device.clone();
    in_private_mount_namespace(move || {
        let mounted = Mounted::new(&device);
        let name = device.to_str().unwrap();
        let err = direct.open_volume(name, GENERIC_READ, false).unwrap_err();
        assert_eq!(err.errno(), libc::EBUSY, "{err}");
        assert_eq!(err.code(), code::ERROR_BUSY);
        assert!(err.message().contains("in use"), "{err}");
        assert!(
            err.message().contains(mounted.point.to_str().unwrap()),
            "{err} should name {}",
            mounted.point.display()
        );
        let info = direct.get_volume_info(name).unwrap();
        assert_eq!(info.mount_points, std::slice::from_ref(&mounted.point));
        assert_eq!(info.size_bytes, 32 * MIB);

        let volume = direct.open_volume(name, GENERIC_READ, true).unwrap();
        assert!(direct
            .get_volume_info(name)
            .unwrap()
            .mount_points
            .is_empty());
        let mountinfo = std::fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
        assert!(!mountinfo.contains(mounted.point.to_str().unwrap()));
        let mut sb = vec![0u8; 2048];
        direct.read_sectors(&volume, 0, 4, &mut sb).unwrap();
        assert_eq!(
            &sb[1024 + 0x38..1024 + 0x3a],
            &[0x53, 0xEF],
            "ext4 superblock magic"
        );
    });
}

#[test]
fn written_sectors_read_back_and_match_dd() {
    let _one_at_a_time = common::one_at_a_time();
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, _root) = initialized();
    let dev = LoopDevice::new(8 * MIB, None);
    let volume = direct
        .open_volume(dev.name(), GENERIC_READ | GENERIC_WRITE, false)
        .unwrap();
    assert_eq!(
        volume.kind(),
        VolumeKind::BlockDevice {
            major: 7,
            minor: volume_minor(&dev)
        }
    );
    assert_eq!(direct.get_sector_size(&volume).unwrap(), 512);
    assert_eq!(direct.get_sector_count(&volume).unwrap(), 8 * MIB / 512);

    // An unaligned caller buffer (offset by one byte) goes through the bounce buffer.
    let data = pattern(37 * 512 + 1, 1);
    direct.write_sectors(&volume, 100, 37, &data[1..]).unwrap();
    let mut back = vec![0u8; 37 * 512 + 3];
    direct
        .read_sectors(&volume, 100, 37, &mut back[3..])
        .unwrap();
    assert_eq!(&back[3..], &data[1..]);

    // An aligned buffer is transferred directly; the last sector of the device is reachable.
    let mut aligned = AlignedBuf::zeroed(8 * 512).unwrap();
    aligned.copy_from_slice(&pattern(8 * 512, 2));
    let last = direct.get_sector_count(&volume).unwrap() - 8;
    direct.write_sectors(&volume, last, 8, &aligned).unwrap();
    volume.flush().unwrap();

    assert_eq!(dd_read(&dev.device, 100, 37, 512), &data[1..]);
    assert_eq!(dd_read(&dev.device, last, 8, 512), &aligned[..]);
    assert_eq!(
        dd_read(&dev.device, 99, 1, 512),
        vec![0u8; 512],
        "neighbours untouched"
    );
    assert_eq!(
        dd_read(&dev.device, 137, 1, 512),
        vec![0u8; 512],
        "neighbours untouched"
    );
}

fn volume_minor(dev: &LoopDevice) -> u32 {
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(&dev.device).unwrap().rdev();
    libc::minor(rdev)
}

#[test]
fn loop_device_with_4096_sectors_reports_4096() {
    let _one_at_a_time = common::one_at_a_time();
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, _root) = initialized();
    let dev = LoopDevice::new(4 * MIB, Some(4096));
    let volume = direct
        .open_volume(dev.name(), GENERIC_READ | GENERIC_WRITE, false)
        .unwrap();
    assert_eq!(direct.get_sector_size(&volume).unwrap(), 4096);
    assert_eq!(direct.get_physical_sector_size(&volume).unwrap(), 4096);
    assert_eq!(direct.get_sector_count(&volume).unwrap(), 1024);
    assert_eq!(volume.size_bytes(), 4 * MIB);
    let data = pattern(3 * 4096, 3);
    direct.write_sectors(&volume, 5, 3, &data).unwrap();
    volume.flush().unwrap();
    assert_eq!(dd_read(&dev.device, 5, 3, 4096), data);
    let mut one = vec![0u8; 4096];
    let err = direct.read_sectors(&volume, 0, 2, &mut one).unwrap_err();
    assert_eq!(
        err.code(),
        code::ERROR_INSUFFICIENT_BUFFER,
        "2 sectors of 4096 need 8192: {err}"
    );
}

#[test]
fn stream_reads_and_writes_at_unaligned_offsets() {
    let _one_at_a_time = common::one_at_a_time();
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, _root) = initialized();
    let dev = LoopDevice::new(4 * MIB, Some(4096));
    let original = pattern(4 * MIB as usize, 4);
    std::fs::write(&dev.image, &original).unwrap();
    let mut stream = direct
        .open_volume_as_stream(dev.name(), GENERIC_READ | GENERIC_WRITE, false)
        .unwrap();
    assert!(stream.readable() && stream.writable() && stream.seekable());
    assert_eq!(stream.length().unwrap(), 4 * MIB);

    // Unaligned read spanning several sectors.
    assert_eq!(stream.seek(SeekFrom::Start(4093)).unwrap(), 4093);
    let mut got = vec![0u8; 10_000];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(got, &original[4093..14_093]);
    assert_eq!(stream.tell(), 14_093);

    // Unaligned write inside one sector, and one crossing a 1 MiB bounce chunk.
    let mut expected = original.clone();
    let small = pattern(100, 5);
    stream.seek(SeekFrom::Start(8200)).unwrap();
    stream.write_all(&small).unwrap();
    expected[8200..8300].copy_from_slice(&small);
    let big = pattern(MIB as usize + 5000, 6);
    stream.seek(SeekFrom::Current(-7)).unwrap();
    stream.write_all(&big).unwrap();
    expected[8293..8293 + big.len()].copy_from_slice(&big);
    stream.flush().unwrap();

    // Reading near and past the end.
    stream.seek(SeekFrom::End(-3)).unwrap();
    let mut tail = [0u8; 8];
    assert_eq!(stream.read(&mut tail).unwrap(), 3);
    assert_eq!(&tail[..3], &expected[expected.len() - 3..]);
    assert_eq!(stream.read(&mut tail).unwrap(), 0);
    let err = stream.write(&[1]).unwrap_err();
    assert_eq!(err.raw_os_error(), None, "{err}");
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
    assert_eq!(
        stream.truncate(Some(10)).unwrap_err().code(),
        code::ERROR_NOT_SUPPORTED
    );
    stream.close().unwrap();

    assert_eq!(dd_read(&dev.device, 0, 1024, 4096), expected);
}

#[test]
fn out_of_range_spans_and_short_buffers_are_errors() {
    let _one_at_a_time = common::one_at_a_time();
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, _root) = initialized();
    let dev = LoopDevice::new(MIB, None);
    let volume = direct
        .open_volume(dev.name(), GENERIC_READ | GENERIC_WRITE, false)
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let err = direct.read_sectors(&volume, 2047, 2, &mut buf).unwrap_err();
    assert_eq!(err.code(), code::ERROR_INVALID_PARAMETER);
    assert!(
        err.message().contains("starting_sector") && err.message().contains("2048 sectors"),
        "{err}"
    );
    let err = direct
        .read_sectors(&volume, u64::MAX, 2, &mut buf)
        .unwrap_err();
    assert_eq!(err.code(), code::ERROR_INVALID_PARAMETER);
    let err = direct.write_sectors(&volume, 0, 9, &buf).unwrap_err();
    assert_eq!(err.code(), code::ERROR_INSUFFICIENT_BUFFER);
    assert!(
        err.message().contains("4096 bytes") && err.message().contains("4608"),
        "{err}"
    );
    direct.read_sectors(&volume, 2047, 1, &mut buf).unwrap();
    direct.read_sectors(&volume, 0, 0, &mut []).unwrap();
}

#[test]
fn read_only_open_refuses_writes() {
    let _one_at_a_time = common::one_at_a_time();
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, _root) = initialized();
    let dev = LoopDevice::new(MIB, None);
    let volume = direct.open_volume(dev.name(), GENERIC_READ, false).unwrap();
    assert!(!volume.is_writable());
    let err = direct
        .write_sectors(&volume, 0, 1, &[0xAA; 512])
        .unwrap_err();
    assert_eq!(err.code(), code::ERROR_ACCESS_DENIED);
    assert!(err.message().contains("read-only"), "{err}");
    let mut stream = direct.open_volume_as_stream(dev.name(), GENERIC_READ, false);
    assert_eq!(
        stream.as_ref().unwrap_err().errno(),
        libc::EBUSY,
        "the first handle holds the lock"
    );
    drop(volume);
    stream = direct.open_volume_as_stream(dev.name(), GENERIC_READ, false);
    let mut stream = stream.unwrap();
    assert!(!stream.writable());
    assert!(stream.write(&[1, 2, 3]).is_err());
    assert_eq!(dd_read(&dev.device, 0, 1, 512), vec![0u8; 512]);
}

#[test]
fn image_files_have_512_byte_sectors_and_a_lock() {
    let _one_at_a_time = common::one_at_a_time();
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, root) = initialized();
    let image = root.path().join("disk.img");
    std::fs::write(&image, pattern(64 * 1024 + 100, 7)).unwrap();
    let name = image.to_str().unwrap();
    let volume = direct
        .open_volume(name, GENERIC_READ | GENERIC_WRITE, false)
        .unwrap();
    assert_eq!(volume.kind(), VolumeKind::ImageFile);
    assert_eq!(direct.get_sector_size(&volume).unwrap(), 512);
    assert_eq!(
        direct.get_sector_count(&volume).unwrap(),
        128,
        "the partial sector is not counted"
    );
    let err = direct.open_volume(name, GENERIC_READ, false).unwrap_err();
    assert_eq!(err.errno(), libc::EBUSY);
    assert!(err.message().contains("lock"), "{err}");
    let data = pattern(512, 8);
    direct.write_sectors(&volume, 3, 1, &data).unwrap();
    drop(volume);
    assert_eq!(&std::fs::read(&image).unwrap()[1536..2048], &data[..]);
    let err = direct
        .open_volume("/dev/null", GENERIC_READ, false)
        .unwrap_err();
    assert_eq!(err.code(), code::ERROR_INVALID_PARAMETER);
    let err = direct
        .open_volume("/nonexistent/disk", GENERIC_READ, false)
        .unwrap_err();
    assert_eq!(err.code(), code::ERROR_FILE_NOT_FOUND);
}

#[test]
fn unprivileged_open_is_privilege_not_held() {
    let _one_at_a_time = common::one_at_a_time();
    if let Ok(args) = std::env::var(CHILD_ENV) {
        let (root, device) = args.split_once('\n').unwrap();
        let direct = initialized_in(std::path::Path::new(root));
        let err = direct.open_volume(device, GENERIC_READ, false).unwrap_err();
        assert_eq!(err.code(), code::ERROR_PRIVILEGE_NOT_HELD, "{err}");
        assert_eq!(err.errno(), libc::EACCES);
        assert!(err.message().contains("CAP_DAC_OVERRIDE"), "{err}");
        println!("child: got 1314");
        return;
    }
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let root = install_root();
    let dev = LoopDevice::new(MIB, None);
    let out = run_unprivileged(
        "unprivileged_open_is_privilege_not_held",
        "",
        &format!("{}\n{}", root.path().display(), dev.name()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("child: got 1314"), "{stdout}");
}
