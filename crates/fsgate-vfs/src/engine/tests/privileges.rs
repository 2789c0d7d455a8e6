//! Clearing privileges: set-id bits and the capability attribute, only when there is
//! something to clear.

use super::*;

#[test]
fn a_kill_request_that_clears_nothing_fires_no_event() {
    let engine = engine(Options::default());
    let ino = looked_up(&engine, p("/plain"));
    let h = engine.handle(opened(&engine, ino, p("/plain"))).unwrap();
    take();
    engine.remember_capability(ino, crate::engine::privileges::Capability::Absent);
    engine.write(&h, p("/plain"), 0, b"x", KILL, who()).unwrap();
    assert_eq!(
        take(),
        ["write_file /plain 0"],
        "mode known without set-id bits, capability known absent"
    );
}

#[test]
fn a_flagged_write_clears_set_id_bits_and_asks_for_the_capability_once() {
    let engine = engine(Options::default());
    let ino = looked_up(&engine, p("/setid"));
    let h = engine.handle(opened(&engine, ino, p("/setid"))).unwrap();
    take();
    engine.write(&h, p("/setid"), 0, b"x", KILL, who()).unwrap();
    assert_eq!(
        take(),
        [
            "set_file_attributes /setid",
            "get_file_info /setid",
            "get_ea /setid security.capability",
            "write_file /setid 0",
        ]
    );
    engine.write(&h, p("/setid"), 1, b"y", KILL, who()).unwrap();
    assert_eq!(
        take(),
        [
            "set_file_attributes /setid",
            "get_file_info /setid",
            "write_file /setid 1"
        ],
        "the drive still reports the bits (this drive ignores mode changes), the capability \
         is known absent"
    );
}

#[test]
fn a_file_with_a_capability_loses_it_on_a_flagged_write() {
    let engine = engine(Options::default());
    let ino = looked_up(&engine, p("/cap"));
    let h = engine.handle(opened(&engine, ino, p("/cap"))).unwrap();
    take();
    engine.write(&h, p("/cap"), 0, b"x", KILL, who()).unwrap();
    assert_eq!(
        take(),
        [
            "get_ea /cap security.capability",
            "remove_ea /cap security.capability",
            "write_file /cap 0",
        ]
    );
    engine.write(&h, p("/cap"), 1, b"x", KILL, who()).unwrap();
    assert_eq!(take(), ["write_file /cap 1"], "known gone now");
}

#[test]
fn a_created_file_is_known_to_have_no_capability() {
    let engine = engine(Options::default());
    let created = engine
        .create(p("/new-filled"), 0o644, libc::O_RDWR, who())
        .unwrap();
    let ino = created.ino;
    let (opened, _) = engine.created(ino, p("/new-filled"), created.handle, |_| {
        Err(std::io::ErrorKind::Unsupported.into())
    });
    let h = engine.handle(opened.fh).unwrap();
    take();
    engine
        .write(&h, p("/new-filled"), 0, b"x", KILL, who())
        .unwrap();
    assert_eq!(take(), ["write_file /new-filled 0"]);
    assert_eq!(
        lock(&engine.inodes).privileges(ino).map(|p| p.capability),
        Some(crate::engine::privileges::Capability::Absent)
    );
}

#[test]
fn the_capability_question_is_answered_without_the_drive_once_the_answer_is_known() {
    let engine = engine(Options::default());
    let name = OsStr::new(crate::engine::privileges::CAPABILITY);
    let plain = looked_up(&engine, p("/plain"));
    assert!(!engine.has_no_capability(plain, name), "not known yet");
    let e = engine
        .get_xattr(plain, p("/plain"), name, who())
        .unwrap_err();
    assert_eq!(e.errno(), libc::ENODATA);
    assert!(engine.has_no_capability(plain, name));
    assert!(!engine.has_no_capability(plain, OsStr::new("user.other")));
    let cap = looked_up(&engine, p("/cap"));
    engine.get_xattr(cap, p("/cap"), name, who()).unwrap();
    assert!(!engine.has_no_capability(cap, name));
    engine
        .set_xattr(plain, p("/plain"), name, b"v", 0, who())
        .unwrap();
    assert!(
        !engine.has_no_capability(plain, name),
        "a capability set through the drive is known"
    );
}
