//! The process filter against the real kernel: process connector records and fanotify exec
//! permission events, with programs copied under unique names into private tmpfs mounts.

mod common;

use fsgate_testkit::require_root;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use fsgate_core::{code, Error};
use fsgate_process::{ProcessEvents, ProcessFilter};

const ME: fn() -> u32 = std::process::id;

fn own_filter(product: &Product, rec: Arc<Recorder>, filter_own: bool) -> ProcessFilter {
    let f = filter(product, rec);
    f.config(&format!("FilterOwnRequests={filter_own}"))
        .unwrap();
    f.start_filter(0).unwrap();
    // Terminations match the process that ends: our children, through include_children.
    f.add_filtered_process_by_id(i64::from(ME()), true).unwrap();
    f
}

#[test]
fn creation_and_termination_report_pid_parent_and_image_in_order() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let product = Product::install();
    let fs = Tmpfs::mount();
    let image = fs.copy("/bin/true", &unique("true"));
    let rec = Recorder::new();
    let f = own_filter(&product, rec.clone(), true);
    let mut pids = Vec::new();
    for _ in 0..3 {
        let mut child = Command::new(&image).spawn().unwrap();
        pids.push(child.id());
        assert!(child.wait().unwrap().success());
    }
    for &pid in &pids {
        let mine = rec.wait_for(2, |s| match s {
            Seen::Created(c) => c.process_id == pid,
            Seen::Terminated(t) => t.process_id == pid,
            _ => false,
        });
        assert_eq!(mine.len(), 2, "{mine:?}");
        let Seen::Created(c) = &mine[0] else {
            panic!("creation must come first: {mine:?}")
        };
        assert_eq!(c.parent_process_id, ME());
        assert_eq!(c.creating_process_id, ME());
        assert_eq!(c.image_file_name, image.to_str().unwrap());
        assert_eq!(c.process_name, image.to_str().unwrap());
        assert!(c.file_open_name_available);
        let Seen::Terminated(t) = &mine[1] else {
            panic!("{mine:?}")
        };
        assert_eq!(t.process_name, image.to_str().unwrap());
    }
    f.stop_filter().unwrap();
    assert!(!f.active());
}

#[test]
fn command_line_is_filled_when_tracked() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let product = Product::install();
    let fs = Tmpfs::mount();
    let image = fs.copy("/bin/sleep", &unique("sleep"));
    let rec = Recorder::new();
    let f = filter(&product, rec.clone());
    f.set_track_command_line(true).unwrap();
    f.config("FilterOwnRequests=yes").unwrap();
    f.start_filter(0).unwrap();
    assert_eq!(
        f.set_track_command_line(false).unwrap_err().code(),
        code::ERROR_CONNECTION_ACTIVE
    );
    f.add_filtered_process_by_id(i64::from(ME()), false)
        .unwrap();
    let mut child = Command::new(&image).arg("0.3").spawn().unwrap();
    child.wait().unwrap();
    let hits = rec.wait_for(1, |s| created_image(s, &image));
    let Seen::Created(c) = &hits[0] else { panic!() };
    assert_eq!(c.command_line, format!("{} 0.3", image.display()));
}

#[test]
fn own_requests_are_skipped_unless_filter_own_requests() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let product = Product::install();
    let fs = Tmpfs::mount();
    let image = fs.copy("/bin/true", &unique("true"));
    let rec = Recorder::new();
    let f = own_filter(&product, rec.clone(), false);
    Command::new(&image).status().unwrap();
    // A shell started by us is not us: what it creates is reported once the rule covers it.
    let sh = fs.copy("/bin/sh", &unique("sh"));
    let mut shell = Command::new(&sh)
        .arg("-c")
        .arg(format!("read x; {}; exit 0", image.display()))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    f.add_filtered_process_by_id(i64::from(shell.id()), false)
        .unwrap();
    use std::io::Write;
    shell.stdin.take().unwrap().write_all(b"go\n").unwrap();
    shell.wait().unwrap();
    let hits = rec.wait_for(1, |s| created_image(s, &image));
    assert_eq!(hits.len(), 1, "{hits:?}");
    let Seen::Created(c) = &hits[0] else { panic!() };
    assert_eq!(c.creating_process_id, shell.id());
    assert_eq!(c.parent_process_id, shell.id());
    assert!(rec
        .settled(|s| matches!(s, Seen::Created(c) if c.creating_process_id == ME()))
        .is_empty());
}

