mod equivalence;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use expect_test::{Expect, expect};
use policy::identity::Identity;
use policy::mapstate::{PROTO_TCP, Verdict};
use policy::rule::Direction;
use schema::cidr::Cidr;
use schema::object::Object;
use statedb::{Db, Revision, Table, Txn};
use tokio_util::sync::CancellationToken;

use super::{Derivation, DeriveConfig, DeriveTables, Deriver, Written};
use crate::cause::Cause;
use crate::datapath::{DATAPATH_ENDPOINT_ID, POLICY_ENTRY_ENDPOINT};
use crate::endpoints::{Endpoint, EndpointState, HostLink, PodName};
use crate::fqdn::FqdnName;
use crate::objects::StoredObject;

const STARWARS_APP: &str = include_str!("../../../examples/starwars/app/http-sw-app.yaml");
const STARWARS_RULE1: &str = include_str!("../../../examples/starwars/policy/sw_l3_l4_policy.yaml");

fn parse(yaml: &str) -> Vec<Object> {
    schema::manifest::parse_str("test", yaml)
        .into_iter()
        .map(|o| o.expect("test manifest parses"))
        .collect()
}

/// An endpoint of `pod` (in `default`), numbered `n`: id n, 10.244.1.n, host veth ifindex 100+n.
fn endpoint(n: u8, pod: Option<&str>) -> Endpoint {
    Endpoint {
        container_id: format!("c{n}"),
        id: u16::from(n),
        pod: pod.map(|name| PodName {
            namespace: "default".to_owned(),
            name: name.to_owned(),
        }),
        netns: format!("/run/netns/pod{n}"),
        ifname: "eth0".to_owned(),
        ipv4: Ipv4Addr::new(10, 244, 1, n),
        host: Some(HostLink {
            ifindex: 100 + u32::from(n),
            ifname: format!("lxc{n}"),
            mac: [2, 0, 0, 0, 0, n],
            container_mac: [2, 0, 0, 0, 1, n],
        }),
        state: EndpointState::Ready,
        identity: None,
    }
}

