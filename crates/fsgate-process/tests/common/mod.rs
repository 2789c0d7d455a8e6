//! Shared fixtures: an installed product under a temporary root, a private tmpfs holding
//! uniquely named copies of small programs, a handler that records events, and probes of
//! what the running kernel build allows (they decide which documented outcome a test
//! asserts; a test never skips on them).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use fsgate_core::{code, Result};
use fsgate_install::{Installer, Package};
use fsgate_process::proc_connector::{self, ProcEvent};
use fsgate_process::{
    HandleOperation, Hooks, ProcessCreation, ProcessEvents, ProcessFilter, ProcessTermination,
    ThreadCreation, ThreadTermination,
};

pub const GUID: &str = "{5A1E0C4F-7D3B-4E2A-9C61-0F2B8D4E6A10}";

/// fsgate installed for [`GUID`] under a temporary root.
pub struct Product {
    pub root: tempfile::TempDir,
}

impl Product {
    pub fn install() -> Self {
        let root = tempfile::tempdir().unwrap();
        let pkg = root.path().join("fsgate.pkg");
        Package::build(&pkg, Path::new("/bin/sleep")).unwrap();
        Installer::new(root.path())
            .install(&pkg, GUID, "", 0)
            .unwrap();
        Self { root }
    }

    pub fn installer(&self) -> Installer {
        Installer::new(self.root.path())
    }
}

/// A tmpfs mounted on a temporary directory, unmounted on drop (also on panic).
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    pub fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        rustix::mount::mount(
            "fsgate-process-test",
            dir.path(),
            "tmpfs",
            rustix::mount::MountFlags::empty(),
            None,
        )
        .unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `program` in under `name` (made unique by the caller), executable.
    pub fn copy(&self, program: &str, name: &str) -> PathBuf {
        let to = self.dir.path().join(name);
        std::fs::copy(program, &to).unwrap();
        to
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(self.dir.path(), rustix::mount::UnmountFlags::DETACH);
    }
}

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Created(ProcessCreation),
    Terminated(ProcessTermination),
    ThreadCreated(ThreadCreation),
    ThreadTerminated(ThreadTermination),
    /// A handle operation; `true` for a thread operation.
    Handle(HandleOperation, bool),
    Error(u32, String),
}

type Decide = dyn Fn(&ProcessCreation) -> Result<()> + Send + Sync;

/// Records every event; `decide` answers creations.
pub struct Recorder {
    pub seen: Mutex<Vec<Seen>>,
    changed: Condvar,
    decide: Box<Decide>,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Self::deciding(|_| Ok(()))
    }

    pub fn deciding(
        decide: impl Fn(&ProcessCreation) -> Result<()> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            seen: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            decide: Box::new(decide),
        })
    }

    fn push(&self, s: Seen) {
        self.seen.lock().unwrap().push(s);
        self.changed.notify_all();
    }

    pub fn snapshot(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `count` of the recorded events satisfy `pred`, or until nothing new
    /// arrived for 10 s; returns the matching events.
    pub fn wait_for(&self, count: usize, pred: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        let mut seen = self.seen.lock().unwrap();
        let mut last_len = seen.len();
        let mut last_change = Instant::now();
        loop {
            let hits: Vec<Seen> = seen.iter().filter(|s| pred(s)).cloned().collect();
            if hits.len() >= count || last_change.elapsed() > Duration::from_secs(10) {
                return hits;
            }
            seen = self
                .changed
                .wait_timeout(seen, Duration::from_millis(200))
                .unwrap()
                .0;
            if seen.len() != last_len {
                last_len = seen.len();
                last_change = Instant::now();
            }
        }
    }

    /// The events matching `pred` after giving stragglers a moment to arrive.
    pub fn settled(&self, pred: impl Fn(&Seen) -> bool) -> Vec<Seen> {
        std::thread::sleep(Duration::from_millis(500));
        self.snapshot().into_iter().filter(|s| pred(s)).collect()
    }
}

