//! Tree nodes and the recursive writes. Keys and values sit in leaves; a branch holds
//! separators and `Arc`s to its children, so copying a branch bumps one count per child. A
//! node keeps its keys, values and children inline, so visiting one is one pointer step.
//!
//! Next to its keys every node keeps their [`Head`]s, a dense array of words. A search runs
//! over the heads alone and looks at a full key only where heads tie, so a lookup reads a
//! few words per node instead of chasing key representations.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::sync::Arc;

use arrayvec::ArrayVec;

use super::Head;
use super::heads::Heads;

/// Widest a node gets before it splits. Small under test so that a few hundred keys already
/// build several levels and exercise every split, merge and redistribution.
#[cfg(not(test))]
pub(super) const CAP: usize = 32;
#[cfg(test)]
pub(super) const CAP: usize = 6;

/// Room for one more than `CAP`: an insert lands before the node splits.
pub(super) const SLOTS: usize = CAP + 1;

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
    /// `heads.at(i)` is `keys[i].head()`.
    pub(super) heads: Heads,
    pub(super) keys: Slots<K>,
    pub(super) vals: Slots<V>,
}

/// Child `i` holds the keys `k` with `keys[i - 1] <= k < keys[i]`.
#[derive(Clone)]
pub(super) struct Branch<K, V> {
    /// `heads.at(i)` is `keys[i].head()`.
    pub(super) heads: Heads,
    pub(super) keys: Slots<K>,
    pub(super) children: Slots<Arc<Node<K, V>>>,
}

/// What a write below hands to its parent: the replaced value, and the separator and new right
/// sibling if the node split. The sibling comes already behind its `Arc`: a node is large,
/// and handing it up by value would copy it at every level.
type Inserted<K, V> = (Option<V>, Option<(K, Arc<Node<K, V>>)>);

impl<K: Head, V> Node<K, V> {
    pub(super) fn empty() -> Self {
        Node::Leaf(Leaf {
            heads: Heads::new(),
            keys: ArrayVec::new(),
            vals: ArrayVec::new(),
        })
    }

    /// A new root above two nodes.
    pub(super) fn root(left: Arc<Node<K, V>>, separator: K, right: Arc<Node<K, V>>) -> Self {
        let mut heads = Heads::new();
        heads.insert(0, separator.head());
        let mut keys = ArrayVec::new();
        keys.push(separator);
        let mut children = ArrayVec::new();
        children.push(left);
        children.push(right);
        Node::Branch(Branch {
            heads,
            keys,
            children,
        })
    }
}

impl<K, V> Node<K, V> {
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

/// How many of `keys` are below `key`, or with `or_equal` at most `key`. The heads settle
/// all but the keys whose head is `key`'s; those few are compared in full.
#[inline(always)]
pub(super) fn rank<K, Q>(heads: &Heads, keys: &[K], head: u64, key: &Q, or_equal: bool) -> usize
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
{
    let mut i = heads.count_below(head);
    while i < keys.len() && heads.at(i) == head {
        match keys[i].borrow().cmp(key) {
            Ordering::Less => i += 1,
            Ordering::Equal if or_equal => i += 1,
            _ => break,
        }
    }
    i
}

/// The position of `key` in a leaf's keys.
#[inline(always)]
fn find<K, Q>(heads: &Heads, keys: &[K], head: u64, key: &Q) -> Result<usize, usize>
where
    K: Borrow<Q>,
    Q: Ord + ?Sized,
{
    let mut i = heads.count_below(head);
    while i < keys.len() && heads.at(i) == head {
        match keys[i].borrow().cmp(key) {
            Ordering::Less => i += 1,
            Ordering::Equal => return Ok(i),
            Ordering::Greater => break,
        }
    }
    Err(i)
}

impl<K, V> Leaf<K, V> {
    #[inline(always)]
    pub(super) fn find<Q>(&self, key: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + Head + ?Sized,
    {
        find(&self.heads, &self.keys, key.head(), key)
    }
}

impl<K, V> Branch<K, V> {
    /// The child whose range holds `key`.
    #[inline(always)]
    pub(super) fn route<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Ord + Head + ?Sized,
    {
        rank(&self.heads, &self.keys, key.head(), key, true)
    }
}

impl<K: Ord + Clone + Head, V: Clone> Node<K, V> {
    /// `head` is `key.head()`, passed in so that it can stay in a register: a probe key built
    /// just before the call is then read back from memory only where heads tie.
    pub(super) fn get<Q>(&self, head: u64, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let mut node = self;
        loop {
            match node {
                Node::Leaf(l) => {
                    let i = find(&l.heads, &l.keys, head, key).ok()?;
                    return l.vals.get(i);
                }
                Node::Branch(b) => node = &b.children[rank(&b.heads, &b.keys, head, key, true)],
            }
        }
    }

    pub(super) fn insert(&mut self, key: K, val: V) -> Inserted<K, V> {
        match self {
            Node::Leaf(l) => match l.find(&key) {
                Ok(i) => (Some(std::mem::replace(&mut l.vals[i], val)), None),
                Err(i) => {
                    l.heads.insert(i, key.head());
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
                b.heads.insert(i, separator.head());
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
        Q: Ord + Head + ?Sized,
    {
        if !present && Arc::strong_count(this) > 1 {
            this.get(key.head(), key)?;
            present = true;
        }
        match Arc::make_mut(this) {
            Node::Leaf(l) => {
                let i = l.find(key).ok()?;
                l.heads.remove(i);
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
            heads: self.heads.split_off(at),
            keys: self.keys.drain(at..).collect(),
            vals: self.vals.drain(at..).collect(),
        }
    }
}

impl<K: Clone + Head, V: Clone> Branch<K, V> {
    /// Like [`Leaf::split`]; the separator between the halves moves up to the parent.
    fn split(&mut self, appended: bool) -> (K, Branch<K, V>) {
        let at = split_point(self.children.len(), appended);
        let children = self.children.drain(at..).collect();
        let heads = self.heads.split_off(at);
        let keys = self.keys.drain(at..).collect();
        self.heads.truncate(at - 1);
        let separator = self
            .keys
            .pop()
            .expect("invariant: a branch has one key fewer than children");
        (
            separator,
            Branch {
                heads,
                keys,
                children,
            },
        )
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
        self.heads.remove(left);
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
                l.heads = Heads::of(&l.keys);
                right_keys.first().cloned().map(|s| {
                    let r = Leaf {
                        heads: Heads::of(&right_keys),
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
                    l.heads = Heads::of(&l.keys);
                    None
                } else {
                    let at = children.len() / 2;
                    let right_keys: Slots<K> = keys.drain(at..).collect();
                    let right = Branch {
                        heads: Heads::of(&right_keys),
                        keys: right_keys,
                        children: children.drain(at..).collect(),
                    };
                    let separator = keys
                        .pop()
                        .expect("invariant: a branch has one key fewer than children");
                    l.keys.extend(keys);
                    l.children.extend(children);
                    l.heads = Heads::of(&l.keys);
                    Some((separator, Node::Branch(right)))
                }
            }
            _ => unreachable!("invariant: siblings are at the same level"),
        };
        if let Some((separator, right)) = split {
            self.heads.insert(left, separator.head());
            self.keys.insert(left, separator);
            self.children.insert(left + 1, Arc::new(right));
        }
    }
}
