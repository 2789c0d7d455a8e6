//! Builds `tests/c/installer.c` against `libfsgate_install.so` with the system C compiler.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::other_users::reachable_tempdir;

/// The directory holding an up-to-date `libfsgate_install.so`: `cargo test` builds the
/// cdylib next to this test binary (`<target dir>/<profile>/deps/`, wherever the target dir
/// is). When it is not there (a test binary run on its own), it is built with the same
/// target dir and taken from `<target dir>/<profile>/`.
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

/// The compiled C installer and a copy of the library it links, side by side in a directory
/// every user can reach (the unprivileged test runs it as nobody, who may be unable to reach
/// the checkout or the target dir). The program finds the copy through its rpath,
/// `$ORIGIN`.
pub struct CInstaller {
    dir: tempfile::TempDir,
    pub exe: PathBuf,
}

impl CInstaller {
    pub fn build() -> Self {
        let dir = reachable_tempdir();
        let exe = dir.path().join("installer");
        std::fs::copy(
            library_dir().join("libfsgate_install.so"),
            dir.path().join("libfsgate_install.so"),
        )
        .unwrap();
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new("cc")
            .arg("-Wall")
            .arg("-Werror")
            .arg("-I")
            .arg(manifest.join("include"))
            .arg(manifest.join("tests/c/installer.c"))
            .arg("-o")
            .arg(&exe)
            .arg(format!("-L{}", dir.path().display()))
            .arg("-Wl,-rpath,$ORIGIN")
            .arg("-lfsgate_install")
            .status()
            .expect("running cc");
        assert!(status.success(), "compiling tests/c/installer.c");
        Self { dir, exe }
    }

    pub fn command(&self, mode: &str, root: &Path, package: &Path, guid: &str) -> Command {
        let mut c = Command::new(&self.exe);
        // cargo's LD_LIBRARY_PATH may name another copy of the library; the program's rpath
        // names the one it was linked against, beside it.
        c.env_remove("LD_LIBRARY_PATH");
        // The checkout (cargo's working directory for tests) may be out of another user's
        // reach.
        c.current_dir(self.dir.path());
        c.arg(mode).arg(root).arg(package).arg(guid);
        c
    }
}
