//! Reparse rules: redirect every access to a name that matches a source mask to another
//! path (the reference's "Reparse Rules"), served by the overlay backend.
//!
//! A rule is a source mask and a destination. A source mask ending in `/*` covers its
//! directory's whole tree (and, unlike other rules, the directory itself); when the
//! destination ends in `/*` too, the rest of the path is kept
//! (`/srv/in/*` → `/srv/out/*` sends `/srv/in/a/b` to `/srv/out/a/b`), otherwise every
//! matching name goes to the one destination path. Rules have priority over every other
//! rule, and matching restarts after each redirection, so rules chain; a chain longer
//! than [`MAX_REDIRECTIONS`] (a cycle) fails with `ELOOP`.

use std::collections::BTreeMap;

use fsgate_core::mask::FileMask;
use fsgate_core::{Error, Result};

/// The most redirections one name may go through.
pub const MAX_REDIRECTIONS: usize = 16;

/// One reparse rule, as `get_reparse_rule_by_mask` and the snapshot report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReparseRule {
    /// The source mask (the rule's identity).
    pub mask: String,
    /// Where matching names go.
    pub new_mask: String,
}

/// The reparse rules of one filter.
#[derive(Clone, Debug, Default)]
pub struct ReparseRules {
    rules: BTreeMap<String, (FileMask, String)>,
}

impl ReparseRules {
    /// Adds (or replaces) the rule for `mask`. Both must be absolute paths or masks;
    /// errors name the argument.
    pub fn add(&mut self, mask: &str, new_mask: &str) -> Result<()> {
        if !new_mask.starts_with('/') {
            return Err(Error::invalid_argument(
                "new_mask",
                format!("'{new_mask}' is not an absolute path"),
            ));
        }
        if new_mask.trim_end_matches("/*").contains(['*', '?']) {
            return Err(Error::invalid_argument(
                "new_mask",
                format!("'{new_mask}' may end in /* but hold no other wildcard"),
            ));
        }
        let parsed = FileMask::parse(mask)?;
        if parsed.path().fixed_directory().is_none() {
            return Err(Error::invalid_argument(
                "mask",
                format!("'{mask}' has no leading directory"),
            ));
        }
        self.rules
            .insert(mask.to_string(), (parsed, new_mask.to_string()));
        Ok(())
    }

    /// Removes the rule for `mask`; whether it existed.
    pub fn delete(&mut self, mask: &str) -> bool {
        self.rules.remove(mask).is_some()
    }

    /// Removes every rule.
    pub fn clear(&mut self) {
        self.rules.clear();
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule for `mask`.
    pub fn get(&self, mask: &str) -> Option<ReparseRule> {
        self.rules.get(mask).map(|(_, new_mask)| ReparseRule {
            mask: mask.to_string(),
            new_mask: new_mask.clone(),
        })
    }

    /// Every rule, by mask.
    pub fn snapshot(&self) -> Vec<ReparseRule> {
        self.rules
            .keys()
            .filter_map(|mask| self.get(mask))
            .collect()
    }

    /// The leading directories of the source masks (where overlays must be mounted).
    pub fn directories(&self) -> Vec<String> {
        self.rules
            .values()
            .filter_map(|(mask, _)| {
                let pattern = mask.path().pattern();
                match pattern.strip_suffix("/*") {
                    Some(dir) if !dir.contains(['*', '?']) => Some(dir.to_string()),
                    _ => mask.path().fixed_directory().map(str::to_string),
                }
            })
            .collect()
    }

    /// Where `path` goes: `None` when no rule matches, else the path after every
    /// redirection; `ELOOP` past [`MAX_REDIRECTIONS`].
    pub fn resolve(&self, path: &str) -> Result<Option<String>> {
        let mut current = path.to_string();
        let mut moved = false;
        for _ in 0..=MAX_REDIRECTIONS {
            match self.step(&current) {
                Some(next) => {
                    current = next;
                    moved = true;
                }
                None => return Ok(moved.then_some(current)),
            }
        }
        Err(Error::from_errno(
            libc::ELOOP,
            format!(
                "{path}: more than {MAX_REDIRECTIONS} reparse redirections (a cycle of rules?)"
            ),
        ))
    }

    /// One redirection of `path`, if a rule matches.
    fn step(&self, path: &str) -> Option<String> {
        self.rules.values().find_map(|(mask, new_mask)| {
            let pattern = mask.path().pattern();
            let tree = pattern
                .strip_suffix("/*")
                .filter(|dir| !dir.contains(['*', '?']));
            let rest = match tree {
                // `/dir/*` covers `/dir` and everything below it.
                Some(dir) if path == dir => Some(""),
                Some(dir) => path.strip_prefix(dir).filter(|r| r.starts_with('/')),
                None => None,
            };
            if !mask.matches(path, None) && rest.is_none() {
                return None;
            }
            Some(match (new_mask.strip_suffix("/*"), rest) {
                (Some(target), Some(rest)) => format!("{target}{rest}"),
                (Some(target), None) => {
                    let name = path.rsplit('/').next().unwrap_or(path);
                    format!("{target}/{name}")
                }
                (None, _) => new_mask.clone(),
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_rule_keeps_the_rest_of_the_path_and_covers_its_directory() {
        let mut r = ReparseRules::default();
        r.add("/srv/in/*", "/srv/out/*").unwrap();
        assert_eq!(
            r.resolve("/srv/in/a/b").unwrap().as_deref(),
            Some("/srv/out/a/b")
        );
        assert_eq!(r.resolve("/srv/in").unwrap().as_deref(), Some("/srv/out"));
        assert_eq!(r.resolve("/srv/inner").unwrap(), None);
        assert_eq!(r.directories(), vec!["/srv/in".to_string()]);
    }

    #[test]
    fn a_name_rule_sends_every_match_to_one_path_and_rules_chain() {
        let mut r = ReparseRules::default();
        r.add("/d/*.cfg", "/etc/app.cfg").unwrap();
        r.add("/etc/app.cfg", "/etc/real.cfg").unwrap();
        assert_eq!(
            r.resolve("/d/x/y.cfg").unwrap().as_deref(),
            Some("/etc/real.cfg")
        );
        assert_eq!(r.get("/d/*.cfg").unwrap().new_mask, "/etc/app.cfg");
        assert_eq!(r.snapshot().len(), 2);
        assert!(r.delete("/etc/app.cfg"));
        assert_eq!(
            r.resolve("/d/y.cfg").unwrap().as_deref(),
            Some("/etc/app.cfg")
        );
    }

    #[test]
    fn a_cycle_is_eloop_and_bad_rules_are_refused_by_argument() {
        let mut r = ReparseRules::default();
        r.add("/a/x", "/b/x").unwrap();
        r.add("/b/x", "/a/x").unwrap();
        assert_eq!(r.resolve("/a/x").unwrap_err().errno(), libc::ELOOP);
        assert!(r
            .add("/a/y", "relative")
            .unwrap_err()
            .message()
            .contains("new_mask"));
        assert!(r.add("*.txt", "/x").unwrap_err().message().contains("mask"));
        assert!(r
            .add("/a/*", "/b/*/c")
            .unwrap_err()
            .message()
            .contains("new_mask"));
    }
}