struct Fixture {
    db: Db,
    tables: DeriveTables,
    deriver: Deriver,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with_config(&DeriveConfig::default())
    }

    fn with_config(config: &DeriveConfig) -> Fixture {
        let db = Db::new();
        let tables = DeriveTables::register(&db).expect("tables register");
        let deriver = Deriver::new(db.clone(), tables.clone(), config).expect("derivation starts");
        Fixture {
            db,
            tables,
            deriver,
        }
    }

    /// Star Wars app and rule1, one endpoint per pod.
    fn starwars() -> Fixture {
        let mut f = Fixture::new();
        f.apply(STARWARS_APP);
        f.apply(STARWARS_RULE1);
        for (n, pod) in [
            "deathstar-c74d84667-cx5kp",
            "deathstar-c74d84667-t2lcz",
            "tiefighter",
            "xwing",
        ]
        .into_iter()
        .enumerate()
        {
            let n = u8::try_from(n + 1).expect("few pods");
            f.upsert_endpoint(endpoint(n, Some(pod)));
        }
        f.round();
        f
    }

    fn apply(&mut self, yaml: &str) {
        let mut txn = self.db.write_txn(&[&self.tables.objects]);
        for object in parse(yaml) {
            txn.insert(&self.tables.objects, StoredObject::new(object))
                .expect("object inserted");
        }
        txn.commit();
    }

    fn delete_object(&mut self, yaml: &str) {
        let mut txn = self.db.write_txn(&[&self.tables.objects]);
        for object in parse(yaml) {
            txn.delete(&self.tables.objects, &StoredObject::new(object))
                .expect("object deleted");
        }
        txn.commit();
    }

    fn upsert_endpoint(&mut self, endpoint: Endpoint) {
        let mut txn = self.db.write_txn(&[&self.tables.endpoints]);
        txn.insert(&self.tables.endpoints, endpoint)
            .expect("endpoint inserted");
        txn.commit();
    }

    fn delete_endpoint(&mut self, endpoint: &Endpoint) {
        let mut txn = self.db.write_txn(&[&self.tables.endpoints]);
        txn.delete(&self.tables.endpoints, endpoint)
            .expect("endpoint deleted");
        txn.commit();
    }

    fn round(&mut self) -> Written {
        self.deriver.round().written
    }

    fn identity_of_endpoint(&self, id: u16) -> Identity {
        let txn = self.db.read_txn();
        txn.get(&self.tables.datapath_endpoints, &DATAPATH_ENDPOINT_ID, &id)
            .expect("datapath endpoint exists")
            .object
            .identity
    }

    /// (direction, peer, proto, port, prefix) -> verdict of one endpoint's policy entries.
    /// An endpoint's entries other than the allow-all of a direction it does not enforce.
    fn rule_entries(&self, id: u16) -> BTreeMap<(Direction, Identity, u8, u16, u8), Verdict> {
        let enforce = self
            .db
            .read_txn()
            .get(
                &self.tables.datapath_endpoints,
                &crate::datapath::DATAPATH_ENDPOINT_ID,
                &id,
            )
            .map_or([false, false], |e| e.object.enforce);
        self.entries(id)
            .into_iter()
            .filter(|((direction, identity, proto, _, prefix), _)| {
                enforce[direction.index()]
                    || !(*identity == Identity::ANY && *proto == 0 && *prefix == 0)
            })
            .collect()
    }

    fn entries(&self, id: u16) -> BTreeMap<(Direction, Identity, u8, u16, u8), Verdict> {
        let txn = self.db.read_txn();
        txn.list(&self.tables.policy_entries, &POLICY_ENTRY_ENDPOINT, &id)
            .map(|e| {
                let k = e.object.key;
                (
                    (k.direction, k.identity, k.proto, k.port, k.port_prefix),
                    e.object.verdict,
                )
            })
            .collect()
    }

    /// Every output row as `table key @revision`, to compare revisions across a round.
    fn revisions(&self) -> BTreeMap<String, Revision> {
        let txn = self.db.read_txn();
        let mut out = BTreeMap::new();
        collect(&txn, &self.tables.identities, "identities", &mut out);
        collect(&txn, &self.tables.ipcache, "ipcache", &mut out);
        collect(
            &txn,
            &self.tables.datapath_endpoints,
            "datapath-endpoints",
            &mut out,
        );
        collect(
            &txn,
            &self.tables.policy_entries,
            "policy-entries",
            &mut out,
        );
        out
    }

    /// The output tables as text, for snapshots.
    fn show(&self) -> String {
        let txn = self.db.read_txn();
        let mut out = String::new();
        for e in txn.all(&self.tables.identities) {
            let r = &e.object;
            if r.identity.is_reserved() && !r.local {
                continue;
            }
            let local = if r.local { " local" } else { "" };
            writeln!(out, "identity {} {}{local}", r.identity.0, r.labels).expect("string");
        }
        for e in txn.all(&self.tables.ipcache) {
            let r = &e.object;
            writeln!(out, "ipcache {:?} {} -> {}", r.kind, r.prefix, r.identity.0).expect("string");
        }
        for e in txn.all(&self.tables.datapath_endpoints) {
            let r = &e.object;
            writeln!(
                out,
                "endpoint {} {} {} identity {} enforce {:?}",
                r.endpoint_id, r.ipv4, r.ifname, r.identity.0, r.enforce
            )
            .expect("string");
        }
        for e in txn.all(&self.tables.policy_entries) {
            let r = &e.object;
            writeln!(
                out,
                "policy {} {} peer {} proto {} port {}/{} {:?}",
                r.endpoint_id,
                r.key.direction.as_str(),
                r.key.identity.0,
                r.key.proto,
                r.key.port,
                r.key.port_prefix,
                r.verdict
            )
            .expect("string");
        }
        out
    }
}

fn collect<T: std::fmt::Debug + Send + Sync + 'static>(
    txn: &impl Txn,
    table: &Table<T>,
    name: &str,
    out: &mut BTreeMap<String, Revision>,
) {
    for e in txn.all(table) {
        out.insert(format!("{name} {:?}", e.object), e.revision);
    }
}

fn check(f: &Fixture, expect: Expect) {
    expect.assert_eq(&f.show());
}

/// The rows whose revision differs between two `revisions()` snapshots (new ones included).
fn changed(before: &BTreeMap<String, Revision>, after: &BTreeMap<String, Revision>) -> usize {
    after
        .iter()
        .filter(|(k, rev)| before.get(*k) != Some(rev))
        .count()
}

fn pod_yaml(name: &str, labels: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {labels}\n")
}

