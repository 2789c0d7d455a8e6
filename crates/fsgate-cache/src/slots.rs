//! Which slots of the data file are free, and when a slot given up may be written again.
//!
//! Blocks are written copy-on-write: a new version goes into a free slot, the transaction
//! that points the index at it commits, and only then is the old slot given up
//! ([`SlotMap::release`]). A given-up slot waits in limbo before it is free again, for two
//! reasons:
//! - a read plans its copy under the vault's lock and reads the data file after releasing
//!   it; a slot given up meanwhile must keep its bytes until that read is done. Each such
//!   read holds a pin ([`SlotMap::pin`]) and a slot waits for every pin taken before it was
//!   given up.
//! - without journaling, commits are not fsynced: until the next sync, a power loss may
//!   bring back an index that still points at the slot, so it waits for the next sync
//!   ([`SlotMap::synced`]). With journaling every commit is durable and this wait is off.
//!
//! The map is rebuilt at open from the index (every slot no block names is free), so a
//! slot written by a transaction that never committed is free again after a crash.

use std::collections::{BTreeMap, VecDeque};

/// A slot of the data file: block-size bytes at `slot × block size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Slot(pub(crate) u64);

/// A slot given up, waiting to be free.
struct Limbo {
    slot: Slot,
    /// Pins taken at or before this value may still read it.
    epoch: u64,
    /// The sync count when it was given up: without journaling it waits for the next.
    syncs: u64,
}

/// The free slots of the data file and the slots in limbo (see the [module docs](self)).
#[derive(Default)]
pub(crate) struct SlotMap {
    /// Free runs: first slot → number of slots.
    free: BTreeMap<u64, u64>,
    /// Slots in the file's extent (used, free or in limbo); the file ends at or before
    /// `end × block size`.
    end: u64,
    limbo: VecDeque<Limbo>,
    /// Reads in progress by the epoch they started in → how many.
    pins: BTreeMap<u64, u32>,
    epoch: u64,
    syncs: u64,
    /// Commits are durable when they return: no slot waits for a sync.
    journaling: bool,
}

/// What [`SlotMap::reclaim`] freed: runs the data file no longer needs the bytes of, and
/// the new end of the file when its tail became free.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Reclaimed {
    /// Runs (first slot, count) freed inside the file.
    pub(crate) holes: Vec<(Slot, u64)>,
    /// The file's new extent in slots, when it shrank.
    pub(crate) end: Option<u64>,
}

impl SlotMap {
    /// The map of a data file whose slots other than `used` are free, cut after the last
    /// used one. Fails with the first slot `used` names twice.
    pub(crate) fn rebuild(
        journaling: bool,
        mut used: Vec<Slot>,
    ) -> std::result::Result<Self, Slot> {
        used.sort_unstable();
        if let Some(w) = used.windows(2).find(|w| w[0] == w[1]) {
            return Err(w[0]);
        }
        let end = used.last().map_or(0, |s| s.0 + 1);
        let mut map = Self {
            journaling,
            end,
            ..Self::default()
        };
        let mut cursor = 0;
        for s in used.iter().chain(std::iter::once(&Slot(end))) {
            if s.0 > cursor {
                map.free.insert(cursor, s.0 - cursor);
            }
            cursor = s.0 + 1;
        }
        Ok(map)
    }

    /// The file's extent in slots.
    pub(crate) fn end(&self) -> u64 {
        self.end
    }

    /// Takes `n` free slots, in one run when one is long enough so that a block run written
    /// together is read back with one `pread`; otherwise the first free ones, then new ones
    /// past the end (so the file grows only when no slot is free; [`reclaim`](Self::reclaim)
    /// cuts a free tail, so new slots past the end continue the last run).
    pub(crate) fn allocate(&mut self, n: u64) -> Vec<Slot> {
        let mut out = Vec::with_capacity(n as usize);
        let fit = self
            .free
            .iter()
            .find(|(_, len)| **len >= n)
            .map(|(s, _)| *s);
        if let Some(start) = fit {
            let len = self.free.remove(&start).unwrap_or(0);
            let take = len.min(n);
            out.extend((start..start + take).map(Slot));
            if take < len {
                self.free.insert(start + take, len - take);
            }
        }
        while (out.len() as u64) < n {
            let Some((&start, &len)) = self.free.iter().next() else {
                break;
            };
            self.free.remove(&start);
            let take = len.min(n - out.len() as u64);
            out.extend((start..start + take).map(Slot));
            if take < len {
                self.free.insert(start + take, len - take);
            }
        }
        while (out.len() as u64) < n {
            out.push(Slot(self.end));
            self.end += 1;
        }
        out
    }

    /// Gives up `slot`: no committed index entry names it any more.
    pub(crate) fn release(&mut self, slot: Slot) {
        self.limbo.push_back(Limbo {
            slot,
            epoch: self.epoch,
            syncs: self.syncs,
        });
        self.epoch += 1;
    }

