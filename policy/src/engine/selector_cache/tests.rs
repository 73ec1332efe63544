use std::collections::{BTreeMap, BTreeSet};

use expect_test::expect;
use proptest::prelude::*;
use schema::labels::{Label, Labels, Operator, Requirement, Selector, Source};

use super::index::{Filing, IdentityIndex, SelectorIndex, filing};
use super::{SelectorCache, SelectorId};
use crate::identity::{CLUSTER, Identity, POD_NAMESPACE};

const KEYS: [&str; 5] = [POD_NAMESPACE, CLUSTER, "app", "team", "world"];
const VALUES: [&str; 4] = ["", "x", "y", "z"];

fn sources() -> impl Strategy<Value = Source> {
    prop::sample::select(vec![
        Source::Any,
        Source::K8s,
        Source::Reserved,
        Source::Cidr,
    ])
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS.to_vec()).prop_map(str::to_owned)
}

fn values() -> impl Strategy<Value = BTreeSet<String>> {
    prop::collection::btree_set(
        prop::sample::select(VALUES.to_vec()).prop_map(str::to_owned),
        1..3,
    )
}

fn requirement() -> impl Strategy<Value = Requirement> {
    let operator = prop_oneof![
        3 => values().prop_map(Operator::In),
        1 => values().prop_map(Operator::NotIn),
        2 => Just(Operator::Exists),
        1 => Just(Operator::DoesNotExist),
    ];
    (sources(), key(), operator).prop_map(|(source, key, operator)| Requirement {
        source,
        key,
        operator,
    })
}

fn selector() -> impl Strategy<Value = Selector> {
    prop::collection::vec(requirement(), 0..4).prop_map(Selector::new)
}

fn labels() -> impl Strategy<Value = Labels> {
    let label = (
        prop::sample::select(vec![Source::K8s, Source::Reserved, Source::Cidr]),
        key(),
        prop::sample::select(VALUES.to_vec()),
    )
        .prop_map(|(source, key, value)| Label::new(source, key, value));
    prop::collection::vec(label, 0..5).prop_map(|labels| labels.into_iter().collect())
}

#[derive(Debug, Clone)]
enum Op {
    AddIdentity(u32, Labels),
    RemoveIdentity(u32),
    Acquire(Selector),
    Release(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        ((0u32..12), labels()).prop_map(|(n, l)| Op::AddIdentity(n, l)),
        (0u32..12).prop_map(Op::RemoveIdentity),
        selector().prop_map(Op::Acquire),
        (0usize..16).prop_map(Op::Release),
    ]
}

