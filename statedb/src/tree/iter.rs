//! In-order iteration. A cursor keeps the rest of the current leaf as slice iterators and a
//! stack of the children still to visit, so stepping within a leaf is a slice step.

use std::borrow::Borrow;
use std::iter::Zip;
use std::ops::Bound;
use std::slice;
use std::sync::Arc;

use super::Head;
use super::node::{Node, rank};

type Entries<'a, K, V> = Zip<slice::Iter<'a, K>, slice::Iter<'a, V>>;

fn entries<'a, K, V>(keys: &'a [K], vals: &'a [V]) -> Entries<'a, K, V> {
    keys.iter().zip(vals)
}

/// One direction's position: the unvisited rest of the current leaf and, per level, the
/// unvisited children.
struct Cursor<'a, K, V> {
    leaf: Entries<'a, K, V>,
    stack: Vec<slice::Iter<'a, Arc<Node<K, V>>>>,
}

impl<'a, K, V> Cursor<'a, K, V> {
    fn at_start(root: &'a Arc<Node<K, V>>) -> Self {
        Cursor {
            leaf: entries(&[], &[]),
            stack: vec![slice::from_ref(root).iter()],
        }
    }

    /// The next entry from the front, or from the back if `BACK`.
    #[inline(always)]
    fn step<const BACK: bool>(&mut self) -> Option<(&'a K, &'a V)> {
        loop {
            let entry = if BACK {
                self.leaf.next_back()
            } else {
                self.leaf.next()
            };
            if entry.is_some() {
                return entry;
            }
            let level = self.stack.last_mut()?;
            let child = if BACK {
                level.next_back()
            } else {
                level.next()
            };
            match child.map(|c| &**c) {
                Some(Node::Leaf(l)) => self.leaf = entries(&l.keys, &l.vals),
                Some(Node::Branch(b)) => self.stack.push(b.children.iter()),
                None => {
                    self.stack.pop();
                }
            }
        }
    }
}

/// Every entry, from either end. The two ends walk independently; the count of entries left
/// is what keeps them from passing each other.
pub(crate) struct Iter<'a, K, V> {
    front: Cursor<'a, K, V>,
    back: Cursor<'a, K, V>,
    remaining: usize,
}

impl<'a, K, V> Iter<'a, K, V> {
    pub(super) fn new(root: &'a Arc<Node<K, V>>, len: usize) -> Self {
        Iter {
            front: Cursor::at_start(root),
            back: Cursor::at_start(root),
            remaining: len,
        }
    }
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.front.step::<false>()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<K, V> DoubleEndedIterator for Iter<'_, K, V> {
    fn next_back(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.back.step::<true>()
    }
}

impl<K, V> ExactSizeIterator for Iter<'_, K, V> {}

/// The entries from a lower bound up to an upper one, in key order.
pub(crate) struct Range<'a, K, V> {
    cursor: Cursor<'a, K, V>,
    end: Bound<K>,
}

impl<'a, K: Ord, V> Range<'a, K, V> {
    pub(super) fn new<Q>(root: &'a Arc<Node<K, V>>, start: Bound<&Q>, end: Bound<K>) -> Self
    where
        K: Borrow<Q>,
        Q: Ord + Head + ?Sized,
    {
        let mut cursor = Cursor {
            leaf: entries(&[], &[]),
            stack: Vec::new(),
        };
        let mut node = &**root;
        loop {
            match node {
                Node::Branch(b) => {
                    let i = match start {
                        Bound::Included(k) | Bound::Excluded(k) => b.route(k),
                        Bound::Unbounded => 0,
                    };
                    cursor.stack.push(b.children[i + 1..].iter());
                    node = &b.children[i];
                }
                Node::Leaf(l) => {
                    let i = match start {
                        Bound::Included(k) => rank(&l.heads, &l.keys, k.head(), k, false),
                        Bound::Excluded(k) => rank(&l.heads, &l.keys, k.head(), k, true),
                        Bound::Unbounded => 0,
                    };
                    cursor.leaf = entries(&l.keys[i..], &l.vals[i..]);
                    break;
                }
            }
        }
        Range { cursor, end }
    }
}

impl<'a, K: Ord, V> Iterator for Range<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        let (k, v) = self.cursor.step::<false>()?;
        let within = match &self.end {
            Bound::Included(end) => k <= end,
            Bound::Excluded(end) => k < end,
            Bound::Unbounded => true,
        };
        if within {
            return Some((k, v));
        }
        // Nothing after an entry past the end can be within it: stop for good.
        self.cursor.leaf = entries(&[], &[]);
        self.cursor.stack.clear();
        None
    }
}
