//! Any sequence of input changes, derived round by round, ends with the output tables a fresh
//! derivation computes from the final inputs (identity numbers aside: they depend on the
//! allocation order, so rows are compared by their identities' labels).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use statedb::{Db, Txn};

use super::{Fixture, endpoint, parse};
use crate::derive::{DeriveConfig, DeriveTables, Deriver};
use crate::endpoints::{EndpointState, PodName};
use crate::objects::StoredObject;

const PODS: [(&str, &str); 4] = [
    ("default", "p0"),
    ("default", "p1"),
    ("ns-a", "p2"),
    ("ns-a", "p3"),
];

const POLICIES: [&str; 6] = [
    // Named port on ingress.
    "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-x}
spec:
  endpointSelector:
    matchLabels: {app: a}
  ingress:
  - fromEndpoints:
    - matchLabels: {org: x}
    toPorts:
    - ports: [{port: http, protocol: TCP}]
",
    // ipBlock with except, pod addresses included.
    "
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector:
    matchLabels: {app: b}
  ingress:
  - from:
    - ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.0/24]}
    ports: [{port: 80}]
",
    "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: to-svc}
spec:
  endpointSelector:
    matchLabels: {org: y}
  egress:
  - toServices:
    - k8sService: {serviceName: svc, namespace: default}
",
    // Namespace labels and deny.
    "
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: deny-b}
spec:
  endpointSelector: {}
  ingress:
  - fromEntities: [all]
  ingressDeny:
  - fromEndpoints:
    - matchLabels: {app: b, io.cilium.k8s.namespace.labels.env: prod}
",
    // A /32 that is also a pod's address: the pod wins the ipcache entry.
    "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cidr, namespace: ns-a}
spec:
  endpointSelector: {}
  egress:
  - toCIDR: [10.244.1.1/32, 10.0.0.0/8]
",
    "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: broken}
spec:
  endpointSelector: {}
  ingress:
  - fromRequires:
    - matchLabels: {org: x}
",
];

#[derive(Clone, Debug)]
enum Op {
    Namespace(usize, Option<usize>),
    /// (labels, address, port) variants.
    Pod(usize, Option<(usize, usize, usize)>),
    Service(Option<usize>),
    Policy(usize, bool),
    /// (pod: index into PODS, or PODS.len() for an unknown pod, ready).
    Endpoint(usize, Option<(usize, bool)>),
    Round,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..2usize, proptest::option::of(0..2usize)).prop_map(|(i, v)| Op::Namespace(i, v)),
        (
            0..PODS.len(),
            proptest::option::weighted(0.8, (0..4usize, 0..3usize, 0..2usize))
        )
            .prop_map(|(i, v)| Op::Pod(i, v)),
        proptest::option::of(0..2usize).prop_map(Op::Service),
        (0..POLICIES.len(), any::<bool>()).prop_map(|(i, p)| Op::Policy(i, p)),
        (
            0..4usize,
            proptest::option::weighted(0.8, (0..=PODS.len(), any::<bool>()))
        )
            .prop_map(|(i, v)| Op::Endpoint(i, v)),
        Just(Op::Round),
    ]
}

fn namespace_yaml(i: usize, env: usize) -> String {
    let name = ["default", "ns-a"][i];
    let env = ["prod", "dev"][env];
    format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{env: {env}}}}}\n")
}

fn pod_yaml(i: usize, (labels, address, port): (usize, usize, usize)) -> String {
    let (ns, name) = PODS[i];
    let app = ["a", "b"][labels % 2];
    let org = ["x", "y"][labels / 2];
    let status = match address {
        0 => String::new(),
        1 => format!("status: {{podIP: 10.244.2.{i}}}\n"),
        // The address of endpoint 1, whoever that is.
        _ => "status: {podIP: 10.244.1.1}\n".to_owned(),
    };
    let port = [80, 8080][port];
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{app: {app}, org: {org}}}}}\n\
         spec:\n  containers:\n  - name: c\n    ports: [{{containerPort: {port}, name: http}}]\n{status}"
    )
}

fn service_yaml(app: usize) -> String {
    let app = ["a", "b"][app];
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: svc}}\nspec:\n  selector: {{app: {app}}}\n  ports: [{{port: 80}}]\n"
    )
}

impl Fixture {
    fn set_objects(&mut self, yaml: &str, present: bool) {
        if present {
            self.apply(yaml);
        } else {
            self.delete_object(yaml);
        }
    }