#[test]
fn include_children_follows_descendants_and_ignored_beats_filtered() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let product = Product::install();
    let fs = Tmpfs::mount();
    let image = fs.copy("/bin/true", &unique("true"));
    let plain = fs.copy("/bin/sh", &unique("plain-sh"));
    let ignored = fs.copy("/bin/sh", &unique("ignored-sh"));
    let rec = Recorder::new();
    let f = filter(&product, rec.clone());
    f.start_filter(0).unwrap();
    // Our own creations are skipped (FilterOwnRequests off), our descendants' are not.
    f.add_filtered_process_by_id(i64::from(ME()), true).unwrap();
    f.add_ignored_process_by_name(ignored.file_name().unwrap().to_str().unwrap(), false)
        .unwrap();
    let script = format!("{}; exit 0", image.display());
    let plain_sh = Command::new(&plain).arg("-c").arg(&script).spawn().unwrap();
    let plain_pid = plain_sh.id();
    let ignored_sh = Command::new(&ignored)
        .arg("-c")
        .arg(&script)
        .spawn()
        .unwrap();
    let ignored_pid = ignored_sh.id();
    for mut c in [plain_sh, ignored_sh] {
        c.wait().unwrap();
    }
    let hits = rec.wait_for(1, |s| created_image(s, &image));
    let hits_after = rec.settled(|s| created_image(s, &image));
    assert_eq!(hits_after.len(), 1, "{hits:?}");
    let Seen::Created(c) = &hits_after[0] else {
        panic!()
    };
    assert_eq!(c.creating_process_id, plain_pid);
    assert_ne!(c.creating_process_id, ignored_pid);
    // Without include_children the shell's creations are not ours.
    f.remove_filtered_process_by_id(i64::from(ME())).unwrap();
    f.add_filtered_process_by_id(i64::from(ME()), false)
        .unwrap();
    Command::new(&plain)
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap();
    assert_eq!(rec.settled(|s| created_image(s, &image)).len(), 1);
}

#[test]
fn denied_exec_fails_with_eperm_and_allowed_exec_fires_once() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let product = Product::install();
    let fs = Tmpfs::mount();
    let denied = fs.copy("/bin/true", &unique("denied"));
    let allowed = fs.copy("/bin/true", &unique("allowed"));
    let deny_name = denied.to_str().unwrap().to_string();
    let rec = Recorder::deciding(move |c| {
        if c.image_file_name == deny_name {
            Err(Error::from_code(code::ERROR_ACCESS_DENIED, "not this one"))
        } else {
            Ok(())
        }
    });
    let f = filter(&product, rec.clone());
    f.config("FilterOwnRequests=1").unwrap();
    f.add_controlled_exec_path(fs.path().to_str().unwrap())
        .unwrap();
    if !start_exec_control(
        "denied_exec_fails_with_eperm_and_allowed_exec_fires_once",
        &f,
        &fs,
        0,
    ) {
        return;
    }
    f.add_filtered_process_by_id(i64::from(ME()), false)
        .unwrap();
    let err = Command::new(&denied).spawn().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM), "{err}");
    let mut child = Command::new(&allowed).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success());
    rec.wait_for(
        1,
        |s| matches!(s, Seen::Terminated(t) if t.process_id == pid),
    );
    let creations = rec.settled(|s| created_image(s, &allowed));
    assert_eq!(creations.len(), 1, "{creations:?}");
    let Seen::Created(c) = &creations[0] else {
        panic!()
    };
    assert_eq!(c.process_id, pid);
    assert_eq!(c.creating_process_id, ME());
    assert_eq!(rec.settled(|s| created_image(s, &denied)).len(), 1);
    f.stop_filter().unwrap();
    // Once stopped nothing is held or denied any more.
    assert!(Command::new(&denied).status().unwrap().success());
}

