use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use schema::labels::Labels;
use schema::manifest;

use super::*;
use crate::compile::{self, Context, NoServices};
use crate::identity::{PodContext, pod_identity_labels};
use crate::mapstate::{Decision, PROTO_TCP, PROTO_UDP, Verdict};

fn pod_labels(ns: &str, app: &str) -> Labels {
    let labels = BTreeMap::from([("app".to_owned(), app.to_owned())]);
    let ns_labels = BTreeMap::from([("team".to_owned(), format!("team-{ns}"))]);
    pod_identity_labels(
        &labels,
        PodContext {
            namespace: ns,
            namespace_labels: &ns_labels,
            service_account: "default",
            cluster: "default",
        },
    )
}

fn compiled(yaml: &str) -> (Origin, Vec<Rule>) {
    let object = manifest::parse_str("test", yaml)
        .into_iter()
        .next()
        .expect("one document")
        .expect("valid manifest");
    let ctx = Context {
        cluster: "default",
        services: &NoServices,
    };
    let compiled = compile::object(&object, &ctx)
        .expect("a policy")
        .expect("compiles");
    (compiled.origin, compiled.rules)
}

const ALLOW_A_TO_B: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: a-to-b, namespace: x}
spec:
  endpointSelector: {matchLabels: {app: b}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: a}}]
    toPorts: [{ports: [{port: "80", protocol: TCP}]}]
"#;

const DENY_C: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-c, namespace: x}
spec:
  endpointSelector: {}
  ingressDeny:
  - fromEndpoints: [{matchLabels: {app: c}}]
"#;

const ALLOW_ALL_IN_NS: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: all-in-ns, namespace: x}
spec:
  endpointSelector: {}
  ingress:
  - fromEndpoints: [{}]
"#;

const RANGE_AND_DENY_PORT: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: range, namespace: x}
spec:
  endpointSelector: {matchLabels: {app: b}}
  ingress:
  - toPorts: [{ports: [{port: "8000", endPort: 8100, protocol: TCP}]}]
  ingressDeny:
  - toPorts: [{ports: [{port: "8080", protocol: TCP}]}]
"#;

const NP_FROM_TEAM_Y: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-team-y, namespace: x}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: team-y}}
    ports: [{port: 53, protocol: UDP}]
"#;

const CCNP_EGRESS_WORLD: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: egress-world}
spec:
  endpointSelector: {matchLabels: {app: a}}
  egress:
  - toEntities: [world]
  - toCIDRSet: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}]
"#;

const NP_IPBLOCK: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: ipblock, namespace: y}
spec:
  podSelector: {}
  policyTypes: [Egress]
  egress:
  - to: [{ipBlock: {cidr: 10.42.0.0/16, except: [10.42.1.0/24]}}]
"#;

const CATALOGUE: [&str; 7] = [
    ALLOW_A_TO_B,
    DENY_C,
    ALLOW_ALL_IN_NS,
    RANGE_AND_DENY_PORT,
    NP_FROM_TEAM_Y,
    CCNP_EGRESS_WORLD,
    NP_IPBLOCK,
];

const PODS: [(&str, &str); 6] = [
    ("x", "a"),
    ("x", "b"),
    ("x", "c"),
    ("y", "a"),
    ("y", "b"),
    ("y", "c"),
];

fn pod_identity(i: usize) -> Identity {
    Identity(1000 + u32::try_from(i).expect("small"))
}

fn named_ports() -> NamedPorts {
    BTreeMap::from([("http".to_owned(), BTreeSet::from([(PROTO_TCP, 80)]))])
}

fn add_pod(engine: &mut Engine, i: usize) -> Delta {
    let (ns, app) = PODS[i];
    engine.upsert_identity(pod_identity(i), pod_labels(ns, app), named_ports(), true)
}

fn add_policy(engine: &mut Engine, i: usize) -> Delta {
    let (origin, rules) = compiled(CATALOGUE[i]);
    engine.upsert_policy(origin, rules)
}

fn remove_policy(engine: &mut Engine, i: usize) -> Delta {
    let (origin, _) = compiled(CATALOGUE[i]);
    engine.remove_policy(&origin)
}

/// Everything a datapath would hold: (subject, key) -> verdict, plus enforcement.
type Snapshot = (
    BTreeMap<(Identity, Key), Verdict>,
    BTreeMap<Identity, [bool; 2]>,
);

