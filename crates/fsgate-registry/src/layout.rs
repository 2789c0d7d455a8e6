//! Where everything lives, relative to the installer's root (`/` or an image directory).
//!
//! Paths the target system sees (recorded in the registry, written into units and
//! tmpfiles lines) are absolute paths without the root; [`Layout::host`] maps them to the
//! path this process writes.

use std::path::{Path, PathBuf};

/// The installer's file layout under one root.
#[derive(Clone, Debug)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
        }
    }

    /// Whether this is the running system (root `/`) rather than an image directory.
    pub fn is_live_system(&self) -> bool {
        self.root == Path::new("/")
    }

    /// `target` (absolute, as the target system sees it) as a path under the root.
    pub fn host(&self, target: &str) -> PathBuf {
        self.root.join(target.trim_start_matches('/'))
    }

    /// The default install directory of a major: `/usr/lib/fsgate/<major>`.
    pub fn default_install_dir(major: u16) -> String {
        format!("/usr/lib/fsgate/{major}")
    }

    /// The systemd unit name of a major: `fsgate-<major>.service`.
    pub fn unit_name(major: u16) -> String {
        format!("fsgate-{major}.service")
    }

    /// The unit file (vendor location).
    pub fn unit_file(&self, major: u16) -> PathBuf {
        self.host(&format!(
            "/usr/lib/systemd/system/{}",
            Self::unit_name(major)
        ))
    }

    /// The symlink that enables the unit (what `systemctl enable` creates).
    pub fn unit_enable_link(&self, major: u16) -> PathBuf {
        self.host(&format!(
            "/etc/systemd/system/multi-user.target.wants/{}",
            Self::unit_name(major)
        ))
    }

    /// The modules-load.d snippet, shared by all majors.
    pub fn modules_load_file(&self) -> PathBuf {
        self.host("/usr/lib/modules-load.d/fsgate.conf")
    }

    /// The tmpfiles.d snippet, shared by all majors.
    pub fn tmpfiles_file(&self) -> PathBuf {
        self.host("/usr/lib/tmpfiles.d/fsgate.conf")
    }

    /// tmpfiles.d lines that remove files at the next boot (files that were in use).
    pub fn pending_removal_file(&self) -> PathBuf {
        self.host("/etc/tmpfiles.d/fsgate-pending-removal.conf")
    }

    /// The directory of the ProductGUID registry.
    pub fn state_dir(&self) -> PathBuf {
        self.host("/var/lib/fsgate")
    }

    /// The ProductGUID registry.
    pub fn registry_file(&self) -> PathBuf {
        self.state_dir().join("registry.json")
    }

    /// The lock file serializing installers.
    pub fn lock_file(&self) -> PathBuf {
        self.state_dir().join("registry.lock")
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}
