//! [`Installer`]: install, upgrade, uninstall, status and version, with the reference's
//! version rules and ProductGUID reference counting.

use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use fsgate_core::{code, Error, Result};

use crate::facilities::{self, Facility, FacilityStatus};
use crate::flags::*;
use crate::layout::Layout;
use crate::package::{FileKind, Package};
use crate::registry::{installed_version, Registration, Registry, RegistryLock};
use crate::{config, fsutil, guid, in_use, privilege, service};
use fsgate_registry::{Installation, HELPER_NAME};

const MANIFEST_NAME: &str = "manifest.json";

/// What `install` did with the files of the package's major.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallAction {
    /// Nothing of this major was installed; the files were written.
    Installed,
    /// An older version of the same major was replaced.
    Upgraded,
    /// The same version was written again (`INSTALL_OVERWRITE_SAME_VERSION`).
    Overwritten,
    /// The installed files are the same or a newer version and were left as they are; the
    /// product is registered all the same.
    Unchanged,
}

/// Everything `install` found and did; [`Installer::install`] returns only `reboot_needed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InstallReport {
    /// The ProductGUID as registered (upper case).
    pub product_guid: String,
    /// The package's version.
    pub package_version: String,
    /// The version now installed in the major's directory.
    pub installed_version: String,
    /// What happened to the files.
    pub action: InstallAction,
    /// The install directory, as the target system sees it.
    pub install_dir: String,
    /// Older majors removed by `INSTALL_REMOVE_OLD_VERSIONS`.
    pub removed_majors: Vec<u16>,
    /// Kernel facilities that are not usable on the running kernel, with the reason.
    pub missing_facilities: Vec<FacilityStatus>,
    /// Whether something takes effect only after a reboot.
    pub reboot_needed: bool,
    /// Why a reboot is needed (empty when it is not).
    pub reboot_reasons: Vec<String>,
}

/// Everything `uninstall` did; [`Installer::uninstall`] returns only `reboot_needed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UninstallReport {
    /// The majors whose registration for this product was removed.
    pub unregistered_majors: Vec<u16>,
    /// The majors whose files were removed (no product references them any more).
    pub removed_majors: Vec<u16>,
    /// Paths (target-system view) scheduled for removal at the next boot, being in use.
    pub scheduled_removals: Vec<String>,
    /// Whether something takes effect only after a reboot.
    pub reboot_needed: bool,
    /// Why a reboot is needed (empty when it is not).
    pub reboot_reasons: Vec<String>,
}

/// Installs, upgrades and removes fsgate's system files for products identified by GUIDs.
///
/// `install` and `uninstall` need root; status, version and `verify_installed` work for
/// anyone who can read the registry. Concurrent installers (threads or processes) serialize
/// on the registry lock.
pub struct Installer {
    root: PathBuf,
    last_reboot_reasons: Mutex<Vec<String>>,
}

