//! Who made a request, through a real FUSE mount: the kernel names the calling thread, and
//! the events see that thread's process as the originator process and the thread itself as
//! the originator thread, from the main thread and from any other. The params' `originator`
//! says the same as the `get_originator_*` functions.

mod common;
use common::utf8;

use std::collections::HashMap;
use std::sync::Mutex;

use common::mount;
use fsgate_core::Result;
use fsgate_vfs::*;

/// What one event saw: the originator's process and thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Seen {
    process: u32,
    thread: u32,
}

/// Files `/who-*` exist; each event on them records its originator by file name.
#[derive(Default)]
struct Witness {
    lookups: Mutex<HashMap<String, Seen>>,
    handle_creators: Mutex<HashMap<String, u32>>,
    /// Events whose params' `originator` differed from what `get_originator_*` said.
    mismatches: Mutex<Vec<String>>,
}

impl Hooks for Witness {}

impl Events for Witness {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        if utf8(p.file_name).starts_with("/who-") {
            p.file_exists = true;
            let seen = Seen {
                process: get_originator_process_id()?,
                thread: get_originator_thread_id()?,
            };
            let from_params = (
                p.originator.pid(),
                p.originator.tid,
                p.originator.uid,
                p.originator.gid,
            );
            let from_functions = (
                seen.process,
                seen.thread,
                get_originator_user_id()?,
                get_originator_group_id()?,
            );
            if from_params != from_functions {
                self.mismatches.lock().unwrap().push(format!(
                    "{}: params {from_params:?}, functions {from_functions:?}",
                    utf8(p.file_name)
                ));
            }
            self.lookups
                .lock()
                .unwrap()
                .entry(utf8(p.file_name).to_string())
                .or_insert(seen);
        }
        Ok(())
    }

    fn on_open_file(&self, p: &mut OpenFileParams<'_, (), ()>) -> Result<()> {
        self.handle_creators.lock().unwrap().insert(
            utf8(p.file_name).to_string(),
            p.handle_info.get_handle_creator_process_id(),
        );
        Ok(())
    }

    fn on_read_file(&self, p: &mut ReadFileParams<'_, (), ()>) -> Result<()> {
        p.bytes_read = 0;
        Ok(())
    }
}

fn gettid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

#[test]
fn the_originator_is_the_callers_process_and_thread_from_any_thread() {
    let Some(m) = mount(
        "the_originator_is_the_callers_process_and_thread_from_any_thread",
        Options::default(),
        |_| Witness::default(),
    ) else {
        return;
    };
    let pid = std::process::id();
    let main_file = m.dir.join("who-main");
    std::fs::metadata(&main_file).unwrap();
    let main_thread = gettid();

    let (dir, callers) = (m.dir.clone(), 4);
    let threads: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..callers)
            .map(|i| {
                let dir = dir.clone();
                s.spawn(move || {
                    let path = dir.join(format!("who-{i}"));
                    std::fs::metadata(&path).unwrap();
                    drop(std::fs::File::open(&path).unwrap());
                    gettid()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let lookups = m.drive.events().lookups.lock().unwrap().clone();
    assert_eq!(
        lookups["/who-main"],
        Seen {
            process: pid,
            thread: main_thread
        }
    );
    let mismatches = m.drive.events().mismatches.lock().unwrap().clone();
    assert!(mismatches.is_empty(), "{mismatches:?}");
    let creators = m.drive.events().handle_creators.lock().unwrap().clone();
    for (i, tid) in threads.iter().enumerate() {
        assert_ne!(*tid, pid, "caller {i} ran on the main thread");
        let name = format!("/who-{i}");
        assert_eq!(
            lookups[&name],
            Seen {
                process: pid,
                thread: *tid
            },
            "{name}"
        );
        assert_eq!(creators[&name], pid, "the creator of a handle on {name}");
    }
}
