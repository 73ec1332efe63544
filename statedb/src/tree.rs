//! A persistent ordered map built for statedb's tables: a B+tree with wide nodes behind `Arc`s.
//!
//! Cloning the map is one refcount bump. A write copies the nodes on its path that a snapshot
//! still shares (`Arc::make_mut`) and mutates in place the ones it already owns, so a batch of
//! inserts in one write transaction copies each node at most once. Snapshots share every
//! untouched subtree, which is what lets [`PMap::diff`] skip them by pointer.

mod diff;
mod iter;
mod node;

use std::borrow::Borrow;
use std::ops::Bound;
use std::sync::Arc;

pub(crate) use diff::Diff;
pub(crate) use iter::{Iter, Range};
use node::Node;

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

impl<K, V> Default for PMap<K, V> {
    fn default() -> Self {
        PMap {
            root: Arc::new(Node::empty()),
            len: 0,
            height: 0,
        }
    }
}

impl<K: Ord + Clone, V: Clone> PMap<K, V> {
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
        Q: Ord + ?Sized,
    {
        self.root.get(key)
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
        Q: Ord + ?Sized,
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
        Q: Ord + ?Sized,
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