proptest! {
    /// An index may return extra candidates but never miss a match, either way round.
    #[test]
    fn candidates_include_every_match(
        selectors in prop::collection::vec(selector(), 0..12),
        sets in prop::collection::vec(labels(), 0..12),
    ) {
        let mut filed = SelectorIndex::default();
        for (id, selector) in selectors.iter().enumerate() {
            filed.insert(id, selector);
        }
        let mut identities = IdentityIndex::default();
        for (n, labels) in sets.iter().enumerate() {
            identities.insert(Identity(u32::try_from(n).expect("small")), labels);
        }
        for labels in &sets {
            let candidates: BTreeSet<SelectorId> = filed.candidates(labels).into_iter().collect();
            for (id, selector) in selectors.iter().enumerate() {
                if selector.matches(labels) {
                    prop_assert!(candidates.contains(&id), "{selector} matches {labels} but is no candidate");
                }
            }
        }
        for selector in &selectors {
            let candidates = identities.candidates(selector);
            for (n, labels) in sets.iter().enumerate() {
                if selector.matches(labels) {
                    let identity = Identity(u32::try_from(n).expect("small"));
                    prop_assert!(candidates.contains(&identity), "{selector} matches {labels} but is no candidate");
                }
            }
        }
    }

    /// Through any sequence of identities and selectors coming and going, every selection
    /// is what a scan of all identities gives, and the indexes forget what is gone.
    #[test]
    fn selections_equal_a_full_scan(ops in prop::collection::vec(op(), 1..60)) {
        let mut cache = SelectorCache::default();
        let mut known: BTreeMap<Identity, Labels> = BTreeMap::new();
        let mut acquired: Vec<SelectorId> = Vec::new();
        let mut matches = 0;
        for op in ops {
            match op {
                Op::AddIdentity(n, labels) => {
                    let identity = Identity(n);
                    if let Some(old) = known.remove(&identity) {
                        cache.remove_identity(identity, &old);
                    }
                    let hits = cache.add_identity(identity, &labels, &mut matches);
                    let want: Vec<SelectorId> = (0..cache.entries.len())
                        .filter(|id| cache.get(*id).is_some_and(|e| e.selector.matches(&labels)))
                        .collect();
                    prop_assert_eq!(hits, want);
                    known.insert(identity, labels);
                }
                Op::RemoveIdentity(n) => {
                    let identity = Identity(n);
                    if let Some(labels) = known.remove(&identity) {
                        let hits = cache.remove_identity(identity, &labels);
                        prop_assert!(hits.iter().all(|id| cache.get(*id).is_some_and(|e| e.selector.matches(&labels))));
                    }
                }
                Op::Acquire(selector) => {
                    let id = cache.acquire(&selector, |i| known.get(&i), &mut matches);
                    acquired.push(id);
                }
                Op::Release(i) => {
                    if !acquired.is_empty() {
                        let id = acquired.swap_remove(i % acquired.len());
                        cache.release(id);
                    }
                }
            }
            for entry in cache.entries() {
                let want: BTreeSet<Identity> = known
                    .iter()
                    .filter(|(_, labels)| entry.selector.matches(labels))
                    .map(|(id, _)| *id)
                    .collect();
                prop_assert_eq!(&entry.selected, &want, "selection of {}", entry.selector);
            }
        }
        for id in acquired {
            cache.release(id);
        }
        for (identity, labels) in &known {
            cache.remove_identity(*identity, labels);
        }
        prop_assert_eq!(cache.len(), 0);
        prop_assert!(cache.filed.is_empty());
        prop_assert!(cache.identities.is_empty());
    }
}

fn parse(text: &str) -> Selector {
    let requirements = text.split(';').filter(|r| !r.is_empty()).map(|r| {
        let (key, rest) = r.split_once(' ').unwrap_or((r, "Exists"));
        let (operator, values) = rest.split_once(' ').unwrap_or((rest, ""));
        let values: Vec<String> = values
            .split(',')
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .collect();
        Requirement::new(key, operator, &values).expect("valid requirement")
    });
    Selector::new(requirements)
}

#[test]
fn selectors_are_filed_under_their_narrowest_label() {
    let cases = [
        "k8s:io.kubernetes.pod.namespace In x;any:app In a",
        "any:app In a,b;any:tier In web",
        "k8s:io.kubernetes.pod.namespace Exists;k8s:io.cilium.k8s.namespace.labels.team In t",
        "k8s:io.kubernetes.pod.namespace Exists;k8s:io.cilium.k8s.policy.cluster In default",
        "k8s:io.cilium.k8s.policy.cluster In default",
        "cidr:10.0.0.0/8;reserved:world;cidr:10.1.0.0/16 DoesNotExist",
        "any:app NotIn a",
        "",
    ];
    let filed: Vec<String> = cases
        .iter()
        .map(|text| match filing(&parse(text)) {
            Filing::Value { key, values } => format!("{key} = {values:?}"),
            Filing::Key(key) => format!("{key} exists"),
            Filing::Everywhere => "everywhere".to_owned(),
        })
        .collect();
    expect![[r#"
        [
            "io.kubernetes.pod.namespace = {\"x\"}",
            "tier = {\"web\"}",
            "io.cilium.k8s.namespace.labels.team = {\"t\"}",
            "io.cilium.k8s.policy.cluster = {\"default\"}",
            "io.cilium.k8s.policy.cluster = {\"default\"}",
            "10.0.0.0/8 exists",
            "everywhere",
            "everywhere",
        ]
    "#]]
    .assert_debug_eq(&filed);
}
