//! Comparing two versions of a map. Both are walked together in key order; whenever both are
//! about to enter the very same node (`Arc::ptr_eq`), that whole subtree is skipped, so the cost
//! is in proportion to what a commit changed, not to the size of the table.

use std::cmp::Ordering;
use std::sync::Arc;

use super::node::Node;

/// One key whose entry differs between the old and the new map.
#[derive(Debug, PartialEq)]
pub(crate) enum DiffItem<'a, K, V> {
    Add(&'a K, &'a V),
    Remove(&'a K, &'a V),
    Update { key: &'a K, old: &'a V, new: &'a V },
}

impl<'a, K, V> DiffItem<'a, K, V> {
    pub(crate) fn key(&self) -> &'a K {
        match self {
            DiffItem::Add(k, _) | DiffItem::Remove(k, _) | DiffItem::Update { key: k, .. } => k,
        }
    }
}

/// What a side of the walk comes to next.
enum Next<'a, K, V> {
    /// A whole unvisited subtree, and its height (0 for a leaf).
    Node(&'a Arc<Node<K, V>>, usize),
    Entry(&'a K, &'a V),
    End,
}

struct Side<'a, K, V> {
    /// The unvisited rest of the current leaf.
    keys: &'a [K],
    vals: &'a [V],
    /// Per level, the siblings still to visit; a node in `stack[d]` has height `height - d`.
    stack: Vec<&'a [Arc<Node<K, V>>]>,
    height: usize,
}

impl<'a, K, V> Side<'a, K, V> {
    fn new(root: &'a Arc<Node<K, V>>, height: usize) -> Self {
        Side {
            keys: &[],
            vals: &[],
            stack: vec![std::slice::from_ref(root)],
            height,
        }
    }

    fn peek(&mut self) -> Next<'a, K, V> {
        if let (Some(k), Some(v)) = (self.keys.first(), self.vals.first()) {
            return Next::Entry(k, v);
        }
        while let Some(&level) = self.stack.last() {
            if let Some(node) = level.first() {
                return Next::Node(node, self.height + 1 - self.stack.len());
            }
            self.stack.pop();
        }
        Next::End
    }

    fn skip_entry(&mut self) {
        self.keys = self.keys.get(1..).unwrap_or_default();
        self.vals = self.vals.get(1..).unwrap_or_default();
    }

    /// Steps past the next node without looking inside.
    fn skip_node(&mut self) -> Option<&'a Arc<Node<K, V>>> {
        let level = self.stack.last_mut()?;
        let (node, rest) = level.split_first()?;
        *level = rest;
        Some(node)
    }

    /// Steps into the next node.
    fn open_node(&mut self) {
        match self.skip_node().map(|n| &**n) {
            Some(Node::Leaf(l)) => {
                self.keys = &l.keys;
                self.vals = &l.vals;
            }
            Some(Node::Branch(b)) => self.stack.push(&b.children),
            None => {}
        }
    }
}

pub(crate) struct Diff<'a, K, V> {
    old: Side<'a, K, V>,
    new: Side<'a, K, V>,
}

impl<'a, K, V> Diff<'a, K, V> {
    pub(super) fn new(
        old: &'a Arc<Node<K, V>>,
        old_height: usize,
        new: &'a Arc<Node<K, V>>,
        new_height: usize,
    ) -> Self {
        Diff {
            old: Side::new(old, old_height),
            new: Side::new(new, new_height),
        }
    }
}

impl<'a, K: Ord, V: PartialEq> Iterator for Diff<'a, K, V> {
    type Item = DiffItem<'a, K, V>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match (self.old.peek(), self.new.peek()) {
                (Next::End, Next::End) => return None,
                (Next::Node(a, ha), Next::Node(b, hb)) => match ha.cmp(&hb) {
                    Ordering::Equal if Arc::ptr_eq(a, b) => {
                        self.old.skip_node();
                        self.new.skip_node();
                    }
                    Ordering::Equal => {
                        self.old.open_node();
                        self.new.open_node();
                    }
                    Ordering::Greater => self.old.open_node(),
                    Ordering::Less => self.new.open_node(),
                },
                (Next::Node(..), _) => self.old.open_node(),
                (_, Next::Node(..)) => self.new.open_node(),
                (Next::Entry(k, v), Next::End) => {
                    self.old.skip_entry();
                    return Some(DiffItem::Remove(k, v));
                }
                (Next::End, Next::Entry(k, v)) => {
                    self.new.skip_entry();
                    return Some(DiffItem::Add(k, v));
                }
                (Next::Entry(ka, va), Next::Entry(kb, vb)) => match ka.cmp(kb) {
                    Ordering::Less => {
                        self.old.skip_entry();
                        return Some(DiffItem::Remove(ka, va));
                    }
                    Ordering::Greater => {
                        self.new.skip_entry();
                        return Some(DiffItem::Add(kb, vb));
                    }
                    Ordering::Equal => {
                        self.old.skip_entry();
                        self.new.skip_entry();
                        if va != vb {
                            return Some(DiffItem::Update {
                                key: ka,
                                old: va,
                                new: vb,
                            });
                        }
                    }
                },
            }
        }
    }
}