    /// Starts a read of slots planned now; returns its pin for [`unpin`](Self::unpin).
    pub(crate) fn pin(&mut self) -> u64 {
        *self.pins.entry(self.epoch).or_default() += 1;
        self.epoch
    }

    /// Ends the read that took `pin`.
    pub(crate) fn unpin(&mut self, pin: u64) {
        if let Some(count) = self.pins.get_mut(&pin) {
            *count -= 1;
            if *count == 0 {
                self.pins.remove(&pin);
            }
        }
    }

    /// Every commit so far is durable.
    pub(crate) fn synced(&mut self) {
        self.syncs += 1;
    }

    /// Frees the slots in limbo that no read and no undurable commit can need any more.
    pub(crate) fn reclaim(&mut self) -> Reclaimed {
        let oldest_pin = self.pins.keys().next().copied().unwrap_or(u64::MAX);
        let mut freed = Vec::new();
        while let Some(front) = self.limbo.front() {
            if front.epoch >= oldest_pin || (!self.journaling && front.syncs >= self.syncs) {
                break;
            }
            freed.push(front.slot);
            self.limbo.pop_front();
        }
        let mut out = Reclaimed::default();
        if freed.is_empty() {
            return out;
        }
        freed.sort_unstable();
        for s in freed {
            match out.holes.last_mut() {
                Some((first, n)) if first.0 + *n == s.0 => *n += 1,
                _ => out.holes.push((s, 1)),
            }
        }
        for &(first, n) in &out.holes {
            self.insert_free(first.0, n);
        }
        if let Some((&start, &len)) = self.free.iter().next_back() {
            if start + len == self.end {
                self.free.remove(&start);
                self.end = start;
                out.end = Some(start);
            }
        }
        out
    }

    /// Adds a free run, merged with its neighbours.
    fn insert_free(&mut self, mut start: u64, mut len: u64) {
        if let Some((&s, &l)) = self.free.range(..start).next_back() {
            if s + l == start {
                self.free.remove(&s);
                start = s;
                len += l;
            }
        }
        if let Some(&l) = self.free.get(&(start + len)) {
            self.free.remove(&(start + len));
            len += l;
        }
        self.free.insert(start, len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(v: &[u64]) -> Vec<Slot> {
        v.iter().copied().map(Slot).collect()
    }

    #[test]
    fn rebuild_frees_every_slot_the_index_does_not_name() {
        let mut map = SlotMap::rebuild(true, slots(&[1, 2, 5, 7])).unwrap();
        assert_eq!(map.allocate(2), slots(&[3, 4]), "the first run long enough");
        assert_eq!(
            map.allocate(2),
            slots(&[0, 6]),
            "no run long enough: the free ones"
        );
        assert_eq!(map.allocate(2), slots(&[8, 9]), "none free: the file grows");
        assert_eq!(map.end(), 10);
        assert_eq!(SlotMap::rebuild(true, slots(&[3, 3])).err(), Some(Slot(3)));
    }

    #[test]
    fn without_a_long_enough_run_the_free_slots_are_used_before_the_file_grows() {
        let mut map = SlotMap::rebuild(true, slots(&[1, 3, 5, 6, 7, 8, 9])).unwrap();
        assert_eq!(map.allocate(4), slots(&[0, 2, 4, 10]));
        assert_eq!(map.end(), 11);
    }

    #[test]
    fn a_released_slot_waits_for_the_reads_pinned_before_it() {
        let mut map = SlotMap::rebuild(true, Vec::new()).unwrap();
        assert_eq!(map.allocate(3), slots(&[0, 1, 2]));
        let before = map.pin();
        map.release(Slot(1));
        let after = map.pin();
        assert_eq!(map.reclaim(), Reclaimed::default());
        map.unpin(before);
        let freed = map.reclaim();
        assert_eq!(freed.holes, vec![(Slot(1), 1)]);
        map.unpin(after);
        assert_eq!(map.allocate(1), slots(&[1]));
    }

    #[test]
    fn without_journaling_a_released_slot_waits_for_a_sync() {
        let mut map = SlotMap::rebuild(false, Vec::new()).unwrap();
        map.allocate(2);
        map.release(Slot(0));
        assert_eq!(map.reclaim(), Reclaimed::default());
        map.synced();
        assert_eq!(map.reclaim().holes, vec![(Slot(0), 1)]);
    }

    #[test]
    fn a_free_tail_shrinks_the_file() {
        let mut map = SlotMap::rebuild(true, Vec::new()).unwrap();
        map.allocate(4);
        map.release(Slot(3));
        map.release(Slot(1));
        map.release(Slot(2));
        let freed = map.reclaim();
        assert_eq!(freed.holes, vec![(Slot(1), 3)]);
        assert_eq!(freed.end, Some(1));
        assert_eq!(map.end(), 1);
        assert_eq!(map.allocate(2), slots(&[1, 2]));
    }
}
