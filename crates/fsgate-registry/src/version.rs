//! Versions as the reference's four 16-bit parts (`major.minor.patch.build`).

use std::fmt;
use std::str::FromStr;

use fsgate_core::{BuildInfo, Error, Result};

/// A four-part version. Ordering compares major, then minor, then patch, then build, which
/// is the order the version rules use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Different majors are installed side by side under `/usr/lib/fsgate/<major>/`.
    pub major: u16,
    /// Within one major, a newer minor (or patch or build) upgrades an older one.
    pub minor: u16,
    /// Third part.
    pub patch: u16,
    /// Fourth part.
    pub build: u16,
}

impl Version {
    /// The version of this library (`BuildInfo::current()`).
    pub fn current() -> Self {
        Self::from_u64(BuildInfo::current().version_u64())
    }

    /// Unpacks `major << 48 | minor << 32 | patch << 16 | build`.
    pub fn from_u64(v: u64) -> Self {
        Self {
            major: (v >> 48) as u16,
            minor: (v >> 32) as u16,
            patch: (v >> 16) as u16,
            build: v as u16,
        }
    }

    /// Packs into the 64-bit value that `get_driver_version` returns.
    pub fn to_u64(self) -> u64 {
        u64::from(self.major) << 48
            | u64::from(self.minor) << 32
            | u64::from(self.patch) << 16
            | u64::from(self.build)
    }
}

impl FromStr for Version {
    type Err = Error;

    /// Parses one to four dot-separated parts, each 0–65535; missing parts are 0.
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('.').collect();
        if parts.is_empty() || parts.len() > 4 {
            return Err(Error::invalid_argument(
                "version",
                format!("{s:?} must have one to four dot-separated parts"),
            ));
        }
        let mut n = [0u16; 4];
        for (slot, part) in n.iter_mut().zip(&parts) {
            *slot = part.parse().map_err(|_| {
                Error::invalid_argument(
                    "version",
                    format!("{s:?}: part {part:?} is not a number from 0 to 65535"),
                )
            })?;
        }
        Ok(Self {
            major: n[0],
            minor: n[1],
            patch: n[2],
            build: n[3],
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.major, self.minor, self.patch, self.build
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_like_the_reference_example() {
        let v: Version = "2.32.6.28".parse().unwrap();
        assert_eq!(v.to_u64(), 0x0002_0020_0006_001C);
        assert_eq!(Version::from_u64(0x0002_0020_0006_001C), v);
        assert_eq!(v.to_string(), "2.32.6.28");
    }

    #[test]
    fn orders_by_major_then_minor() {
        let a: Version = "1.9".parse().unwrap();
        let b: Version = "2.0".parse().unwrap();
        let c: Version = "2.1".parse().unwrap();
        assert!(a < b && b < c);
    }

    #[test]
    fn refuses_out_of_range_and_too_many_parts() {
        assert!("1.65536".parse::<Version>().is_err());
        assert!("1.2.3.4.5".parse::<Version>().is_err());
        assert!("x".parse::<Version>().is_err());
    }

    #[test]
    fn current_matches_build_info() {
        assert_eq!(
            Version::current().to_u64(),
            BuildInfo::current().version_u64()
        );
    }
}
