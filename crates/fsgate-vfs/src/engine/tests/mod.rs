//! Engine tests: the operations called directly, no mount and no root.

mod privileges;

use super::*;

#[test]
fn open_flags_map_to_reference_access_bits() {
    assert_eq!(desired_access(libc::O_RDONLY), access::FILE_READ_DATA);
    assert_eq!(desired_access(libc::O_WRONLY), access::FILE_WRITE_DATA);
    assert_eq!(
        desired_access(libc::O_RDWR | libc::O_APPEND),
        access::FILE_READ_DATA | access::FILE_WRITE_DATA | access::FILE_APPEND_DATA
    );
}

#[test]
fn keys_are_per_path_and_never_the_global_key() {
    let key = |s: &str| serial_key(Path::new(s));
    assert_eq!(key("/a"), key("/a"));
    assert_ne!(key("/a"), key("/b"));
    assert_ne!(key("/a").0, u64::MAX);
}

mod recorded {
    //! An instrumented drive: every event and every context's creation and drop is
    //! recorded, in order, on the test's own thread (the engine runs events on the calling
    //! thread; only the wire hands them to the dispatcher).

    use std::cell::{Cell, RefCell};
    use std::path::Path;

    use fsgate_core::{Error, Originator, Result};

    use crate::cache::BLOCK;
    use crate::events::Events;
    use crate::params::*;
    use crate::Hooks;

    thread_local! {
        static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
        static NEXT: Cell<u32> = const { Cell::new(1) };
        static CURSOR: Cell<usize> = const { Cell::new(0) };
        static ORIGINATOR: Cell<Option<Originator>> = const { Cell::new(None) };
        static OPENED_KIND: Cell<Option<FileKind>> = const { Cell::new(None) };
    }

    /// The kind the last `on_open_file` got.
    pub(super) fn opened_kind() -> Option<FileKind> {
        OPENED_KIND.with(Cell::take)
    }

    /// The originator the last `on_get_file_info` or `on_create_file` got.
    pub(super) fn last_originator() -> Option<Originator> {
        ORIGINATOR.with(Cell::take)
    }

    /// Whether `path` has `part` in it.
    fn has(path: &Path, part: &str) -> bool {
        path.to_string_lossy().contains(part)
    }

    /// Records one line.
    pub(super) fn record(line: String) {
        LOG.with(|l| l.borrow_mut().push(line));
    }

    /// The lines recorded since the last call.
    pub(super) fn take() -> Vec<String> {
        LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }

    /// The context lines (`+file1` created, `-file1` dropped) recorded since the last call.
    pub(super) fn contexts() -> Vec<String> {
        take()
            .into_iter()
            .filter(|l| l.starts_with(['+', '-']))
            .collect()
    }

    macro_rules! tracked {
        ($name:ident, $label:literal) => {
            /// A context that records its creation and its drop.
            pub(crate) struct $name(u32);
            impl $name {
                pub(crate) fn new() -> Self {
                    let id = NEXT.with(|n| n.replace(n.get() + 1));
                    record(format!("+{}{id}", $label));
                    Self(id)
                }
            }
            impl Drop for $name {
                fn drop(&mut self) {
                    record(format!("-{}{}", $label, self.0));
                }
            }
        };
    }
    tracked!(FileCtx, "file");
    tracked!(HandleCtx, "handle");
    tracked!(EnumCtx, "enum");

    /// How long every file of the drive is: three blocks and a bit.
    pub(super) const SIZE: u64 = 3 * BLOCK + 10;

    /// The byte at `position` of every file.
    pub(super) fn byte_at(position: u64) -> u8 {
        (position % 251) as u8
    }

    /// A drive whose files all exist (but names with `missing` in them), are [`SIZE`] bytes
    /// of [`byte_at`], and whose creates fail for names with `fail` in them. Names with
    /// `setid` have mode 0o6755, names with `cap` a capability attribute.
    pub(super) struct Recorder;

