//! File masks: templates that file paths are matched against.
//!
//! A mask is a [`PathMask`] optionally restricted to a process and optionally inverted:
//!
//! | form | matches |
//! |---|---|
//! | `*.doc` | files named `*.doc` in any directory (the mask has no `/`, so only the last path component is compared) |
//! | `/srv/reports/*` | everything below `/srv/reports/`, at any depth, but not `/srv/reports` itself |
//! | `*/Pictures/20??/*.jpg` | a leading path with wildcards: `*` matches any run of characters, `/` included |
//! | `tmp/*.tmp` | a relative leading path matches at any depth: it is read as `*/tmp/*.tmp` |
//! | `name|mask`, `~name|mask` | only requests made (or not made) by a process whose image matches `name`: with a `/` the full image path is compared, else its file name; wildcards allowed |
//! | `pid|mask`, `~pid|mask` | only requests made (or not made) by process `pid` |
//! | `||mask` | inverted: matches exactly what `mask` does not |
//!
//! `?` matches one character other than `/`; `*` matches any run, `/` included, which is what
//! makes `/dir/*` cover a whole tree. Matching is case-sensitive, as Linux names are; masks
//! built with [`FileMask::parse_with`] and `case_sensitive = false` compare ASCII letters
//! without case. Windows volume names (`C:\`, `\\?\Volume{…}`) have no Linux equivalent: a
//! Linux mask starts at `/`, and a "volume" is a mounted filesystem.

use std::fmt;

use crate::error::{Error, Result};

/// A wildcard path template, without the process and inversion parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathMask {
    pattern: String,
    name_only: bool,
    case_sensitive: bool,
    /// The length of the pattern's literal end (after its last wildcard; the whole pattern
    /// when it has none), which every matching path ends with: a path that does not is
    /// refused by comparing those bytes alone.
    literal_tail: usize,
}

impl PathMask {
    /// Parses a path mask; an empty mask, a NUL byte or a mask ending in `/` are errors.
    pub fn parse(mask: &str, case_sensitive: bool) -> Result<Self> {
        if mask.is_empty() {
            return Err(Error::invalid_argument("mask", "the mask is empty"));
        }
        if mask.contains('\0') {
            return Err(Error::invalid_argument(
                "mask",
                format!("'{}' contains a NUL byte", mask.escape_debug()),
            ));
        }
        if mask.len() > 1 && mask.ends_with('/') {
            return Err(Error::invalid_argument(
                "mask",
                format!("'{mask}' ends with '/'; use '{mask}*' to match what is below it"),
            ));
        }
        let name_only = !mask.contains('/');
        let pattern = if name_only || mask.starts_with('/') || mask.starts_with('*') {
            mask.to_string()
        } else {
            format!("*/{mask}")
        };
        let literal_tail = pattern.len() - pattern.rfind(['*', '?']).map_or(0, |i| i + 1);
        Ok(Self {
            pattern,
            name_only,
            case_sensitive,
            literal_tail,
        })
    }

    /// Whether `path` (absolute, `/`-separated) matches. A path that does not end with the
    /// pattern's literal end (`.keep` for `*.keep`) is refused after comparing those bytes.
    pub fn matches(&self, path: &str) -> bool {
        let tail = &self.pattern.as_bytes()[self.pattern.len() - self.literal_tail..];
        let ends = path.len() >= tail.len() && {
            let end = &path.as_bytes()[path.len() - tail.len()..];
            if self.case_sensitive {
                end == tail
            } else {
                end.eq_ignore_ascii_case(tail)
            }
        };
        if !ends {
            return false;
        }
        let subject = if self.name_only {
            path.rsplit('/').next().unwrap_or(path)
        } else {
            path
        };
        wildcard_match(
            self.pattern.as_bytes(),
            subject.as_bytes(),
            self.case_sensitive,
        )
    }

    /// The longest directory that every matching path lies under, when the mask has an
    /// absolute leading path (`/srv/reports` for `/srv/reports/2024/*.pdf`); `None` for masks
    /// that may match anywhere. Filters use it to choose which mounts to mark.
    pub fn fixed_directory(&self) -> Option<&str> {
        if !self.pattern.starts_with('/') {
            return None;
        }
        let wild = self.pattern.find(['*', '?']).unwrap_or(self.pattern.len());
        let dir_end = self.pattern[..wild].rfind('/')?;
        Some(if dir_end == 0 {
            "/"
        } else {
            &self.pattern[..dir_end]
        })
    }

    /// Whether the mask compares only the last path component.
    pub fn is_name_only(&self) -> bool {
        self.name_only
    }

    /// The pattern as compared (a relative leading path gains its `*/`).
    pub fn pattern(&self) -> &str {
        &self.pattern
    }
}

/// Which processes a per-process mask covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessSelector {
    /// Every process.
    Any,
    /// Processes whose image matches (full path when the mask has a `/`, else the file name).
    Name(PathMask),
    /// The process with this id.
    Pid(u32),
}