impl ProcessEvents for Recorder {
    fn on_process_creation(&self, event: &mut ProcessCreation) -> Result<()> {
        let verdict = (self.decide)(event);
        self.push(Seen::Created(event.clone()));
        verdict
    }
    fn on_process_termination(&self, event: &ProcessTermination) -> Result<()> {
        self.push(Seen::Terminated(event.clone()));
        Ok(())
    }
    fn on_thread_creation(&self, event: &ThreadCreation) -> Result<()> {
        self.push(Seen::ThreadCreated(event.clone()));
        Ok(())
    }
    fn on_thread_termination(&self, event: &ThreadTermination) -> Result<()> {
        self.push(Seen::ThreadTerminated(event.clone()));
        Ok(())
    }
    fn on_process_handle_operation(&self, event: &mut HandleOperation) -> Result<()> {
        self.push(Seen::Handle(event.clone(), false));
        Ok(())
    }
    fn on_thread_handle_operation(&self, event: &mut HandleOperation) -> Result<()> {
        self.push(Seen::Handle(event.clone(), true));
        Ok(())
    }
}
impl Hooks for Recorder {
    fn on_error(&self, error_code: u32, description: &str) {
        self.push(Seen::Error(error_code, description.to_string()));
    }
}

/// An initialized filter over `events`, with `EventsToFire` asking for process and thread
/// creation and termination (`0x1B`; the handle operation events have their own tests).
pub fn filter(product: &Product, events: Arc<dyn ProcessEvents>) -> ProcessFilter {
    let f = ProcessFilter::new(events);
    f.initialize_with(product.installer(), GUID).unwrap();
    f.config("EventsToFire=27").unwrap();
    f
}

pub fn created_image(s: &Seen, image: &Path) -> bool {
    matches!(s, Seen::Created(c) if Path::new(&c.image_file_name) == image)
}

/// Drops `CAP_NET_ADMIN` from the calling thread's effective set (capabilities are per
/// thread, so the rest of the test process keeps it).
pub fn drop_net_admin_on_this_thread() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: header and two data records as capget/capset version 3 expect.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    const CAP_NET_ADMIN: u32 = 12;
    data[0].effective &= !(1 << CAP_NET_ADMIN);
    // SAFETY: as above.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

/// What the running kernel build does with a process connector listener that lacks
/// `CAP_NET_ADMIN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnprivilegedListener {
    /// It joins the group and its listen request is acknowledged (mainline Linux 6.6+).
    Accepted,
    /// The bind to the `CN_IDX_PROC` group fails with this errno.
    RefusedAtJoin(i32),
    /// The bind succeeds; the kernel answers the listen request with this errno.
    RefusedAtListen(u32),
}

