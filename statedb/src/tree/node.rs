//! Tree nodes and the recursive writes. Keys and values sit in leaves; a branch holds
//! separators and `Arc`s to its children, so copying a branch bumps one count per child. A
//! node keeps its keys, values and children inline, so visiting one is one pointer step.

use std::borrow::Borrow;
use std::sync::Arc;

use arrayvec::ArrayVec;

/// Widest a node gets before it splits. Small under test so that a few hundred keys already
/// build several levels and exercise every split, merge and redistribution.
#[cfg(not(test))]
pub(super) const CAP: usize = 32;
#[cfg(test)]
pub(super) const CAP: usize = 6;

/// Room for one more than `CAP`: an insert lands before the node splits.
const SLOTS: usize = CAP + 1;

/// Below this a node is merged with a sibling (or shares with it) after a remove.
const MIN: usize = CAP / 3;

type Slots<T> = ArrayVec<T, SLOTS>;

#[derive(Clone)]
#[cfg_attr(
    not(test),
    expect(
        clippy::large_enum_variant,
        reason = "nodes live behind Arcs; boxing a variant would add the pointer step inline storage removes"
    )
)]
pub(super) enum Node<K, V> {
    Leaf(Leaf<K, V>),
    Branch(Branch<K, V>),
}

#[derive(Clone)]
pub(super) struct Leaf<K, V> {
    pub(super) keys: Slots<K>,
    pub(super) vals: Slots<V>,
}

/// Child `i` holds the keys `k` with `keys[i - 1] <= k < keys[i]`.
#[derive(Clone)]
pub(super) struct Branch<K, V> {
    pub(super) keys: Slots<K>,
    pub(super) children: Slots<Arc<Node<K, V>>>,
}

/// What a write below hands to its parent: the replaced value, and the separator and new right
/// sibling if the node split. The sibling comes already behind its `Arc`: a node is large,
/// and handing it up by value would copy it at every level.
type Inserted<K, V> = (Option<V>, Option<(K, Arc<Node<K, V>>)>);

impl<K, V> Node<K, V> {
    pub(super) fn empty() -> Self {
        Node::Leaf(Leaf {
            keys: ArrayVec::new(),
            vals: ArrayVec::new(),
        })
    }

