use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use proptest::prelude::*;

use super::PMap;
use super::diff::DiffItem;
use super::node::{CAP, Node};

#[derive(Clone, Debug)]
enum Op {
    Insert(u16, u32),
    Remove(u16),
    /// Keep a copy of the map as it is now, to check later that writes left it alone.
    Snapshot,
}

fn ops(keys: u16) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => (0..keys, any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        4 => (0..keys).prop_map(Op::Remove),
        1 => Just(Op::Snapshot),
    ];
    prop::collection::vec(op, 0..600)
}

fn model_diff(
    old: &BTreeMap<u16, u32>,
    new: &BTreeMap<u16, u32>,
) -> Vec<(u16, Option<u32>, Option<u32>)> {
    let mut keys: Vec<u16> = old.keys().chain(new.keys()).copied().collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (o, n) = (old.get(&k).copied(), new.get(&k).copied());
            (o != n).then_some((k, o, n))
        })
        .collect()
}

fn tree_diff(old: &PMap<u16, u32>, new: &PMap<u16, u32>) -> Vec<(u16, Option<u32>, Option<u32>)> {
    old.diff(new)
        .map(|d| match d {
            DiffItem::Add(k, v) => (*k, None, Some(*v)),
            DiffItem::Remove(k, v) => (*k, Some(*v), None),
            DiffItem::Update { key, old, new } => (*key, Some(*old), Some(*new)),
        })
        .collect()
}

