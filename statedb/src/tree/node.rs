//! Tree nodes and the recursive writes. Keys and values sit in leaves; a branch holds
//! separators and `Arc`s to its children, so copying a branch bumps one count per child.

use std::borrow::Borrow;
use std::sync::Arc;

/// Widest a node gets before it splits. Small under test so that a few hundred keys already
/// build several levels and exercise every split, merge and redistribution.
#[cfg(not(test))]
pub(super) const CAP: usize = 32;
#[cfg(test)]
pub(super) const CAP: usize = 6;

/// Below this a node is merged with a sibling (or shares with it) after a remove.
const MIN: usize = CAP / 3;

pub(super) enum Node<K, V> {
    Leaf(Leaf<K, V>),
    Branch(Branch<K, V>),
}

pub(super) struct Leaf<K, V> {
    pub(super) keys: Vec<K>,
    pub(super) vals: Vec<V>,
}

/// Child `i` holds the keys `k` with `keys[i - 1] <= k < keys[i]`.
pub(super) struct Branch<K, V> {
    pub(super) keys: Vec<K>,
    pub(super) children: Vec<Arc<Node<K, V>>>,
}

/// A vec with room for one more than `CAP`, so that filling a node up to its split never
/// reallocates.
fn room_for<T>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut v = Vec::with_capacity(CAP + 1);
    v.extend(items);
    v
}

impl<K: Clone, V: Clone> Clone for Node<K, V> {
    fn clone(&self) -> Self {
        match self {
            Node::Leaf(l) => Node::Leaf(Leaf {
                keys: room_for(l.keys.iter().cloned()),
                vals: room_for(l.vals.iter().cloned()),
            }),
            Node::Branch(b) => Node::Branch(Branch {
                keys: room_for(b.keys.iter().cloned()),
                children: room_for(b.children.iter().map(Arc::clone)),
            }),
        }
    }
}

/// What a write below hands to its parent: the replaced value, and the separator and new right
/// sibling if the node split.
type Inserted<K, V> = (Option<V>, Option<(K, Node<K, V>)>);

impl<K, V> Node<K, V> {
    pub(super) fn empty() -> Self {
        Node::Leaf(Leaf {
            keys: Vec::new(),
            vals: Vec::new(),
        })
    }

    pub(super) fn branch(keys: Vec<K>, children: Vec<Arc<Node<K, V>>>) -> Self {
        Node::Branch(Branch {
            keys: room_for(keys),
            children: room_for(children),
        })
    }

    fn width(&self) -> usize {
        match self {
            Node::Leaf(l) => l.keys.len(),
            Node::Branch(b) => b.children.len(),
        }
    }

    /// The single child of a branch that has only one: a root like that is one level too many.
    pub(super) fn only_child(&self) -> Option<&Arc<Node<K, V>>> {
        match self {
            Node::Branch(b) if b.children.len() == 1 => b.children.first(),
            _ => None,
        }
    }
}

impl<K: Ord, V> Branch<K, V> {
    /// The child whose range holds `key`.
    pub(super) fn route<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.keys.partition_point(|s| s.borrow() <= key)
    }
}