    impl Hooks for Recorder {}

    impl Events for Recorder {
        type FileContext = FileCtx;
        type HandleContext = HandleCtx;
        type EnumerationContext = EnumCtx;

        fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, FileCtx>) -> Result<()> {
            record(format!("get_file_info {}", p.file_name.display()));
            ORIGINATOR.with(|o| o.set(Some(p.originator)));
            p.file_exists = !has(p.file_name, "missing");
            p.info.size = SIZE;
            if has(p.file_name, "setid") {
                p.info.mode = 0o6755;
            }
            Ok(())
        }

        fn on_get_ea(&self, p: &mut GetEaParams<'_>) -> Result<()> {
            record(format!(
                "get_ea {} {}",
                p.file_name.display(),
                p.name.to_string_lossy()
            ));
            match has(p.file_name, "cap") {
                true => Ok(()),
                false => Err(Error::from_errno(libc::ENODATA, "no attribute")),
            }
        }

        fn on_set_ea(&self, p: &mut SetEaParams<'_>) -> Result<()> {
            record(format!(
                "set_ea {} {}",
                p.file_name.display(),
                p.name.to_string_lossy()
            ));
            Ok(())
        }

        fn on_remove_ea(&self, p: &mut RemoveEaParams<'_>) -> Result<()> {
            record(format!(
                "remove_ea {} {}",
                p.file_name.display(),
                p.name.to_string_lossy()
            ));
            Ok(())
        }

        fn on_create_file(&self, p: &mut CreateFileParams<'_, FileCtx, HandleCtx>) -> Result<()> {
            record(format!("create_file {}", p.file_name.display()));
            ORIGINATOR.with(|o| o.set(Some(p.originator)));
            *p.file_context = Some(FileCtx::new());
            *p.handle_context = Some(HandleCtx::new());
            if has(p.file_name, "fail") {
                return Err(Error::from_errno(libc::EACCES, "refused"));
            }
            // Names with `filled` keep the engine's pre-filled info and say so.
            p.info_filled = has(p.file_name, "filled");
            Ok(())
        }

        fn on_open_file(&self, p: &mut OpenFileParams<'_, FileCtx, HandleCtx>) -> Result<()> {
            record(format!("open_file {}", p.file_name.display()));
            p.file_context.get_or_insert_with(FileCtx::new);
            *p.handle_context = Some(HandleCtx::new());
            OPENED_KIND.with(|k| k.set(Some(p.kind)));
            Ok(())
        }

        fn on_close_file(&self, p: &mut CloseFileParams<'_, FileCtx, HandleCtx>) -> Result<()> {
            record(format!("close_file {}", p.file_name.display()));
            Ok(())
        }

        fn on_read_file(&self, p: &mut ReadFileParams<'_, FileCtx, HandleCtx>) -> Result<()> {
            record(format!(
                "read_file {} {}",
                p.file_name.display(),
                p.position
            ));
            let end = SIZE.min(p.position + p.buffer.len() as u64);
            let n = end.saturating_sub(p.position) as usize;
            for (i, b) in p.buffer[..n].iter_mut().enumerate() {
                *b = byte_at(p.position + i as u64);
            }
            p.bytes_read = n;
            Ok(())
        }

        fn on_enumerate_directory(
            &self,
            p: &mut EnumerateDirectoryParams<'_, FileCtx, HandleCtx, EnumCtx>,
        ) -> Result<()> {
            record(format!(
                "enumerate_directory {}",
                p.directory_name.display()
            ));
            if p.restart {
                CURSOR.with(|c| c.set(0));
            }
            p.enumeration_context.get_or_insert_with(EnumCtx::new);
            let at = CURSOR.with(|c| c.replace(c.get() + 1));
            if let Some(name) = ["x", "y"].get(at) {
                p.file_found = true;
                p.file_name = name.into();
            }
            Ok(())
        }

