//! Shared test fixtures: temporary roots and packages of chosen versions, and directories
//! other users can reach.

#![allow(dead_code)]

pub mod other_users;

use std::path::{Path, PathBuf};

use fsgate_install::{Installer, Package, Version};

pub const GUID_A: &str = "{11111111-2222-3333-4444-555555555555}";
pub const GUID_B: &str = "{AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE}";

/// A temporary root plus a directory for packages.
pub struct Fixture {
    pub root: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Self {
        Self {
            root: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    /// A fixture whose root and package directory every user can reach and run programs
    /// from (see [`other_users::reachable_tempdir`]; `$TMPDIR` may be private or `noexec`),
    /// for tests that run an installed program or run the installer as another user.
    pub fn reachable() -> Self {
        Self {
            root: other_users::reachable_tempdir(),
            work: other_users::reachable_tempdir(),
        }
    }

    pub fn installer(&self) -> Installer {
        Installer::new(self.root.path())
    }

    /// A package of `version` whose helper is a copy of `helper` (default `/bin/sleep`,
    /// which lets a test run the installed helper).
    pub fn package(&self, version: &str) -> PathBuf {
        self.package_with(version, Path::new("/bin/sleep"))
    }

    pub fn package_with(&self, version: &str, helper: &Path) -> PathBuf {
        let out = self.work.path().join(format!("fsgate-{version}.pkg"));
        let v: Version = version.parse().unwrap();
        Package::build_with_version(&out, helper, v).unwrap();
        out
    }

    pub fn path(&self, target: &str) -> PathBuf {
        self.root.path().join(target.trim_start_matches('/'))
    }

    pub fn registry(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.path("/var/lib/fsgate/registry.json")).unwrap())
            .unwrap()
    }
}

pub fn v(text: &str) -> u64 {
    text.parse::<Version>().unwrap().to_u64()
}