fn snapshot(engine: &Engine, pods: &BTreeSet<usize>) -> Snapshot {
    let mut entries = BTreeMap::new();
    let mut enforced = BTreeMap::new();
    for &i in pods {
        let id = pod_identity(i);
        let map = engine
            .map_state(id)
            .expect("local identity has a map state");
        for (key, verdict) in map.entries() {
            entries.insert((id, *key), *verdict);
        }
        enforced.insert(
            id,
            [
                map.is_enforced(Direction::Ingress),
                map.is_enforced(Direction::Egress),
            ],
        );
    }
    (entries, enforced)
}

/// Applies deltas to a mirror of the datapath's map, as the BPF reconciler will.
fn apply(mirror: &mut BTreeMap<(Identity, Key), Verdict>, delta: &Delta) {
    for (subject, change) in &delta.entries {
        let current = mirror.get(&(*subject, change.key)).copied();
        assert_eq!(
            current, change.old,
            "delta's old value for {subject} {}",
            change.key
        );
        match change.new {
            Some(v) => mirror.insert((*subject, change.key), v),
            None => mirror.remove(&(*subject, change.key)),
        };
    }
}

#[derive(Debug, Clone)]
enum Op {
    AddPod(usize),
    RemovePod(usize),
    AddPolicy(usize),
    RemovePolicy(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..PODS.len()).prop_map(Op::AddPod),
        (0..PODS.len()).prop_map(Op::RemovePod),
        (0..CATALOGUE.len()).prop_map(Op::AddPolicy),
        (0..CATALOGUE.len()).prop_map(Op::RemovePolicy),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever order pods and policies come and go in, the incremental engine ends where a
    /// fresh engine given the final inputs starts, and its deltas replayed onto a mirror give
    /// exactly that state.
    #[test]
    fn incremental_equals_from_scratch(ops in prop::collection::vec(op(), 1..40), policies_first in any::<bool>()) {
        let mut engine = Engine::new(Config::default());
        let mut mirror = BTreeMap::new();
        let mut pods = BTreeSet::new();
        let mut policies = BTreeSet::new();
        for op in &ops {
            let delta = match *op {
                Op::AddPod(i) => { pods.insert(i); add_pod(&mut engine, i) }
                Op::RemovePod(i) => { pods.remove(&i); engine.remove_identity(pod_identity(i)) }
                Op::AddPolicy(i) => { policies.insert(i); add_policy(&mut engine, i) }
                Op::RemovePolicy(i) => { policies.remove(&i); remove_policy(&mut engine, i) }
            };
            apply(&mut mirror, &delta);
        }
        let mut fresh = Engine::new(Config::default());
        if policies_first {
            policies.iter().for_each(|&i| { add_policy(&mut fresh, i); });
            pods.iter().for_each(|&i| { add_pod(&mut fresh, i); });
        } else {
            pods.iter().for_each(|&i| { add_pod(&mut fresh, i); });
            policies.iter().for_each(|&i| { add_policy(&mut fresh, i); });
        }
        let (got, got_enforced) = snapshot(&engine, &pods);
        let (want, want_enforced) = snapshot(&fresh, &pods);
        // Prefix identities are numbered in allocation order, so compare through labels.
        let relabel = |e: &Engine, m: BTreeMap<(Identity, Key), Verdict>| -> BTreeMap<(Identity, String, Key), Verdict> {
            m.into_iter().map(|((s, mut k), v)| {
                let peer = e.labels(k.identity).map(ToString::to_string).unwrap_or_default();
                if k.identity.is_local_scope() { k.identity = Identity(0x0100_0000); }
                ((s, peer, k), v)
            }).collect()
        };
        prop_assert_eq!(relabel(&engine, got.clone()), relabel(&fresh, want));
        prop_assert_eq!(got_enforced, want_enforced);
        prop_assert_eq!(mirror, got);
        // The indexed selector cache selects what a scan of every identity does.
        for entry in engine.selectors.entries() {
            let scanned: BTreeSet<Identity> = engine
                .identities()
                .filter(|(_, labels)| entry.selector.matches(labels))
                .map(|(id, _)| id)
                .collect();
            prop_assert_eq!(&entry.selected, &scanned, "selection of {}", entry.selector);
        }
    }
}

fn decide(
    engine: &Engine,
    subject: Identity,
    dir: Direction,
    peer: Identity,
    proto: u8,
    port: u16,
) -> Decision {
    engine
        .map_state(subject)
        .expect("subject")
        .decide(dir, peer, None, proto, port)
}