/// The process making a request, as masks see it.
#[derive(Clone, Copy, Debug)]
pub struct Requestor<'a> {
    /// Process id.
    pub pid: u32,
    /// Full path of the process image (`/proc/<pid>/exe`), or its name when the path is not
    /// known.
    pub image: &'a str,
}

/// A complete file mask: process part, inversion and path part. See the [module](self) docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMask {
    text: String,
    process: ProcessSelector,
    process_negated: bool,
    inverted: bool,
    path: PathMask,
}

impl FileMask {
    /// Parses a case-sensitive mask.
    pub fn parse(mask: &str) -> Result<Self> {
        Self::parse_with(mask, true)
    }

    /// Parses a mask, choosing whether names compare with case.
    pub fn parse_with(mask: &str, case_sensitive: bool) -> Result<Self> {
        let (inverted, rest) = match mask.strip_prefix("||") {
            Some(rest) => (true, rest),
            None => (false, mask),
        };
        let (process, process_negated, path) = match rest.split_once('|') {
            None => (ProcessSelector::Any, false, rest),
            Some((proc_part, path)) => {
                let (negated, proc_part) = match proc_part.strip_prefix('~') {
                    Some(p) => (true, p),
                    None => (false, proc_part),
                };
                if proc_part.is_empty() {
                    return Err(Error::invalid_argument(
                        "mask",
                        format!("'{mask}' has an empty process part before '|'"),
                    ));
                }
                let selector = if proc_part.bytes().all(|b| b.is_ascii_digit()) {
                    let pid = proc_part.parse().map_err(|_| {
                        Error::invalid_argument(
                            "mask",
                            format!("'{proc_part}' in '{mask}' is not a valid process id"),
                        )
                    })?;
                    ProcessSelector::Pid(pid)
                } else {
                    ProcessSelector::Name(PathMask::parse(proc_part, case_sensitive)?)
                };
                (selector, negated, path)
            }
        };
        if path.contains('|') {
            return Err(Error::invalid_argument(
                "mask",
                format!("'{mask}' has more than one process part"),
            ));
        }
        Ok(Self {
            text: mask.to_string(),
            process,
            process_negated,
            inverted,
            path: PathMask::parse(path, case_sensitive)
                .map_err(|e| e.context(format!("in mask '{mask}'")))?,
        })
    }

    /// Whether a request on `path` by `requestor` (unknown: `None`, which a per-process mask
    /// never matches unless negated) is covered.
    pub fn matches(&self, path: &str, requestor: Option<Requestor<'_>>) -> bool {
        self.matches_process(requestor) && (self.path.matches(path) != self.inverted)
    }

    /// Whether only the process part of the mask covers `requestor`.
    pub fn matches_process(&self, requestor: Option<Requestor<'_>>) -> bool {
        let hit = match (&self.process, requestor) {
            (ProcessSelector::Any, _) => return true,
            (_, None) => false,
            (ProcessSelector::Pid(pid), Some(r)) => *pid == r.pid,
            (ProcessSelector::Name(m), Some(r)) => m.matches(r.image),
        };
        hit != self.process_negated
    }

    /// The path part.
    pub fn path(&self) -> &PathMask {
        &self.path
    }

    /// The process part.
    pub fn process(&self) -> &ProcessSelector {
        &self.process
    }

    /// Whether the process part is negated (`~`).
    pub fn is_process_negated(&self) -> bool {
        self.process_negated
    }

    /// Whether the mask is inverted (`||`).
    pub fn is_inverted(&self) -> bool {
        self.inverted
    }

