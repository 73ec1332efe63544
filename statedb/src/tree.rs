//! A persistent ordered map built for statedb's tables: a B+tree with wide nodes behind `Arc`s.
//!
//! Cloning the map is one refcount bump. A write copies the nodes on its path that a snapshot
//! still shares (`Arc::make_mut`) and mutates in place the ones it already owns, so a batch of
//! inserts in one write transaction copies each node at most once. Snapshots share every
//! untouched subtree, which is what lets [`PMap::diff`] skip them by pointer.

mod diff;
mod heads;
mod iter;
mod node;

use std::borrow::Borrow;
use std::ops::Bound;
use std::sync::Arc;

pub(crate) use diff::Diff;
pub(crate) use iter::{Iter, Range};
use node::Node;

/// A key's first eight bytes of order as a word: `a < b` implies `a.head() <= b.head()`, and a
/// key and every form it borrows as share one head. Nodes search these words first.
pub(crate) trait Head {
    fn head(&self) -> u64;
}

impl Head for u64 {
    #[inline(always)]
    fn head(&self) -> u64 {
        *self
    }
}

/// The unit tests' keys.
#[cfg(test)]
impl Head for u16 {
    #[inline(always)]
    fn head(&self) -> u64 {
        u64::from(*self)
    }
}

/// Zero-padded: a shorter string sorts first and pads with the smallest byte, so order holds.
impl Head for [u8] {
    #[inline(always)]
    fn head(&self) -> u64 {
        let mut w = [0u8; 8];
        let n = self.len().min(8);
        w[..n].copy_from_slice(&self[..n]);
        u64::from_be_bytes(w)
    }
}

pub(crate) struct PMap<K, V> {
    root: Arc<Node<K, V>>,
    len: usize,
    /// Levels of branches above the leaves: every leaf is at this depth.
    height: usize,
}

impl<K, V> Clone for PMap<K, V> {
    fn clone(&self) -> Self {
        PMap {
            root: Arc::clone(&self.root),
            len: self.len,
            height: self.height,
        }
    }
}

impl<K: Head, V> Default for PMap<K, V> {
    fn default() -> Self {
        PMap {
            root: Arc::new(Node::empty()),
            len: 0,
            height: 0,
        }
    }
}

impl<K: Ord + Clone + Head, V: Clone> PMap<K, V> {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + Head + ?Sized,
    {
        self.root.get(key.head(), key)
    }

    /// [`PMap::get`] for a caller that has the key's head at hand already.
    #[inline(always)]
    pub(crate) fn get_with_head<Q>(&self, head: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + Head + ?Sized,
    {
        debug_assert_eq!(head, key.head(), "a key's head");
        self.root.get(head, key)
    }

    /// Inserts or replaces; returns the replaced value.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let (old, split) = Arc::make_mut(&mut self.root).insert(key, value);
        if let Some((separator, right)) = split {
            self.root = Arc::new(Node::root(Arc::clone(&self.root), separator, right));
            self.height += 1;
        }
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + Head + ?Sized,
    {
        let old = Node::remove(&mut self.root, key, false);
        if old.is_some() {
            self.len -= 1;
        }
        if let Some(only) = self.root.only_child() {
            self.root = Arc::clone(only);
            self.height -= 1;
        }
        old
    }

    /// The smallest key and its value.
    pub(crate) fn first(&self) -> Option<(&K, &V)> {
        self.root.first()
    }

    /// Every entry in key order.
    pub(crate) fn iter(&self) -> Iter<'_, K, V> {
        Iter::new(&self.root, self.len)
    }

    pub(crate) fn keys(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.iter().map(|(k, _)| k)
    }

    pub(crate) fn values(&self) -> impl DoubleEndedIterator<Item = &V> + ExactSizeIterator {
        self.iter().map(|(_, v)| v)
    }

    /// The entries from `start` up to `end`, in key order.
    pub(crate) fn range<Q>(&self, start: Bound<&Q>, end: Bound<K>) -> Range<'_, K, V>
    where
        K: Borrow<Q>,
        Q: Ord + Head + ?Sized,
    {
        Range::new(&self.root, start, end)
    }

    /// The entries that differ from `self` to `new`, in key order; subtrees the two maps share
    /// are skipped without being read.
    pub(crate) fn diff<'a>(&'a self, new: &'a PMap<K, V>) -> Diff<'a, K, V>
    where
        V: PartialEq,
    {
        Diff::new(&self.root, self.height, &new.root, new.height)
    }
}

#[cfg(test)]
mod tests;