#[test]
fn deny_wins_over_allow_and_ports_follow_the_range() {
    let mut engine = Engine::new(Config::default());
    add_pod(&mut engine, 1);
    add_policy(&mut engine, 3);
    let b = pod_identity(1);
    let peer = Identity::WORLD;
    let allowed = |d| matches!(d, Decision::Allowed { .. });
    assert!(allowed(decide(
        &engine,
        b,
        Direction::Ingress,
        peer,
        PROTO_TCP,
        8000
    )));
    assert!(allowed(decide(
        &engine,
        b,
        Direction::Ingress,
        peer,
        PROTO_TCP,
        8100
    )));
    assert!(allowed(decide(
        &engine,
        b,
        Direction::Ingress,
        peer,
        PROTO_TCP,
        8079
    )));
    assert!(matches!(
        decide(&engine, b, Direction::Ingress, peer, PROTO_TCP, 8080),
        Decision::Denied { .. }
    ));
    assert_eq!(
        decide(&engine, b, Direction::Ingress, peer, PROTO_TCP, 8101),
        Decision::NoMatch
    );
    assert_eq!(
        decide(&engine, b, Direction::Ingress, peer, PROTO_UDP, 8000),
        Decision::NoMatch
    );
    assert_eq!(
        decide(&engine, b, Direction::Egress, peer, PROTO_TCP, 1),
        Decision::NotEnforced
    );
}

/// deny.rst's table: allow 80 and 81 from the client (80 through L7), deny port 80 from
/// everyone: 81 stays allowed, 80 is denied; denying the client at L3 denies every port.
#[test]
fn the_deny_table_from_cilium_docs() {
    let allow = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow, namespace: x}
spec:
  endpointSelector: {matchLabels: {app: b}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: a}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules: {http: [{method: GET}]}
  - fromEndpoints: [{matchLabels: {app: a}}]
    toPorts: [{ports: [{port: "81", protocol: TCP}]}]
"#;
    let deny_port = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-port, namespace: x}
spec:
  endpointSelector: {matchLabels: {app: b}}
  ingressDeny:
  - toPorts: [{ports: [{port: "80", protocol: TCP}]}]
"#;
    let deny_client = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny-client, namespace: x}
spec:
  endpointSelector: {matchLabels: {app: b}}
  ingressDeny:
  - fromEndpoints: [{matchLabels: {app: a}}]
"#;
    let mut engine = Engine::new(Config::default());
    add_pod(&mut engine, 0);
    add_pod(&mut engine, 1);
    let (a, b) = (pod_identity(0), pod_identity(1));
    let (o, r) = compiled(allow);
    engine.upsert_policy(o, r);
    assert!(matches!(
        decide(&engine, b, Direction::Ingress, a, PROTO_TCP, 80),
        Decision::Redirected { .. }
    ));
    let (o, r) = compiled(deny_port);
    engine.upsert_policy(o.clone(), r);
    assert!(matches!(
        decide(&engine, b, Direction::Ingress, a, PROTO_TCP, 80),
        Decision::Denied { .. }
    ));
    assert!(matches!(
        decide(&engine, b, Direction::Ingress, a, PROTO_TCP, 81),
        Decision::Allowed { .. }
    ));
    engine.remove_policy(&o);
    let (o, r) = compiled(deny_client);
    engine.upsert_policy(o, r);
    for port in [80, 81, 82] {
        assert!(matches!(
            decide(&engine, b, Direction::Ingress, a, PROTO_TCP, port),
            Decision::Denied { .. }
        ));
    }
}

/// A new pod in one namespace is matched only against the cached selectors that may select
/// it and adds only the entries where it is a peer; nothing about the other namespace is
/// recomputed.
#[test]
fn a_new_pod_touches_only_what_selects_it() {
    let mut engine = Engine::new(Config::default());
    for i in 0..PODS.len() {
        add_pod(&mut engine, i);
    }
    add_policy(&mut engine, 0);
    add_policy(&mut engine, 4);
    let before = engine.stats();
    // A second pod labelled app=a in namespace x, with a new identity (different sa).
    let mut labels = pod_labels("x", "a");
    labels.insert(schema::labels::Label::new(
        schema::labels::Source::K8s,
        crate::identity::SERVICE_ACCOUNT,
        "other",
    ));
    let delta = engine.upsert_identity(Identity(2000), labels, NamedPorts::new(), true);
    let after = engine.stats();
    assert_eq!(
        after.subjects_computed - before.subjects_computed,
        1,
        "only the new identity's own map state"
    );
    // Of the four cached selectors it meets the three pinned to namespace x, not the one
    // for pods of team-y's namespaces.
    assert_eq!(engine.selector_count(), 4);
    assert_eq!(after.selector_matches - before.selector_matches, 3);
    // It is a peer of x/b (a-to-b: one port) and a subject of both policies' namespace-x rules.
    let touched: BTreeSet<Identity> = delta.entries.iter().map(|(s, _)| *s).collect();
    assert_eq!(touched, BTreeSet::from([pod_identity(1), Identity(2000)]));
    let peer_entries: Vec<String> = delta
        .entries
        .iter()
        .filter(|(s, _)| *s == pod_identity(1))
        .map(|(_, c)| c.key.to_string())
        .collect();
    assert_eq!(peer_entries, ["ingress 2000 80/TCP"]);
}

