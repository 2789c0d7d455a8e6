//! What the drive remembers of the store's names: each key's kind and object metadata, and
//! which directories were listed, each for the metadata timeout.
//!
//! A `stat` right after a listing, or a second `stat`, costs no request; a change made by
//! another mount shows here once the entry is older than the timeout. Changes made through
//! this drive update the entries at once.

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
            Some(at) if now.duration_since(*at) < self.timeout => Some(Entry::Missing),
            _ => None,
        }
    }

    /// Records what `key` is now.
    pub fn put(&self, key: &str, entry: Entry) {
        self.lock()
            .entries
            .insert(key.to_owned(), (entry, Instant::now()));
    }

    /// Records a whole listing of `dir`: its entries, and that names not among them are
    /// missing.
    pub fn put_listing(&self, dir: &str, entries: impl IntoIterator<Item = (String, Entry)>) {
        let mut state = self.lock();
        let now = Instant::now();
        for (key, entry) in entries {
            state.entries.insert(key, (entry, now));
        }
        state.listed.insert(dir.to_owned(), now);
    }

    /// Forgets what is known of `key` alone, keeping its directory's listing: after a
    /// change the drive made itself and keeps track of (a file it created is among its open
    /// files until its upload puts the object's entry here), so the listing's other names,
    /// and the absence of names it does not hold, stay true.
    pub fn forget_entry(&self, key: &str) {
        self.lock().entries.remove(key);
    }

    /// Forgets `key` and the listing of its directory (after a change of either).
    pub fn forget(&self, key: &str) {
        let mut state = self.lock();
        state.entries.remove(key);
        state.listed.remove(parent_of(key));
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
        assert_eq!(cache.get("d/b"), Some(Entry::Missing));
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
}