#[test]
fn starwars_rule1_lets_empire_ships_land_on_the_deathstar_and_not_the_xwing() {
    let f = Fixture::starwars();
    let deathstar = f.identity_of_endpoint(1);
    assert_eq!(
        deathstar,
        f.identity_of_endpoint(2),
        "replicas share one identity"
    );
    let tiefighter = f.identity_of_endpoint(3);
    let xwing = f.identity_of_endpoint(4);
    for id in [1, 2] {
        let entries = f.entries(id);
        assert_eq!(
            entries.get(&(Direction::Ingress, tiefighter, PROTO_TCP, 80, 16)),
            Some(&Verdict::Allow)
        );
        assert_eq!(
            entries.get(&(Direction::Ingress, deathstar, PROTO_TCP, 80, 16)),
            Some(&Verdict::Allow),
            "the deathstar is org=empire too"
        );
        assert!(
            entries.keys().all(|(_, peer, ..)| *peer != xwing),
            "no entry lets the xwing in: {entries:?}"
        );
    }
    check(
        &f,
        expect![[r#"
            identity 256 k8s:class=deathstar,k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default,k8s:io.cilium.k8s.policy.cluster=default,k8s:io.cilium.k8s.policy.serviceaccount=default,k8s:io.kubernetes.pod.namespace=default,k8s:org=empire local
            identity 257 k8s:class=tiefighter,k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default,k8s:io.cilium.k8s.policy.cluster=default,k8s:io.cilium.k8s.policy.serviceaccount=default,k8s:io.kubernetes.pod.namespace=default,k8s:org=empire local
            identity 258 k8s:class=xwing,k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default,k8s:io.cilium.k8s.policy.cluster=default,k8s:io.cilium.k8s.policy.serviceaccount=default,k8s:io.kubernetes.pod.namespace=default,k8s:org=alliance local
            ipcache Primary 10.244.1.1/32 -> 256
            ipcache Primary 10.244.1.2/32 -> 256
            ipcache Primary 10.244.1.3/32 -> 257
            ipcache Primary 10.244.1.4/32 -> 258
            endpoint 1 10.244.1.1 lxc1 identity 256 enforce [true, false]
            endpoint 2 10.244.1.2 lxc2 identity 256 enforce [true, false]
            endpoint 3 10.244.1.3 lxc3 identity 257 enforce [false, false]
            endpoint 4 10.244.1.4 lxc4 identity 258 enforce [false, false]
            policy 1 ingress peer 1 proto 0 port 0/0 Allow
            policy 1 ingress peer 256 proto 6 port 80/16 Allow
            policy 1 ingress peer 257 proto 6 port 80/16 Allow
            policy 1 egress peer 0 proto 0 port 0/0 Allow
            policy 2 ingress peer 1 proto 0 port 0/0 Allow
            policy 2 ingress peer 256 proto 6 port 80/16 Allow
            policy 2 ingress peer 257 proto 6 port 80/16 Allow
            policy 2 egress peer 0 proto 0 port 0/0 Allow
            policy 3 ingress peer 0 proto 0 port 0/0 Allow
            policy 3 egress peer 0 proto 0 port 0/0 Allow
            policy 4 ingress peer 0 proto 0 port 0/0 Allow
            policy 4 egress peer 0 proto 0 port 0/0 Allow
        "#]],
    );
}

/// Each entry names the policies that decide it through its cookie; a second policy allowing
/// the same entry rewrites it with a cookie naming both, although its verdict is unchanged.
#[test]
fn entries_carry_a_cookie_naming_the_policies_that_decide_them() {
    let mut f = Fixture::starwars();
    let tiefighter = f.identity_of_endpoint(3);
    let cookie_of = |f: &Fixture| {
        let txn = f.db.read_txn();
        let key = crate::datapath::policy_entry_key(
            1,
            &policy::mapstate::Key::new(Direction::Ingress, tiefighter, PROTO_TCP, 80, 16),
        );
        let cookie = txn
            .get(
                &f.tables.policy_entries,
                &crate::datapath::POLICY_ENTRY_KEY,
                &key,
            )
            .map(|e| e.object.cookie)
            .expect("the tiefighter's entry");
        let policies: Vec<String> = txn
            .get(
                &f.tables.policy_cookies,
                &crate::datapath::POLICY_COOKIE,
                &cookie,
            )
            .map(|c| {
                c.object
                    .policies
                    .iter()
                    .map(|p| format!("{} {}/{}", p.kind, p.namespace, p.name))
                    .collect()
            })
            .unwrap_or_default();
        (cookie, policies)
    };
    let (first, policies) = cookie_of(&f);
    assert_ne!(first, 0);
    assert_eq!(policies, ["CiliumNetworkPolicy default/rule1"]);
    f.apply(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: empire-too}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {class: tiefighter}}]
    toPorts: [{ports: [{port: \"80\", protocol: TCP}]}]
",
    );
    f.round();
    let (second, policies) = cookie_of(&f);
    assert_ne!(second, first);
    assert_eq!(
        policies,
        [
            "CiliumNetworkPolicy default/empire-too",
            "CiliumNetworkPolicy default/rule1"
        ]
    );
}

#[test]
fn a_new_pod_writes_only_its_rows_and_the_entries_that_select_it() {
    let mut f = Fixture::starwars();
    let before = f.revisions();
    f.apply(&pod_yaml("tiebomber", "{org: empire, class: tiebomber}"));
    f.upsert_endpoint(endpoint(5, Some("tiebomber")));
    let written = f.round();
    let expected = super::TableCounts {
        written: 1,
        deleted: 0,
    };
    assert_eq!(written.identities, expected);
    assert_eq!(written.ipcache, expected);
    assert_eq!(written.datapath_endpoints, expected);
    // One new ingress entry on each deathstar replica, and the allow-all entries of the new
    // pod, which enforces nothing; nothing else.
    assert_eq!(
        written.policy_entries,
        super::TableCounts {
            written: 4,
            deleted: 0
        }
    );
    let after = f.revisions();
    assert_eq!(changed(&before, &after), written.total());
    assert!(
        before.iter().all(|(row, rev)| after.get(row) == Some(rev)),
        "every row that was there keeps its revision"
    );
    let bomber = f.identity_of_endpoint(5);
    assert_eq!(
        f.entries(1)
            .get(&(Direction::Ingress, bomber, PROTO_TCP, 80, 16)),
        Some(&Verdict::Allow)
    );
    // Nothing to do: no write at all.
    assert_eq!(f.round().total(), 0);
    assert_eq!(f.revisions(), after);
}

#[test]
fn a_label_change_moves_the_pod_to_another_identity() {
    let mut f = Fixture::starwars();
    let old = f.identity_of_endpoint(4);
    f.apply(&pod_yaml("xwing", "{org: empire, class: xwing}"));
    f.round();
    let new = f.identity_of_endpoint(4);
    assert_ne!(old, new);
    let txn = f.db.read_txn();
    assert!(
        txn.get(&f.tables.identities, &crate::datapath::IDENTITY_ID, &old.0)
            .is_none(),
        "the old identity had no other user"
    );
    let ipcache = txn
        .all(&f.tables.ipcache)
        .find(|e| e.object.prefix.to_string() == "10.244.1.4/32")
        .expect("xwing's address is in the ipcache");
    assert_eq!(ipcache.object.identity, new);
    assert_eq!(
        f.entries(1)
            .get(&(Direction::Ingress, new, PROTO_TCP, 80, 16)),
        Some(&Verdict::Allow),
        "now an empire ship"
    );
}

const XWING_EGRESS: &str = "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: xwing-out
spec:
  endpointSelector:
    matchLabels: {class: xwing}
  egress:
  - toEntities: [world]
";

#[test]
fn removing_a_policy_deletes_exactly_its_entries() {
    let mut f = Fixture::starwars();
    f.apply(XWING_EGRESS);
    f.round();
    let xwing_entries = f.entries(4);
    assert!(!xwing_entries.is_empty());
    let deathstar_entries = f.rule_entries(1).len() + f.rule_entries(2).len();
    let before = f.revisions();
    f.delete_object(STARWARS_RULE1);
    let written = f.round();
    assert_eq!(written.policy_entries.deleted, deathstar_entries);
    // Both deathstar replicas stop enforcing ingress: each gets the ingress allow-all entry,
    // which the policy reconciler writes before it deletes the others (updates come first),
    // so no packet meets an enforcing endpoint without entries.
    assert_eq!(written.policy_entries.written, 2);
    assert_eq!(written.datapath_endpoints.written, 2);
    assert_eq!(written.identities, super::TableCounts::default());
    assert!(f.rule_entries(1).is_empty() && f.rule_entries(2).is_empty());
    let allow_all = (Direction::Ingress, Identity::ANY, 0, 0, 0);
    assert_eq!(f.entries(1).get(&allow_all), Some(&Verdict::Allow));
    assert_eq!(f.entries(4), xwing_entries);
    let after = f.revisions();
    let kept = before
        .iter()
        .filter(|(row, rev)| after.get(*row) == Some(rev))
        .count();
    assert_eq!(kept + deathstar_entries + 2, before.len());
}

#[test]
fn deleting_an_endpoint_removes_its_datapath_endpoint_and_entries() {
    let mut f = Fixture::starwars();
    let entries = f.entries(2).len();
    f.delete_endpoint(&endpoint(2, Some("deathstar-c74d84667-t2lcz")));
    let written = f.round();
    assert_eq!(written.datapath_endpoints.deleted, 1);
    assert_eq!(written.policy_entries.deleted, entries);
    assert!(f.entries(2).is_empty());
    assert!(
        !f.entries(1).is_empty(),
        "the other replica keeps enforcing"
    );
    let txn = f.db.read_txn();
    assert!(
        txn.get(&f.tables.datapath_endpoints, &DATAPATH_ENDPOINT_ID, &2)
            .is_none()
    );
    // The pod still exists without a local endpoint and without `status.podIP`: no address.
    assert_eq!(written.ipcache.deleted, 1);
}

#[test]
fn an_uncompilable_policy_is_skipped_and_the_others_keep_working() {
    let mut f = Fixture::new();
    f.apply(STARWARS_APP);
    f.apply(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: broken
spec:
  endpointSelector: {}
  ingress:
  - fromRequires:
    - matchLabels: {org: empire}
",
    );
    f.apply(STARWARS_RULE1);
    f.upsert_endpoint(endpoint(1, Some("deathstar-c74d84667-cx5kp")));
    f.upsert_endpoint(endpoint(4, Some("xwing")));
    f.round();
    assert!(!f.entries(1).is_empty(), "rule1 still applies");
    assert!(
        f.rule_entries(4).is_empty(),
        "the broken policy selects every pod but installs nothing"
    );
}

#[test]
fn an_endpoint_whose_pod_is_unknown_gets_init_until_the_pod_arrives() {
    let mut f = Fixture::new();
    f.upsert_endpoint(endpoint(7, Some("late")));
    f.round();
    assert_eq!(f.identity_of_endpoint(7), Identity::INIT);
    check(
        &f,
        expect![[r#"
            identity 5 reserved:init local
            ipcache Primary 10.244.1.7/32 -> 5
            endpoint 7 10.244.1.7 lxc7 identity 5 enforce [false, false]
            policy 7 ingress peer 0 proto 0 port 0/0 Allow
            policy 7 egress peer 0 proto 0 port 0/0 Allow
        "#]],
    );
    f.apply(&pod_yaml("late", "{app: late}"));
    f.round();
    assert!(!f.identity_of_endpoint(7).is_reserved());
    check(
        &f,
        expect![[r#"
            identity 256 k8s:app=late,k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default,k8s:io.cilium.k8s.policy.cluster=default,k8s:io.cilium.k8s.policy.serviceaccount=default,k8s:io.kubernetes.pod.namespace=default local
            ipcache Primary 10.244.1.7/32 -> 256
            endpoint 7 10.244.1.7 lxc7 identity 256 enforce [false, false]
            policy 7 ingress peer 0 proto 0 port 0/0 Allow
            policy 7 egress peer 0 proto 0 port 0/0 Allow
        "#]],
    );
}

#[test]
fn a_service_change_recompiles_the_policies_that_name_it() {
    let mut f = Fixture::new();
    f.apply(&pod_yaml("web", "{app: web}"));
    f.apply(&pod_yaml("client", "{app: client}"));
    f.apply(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: to-web
spec:
  endpointSelector:
    matchLabels: {app: client}
  egress:
  - toServices:
    - k8sService: {serviceName: web, namespace: default}
",
    );
    f.upsert_endpoint(endpoint(1, Some("web")));
    f.upsert_endpoint(endpoint(2, Some("client")));
    f.round();
    let web = f.identity_of_endpoint(1);
    let to_web = |f: &Fixture| {
        f.entries(2)
            .keys()
            .any(|(d, peer, ..)| *d == Direction::Egress && *peer == web)
    };
    assert!(!to_web(&f), "no such service yet");
    f.apply(
        "
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
",
    );
    f.round();
    assert!(to_web(&f), "the service now selects web");
}

#[test]
fn pods_elsewhere_get_their_status_address_and_host_addresses_their_identity() {
    let db = Db::new();
    let tables = DeriveTables::register(&db).expect("tables register");
    let config = DeriveConfig {
        host_ipv4: vec![Ipv4Addr::new(192, 168, 0, 10)],
        ..DeriveConfig::default()
    };
    let mut f = Fixture {
        deriver: Deriver::new(db.clone(), tables.clone(), &config).expect("starts"),
        db,
        tables,
    };
    f.apply(
        "
apiVersion: v1
kind: Pod
metadata: {name: remote, labels: {app: r}}
status: {podIP: 10.244.2.9}
",
    );
    f.apply(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cidr}
spec:
  endpointSelector: {}
  egress:
  - toCIDR: [10.0.0.0/8, 10.244.2.9/32]
",
    );
    f.round();
    check(
        &f,
        expect![[r#"
            identity 256 k8s:app=r,k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default,k8s:io.cilium.k8s.policy.cluster=default,k8s:io.cilium.k8s.policy.serviceaccount=default,k8s:io.kubernetes.pod.namespace=default
            identity 16777217 cidr:0.0.0.0/0,cidr:0.0.0.0/1,cidr:0.0.0.0/2,cidr:0.0.0.0/3,cidr:0.0.0.0/4,cidr:10.0.0.0/7,cidr:10.0.0.0/8,cidr:8.0.0.0/5,cidr:8.0.0.0/6,reserved:world
            identity 16777218 cidr:0.0.0.0/0,cidr:0.0.0.0/1,cidr:0.0.0.0/2,cidr:0.0.0.0/3,cidr:0.0.0.0/4,cidr:10.0.0.0/7,cidr:10.0.0.0/8,cidr:10.128.0.0/9,cidr:10.192.0.0/10,cidr:10.224.0.0/11,cidr:10.240.0.0/12,cidr:10.240.0.0/13,cidr:10.244.0.0/14,cidr:10.244.0.0/15,cidr:10.244.0.0/16,cidr:10.244.0.0/17,cidr:10.244.0.0/18,cidr:10.244.0.0/19,cidr:10.244.0.0/20,cidr:10.244.0.0/21,cidr:10.244.0.0/22,cidr:10.244.2.0/23,cidr:10.244.2.0/24,cidr:10.244.2.0/25,cidr:10.244.2.0/26,cidr:10.244.2.0/27,cidr:10.244.2.0/28,cidr:10.244.2.8/29,cidr:10.244.2.8/30,cidr:10.244.2.8/31,cidr:10.244.2.9/32,cidr:8.0.0.0/5,cidr:8.0.0.0/6,reserved:world
            ipcache Primary 10.0.0.0/8 -> 16777217
            ipcache Primary 10.244.2.9/32 -> 256
            ipcache Primary 192.168.0.10/32 -> 1
        "#]],
    );
}

#[tokio::test]
async fn the_task_initializes_its_outputs_once_its_inputs_are_and_follows_changes() {
    let db = Db::new();
    let tables = DeriveTables::register(&db).expect("tables register");
    let mut txn = db.write_txn(&[&tables.objects]);
    let source = txn
        .register_initializer(&tables.objects, "manifests")
        .expect("initializer registers");
    txn.commit();
    let cancel = CancellationToken::new();
    let (derivation, task) = Derivation::spawn(
        db.clone(),
        tables.clone(),
        &DeriveConfig::default(),
        cancel.clone(),
    )
    .expect("spawns");
    let mut txn = db.write_txn(&[&tables.objects]);
    for object in parse(STARWARS_APP) {
        txn.insert(&tables.objects, StoredObject::new(object))
            .expect("inserted");
    }
    let read = txn.commit();
    derivation.wait_derived(&read).await;
    let read = db.read_txn();
    assert!(read.len(&tables.identities) > 0);
    assert!(
        !read.initialized(&tables.policy_entries),
        "objects are not initialized yet"
    );
    let (_, outputs_ready) = read.initialized_watch(&tables.ipcache);
    let mut txn = db.write_txn(&[&tables.objects]);
    txn.complete_initializer(&tables.objects, source)
        .expect("completes");
    txn.commit();
    outputs_ready.fired().await;
    let read = db.read_txn();
    for ready in [
        read.initialized(&tables.identities),
        read.initialized(&tables.ipcache),
        read.initialized(&tables.datapath_endpoints),
        read.initialized(&tables.policy_entries),
    ] {
        assert!(ready);
    }

    let mut txn = db.write_txn(&[&tables.endpoints]);
    txn.insert(&tables.endpoints, endpoint(1, Some("xwing")))
        .expect("inserted");
    let read = txn.commit();
    derivation.wait_derived(&read).await;
    let derived = derivation.derived();
    assert_eq!(derived.endpoints, read.revision(&tables.endpoints));
    let read = db.read_txn();
    let row = read
        .get(&tables.datapath_endpoints, &DATAPATH_ENDPOINT_ID, &1)
        .expect("derived");
    assert!(!row.object.identity.is_reserved());

    cancel.cancel();
    task.await.expect("the task ends on cancel");
}

/// After a restart the pods get the numbers the pinned ipcache held for their addresses, in
/// whatever order they are derived; a number nobody came back for is reused afterwards.
#[test]
fn restored_identities_come_back_for_the_same_addresses() {
    let db = Db::new();
    let tables = DeriveTables::register(&db).expect("tables register");
    let config = DeriveConfig {
        restored: vec![
            // xwing and tiefighter had swapped numbers; 300 belonged to a pod that is gone.
            (Ipv4Addr::new(10, 244, 1, 4), Identity(256)),
            (Ipv4Addr::new(10, 244, 1, 3), Identity(257)),
            (Ipv4Addr::new(10, 244, 1, 1), Identity(258)),
            (Ipv4Addr::new(10, 244, 1, 2), Identity(258)),
            (Ipv4Addr::new(10, 244, 1, 9), Identity(300)),
        ],
        ..DeriveConfig::default()
    };
    let mut f = Fixture {
        deriver: Deriver::new(db.clone(), tables.clone(), &config).expect("starts"),
        db,
        tables,
    };
    f.apply(STARWARS_APP);
    for (n, pod) in [
        "deathstar-c74d84667-cx5kp",
        "deathstar-c74d84667-t2lcz",
        "tiefighter",
        "xwing",
    ]
    .into_iter()
    .enumerate()
    {
        let n = u8::try_from(n + 1).expect("few pods");
        f.upsert_endpoint(endpoint(n, Some(pod)));
    }
    f.round();
    let ids: Vec<u32> = (1..=4).map(|id| f.identity_of_endpoint(id).0).collect();
    assert_eq!(ids, [258, 258, 257, 256]);
    f.apply(&pod_yaml("new", "{app: new}"));
    f.round();
    let txn = f.db.read_txn();
    let numbers: Vec<u32> = txn
        .all(&f.tables.identities)
        .map(|entry| entry.object.identity.0)
        .filter(|id| *id >= 256)
        .collect();
    assert_eq!(
        numbers,
        [256, 257, 258, 300],
        "the held 300 went back to the pool"
    );
}

/// After a restart a `toCIDR` prefix gets the node-local number the pinned ipcache held for
/// it, even when its policy comes back after another that names a new prefix; an FQDN or new
/// prefix never takes a held number.
#[test]
fn restored_prefix_identities_come_back_for_the_same_prefixes() {
    let db = Db::new();
    let tables = DeriveTables::register(&db).expect("tables register");
    let prefix = |text: &str| text.parse::<Cidr>().expect("a valid prefix");
    let config = DeriveConfig {
        restored_prefixes: vec![
            (prefix("10.0.0.0/8"), false, Identity(16_777_219)),
            (prefix("192.0.2.0/24"), false, Identity(16_777_220)),
        ],
        ..DeriveConfig::default()
    };
    let mut f = Fixture {
        deriver: Deriver::new(db.clone(), tables.clone(), &config).expect("starts"),
        db,
        tables,
    };
    f.apply(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: new-first}
spec:
  endpointSelector: {}
  egress:
  - toCIDR: [172.16.0.0/12]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: cidr}
spec:
  endpointSelector: {}
  egress:
  - toCIDR: [10.0.0.0/8]
",
    );
    f.round();
    let txn = f.db.read_txn();
    let ipcache: Vec<String> = txn
        .all(&f.tables.ipcache)
        .filter(|entry| entry.object.prefix.prefix_len() < 32)
        .map(|entry| format!("{} -> {}", entry.object.prefix, entry.object.identity.0))
        .collect();
    assert_eq!(
        ipcache,
        ["10.0.0.0/8 -> 16777219", "172.16.0.0/12 -> 16777217"],
        "the restored prefix kept its number, the new one skipped both held numbers"
    );
}

#[tokio::test(start_paused = true)]
async fn a_policy_change_hands_its_cause_to_the_policy_entries_it_writes() {
    let mut f = Fixture::starwars();
    let causes = f.deriver.causes.clone();
    let before = f.db.read_txn().revision(&f.tables.policy_entries);
    let since = tokio::time::Instant::now();
    tokio::time::advance(std::time::Duration::from_millis(5)).await;
    f.apply(XWING_EGRESS);
    let objects = f.db.read_txn().revision(&f.tables.objects);
    causes.objects.record(
        objects,
        Cause {
            span: tracing::Span::none(),
            since,
        },
    );
    let written = f.round();
    assert!(written.policy_entries.written > 0);
    let after = f.db.read_txn().revision(&f.tables.policy_entries);
    let handed = causes.policy_entries.take(before, after);
    assert_eq!(handed.len(), 1, "one derivation round, one cause");
    assert_eq!(
        handed[0].since, since,
        "the time the change began, not the round's"
    );
    assert!(
        causes.objects.take(0, objects).is_empty(),
        "taken by the round"
    );

    // A round with no cause (an endpoint's change) hands none on.
    f.upsert_endpoint(endpoint(5, Some("xwing")));
    f.round();
    let latest = f.db.read_txn().revision(&f.tables.policy_entries);
    assert!(causes.policy_entries.take(after, latest).is_empty());
}

/// Redirect entries carry the listener's port, and the proxy's view of the tables follows the
/// L7 rules, also when a policy change keeps the entry a redirect.
#[test]
fn l7_rules_follow_the_policy() {
    use policy::l7::{HttpRequest, L7Parser, L7Request};

    use crate::datapath::{POLICY_ENTRY_KEY, ProxyPorts, policy_entry_key};
    use crate::l7::{L7Tables, proxy_policy};

    const STARWARS_L7: &str =
        include_str!("../../../examples/starwars/policy-l7/sw_l3_l4_l7_policy.yaml");
    let config = DeriveConfig {
        proxy_ports: ProxyPorts::new([
            ((L7Parser::Http, Direction::Ingress), 10000),
            ((L7Parser::Http, Direction::Egress), 10001),
        ]),
        ..DeriveConfig::default()
    };
    let mut f = Fixture::with_config(&config);
    f.apply(STARWARS_APP);
    f.apply(STARWARS_L7);
    for (n, pod) in ["deathstar-c74d84667-cx5kp", "tiefighter", "xwing"]
        .into_iter()
        .enumerate()
    {
        let n = u8::try_from(n + 1).expect("few pods");
        f.upsert_endpoint(endpoint(n, Some(pod)));
    }
    f.round();
    let tables = L7Tables::from(&f.tables);
    let tiefighter = f.identity_of_endpoint(2);
    let key = policy::mapstate::Key::new(Direction::Ingress, tiefighter, PROTO_TCP, 80, 16);
    let entry =
        f.db.read_txn()
            .get(
                &f.tables.policy_entries,
                &POLICY_ENTRY_KEY,
                &policy_entry_key(1, &key),
            )
            .map(|e| (e.object.verdict, e.object.proxy_port));
    assert_eq!(entry, Some((Verdict::Redirect(L7Parser::Http), 10000)));

    let decide = |f: &Fixture, from: u8, method: &str, path: &str| {
        let txn = f.db.read_txn();
        let policy = proxy_policy(
            &txn,
            &tables,
            Direction::Ingress,
            Ipv4Addr::new(10, 244, 1, 1),
            Ipv4Addr::new(10, 244, 1, from),
            PROTO_TCP,
            80,
        )
        .expect("deathstar is a local endpoint");
        let request = L7Request::Http(HttpRequest {
            method,
            path,
            host: "deathstar",
            headers: &[],
        });
        format!("{method} {path} from {from}: {}", policy.allows(&request))
    };
    let show = |f: &Fixture| {
        [
            decide(f, 2, "POST", "/v1/request-landing"),
            decide(f, 2, "PUT", "/v1/exhaust-port"),
            decide(f, 3, "POST", "/v1/request-landing"),
        ]
        .join("\n")
    };
    expect![[r#"
        POST /v1/request-landing from 2: true
        PUT /v1/exhaust-port from 2: false
        POST /v1/request-landing from 3: false"#]]
    .assert_eq(&show(&f));

    // Same ports, peers and verdicts: only the rules behind the redirect change.
    f.apply(&STARWARS_L7.replace("/v1/request-landing", "/v1/exhaust-port"));
    let written = f.round();
    assert_eq!(
        (written.policy_entries.written, written.l7_rules.written),
        (0, 2),
        "only the L7 rows (for tiefighter and deathstar, both org=empire) are rewritten"
    );
    expect![[r#"
        POST /v1/request-landing from 2: false
        PUT /v1/exhaust-port from 2: false
        POST /v1/request-landing from 3: false"#]]
    .assert_eq(&show(&f));
}

/// What the DNS proxy learns becomes an identity for the address, carrying the `toFQDNs`
/// selectors its names match: mediabot may then reach api.github.com's address, and not
/// support.github.com's; forgetting the name takes the address's identity away again.
#[test]
fn dns_answers_give_addresses_the_identities_of_their_names() {
    let mut f = Fixture::new();
    f.apply(&pod_yaml("mediabot", "{class: mediabot}"));
    f.apply(
        "
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: fqdn}
spec:
  endpointSelector: {matchLabels: {class: mediabot}}
  egress:
  - toFQDNs: [{matchName: api.github.com}]
",
    );
    f.upsert_endpoint(endpoint(1, Some("mediabot")));
    f.round();
    let api = Ipv4Addr::new(140, 82, 121, 6);
    let support = Ipv4Addr::new(185, 199, 108, 133);
    let learn = |f: &mut Fixture, ip: Ipv4Addr, name: &str, learned: bool| {
        let mut txn = f.db.write_txn(&[&f.tables.fqdn_names]);
        let row = FqdnName::new(ip, name, u64::MAX);
        if learned {
            txn.insert(&f.tables.fqdn_names, row).expect("inserted");
        } else {
            txn.delete(&f.tables.fqdn_names, &row).expect("deleted");
        }
        txn.commit();
        f.round();
    };
    learn(&mut f, api, "API.GitHub.com.", true);
    learn(&mut f, support, "support.github.com", true);
    let identity_of = |f: &Fixture, ip: Ipv4Addr| {
        let txn = f.db.read_txn();
        txn.all(&f.tables.ipcache)
            .find(|e| e.object.prefix == Cidr::host(ip.into()))
            .map(|e| e.object.identity)
    };
    let api_id = identity_of(&f, api).expect("api.github.com's address has an identity");
    let support_id = identity_of(&f, support).expect("support.github.com's too");
    assert_ne!(api_id, support_id);
    let allowed: Vec<Identity> = f
        .entries(1)
        .into_iter()
        .filter(|((direction, ..), verdict)| {
            *direction == Direction::Egress && *verdict == Verdict::Allow
        })
        .map(|((_, peer, ..), _)| peer)
        .collect();
    assert!(allowed.contains(&api_id), "{allowed:?}");
    assert!(!allowed.contains(&support_id), "{allowed:?}");

    learn(&mut f, api, "api.github.com", false);
    assert_eq!(identity_of(&f, api), None);
    assert!(
        !f.entries(1).keys().any(|(_, peer, ..)| *peer == api_id),
        "no entry for the forgotten address's identity"
    );
}

#[test]
fn node_addresses_are_the_host_while_they_last() {
    use crate::node_addresses::NodeAddress;
    let mut f = Fixture::new();
    f.round();
    let added = Ipv4Addr::new(192, 0, 2, 77);
    let host_entry = |f: &Fixture| {
        f.show()
            .lines()
            .any(|l| l == "ipcache Primary 192.0.2.77/32 -> 1")
    };
    let write = |f: &mut Fixture, present: bool| {
        let mut txn = f.db.write_txn(&[&f.tables.node_addresses]);
        let row = NodeAddress { ipv4: added };
        if present {
            txn.insert(&f.tables.node_addresses, row).expect("inserted");
        } else {
            txn.delete(&f.tables.node_addresses, &row).expect("deleted");
        }
        txn.commit();
        f.round();
    };
    assert!(!host_entry(&f));
    write(&mut f, true);
    assert!(host_entry(&f), "{}", f.show());
    write(&mut f, false);
    assert!(!host_entry(&f), "{}", f.show());
}
