//! What the drive remembers of the store's names: each key's kind and object metadata, and
//! which directories were listed, each for the metadata timeout.
//!
//! A `stat` right after a listing, or a second `stat`, costs no request; a change made by
//! another mount shows here once the entry is older than the timeout. Changes made through
//! this drive update the entries at once.
//!
//! What the store answers is only as new as the moment it was asked: a listing sent while
//! one of the drive's uploads runs holds the object as it was before that upload. So an
//! answer is learnt ([`MetaCache::learn`], [`MetaCache::learn_listing`]) with the
//! [`Asked`] instant taken before the request, and it is not remembered for a key the drive
//! changed after that instant: the drive's own entry, newer, stays.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::ObjectInfo;

/// What a key is in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// An object.
    File(ObjectInfo),
    /// A prefix with objects under it, or an empty directory's marker.
    Directory,
    /// Nothing.
    Missing,
}

/// When a request to the store was sent: its answer is older than any change the drive
/// made after this.
#[derive(Clone, Copy, Debug)]
pub struct Asked(Instant);

/// How many changed keys are remembered before the oldest are let go (see
/// [`State::forgotten_before`]).
const CHANGES_KEPT: usize = 4096;

/// The metadata cache.
pub struct MetaCache {
    timeout: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Key → what it is and when that was learnt.
    entries: HashMap<String, (Entry, Instant)>,
    /// Directory key → when it was listed whole: a name under it that is not in `entries` is
    /// missing until then plus the timeout.
    listed: HashMap<String, Instant>,
    /// Key → when the drive last changed it (or forgot it after a change of its own).
    changed: HashMap<String, Instant>,
    /// Directory key → when the drive last changed the whole tree under it.
    trees_changed: HashMap<String, Instant>,
    /// Changes before this were let go from `changed`: an answer asked for before it is
    /// not remembered at all.
    forgotten_before: Option<Instant>,
}

impl State {
    /// The drive changed `key` now.
    fn change(&mut self, key: &str, now: Instant) {
        self.changed.insert(key.to_owned(), now);
        if self.changed.len() > CHANGES_KEPT {
            let mut times: Vec<Instant> = self.changed.values().copied().collect();
            times.sort_unstable();
            let cut = times[times.len() / 2];
            self.changed.retain(|_, at| *at > cut);
            self.forgotten_before = self.forgotten_before.max(Some(cut));
        }
    }

    /// Whether the drive changed `key` (or a tree holding it) after `asked`.
    fn changed_since(&self, key: &str, asked: Asked) -> bool {
        if self.forgotten_before.is_some_and(|at| at >= asked.0) {
            return true;
        }
        let after = |at: Option<&Instant>| at.is_some_and(|at| *at >= asked.0);
        if after(self.changed.get(key)) {
            return true;
        }
        let mut dir = key;
        loop {
            if after(self.trees_changed.get(dir)) {
                return true;
            }
            if dir.is_empty() {
                return false;
            }
            dir = parent_of(dir);
        }
    }
}

/// The directory key of `key` (`a/b` → `a`, `a` → ``).
pub fn parent_of(key: &str) -> &str {
    key.rsplit_once('/').map_or("", |(parent, _)| parent)
}

impl MetaCache {
    /// An empty cache whose entries last `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What `key` is, when known and fresh.
    pub fn get(&self, key: &str) -> Option<Entry> {
        let state = self.lock();
        let now = Instant::now();
        if let Some((entry, at)) = state.entries.get(key) {
            if now.duration_since(*at) < self.timeout {
                return Some(entry.clone());
            }
        }
        match state.listed.get(parent_of(key)) {
            // Changed by the drive since the listing: the listing does not know.
            Some(at) if state.changed_since(key, Asked(*at)) => None,
            Some(at) if now.duration_since(*at) < self.timeout => Some(Entry::Missing),
            _ => None,
        }
    }

    /// The instant to pass to [`learn`](Self::learn) or
    /// [`learn_listing`](Self::learn_listing), taken before asking the store.
    pub fn asking(&self) -> Asked {
        Asked(Instant::now())
    }

    /// Records what the drive made `key` now (a change of its own).
    pub fn put(&self, key: &str, entry: Entry) {
        let mut state = self.lock();
        let now = Instant::now();
        state.entries.insert(key.to_owned(), (entry, now));
        state.change(key, now);
    }

    /// Records what the store said `key` is, asked at `asked`, unless the drive changed the
    /// key since.
    pub fn learn(&self, key: &str, entry: Entry, asked: Asked) {
        let mut state = self.lock();
        if !state.changed_since(key, asked) {
            state.entries.insert(key.to_owned(), (entry, asked.0));
        }
    }

    /// Records a whole listing of `dir` the drive made itself (a new, empty directory): its
    /// entries, and that names not among them are missing.
    pub fn put_listing(&self, dir: &str, entries: impl IntoIterator<Item = (String, Entry)>) {
        let mut state = self.lock();
        let now = Instant::now();
        for (key, entry) in entries {
            state.entries.insert(key.clone(), (entry, now));
            state.change(&key, now);
        }
        state.listed.insert(dir.to_owned(), now);
    }

    /// Records a whole listing of `dir` the store gave, asked at `asked`: its entries, except
    /// those the drive changed since, and that names not among them are missing, except
    /// names the drive changed since.
    pub fn learn_listing(
        &self,
        dir: &str,
        entries: impl IntoIterator<Item = (String, Entry)>,
        asked: Asked,
    ) {
        let mut state = self.lock();
        for (key, entry) in entries {
            if !state.changed_since(&key, asked) {
                state.entries.insert(key, (entry, asked.0));
            }
        }
        if !state.changed_since(dir, asked) {
            state.listed.insert(dir.to_owned(), asked.0);
        }
    }

