//! Byte ranges already filled in a placeholder: a sorted set of disjoint half-open
//! intervals, so each byte is hydrated once however the reads that ask for it overlap.

/// Disjoint, sorted, non-adjacent `[start, end)` intervals.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    /// The parts of `[start, end)` not in the set, in order.
    pub fn missing(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = start;
        for &(s, e) in &self.0 {
            if at >= end {
                break;
            }
            if e <= at {
                continue;
            }
            if s > at {
                out.push((at, s.min(end)));
            }
            at = at.max(e);
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    /// Adds `[start, end)`, merging with overlapping or adjacent intervals.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        let mut kept = Vec::with_capacity(self.0.len() + 1);
        for &(a, b) in &self.0 {
            if b < s || a > e {
                kept.push((a, b));
            } else {
                s = s.min(a);
                e = e.max(b);
            }
        }
        kept.push((s, e));
        kept.sort_unstable();
        self.0 = kept;
    }

    /// Whether `[0, len)` is entirely in the set.
    pub fn covers(&self, len: u64) -> bool {
        len == 0 || self.0.first().is_some_and(|&(s, e)| s == 0 && e >= len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_parts_skip_what_is_filled() {
        let mut r = Ranges::default();
        assert_eq!(r.missing(0, 10), vec![(0, 10)]);
        r.insert(2, 4);
        r.insert(6, 8);
        assert_eq!(r.missing(0, 10), vec![(0, 2), (4, 6), (8, 10)]);
        assert_eq!(r.missing(3, 7), vec![(4, 6)]);
        assert_eq!(r.missing(2, 4), Vec::<(u64, u64)>::new());
        assert_eq!(r.missing(5, 5), Vec::<(u64, u64)>::new());
    }

    #[test]
    fn inserts_merge_overlapping_and_adjacent_intervals() {
        let mut r = Ranges::default();
        r.insert(4, 6);
        r.insert(0, 2);
        r.insert(2, 4);
        assert_eq!(r, Ranges(vec![(0, 6)]));
        r.insert(10, 12);
        r.insert(5, 11);
        assert_eq!(r, Ranges(vec![(0, 12)]));
        r.insert(3, 3);
        assert_eq!(r, Ranges(vec![(0, 12)]));
    }

    #[test]
    fn covers_only_a_prefix_without_holes() {
        let mut r = Ranges::default();
        assert!(r.covers(0));
        assert!(!r.covers(1));
        r.insert(1, 8);
        assert!(!r.covers(8));
        r.insert(0, 1);
        assert!(r.covers(8));
        assert!(!r.covers(9));
    }
}
