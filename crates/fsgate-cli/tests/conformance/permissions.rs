//! Permission rules for callers other than root (uids 1000 and 1001 with their own group
//! only): access by mode, who may change modes, owners and times, the set-user-ID and
//! set-group-ID bits cleared on write and on chown, sticky and set-group-ID directories,
//! open flags that need write permission, and modes set through access ACLs (`cp -a`).

use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::{as_user, listing, mode, mode_and_owner};

/// Makes `p` a file holding `content`, owned by `uid:gid`, with `mode` set after the
/// owner (a chown clears set-id bits).
fn file(p: &Path, content: &str, uid: u32, gid: u32, mode: u32) {
    fs::write(p, content).unwrap();
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Makes `p` a directory owned by `uid:gid` with `mode`.
fn dir(p: &Path, uid: u32, gid: u32, mode: u32) {
    fs::create_dir(p).unwrap();
    std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// Lets every user into the check's directory.
fn open_to_all(d: &Path) {
    fs::set_permissions(d, fs::Permissions::from_mode(0o777)).unwrap();
}

pub fn permissions_for_other_users(d: &Path) -> Vec<String> {
    open_to_all(d);
    file(&d.join("root-file"), "r", 0, 0, 0o644);
    file(&d.join("secret"), "s", 0, 0, 0o600);
    dir(&d.join("closed"), 0, 0, 0o700);
    dir(&d.join("search-only"), 0, 0, 0o711);
    file(&d.join("search-only/known"), "k", 0, 0, 0o644);
    dir(&d.join("read-only-dir"), 0, 0, 0o755);
    file(&d.join("read-only-dir/inside"), "i", 0, 0, 0o666);
    file(&d.join("script"), "#!/bin/sh\n", 0, 0, 0o644);
    let mut out = as_user(
        1000,
        1000,
        d,
        "t('read 0644', lambda: open('root-file').read())\n\
         t('write 0644', lambda: open('root-file', 'a').write('x'))\n\
         t('read 0600', lambda: open('secret').read())\n\
         t('list 0700 dir', lambda: os.listdir('closed'))\n\
         t('create in 0700 dir', lambda: open('closed/x', 'w'))\n\
         t('list 0711 dir', lambda: os.listdir('search-only'))\n\
         t('open known name in 0711 dir', lambda: open('search-only/known').read())\n\
         t('unlink in 0755 dir', lambda: os.unlink('read-only-dir/inside'))\n\
         t('rename in 0755 dir', lambda: os.rename('read-only-dir/inside', 'read-only-dir/x'))\n\
         t('write 0666 in 0755 dir', lambda: open('read-only-dir/inside', 'a').write('w'))\n\
         print('access R_OK 0600', os.access('secret', os.R_OK))\n\
         t('exec 0644', lambda: os.waitpid(os.posix_spawn('./script', ['script'], {}), 0))\n\
         t('chmod not owner', lambda: os.chmod('root-file', 0o666))\n\
         t('chown to self', lambda: os.chown('root-file', 1000, 1000))\n\
         t('create own', lambda: open('mine', 'w').write('m'))\n\
         t('chmod own', lambda: os.chmod('mine', 0o640))\n\
         t('chgrp own to foreign group', lambda: os.chown('mine', -1, 0))\n\
         t('utime not owner', lambda: os.utime('root-file', (1, 1)))\n\
         t('utime now not owner', lambda: os.utime('root-file'))\n",
    );
    out.push(format!("own file: {}", mode_and_owner(&d.join("mine"))));
    out.push(format!(
        "root-file: {}",
        mode_and_owner(&d.join("root-file"))
    ));
    out
}

/// Who may change a file's mode, owner and group: the owner for mode and for a group they
/// are in, nobody but root for the owner; `chmod g+s` by an owner outside the file's group
/// drops the bit.
pub fn ownership_changes(d: &Path) -> Vec<String> {
    open_to_all(d);
    file(&d.join("mine"), "m", 1000, 1000, 0o644);
    file(&d.join("theirs"), "t", 1001, 1001, 0o666);
    file(&d.join("foreign-group"), "g", 1000, 4321, 0o644);
    file(&d.join("for-suid"), "s", 1000, 1000, 0o755);
    let mut out = as_user(
        1000,
        1000,
        d,
        "t('chmod other user file', lambda: os.chmod('theirs', 0o600))\n\
         t('chown other user file to self', lambda: os.chown('theirs', 1000, -1))\n\
         t('chgrp other user file', lambda: os.chown('theirs', -1, 1000))\n\
         t('chown own to self', lambda: os.chown('mine', 1000, 1000))\n\
         t('chown own -1 -1', lambda: os.chown('mine', -1, -1))\n\
         t('chown own to another user', lambda: os.chown('mine', 1001, -1))\n\
         t('chown own to root', lambda: os.chown('mine', 0, -1))\n\
         t('chgrp own to own group', lambda: os.chown('mine', -1, 1000))\n\
         t('chgrp own to a group not joined', lambda: os.chown('mine', -1, 1001))\n\
         t('chgrp own to root group', lambda: os.chown('mine', -1, 0))\n\
         t('chmod own 0600', lambda: os.chmod('mine', 0o600))\n\
         t('chmod own g+s outside its group', lambda: os.chmod('foreign-group', 0o2755))\n\
         t('chmod own u+s', lambda: os.chmod('for-suid', 0o4755))\n\
         t('chmod own sticky', lambda: os.chmod('mine', 0o1600))\n",
    );
    for name in ["mine", "theirs", "foreign-group", "for-suid"] {
        out.push(format!("{name}: {}", mode_and_owner(&d.join(name))));
    }
    out
}

/// Writes, truncations and `O_TRUNC` opens by callers without `CAP_FSETID` clear
/// set-user-ID, and set-group-ID where the group may execute; root's writes keep them.
pub fn setid_cleared_on_write(d: &Path) -> Vec<String> {
    open_to_all(d);
    for name in ["write", "pwrite", "truncate", "o-trunc", "append"] {
        file(&d.join(name), "0123456789", 0, 0, 0o6777);
    }
    file(&d.join("setuid-only"), "0123456789", 0, 0, 0o4777);
    file(&d.join("setgid-no-group-exec"), "0123456789", 0, 0, 0o2767);
    file(&d.join("setgid-group-exec"), "0123456789", 0, 0, 0o2777);
    file(&d.join("own"), "0123456789", 1000, 1000, 0o6777);
    file(&d.join("by-root"), "0123456789", 1000, 1000, 0o6777);
    file(&d.join("read-only"), "0123456789", 0, 0, 0o6755);
    let mut out = as_user(
        1000,
        1000,
        d,
        "t('write by non-owner', lambda: open('write', 'r+').write('x'))\n\
         t('pwrite by non-owner', lambda: os.pwrite(os.open('pwrite', os.O_WRONLY), b'x', 4))\n\
         t('truncate by non-owner', lambda: os.truncate('truncate', 3))\n\
         t('O_TRUNC open by non-owner', lambda: os.close(os.open('o-trunc', os.O_WRONLY | os.O_TRUNC)))\n\
         t('append by non-owner', lambda: open('append', 'a').write('x'))\n\
         t('write setuid only', lambda: open('setuid-only', 'r+').write('x'))\n\
         t('write setgid without group exec', lambda: open('setgid-no-group-exec', 'r+').write('x'))\n\
         t('write setgid with group exec', lambda: open('setgid-group-exec', 'r+').write('x'))\n\
         t('write own file', lambda: open('own', 'r+').write('x'))\n\
         t('read only', lambda: open('read-only').read())\n",
    );
    fs::OpenOptions::new()
        .write(true)
        .open(d.join("by-root"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"x"))
        .unwrap();
    for name in [
        "write",
        "pwrite",
        "truncate",
        "o-trunc",
        "append",
        "setuid-only",
        "setgid-no-group-exec",
        "setgid-group-exec",
        "own",
        "by-root",
        "read-only",
    ] {
        let p = d.join(name);
        let size = fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        out.push(format!("{name}: mode {} size {size}", mode(&p)));
    }
    out
}

/// A chown clears set-user-ID and (with group execute) set-group-ID on files, whoever makes
/// it and even to the same owner; directories keep them.
pub fn setid_cleared_on_chown(d: &Path) -> Vec<String> {
    open_to_all(d);
    let chown = |name: &str, uid: Option<u32>, gid: Option<u32>| {
        super::e(std::os::unix::fs::chown(d.join(name), uid, gid))
    };
    file(&d.join("to-user"), "x", 0, 0, 0o6755);
    file(&d.join("to-same-owner"), "x", 0, 0, 0o6755);
    file(&d.join("group-only"), "x", 0, 0, 0o6755);
    file(&d.join("setgid-no-group-exec"), "x", 0, 0, 0o2745);
    file(&d.join("unchanged"), "x", 0, 0, 0o6755);
    dir(&d.join("dir"), 0, 0, 0o6755);
    file(&d.join("by-owner"), "x", 1000, 1000, 0o6755);
    let mut out = vec![
        format!(
            "root chown to 1000:1000: {}",
            chown("to-user", Some(1000), Some(1000))
        ),
        format!(
            "root chown to 0:0: {}",
            chown("to-same-owner", Some(0), Some(0))
        ),
        format!(
            "root chgrp to 1000: {}",
            chown("group-only", None, Some(1000))
        ),
        format!(
            "root chgrp setgid without group exec: {}",
            chown("setgid-no-group-exec", None, Some(1000))
        ),
        format!("root chown -1 -1: {}", chown("unchanged", None, None)),
        format!(
            "root chown a directory: {}",
            chown("dir", Some(1000), Some(1000))
        ),
    ];
    out.extend(as_user(
        1000,
        1000,
        d,
        "t('owner chown to self', lambda: os.chown('by-owner', 1000, 1000))\n",
    ));
    for name in [
        "to-user",
        "to-same-owner",
        "group-only",
        "setgid-no-group-exec",
        "unchanged",
        "dir",
        "by-owner",
    ] {
        out.push(format!("{name}: {}", mode_and_owner(&d.join(name))));
    }
    out
}

pub fn sticky_directory(d: &Path) -> Vec<String> {
    open_to_all(d);
    let s = d.join("sticky");
    dir(&s, 0, 0, 0o1777);
    let owned = d.join("owned-sticky");
    dir(&owned, 1001, 1001, 0o1777);
    let mut out = vec![format!("mode {}", mode(&s))];
    out.extend(as_user(
        1000,
        1000,
        &s,
        "t('create', lambda: open('a', 'w').write('a'))\n\
         t('create second', lambda: open('b', 'w').write('b'))\n\
         t('mkdir', lambda: os.mkdir('dir-of-1000'))\n\
         t('create in a sticky directory of 1001', lambda: open('../owned-sticky/f', 'w').write('f'))\n",
    ));
    out.extend(as_user(
        1001,
        1001,
        &s,
        "t('unlink other user file', lambda: os.unlink('a'))\n\
         t('rename other user file', lambda: os.rename('a', 'c'))\n\
         t('rmdir other user directory', lambda: os.rmdir('dir-of-1000'))\n\
         t('create own', lambda: open('z', 'w'))\n\
         t('rename own over other user file', lambda: os.rename('z', 'b'))\n\
         t('unlink own', lambda: os.unlink('z'))\n\
         t('directory owner unlinks other user file', lambda: os.unlink('../owned-sticky/f'))\n",
    ));
    out.extend(as_user(
        1000,
        1000,
        &s,
        "t('owner unlinks', lambda: os.unlink('a'))\n",
    ));
    out.push(format!("left {:?}", listing(&s)));
    out.push(format!("left in owned {:?}", listing(&owned)));
    out
}

pub fn setgid_inheritance(d: &Path) -> Vec<String> {
    open_to_all(d);
    let g = d.join("shared");
    dir(&g, 0, 4321, 0o2777);
    let mut out = as_user(
        1000,
        1000,
        &g,
        "t('create file', lambda: open('f', 'w'))\n\
         t('mkdir', lambda: os.mkdir('sub', 0o755))\n\
         t('create 02755 outside the group', lambda: os.close(os.open('sgid-file', os.O_CREAT | os.O_WRONLY, 0o2755)))\n\
         t('mkdir 02755', lambda: os.mkdir('sgid-dir', 0o2755))\n\
         t('create in the inheriting subdirectory', lambda: open('sub/g', 'w'))\n",
    );
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o2755)
        .open(g.join("by-root"))
        .unwrap();
    for name in ["f", "sub", "sgid-file", "sgid-dir", "sub/g", "by-root"] {
        out.push(format!("{name}: {}", mode_and_owner(&g.join(name))));
    }
    let plain = d.join("plain");
    dir(&plain, 0, 0, 0o777);
    out.extend(as_user(
        1000,
        1000,
        &plain,
        "t('create', lambda: open('f', 'w'))\n",
    ));
    let m = fs::metadata(plain.join("f")).unwrap();
    out.push(format!("without setgid: gid {}", m.gid()));
    out
}

/// `utimensat` by the owner, by a non-owner who may write (only "now" for both times) and by
/// one who may not (`EACCES` for "now", `EPERM` for anything explicit).
pub fn utimensat_permissions(d: &Path) -> Vec<String> {
    open_to_all(d);
    file(&d.join("own"), "o", 1000, 1000, 0o644);
    file(&d.join("writable"), "w", 0, 0, 0o666);
    file(&d.join("read-only"), "r", 0, 0, 0o644);
    let mut script = String::new();
    for name in ["own", "writable", "read-only"] {
        for (label, call) in [
            ("NULL", "os.utime(P)"),
            ("NOW NOW", "utimens(P, NOW, NOW)"),
            ("explicit", "utimens(P, (1000000000, 5), (1000000001, 7))"),
            (
                "os.utime ns",
                "os.utime(P, ns=(2000000000000000005, 2000000001000000007))",
            ),
            ("OMIT OMIT", "utimens(P, OMIT, OMIT)"),
            ("NOW OMIT", "utimens(P, NOW, OMIT)"),
            ("OMIT NOW", "utimens(P, OMIT, NOW)"),
            ("explicit OMIT", "utimens(P, (1000000000, 5), OMIT)"),
        ] {
            let call = call.replace('P', &format!("'{name}'"));
            script += &format!("t('{name} {label}', lambda: {call})\n");
        }
    }
    let mut out = as_user(1000, 1000, d, &script);
    // The last calls on `own` set atime explicitly and left mtime as `OMIT NOW` set it.
    let m = fs::metadata(d.join("own")).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    out.push(format!(
        "own after: atime {}.{:09} mtime recent {}",
        m.atime(),
        m.atime_nsec(),
        (now - m.mtime()).abs() < 60
    ));
    out
}

/// Open flags that need write permission, for a caller who is not root: `O_TRUNC` on a
/// read-only open truncates for a caller who may write and fails for one who may not;
/// `O_CREAT` in a directory the caller may not write.
pub fn open_flags_for_other_users(d: &Path) -> Vec<String> {
    open_to_all(d);
    file(&d.join("writable"), "0123456789", 0, 0, 0o666);
    file(&d.join("read-only"), "0123456789", 0, 0, 0o644);
    dir(&d.join("locked"), 0, 0, 0o555);
    file(&d.join("locked/existing"), "e", 0, 0, 0o666);
    let mut out = as_user(
        1000,
        1000,
        d,
        "t('O_RDONLY|O_TRUNC with write permission', lambda: os.close(os.open('writable', os.O_RDONLY | os.O_TRUNC)))\n\
         t('O_RDONLY|O_TRUNC without write permission', lambda: os.close(os.open('read-only', os.O_RDONLY | os.O_TRUNC)))\n\
         t('O_WRONLY without write permission', lambda: os.close(os.open('read-only', os.O_WRONLY)))\n\
         t('O_CREAT in a read-only directory', lambda: os.close(os.open('locked/new', os.O_CREAT | os.O_WRONLY, 0o644)))\n\
         t('O_CREAT of an existing file in a read-only directory', lambda: os.close(os.open('locked/existing', os.O_CREAT | os.O_WRONLY, 0o644)))\n\
         t('O_CREAT|O_EXCL of an existing file in a read-only directory', lambda: os.close(os.open('locked/existing', os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)))\n\
         t('mkdir in a read-only directory', lambda: os.mkdir('locked/d'))\n\
         t('symlink in a read-only directory', lambda: os.symlink('x', 'locked/l'))\n\
         t('mkfifo in a read-only directory', lambda: os.mkfifo('locked/p'))\n",
    );
    for name in ["writable", "read-only"] {
        let size = fs::metadata(d.join(name)).map(|m| m.len()).unwrap_or(0);
        out.push(format!("{name} size after: {size}"));
    }
    out.push(format!("locked: {:?}", listing(&d.join("locked"))));
    out
}

/// `cp -a` of a tree keeps its modes and owners: coreutils sets a copy's permissions with
/// `fsetxattr` of `system.posix_acl_access`, which on ext4 and tmpfs sets the mode.
pub fn cp_a_keeps_modes_and_owners(d: &Path) -> Vec<String> {
    let src = d.join("src");
    dir(&src, 1000, 1000, 0o755);
    dir(&src.join("private"), 1001, 1001, 0o700);
    dir(&src.join("shared"), 0, 1000, 0o2775);
    file(&src.join("private/notes"), "n", 1001, 1001, 0o640);
    file(&src.join("script"), "#!/bin/sh\n", 1000, 1000, 0o755);
    file(&src.join("shared/doc"), "d", 0, 1000, 0o664);
    file(&src.join("odd"), "o", 1000, 1001, 0o604);
    std::os::unix::fs::symlink("script", src.join("link")).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&src)
        .arg(d.join("dst"))
        .output()
        .unwrap();
    let mut out = vec![format!(
        "cp -a: {} {}",
        copied.status,
        String::from_utf8_lossy(&copied.stderr).trim()
    )];
    for name in [
        "",
        "private",
        "shared",
        "private/notes",
        "script",
        "shared/doc",
        "odd",
        "link",
    ] {
        out.push(format!(
            "{name}: {}",
            mode_and_owner(&d.join("dst").join(name))
        ));
    }
    out
}