impl Installer {
    /// An installer working under `root` (`/` for the real system; a temporary directory for
    /// tests and image builds, in which case nothing outside it is touched: no `systemctl`,
    /// no `modprobe`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            last_reboot_reasons: Mutex::new(Vec::new()),
        }
    }

    /// The installer for this machine: the root is `$FSGATE_ROOT` when set, else `/`.
    pub fn system() -> Self {
        Self::new(std::env::var_os("FSGATE_ROOT").map_or_else(|| PathBuf::from("/"), PathBuf::from))
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Why the last `install` or `uninstall` of this installer needs a reboot; empty when it
    /// does not.
    pub fn last_reboot_reasons(&self) -> Vec<String> {
        self.last_reboot_reasons
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    fn layout(&self) -> Layout {
        Layout::new(&self.root)
    }

    fn remember(&self, reasons: &[String]) {
        if let Ok(mut r) = self.last_reboot_reasons.lock() {
            *r = reasons.to_vec();
        }
    }

    /// Installs the package for `product_guid`; returns whether a reboot is needed
    /// (see [`Installer::install_with_report`]).
    pub fn install(
        &self,
        package_path: &Path,
        product_guid: &str,
        path_to_install: &str,
        flags: u32,
    ) -> Result<bool> {
        self.install_with_report(package_path, product_guid, path_to_install, flags)
            .map(|r| r.reboot_needed)
    }

    /// Installs or upgrades fsgate's system files from the package and registers
    /// `product_guid`.
    ///
    /// Version rules, per major: nothing installed → install; an older version installed →
    /// upgrade; the same version → unchanged unless `INSTALL_OVERWRITE_SAME_VERSION`; a newer
    /// version → unchanged. Different majors live side by side; `INSTALL_REMOVE_OLD_VERSIONS`
    /// removes older majors' files and moves their registrations to this major. The service
    /// is enabled unless `INSTALL_KEEP_START_TYPE` is given and it was installed before. The
    /// other flags are persisted as settings (see [`crate::config`]). `path_to_install`
    /// empty means `/usr/lib/fsgate/<major>`; otherwise an absolute path on the target system.
    ///
    /// Errors: 1314 without root; 87 for a malformed GUID, flags or path; 2 for a missing
    /// package; 13 for a damaged package or a corrupt registry (nothing is written then).
    pub fn install_with_report(
        &self,
        package_path: &Path,
        product_guid: &str,
        path_to_install: &str,
        flags: u32,
    ) -> Result<InstallReport> {
        privilege::require_admin("install")?;
        let guid = guid::normalize(product_guid)?;
        if flags & !INSTALL_FLAGS_MASK != 0 {
            return Err(Error::invalid_argument(
                "flags",
                format!("{:#x} contains unknown bits", flags & !INSTALL_FLAGS_MASK),
            ));
        }
        let package = Package::open(package_path)?;
        let version = package.version();
        let major = version.major;
        let target_dir = target_dir("path_to_install", path_to_install, major)?;
        let layout = self.layout();

        let _lock = RegistryLock::acquire(&layout)?;
        let mut registry = Registry::load(&layout.registry_file())?;
        let host_dir = layout.host(&target_dir);
        let installed = installed_version(&host_dir);
        if let Some(i) = installed.filter(|i| i.major != major) {
            return Err(Error::invalid_argument(
                "path_to_install",
                format!("{target_dir} already holds fsgate {i}, of another major version"),
            ));
        }
        let action = match installed {
            None => InstallAction::Installed,
            Some(i) if i < version => InstallAction::Upgraded,
            Some(i) if i == version && flags & INSTALL_OVERWRITE_SAME_VERSION != 0 => {
                InstallAction::Overwritten
            }
            Some(_) => InstallAction::Unchanged,
        };
        let mut reasons = Vec::new();

        let unit_existed = layout.unit_file(major).exists();
        if action != InstallAction::Unchanged {
            write_major_files(&layout, &package, &target_dir)?;
        } else if !unit_existed {
            write_unit(&layout, &package, major, &target_dir)?;
        }
        write_shared_files(&layout, &package)?;
        if !(flags & INSTALL_KEEP_START_TYPE != 0 && unit_existed) {
            service::set_enabled(&layout, major, true)?;
        }
        cancel_pending_removal(&layout, &target_dir)?;

        let mut removed_majors = Vec::new();
        if flags & INSTALL_REMOVE_OLD_VERSIONS != 0 {
            let old: Vec<Registration> = registry
                .products
                .iter()
                .filter(|r| r.major < major)
                .cloned()
                .collect();
            let mut old_dirs: Vec<(u16, String)> = old
                .iter()
                .map(|r| (r.major, r.install_dir.clone()))
                .collect();
            old_dirs.sort();
            old_dirs.dedup();
            for r in old {
                registry.upsert(Registration {
                    major,
                    install_dir: target_dir.clone(),
                    package_version: version.to_string(),
                    ..r
                });
            }
            registry.products.retain(|r| r.major >= major);
            for (m, dir) in old_dirs {
                let scheduled = remove_major_files(&layout, m, &dir)?;
                if !scheduled.is_empty() {
                    reasons.push(format!(
                        "fsgate {m}.x files are in use and are removed at the next boot: {}",
                        scheduled.join(", ")
                    ));
                }
                removed_majors.push(m);
            }
        }

        registry.upsert(Registration {
            product_guid: guid.clone(),
            major,
            package_version: version.to_string(),
            install_dir: target_dir.clone(),
            flags,
        });
        registry.save(&layout.registry_file())?;
        let settings: Vec<(&str, bool)> = PERSISTED_INSTALL_FLAGS
            .iter()
            .map(|&(bit, name)| (name, flags & bit != 0))
            .collect();
        config::store(&self.root, &settings)?;

        let mut facilities = facilities::check_all();
        if layout.is_live_system()
            && facilities
                .iter()
                .any(|f| f.facility == Facility::Fuse && !f.available)
        {
            let _ = std::process::Command::new("modprobe")
                .args(["-q", "fuse"])
                .status();
            facilities = facilities::check_all();
            if facilities::fuse().is_err() {
                reasons.push(
                    "FUSE is not available on the running kernel; modules-load.d loads the fuse \
                     module at the next boot"
                        .to_string(),
                );
            }
        }
        if service::systemd_manages(&layout) {
            service::systemctl(&layout, &["daemon-reload"]);
            if service::is_enabled(&layout, major) {
                let verb = if action == InstallAction::Unchanged {
                    "start"
                } else {
                    "restart"
                };
                service::systemctl(&layout, &[verb, &Layout::unit_name(major)]);
            }
        }
        self.remember(&reasons);
        tracing::info!(product_guid = %guid, %version, ?action, "fsgate installed");
        Ok(InstallReport {
            product_guid: guid,
            package_version: version.to_string(),
            installed_version: installed_version(&host_dir).unwrap_or(version).to_string(),
            action,
            install_dir: target_dir,
            removed_majors,
            missing_facilities: facilities.into_iter().filter(|f| !f.available).collect(),
            reboot_needed: !reasons.is_empty(),
            reboot_reasons: reasons,
        })
    }

    /// Removes `product_guid`'s installation; returns whether a reboot is needed
    /// (see [`Installer::uninstall_with_report`]).
    pub fn uninstall(
        &self,
        package_path: &Path,
        product_guid: &str,
        installed_path: &str,
        flags: u32,
    ) -> Result<bool> {
        self.uninstall_with_report(package_path, product_guid, installed_path, flags)
            .map(|r| r.reboot_needed)
    }

    /// Removes the product's registrations selected by `flags` (relative to the package's
    /// major): `UNINSTALL_VERSION_CURRENT` (also what 0 means) that major,
    /// `UNINSTALL_VERSION_PREVIOUS` older majors, `UNINSTALL_VERSION_ALL` both. A major's
    /// files are removed only when no product references it any more; a helper binary that
    /// is running is left in place and its directory is scheduled for removal at the next
    /// boot by a tmpfiles.d `R` line in `/etc/tmpfiles.d/fsgate-pending-removal.conf` (applied
    /// by `systemd-tmpfiles --remove` at boot); `reboot_needed` is then true. An empty
    /// `package_path` takes the product's highest installed major as the current one.
    /// Uninstalling a product that is not registered changes nothing and returns false.
    pub fn uninstall_with_report(
        &self,
        package_path: &Path,
        product_guid: &str,
        installed_path: &str,
        flags: u32,
    ) -> Result<UninstallReport> {
        privilege::require_admin("uninstall")?;
        let guid = guid::normalize(product_guid)?;
        if flags & !UNINSTALL_VERSION_ALL != 0 {
            return Err(Error::invalid_argument(
                "flags",
                format!(
                    "{:#x} contains unknown bits",
                    flags & !UNINSTALL_VERSION_ALL
                ),
            ));
        }
        let flags = if flags == 0 {
            UNINSTALL_VERSION_CURRENT
        } else {
            flags
        };
        let package_major = if package_path.as_os_str().is_empty() {
            None
        } else {
            Some(Package::open(package_path)?.version().major)
        };
        let layout = self.layout();
        let _lock = RegistryLock::acquire(&layout)?;
        let mut registry = Registry::load(&layout.registry_file())?;
        let mine = registry.of_product(&guid);
        let Some(current) = package_major.or_else(|| mine.first().map(|r| r.major)) else {
            self.remember(&[]);
            return Ok(UninstallReport {
                unregistered_majors: vec![],
                removed_majors: vec![],
                scheduled_removals: vec![],
                reboot_needed: false,
                reboot_reasons: vec![],
            });
        };
        let selected: Vec<Registration> = mine
            .into_iter()
            .filter(|r| {
                (flags & UNINSTALL_VERSION_CURRENT != 0 && r.major == current)
                    || (flags & UNINSTALL_VERSION_PREVIOUS != 0 && r.major < current)
            })
            .cloned()
            .collect();
        if !installed_path.is_empty() {
            let wanted = target_dir("installed_path", installed_path, current)?;
            if let Some(r) = selected
                .iter()
                .find(|r| r.major == current && r.install_dir != wanted)
            {
                return Err(Error::invalid_argument(
                    "installed_path",
                    format!(
                        "{wanted} is not where {guid} installed fsgate ({})",
                        r.install_dir
                    ),
                ));
            }
        }
        registry.products.retain(|r| {
            !selected
                .iter()
                .any(|s| s.product_guid == r.product_guid && s.major == r.major)
        });
        registry.save(&layout.registry_file())?;

        let mut removed_majors = Vec::new();
        let mut scheduled = Vec::new();
        for r in &selected {
            if !registry.references_major(r.major) {
                scheduled.extend(remove_major_files(&layout, r.major, &r.install_dir)?);
                removed_majors.push(r.major);
            }
        }
        if registry.products.is_empty() {
            fsutil::remove_file_if_exists(&layout.modules_load_file())?;
            fsutil::remove_file_if_exists(&layout.tmpfiles_file())?;
        }
        if !removed_majors.is_empty() {
            service::systemctl(&layout, &["daemon-reload"]);
        }
        let reasons: Vec<String> = scheduled
            .iter()
            .map(|p| format!("{p} is in use and is removed at the next boot"))
            .collect();
        self.remember(&reasons);
        tracing::info!(product_guid = %guid, ?removed_majors, "fsgate uninstalled");
        Ok(UninstallReport {
            unregistered_majors: selected.iter().map(|r| r.major).collect(),
            removed_majors,
            scheduled_removals: scheduled,
            reboot_needed: !reasons.is_empty(),
            reboot_reasons: reasons,
        })
    }

    /// `get_driver_status` of this installer's root; see [`Installation::get_driver_status`].
    pub fn get_driver_status(&self, product_guid: &str) -> Result<u32> {
        self.installation().get_driver_status(product_guid)
    }

    /// The highest version installed for the product as four 16-bit parts in 64 bits; 0 when
    /// not installed.
    pub fn get_driver_version(&self, product_guid: &str) -> Result<u64> {
        self.installation().get_driver_version(product_guid)
    }

    /// What every class's `initialize(product_guid)` calls; see
    /// [`Installation::verify_installed`].
    pub fn verify_installed(&self, product_guid: &str) -> Result<()> {
        self.installation().verify_installed(product_guid)
    }

    /// The read side of this installer's root.
    pub fn installation(&self) -> Installation {
        Installation::new(&self.root)
    }
}

impl From<Installer> for Installation {
    fn from(installer: Installer) -> Self {
        installer.installation()
    }
}

impl From<&Installer> for Installation {
    fn from(installer: &Installer) -> Self {
        installer.installation()
    }
}

/// The install directory (target-system view) from a path argument: empty means the default
/// for `major`; otherwise absolute and without `..`.
fn target_dir(argument: &str, path: &str, major: u16) -> Result<String> {
    if path.is_empty() {
        return Ok(Layout::default_install_dir(major));
    }
    let p = Path::new(path);
    if !p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
        return Err(Error::invalid_argument(
            argument,
            format!("{path:?} must be an absolute path without \"..\""),
        ));
    }
    Ok(path.trim_end_matches('/').to_string())
}

