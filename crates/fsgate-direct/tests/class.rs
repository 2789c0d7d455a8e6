//! The class surface: config, tag, installation delegation, shutdown decisions, memory.

mod common;

use fsgate_testkit::require_root;
use std::cell::RefCell;
use std::io;

use common::*;
use fsgate_core::code;
use fsgate_core::shutdown::{Executor, Plan};
use fsgate_direct::flags::MODULE_STATUS_STOPPED;
use fsgate_direct::{DirectAccess, MemorySource};

#[test]
fn config_reports_build_and_license_and_tag_round_trips() {
    let direct = DirectAccess::new();
    assert!(direct
        .config("BuildInfo")
        .unwrap()
        .contains(env!("CARGO_PKG_VERSION")));
    assert!(direct.config("licenseinfo").unwrap().contains("MIT"));
    assert!(direct
        .config("BuildInfo=x")
        .unwrap_err()
        .message()
        .contains("read-only"));
    assert!(direct.config("NoSuchSetting").is_err());
    assert_eq!(direct.tag(), 0);
    direct.set_tag(-42);
    assert_eq!(direct.tag(), -42);
}

#[test]
fn installation_methods_delegate_to_the_installer() {
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, _root) = initialized();
    assert_eq!(
        direct.get_driver_status(GUID).unwrap(),
        MODULE_STATUS_STOPPED
    );
    assert_eq!(
        direct.get_driver_version(GUID).unwrap(),
        fsgate_core::BuildInfo::current().version_u64()
    );
}

struct Recorder {
    systemd: bool,
    allowed: bool,
    ran: RefCell<Vec<Plan>>,
}

impl Executor for Recorder {
    fn has_systemd(&self) -> bool {
        self.systemd
    }
    fn may_shut_down(&self) -> bool {
        self.allowed
    }
    fn execute(&self, plan: &Plan) -> io::Result<()> {
        self.ran.borrow_mut().push(plan.clone());
        Ok(())
    }
}

#[test]
fn shutdown_system_plans_shutdown_or_reboot_and_reports_missing_privilege() {
    let direct = DirectAccess::new();
    let r = Recorder {
        systemd: true,
        allowed: true,
        ran: RefCell::default(),
    };
    assert!(direct
        .shutdown_system_with(&r, "disk replaced", 125, true, true)
        .unwrap());
    assert!(direct
        .shutdown_system_with(&r, "", 0, false, false)
        .unwrap());
    assert_eq!(
        *r.ran.borrow(),
        [
            Plan::Command(vec![
                "shutdown".into(),
                "-r".into(),
                "+3".into(),
                "disk replaced".into()
            ]),
            Plan::Command(vec!["shutdown".into(), "-h".into(), "now".into()]),
        ]
    );
    let bare = Recorder {
        systemd: false,
        allowed: true,
        ran: RefCell::default(),
    };
    assert!(direct
        .shutdown_system_with(&bare, "x", 10, true, true)
        .unwrap());
    assert_eq!(*bare.ran.borrow(), [Plan::Syscall { reboot: true }]);
    let denied = Recorder {
        systemd: true,
        allowed: false,
        ran: RefCell::default(),
    };
    assert!(!direct
        .shutdown_system_with(&denied, "x", 0, true, true)
        .unwrap());
    assert!(denied.ran.borrow().is_empty());
}

/// The physical address of `virt` in this process, from /proc/self/pagemap (root sees PFNs).
fn physical_address(virt: usize) -> u64 {
    use std::os::unix::fs::FileExt;
    let page = 4096usize;
    let mut entry = [0u8; 8];
    let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
    pagemap
        .read_exact_at(&mut entry, (virt / page * 8) as u64)
        .unwrap();
    let entry = u64::from_le_bytes(entry);
    assert!(entry & (1 << 63) != 0, "page not present");
    let pfn = entry & ((1 << 55) - 1);
    assert_ne!(pfn, 0, "PFNs are hidden (not root?)");
    pfn * page as u64 + (virt % page) as u64
}

#[test]
fn physical_memory_reads_back_a_pinned_page() {
    require_root!("needs root (installing, loop devices, mounts, capabilities)");
    let (direct, _root) = initialized();
    let mut page = fsgate_direct::AlignedBuf::zeroed(4096).unwrap();
    page.copy_from_slice(&pattern(4096, 99));
    // SAFETY: the buffer is valid for 4096 bytes and stays alive until munlock below.
    assert_eq!(unsafe { libc::mlock(page.as_ptr().cast(), 4096) }, 0);
    let phys = physical_address(page.as_ptr() as usize);
    match direct.open_memory() {
        Ok(memory) => {
            assert!(matches!(
                memory.source(),
                MemorySource::Kcore | MemorySource::DevMem
            ));
            let mut got = vec![0u8; 4096];
            assert_eq!(memory.read_at(phys, &mut got).unwrap(), 4096);
            assert_eq!(got, &page[..]);
            use std::io::{Read, Seek, SeekFrom};
            let mut stream = direct.open_memory_as_stream().unwrap();
            assert!(!stream.writable());
            stream.seek(SeekFrom::Start(phys + 100)).unwrap();
            let mut part = [0u8; 50];
            stream.read_exact(&mut part).unwrap();
            assert_eq!(&part[..], &page[100..150]);
        }
        Err(e) => {
            // This kernel has neither door (CONFIG_PROC_KCORE and CONFIG_DEVMEM both off): the
            // error must say so; the comparison above runs on kernels that have one.
            assert!(
                !std::path::Path::new("/proc/kcore").exists()
                    && !std::path::Path::new("/dev/mem").exists(),
                "{e}"
            );
            assert_eq!(e.code(), code::ERROR_NOT_SUPPORTED, "{e}");
            assert!(
                e.message().contains("CONFIG_PROC_KCORE") && e.message().contains("CONFIG_DEVMEM"),
                "{e}"
            );
            eprintln!("physical_memory_reads_back_a_pinned_page: no /proc/kcore or /dev/mem on this kernel; checked the error only (page at {phys:#x})");
        }
    }
    // SAFETY: the same range that was locked above.
    unsafe { libc::munlock(page.as_ptr().cast(), 4096) };
}