#[test]
fn an_allowed_exec_that_fails_does_not_hide_the_next_exec() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let product = Product::install();
    let fs = Tmpfs::mount();
    // Neither ELF nor `#!`: the kernel opens it for execution (the permission event fires and
    // is allowed), then execve fails with ENOEXEC and the C library's execvp runs
    // /bin/sh on it in the same process, an exec from an unmarked mount.
    let script = fs.path().join(unique("no-shebang"));
    std::fs::write(&script, "sleep 1\nexit 7\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let rec = Recorder::new();
    let f = filter(&product, rec.clone());
    f.config("FilterOwnRequests=1").unwrap();
    f.add_controlled_exec_path(fs.path().to_str().unwrap())
        .unwrap();
    if !start_exec_control(
        "an_allowed_exec_that_fails_does_not_hide_the_next_exec",
        &f,
        &fs,
        0,
    ) {
        return;
    }
    f.add_filtered_process_by_id(i64::from(ME()), false)
        .unwrap();
    let mut cmd = Command::new(&script);
    // A pre_exec hook makes the standard library fork and call execvp (posix_spawn would
    // not retry with /bin/sh).
    // SAFETY: the hook does nothing.
    unsafe { std::os::unix::process::CommandExt::pre_exec(&mut cmd, || Ok(())) };
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    assert_eq!(child.wait().unwrap().code(), Some(7));
    let mine = rec.wait_for(2, |s| matches!(s, Seen::Created(c) if c.process_id == pid));
    let images: Vec<_> = mine
        .iter()
        .map(|s| match s {
            Seen::Created(c) => c.image_file_name.clone(),
            _ => unreachable!(),
        })
        .collect();
    let shell = std::fs::canonicalize("/bin/sh").unwrap();
    assert_eq!(
        images,
        vec![script.to_str().unwrap(), shell.to_str().unwrap()],
        "{mine:?}"
    );
    f.stop_filter().unwrap();
}

#[test]
fn expired_exec_goes_ahead_at_the_deadline() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    expired_exec("expired_exec_goes_ahead_at_the_deadline", false);
}

#[test]
fn expired_exec_is_denied_with_deny_expired_events() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    expired_exec("expired_exec_is_denied_with_deny_expired_events", true);
}

fn expired_exec(test: &str, deny: bool) {
    let product = Product::install();
    let fs = Tmpfs::mount();
    let slow = fs.copy("/bin/true", &unique("slow"));
    let rec = Recorder::deciding(|_| {
        std::thread::sleep(Duration::from_millis(4500));
        Err(Error::from_code(code::ERROR_ACCESS_DENIED, "too late"))
    });
    let f = filter(&product, rec.clone());
    f.config("FilterOwnRequests=1").unwrap();
    f.config(&format!("DenyExpiredEvents={deny}")).unwrap();
    f.add_controlled_exec_path(fs.path().to_str().unwrap())
        .unwrap();
    if !start_exec_control(test, &f, &fs, 3000) {
        return;
    }
    f.add_filtered_process_by_id(i64::from(ME()), false)
        .unwrap();
    let started = Instant::now();
    let result = Command::new(&slow).status();
    assert!(started.elapsed() >= Duration::from_millis(3000));
    if deny {
        assert_eq!(result.unwrap_err().raw_os_error(), Some(libc::EPERM));
    } else {
        assert!(result.unwrap().success());
    }
    f.stop_filter().unwrap();
}

