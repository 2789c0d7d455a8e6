//! The namespace: hard links and link counts, renames (replacing, refusing, exchanging),
//! directory errors and symlinks.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{e, listing};
use crate::sys;

/// `p`'s link count, or 0 when it cannot be stat'ed.
fn nlink(p: &Path) -> u64 {
    fs::symlink_metadata(p).map(|m| m.nlink()).unwrap_or(0)
}

pub fn link_counts(d: &Path) -> Vec<String> {
    let (a, b) = (d.join("a"), d.join("b"));
    fs::write(&a, b"x").unwrap();
    let mut out = vec![format!("file {}", nlink(&a))];
    fs::hard_link(&a, &b).unwrap();
    out.push(format!("after link {} {}", nlink(&a), nlink(&b)));
    out.push(format!(
        "same inode {}",
        fs::metadata(&a).unwrap().ino() == fs::metadata(&b).unwrap().ino()
    ));
    fs::write(&b, b"shared").unwrap();
    out.push(format!("data shared {:?}", fs::read(&a).unwrap()));
    fs::remove_file(&a).unwrap();
    out.push(format!("after unlink {}", nlink(&b)));
    out.push(format!(
        "link to a directory: {}",
        e(fs::hard_link(d, d.join("dl")))
    ));
    let sub = d.join("s");
    fs::create_dir(&sub).unwrap();
    out.push(format!("empty directory {}", nlink(&sub)));
    fs::create_dir(sub.join("t")).unwrap();
    fs::create_dir(sub.join("u")).unwrap();
    out.push(format!("directory with two subdirectories {}", nlink(&sub)));
    fs::remove_dir(sub.join("u")).unwrap();
    out.push(format!("after rmdir {}", nlink(&sub)));
    out
}

/// Parents' link counts as directories are made, removed, moved between parents, moved
/// over empty directories and exchanged with files; a moved directory's `..`; a file's
/// count when a rename replaces one of its names.
pub fn link_counts_across_renames(d: &Path) -> Vec<String> {
    let (p1, p2) = (d.join("p1"), d.join("p2"));
    fs::create_dir(&p1).unwrap();
    fs::create_dir(&p2).unwrap();
    let counts = |what: &str| format!("{what}: p1 {} p2 {}", nlink(&p1), nlink(&p2));
    let mut out = vec![counts("new parents")];
    fs::create_dir(p1.join("a")).unwrap();
    fs::create_dir(p1.join("b")).unwrap();
    out.push(counts("after two mkdir in p1"));
    out.push(format!("rmdir b: {}", e(fs::remove_dir(p1.join("b")))));
    out.push(counts("after rmdir"));
    out.push(format!(
        "move a to p2: {}",
        e(fs::rename(p1.join("a"), p2.join("a")))
    ));
    out.push(counts("after moving a directory"));
    out.push(format!(
        "moved directory's own count: {}",
        nlink(&p2.join("a"))
    ));
    let dotdot = fs::metadata(p2.join("a/..")).map(|m| m.ino());
    out.push(format!(
        "moved directory's .. is its new parent: {}",
        dotdot.ok() == fs::metadata(&p2).ok().map(|m| m.ino())
    ));
    fs::write(p1.join("f"), b"f").unwrap();
    out.push(format!(
        "move a file to p2: {}",
        e(fs::rename(p1.join("f"), p2.join("f")))
    ));
    out.push(counts("after moving a file"));
    fs::create_dir(p1.join("c")).unwrap();
    fs::create_dir(p2.join("empty")).unwrap();
    out.push(counts("before replacing an empty directory"));
    out.push(format!(
        "move c over p2/empty: {}",
        e(fs::rename(p1.join("c"), p2.join("empty")))
    ));
    out.push(counts("after replacing an empty directory"));
    out.push(format!(
        "rename within p2: {}",
        e(fs::rename(p2.join("a"), p2.join("a2")))
    ));
    out.push(counts("after renaming within a parent"));
    fs::write(p1.join("g"), b"g").unwrap();
    out.push(format!(
        "exchange p2/a2 with the file p1/g: {}",
        e(sys::rename2(
            &p2.join("a2"),
            &p1.join("g"),
            libc::RENAME_EXCHANGE
        ))
    ));
    out.push(counts("after exchanging a directory with a file"));
    out.push(format!("p1 {:?} p2 {:?}", listing(&p1), listing(&p2)));
    out.push(format!("rmdir p1/g: {}", e(fs::remove_dir(p1.join("g")))));
    out.push(format!(
        "rmdir p2/empty: {}",
        e(fs::remove_dir(p2.join("empty")))
    ));
    out.push(counts("after removing both"));

    let (x, y, z) = (d.join("x"), d.join("y"), d.join("z"));
    fs::write(&x, b"x").unwrap();
    fs::hard_link(&x, &y).unwrap();
    fs::write(&z, b"z").unwrap();
    out.push(format!(
        "replace a name of a linked file: {}",
        e(fs::rename(&z, &x))
    ));
    out.push(format!(
        "the other name: nlink {} content {:?}; the new x: nlink {} content {:?}",
        nlink(&y),
        fs::read(&y).unwrap_or_default(),
        nlink(&x),
        fs::read(&x).unwrap_or_default()
    ));
    out
}

