//! A node's key heads as a fixed array of words, padded with `u64::MAX` past the last key.
//! Padding that no head is below keeps the whole array sorted, so a search runs a fixed
//! number of compares without branches, instead of a binary search over the keys whose
//! compares a lookup would mispredict.

use super::Head;
use super::node::SLOTS as USED;

const PAD: u64 = u64::MAX;

/// Four blocks of eight and the 33rd key a node holds between an insert and its split.
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
    /// or more. Two rounds of independent compares: the last head of each block of eight
    /// picks the block, then the block's eight heads count. The loads of a round do not wait
    /// for each other, so a search costs two memory latencies instead of six.
    #[inline(always)]
    pub(super) fn count_below(&self, head: u64) -> usize {
        let a = &self.0;
        let below = |i: usize| usize::from(a[i] < head);
        let block = 8 * (below(7) + below(15) + below(23) + below(31));
        if block == 32 {
            // Only a node about to split has a 33rd key.
            return block + below(32);
        }
        block + (0..8).map(|k| below(block + k)).sum::<usize>()
    }

    /// The head at `i`, which must be below the number of keys.
    #[inline(always)]
    pub(super) fn at(&self, i: usize) -> u64 {
        self.0[i]
    }

    /// Inserts at `i` in a node that has room (its last used slot is padding). Slots from
    /// `USED` on are always padding and never move.
    pub(super) fn insert(&mut self, i: usize, head: u64) {
        self.0.copy_within(i..USED - 1, i + 1);
        self.0[i] = head;
    }

    pub(super) fn remove(&mut self, i: usize) {
        self.0.copy_within(i + 1..USED, i);
        self.0[USED - 1] = PAD;
    }

    /// Moves the heads from `at` on into a new array.
    pub(super) fn split_off(&mut self, at: usize) -> Heads {
        let mut right = Heads::new();
        right.0[..USED - at].copy_from_slice(&self.0[at..USED]);
        self.truncate(at);
        right
    }

    pub(super) fn truncate(&mut self, len: usize) {
        self.0[len..].fill(PAD);
    }
}