#[test]
fn reset_timeout_extends_the_deadline() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let product = Product::install();
    let fs = Tmpfs::mount();
    let slow = fs.copy("/bin/true", &unique("slow"));
    let token_uid = Arc::new(Mutex::new(None));
    let token = token_uid.clone();
    let filter_slot: Arc<Mutex<Option<Arc<ProcessFilter>>>> = Arc::new(Mutex::new(None));
    let slot = filter_slot.clone();
    let rec = Recorder::deciding(move |_| {
        let f = slot.lock().unwrap().clone().unwrap();
        f.reset_timeout(6000)?;
        *token.lock().unwrap() = Some(f.get_originator_token()?.uid);
        std::thread::sleep(Duration::from_millis(4000));
        Err(Error::from_code(
            code::ERROR_ACCESS_DENIED,
            "decided late, in time",
        ))
    });
    let f = Arc::new(filter(&product, rec.clone()));
    *filter_slot.lock().unwrap() = Some(f.clone());
    f.config("FilterOwnRequests=1").unwrap();
    f.add_controlled_exec_path(fs.path().to_str().unwrap())
        .unwrap();
    if !start_exec_control("reset_timeout_extends_the_deadline", &f, &fs, 3000) {
        return;
    }
    f.add_filtered_process_by_id(i64::from(ME()), false)
        .unwrap();
    let started = Instant::now();
    let err = Command::new(&slow).status().unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(4000));
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert_eq!(*token_uid.lock().unwrap(), Some(0));
    assert_eq!(
        f.reset_timeout(5000).unwrap_err().code(),
        code::ERROR_NO_CALLBACK_ACTIVE
    );
    assert_eq!(
        f.get_originator_token().unwrap_err().code(),
        code::ERROR_NO_CALLBACK_ACTIVE
    );
    f.stop_filter().unwrap();
    filter_slot.lock().unwrap().take();
}

#[test]
fn stopping_while_a_handler_blocks_releases_the_held_exec() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let product = Product::install();
    let fs = Tmpfs::mount();
    let held = fs.copy("/bin/true", &unique("held"));
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let entered_tx = Mutex::new(entered_tx);
    let release_rx = Mutex::new(release_rx);
    let rec = Recorder::deciding(move |_| {
        entered_tx.lock().unwrap().send(()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
        Err(Error::from_code(
            code::ERROR_ACCESS_DENIED,
            "ignored: stopped",
        ))
    });
    let f = Arc::new(filter(&product, rec.clone()));
    f.config("FilterOwnRequests=1").unwrap();
    f.add_controlled_exec_path(fs.path().to_str().unwrap())
        .unwrap();
    if !start_exec_control(
        "stopping_while_a_handler_blocks_releases_the_held_exec",
        &f,
        &fs,
        0,
    ) {
        return;
    }
    f.add_filtered_process_by_id(i64::from(ME()), false)
        .unwrap();
    let image = held.clone();
    let spawner = std::thread::spawn(move || Command::new(&image).status());
    entered_rx.recv().unwrap();
    let stopper = {
        let f = f.clone();
        std::thread::spawn(move || f.stop_filter())
    };
    let status = spawner.join().unwrap().unwrap();
    assert!(
        status.success(),
        "the held exec must be allowed by stop_filter"
    );
    assert!(
        !stopper.is_finished(),
        "stop_filter waits for the running handler"
    );
    release_tx.send(()).unwrap();
    stopper.join().unwrap().unwrap();
}

#[test]
fn eight_threads_give_eight_creations_and_terminations() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let product = Product::install();
    let rec = Recorder::new();
    let f = filter(&product, rec.clone());
    f.start_filter(0).unwrap();
    f.add_filtered_process_by_id(-1, false).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "thread_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FSGATE_PROCESS_THREAD_HELPER", "8")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tids: Vec<u32> = stdout
        .lines()
        .filter_map(|l| l.split("helper-thread ").nth(1))
        .map(|t| t.trim().parse().unwrap())
        .collect();
    assert_eq!(tids.len(), 8, "{stdout}");
    let made = rec.wait_for(
        8,
        |s| matches!(s, Seen::ThreadCreated(t) if tids.contains(&t.thread_id)),
    );
    let ended = rec.wait_for(
        8,
        |s| matches!(s, Seen::ThreadTerminated(t) if tids.contains(&t.thread_id)),
    );
    let settled_made =
        rec.settled(|s| matches!(s, Seen::ThreadCreated(t) if tids.contains(&t.thread_id)));
    assert_eq!(made.len(), 8);
    assert_eq!(ended.len(), 8);
    assert_eq!(settled_made.len(), 8);
    let Seen::ThreadCreated(t) = &made[0] else {
        panic!()
    };
    assert_eq!(t.process_id, t.creating_process_id);
    assert_ne!(t.thread_id, t.process_id);
}

