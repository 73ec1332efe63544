use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use proptest::prelude::*;

use super::*;

proptest! {
    /// The blocks are aligned, disjoint, in order, and cover exactly `lo..=hi`.
    #[test]
    fn port_range_prefixes_cover_exactly_the_range(a in any::<u16>(), b in any::<u16>()) {
        let (lo, hi) = (a.min(b), a.max(b));
        let blocks = port_range_prefixes(lo, hi);
        let mut next = u32::from(lo);
        for (start, len) in &blocks {
            prop_assert_eq!(u32::from(*start), next);
            let size = 1u32 << (16 - u32::from(*len));
            prop_assert_eq!(u32::from(*start) % size, 0);
            next += size;
        }
        prop_assert_eq!(next, u32::from(hi) + 1);
        prop_assert!(blocks.len() <= 30);
    }
}

#[test]
fn ranges_split_like_cilium() {
    assert_eq!(port_range_prefixes(80, 80), [(80, 16)]);
    assert_eq!(port_range_prefixes(0, u16::MAX), [(0, 0)]);
    assert_eq!(
        port_range_prefixes(8000, 8100),
        [(8000, 10), (8064, 11), (8096, 14), (8100, 16)]
    );
}

#[test]
fn a_broad_deny_is_materialised_over_narrower_allows() {
    let mut map = MapState::default();
    map.set_enforced(Direction::Ingress, true);
    let peer = Identity(300);
    let allow80 = Key::new(Direction::Ingress, peer, PROTO_TCP, 80, 16);
    let mut changes = Vec::new();
    let src = |n| Source::Rule {
        rule: n,
        direction: Direction::Ingress,
        deny: false,
        index: 0,
        peer,
    };
    map.add(src(1), vec![(allow80, Effect::Allow)], &mut changes);
    assert_eq!(map.get(&allow80), Some(Verdict::Allow));
    map.add(
        src(2),
        vec![(Key::any(Direction::Ingress, peer), Effect::Deny)],
        &mut changes,
    );
    assert_eq!(map.get(&allow80), Some(Verdict::Deny));
    assert!(matches!(
        map.decide(Direction::Ingress, peer, None, PROTO_TCP, 80),
        Decision::Denied { .. }
    ));
    map.remove(&src(2), &mut changes);
    assert_eq!(map.get(&allow80), Some(Verdict::Allow));
    let summary: Vec<String> = changes
        .iter()
        .map(|c| format!("{}: {:?} -> {:?}", c.key, c.old, c.new))
        .collect();
    expect_test::expect![[r#"
        [
            "ingress 300 80/TCP: None -> Some(Allow)",
            "ingress 300 ANY: None -> Some(Deny)",
            "ingress 300 80/TCP: Some(Allow) -> Some(Deny)",
            "ingress 300 ANY: Some(Deny) -> None",
            "ingress 300 80/TCP: Some(Deny) -> Some(Allow)",
        ]
    "#]]
    .assert_debug_eq(&summary);
}

fn rule_source(rule: u32) -> Source {
    Source::Rule {
        rule,
        direction: Direction::Ingress,
        deny: false,
        index: 0,
        peer: Identity(300),
    }
}

/// Keys of two peers that cover each other in every way: all of a peer, a protocol, a port
/// block and single ports inside and outside it.
fn model_key(i: usize) -> Key {
    let peer = Identity(300 + u32::try_from(i % 2).expect("small"));
    match i / 2 {
        0 => Key::any(Direction::Ingress, peer),
        1 => Key::new(Direction::Ingress, peer, PROTO_TCP, 0, 0),
        2 => Key::new(Direction::Ingress, peer, PROTO_TCP, 64, 10),
        3 => Key::new(Direction::Ingress, peer, PROTO_TCP, 80, 16),
        4 => Key::new(Direction::Ingress, peer, PROTO_TCP, 2000, 16),
        _ => Key::new(Direction::Ingress, peer, PROTO_UDP, 80, 16),
    }
}

#[derive(Debug, Clone)]
enum MapOp {
    Add(u32, Vec<(usize, bool)>),
    Remove(u32),
}

fn map_op() -> impl Strategy<Value = MapOp> {
    prop_oneof![
        (
            0u32..6,
            prop::collection::vec((0usize..12, any::<bool>()), 0..4)
        )
            .prop_map(|(rule, effects)| MapOp::Add(rule, effects)),
        (0u32..6).prop_map(MapOp::Remove),
    ]
}

proptest! {
    /// Resolved entries are what the contributions say, recomputed naively: a deny at the key
    /// or at any key covering it wins, else an allow; the changes reported replay to them.
    #[test]
    fn resolved_entries_follow_the_contributions(ops in prop::collection::vec(map_op(), 1..40)) {
        let mut map = MapState::default();
        let mut model: BTreeMap<u32, Vec<(Key, bool)>> = BTreeMap::new();
        let mut replayed = BTreeMap::new();
        for op in ops {
            let mut changes = Vec::new();
            match op {
                MapOp::Add(rule, effects) => {
                    let effects: Vec<(Key, bool)> =
                        effects.into_iter().map(|(k, deny)| (model_key(k), deny)).collect();
                    let added = map.add(
                        rule_source(rule),
                        effects
                            .iter()
                            .map(|(k, deny)| (*k, if *deny { Effect::Deny } else { Effect::Allow }))
                            .collect(),
                        &mut changes,
                    );
                    match model.entry(rule) {
                        Entry::Occupied(_) => prop_assert_eq!(added, 0),
                        Entry::Vacant(slot) => {
                            slot.insert(effects);
                        }
                    }
                }
                MapOp::Remove(rule) => {
                    map.remove(&rule_source(rule), &mut changes);
                    model.remove(&rule);
                }
            }
            for change in changes {
                prop_assert_eq!(replayed.get(&change.key).copied(), change.old);
                match change.new {
                    Some(v) => replayed.insert(change.key, v),
                    None => replayed.remove(&change.key),
                };
            }
            // Within one source a later effect at the same key replaces an earlier one.
            let mut at: BTreeMap<(Key, u32), bool> = BTreeMap::new();
            for (rule, effects) in &model {
                for (key, deny) in effects {
                    at.insert((*key, *rule), *deny);
                }
            }
            let want: BTreeMap<Key, Verdict> = at
                .keys()
                .map(|(key, _)| {
                    let denied = at.iter().any(|((k, _), deny)| *deny && k.covers(key));
                    (*key, if denied { Verdict::Deny } else { Verdict::Allow })
                })
                .collect();
            let got: BTreeMap<Key, Verdict> = map.entries().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(&replayed, &want);
        }
    }
}
