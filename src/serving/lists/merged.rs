//! One unsearched list's matches in one version of the copy, in list order, without laying them
//! out: the snapshot's matching positions (found once per snapshot and filter, shared by every
//! version over it), less those changed since, merged with the changed partners that match.
//!
//! A version lives until the next change (20 writes/s give each a few dozen milliseconds), so
//! what a version builds for a list is only what the changes add: the removed positions and the
//! changed matches, O(changes) and not O(matches). A million matches laid out again after each
//! write cost milliseconds on the first list to ask, and every list of that filter waited for it.
//! Reads are by index and by rank, each a few binary searches.

use std::sync::Arc;

use super::delta::{Key, base_key};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Merged {
    /// The snapshot's positions matching the list, ascending.
    positions: Arc<Vec<u32>>,
    /// Indices into `positions` of the partners changed since the snapshot, ascending, each
    /// less its own index here (so non-decreasing): `removed[t] + t` is the index.
    removed: Vec<u32>,
    /// The keys of the changed partners that match, ascending.
    extra: Vec<Key>,
}

/// The least `i` in `0..n` for which `pred(i)` holds (`n` if none), `pred` false then true.
fn first(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    lo
}

impl Merged {
    /// The matches of `positions` (the snapshot's, ascending) without the positions `is_removed`
    /// tells, with `extra` (the changed partners' keys, ascending). `removed_positions` lists
    /// every removed position, ascending (a superset of those in `positions` is fine).
    pub(crate) fn new(
        positions: Arc<Vec<u32>>,
        removed_positions: impl Iterator<Item = u32>,
        extra: Vec<Key>,
    ) -> Merged {
        let mut removed = Vec::new();
        for position in removed_positions {
            if let Ok(index) = positions.binary_search(&position) {
                let t = removed.len() as u32;
                removed.push(index as u32 - t);
            }
        }
        Merged {
            positions,
            removed,
            extra,
        }
    }

    /// How many partners match.
    pub(crate) fn len(&self) -> usize {
        self.kept() + self.extra.len()
    }

    /// The snapshot's matches that are still there.
    fn kept(&self) -> usize {
        self.positions.len() - self.removed.len()
    }

    /// The key of the `a`-th snapshot match still there (`a < kept()`): at index `a + t` of
    /// `positions`, `t` the number of removed indices before it, the least `t` whose shifted
    /// index exceeds `a`.
    fn kept_key(&self, a: usize) -> Key {
        let t = self
            .removed
            .partition_point(|&shifted| shifted as usize <= a);
        base_key(self.positions[a + t])
    }

    /// The key of the `i`-th match in list order (`i < len()`).
    pub(crate) fn get(&self, i: usize) -> Key {
        let (kept, extra) = (self.kept(), &self.extra);
        // `b`: how many changed matches come before the `i`-th; the least `b` (from those
        // leaving at most `kept` snapshot matches before) whose next changed match does not
        // precede the snapshot match it would displace.
        let low = i.saturating_sub(kept);
        let high = i.min(extra.len());
        let b = low
            + first(high - low, |k| {
                let b = low + k;
                i - b == 0 || extra[b] > self.kept_key(i - b - 1)
            });
        let a = i - b;
        match (extra.get(b), a < kept) {
            (Some(&e), true) => e.min(self.kept_key(a)),
            (Some(&e), false) => e,
            (None, _) => self.kept_key(a),
        }
    }

    /// The index of `key` among the matches, if it is one.
    pub(crate) fn index_of(&self, key: Key) -> Option<usize> {
        let changed = key & 0xffff_ffff != 0;
        let found = match changed {
            true => self.extra.binary_search(&key).is_ok(),
            false => {
                let position = ((key >> 32) - 1) as u32;
                match self.positions.binary_search(&position) {
                    Ok(index) => !self.is_removed_index(index),
                    Err(_) => false,
                }
            }
        };
        found.then(|| self.rank(key))
    }

    /// Whether index `index` of `positions` was removed.
    fn is_removed_index(&self, index: usize) -> bool {
        let t = first(self.removed.len(), |t| {
            self.removed[t] as usize + t >= index
        });
        self.removed
            .get(t)
            .is_some_and(|&shifted| shifted as usize + t == index)
    }

    /// How many matches sort before `key`.
    fn rank(&self, key: Key) -> usize {
        let before = self.positions.partition_point(|&p| base_key(p) < key);
        let removed = first(self.removed.len(), |t| {
            self.removed[t] as usize + t >= before
        });
        before - removed + self.extra.partition_point(|&e| e < key)
    }