/// A new selector meets only the identities carrying its narrowest required label.
#[test]
fn a_new_policy_matches_only_candidate_identities() {
    let mut engine = Engine::new(Config::default());
    for i in 0..PODS.len() {
        add_pod(&mut engine, i);
    }
    let all = engine.identities().count();
    assert_eq!(all, Identity::RESERVED.len() + PODS.len());
    let before = engine.stats();
    add_policy(&mut engine, 0);
    let after = engine.stats();
    // Subject `app=b` and peer `app=a`, both pinned to namespace x (three pods), meet only the
    // two pods carrying their app label (one in x, one in y).
    assert_eq!(after.selector_matches - before.selector_matches, 2 + 2);
    add_policy(&mut engine, 4);
    // Subject: x's three pods; peer `team=team-y` (any namespace): y's three pods.
    assert_eq!(
        engine.stats().selector_matches - after.selector_matches,
        3 + 3
    );
    // A cached selector costs nothing: deny-c's subject (all of x) is from-team-y's, only its
    // peer `app=c` in x is new, and meets the two `app=c` pods.
    let before = engine.stats();
    add_policy(&mut engine, 1);
    assert_eq!(engine.stats().selector_matches - before.selector_matches, 2);
}

/// Removing one policy retracts exactly its contributions.
#[test]
fn removing_a_policy_removes_only_its_entries() {
    let mut engine = Engine::new(Config::default());
    for i in 0..PODS.len() {
        add_pod(&mut engine, i);
    }
    add_policy(&mut engine, 0);
    let with_one = snapshot(&engine, &(0..PODS.len()).collect());
    add_policy(&mut engine, 4);
    let delta = remove_policy(&mut engine, 4);
    assert!(
        delta
            .entries
            .iter()
            .all(|(s, _)| PODS[usize::try_from(s.0 - 1000).expect("pod")].0 == "x")
    );
    assert_eq!(snapshot(&engine, &(0..PODS.len()).collect()), with_one);
}

#[test]
fn ipblock_matches_pod_addresses_but_cilium_cidr_does_not() {
    let mut engine = Engine::new(Config::default());
    add_pod(&mut engine, 0); // x/a: the CCNP's subject
    add_pod(&mut engine, 4); // y/b: the NetworkPolicy's subject
    add_policy(&mut engine, 5);
    add_policy(&mut engine, 6);
    let inside = "10.42.2.7".parse().expect("ip");
    let excepted = "10.42.1.7".parse().expect("ip");
    let ipblock = engine.ipblock_identity(inside).expect("inside the block");
    let y_b = pod_identity(4);
    assert!(matches!(
        engine.map_state(y_b).expect("subject").decide(
            Direction::Egress,
            pod_identity(0),
            Some(ipblock),
            PROTO_TCP,
            80
        ),
        Decision::Allowed { .. }
    ));
    let excepted_id = engine.ipblock_identity(excepted);
    assert_eq!(
        engine.map_state(y_b).expect("subject").decide(
            Direction::Egress,
            pod_identity(0),
            excepted_id,
            PROTO_TCP,
            80
        ),
        Decision::NoMatch
    );
    // The CCNP's toCIDRSet selects world addresses in 10/8 but never the pod-address identity.
    let x_a = pod_identity(0);
    let world_in = engine.world_identity("10.2.3.4".parse().expect("ip"));
    assert!(matches!(
        decide(&engine, x_a, Direction::Egress, world_in, PROTO_TCP, 443),
        Decision::Allowed { .. }
    ));
    assert_eq!(
        engine.map_state(x_a).expect("subject").decide(
            Direction::Egress,
            pod_identity(4),
            Some(ipblock),
            PROTO_TCP,
            80
        ),
        Decision::NoMatch
    );
}