        fn on_close_directory_enumeration(
            &self,
            p: &mut CloseDirectoryEnumerationParams<'_, FileCtx, EnumCtx>,
        ) -> Result<()> {
            record(format!(
                "close_directory_enumeration {}",
                p.directory_name.display()
            ));
            Ok(())
        }

        fn on_write_file(&self, p: &mut WriteFileParams<'_, FileCtx, HandleCtx>) -> Result<()> {
            record(format!(
                "write_file {} {}",
                p.file_name.display(),
                p.position
            ));
            p.bytes_written = p.buffer.len();
            Ok(())
        }

        fn on_create_symbolic_link(&self, p: &mut CreateSymbolicLinkParams<'_>) -> Result<()> {
            record(format!("create_symbolic_link {}", p.file_name.display()));
            p.info_filled = has(p.file_name, "filled");
            Ok(())
        }

        fn on_create_hard_link(&self, p: &mut CreateHardLinkParams<'_>) -> Result<()> {
            record(format!("create_hard_link {}", p.link_name.display()));
            p.info_filled = has(p.link_name, "filled");
            Ok(())
        }

        fn on_set_file_attributes(
            &self,
            p: &mut SetFileAttributesParams<'_, FileCtx>,
        ) -> Result<()> {
            record(format!("set_file_attributes {}", p.file_name.display()));
            p.info_filled = has(p.file_name, "filled");
            Ok(())
        }
    }
}

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;

use fsgate_core::Originator;

/// A path in the drive.
fn p(s: &str) -> &Path {
    Path::new(s)
}

use crate::cache::BLOCK;
use crate::options::{FileCache, Options};
use recorded::{contexts, take, Recorder};

fn engine(options: Options) -> Engine<Recorder> {
    let engine = Engine::new(Arc::new(Recorder), options);
    take();
    engine
}

/// A write the kernel flags for clearing privileges.
const KILL: WriteMode = WriteMode {
    kill_privileges: true,
    write_back: false,
};

fn who() -> Originator {
    Originator::of_process(std::process::id(), 0, 0)
}

/// Looks `path` up as the kernel would before opening it: its inode.
fn looked_up(engine: &Engine<Recorder>, path: &Path) -> Ino {
    let info = engine.lookup(path, who()).unwrap().unwrap();
    let (ino, _) = engine.entry(path, &info).unwrap();
    take();
    ino
}

/// Opens `path` and registers the handle, as `OPEN` and its reply do.
fn opened(engine: &Engine<Recorder>, ino: Ino, path: &Path) -> Fh {
    let new = engine.open(ino, path, libc::O_RDWR, false, who()).unwrap();
    engine
        .register(ino, path, new, |_| {
            Err(std::io::ErrorKind::Unsupported.into())
        })
        .fh
}

#[test]
fn a_file_context_lives_from_the_first_open_to_the_last_close() {
    // The reference's table: A opens, B opens, B closes, C opens, A closes, C closes.
    let engine = engine(Options::default());
    let ino = looked_up(&engine, p("/f"));
    let a = opened(&engine, ino, p("/f"));
    assert_eq!(
        contexts(),
        ["+file1", "+handle2"],
        "1: FX, HXA before on_open_file"
    );
    let b = opened(&engine, ino, p("/f"));
    assert_eq!(contexts(), ["+handle3"], "2: HXB");
    engine.close(b, who()).unwrap();
    assert_eq!(contexts(), ["-handle3"], "3: HXB after on_close_file");
    let c = opened(&engine, ino, p("/f"));
    assert_eq!(contexts(), ["+handle4"], "4: HXC");
    engine.close(a, who()).unwrap();
    assert_eq!(contexts(), ["-handle2"], "5: HXA");
    engine.close(c, who()).unwrap();
    assert_eq!(
        contexts(),
        ["-file1", "-handle4"],
        "6: FX and HXC, after on_close_file"
    );
    assert!(lock(&engine.opens).files.is_empty());
    assert!(lock(&engine.opens).handles.is_empty());
}

