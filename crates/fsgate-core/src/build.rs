//! `BuildInfo` and `LicenseInfo`: what was built, from which commit, under which license.

use std::fmt;

/// The license fsgate is distributed under, reported by every class's `LicenseInfo`.
pub const LICENSE_INFO: &str =
    "fsgate is open source under the MIT or Apache-2.0 license; no license key is needed";

/// What was built: version, git commit, cargo profile and target triple.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    /// The crate version, `major.minor.patch`.
    pub version: &'static str,
    /// The short git commit the build came from, or `unknown` outside a checkout.
    pub git_commit: &'static str,
    /// The cargo profile (`debug` or `release`).
    pub profile: &'static str,
    /// The target triple.
    pub target: &'static str,
}

impl BuildInfo {
    /// The information for this build.
    pub const fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            git_commit: env!("FSGATE_GIT_COMMIT"),
            profile: env!("FSGATE_PROFILE"),
            target: env!("FSGATE_TARGET"),
        }
    }

    /// The version as the reference's four 16-bit parts packed into 64 bits
    /// (`major << 48 | minor << 32 | patch << 16 | build`), build being 0.
    pub fn version_u64(&self) -> u64 {
        let mut parts = self
            .version
            .split('.')
            .map(|p| p.parse::<u64>().unwrap_or(0));
        let mut v = 0u64;
        for shift in [48, 32, 16] {
            v |= (parts.next().unwrap_or(0) & 0xffff) << shift;
        }
        v
    }
}

impl fmt::Display for BuildInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fsgate {} (commit {}, {} build, {})",
            self.version, self.git_commit, self.profile, self.target
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_packs_into_four_parts() {
        let b = BuildInfo {
            version: "1.2.3",
            ..BuildInfo::current()
        };
        assert_eq!(b.version_u64(), 1 << 48 | 2 << 32 | 3 << 16);
    }

    #[test]
    fn display_names_version_and_commit() {
        let s = BuildInfo::current().to_string();
        assert!(s.contains(env!("CARGO_PKG_VERSION")));
        assert!(s.contains("commit"));
    }
}