    /// The indices among the matches of the snapshot matches at `indices` (ascending indices
    /// into the snapshot's positions) still there, ascending: one walk of `indices`, the removed
    /// and the changed matches together.
    pub(crate) fn indices_of_kept(&self, indices: &[u32]) -> Vec<usize> {
        let mut found = Vec::with_capacity(indices.len());
        let (mut t, mut e) = (0, 0);
        for &j in indices {
            let j = j as usize;
            while t < self.removed.len() && (self.removed[t] as usize + t) < j {
                t += 1;
            }
            if self.removed.get(t).is_some_and(|&s| s as usize + t == j) {
                continue; // changed since the snapshot
            }
            let key = base_key(self.positions[j]);
            while e < self.extra.len() && self.extra[e] < key {
                e += 1;
            }
            found.push(j - t + e);
        }
        found
    }

    /// Every match's key, in list order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Key> + '_ {
        let mut removed = (0..self.removed.len())
            .map(|t| self.removed[t] as usize + t)
            .peekable();
        let kept = (self.positions.iter().enumerate())
            .filter(move |&(index, _)| removed.next_if_eq(&index).is_none())
            .map(|(_, &p)| base_key(p));
        let mut extra = self.extra.iter().copied().peekable();
        let mut kept = kept.peekable();
        std::iter::from_fn(move || match (kept.peek(), extra.peek()) {
            (Some(&k), Some(&e)) if e < k => extra.next(),
            (Some(_), _) => kept.next(),
            (None, _) => extra.next(),
        })
    }

    /// What this version holds beyond the snapshot's positions, for the cache's weigher.
    pub(crate) fn held(&self) -> usize {
        self.removed.len() + self.extra.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every read of a merge of `positions` less `removed` with `extra` agrees with the merge
    /// laid out.
    fn check(positions: &[u32], removed: &[u32], extra: &[Key]) {
        let laid_out: Vec<Key> = {
            let mut keys: Vec<Key> = positions
                .iter()
                .filter(|p| !removed.contains(p))
                .map(|&p| base_key(p))
                .chain(extra.iter().copied())
                .collect();
            keys.sort_unstable();
            keys
        };
        let merged = Merged::new(
            Arc::new(positions.to_vec()),
            removed.iter().copied(),
            extra.to_vec(),
        );
        assert_eq!(merged.len(), laid_out.len());
        assert_eq!(merged.iter().collect::<Vec<_>>(), laid_out);
        for (i, &key) in laid_out.iter().enumerate() {
            assert_eq!(
                merged.get(i),
                key,
                "{positions:?} - {removed:?} + {extra:?} at {i}"
            );
            assert_eq!(merged.index_of(key), Some(i));
        }
        for &p in removed {
            assert_eq!(merged.index_of(base_key(p)), None, "removed {p}");
        }
        let every: Vec<u32> = (0..positions.len() as u32).collect();
        let kept: Vec<usize> = (positions.iter())
            .filter_map(|&p| merged.index_of(base_key(p)))
            .collect();
        assert_eq!(merged.indices_of_kept(&every), kept);
        let odd: Vec<u32> = every.iter().copied().filter(|j| j % 2 == 1).collect();
        let odd_kept: Vec<usize> = (odd.iter())
            .filter_map(|&j| merged.index_of(base_key(positions[j as usize])))
            .collect();
        assert_eq!(merged.indices_of_kept(&odd), odd_kept);
        assert_eq!(merged.index_of(base_key(1000)), None, "never a match");
        assert_eq!(
            merged.index_of(base_key(3) | 7),
            None,
            "not a changed match"
        );
    }

    #[test]
    fn reads_agree_with_the_merge_laid_out() {
        let positions: Vec<u32> = vec![0, 2, 3, 5, 8, 9, 12];
        // Changed partners anchored after positions (low bits: their index among the changes).
        let anchored = |after: Option<u32>, index: u64| -> Key {
            (after.map_or(0, base_key) & !0xffff_ffff) | index
        };
        let extras: Vec<Vec<Key>> = vec![
            vec![],
            vec![anchored(None, 1)],
            vec![
                anchored(None, 1),
                anchored(Some(0), 2),
                anchored(Some(0), 3),
            ],
            vec![anchored(Some(4), 1), anchored(Some(12), 2)],
            vec![
                anchored(Some(2), 1),
                anchored(Some(7), 2),
                anchored(Some(20), 3),
            ],
        ];
        // Every subset of the positions removed (and positions that never matched).
        for subset in 0u32..(1 << positions.len()) {
            let mut removed: Vec<u32> = (0..positions.len())
                .filter(|bit| subset & (1 << bit) != 0)
                .map(|bit| positions[bit])
                .collect();
            if subset % 3 == 0 {
                removed.extend([1, 4, 30]);
                removed.sort_unstable();
            }
            for extra in &extras {
                check(&positions, &removed, extra);
            }
        }
        check(&[], &[], &[anchored(None, 1), anchored(Some(3), 2)]);
        check(&[], &[], &[]);
    }
}
