//! Builds `tests/c/installer.c` against `libfsgate_install.so` with the system C compiler.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directory holding an up-to-date `libfsgate_install.so`: `cargo test` builds the
/// cdylib next to this test binary (`target/<profile>/deps/`). When it is not there (a test
/// binary run on its own), it is built with the same target dir and taken from
/// `target/<profile>/`.
fn library_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps_dir = exe.parent().unwrap().to_path_buf();
    if deps_dir.join("libfsgate_install.so").exists() {
        return deps_dir;
    }
    let profile_dir = deps_dir.parent().unwrap().to_path_buf();
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cargo
        .args(["build", "-p", "fsgate-install", "--lib"])
        .env("CARGO_TARGET_DIR", profile_dir.parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().unwrap() == "release" {
        cargo.arg("--release");
    }
    assert!(cargo.status().unwrap().success(), "building the cdylib");
    let so = profile_dir.join("libfsgate_install.so");
    assert!(so.exists(), "{} is missing", so.display());
    profile_dir
}

/// The compiled C installer, in a directory any user may enter (the unprivileged test runs
/// it as nobody).
pub struct CInstaller {
    _dir: tempfile::TempDir,
    pub exe: PathBuf,
}

impl CInstaller {
    pub fn build() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let exe = dir.path().join("installer");
        let lib = library_dir();
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new("cc")
            .arg("-Wall")
            .arg("-Werror")
            .arg("-I")
            .arg(manifest.join("include"))
            .arg(manifest.join("tests/c/installer.c"))
            .arg("-o")
            .arg(&exe)
            .arg(format!("-L{}", lib.display()))
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-lfsgate_install")
            .status()
            .expect("running cc");
        assert!(status.success(), "compiling tests/c/installer.c");
        Self { _dir: dir, exe }
    }

    pub fn command(&self, mode: &str, root: &Path, package: &Path, guid: &str) -> Command {
        let mut c = Command::new(&self.exe);
        // cargo's LD_LIBRARY_PATH may name an older copy of the library; the program's
        // rpath names the one it was linked against.
        c.env_remove("LD_LIBRARY_PATH");
        c.arg(mode).arg(root).arg(package).arg(guid);
        c
    }
}
