//! Where to try next: the bracket (the highest limit that failed, the lowest
//! that survived) narrowed by what the survivor at its top measured.
//!
//! A survivor's peak tells more than "it fits": the part of its charge the
//! kernel could not reclaim (anonymous memory, kernel memory; not the page
//! cache, which only follows the limit down) is about what the pod needs.
//! So the next limit is that need plus half the precision: for a program
//! with a steady peak it survives, and the one below it by the precision
//! fails, closing the bracket in two trials whatever the range. When the
//! guess proves wrong (it fails, or nothing was measured) the bracket is
//! halved, as in plain bisection; every failure is still conclusive and
//! every survivor still repeats.

use std::collections::BTreeSet;

use super::STEP;
use crate::monitor::sampler::Sample;

/// What the kernel could not reclaim at the peak: the most, over the
/// samples that read memory.stat, of the charge less its page cache; at
/// least the peak charge less the most page cache seen. None without a
/// sample of memory.stat (a run too short to read one).
pub fn unreclaimable(peak_bytes: u64, samples: &[Sample]) -> Option<u64> {
    let stats: Vec<(u64, u64)> = samples
        .iter()
        .filter_map(|s| Some((s.bytes, s.file_bytes?)))
        .collect();
    let sampled = stats.iter().map(|(b, f)| b.saturating_sub(*f)).max()?;
    let most_cache = stats.iter().map(|(_, f)| *f).max().unwrap_or(0);
    Some(sampled.max(peak_bytes.saturating_sub(most_cache)))
}

/// The bracket and what its top survivor measured.
#[derive(Debug, Clone, Copy)]
pub struct Bracket {
    /// The highest limit known (or assumed, at the range's low end) to fail.
    pub lo: u64,
    /// The lowest limit known to survive.
    pub hi: u64,
    /// What the survivor at `hi` could not do without, when measured.
    pub need: Option<u64>,
    /// The probe just below the top and the precision it was chosen for,
    /// when that was the last one chosen.
    pub below_probe: Option<(u64, u64)>,
}

impl Bracket {
    /// The limits to try next, at most `width` of them, each strictly inside
    /// the bracket and a whole [`STEP`]; `precision` is the precision wanted
    /// at an answer of that size.
    pub fn next(&mut self, precision: impl Fn(u64) -> u64, width: usize) -> Vec<u64> {
        let inside = |p: u64| p > self.lo && p < self.hi;
        let below = |top: u64| top.saturating_sub(precision(top)).next_multiple_of(STEP);
        self.below_probe = None;
        let guided = self.need.and_then(|n| {
            // Just above what it needs; once that is the top itself, just
            // below the top, where a failure closes the bracket.
            let above = (n + precision(n) / 2).next_multiple_of(STEP);
            let p = if above >= self.hi {
                self.below_probe = Some((below(self.hi), precision(self.hi)));
                below(self.hi)
            } else {
                above
            };
            inside(p).then_some(p)
        });
        let mut points = BTreeSet::new();
        if let Some(p) = guided {
            points.insert(p);
            // A second trial at once tries the limit that would close it.
            if width > 1 && inside(below(p)) {
                points.insert(below(p));
            }
        } else {
            let k = width as u64 + 1;
            points.extend(
                (1..k)
                    .map(|i| {
                        (self.lo + (self.hi - self.lo) * i / k)
                            .next_multiple_of(STEP)
                            .min(self.hi - 1)
                    })
                    .filter(|p| inside(*p)),
            );
        }
        points.into_iter().collect()
    }