fn packaged(package: &Package, kind: FileKind) -> Result<(&[u8], u32)> {
    package.file(kind).ok_or_else(|| {
        Error::from_code(
            code::ERROR_INVALID_DATA,
            format!("the package has no {kind:?} file"),
        )
    })
}

/// Writes the helper, the unit and, last, the manifest that marks the version as installed.
fn write_major_files(layout: &Layout, package: &Package, target_dir: &str) -> Result<()> {
    let host_dir = layout.host(target_dir);
    let (helper, mode) = packaged(package, FileKind::Helper)?;
    fsutil::write_atomic(&host_dir.join(HELPER_NAME), helper, mode)?;
    write_unit(layout, package, package.version().major, target_dir)?;
    let manifest = serde_json::to_vec_pretty(package.manifest()).map_err(|e| {
        Error::from_code(
            code::ERROR_INTERNAL_ERROR,
            format!("encoding the manifest: {e}"),
        )
    })?;
    fsutil::write_atomic(&host_dir.join(MANIFEST_NAME), &manifest, 0o644)
}

fn write_unit(layout: &Layout, package: &Package, major: u16, target_dir: &str) -> Result<()> {
    let (template, mode) = packaged(package, FileKind::ServiceUnit)?;
    let helper = format!("{target_dir}/{HELPER_NAME}");
    fsutil::write_atomic(
        &layout.unit_file(major),
        &service::unit_text(template, major, &helper),
        mode,
    )
}

