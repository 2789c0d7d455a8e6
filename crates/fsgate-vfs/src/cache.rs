//! fsgate's own caches: the budgets that bound how many answers the kernel may cache
//! (`MetadataCacheSize`, `NonExistentFilesCacheSize`), and the user-mode file data cache
//! (`FileCache=UserMode`, sized by `UserModeFileCacheSize`).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use foldhash::HashMap;

use crate::engine::Ino;

/// The block size of the user-mode file data cache: each `on_read_file` it fires asks for
/// one aligned block of this many bytes.
pub const BLOCK: u64 = 128 * 1024;

/// Bounds the number of objects whose answers the kernel holds with a non-zero timeout:
/// an object (an inode, or a missing name's key) counts from the answer that gave it a
/// timeout until that timeout ends; when `size` objects count, answers about other objects
/// get a zero timeout (the kernel asks again next time) until older ones expire.
#[derive(Debug)]
pub(crate) struct Budget {
    size: usize,
    until: HashMap<u64, Instant>,
    order: VecDeque<(Instant, u64)>,
}

impl Budget {
    pub(crate) fn new(size: usize) -> Self {
        Self {
            size,
            until: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// The timeout to give an answer about `key` now: `ttl`, or zero when the budget is
    /// spent on other keys.
    pub(crate) fn grant(&mut self, key: u64, ttl: Duration) -> Duration {
        if ttl.is_zero() {
            return Duration::ZERO;
        }
        let now = Instant::now();
        // Every grant has the same ttl, so expiry times are in order; an entry whose key
        // was granted again later is stale and only leaves the queue.
        while let Some(&(at, k)) = self.order.front() {
            if at > now {
                break;
            }
            self.order.pop_front();
            if self.until.get(&k) == Some(&at) {
                self.until.remove(&k);
            }
        }
        if !self.until.contains_key(&key) && self.until.len() >= self.size {
            return Duration::ZERO;
        }
        let at = now + ttl;
        self.until.insert(key, at);
        self.order.push_back((at, key));
        ttl
    }
}

/// The user-mode file data cache: whole blocks of files by (inode, block index), evicted in
/// least-recently-used order once they hold more than `capacity` bytes.
#[derive(Debug)]
pub(crate) struct BlockCache {
    capacity: u64,
    used: u64,
    tick: u64,
    blocks: HashMap<(Ino, u64), (Vec<u8>, u64)>,
    by_age: BTreeMap<u64, (Ino, u64)>,
}

impl BlockCache {
    pub(crate) fn new(capacity: u64) -> Self {
        Self {
            capacity,
            used: 0,
            tick: 0,
            blocks: HashMap::default(),
            by_age: BTreeMap::new(),
        }
    }

    /// Copies the cached block `index` of `ino` into `out` (marking it recently used);
    /// `None` when it is not cached.
    pub(crate) fn get(&mut self, ino: Ino, index: u64, out: &mut Vec<u8>) -> Option<()> {
        self.tick += 1;
        let tick = self.tick;
        let (data, age) = self.blocks.get_mut(&(ino, index))?;
        self.by_age.remove(age);
        *age = tick;
        self.by_age.insert(tick, (ino, index));
        out.clear();
        out.extend_from_slice(data);
        Some(())
    }

    /// Caches `data` (at most one block; shorter means the file ends in it) as block
    /// `index` of `ino`.
    pub(crate) fn put(&mut self, ino: Ino, index: u64, data: &[u8]) {
        if self.capacity < BLOCK {
            return;
        }
        self.remove(ino, index);
        self.tick += 1;
        self.blocks.insert((ino, index), (data.to_vec(), self.tick));
        self.by_age.insert(self.tick, (ino, index));
        self.used += data.len() as u64;
        while self.used > self.capacity {
            let Some((_, (i, b))) = self.by_age.pop_first() else {
                break;
            };
            if let Some((d, _)) = self.blocks.remove(&(i, b)) {
                self.used -= d.len() as u64;
            }
        }
    }

    fn remove(&mut self, ino: Ino, index: u64) {
        if let Some((d, age)) = self.blocks.remove(&(ino, index)) {
            self.used -= d.len() as u64;
            self.by_age.remove(&age);
        }
    }

    /// Forgets the blocks of `ino` that overlap `start..end` bytes.
    pub(crate) fn invalidate(&mut self, ino: Ino, start: u64, end: u64) {
        if end <= start {
            return;
        }
        let first = start / BLOCK;
        let last = (end - 1) / BLOCK;
        let doomed: Vec<(Ino, u64)> = self
            .blocks
            .keys()
            .filter(|(i, b)| *i == ino && (first..=last).contains(b))
            .copied()
            .collect();
        for (i, b) in doomed {
            self.remove(i, b);
        }
    }

    /// Forgets every block of `ino`.
    pub(crate) fn invalidate_file(&mut self, ino: Ino) {
        self.invalidate(ino, 0, u64::MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_budget_grants_zero_until_answers_expire() {
        let mut b = Budget::new(2);
        let ttl = Duration::from_millis(30);
        assert_eq!(b.grant(1, ttl), ttl);
        assert_eq!(b.grant(2, ttl), ttl);
        assert_eq!(b.grant(1, ttl), ttl, "a counted key is granted again");
        assert_eq!(b.grant(3, ttl), Duration::ZERO);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(b.grant(3, ttl), ttl);
        assert_eq!(b.grant(4, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn blocks_are_evicted_least_recently_used_first() {
        let mut c = BlockCache::new(2 * BLOCK);
        let block = vec![7u8; BLOCK as usize];
        let mut out = Vec::new();
        c.put(Ino(1), 0, &block);
        c.put(Ino(1), 1, &block);
        assert!(
            c.get(Ino(1), 0, &mut out).is_some(),
            "block 0 is now the newest"
        );
        c.put(Ino(2), 0, &block);
        assert!(
            c.get(Ino(1), 1, &mut out).is_none(),
            "block 1 was the oldest"
        );
        assert!(c.get(Ino(1), 0, &mut out).is_some());
        assert_eq!(out, block);
        assert!(c.get(Ino(2), 0, &mut out).is_some());
    }

    #[test]
    fn invalidation_drops_only_overlapping_blocks() {
        let mut c = BlockCache::new(16 * BLOCK);
        let mut out = Vec::new();
        for i in 0..4 {
            c.put(Ino(1), i, b"x");
        }
        c.put(Ino(2), 0, b"y");
        c.invalidate(Ino(1), BLOCK + 1, 2 * BLOCK + 1);
        assert!(c.get(Ino(1), 0, &mut out).is_some());
        assert!(c.get(Ino(1), 1, &mut out).is_none());
        assert!(c.get(Ino(1), 2, &mut out).is_none());
        assert!(c.get(Ino(1), 3, &mut out).is_some());
        c.invalidate_file(Ino(1));
        assert!(c.get(Ino(1), 3, &mut out).is_none());
        assert_eq!(out, b"x", "a miss leaves the buffer alone");
        assert!(c.get(Ino(2), 0, &mut out).is_some());
    }
}