#[test]
fn each_handle_has_its_own_context_and_open_close_events_follow_fire_all() {
    let engine = engine(Options {
        fire_all_open_close_events: false,
        ..Options::default()
    });
    let ino = looked_up(&engine, p("/f"));
    let a = opened(&engine, ino, p("/f"));
    let b = opened(&engine, ino, p("/f"));
    assert_ne!(a, b);
    assert!(
        lock_ref(&engine.handle(b).unwrap().state).context.is_none(),
        "a handle opened without an event has no context"
    );
    let events: Vec<String> = take()
        .into_iter()
        .filter(|l| !l.starts_with(['+', '-']))
        .collect();
    assert_eq!(events, ["open_file /f"], "only the first open fires");
    assert!(!Arc::ptr_eq(
        &engine.handle(a).unwrap().state,
        &engine.handle(b).unwrap().state
    ));
    engine.close(a, who()).unwrap();
    assert_eq!(
        take(),
        ["-handle2"],
        "not the last handle: no on_close_file"
    );
    engine.close(b, who()).unwrap();
    assert_eq!(
        take(),
        ["close_file /f", "-file1"],
        "the second open fired no event, so its handle has no context to drop"
    );
}

#[test]
fn a_failing_create_drops_its_contexts_at_once() {
    let engine = engine(Options::default());
    let failed = engine.create(p("/fail"), 0o644, libc::O_RDWR, who());
    assert_eq!(failed.err().map(|e| e.errno()), Some(libc::EACCES));
    assert_eq!(
        take(),
        [
            "create_file /fail",
            "+file1",
            "+handle2",
            "-handle2",
            "-file1"
        ]
    );
    assert!(lock(&engine.opens).files.is_empty());
}

#[test]
fn a_create_whose_reply_never_goes_drops_its_contexts_with_the_late_result() {
    // A timed-out CREATE: the job returned, the completion never registers the handle.
    let engine = engine(Options::default());
    let created = engine
        .create(p("/new"), 0o644, libc::O_RDWR, who())
        .unwrap();
    assert_eq!(contexts(), ["+file1", "+handle2"]);
    drop(created);
    assert_eq!(contexts(), ["-file1", "-handle2"]);
}

#[test]
fn mkdir_contexts_live_for_its_create_event_only() {
    let engine = engine(Options::default());
    engine
        .make_node(p("/d"), FileKind::Directory, 0, 0o755, who())
        .unwrap();
    assert_eq!(
        take(),
        [
            "create_file /d",
            "+file1",
            "+handle2",
            "-file1",
            "-handle2",
            "get_file_info /d"
        ]
    );
    assert!(lock(&engine.opens).files.is_empty());
}

/// A drive where the kernel opens files itself, with room for `limit` implicit handles.
fn kernel_opening(limit: usize) -> Engine<Recorder> {
    let mut engine = engine(Options {
        kernel_opens_files: true,
        file_cache: FileCache::System,
        ..Options::default()
    });
    engine.implicit_limit = limit;
    engine
}

#[test]
fn implicit_handles_past_the_limit_close_oldest_first() {
    let engine = kernel_opening(2);
    let inos: Vec<Ino> = [p("/a"), p("/b"), p("/c"), p("/d")]
        .iter()
        .map(|p| looked_up(&engine, p))
        .collect();
    for &ino in &inos {
        engine.implicit_handle(ino, who()).unwrap();
        assert_eq!(
            engine.implicit_handle(ino, who()).unwrap().info.handle_id,
            engine.implicit_of(ino).unwrap().0,
            "one implicit handle per inode"
        );
    }
    take();
    let surplus = engine.implicit_surplus();
    let names: Vec<&Path> = surplus.iter().map(|(p, _, _)| p.as_path()).collect();
    assert_eq!(names, [p("/a"), p("/b")], "two over the limit, the oldest");
    for (_, ino, fh) in surplus {
        engine.evict_implicit(ino, fh, who());
    }
    assert_eq!(
        take(),
        [
            "close_file /a",
            "-file1",
            "-handle2",
            "close_file /b",
            "-file3",
            "-handle4"
        ]
    );
    assert_eq!(engine.implicit_of(inos[0]), None);
    assert_eq!(engine.implicit_of(inos[1]), None);
    assert!(engine.implicit_of(inos[2]).is_some());
    assert!(engine.implicit_surplus().is_empty(), "within the limit now");
}