fn write_shared_files(layout: &Layout, package: &Package) -> Result<()> {
    for (kind, path) in [
        (FileKind::ModulesLoad, layout.modules_load_file()),
        (FileKind::Tmpfiles, layout.tmpfiles_file()),
    ] {
        let (data, mode) = packaged(package, kind)?;
        if std::fs::read(&path).ok().as_deref() != Some(data) {
            fsutil::write_atomic(&path, data, mode)?;
        }
    }
    Ok(())
}

/// Removes a major's files; returns what was scheduled for the next boot instead (the
/// install directory, when its helper is running).
fn remove_major_files(layout: &Layout, major: u16, install_dir: &str) -> Result<Vec<String>> {
    let unit = Layout::unit_name(major);
    service::systemctl(layout, &["stop", &unit]);
    service::set_enabled(layout, major, false)?;
    fsutil::remove_file_if_exists(&layout.unit_file(major))?;
    let host_dir = layout.host(install_dir);
    let users = in_use::users_of(&host_dir.join(HELPER_NAME));
    if !users.is_empty() {
        tracing::info!(
            ?users,
            "{install_dir} is in use; removal scheduled for the next boot"
        );
        schedule_removal(layout, install_dir)?;
        return Ok(vec![install_dir.to_string()]);
    }
    for name in [HELPER_NAME, MANIFEST_NAME] {
        fsutil::remove_file_if_exists(&host_dir.join(name))?;
    }
    fsutil::remove_dir_if_empty(&host_dir);
    fsutil::remove_dir_if_empty(&layout.host("/usr/lib/fsgate"));
    Ok(Vec::new())
}