    fn run(&mut self, op: &Op) {
        match op {
            Op::Namespace(i, v) => {
                self.set_objects(&namespace_yaml(*i, v.unwrap_or(0)), v.is_some());
            }
            Op::Pod(i, v) => self.set_objects(&pod_yaml(*i, v.unwrap_or((0, 0, 0))), v.is_some()),
            Op::Service(v) => self.set_objects(&service_yaml(v.unwrap_or(0)), v.is_some()),
            Op::Policy(i, present) => self.set_objects(POLICIES[*i], *present),
            Op::Endpoint(i, v) => {
                let n = u8::try_from(i + 1).expect("few endpoints");
                let mut e = endpoint(n, None);
                match v {
                    None => self.delete_endpoint(&e),
                    Some((pod, ready)) => {
                        e.pod = Some(match PODS.get(*pod) {
                            Some((ns, name)) => PodName {
                                namespace: (*ns).to_owned(),
                                name: (*name).to_owned(),
                            },
                            None => PodName {
                                namespace: "default".to_owned(),
                                name: "ghost".to_owned(),
                            },
                        });
                        if !ready {
                            e.state = EndpointState::WaitingForNetns;
                        }
                        self.upsert_endpoint(e);
                    }
                }
            }
            Op::Round => {
                self.round();
            }
        }
    }

    /// The outputs with every identity number replaced by its labels.
    fn canonical(&self) -> BTreeSet<String> {
        let txn = self.db.read_txn();
        let labels: BTreeMap<u32, String> = txn
            .all(&self.tables.identities)
            .map(|e| (e.object.identity.0, e.object.labels.to_string()))
            .collect();
        let name = |id: u32| match id {
            0 => "any".to_owned(),
            id => labels
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("unknown {id}")),
        };
        let mut out = BTreeSet::new();
        for e in txn.all(&self.tables.identities) {
            out.insert(format!("identity {} {}", e.object.labels, e.object.local));
        }
        for e in txn.all(&self.tables.ipcache) {
            let r = &e.object;
            out.insert(format!(
                "ipcache {:?} {} {}",
                r.kind,
                r.prefix,
                name(r.identity.0)
            ));
        }
        for e in txn.all(&self.tables.datapath_endpoints) {
            let r = &e.object;
            out.insert(format!(
                "endpoint {} {} {} {} {:?} {:?} {}",
                r.endpoint_id,
                r.ipv4,
                r.ifindex,
                r.ifname,
                r.mac,
                r.enforce,
                name(r.identity.0)
            ));
        }
        for e in txn.all(&self.tables.policy_entries) {
            let r = &e.object;
            out.insert(format!(
                "policy {} {:?} {} {} {}/{} {:?}",
                r.endpoint_id,
                r.key.direction,
                name(r.key.identity.0),
                r.key.proto,
                r.key.port,
                r.key.port_prefix,
                r.verdict
            ));
        }
        out
    }

    /// A new derivation over a copy of this one's inputs, after one round.
    fn fresh(&self) -> Fixture {
        let db = Db::new();
        let tables = DeriveTables::register(&db).expect("tables register");
        let read = self.db.read_txn();
        let mut txn = db.write_txn(&[&tables.objects, &tables.endpoints]);
        for e in read.all(&self.tables.objects) {
            txn.insert(&tables.objects, StoredObject::clone(&e.object))
                .expect("copied");
        }
        for e in read.all(&self.tables.endpoints) {
            txn.insert(
                &tables.endpoints,
                crate::endpoints::Endpoint::clone(&e.object),
            )
            .expect("copied");
        }
        txn.commit();
        let deriver =
            Deriver::new(db.clone(), tables.clone(), &DeriveConfig::default()).expect("starts");
        let mut fresh = Fixture {
            db,
            tables,
            deriver,
        };
        fresh.round();
        fresh
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn incremental_rounds_end_where_a_fresh_derivation_starts(
        ops in proptest::collection::vec(op(), 1..40)
    ) {
        let mut f = Fixture::new();
        for op in &ops {
            f.run(op);
        }
        f.round();
        let fresh = f.fresh();
        prop_assert_eq!(f.canonical(), fresh.canonical());
        prop_assert_eq!(f.round().total(), 0, "a round without input changes writes nothing");
    }
}

#[test]
fn the_universe_parses() {
    for yaml in POLICIES {
        assert_eq!(parse(yaml).len(), 1);
    }
    assert_eq!(parse(&pod_yaml(2, (3, 2, 1))).len(), 1);
    assert_eq!(parse(&namespace_yaml(1, 1)).len(), 1);
    assert_eq!(parse(&service_yaml(1)).len(), 1);
}