    /// Take in the outcomes of the limits tried: failures raise the bottom,
    /// the smallest survivor above it becomes the top, with its need.
    pub fn update(&mut self, tried: &[(u64, bool, Option<u64>)]) {
        for (limit, ok, _) in tried {
            if !ok {
                self.lo = self.lo.max(*limit);
            }
        }
        if let Some((limit, _, need)) = tried
            .iter()
            .filter(|(l, ok, _)| *ok && *l > self.lo && *l < self.hi)
            .min_by_key(|(l, _, _)| *l)
        {
            self.hi = *limit;
            // Surviving just below the top means the need was overstated
            // (a heap that grows with its limit): go on from what it needed
            // there only if that is clearly below it, else halve.
            self.need = need.filter(|n| match self.below_probe {
                Some((p, precision)) if p == *limit => n + precision / 2 < *limit,
                _ => n < limit,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: u64 = 1 << 20;

    fn bracket(lo_mi: u64, hi_mi: u64, need: Option<u64>) -> Bracket {
        Bracket {
            lo: lo_mi * MI,
            hi: hi_mi * MI,
            need,
            below_probe: None,
        }
    }

    #[test]
    fn the_need_guides_then_the_step_below_closes() {
        let ten = |_| 10 * MI;
        let mut b = bracket(64, 2048, Some(1030 * MI));
        // Just above the need: 1030Mi + 5Mi.
        assert_eq!(b.next(ten, 1), [1035 * MI]);
        b.update(&[(1035 * MI, true, Some(1030 * MI))]);
        // The need is now within the precision of the top: try below it.
        assert_eq!(b.next(ten, 1), [1025 * MI]);
        // Two at once: the guess and the one below it.
        let mut wide = bracket(64, 2048, Some(1030 * MI));
        assert_eq!(wide.next(ten, 2), [1025 * MI, 1035 * MI]);
        // The precision is the one at the answer's size, not the top's.
        let mut b = bracket(64, 2048, Some(100 * MI));
        assert_eq!(b.next(|x| (x / 100).max(4 * MI), 1), [102 * MI]);
    }

    #[test]
    fn without_a_usable_need_the_bracket_is_split() {
        let four = |_| 4 * MI;
        let mut b = bracket(0, 1024, None);
        assert_eq!(b.next(four, 1), [512 * MI]);
        assert_eq!(b.next(four, 2), [342 * MI, 683 * MI]);
        // A need at or below a known failure says nothing.
        let mut stale = bracket(600, 1024, Some(500 * MI));
        assert_eq!(stale.next(four, 1), [812 * MI]);
        // Surviving just below the top: the need was overstated; halve.
        let mut over = bracket(0, 1024, Some(1023 * MI));
        assert_eq!(over.next(four, 1), [1020 * MI]);
        over.update(&[(1020 * MI, true, Some(1019 * MI))]);
        assert_eq!((over.hi, over.need), (1020 * MI, None));
        assert_eq!(over.next(four, 1), [510 * MI]);
        // Unless it needed clearly less there: go on from that.
        let mut over = bracket(0, 1024, Some(1023 * MI));
        assert_eq!(over.next(four, 1), [1020 * MI]);
        over.update(&[(1020 * MI, true, Some(900 * MI))]);
        assert_eq!(over.next(four, 1), [902 * MI]);
    }

    #[test]
    fn failures_raise_the_bottom_and_the_smallest_survivor_is_the_top() {
        let mut b = bracket(0, 1024, None);
        b.update(&[
            (300 * MI, false, None),
            (500 * MI, true, Some(400 * MI)),
            (700 * MI, true, Some(410 * MI)),
        ]);
        assert_eq!((b.lo, b.hi, b.need), (300 * MI, 500 * MI, Some(400 * MI)));
        // A survivor below a failure (a flaky limit) does not lower the top.
        b.update(&[(350 * MI, false, None), (320 * MI, true, None)]);
        assert_eq!((b.lo, b.hi), (350 * MI, 500 * MI));
    }

    #[test]
    fn unreclaimable_leaves_out_the_page_cache() {
        let s = |bytes: u64, file: Option<u64>| Sample {
            file_bytes: file,
            ..Sample::new(0.0, bytes)
        };
        // A load whose cache fills to the limit: 3Gi anon, the rest cache.
        let samples = [
            s(1 << 30, Some(1 << 30)),
            s(4 << 30, Some(2 << 30)),
            s(5 << 30, None),
            s(5 << 30, Some(2 << 30)),
        ];
        assert_eq!(unreclaimable(5 << 30, &samples), Some(3 << 30));
        // The peak fell between stat reads: the peak less the most cache.
        assert_eq!(unreclaimable(6 << 30, &samples), Some(4 << 30));
        // No stat read at all: nothing to go on.
        assert_eq!(unreclaimable(5 << 30, &[s(5 << 30, None)]), None);
    }
}