#[test]
fn an_implicit_handle_in_use_is_not_evicted_but_goes_back_in_line() {
    let engine = kernel_opening(1);
    let a = looked_up(&engine, p("/a"));
    let b = looked_up(&engine, p("/b"));
    let in_use = engine.implicit_handle(a, who()).unwrap();
    engine.implicit_handle(b, who()).unwrap();
    let surplus = engine.implicit_surplus();
    assert_eq!(surplus.len(), 1);
    let (_, ino, fh) = surplus[0].clone();
    assert_eq!(ino, a);
    engine.evict_implicit(ino, fh, who());
    assert_eq!(engine.implicit_of(a), Some(fh), "a request still holds it");
    drop(in_use);
    let surplus = engine.implicit_surplus();
    assert_eq!(
        surplus.iter().map(|s| s.1).collect::<Vec<_>>(),
        [b],
        "the handle in use went to the back of the line"
    );
}

#[test]
fn requests_naming_a_handle_the_engine_no_longer_has_are_served_implicitly() {
    let kernel = kernel_opening(8);
    let a = looked_up(&kernel, p("/a"));
    let fa = opened(&kernel, a, p("/a"));
    assert!(
        kernel.served_implicitly(a, Fh(0)),
        "a descriptor the kernel opened"
    );
    assert!(!kernel.served_implicitly(a, fa), "a handle the engine has");
    let evicted = Fh(fa.0 + 100);
    assert!(
        kernel.served_implicitly(a, evicted),
        "a created handle evicted since"
    );
    let plain = engine(Options::default());
    let b = looked_up(&plain, p("/b"));
    assert!(
        !plain.served_implicitly(b, evicted),
        "without KernelOpensFiles every handle is the kernel's own"
    );
}

#[test]
fn the_order_of_implicit_handles_stays_bounded_as_handles_close() {
    let engine = kernel_opening(64);
    for ino in 2..10_002 {
        engine.make_implicit(Ino(ino), Fh(ino));
        // Forgotten at once, as a created and deleted file is.
        lock(&engine.opens).implicit.remove_if(Ino(ino), Fh(ino));
    }
    engine.make_implicit(Ino(20_000), Fh(1));
    engine.make_implicit(Ino(20_000), Fh(1));
    let opens = lock(&engine.opens);
    assert!(opens.implicit.order_len() <= 2 * opens.implicit.len() + 65);
    assert_eq!(opens.implicit.get(Ino(20_000)), Some(Fh(1)));
}

#[test]
fn the_user_mode_cache_fires_one_read_per_block_and_serves_repeats_itself() {
    let engine = engine(Options {
        file_cache: FileCache::UserMode,
        user_mode_file_cache_size: 16 * BLOCK,
        ..Options::default()
    });
    let ino = looked_up(&engine, p("/f"));
    let h = engine.handle(opened(&engine, ino, p("/f"))).unwrap();
    take();
    let start = BLOCK - 5;
    let data = engine.cached_read(&h, p("/f"), start, 10, who()).unwrap();
    assert_eq!(
        data,
        (start..start + 10)
            .map(recorded::byte_at)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        take(),
        [
            "read_file /f 0".to_string(),
            format!("read_file /f {BLOCK}")
        ],
        "whole aligned blocks"
    );
    assert_eq!(
        engine.cached_read(&h, p("/f"), start, 10, who()).unwrap(),
        data
    );
    assert!(take().is_empty(), "served from the cache");
    // The end of the file: a short last block, and nothing past it.
    let tail = engine
        .cached_read(&h, p("/f"), recorded::SIZE - 4, 100, who())
        .unwrap();
    assert_eq!(tail.len(), 4);
    take();
    // A write drops the blocks it touched, and only those.
    engine
        .write(&h, p("/f"), BLOCK + 1, b"x", WriteMode::default(), who())
        .unwrap();
    take();
    engine.cached_read(&h, p("/f"), 0, 10, who()).unwrap();
    assert!(take().is_empty(), "block 0 untouched");
    engine.cached_read(&h, p("/f"), BLOCK, 10, who()).unwrap();
    assert_eq!(take(), [format!("read_file /f {BLOCK}")]);
}