/// Asks the kernel, from a thread without `CAP_NET_ADMIN`, to join the process connector
/// group and listen, with plain socket calls (not fsgate's); panics if the kernel neither
/// refuses nor acknowledges within 10 s, a behaviour fsgate does not document.
pub fn probe_unprivileged_listener() -> UnprivilegedListener {
    use rustix::net::netlink::{SocketAddrNetlink, CONNECTOR};
    use rustix::net::{sockopt, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
    std::thread::spawn(|| {
        drop_net_admin_on_this_thread();
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(CONNECTOR),
        )
        .unwrap();
        const CN_IDX_PROC: u32 = 1;
        if let Err(e) = rustix::net::bind(&fd, &SocketAddrNetlink::new(0, CN_IDX_PROC)) {
            return UnprivilegedListener::RefusedAtJoin(e.raw_os_error());
        }
        let port = SocketAddrNetlink::try_from(rustix::net::getsockname(&fd).unwrap())
            .unwrap()
            .pid();
        // nlmsghdr (len, NLMSG_DONE, flags, seq, port), cn_msg (CN_IDX_PROC, CN_VAL_PROC,
        // seq, ack = port, len 4, flags), PROC_CN_MCAST_LISTEN: include/uapi/linux/cn_proc.h.
        // The kernel multicasts its answer to every listener, with ack + 1.
        let mut request = Vec::new();
        for word in [40u32, 3, 0, port, CN_IDX_PROC, 1, 0, port, 4, 1] {
            request.extend_from_slice(&word.to_ne_bytes());
        }
        rustix::net::sendto(
            &fd,
            &request,
            SendFlags::empty(),
            &SocketAddrNetlink::new(0, 0),
        )
        .unwrap();
        sockopt::set_socket_timeout(
            &fd,
            sockopt::Timeout::Recv,
            Some(Duration::from_millis(200)),
        )
        .unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let n = match rustix::net::recv(&fd, &mut buf[..], RecvFlags::empty()) {
                Ok((n, _)) => n,
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => continue,
                // Other listeners' records overflowed the queue: the answer may be next.
                Err(rustix::io::Errno::NOBUFS) => continue,
                Err(e) => panic!("receiving from the process connector: {e}"),
            };
            for event in proc_connector::parse(&buf[..n]).unwrap() {
                match event {
                    ProcEvent::Ack { err: 0, request } if request == port => {
                        return UnprivilegedListener::Accepted
                    }
                    ProcEvent::Ack { err, request } if request == port => {
                        return UnprivilegedListener::RefusedAtListen(err)
                    }
                    _ => {}
                }
            }
        }
        panic!(
            "the kernel accepted the bind of a listener without CAP_NET_ADMIN but neither \
             acknowledged nor refused its listen request within 10 s"
        )
    })
    .join()
    .unwrap()
}

/// Starts `f`, whose exec control covers `fs`, with `timeout_ms`. On a kernel build with
/// fanotify permission events this must succeed, and the function returns true. On a build
/// without them (probed here: a `FAN_OPEN_EXEC_PERM` mark on `fs` refused with `EINVAL`)
/// it asserts the documented refusal, `ERROR_NOT_SUPPORTED` naming
/// `CONFIG_FANOTIFY_ACCESS_PERMISSIONS` with nothing started, says so, and returns false:
/// the caller then has nothing more to check.
pub fn start_exec_control(test: &str, f: &ProcessFilter, fs: &Tmpfs, timeout_ms: u32) -> bool {
    if kernel_has_permission_events(fs) {
        f.start_filter(timeout_ms).unwrap();
        return true;
    }
    let e = f.start_filter(timeout_ms).unwrap_err();
    assert_eq!(e.code(), code::ERROR_NOT_SUPPORTED, "{e}");
    assert_eq!(e.errno(), libc::EOPNOTSUPP, "{e}");
    assert!(
        e.message().contains("CONFIG_FANOTIFY_ACCESS_PERMISSIONS"),
        "{e}"
    );
    assert!(!f.active());
    eprintln!(
        "{test}: this kernel build has no fanotify permission events; checked the documented \
         refusal of exec control (error 50) instead of exec decisions"
    );
    false
}

/// Whether the kernel accepts a fanotify `FAN_OPEN_EXEC_PERM` mark on the mount `fs`.
fn kernel_has_permission_events(fs: &Tmpfs) -> bool {
    use fsgate_fanotify::{Class, EventMask, Group, InitFlags, MarkAction, MarkFlags, MarkType};
    let group = match Group::new(Class::Content, InitFlags::CLOEXEC, libc::O_RDONLY) {
        Ok(g) => g,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => return false,
        Err(e) => panic!("fanotify_init(FAN_CLASS_CONTENT): {e}"),
    };
    match group.mark(
        MarkAction::Add,
        MarkType::Mount,
        MarkFlags::empty(),
        EventMask::OPEN_EXEC_PERM,
        None,
        Some(fs.path()),
    ) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => false,
        Err(e) => panic!(
            "marking {} for FAN_OPEN_EXEC_PERM: {e}",
            fs.path().display()
        ),
    }
}
