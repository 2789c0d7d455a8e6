//! The ProductGUID reference registry: `<root>/var/lib/fsgate/registry.json`.
//!
//! One registration per (ProductGUID, major version). Files of a major are removed only when
//! no registration references that major. Writers hold an exclusive `flock` on
//! `registry.lock` for their whole install or uninstall, and replace the file atomically
//! (write, fsync, rename), so installers running at once never lose a registration and a
//! crash leaves the old or the new registry. A registry that does not parse is an error
//! (`ERROR_INVALID_DATA`, 13) that names the file; it is left byte-for-byte as it was and
//! nothing is installed or deleted.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use fsgate_core::{code, Error, Result};

use crate::fsutil;
use crate::layout::Layout;
use crate::version::Version;

/// The registry format this crate reads and writes.
pub const REGISTRY_FORMAT: u32 = 1;

/// One product's installation of one major version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// The ProductGUID, upper case with braces.
    pub product_guid: String,
    /// The major version this registration references.
    pub major: u16,
    /// The version the product's package carried when it last installed.
    pub package_version: String,
    /// The install directory as the target system sees it.
    pub install_dir: String,
    /// The install flags passed.
    pub flags: u32,
}

/// The registry content.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// [`REGISTRY_FORMAT`].
    pub format: u32,
    /// Every registration.
    pub products: Vec<Registration>,
}

impl Registry {
    /// Reads the registry; an absent file is an empty registry.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    format: REGISTRY_FORMAT,
                    products: Vec::new(),
                })
            }
            Err(e) => return Err(Error::io(format!("reading registry {}", path.display()), e)),
        };
        let corrupt = |reason: String| {
            Error::from_code(
                code::ERROR_INVALID_DATA,
                format!(
                    "the ProductGUID registry {} is corrupt ({reason}); it was left as it is \
                     for inspection and nothing was changed",
                    path.display()
                ),
            )
        };
        let registry: Self = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if registry.format != REGISTRY_FORMAT {
            return Err(corrupt(format!(
                "format {} is not {REGISTRY_FORMAT}",
                registry.format
            )));
        }
        Ok(registry)
    }

    /// Writes the registry atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(|e| {
            Error::from_code(
                code::ERROR_INTERNAL_ERROR,
                format!("encoding the registry: {e}"),
            )
        })?;
        bytes.push(b'\n');
        fsutil::write_atomic(path, &bytes, 0o644)
    }

    /// The registrations of `guid`, highest major first.
    pub fn of_product(&self, guid: &str) -> Vec<&Registration> {
        let mut v: Vec<&Registration> = self
            .products
            .iter()
            .filter(|r| r.product_guid == guid)
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.major));
        v
    }

    /// Whether any registration references `major`.
    pub fn references_major(&self, major: u16) -> bool {
        self.products.iter().any(|r| r.major == major)
    }

    /// Adds or replaces the registration of (`guid`, `major`).
    pub fn upsert(&mut self, registration: Registration) {
        self.products.retain(|r| {
            !(r.product_guid == registration.product_guid && r.major == registration.major)
        });
        self.products.push(registration);
        self.products
            .sort_by(|a, b| (&a.product_guid, a.major).cmp(&(&b.product_guid, b.major)));
    }
}

/// An exclusive lock on the registry, held for a whole install or uninstall; released on drop.
pub struct RegistryLock {
    _file: File,
}

impl RegistryLock {
    /// Blocks until this process holds the lock.
    pub fn acquire(layout: &Layout) -> Result<Self> {
        fsutil::create_dir_all(&layout.state_dir())?;
        let path = layout.lock_file();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("opening lock {}", path.display()), e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(format!("locking {}", path.display()), e.into()))?;
        Ok(Self { _file: file })
    }
}

/// The installed version of the files in `install_dir` (host path), from the manifest
/// copied there; `None` when nothing (readable) is installed.
pub fn installed_version(install_dir: &Path) -> Option<Version> {
    /// The part of the package manifest this needs (serde skips the file list).
    #[derive(Deserialize)]
    struct InstalledManifest {
        version: String,
    }
    let bytes = std::fs::read(install_dir.join("manifest.json")).ok()?;
    let m: InstalledManifest = serde_json::from_slice(&bytes).ok()?;
    m.version.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(guid: &str, major: u16) -> Registration {
        Registration {
            product_guid: guid.into(),
            major,
            package_version: format!("{major}.0.0.0"),
            install_dir: format!("/usr/lib/fsgate/{major}"),
            flags: 0,
        }
    }

    #[test]
    fn upsert_replaces_same_product_and_major_only() {
        let mut r = Registry::default();
        r.upsert(reg("{A}", 1));
        r.upsert(reg("{A}", 2));
        r.upsert(reg("{B}", 1));
        r.upsert(reg("{A}", 1));
        assert_eq!(r.products.len(), 3);
        assert_eq!(r.of_product("{A}")[0].major, 2);
        assert!(r.references_major(1) && !r.references_major(3));
    }

    #[test]
    fn save_then_load_round_trips_and_garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("registry.json");
        assert!(Registry::load(&p).unwrap().products.is_empty());
        let mut r = Registry {
            format: REGISTRY_FORMAT,
            products: vec![],
        };
        r.upsert(reg("{A}", 1));
        r.save(&p).unwrap();
        assert_eq!(Registry::load(&p).unwrap(), r);
        std::fs::write(&p, b"{\"format\":1,\"prod").unwrap();
        let e = Registry::load(&p).unwrap_err();
        assert_eq!(e.code(), code::ERROR_INVALID_DATA);
        assert!(e.message().contains("registry.json"));
    }
}
