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
