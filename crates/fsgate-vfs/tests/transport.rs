//! How requests reach a drive, through a real FUSE mount: over io_uring where the kernel
//! offers it (one queue per CPU), over `/dev/fuse` otherwise or when asked; and on a CPU's
//! queue, a slow handler neither stalls that CPU's other requests nor deadlocks a handler
//! that uses its own drive.

mod common;
use common::utf8;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use common::mount;
use fsgate_core::Result;
use fsgate_vfs::*;

/// How long a blocked read waits for the test to open its gate before giving up.
const PATIENCE: Duration = Duration::from_secs(20);

/// Files `/slow` (reads wait for the gate), `/outer` (reads read `/inner` through the mount)
/// and any other name (4 KiB of zeros).
#[derive(Default)]
struct Gated {
    mount: PathBuf,
    open: Mutex<bool>,
    opened: Condvar,
    waiting: AtomicUsize,
}

impl Gated {
    fn release(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl Hooks for Gated {}

impl Events for Gated {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        if utf8(p.file_name) != "/" {
            p.file_exists = true;
            p.info.mode = 0o444;
            p.info.size = 4096;
        }
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, (), ()>) -> Result<()> {
        match utf8(p.file_name) {
            "/slow" => {
                self.waiting.fetch_add(1, Ordering::SeqCst);
                let open = self.open.lock().unwrap();
                drop(
                    self.opened
                        .wait_timeout_while(open, PATIENCE, |o| !*o)
                        .unwrap(),
                );
                self.waiting.fetch_sub(1, Ordering::SeqCst);
                p.buffer.fill(0);
            }
            "/outer" => {
                File::open(self.mount.join("inner"))
                    .and_then(|inner| inner.read_exact_at(p.buffer, 0))
                    .map_err(|e| fsgate_core::Error::io("reading /inner through the mount", e))?;
            }
            _ => p.buffer.fill(0),
        }
        p.bytes_read = p.buffer.len();
        Ok(())
    }
}

fn options(io_uring_threads_per_queue: usize) -> Options {
    Options {
        file_cache: FileCache::None,
        metadata_cache_enabled: false,
        io_uring_threads_per_queue,
        ..Options::default()
    }
}

/// Whether the kernel offers FUSE over io_uring (Linux 6.14+, `enable_uring` set).
fn kernel_offers_io_uring() -> bool {
    std::fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
        .is_ok_and(|v| v.trim() == "Y")
}

/// The number of possible CPUs: the kernel's number of FUSE queues.
fn possible_cpus() -> usize {
    let list = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    list.trim()
        .split(',')
        .map(|range| {
            let (low, high) = range.split_once('-').unwrap_or((range, range));
            high.parse::<usize>().unwrap() + 1 - low.parse::<usize>().unwrap()
        })
        .sum()
}

/// Binds the calling thread to CPU 0, so its requests all go to queue 0.
fn bind_to_cpu_zero() {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity only touch it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(0, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

fn read_4k(path: PathBuf) -> Vec<u8> {
    let mut buf = vec![1u8; 4096];
    File::open(path)
        .unwrap()
        .read_exact_at(&mut buf, 0)
        .unwrap();
    buf
}

#[test]
fn the_transport_in_force_is_reported() {
    let Some(m) = mount("the_transport_in_force_is_reported", options(2), |_| {
        Gated::default()
    }) else {
        return;
    };
    let transport = m.drive.transport().unwrap();
    if kernel_offers_io_uring() {
        assert_eq!(
            transport,
            Transport::IoUring {
                queues: possible_cpus(),
                threads_per_queue: 2
            }
        );
    } else {
        assert!(
            matches!(&transport, Transport::DevFuse { reason } if reason.contains("enable_uring")),
            "{transport:?}"
        );
    }
    assert_eq!(read_4k(m.dir.join("f")), vec![0; 4096]);
}

/// The scheduling policy of each of this process's threads named `fuser-ring-*`.
fn ring_thread_policies() -> Vec<i32> {
    let mut policies = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let task = task.unwrap().path();
        let comm = std::fs::read_to_string(task.join("comm")).unwrap_or_default();
        if comm.starts_with("fuser-ring-") {
            let tid: libc::pid_t = task.file_name().unwrap().to_str().unwrap().parse().unwrap();
            // SAFETY: sched_getscheduler only reads the policy of the thread `tid`.
            policies.push(unsafe { libc::sched_getscheduler(tid) });
        }
    }
    policies
}

#[test]
fn io_uring_threads_run_at_idle_priority_when_asked() {
    for idle in [false, true] {
        let Some(m) = mount(
            "io_uring_threads_run_at_idle_priority_when_asked",
            Options {
                io_uring_idle_priority: idle,
                ..options(2)
            },
            |_| Gated::default(),
        ) else {
            return;
        };
        if !kernel_offers_io_uring() {
            // The documented alternative: served over /dev/fuse, with no ring threads.
            let transport = m.drive.transport().unwrap();
            assert!(
                matches!(&transport, Transport::DevFuse { reason } if reason.contains("enable_uring")),
                "{transport:?}"
            );
            continue;
        }
        // Other tests' drives in this process have ring threads too, but only this test asks
        // for idle priority: this drive's threads, at least two per CPU (a queue adds
        // threads as requests hold its entries), or none.
        let policies = ring_thread_policies();
        let idle_threads = policies.iter().filter(|&&p| p == libc::SCHED_IDLE).count();
        if idle {
            assert!(idle_threads >= 2 * possible_cpus(), "{policies:?}");
        } else {
            assert_eq!(idle_threads, 0, "{policies:?}");
        }
        assert_eq!(read_4k(m.dir.join("f")), vec![0; 4096]);
        drop(m);
    }
}

#[test]
fn with_io_uring_off_requests_come_through_dev_fuse() {
    let Some(m) = mount(
        "with_io_uring_off_requests_come_through_dev_fuse",
        options(0),
        |_| Gated::default(),
    ) else {
        return;
    };
    assert_eq!(
        m.drive.transport().unwrap(),
        Transport::DevFuse {
            reason: "io_uring was not requested".into()
        }
    );
    assert_eq!(read_4k(m.dir.join("f")), vec![0; 4096]);
}

#[test]
fn a_slow_handler_does_not_stall_its_cpus_other_requests() {
    for threads in [1, 2] {
        let Some(m) = mount(
            "a_slow_handler_does_not_stall_its_cpus_other_requests",
            options(threads),
            |_| Gated::default(),
        ) else {
            return;
        };
        let drive = &m.drive;
        std::thread::scope(|s| {
            let slow = s.spawn(|| {
                bind_to_cpu_zero();
                read_4k(m.dir.join("slow"))
            });
            bind_to_cpu_zero();
            assert!(common::wait_for(PATIENCE, || drive
                .events()
                .waiting
                .load(Ordering::SeqCst)
                == 1));
            // A second read of the same bytes waits for the first, holding its ring entry.
            let behind = s.spawn(|| {
                bind_to_cpu_zero();
                read_4k(m.dir.join("slow"))
            });
            std::thread::sleep(Duration::from_millis(100));
            // Each of these is a LOOKUP, an OPEN, a READ and a RELEASE from CPU 0.
            for i in 0..20 {
                assert_eq!(read_4k(m.dir.join(format!("f{i}"))), vec![0; 4096]);
            }
            assert_eq!(
                drive.events().waiting.load(Ordering::SeqCst),
                1,
                "the slow read ended before the others did ({threads} threads per queue)"
            );
            drive.events().release();
            assert_eq!(slow.join().unwrap(), vec![0; 4096]);
            assert_eq!(behind.join().unwrap(), vec![0; 4096]);
        });
    }
}

#[test]
fn a_handler_may_read_its_own_drive() {
    for threads in [1, 2] {
        let Some(m) = mount(
            "a_handler_may_read_its_own_drive",
            options(threads),
            |tmp| Gated {
                mount: tmp.join("mnt"),
                ..Gated::default()
            },
        ) else {
            return;
        };
        bind_to_cpu_zero();
        assert_eq!(read_4k(m.dir.join("outer")), vec![0; 4096]);
    }
}
