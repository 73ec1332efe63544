//! A node's key heads as a fixed array of words, padded with `u64::MAX` past the last key.
//! Padding that no head is below keeps the whole array sorted, so a search runs a fixed
//! number of halving steps without branches, instead of a binary search over the keys whose
//! compares a lookup would mispredict.

use super::Head;
use super::node::SLOTS as USED;

const PAD: u64 = u64::MAX;

/// A power of two and one: the search halves the first 32, and the last slot adds on. Nodes
/// (at most `USED` keys) fill all of it; the small nodes of unit tests leave padding.
const SLOTS: usize = 33;
const _: () = assert!(USED <= SLOTS);

#[derive(Clone)]
pub(super) struct Heads([u64; SLOTS]);

impl Heads {
    pub(super) fn new() -> Heads {
        Heads([PAD; SLOTS])
    }

    pub(super) fn of<K: Head>(keys: &[K]) -> Heads {
        let mut heads = Heads::new();
        for (h, k) in heads.0.iter_mut().zip(keys) {
            *h = k.head();
        }
        heads
    }

    /// How many heads are below `head`: the position of the first key whose head is `head`
    /// or more.
    #[inline(always)]
    pub(super) fn count_below(&self, head: u64) -> usize {
        // Halving steps over the first 32 (a power of two), each a load and a conditional
        // move; the padding keeps the whole array sorted, so the last slot simply adds on.
        let a = &self.0;
        let mut base = 0;
        for step in [16, 8, 4, 2, 1] {
            base = if a[base + step - 1] < head {
                base + step
            } else {
                base
            };
        }
        base + usize::from(a[base] < head) + usize::from(a[SLOTS - 1] < head)
    }

    /// The head at `i`, which must be below the number of keys.
    #[inline(always)]
    pub(super) fn at(&self, i: usize) -> u64 {
        self.0[i]
    }

    /// Inserts at `i` in a node that has room (its last slot is padding).
    pub(super) fn insert(&mut self, i: usize, head: u64) {
        self.0.copy_within(i..SLOTS - 1, i + 1);
        self.0[i] = head;
    }

    pub(super) fn remove(&mut self, i: usize) {
        self.0.copy_within(i + 1.., i);
        self.0[SLOTS - 1] = PAD;
    }

    /// Moves the heads from `at` on into a new array.
    pub(super) fn split_off(&mut self, at: usize) -> Heads {
        let mut right = Heads::new();
        right.0[..SLOTS - at].copy_from_slice(&self.0[at..]);
        self.truncate(at);
        right
    }

    pub(super) fn truncate(&mut self, len: usize) {
        self.0[len..].fill(PAD);
    }
}