fn check(tree: &PMap<u16, u32>, model: &BTreeMap<u16, u32>, keys: u16) {
    let all: Vec<(u16, u32)> = tree.iter().map(|(k, v)| (*k, *v)).collect();
    let want: Vec<(u16, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(all, want, "in-order iteration");
    assert_eq!(tree.len(), model.len());
    assert_eq!(tree.iter().len(), model.len());
    let back: Vec<u16> = tree.keys().rev().copied().collect();
    let want_back: Vec<u16> = model.keys().rev().copied().collect();
    assert_eq!(back, want_back, "reverse iteration");
    assert_eq!(
        tree.first().map(|(k, v)| (*k, *v)),
        model.first_key_value().map(|(k, v)| (*k, *v))
    );
    for k in 0..keys {
        assert_eq!(tree.get(&k), model.get(&k), "get {k}");
    }
}

fn check_ranges(tree: &PMap<u16, u32>, model: &BTreeMap<u16, u32>, from: u16, to: u16) {
    let got: Vec<u16> = tree
        .range(Bound::Included(&from), Bound::Excluded(to))
        .map(|(k, _)| *k)
        .collect();
    let want: Vec<u16> = model.range(from..to).map(|(k, _)| *k).collect();
    assert_eq!(got, want, "range {from}..{to}");
    let got: Vec<u16> = tree
        .range(Bound::Excluded(&from), Bound::Included(to))
        .map(|(k, _)| *k)
        .collect();
    let want: Vec<u16> = model
        .range((Bound::Excluded(from), Bound::Included(to)))
        .map(|(k, _)| *k)
        .collect();
    assert_eq!(got, want, "range ({from}..={to}]");
    let got: Vec<u16> = tree
        .range(Bound::Included(&from), Bound::Unbounded)
        .map(|(k, _)| *k)
        .collect();
    let want: Vec<u16> = model.range(from..).map(|(k, _)| *k).collect();
    assert_eq!(got, want, "range {from}..");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn behaves_like_a_btreemap(ops in ops(400), from in 0u16..420, len in 0u16..200) {
        let mut tree = PMap::new();
        let mut model = BTreeMap::new();
        let mut snapshots = Vec::new();
        let mut last = (tree.clone(), model.clone());
        for op in ops {
            match op {
                Op::Insert(k, v) => prop_assert_eq!(tree.insert(k, v), model.insert(k, v)),
                Op::Remove(k) => prop_assert_eq!(tree.remove(&k), model.remove(&k)),
                Op::Snapshot => {
                    prop_assert_eq!(tree_diff(&last.0, &tree), model_diff(&last.1, &model));
                    snapshots.push(last);
                    last = (tree.clone(), model.clone());
                }
            }
        }
        check(&tree, &model, 420);
        check_ranges(&tree, &model, from, from.saturating_add(len));
        prop_assert_eq!(tree_diff(&last.0, &tree), model_diff(&last.1, &model));
        prop_assert_eq!(tree_diff(&tree, &last.0), model_diff(&model, &last.1));
        for (old_tree, old_model) in &snapshots {
            check(old_tree, old_model, 420);
            prop_assert_eq!(tree_diff(old_tree, &tree), model_diff(old_model, &model));
        }
    }

    #[test]
    fn both_ends_meet_exactly(n in 0u16..300, fronts in prop::collection::vec(any::<bool>(), 0..300)) {
        let mut tree = PMap::new();
        for k in 0..n {
            tree.insert(k, u32::from(k));
        }
        let mut iter = tree.keys();
        let (mut lo, mut hi) = (0u16, n);
        for front in fronts {
            let got = if front { iter.next() } else { iter.next_back() };
            if lo == hi {
                prop_assert_eq!(got, None);
                continue;
            }
            if front {
                prop_assert_eq!(got, Some(&lo));
                lo += 1;
            } else {
                hi -= 1;
                prop_assert_eq!(got, Some(&hi));
            }
            prop_assert_eq!(iter.len(), usize::from(hi - lo));
        }
    }
}

/// Sequential and reverse fills, then emptying from either end, build and tear down every
/// level: the tree must stay ordered and complete throughout.
#[test]
fn fills_and_drains_in_order() {
    let n: u16 = u16::try_from(CAP * CAP * CAP).expect("small") + 7;
    for reverse in [false, true] {
        let mut tree = PMap::new();
        let keys: Vec<u16> = if reverse {
            (0..n).rev().collect()
        } else {
            (0..n).collect()
        };
        for &k in &keys {
            assert_eq!(tree.insert(k, u32::from(k)), None);
        }
        assert!(tree.height >= 3, "several levels");
        assert_eq!(
            tree.keys().copied().collect::<Vec<_>>(),
            (0..n).collect::<Vec<_>>()
        );
        for (i, &k) in keys.iter().enumerate() {
            assert_eq!(tree.remove(&k), Some(u32::from(k)));
            assert_eq!(tree.len(), keys.len() - i - 1);
            assert_eq!(
                tree.first().map(|(k, _)| *k),
                keys[i + 1..].iter().min().copied()
            );
        }
        assert!(tree.is_empty());
        assert_eq!(tree.height, 0, "levels collapse as the tree empties");
    }
}

/// A write copies only its path: every leaf but the one written stays shared with the
/// snapshot, and the diff between the two finds just the one change.
#[test]
fn writes_share_untouched_subtrees() {
    let mut tree = PMap::new();
    for k in 0..2000u16 {
        tree.insert(k, 0u32);
    }
    let snapshot = tree.clone();
    tree.insert(1000, 1);
    let shared = shared_leaves(&snapshot, &tree);
    let leaves = leaves(&tree).len();
    assert!(leaves >= 2000 / CAP, "{leaves} leaves");
    assert_eq!(
        leaves,
        self::leaves(&snapshot).len(),
        "a replace splits nothing"
    );
    assert_eq!(shared, leaves - 1, "all leaves but the written one shared");
    assert_eq!(tree_diff(&snapshot, &tree), vec![(1000, Some(0), Some(1))]);
    assert_eq!(snapshot.get(&1000), Some(&0), "the snapshot is unchanged");
}

fn leaves(map: &PMap<u16, u32>) -> Vec<*const Node<u16, u32>> {
    fn walk(n: &Arc<Node<u16, u32>>, out: &mut Vec<*const Node<u16, u32>>) {
        match &**n {
            Node::Leaf(_) => out.push(Arc::as_ptr(n)),
            Node::Branch(b) => b.children.iter().for_each(|c| walk(c, out)),
        }
    }
    let mut out = Vec::new();
    walk(&map.root, &mut out);
    out
}

fn shared_leaves(a: &PMap<u16, u32>, b: &PMap<u16, u32>) -> usize {
    let (la, lb) = (leaves(a), leaves(b));
    la.iter().filter(|p| lb.contains(p)).count()
}

/// A key whose head settles only its upper bits, so that many keys share a head and every
/// search must break ties on the full key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Coarse(u16);

impl super::Head for Coarse {
    fn head(&self) -> u64 {
        u64::from(self.0 / 16)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn shared_heads_break_ties_on_keys(ops in ops(400), from in 0u16..420, len in 0u16..200) {
        let mut tree = PMap::new();
        let mut model = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(k, v) => prop_assert_eq!(tree.insert(Coarse(k), v), model.insert(k, v)),
                Op::Remove(k) => prop_assert_eq!(tree.remove(&Coarse(k)), model.remove(&k)),
                Op::Snapshot => {}
            }
        }
        let all: Vec<(u16, u32)> = tree.iter().map(|(k, v)| (k.0, *v)).collect();
        let want: Vec<(u16, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
        prop_assert_eq!(all, want);
        for k in 0..420 {
            prop_assert_eq!(tree.get(&Coarse(k)), model.get(&k), "get {}", k);
        }
        let to = from.saturating_add(len);
        let got: Vec<u16> = tree
            .range(Bound::Included(&Coarse(from)), Bound::Excluded(Coarse(to)))
            .map(|(k, _)| k.0)
            .collect();
        let want: Vec<u16> = model.range(from..to).map(|(k, _)| *k).collect();
        prop_assert_eq!(got, want, "range {}..{}", from, to);
        let got: Vec<u16> = tree
            .range(Bound::Excluded(&Coarse(from)), Bound::Unbounded)
            .map(|(k, _)| k.0)
            .collect();
        let want: Vec<u16> = model
            .range((Bound::Excluded(from), Bound::Unbounded))
            .map(|(k, _)| *k)
            .collect();
        prop_assert_eq!(got, want, "range ({}..", from);
    }
}