    /// The mask as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for FileMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for FileMask {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// Matches `text` against `pattern` where `*` matches any run and `?` any byte but `/`.
fn wildcard_match(pattern: &[u8], text: &[u8], case_sensitive: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if case_sensitive {
            a == b
        } else {
            a.eq_ignore_ascii_case(&b)
        }
    };
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len()
            && ((pattern[p] == b'?' && text[t] != b'/') || eq(pattern[p], text[t]))
        {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(mask: &str, path: &str) -> bool {
        FileMask::parse(mask).unwrap().matches(path, None)
    }

    #[test]
    fn name_masks_compare_the_last_component() {
        assert!(m("*.doc", "/home/a/report.doc"));
        assert!(!m("*.doc", "/home/a.doc/report.txt"));
        assert!(m("20??_Budget.xls", "/x/2024_Budget.xls"));
        assert!(!m("20??_Budget.xls", "/x/202_Budget.xls"));
        assert!(m("*", "/anything"));
    }

    #[test]
    fn leading_paths_cover_the_subtree_but_not_the_directory() {
        assert!(m("/srv/reports/*", "/srv/reports/a"));
        assert!(m("/srv/reports/*", "/srv/reports/2024/q1/a.pdf"));
        assert!(!m("/srv/reports/*", "/srv/reports"));
        assert!(!m("/srv/reports/*", "/srv/reportsX/a"));
        assert!(m("/temp/*.tmp", "/temp/a.tmp"));
        assert!(!m("/temp/*.tmp", "/other/temp/a.tmp"));
    }

    #[test]
    fn wildcards_in_the_path_part() {
        assert!(m("*/Pictures/20??/*.jpg", "/home/u/Pictures/2023/cat.jpg"));
        assert!(!m("*/Pictures/20??/*.jpg", "/home/u/Pictures/1999/cat.jpg"));
        assert!(!m("/a/?/b", "/a/x/y/b"));
        assert!(m("/a/*/b", "/a/x/y/b"));
    }

    #[test]
    fn relative_leading_path_matches_at_any_depth() {
        assert!(m("tmp/*.tmp", "/var/tmp/x.tmp"));
        assert!(m("tmp/*.tmp", "/tmp/x.tmp"));
        assert!(!m("tmp/*.tmp", "/var/xtmp/x.tmp"));
    }

    #[test]
    fn the_literal_end_decides_quickly_and_exactly() {
        assert!(m("*.keep", "/d/a.keep"));
        assert!(!m("*.keep", "/d/a.kee"));
        assert!(!m("*.keep", "/d/a.keep/b"));
        assert!(!m("*.keep", "keep"));
        assert!(m("/d/*", "/d/a"));
        assert!(m("/d/a?", "/d/ab"));
        assert!(m("/d/a", "/d/a"));
        assert!(!m("/d/a", "/e/d/a"));
        assert!(m("a?c", "/x/abc"));
        let insensitive = FileMask::parse_with("*.KEEP", false).unwrap();
        assert!(insensitive.matches("/d/a.keep", None));
        assert!(!insensitive.matches("/d/a.kept", None));
    }

    #[test]
    fn case_sensitivity_is_a_choice() {
        assert!(!m("*.DOC", "/a/b.doc"));
        let ci = FileMask::parse_with("*.DOC", false).unwrap();
        assert!(ci.matches("/a/b.doc", None));
    }

    #[test]
    fn inverted_masks_negate_the_path_match() {
        assert!(!m("||*.doc", "/a/b.doc"));
        assert!(m("||*.doc", "/a/b.txt"));
    }

    #[test]
    fn per_process_masks() {
        let by_name = FileMask::parse("cat|/data/*").unwrap();
        let cat = Requestor {
            pid: 10,
            image: "/usr/bin/cat",
        };
        let dd = Requestor {
            pid: 11,
            image: "/usr/bin/dd",
        };
        assert!(by_name.matches("/data/x", Some(cat)));
        assert!(!by_name.matches("/data/x", Some(dd)));
        assert!(!by_name.matches("/data/x", None));
        let not_cat = FileMask::parse("~cat|/data/*").unwrap();
        assert!(!not_cat.matches("/data/x", Some(cat)));
        assert!(not_cat.matches("/data/x", Some(dd)));
        let by_path = FileMask::parse("/usr/bin/c*|*").unwrap();
        assert!(by_path.matches("/x", Some(cat)));
        assert!(!by_path.matches("/x", Some(dd)));
        let by_pid = FileMask::parse("11|*").unwrap();
        assert!(by_pid.matches("/x", Some(dd)));
        assert!(!by_pid.matches("/x", Some(cat)));
        let not_pid = FileMask::parse("~11|*").unwrap();
        assert!(not_pid.matches("/x", Some(cat)));
        let inv = FileMask::parse("||dd|*.log").unwrap();
        assert!(inv.matches("/x.txt", Some(dd)));
        assert!(!inv.matches("/x.log", Some(dd)));
        assert!(!inv.matches("/x.txt", Some(cat)));
    }

    #[test]
    fn bad_masks_are_clear_errors() {
        assert!(FileMask::parse("").unwrap_err().message().contains("empty"));
        assert!(FileMask::parse("|*.x")
            .unwrap_err()
            .message()
            .contains("empty process part"));
        assert!(FileMask::parse("a|b|c")
            .unwrap_err()
            .message()
            .contains("more than one"));
        assert!(FileMask::parse("/a/")
            .unwrap_err()
            .message()
            .contains("ends with"));
        assert!(FileMask::parse("99999999999|*")
            .unwrap_err()
            .message()
            .contains("process id"));
    }

    #[test]
    fn fixed_directory_is_the_wildcard_free_prefix() {
        let d = |s: &str| {
            PathMask::parse(s, true)
                .unwrap()
                .fixed_directory()
                .map(String::from)
        };
        assert_eq!(
            d("/srv/reports/2024/*.pdf").as_deref(),
            Some("/srv/reports/2024")
        );
        assert_eq!(d("/srv/re*/x").as_deref(), Some("/srv"));
        assert_eq!(d("/x*").as_deref(), Some("/"));
        assert_eq!(d("*.pdf"), None);
        assert_eq!(d("tmp/*.x"), None);
    }
}
