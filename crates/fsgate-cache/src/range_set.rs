//! Sets of byte ranges inside one block: which bytes are cached, which are dirty.

use std::ops::Range;

/// Disjoint, sorted, non-adjacent half-open byte ranges within a block.
///
/// Blocks are at most a few hundred KiB, so offsets are `u32` and the set is a short vector:
/// a block written or fetched in a few pieces has a few entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    ranges: Vec<Range<u32>>,
}

impl RangeSet {
    /// Whether no byte is in the set.
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The ranges, sorted.
    pub(crate) fn ranges(&self) -> &[Range<u32>] {
        &self.ranges
    }

    /// Bytes in the set.
    pub(crate) fn len(&self) -> u64 {
        self.ranges.iter().map(|r| u64::from(r.end - r.start)).sum()
    }

    /// One past the last byte in the set, 0 when empty.
    pub(crate) fn end(&self) -> u32 {
        self.ranges.last().map_or(0, |r| r.end)
    }

    /// Adds `range`, merging with the ranges it overlaps or touches.
    pub(crate) fn insert(&mut self, range: Range<u32>) {
        if range.start >= range.end {
            return;
        }
        let mut merged = range;
        let mut kept = Vec::with_capacity(self.ranges.len() + 1);
        let mut placed = false;
        for r in self.ranges.drain(..) {
            if r.end < merged.start {
                kept.push(r);
            } else if r.start > merged.end {
                if !placed {
                    kept.push(merged.clone());
                    placed = true;
                }
                kept.push(r);
            } else {
                merged = merged.start.min(r.start)..merged.end.max(r.end);
            }
        }
        if !placed {
            kept.push(merged);
        }
        self.ranges = kept;
    }

    /// Removes `range` from the set.
    pub(crate) fn remove(&mut self, range: Range<u32>) {
        if range.start >= range.end {
            return;
        }
        let mut kept = Vec::with_capacity(self.ranges.len() + 1);
        for r in self.ranges.drain(..) {
            if r.end <= range.start || r.start >= range.end {
                kept.push(r);
                continue;
            }
            if r.start < range.start {
                kept.push(r.start..range.start);
            }
            if r.end > range.end {
                kept.push(range.end..r.end);
            }
        }
        self.ranges = kept;
    }

    /// Removes every byte at or after `end`.
    pub(crate) fn truncate(&mut self, end: u32) {
        self.remove(end..u32::MAX);
    }

    /// The parts of `within` that are not in the set, in order.
    pub(crate) fn gaps(&self, within: Range<u32>) -> Vec<Range<u32>> {
        let mut gaps = Vec::new();
        let mut cursor = within.start;
        for r in &self.ranges {
            if r.end <= cursor {
                continue;
            }
            if r.start >= within.end {
                break;
            }
            if r.start > cursor {
                gaps.push(cursor..r.start);
            }
            cursor = cursor.max(r.end);
        }
        if cursor < within.end {
            gaps.push(cursor..within.end);
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_merges_overlapping_and_touching_ranges() {
        let mut set = RangeSet::default();
        set.insert(10..20);
        set.insert(30..40);
        set.insert(20..25);
        assert_eq!(set.ranges(), &[10..25, 30..40]);
        set.insert(5..35);
        assert_eq!(set.ranges().to_vec(), vec![5..40_u32]);
        set.insert(0..0);
        assert_eq!(set.len(), 35);
    }

    #[test]
    fn remove_splits_ranges() {
        let mut set = RangeSet::default();
        set.insert(0..100);
        set.remove(10..20);
        set.remove(50..60);
        assert_eq!(set.ranges(), &[0..10, 20..50, 60..100]);
        set.truncate(55);
        assert_eq!(set.ranges(), &[0..10, 20..50]);
        assert_eq!(set.end(), 50);
    }

    #[test]
    fn gaps_are_the_missing_parts_in_order() {
        let mut set = RangeSet::default();
        set.insert(10..20);
        set.insert(30..40);
        assert_eq!(set.gaps(0..50), vec![0..10, 20..30, 40..50]);
        assert_eq!(set.gaps(12..18), Vec::<Range<u32>>::new());
        assert_eq!(set.gaps(15..35), vec![20..30]);
        assert_eq!(RangeSet::default().gaps(3..9), vec![3..9]);
    }
}
