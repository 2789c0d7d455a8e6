//! The package: the analog of the reference's `.cab` file.
//!
//! A plain POSIX tar archive holding `manifest.json` first, then the files it lists:
//!
//! | member | installed as |
//! |---|---|
//! | `fsgate` | the helper binary, `/usr/lib/fsgate/<major>/fsgate` |
//! | `fsgate.service` | `/usr/lib/systemd/system/fsgate-<major>.service` (`@HELPER@` and `@MAJOR@` filled in) |
//! | `modules-load.conf` | `/usr/lib/modules-load.d/fsgate.conf` (loads `fuse` at boot) |
//! | `tmpfiles.conf` | `/usr/lib/tmpfiles.d/fsgate.conf` (creates `/dev/fuse`) |
//!
//! The manifest carries the version (four 16-bit parts) and each member's size, mode and
//! SHA-256. [`Package::open`] verifies all of them before the installer writes anything, so
//! a tampered or truncated package installs nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use fsgate_core::{code, Error, Result};

use crate::version::Version;

/// The manifest format this crate writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;
const MANIFEST_NAME: &str = "manifest.json";

const SERVICE_TEMPLATE: &str = include_str!("../packaging/fsgate.service");
const MODULES_LOAD: &str = include_str!("../packaging/modules-load.conf");
const TMPFILES: &str = include_str!("../packaging/tmpfiles.conf");

/// What a packaged file is, which decides where it is installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// The `fsgate` helper binary.
    Helper,
    /// The systemd unit template.
    ServiceUnit,
    /// The modules-load.d snippet.
    ModulesLoad,
    /// The tmpfiles.d snippet.
    Tmpfiles,
}

/// One packaged file as the manifest lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackagedFile {
    /// The member name in the archive.
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Unix permission bits it is installed with.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
}

/// The package manifest (`manifest.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The version, `major.minor.patch.build`.
    pub version: String,
    /// The packaged files.
    pub files: Vec<PackagedFile>,
}

impl Manifest {
    /// The parsed version.
    pub fn version(&self) -> Result<Version> {
        self.version.parse()
    }
}

/// A package read from disk with every checksum verified.
#[derive(Clone, Debug)]
pub struct Package {
    manifest: Manifest,
    version: Version,
    contents: BTreeMap<String, Vec<u8>>,
}

impl Package {
    /// Builds a package at `outfile` holding `helper_binary` as the `fsgate` helper, with the
    /// version of this library ([`Version::current`]). `fsgate package OUTFILE` calls this
    /// with its own executable. The file is written atomically.
    pub fn build(outfile: &Path, helper_binary: &Path) -> Result<Manifest> {
        Self::build_with_version(outfile, helper_binary, Version::current())
    }

    /// Like [`Package::build`] with an explicit version: tests and release tooling use it to
    /// produce packages that exercise the upgrade, downgrade and side-by-side rules.
    pub fn build_with_version(
        outfile: &Path,
        helper_binary: &Path,
        version: Version,
    ) -> Result<Manifest> {
        let helper = std::fs::read(helper_binary).map_err(|e| {
            Error::io(
                format!("reading helper binary {}", helper_binary.display()),
                e,
            )
            .context("helper_binary")
        })?;
        let members: [(&str, FileKind, u32, &[u8]); 4] = [
            ("fsgate", FileKind::Helper, 0o755, &helper),
            (
                "fsgate.service",
                FileKind::ServiceUnit,
                0o644,
                SERVICE_TEMPLATE.as_bytes(),
            ),
            (
                "modules-load.conf",
                FileKind::ModulesLoad,
                0o644,
                MODULES_LOAD.as_bytes(),
            ),
            (
                "tmpfiles.conf",
                FileKind::Tmpfiles,
                0o644,
                TMPFILES.as_bytes(),
            ),
        ];
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            version: version.to_string(),
            files: members
                .iter()
                .map(|&(name, kind, mode, data)| PackagedFile {
                    name: name.to_string(),
                    kind,
                    mode,
                    size: data.len() as u64,
                    sha256: sha256_hex(data),
                })
                .collect(),
        };
        let manifest_json = serde_json::to_vec_pretty(&manifest).map_err(|e| {
            Error::from_code(
                code::ERROR_INTERNAL_ERROR,
                format!("encoding the manifest: {e}"),
            )
        })?;

