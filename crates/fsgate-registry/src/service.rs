//! The fsgate service: one systemd unit per installed major (`fsgate-<major>.service`, a
//! oneshot that loads FUSE and runs the helper), its enabled state, and talking to systemd.
//!
//! Enabling is the `multi-user.target.wants` symlink that `systemctl enable` would create;
//! the installer manages it itself, so that it works the same under an alternative root.
//! `systemctl` is run only on the live system (root `/`) while systemd is running
//! (`/run/systemd/system` exists); under an alternative root nothing outside it is touched.

use std::path::Path;
use std::process::Command;

use fsgate_core::Result;

use crate::fsutil;
use crate::layout::Layout;

/// The unit text for `major` with the helper at `helper` (target-system path).
pub fn unit_text(template: &[u8], major: u16, helper: &str) -> Vec<u8> {
    String::from_utf8_lossy(template)
        .replace("@HELPER@", helper)
        .replace("@MAJOR@", &major.to_string())
        .into_bytes()
}

/// Whether the unit of `major` is enabled.
pub fn is_enabled(layout: &Layout, major: u16) -> bool {
    layout.unit_enable_link(major).symlink_metadata().is_ok()
}

/// Enables or disables the unit of `major`.
pub fn set_enabled(layout: &Layout, major: u16, enabled: bool) -> Result<()> {
    let link = layout.unit_enable_link(major);
    fsutil::remove_file_if_exists(&link)?;
    if enabled {
        if let Some(dir) = link.parent() {
            fsutil::create_dir_all(dir)?;
        }
        let target = format!("/usr/lib/systemd/system/{}", Layout::unit_name(major));
        std::os::unix::fs::symlink(&target, &link)
            .map_err(|e| fsgate_core::Error::io(format!("creating {}", link.display()), e))?;
    }
    Ok(())
}

/// Whether systemd manages the system this layout describes.
pub fn systemd_manages(layout: &Layout) -> bool {
    layout.is_live_system() && Path::new("/run/systemd/system").is_dir()
}

/// Runs `systemctl args…` when systemd manages the system; failures are logged, not fatal
/// (the files are in place and take effect at the next boot).
pub fn systemctl(layout: &Layout, args: &[&str]) -> bool {
    if !systemd_manages(layout) {
        return false;
    }
    match Command::new("systemctl").args(args).status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            tracing::warn!("systemctl {} exited with {s}", args.join(" "));
            false
        }
        Err(e) => {
            tracing::warn!("running systemctl {}: {e}", args.join(" "));
            false
        }
    }
}

/// Whether the unit of `major` is active (`systemctl is-active`); false when systemd does
/// not manage the system.
pub fn is_active(layout: &Layout, major: u16) -> bool {
    systemd_manages(layout)
        && Command::new("systemctl")
            .args(["is-active", "--quiet", &Layout::unit_name(major)])
            .status()
            .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enable_link_round_trips_under_a_root() {
        let root = tempfile::tempdir().unwrap();
        let layout = Layout::new(root.path());
        assert!(!is_enabled(&layout, 3));
        set_enabled(&layout, 3, true).unwrap();
        assert!(is_enabled(&layout, 3));
        assert_eq!(
            std::fs::read_link(layout.unit_enable_link(3)).unwrap(),
            Path::new("/usr/lib/systemd/system/fsgate-3.service")
        );
        set_enabled(&layout, 3, false).unwrap();
        assert!(!is_enabled(&layout, 3));
        assert!(!systemd_manages(&layout));
    }

    #[test]
    fn unit_text_fills_in_helper_and_major() {
        let t = unit_text(
            b"ExecStart=@HELPER@ --version # @MAJOR@",
            2,
            "/usr/lib/fsgate/2/fsgate",
        );
        assert_eq!(t, b"ExecStart=/usr/lib/fsgate/2/fsgate --version # 2");
    }
}