    /// Forgets what is known of `key` alone, keeping its directory's listing: after a
    /// change the drive made itself and keeps track of (a file it created is among its open
    /// files until its upload puts the object's entry here), so the listing's other names,
    /// and the absence of other names it does not hold, stay true. `key` itself is unknown
    /// until its next entry.
    pub fn forget_entry(&self, key: &str) {
        let mut state = self.lock();
        state.entries.remove(key);
        state.change(key, Instant::now());
    }

    /// Forgets `key` and the listing of its directory (after a change of either).
    pub fn forget(&self, key: &str) {
        let mut state = self.lock();
        state.entries.remove(key);
        state.listed.remove(parent_of(key));
        state.change(key, Instant::now());
    }

    /// Forgets `dir`'s listing and every entry at or under `dir`.
    pub fn forget_tree(&self, dir: &str) {
        let mut state = self.lock();
        let under = format!("{dir}/");
        state
            .entries
            .retain(|k, _| k != dir && !k.starts_with(&under));
        state
            .listed
            .retain(|k, _| k != dir && !k.starts_with(&under));
        state.listed.remove(parent_of(dir));
        state.trees_changed.insert(dir.to_owned(), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn file(size: u64) -> Entry {
        Entry::File(ObjectInfo {
            size,
            modified: SystemTime::UNIX_EPOCH,
            version: size.to_string(),
        })
    }

    #[test]
    fn a_listing_answers_for_its_names_and_their_absence() {
        let cache = MetaCache::new(Duration::from_secs(3600));
        cache.put_listing("d", [("d/a".to_owned(), file(3))]);
        assert_eq!(cache.get("d/a"), Some(file(3)));
        assert_eq!(cache.get("d/b"), Some(Entry::Missing));
        assert_eq!(cache.get("e/b"), None);
    }

    #[test]
    fn forgetting_an_entry_keeps_the_listing() {
        let cache = MetaCache::new(Duration::from_secs(3600));
        cache.put_listing("d", [("d/a".to_owned(), file(3))]);
        cache.put("d/b", file(4));
        cache.forget_entry("d/b");
        assert_eq!(cache.get("d/a"), Some(file(3)));
        assert_eq!(cache.get("d/b"), None);
        assert_eq!(cache.get("d/c"), Some(Entry::Missing));
    }

    #[test]
    fn forgetting_a_key_forgets_its_directory_listing() {
        let cache = MetaCache::new(Duration::from_secs(3600));
        cache.put_listing("d", [("d/a".to_owned(), file(3))]);
        cache.forget("d/a");
        assert_eq!(cache.get("d/a"), None);
        assert_eq!(cache.get("d/b"), None);
    }

    #[test]
    fn forgetting_a_tree_forgets_everything_under_it() {
        let cache = MetaCache::new(Duration::from_secs(3600));
        cache.put("d/x/a", file(1));
        cache.put("d/xa", file(2));
        cache.put_listing("d/x", []);
        cache.forget_tree("d/x");
        assert_eq!(cache.get("d/x/a"), None);
        assert_eq!(cache.get("d/x/b"), None);
        assert_eq!(cache.get("d/xa"), Some(file(2)));
    }

    #[test]
    fn entries_expire_after_the_timeout() {
        let cache = MetaCache::new(Duration::ZERO);
        cache.put("a", file(1));
        assert_eq!(cache.get("a"), None);
    }

    #[test]
    fn an_answer_asked_for_before_a_change_of_the_drive_does_not_replace_it() {
        let cache = MetaCache::new(Duration::from_secs(3600));
        cache.put("d/a", file(1));
        let asked = cache.asking();
        // An upload ends while the listing is under way: the drive's entry is newer.
        cache.put("d/a", file(2));
        cache.learn_listing(
            "d",
            [("d/a".to_owned(), file(1)), ("d/b".to_owned(), file(3))],
            asked,
        );
        assert_eq!(cache.get("d/a"), Some(file(2)));
        assert_eq!(cache.get("d/b"), Some(file(3)));
        cache.learn("d/a", file(1), asked);
        assert_eq!(cache.get("d/a"), Some(file(2)));
        // Asked for after the change: learnt.
        let later = cache.asking();
        cache.learn("d/a", file(4), later);
        assert_eq!(cache.get("d/a"), Some(file(4)));
    }

    #[test]
    fn a_name_made_while_its_directory_was_listed_is_not_called_missing() {
        let cache = MetaCache::new(Duration::from_secs(3600));
        let asked = cache.asking();
        cache.forget_entry("d/new");
        cache.learn_listing("d", [("d/a".to_owned(), file(1))], asked);
        assert_eq!(cache.get("d/new"), None);
        assert_eq!(cache.get("d/other"), Some(Entry::Missing));
    }

    #[test]
    fn a_tree_changed_while_it_was_listed_keeps_nothing_of_that_listing() {
        let cache = MetaCache::new(Duration::from_secs(3600));
        let asked = cache.asking();
        cache.forget_tree("d");
        cache.learn_listing("d/x", [("d/x/a".to_owned(), file(1))], asked);
        assert_eq!(cache.get("d/x/a"), None);
        assert_eq!(cache.get("d/x/b"), None);
    }

    #[test]
    fn answers_older_than_the_changes_let_go_are_not_learnt() {
        let cache = MetaCache::new(Duration::from_secs(3600));
        let asked = cache.asking();
        for i in 0..=CHANGES_KEPT {
            cache.put(&format!("k{i}"), file(1));
        }
        cache.learn("other", file(2), asked);
        assert_eq!(cache.get("other"), None);
        let later = cache.asking();
        cache.learn("other", file(2), later);
        assert_eq!(cache.get("other"), Some(file(2)));
    }
}