const PENDING_HEADER: &str =
    "# fsgate: files that were in use at uninstall, removed by systemd-tmpfiles at boot\n";

fn pending_lines(layout: &Layout) -> Result<Vec<String>> {
    match std::fs::read_to_string(layout.pending_removal_file()) {
        Ok(text) => Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(Error::io(
            format!("reading {}", layout.pending_removal_file().display()),
            e,
        )),
    }
}

fn write_pending(layout: &Layout, lines: &[String]) -> Result<()> {
    let path = layout.pending_removal_file();
    if lines.is_empty() {
        return fsutil::remove_file_if_exists(&path);
    }
    let mut text = PENDING_HEADER.to_string();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    fsutil::write_atomic(&path, text.as_bytes(), 0o644)
}

fn schedule_removal(layout: &Layout, install_dir: &str) -> Result<()> {
    let mut lines = pending_lines(layout)?;
    let line = format!("R {install_dir}");
    if !lines.contains(&line) {
        lines.push(line);
    }
    write_pending(layout, &lines)
}

/// A new install into a directory scheduled for removal must survive the reboot.
fn cancel_pending_removal(layout: &Layout, install_dir: &str) -> Result<()> {
    let lines = pending_lines(layout)?;
    if lines.is_empty() {
        return Ok(());
    }
    let kept: Vec<String> = lines
        .iter()
        .filter(|l| l.split_whitespace().nth(1) != Some(install_dir))
        .cloned()
        .collect();
    if kept.len() != lines.len() {
        write_pending(layout, &kept)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_dir_defaults_per_major_and_refuses_relative_paths() {
        assert_eq!(target_dir("p", "", 3).unwrap(), "/usr/lib/fsgate/3");
        assert_eq!(target_dir("p", "/opt/fsgate/", 3).unwrap(), "/opt/fsgate");
        assert!(target_dir("p", "opt/fsgate", 3).is_err());
        let e = target_dir("path_to_install", "/opt/../etc", 3).unwrap_err();
        assert!(e.message().contains("path_to_install"));
    }

    #[test]
    fn pending_removal_is_scheduled_once_and_cancelled_by_a_new_install() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::new(root.path());
        schedule_removal(&layout, "/usr/lib/fsgate/1").unwrap();
        schedule_removal(&layout, "/usr/lib/fsgate/1").unwrap();
        schedule_removal(&layout, "/usr/lib/fsgate/2").unwrap();
        let text = std::fs::read_to_string(layout.pending_removal_file()).unwrap();
        assert_eq!(
            text,
            format!("{PENDING_HEADER}R /usr/lib/fsgate/1\nR /usr/lib/fsgate/2\n")
        );
        cancel_pending_removal(&layout, "/usr/lib/fsgate/1").unwrap();
        assert_eq!(pending_lines(&layout).unwrap(), vec!["R /usr/lib/fsgate/2"]);
        cancel_pending_removal(&layout, "/usr/lib/fsgate/2").unwrap();
        assert!(!layout.pending_removal_file().exists());
    }
}