#[test]
fn names_longer_than_255_bytes_fail_before_any_event() {
    let engine = engine(Options::default());
    let long = OsString::from_vec(vec![b'n'; NAME_MAX + 1]);
    let e = engine.child(namespace::ROOT, &long).unwrap_err();
    assert_eq!(e.errno(), libc::ENAMETOOLONG);
    assert!(take().is_empty(), "no event fired");
    let longest = OsString::from_vec(vec![b'n'; NAME_MAX]);
    let path = engine.child(namespace::ROOT, &longest).unwrap();
    assert_eq!(path.as_os_str().len(), NAME_MAX + 1);
}

#[test]
fn a_missing_name_is_none_and_gets_no_inode() {
    let engine = engine(Options::default());
    assert!(engine.lookup(p("/missing"), who()).unwrap().is_none());
    assert_eq!(lock(&engine.inodes).find(p("/missing")), None);
}

#[test]
fn a_listing_is_gathered_once_and_sent_from_any_offset_until_the_buffer_fills() {
    let engine = engine(Options::default());
    let d = looked_up(&engine, p("/d"));
    let x = looked_up(&engine, p("/d/x"));
    let new = engine
        .open(d, p("/d"), libc::O_RDONLY, true, who())
        .unwrap();
    let fh = engine
        .register(d, p("/d"), new, |_| {
            Err(std::io::ErrorKind::Unsupported.into())
        })
        .fh;
    let h = engine.handle(fh).unwrap();
    take();
    let entries = engine.listing(&h, p("/d"), who()).unwrap();
    assert_eq!(engine.listing(&h, p("/d"), who()).unwrap().len(), 2);
    assert_eq!(
        take(),
        [
            "enumerate_directory /d",
            "+enum3",
            "enumerate_directory /d",
            "enumerate_directory /d"
        ],
        "gathered at the first read only"
    );
    let mut sent = Vec::new();
    engine.list(d, p("/d"), &entries, 0, |ino, next, _, name| {
        sent.push((name.to_owned(), ino, next));
        false
    });
    let names: Vec<&OsStr> = sent.iter().map(|s| s.0.as_os_str()).collect();
    assert_eq!(names, [".", "..", "x", "y"]);
    assert_eq!((sent[0].1, sent[1].1, sent[2].1), (d, d, x));
    assert!(
        sent[3].1 .0 >= 1 << 63,
        "not looked up yet: a placeholder number"
    );
    assert_eq!(sent.iter().map(|s| s.2).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let mut resumed = Vec::new();
    engine.list(d, p("/d"), &entries, 3, |_, _, _, name| {
        resumed.push(name.to_owned());
        true
    });
    assert_eq!(resumed, ["y"], "from the offset, until the buffer is full");
    drop(h);
    engine.close(fh, who()).unwrap();
    assert_eq!(
        take(),
        [
            "close_directory_enumeration /d",
            "-enum3",
            "close_file /d",
            "-file1",
            "-handle2"
        ]
    );
}

/// The events (not the context lines) recorded since the last call.
fn events() -> Vec<String> {
    take()
        .into_iter()
        .filter(|l| !l.starts_with(['+', '-']))
        .collect()
}

#[test]
fn creates_that_fill_their_info_fire_no_get_file_info() {
    let engine = engine(Options::default());
    let caller = Originator::of_process(std::process::id(), 1234, 5678);
    let f = looked_up(&engine, p("/f"));

    engine
        .create(p("/plain"), 0o640, libc::O_RDWR, caller)
        .unwrap();
    assert_eq!(events(), ["create_file /plain", "get_file_info /plain"]);
    let created = engine
        .create(p("/filled"), 0o640, libc::O_RDWR, caller)
        .unwrap();
    assert_eq!(events(), ["create_file /filled"]);
    let info = &created.info;
    assert_eq!(
        (info.kind, info.mode, info.uid, info.gid),
        (FileKind::File, 0o640, 1234, 5678)
    );

    engine
        .make_node(p("/plain-d"), FileKind::Directory, 0, 0o750, caller)
        .unwrap();
    assert_eq!(events(), ["create_file /plain-d", "get_file_info /plain-d"]);
    let info = engine
        .make_node(p("/filled-d"), FileKind::Directory, 0, 0o750, caller)
        .unwrap();
    assert_eq!(events(), ["create_file /filled-d"]);
    assert_eq!(
        (info.kind, info.mode, info.hard_link_count),
        (FileKind::Directory, 0o750, 2)
    );

    engine.symlink(p("/plain-l"), p("target"), caller).unwrap();
    assert_eq!(
        events(),
        ["create_symbolic_link /plain-l", "get_file_info /plain-l"]
    );
    let info = engine.symlink(p("/filled-l"), p("target"), caller).unwrap();
    assert_eq!(events(), ["create_symbolic_link /filled-l"]);
    assert_eq!(
        (info.kind, info.mode, info.size, info.uid),
        (FileKind::Symlink, 0o777, 6, 1234)
    );

    engine.link(p("/f"), p("/plain-h"), who()).unwrap();
    assert_eq!(
        events(),
        ["create_hard_link /plain-h", "get_file_info /plain-h"]
    );
    engine.link(p("/f"), p("/filled-h"), who()).unwrap();
    assert_eq!(events(), ["create_hard_link /filled-h"]);

    let chmod = Changes {
        mode: Some(0o600),
        ..Changes::default()
    };
    engine.setattr(f, p("/f"), chmod, who()).unwrap();
    assert_eq!(events(), ["set_file_attributes /f", "get_file_info /f"]);
    let g = looked_up(&engine, p("/filled-g"));
    let info = engine.setattr(g, p("/filled-g"), chmod, who()).unwrap();
    assert_eq!(events(), ["set_file_attributes /filled-g"]);
    assert_eq!(info.mode, 0o600);
}

#[test]
fn events_carry_the_originator_of_their_request() {
    let engine = engine(Options::default());
    let first = Originator::new(std::process::id(), 11, 1234, 5678);
    engine.lookup(p("/f"), first).unwrap();
    assert_eq!(recorded::last_originator(), Some(first));
    let second = Originator::new(std::process::id(), 12, 4321, 8765);
    engine
        .create(p("/new"), 0o644, libc::O_RDWR, second)
        .unwrap();
    assert_eq!(
        recorded::last_originator(),
        Some(second),
        "the on_get_file_info after the create is the create's"
    );
}

#[test]
fn opens_say_whether_a_file_or_a_directory_is_opened() {
    let engine = engine(Options::default());
    let ino = looked_up(&engine, p("/f"));
    engine
        .open(ino, p("/f"), libc::O_RDONLY, false, who())
        .unwrap();
    assert_eq!(recorded::opened_kind(), Some(FileKind::File));
    let dir = looked_up(&engine, p("/d"));
    engine
        .open(dir, p("/d"), libc::O_RDONLY, true, who())
        .unwrap();
    assert_eq!(recorded::opened_kind(), Some(FileKind::Directory));
}