        let dir = outfile.parent().filter(|p| !p.as_os_str().is_empty());
        let tmp = match dir {
            Some(d) => d.join(format!(".package.tmp.{}", std::process::id())),
            None => format!(".package.tmp.{}", std::process::id()).into(),
        };
        let written = (|| {
            let file = File::create(&tmp)
                .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
            let mut tar = tar::Builder::new(BufWriter::new(file));
            let mut append = |name: &str, mode: u32, data: &[u8]| {
                let mut header = tar::Header::new_ustar();
                header.set_size(data.len() as u64);
                header.set_mode(mode);
                header.set_mtime(0);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_cksum();
                tar.append_data(&mut header, name, data)
                    .map_err(|e| Error::io(format!("writing {name} into {}", tmp.display()), e))
            };
            append(MANIFEST_NAME, 0o644, &manifest_json)?;
            for (name, _, mode, data) in members {
                append(name, mode, data)?;
            }
            let mut out = tar
                .into_inner()
                .map_err(|e| Error::io(format!("finishing {}", tmp.display()), e))?;
            out.flush()
                .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
            out.get_ref()
                .sync_all()
                .map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
            std::fs::rename(&tmp, outfile)
                .map_err(|e| Error::io(format!("renaming to {}", outfile.display()), e))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map(|()| manifest)
    }

    /// Reads the package at `path` and verifies its manifest and every checksum. A missing
    /// file is `ERROR_FILE_NOT_FOUND` (2); a damaged or tampered one is
    /// `ERROR_INVALID_DATA` (13) naming the member.
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |reason: String| {
            Error::from_code(
                code::ERROR_INVALID_DATA,
                format!("package {} is damaged: {reason}", path.display()),
            )
        };
        let file = File::open(path)
            .map_err(|e| Error::io(format!("opening package {}", path.display()), e))?;
        let mut archive = tar::Archive::new(file);
        let mut contents = BTreeMap::new();
        let entries = archive
            .entries()
            .map_err(|e| bad(format!("not a tar archive ({e})")))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(format!("unreadable member ({e})")))?;
            let name = entry
                .path()
                .map_err(|e| bad(format!("bad member name ({e})")))?
                .to_string_lossy()
                .into_owned();
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| bad(format!("member {name} is truncated ({e})")))?;
            contents.insert(name, data);
        }
        let manifest: Manifest = serde_json::from_slice(
            contents
                .get(MANIFEST_NAME)
                .ok_or_else(|| bad(format!("it has no {MANIFEST_NAME}")))?,
        )
        .map_err(|e| bad(format!("{MANIFEST_NAME} is not valid ({e})")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(bad(format!(
                "manifest format {} is not {MANIFEST_FORMAT}",
                manifest.format
            )));
        }
        let version = manifest
            .version()
            .map_err(|e| bad(e.message().to_string()))?;
        for kind in [
            FileKind::Helper,
            FileKind::ServiceUnit,
            FileKind::ModulesLoad,
            FileKind::Tmpfiles,
        ] {
            let count = manifest.files.iter().filter(|f| f.kind == kind).count();
            if count != 1 {
                return Err(bad(format!(
                    "the manifest lists {count} files of kind {kind:?}"
                )));
            }
        }
        for f in &manifest.files {
            let data = contents
                .get(&f.name)
                .ok_or_else(|| bad(format!("member {} is missing", f.name)))?;
            if data.len() as u64 != f.size || sha256_hex(data) != f.sha256 {
                return Err(bad(format!(
                    "member {} does not match its SHA-256 checksum in the manifest",
                    f.name
                )));
            }
        }
        Ok(Self {
            manifest,
            version,
            contents,
        })
    }

    /// The verified manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The package version.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The content and mode of the file of `kind` (verified by [`Package::open`]).
    pub fn file(&self, kind: FileKind) -> Option<(&[u8], u32)> {
        let f = self.manifest.files.iter().find(|f| f.kind == kind)?;
        Some((self.contents.get(&f.name)?.as_slice(), f.mode))
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn helper(dir: &Path) -> std::path::PathBuf {
        let p = dir.join("helper");
        std::fs::write(&p, b"#!/bin/sh\necho helper\n").unwrap();
        p
    }

    #[test]
    fn build_then_open_round_trips_version_and_files() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("fsgate.pkg");
        let v: Version = "3.4.5.6".parse().unwrap();
        let m = Package::build_with_version(&pkg, &helper(dir.path()), v).unwrap();
        assert_eq!(m.version, "3.4.5.6");
        let p = Package::open(&pkg).unwrap();
        assert_eq!(p.version(), v);
        assert_eq!(p.manifest(), &m);
        let (data, mode) = p.file(FileKind::Helper).unwrap();
        assert_eq!(data, b"#!/bin/sh\necho helper\n");
        assert_eq!(mode, 0o755);
        assert_eq!(
            p.file(FileKind::ModulesLoad).unwrap().0,
            MODULES_LOAD.as_bytes()
        );
    }

    #[test]
    fn tampered_member_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("fsgate.pkg");
        Package::build(&pkg, &helper(dir.path())).unwrap();
        let mut bytes = std::fs::read(&pkg).unwrap();
        let at = bytes.windows(11).position(|w| w == b"echo helper").unwrap();
        bytes[at] = b'E';
        std::fs::write(&pkg, &bytes).unwrap();
        let e = Package::open(&pkg).unwrap_err();
        assert_eq!(e.code(), code::ERROR_INVALID_DATA);
        assert!(e.message().contains("member fsgate"), "{}", e.message());
    }

    #[test]
    fn truncated_and_missing_packages_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("fsgate.pkg");
        Package::build(&pkg, &helper(dir.path())).unwrap();
        let bytes = std::fs::read(&pkg).unwrap();
        std::fs::write(&pkg, &bytes[..700]).unwrap();
        assert_eq!(
            Package::open(&pkg).unwrap_err().code(),
            code::ERROR_INVALID_DATA
        );
        let e = Package::open(&dir.path().join("absent")).unwrap_err();
        assert_eq!(e.code(), code::ERROR_FILE_NOT_FOUND);
    }

    #[test]
    fn unit_template_is_well_formed() {
        for section in ["[Unit]", "[Service]", "[Install]"] {
            assert!(SERVICE_TEMPLATE.contains(section));
        }
        assert!(SERVICE_TEMPLATE.contains("ExecStart=@HELPER@ "));
    }
}