    /// A new root above two nodes.
    pub(super) fn root(left: Arc<Node<K, V>>, separator: K, right: Arc<Node<K, V>>) -> Self {
        let mut keys = ArrayVec::new();
        keys.push(separator);
        let mut children = ArrayVec::new();
        children.push(left);
        children.push(right);
        Node::Branch(Branch { keys, children })
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

/// How many of `items` (a prefix of them) satisfy `before`: a binary search whose steps are
/// conditional moves rather than branches, which a lookup's compares would mispredict half the
/// time.
#[inline(always)]
pub(super) fn count_before<T>(items: &[T], mut before: impl FnMut(&T) -> bool) -> usize {
    if items.is_empty() {
        return 0;
    }
    let mut base = 0;
    let mut size = items.len();
    while size > 1 {
        let half = size / 2;
        let mid = base + half;
        base = if before(&items[mid]) { mid } else { base };
        size -= half;
    }
    base + usize::from(before(&items[base]))
}

/// The position of `key` in a leaf's keys.
#[inline(always)]
fn find<K: Borrow<Q>, Q: Ord + ?Sized>(keys: &[K], key: &Q) -> Result<usize, usize> {
    let i = count_before(keys, |k| k.borrow() < key);
    match keys.get(i) {
        Some(k) if k.borrow() == key => Ok(i),
        _ => Err(i),
    }
}

impl<K: Ord, V> Branch<K, V> {
    /// The child whose range holds `key`.
    #[inline(always)]
    pub(super) fn route<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        count_before(&self.keys, |s| s.borrow() <= key)
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
                    let i = find(&l.keys, key).ok()?;
                    return l.vals.get(i);
                }
                Node::Branch(b) => node = &b.children[b.route(key)],
            }
        }
    }

    pub(super) fn insert(&mut self, key: K, val: V) -> Inserted<K, V> {
        match self {
            Node::Leaf(l) => match find(&l.keys, &key) {
                Ok(i) => (Some(std::mem::replace(&mut l.vals[i], val)), None),
                Err(i) => {
                    l.keys.insert(i, key);
                    l.vals.insert(i, val);
                    if l.keys.len() <= CAP {
                        return (None, None);
                    }
                    let right = l.split(i == CAP);
                    (
                        None,
                        Some((right.keys[0].clone(), Arc::new(Node::Leaf(right)))),
                    )
                }
            },
            Node::Branch(b) => {
                let i = b.route(&key);
                let (old, split) = Arc::make_mut(&mut b.children[i]).insert(key, val);
                let Some((separator, right)) = split else {
                    return (old, None);
                };
                b.keys.insert(i, separator);
                b.children.insert(i + 1, right);
                if b.children.len() <= CAP {
                    return (old, None);
                }
                let (separator, right) = b.split(i + 1 == CAP);
                (old, Some((separator, Arc::new(Node::Branch(right)))))
            }
        }
    }

    /// Removes `key` from the subtree. A node a snapshot still shares is copied only once the
    /// key is known to be there (`present`), so a miss never copies a path.
    pub(super) fn remove<Q>(this: &mut Arc<Self>, key: &Q, mut present: bool) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        if !present && Arc::strong_count(this) > 1 {
            this.get(key)?;
            present = true;
        }
        match Arc::make_mut(this) {
            Node::Leaf(l) => {
                let i = find(&l.keys, key).ok()?;
                l.keys.remove(i);
                Some(l.vals.remove(i))
            }
            Node::Branch(b) => {
                let i = b.route(key);
                let old = Self::remove(&mut b.children[i], key, present)?;
                if b.children[i].width() < MIN {
                    b.rebalance(i);
                }
                Some(old)
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

/// Where to cut a node that is one too wide: appending (the new item went last, as with
/// ever-growing revisions) leaves the left node full, so sequential inserts pack nodes tight.
fn split_point(width: usize, appended: bool) -> usize {
    if appended { width - 1 } else { width / 2 }
}

impl<K, V> Leaf<K, V> {
    /// Moves the upper part into a new right sibling.
    fn split(&mut self, appended: bool) -> Leaf<K, V> {
        let at = split_point(self.keys.len(), appended);
        Leaf {
            keys: self.keys.drain(at..).collect(),
            vals: self.vals.drain(at..).collect(),
        }
    }
}

impl<K: Clone, V: Clone> Branch<K, V> {
    /// Like [`Leaf::split`]; the separator between the halves moves up to the parent.
    fn split(&mut self, appended: bool) -> (K, Branch<K, V>) {
        let at = split_point(self.children.len(), appended);
        let children = self.children.drain(at..).collect();
        let keys = self.keys.drain(at..).collect();
        let separator = self
            .keys
            .pop()
            .expect("invariant: a branch has one key fewer than children");
        (separator, Branch { keys, children })
    }

    /// Joins the underfull child `i` with a neighbour if the two fit in one node, or else
    /// evens them out.
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
                let mut keys: Vec<K> = l.keys.drain(..).chain(r.keys).collect();
                let mut vals: Vec<V> = l.vals.drain(..).chain(r.vals).collect();
                let at = if keys.len() <= CAP {
                    keys.len()
                } else {
                    keys.len() / 2
                };
                let right_keys: Slots<K> = keys.drain(at..).collect();
                let right_vals: Slots<V> = vals.drain(at..).collect();
                l.keys.extend(keys);
                l.vals.extend(vals);
                right_keys.first().cloned().map(|s| {
                    let r = Leaf {
                        keys: right_keys,
                        vals: right_vals,
                    };
                    (s, Node::Leaf(r))
                })
            }
            (Node::Branch(l), Node::Branch(r)) => {
                let mut keys: Vec<K> = l.keys.drain(..).chain([separator]).chain(r.keys).collect();
                let mut children: Vec<Arc<Node<K, V>>> =
                    l.children.drain(..).chain(r.children).collect();
                if children.len() <= CAP {
                    l.keys.extend(keys);
                    l.children.extend(children);
                    None
                } else {
                    let at = children.len() / 2;
                    let right = Branch {
                        keys: keys.drain(at..).collect(),
                        children: children.drain(at..).collect(),
                    };
                    let separator = keys
                        .pop()
                        .expect("invariant: a branch has one key fewer than children");
                    l.keys.extend(keys);
                    l.children.extend(children);
                    Some((separator, Node::Branch(right)))
                }
            }
            _ => unreachable!("invariant: siblings are at the same level"),
        };
        if let Some((separator, right)) = split {
            self.keys.insert(left, separator);
            self.children.insert(left + 1, Arc::new(right));
        }
    }
}