impl<K: Ord + Clone, V: Clone> Node<K, V> {
    pub(super) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let mut node = self;
        loop {
            match node {
                Node::Leaf(l) => {
                    let i = l.keys.binary_search_by(|k| k.borrow().cmp(key)).ok()?;
                    return l.vals.get(i);
                }
                Node::Branch(b) => node = &b.children[b.route(key)],
            }
        }
    }

    pub(super) fn insert(&mut self, key: K, val: V) -> Inserted<K, V> {
        match self {
            Node::Leaf(l) => match l.keys.binary_search(&key) {
                Ok(i) => (Some(std::mem::replace(&mut l.vals[i], val)), None),
                Err(i) => {
                    l.keys.insert(i, key);
                    l.vals.insert(i, val);
                    if l.keys.len() <= CAP {
                        return (None, None);
                    }
                    let right = l.split(i == CAP);
                    (None, Some((right.keys[0].clone(), Node::Leaf(right))))
                }
            },
            Node::Branch(b) => {
                let i = b.route(&key);
                let (old, split) = Arc::make_mut(&mut b.children[i]).insert(key, val);
                let Some((separator, right)) = split else {
                    return (old, None);
                };
                b.keys.insert(i, separator);
                b.children.insert(i + 1, Arc::new(right));
                if b.children.len() <= CAP {
                    return (old, None);
                }
                let (separator, right) = b.split(i + 1 == CAP);
                (old, Some((separator, Node::Branch(right))))
            }
        }
    }

    pub(super) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self {
            Node::Leaf(l) => {
                let i = l.keys.binary_search_by(|k| k.borrow().cmp(key)).ok()?;
                l.keys.remove(i);
                Some(l.vals.remove(i))
            }
            Node::Branch(b) => {
                let i = b.route(key);
                let old = Arc::make_mut(&mut b.children[i]).remove(key);
                if b.children[i].width() < MIN {
                    b.rebalance(i);
                }
                old
            }
        }
    }

    pub(super) fn first(&self) -> Option<(&K, &V)> {
        match self {
            Node::Leaf(l) => l.keys.first().zip(l.vals.first()),
            Node::Branch(b) => b.children.iter().find_map(|c| c.first()),
        }
    }
}

impl<K: Clone, V: Clone> Leaf<K, V> {
    /// Moves the upper part into a new right sibling. Appending (the new key went last, as with
    /// ever-growing revisions) leaves this leaf full, so sequential inserts pack leaves tight.
    fn split(&mut self, appended: bool) -> Leaf<K, V> {
        let at = if appended {
            self.keys.len() - 1
        } else {
            self.keys.len() / 2
        };
        Leaf {
            keys: room_for(self.keys.drain(at..)),
            vals: room_for(self.vals.drain(at..)),
        }
    }
}

impl<K: Ord + Clone, V: Clone> Branch<K, V> {
    /// Like [`Leaf::split`]; the separator between the halves moves up to the parent.
    fn split(&mut self, appended: bool) -> (K, Branch<K, V>) {
        let at = if appended {
            self.children.len() - 1
        } else {
            self.children.len() / 2
        };
        let children = room_for(self.children.drain(at..));
        let keys = room_for(self.keys.drain(at..));
        let separator = self
            .keys
            .pop()
            .expect("invariant: a branch has one key fewer than children");
        (separator, Branch { keys, children })
    }

    /// Joins the underfull child `i` with a neighbour, then splits the two evenly again if
    /// together they are too wide for one node.
    fn rebalance(&mut self, i: usize) {
        if self.children.len() < 2 {
            return;
        }
        let left = if i + 1 < self.children.len() {
            i
        } else {
            i - 1
        };
        let right = Arc::unwrap_or_clone(self.children.remove(left + 1));
        let separator = self.keys.remove(left);
        let split = match (Arc::make_mut(&mut self.children[left]), right) {
            (Node::Leaf(l), Node::Leaf(r)) => {
                l.keys.extend(r.keys);
                l.vals.extend(r.vals);
                (l.keys.len() > CAP).then(|| {
                    let r = l.split(false);
                    (r.keys[0].clone(), Node::Leaf(r))
                })
            }
            (Node::Branch(l), Node::Branch(r)) => {
                l.keys.push(separator);
                l.keys.extend(r.keys);
                l.children.extend(r.children);
                (l.children.len() > CAP).then(|| {
                    let (s, r) = l.split(false);
                    (s, Node::Branch(r))
                })
            }
            _ => unreachable!("invariant: siblings are at the same level"),
        };
        if let Some((separator, right)) = split {
            self.keys.insert(left, separator);
            self.children.insert(left + 1, Arc::new(right));
        }
    }
}