/// Not a test on its own: the 8-thread program the test above runs (does nothing unless
/// `FSGATE_PROCESS_THREAD_HELPER` is set).
#[test]
fn thread_helper() {
    let Ok(n) = std::env::var("FSGATE_PROCESS_THREAD_HELPER") else {
        return;
    };
    let n: usize = n.parse().unwrap();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            std::thread::spawn(|| {
                println!(
                    "helper-thread {}",
                    rustix::thread::gettid().as_raw_nonzero()
                );
                std::thread::sleep(Duration::from_millis(100));
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn fork_storm_of_2000_processes_loses_no_event() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    const N: usize = 2000;
    let product = Product::install();
    let fs = Tmpfs::mount();
    let image = fs.copy("/bin/true", &unique("storm"));
    let rec = Recorder::new();
    let _filter = own_filter(&product, rec.clone(), true);
    let mut pids = std::collections::HashSet::new();
    for _ in 0..N {
        let mut c = Command::new(&image).spawn().unwrap();
        pids.insert(c.id());
        c.wait().unwrap();
    }
    let created = rec.wait_for(N, |s| created_image(s, &image));
    let ended = rec.wait_for(
        N,
        |s| matches!(s, Seen::Terminated(t) if pids.contains(&t.process_id)),
    );
    let errors: Vec<Seen> = rec
        .snapshot()
        .into_iter()
        .filter(|s| matches!(s, Seen::Error(..)))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(created.len(), N);
    assert_eq!(ended.len(), N);
}

#[test]
fn start_errors_follow_the_reference() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let f = ProcessFilter::new(Recorder::new());
    assert_eq!(f.start_filter(0).unwrap_err().code(), code::ERROR_NOT_READY);
    let missing = tempfile::tempdir().unwrap();
    let e = f
        .initialize_with(fsgate_install::Installer::new(missing.path()), GUID)
        .unwrap_err();
    assert_eq!(e.code(), code::ERROR_FILE_NOT_FOUND);
    let product = Product::install();
    f.initialize_with(product.installer(), GUID).unwrap();
    assert_eq!(
        f.add_filtered_process_by_id(-1, false).unwrap_err().code(),
        code::ERROR_NOT_READY
    );
    assert_eq!(
        f.start_filter(1000).unwrap_err().code(),
        code::ERROR_IMPLEMENTATION_LIMIT
    );
    f.start_filter(3000).unwrap();
    assert!(f.active());
    assert_eq!(
        f.start_filter(0).unwrap_err().code(),
        code::ERROR_CONNECTION_ACTIVE
    );
    assert_eq!(
        f.config("MaxWorkerThreadCount=2").unwrap_err().code(),
        code::ERROR_CONNECTION_ACTIVE
    );
    let e = f.add_filtered_process_by_id(0, false).unwrap_err();
    assert!(e.message().contains("process_id"));
    f.stop_filter().unwrap();
    f.stop_filter().unwrap();
    f.start_filter(0).unwrap();
    f.stop_filter().unwrap();
}

#[test]
fn pid_rules_are_dropped_when_their_process_exits() {
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let product = Product::install();
    let rec = Recorder::new();
    let f = filter(&product, rec.clone());
    f.start_filter(0).unwrap();
    let mut sleeper = Command::new("/bin/sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id();
    f.add_filtered_process_by_id(i64::from(pid), false).unwrap();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    // The exit record fires the termination (the rule still covered the process) and then
    // drops the rule, under one lock.
    let ended = rec.wait_for(
        1,
        |s| matches!(s, Seen::Terminated(t) if t.process_id == pid),
    );
    assert_eq!(ended.len(), 1);
    let e = f.remove_filtered_process_by_id(i64::from(pid)).unwrap_err();
    assert_eq!(e.code(), code::ERROR_FILE_NOT_FOUND);
    let e = f
        .add_filtered_process_by_id(i64::from(pid), false)
        .unwrap_err();
    assert!(e.message().contains(&pid.to_string()));
}

#[test]
fn snapshot_and_process_names() {
    let f = ProcessFilter::new(Recorder::new());
    f.set_track_command_line(true).unwrap();
    f.create_running_processes_snapshot().unwrap();
    let n = f.running_process_count();
    assert!(n > 0);
    let me = (0..n)
        .find(|&i| f.running_process_process_id(i) == Some(ME()))
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    assert_eq!(
        f.running_process_process_name(me).unwrap(),
        exe.to_str().unwrap()
    );
    assert!(f
        .running_process_command_line(me)
        .unwrap()
        .contains("process_filter"));
    assert_eq!(f.running_process_process_id(n), None);
    assert_eq!(f.get_process_name(ME()), exe.to_str().unwrap());
    assert_eq!(f.get_process_name(u32::MAX - 1), "");
    f.close_running_processes_snapshot().unwrap();
    assert_eq!(f.running_process_count(), 0);
}

#[test]
fn properties_and_settings_keep_the_reference_names() {
    let f = ProcessFilter::new(Recorder::new());
    assert_eq!(f.altitude(), "400055");
    f.set_altitude("360000").unwrap();
    assert!(f.set_altitude("high").is_err());
    f.set_strict_altitude(true);
    assert!(f.strict_altitude());
    f.set_tag(-7);
    assert_eq!(f.tag(), -7);
    f.set_serialize_events(true).unwrap();
    assert!(f.serialize_events());
    assert_eq!(f.config("EventsToFire").unwrap(), "0");
    assert_eq!(f.config("EventsToFire=-1").unwrap(), "-1");
    assert_eq!(f.config("eventstofire=9").unwrap(), "9");
    for name in ["FilterOwnRequests", "DenyExpiredEvents"] {
        assert_eq!(f.config(name).unwrap(), "False");
        assert_eq!(f.config(&format!("{name}=yes")).unwrap(), "True");
    }
    for name in [
        "MaxWorkerThreadCount",
        "MinWorkerThreadCount",
        "WorkerInitialStackSize",
    ] {
        assert_eq!(f.config(name).unwrap(), "0");
    }
    assert!(f
        .config("BuildInfo")
        .unwrap()
        .contains(env!("CARGO_PKG_VERSION")));
    assert!(!f.config("LicenseInfo").unwrap().is_empty());
    assert!(f.config("NoSuchSetting").is_err());
}

#[test]
fn logging_enabled_is_stored_in_the_installation() {
    let f = ProcessFilter::new(Recorder::new());
    let e = f.config("LoggingEnabled").unwrap_err();
    assert_eq!(e.code(), code::ERROR_NOT_READY);
    assert!(e.message().contains("initialize"), "{e}");
    let product = Product::install();
    let root = product.root.path();
    fsgate_install::set_logging_enabled(root, true).unwrap();
    f.initialize_with(product.installer(), GUID).unwrap();
    assert_eq!(f.config("LoggingEnabled").unwrap(), "True");
    assert_eq!(f.config("loggingenabled=no").unwrap(), "False");
    assert!(!fsgate_install::logging_enabled(root).unwrap());
    let e = f.config("LoggingEnabled=maybe").unwrap_err();
    assert!(e.message().contains("LoggingEnabled"), "{e}");
    assert!(!fsgate_install::logging_enabled(root).unwrap());
    // Another instance (another application) sees what this one stored.
    f.config("LoggingEnabled=1").unwrap();
    let other = ProcessFilter::new(Recorder::new());
    other.initialize_with(product.installer(), GUID).unwrap();
    assert_eq!(other.config("LoggingEnabled").unwrap(), "True");
}

struct Boot(AtomicUsize);
impl fsgate_core::shutdown::Executor for Boot {
    fn has_systemd(&self) -> bool {
        true
    }
    fn may_shut_down(&self) -> bool {
        true
    }
    fn execute(&self, plan: &fsgate_core::shutdown::Plan) -> std::io::Result<()> {
        assert_eq!(
            plan,
            &fsgate_core::shutdown::Plan::Command(vec![
                "shutdown".into(),
                "-r".into(),
                "+1".into(),
                "bye".into()
            ])
        );
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn shutdown_system_goes_through_the_shared_executor() {
    let f = ProcessFilter::new(Recorder::new());
    let boot = Boot(AtomicUsize::new(0));
    assert!(f
        .shutdown_system_with(&boot, "bye", 30, true, true)
        .unwrap());
    assert_eq!(boot.0.load(Ordering::SeqCst), 1);
}

#[allow(dead_code)]
fn assert_events_object_safe(_: &dyn ProcessEvents) {}

/// Whether a listener without `CAP_NET_ADMIN` is accepted is the kernel build's choice
/// (mainline 6.6 and later accept it, other builds refuse it at the bind or at the listen
/// request): the probe asks this kernel with plain socket calls, and the filter, started on
/// a thread without the capability, must then report events or the documented 1314.
#[test]
fn without_cap_net_admin_the_connector_reports_events_where_the_kernel_allows_it_else_1314() {
    let test =
        "without_cap_net_admin_the_connector_reports_events_where_the_kernel_allows_it_else_1314";
    require_root!("the process connector and fanotify need root (CI runs as root)");
    let kernel = probe_unprivileged_listener();
    eprintln!("{test}: a listener without CAP_NET_ADMIN on this kernel build: {kernel:?}");
    let product = Product::install();
    let rec = Recorder::new();
    let f = ProcessFilter::new(rec.clone());
    f.initialize_with(product.installer(), GUID).unwrap();
    f.config("EventsToFire=27").unwrap();
    let started = std::thread::scope(|s| {
        s.spawn(|| {
            drop_net_admin_on_this_thread();
            f.start_filter(0)?;
            f.add_filtered_process_by_id(-1, false).unwrap();
            let mut child = Command::new("/bin/true").spawn().unwrap();
            child.wait().unwrap();
            Ok::<u32, Error>(child.id())
        })
        .join()
        .unwrap()
    });
    match kernel {
        UnprivilegedListener::Accepted => {
            let pid = started.unwrap();
            let ended = rec.wait_for(
                1,
                |s| matches!(s, Seen::Terminated(t) if t.process_id == pid),
            );
            assert_eq!(ended.len(), 1);
            let errors = rec.settled(|s| matches!(s, Seen::Error(..)));
            assert!(errors.is_empty(), "{errors:?}");
        }
        UnprivilegedListener::RefusedAtJoin(errno) => {
            assert_eq!(errno, libc::EPERM, "the kernel refused the bind");
            let e = started.unwrap_err();
            assert_eq!(e.code(), code::ERROR_PRIVILEGE_NOT_HELD, "{e}");
            assert_eq!(e.errno(), libc::EPERM, "{e}");
            assert!(e.message().contains("CAP_NET_ADMIN"), "{e}");
            assert!(!f.active(), "a refused start starts nothing");
            assert!(rec.settled(|_| true).is_empty());
        }
        UnprivilegedListener::RefusedAtListen(err) => {
            assert_eq!(
                err,
                libc::EPERM as u32,
                "the kernel refused the listen request"
            );
            started.unwrap();
            let errors = rec.wait_for(1, |s| matches!(s, Seen::Error(..)));
            assert_eq!(errors.len(), 1, "{errors:?}");
            let Seen::Error(error_code, message) = &errors[0] else {
                unreachable!()
            };
            assert_eq!(*error_code, code::ERROR_PRIVILEGE_NOT_HELD);
            assert!(message.contains("CAP_NET_ADMIN"), "{message}");
        }
    }
    f.stop_filter().unwrap();
}