pub fn rename_edge_cases(d: &Path) -> Vec<String> {
    let p = |n: &str| d.join(n);
    for f in ["f", "g", "h"] {
        fs::write(p(f), f).unwrap();
    }
    for x in ["dir", "empty", "full", "full/inner"] {
        fs::create_dir(p(x)).unwrap();
    }
    let mut out = vec![format!("onto itself: {}", e(fs::rename(p("f"), p("f"))))];
    out.push(format!("still there {:?}", fs::read(p("f")).unwrap()));
    out.push(format!("replace file: {}", e(fs::rename(p("g"), p("f")))));
    out.push(format!("replaced content {:?}", fs::read(p("f")).unwrap()));
    out.push(format!(
        "file over directory: {}",
        e(fs::rename(p("f"), p("dir")))
    ));
    out.push(format!(
        "file over non-empty directory: {}",
        e(fs::rename(p("f"), p("full")))
    ));
    out.push(format!(
        "directory over file: {}",
        e(fs::rename(p("dir"), p("f")))
    ));
    out.push(format!(
        "directory over non-empty directory: {}",
        e(fs::rename(p("dir"), p("full")))
    ));
    out.push(format!(
        "directory over empty directory: {}",
        e(fs::rename(p("dir"), p("empty")))
    ));
    out.push(format!(
        "directory into its own subdirectory: {}",
        e(fs::rename(p("full"), p("full/inner/x")))
    ));
    out.push(format!(
        "directory onto its own subdirectory: {}",
        e(fs::rename(p("full"), p("full/inner")))
    ));
    out.push(format!(
        "directory onto its parent: {}",
        e(fs::rename(p("full/inner"), d))
    ));
    out.push(format!(
        "RENAME_NOREPLACE onto existing: {}",
        e(sys::rename2(&p("h"), &p("f"), libc::RENAME_NOREPLACE))
    ));
    out.push(format!(
        "RENAME_NOREPLACE onto an existing directory: {}",
        e(sys::rename2(
            &p("empty"),
            &p("full"),
            libc::RENAME_NOREPLACE
        ))
    ));
    out.push(format!(
        "RENAME_NOREPLACE to a new name: {}",
        e(sys::rename2(&p("h"), &p("h2"), libc::RENAME_NOREPLACE))
    ));
    out.push(format!(
        "missing source: {}",
        e(fs::rename(p("nope"), p("x")))
    ));
    out.push(format!(
        "into a missing directory: {}",
        e(fs::rename(p("h2"), p("nowhere/x")))
    ));
    out.push(format!(
        "with a file as a directory: {}",
        e(fs::rename(p("h2"), p("f/x")))
    ));
    fs::create_dir(p("other")).unwrap();
    out.push(format!(
        "across directories: {}",
        e(fs::rename(p("h2"), p("other/moved")))
    ));
    fs::hard_link(p("f"), p("f-link")).unwrap();
    out.push(format!(
        "onto a hard link of itself: {}",
        e(fs::rename(p("f"), p("f-link")))
    ));
    out.push(format!("listing {:?}", listing(d)));
    out.push(format!("other {:?}", listing(&p("other"))));
    out
}

