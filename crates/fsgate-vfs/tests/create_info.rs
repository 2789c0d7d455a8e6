//! Creates that report what they created (the WinFsp-style create fills the file info):
//! a drive that fills the `info` of its create and set-attribute events gets no
//! `on_get_file_info` after them; one written before those fields existed still works, at
//! one `on_get_file_info` more per request.

mod common;
use common::utf8;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Mutex;

use fsgate_core::{code, Error, Result};
use fsgate_vfs::*;

/// A flat drive keeping each name's [`FileInfo`], recording every event it gets in order.
/// With `fill` it reports what its creates and attribute changes made.
#[derive(Default)]
struct Recorder {
    fill: bool,
    infos: Mutex<BTreeMap<String, FileInfo>>,
    log: Mutex<Vec<String>>,
}

impl Recorder {
    fn record(&self, event: &str) {
        self.log.lock().unwrap().push(event.to_string());
    }

    /// The `on_get_file_info` events that `op` fired after its `event` (the kernel's
    /// lookups before the request are not the create's).
    fn infos_after(&self, event: &str, op: impl FnOnce()) -> usize {
        self.log.lock().unwrap().clear();
        op();
        let log = self.log.lock().unwrap();
        let at = log
            .iter()
            .position(|e| e == event)
            .unwrap_or_else(|| panic!("{event} never fired: {log:?}"));
        log[at..].iter().filter(|e| *e == "get_file_info").count()
    }

    /// Keeps `info` for `name` and, when this drive fills, reports it in the event's output.
    fn store(&self, name: &str, info: &mut FileInfo, info_filled: &mut bool) {
        self.infos
            .lock()
            .unwrap()
            .insert(name.to_string(), info.clone());
        *info_filled = self.fill;
    }
}

impl Hooks for Recorder {}

impl Events for Recorder {
    type FileContext = ();
    type HandleContext = ();
    type EnumerationContext = ();

    fn on_get_file_info(&self, p: &mut GetFileInfoParams<'_, ()>) -> Result<()> {
        self.record("get_file_info");
        if let Some(info) = self.infos.lock().unwrap().get(utf8(p.file_name)) {
            p.file_exists = true;
            p.info = info.clone();
        }
        Ok(())
    }

    fn on_create_file(&self, p: &mut CreateFileParams<'_, (), ()>) -> Result<()> {
        self.record("create_file");
        self.store(utf8(p.file_name), &mut p.info, &mut p.info_filled);
        Ok(())
    }

    fn on_create_symbolic_link(&self, p: &mut CreateSymbolicLinkParams<'_>) -> Result<()> {
        self.record("create_symbolic_link");
        self.store(utf8(p.file_name), &mut p.info, &mut p.info_filled);
        Ok(())
    }

    fn on_create_hard_link(&self, p: &mut CreateHardLinkParams<'_>) -> Result<()> {
        self.record("create_hard_link");
        let mut infos = self.infos.lock().unwrap();
        let info = infos.get_mut(utf8(p.file_name)).ok_or_else(|| {
            Error::from_code(code::ERROR_FILE_NOT_FOUND, utf8(p.file_name).to_string())
        })?;
        info.hard_link_count += 1;
        p.info = info.clone();
        drop(infos);
        self.store(utf8(p.link_name), &mut p.info, &mut p.info_filled);
        Ok(())
    }

    fn on_set_file_attributes(&self, p: &mut SetFileAttributesParams<'_, ()>) -> Result<()> {
        self.record("set_file_attributes");
        let mut info = self.infos.lock().unwrap()[utf8(p.file_name)].clone();
        info.mode = p.mode.unwrap_or(info.mode);
        p.info = info;
        self.store(utf8(p.file_name), &mut p.info, &mut p.info_filled);
        Ok(())
    }

    fn on_get_symbolic_link_target(&self, p: &mut GetSymbolicLinkTargetParams<'_>) -> Result<()> {
        p.target = "target".into();
        Ok(())
    }
}

/// `on_get_file_info` events fired by `creat`, `mkdir`, `symlink`, `link` and `chmod`
/// themselves, in that order, on a drive that fills its events' `info` or not.
fn infos_per_create(test: &str, fill: bool) -> Option<[usize; 5]> {
    let options = Options {
        use_hard_links: true,
        ..Options::default()
    };
    let m = common::mount(test, options, |_| Recorder {
        fill,
        ..Recorder::default()
    })?;
    let d = m.drive.events();
    let at = |name: &str| m.dir.join(name);
    let counts = [
        d.infos_after("create_file", || drop(fs::File::create(at("f")).unwrap())),
        d.infos_after("create_file", || fs::create_dir(at("d")).unwrap()),
        d.infos_after("create_symbolic_link", || {
            std::os::unix::fs::symlink("target", at("l")).unwrap()
        }),
        d.infos_after("create_hard_link", || {
            fs::hard_link(at("f"), at("h")).unwrap()
        }),
        d.infos_after("set_file_attributes", || {
            fs::set_permissions(at("f"), fs::Permissions::from_mode(0o600)).unwrap()
        }),
    ];
    // What the kernel got, from the event or from on_get_file_info, is the same.
    let meta = fs::symlink_metadata(at("f")).unwrap();
    assert_eq!((meta.mode() & 0o7777, meta.nlink()), (0o600, 2));
    assert!(fs::symlink_metadata(at("l"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(Path::new(&at("d")).is_dir());
    Some(counts)
}

#[test]
fn a_drive_that_fills_create_info_gets_no_get_file_info_after_its_creates() {
    let Some(before) = infos_per_create("create_info before", false) else {
        return;
    };
    let Some(after) = infos_per_create("create_info after", true) else {
        return;
    };
    eprintln!("on_get_file_info per creat, mkdir, symlink, link, chmod: {before:?} -> {after:?}");
    assert_eq!(
        before, [1; 5],
        "a drive that does not fill: one more event each"
    );
    assert_eq!(after, [0; 5], "a drive that fills: none");
}