/// `RENAME_EXCHANGE` of two files, a file and a directory, across directories, with a
/// missing name, combined with `RENAME_NOREPLACE`, and into its own subdirectory.
pub fn rename_exchange(d: &Path) -> Vec<String> {
    let p = |n: &str| d.join(n);
    fs::write(p("a"), b"content of a").unwrap();
    fs::write(p("b"), b"content of b").unwrap();
    fs::create_dir(p("dir")).unwrap();
    fs::write(p("dir/inside"), b"inside").unwrap();
    fs::create_dir(p("other")).unwrap();
    fs::write(p("other/c"), b"content of c").unwrap();
    let read = |n: &str| {
        fs::read(p(n)).map_or_else(
            |e| sys::error_name(&e),
            |b| String::from_utf8_lossy(&b).into(),
        )
    };
    let exchange = |a: &str, b: &str| e(sys::rename2(&p(a), &p(b), libc::RENAME_EXCHANGE));
    let mut out = vec![format!("two files: {}", exchange("a", "b"))];
    out.push(format!("a now {:?} b now {:?}", read("a"), read("b")));
    out.push(format!("file with a directory: {}", exchange("a", "dir")));
    out.push(format!(
        "a is a directory {} dir is a file {} a/inside {:?} dir {:?}",
        p("a").is_dir(),
        p("dir").is_file(),
        read("a/inside"),
        read("dir")
    ));
    out.push(format!("across directories: {}", exchange("b", "other/c")));
    out.push(format!(
        "b now {:?} other/c now {:?}",
        read("b"),
        read("other/c")
    ));
    out.push(format!("with a missing name: {}", exchange("b", "missing")));
    out.push(format!(
        "with RENAME_NOREPLACE: {}",
        e(sys::rename2(
            &p("b"),
            &p("dir"),
            libc::RENAME_EXCHANGE | libc::RENAME_NOREPLACE
        ))
    ));
    out.push(format!("mkdir a/sub: {}", e(fs::create_dir(p("a/sub")))));
    out.push(format!(
        "a directory with its own subdirectory: {}",
        exchange("a", "a/sub")
    ));
    out.push(format!("a name with itself: {}", exchange("b", "b")));
    out.push(format!(
        "listing {:?} other {:?}",
        listing(d),
        listing(&p("other"))
    ));
    out
}

pub fn directory_errors(d: &Path) -> Vec<String> {
    let (sub, f) = (d.join("s"), d.join("f"));
    fs::create_dir(&sub).unwrap();
    fs::write(sub.join("x"), b"").unwrap();
    fs::write(&f, b"").unwrap();
    vec![
        format!("mkdir existing: {}", e(fs::create_dir(&sub))),
        format!("mkdir over file: {}", e(fs::create_dir(&f))),
        format!("rmdir non-empty: {}", e(fs::remove_dir(&sub))),
        format!("rmdir file: {}", e(fs::remove_dir(&f))),
        format!("unlink directory: {}", e(fs::remove_file(&sub))),
        format!("rmdir missing: {}", e(fs::remove_dir(d.join("m")))),
        format!("mkdir in missing: {}", e(fs::create_dir(d.join("m/n")))),
        format!("rmdir dot: {}", e(fs::remove_dir(sub.join(".")))),
        format!("mkdir under a file: {}", e(fs::create_dir(f.join("n")))),
    ]
}

pub fn symlinks(d: &Path) -> Vec<String> {
    fs::write(d.join("target"), b"through").unwrap();
    std::os::unix::fs::symlink("target", d.join("l")).unwrap();
    std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
    std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
    let lm = fs::symlink_metadata(d.join("l")).unwrap();
    vec![
        format!("readlink {:?}", fs::read_link(d.join("l")).unwrap()),
        format!(
            "lstat is link {} size {}",
            lm.file_type().is_symlink(),
            lm.len()
        ),
        format!("read through {:?}", fs::read(d.join("l")).unwrap()),
        format!("dangling: {}", e(fs::read(d.join("dangling")))),
        format!("loop: {}", e(fs::read(d.join("loop")))),
        format!("readlink of a file: {}", e(fs::read_link(d.join("target")))),
        format!(
            "symlink over existing: {}",
            e(std::os::unix::fs::symlink("x", d.join("target")))
        ),
    ]
}
