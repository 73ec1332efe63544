//! Filling in what the datapath does not know: pod names, namespaces, labels and workloads of
//! both ends, and the policies behind a verdict.
//!
//! Enrichment reads a [`Lookup`]. [`TableLookup`] is one built from a statedb read
//! transaction: a plain snapshot of hash maps, so enriching a flow never touches the database
//! and a new snapshot is taken only when the tables change.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use bpf::{Event, EventKind};
use reconcilers::datapath::{IdentityRow, PolicyCookie, PolicyRef};
use reconcilers::endpoints::{Endpoint, EndpointState};
use reconcilers::objects::StoredObject;
use schema::flow::{self, Flow, Policy, TrafficDirection, Verdict, Workload};
use schema::object::{Kind, Object};
use statedb::{ReadTxn, Table, Txn};

use crate::identity;

#[cfg(test)]
mod tests;

/// A local endpoint as flows show it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointInfo {
    pub id: u32,
    pub namespace: String,
    pub pod_name: String,
    pub workloads: Vec<Workload>,
    /// The host side of the pod's veth, where the datapath sees its packets.
    pub host_ifindex: u32,
    pub host_ifname: String,
}

/// What enrichment needs to know about the node's endpoints, identities and policies.
pub trait Lookup {
    /// The local endpoint that has this address.
    fn endpoint_by_ip(&self, ip: Ipv4Addr) -> Option<&EndpointInfo>;
    /// The sourced labels (`k8s:app=x`, `reserved:world`) of a security identity.
    fn identity_labels(&self, identity: u32) -> Option<&[String]>;
    /// The policies behind the policy map entry with this cookie (0: none known).
    fn policies(&self, cookie: u32) -> &[Policy];
}

/// Fills in both ends of `flow` (decoded from `event`) and, for policy verdicts, the policies
/// that allowed or denied it.
pub fn enrich(flow: &mut Flow, event: &Event, lookup: &impl Lookup) {
    let f = &event.flow;
    if let Some(source) = flow.source.as_mut() {
        endpoint(source, f.saddr, lookup);
    }
    if let Some(destination) = flow.destination.as_mut() {
        endpoint(destination, f.daddr, lookup);
    }
    if let Some(interface) = flow.interface.as_mut()
        && let Some(local) = lookup.endpoint_by_ip(match f.direction {
            bpf::Direction::Ingress => f.daddr,
            bpf::Direction::Egress => f.saddr,
        })
        && local.host_ifindex == interface.index
    {
        interface.name.clone_from(&local.host_ifname);
    }
    if let EventKind::PolicyVerdict { cookie, .. } = event.kind {
        let policies = lookup.policies(cookie);
        if !policies.is_empty() {
            let denied = flow.verdict == i32::from(Verdict::Dropped);
            let ingress = flow.traffic_direction == i32::from(TrafficDirection::Ingress);
            let list = match (ingress, denied) {
                (true, false) => &mut flow.ingress_allowed_by,
                (true, true) => &mut flow.ingress_denied_by,
                (false, false) => &mut flow.egress_allowed_by,
                (false, true) => &mut flow.egress_denied_by,
            };
            list.extend_from_slice(policies);
        }
    }
}

pub(crate) fn endpoint(ep: &mut flow::Endpoint, ip: Ipv4Addr, lookup: &impl Lookup) {
    if let Some(info) = lookup.endpoint_by_ip(ip) {
        ep.id = info.id;
        ep.namespace.clone_from(&info.namespace);
        ep.pod_name.clone_from(&info.pod_name);
        ep.workloads.clone_from(&info.workloads);
    }
    if let Some(labels) = lookup.identity_labels(ep.identity) {
        ep.labels = labels.to_vec();
    }
}

/// The tables [`TableLookup`] reads.
#[derive(Clone, Debug)]
pub struct LookupTables {
    pub endpoints: Table<Endpoint>,
    pub identities: Table<IdentityRow>,
    pub objects: Table<StoredObject>,
    pub policy_cookies: Table<PolicyCookie>,
}

/// A snapshot of the tables for enrichment.
#[derive(Clone, Debug, Default)]
pub struct TableLookup {
    by_ip: HashMap<Ipv4Addr, Arc<EndpointInfo>>,
    labels: HashMap<u32, Vec<String>>,
    policies: HashMap<u32, Vec<Policy>>,
}

impl TableLookup {
    /// Reserved identities only.
    pub fn new() -> TableLookup {
        let mut lookup = TableLookup::default();
        for id in 1..=255 {
            if let Some(labels) = identity::reserved_labels(id) {
                lookup.labels.insert(id, labels);
            }
        }
        lookup
    }

    /// The endpoints, identities, pods and policy cookies as of `txn`.
    pub fn from_tables(txn: &ReadTxn, tables: &LookupTables) -> TableLookup {
        let mut lookup = TableLookup::new();
        for entry in txn.all(&tables.policy_cookies) {
            let row = &entry.object;
            lookup
                .policies
                .insert(row.cookie, row.policies.iter().map(flow_policy).collect());
        }
        for entry in txn.all(&tables.identities) {
            let row = &entry.object;
            lookup.labels.insert(
                row.identity.0,
                row.labels.iter().map(ToString::to_string).collect(),
            );
        }
        for entry in txn.all(&tables.endpoints) {
            let ep = &entry.object;
            if ep.state != EndpointState::Ready {
                continue;
            }
            let (namespace, pod_name) = ep
                .pod
                .as_ref()
                .map(|pod| (pod.namespace.clone(), pod.name.clone()))
                .unwrap_or_default();
            let workloads = txn
                .get(
                    &tables.objects,
                    &reconcilers::objects::OBJECT_KEY,
                    &(
                        Kind::Pod.as_str().to_owned(),
                        namespace.clone(),
                        pod_name.clone(),
                    ),
                )
                .map(|entry| workloads(&entry.object.object))
                .unwrap_or_default();
            let info = EndpointInfo {
                id: u32::from(ep.id),
                namespace,
                pod_name,
                workloads,
                host_ifindex: ep.host.as_ref().map_or(0, |h| h.ifindex),
                host_ifname: ep
                    .host
                    .as_ref()
                    .map(|h| h.ifname.clone())
                    .unwrap_or_default(),
            };
            lookup.by_ip.insert(ep.ipv4, Arc::new(info));
        }
        lookup
    }

    /// Adds or replaces an endpoint (tests, and sources other than the tables).
    pub fn insert_endpoint(&mut self, ip: Ipv4Addr, info: EndpointInfo) {
        self.by_ip.insert(ip, Arc::new(info));
    }

    pub fn insert_identity(&mut self, identity: u32, labels: Vec<String>) {
        self.labels.insert(identity, labels);
    }

    /// Names the policies behind a policy map cookie (tests, and sources other than the tables).
    pub fn insert_policies(&mut self, cookie: u32, policies: Vec<Policy>) {
        self.policies.insert(cookie, policies);
    }
}

impl Lookup for TableLookup {
    fn endpoint_by_ip(&self, ip: Ipv4Addr) -> Option<&EndpointInfo> {
        self.by_ip.get(&ip).map(AsRef::as_ref)
    }

    fn identity_labels(&self, identity: u32) -> Option<&[String]> {
        self.labels.get(&identity).map(Vec::as_slice)
    }

    fn policies(&self, cookie: u32) -> &[Policy] {
        if cookie == 0 {
            return &[];
        }
        self.policies.get(&cookie).map_or(&[], Vec::as_slice)
    }
}

/// A policy as Hubble names it, with the labels Cilium gives its rules.
fn flow_policy(policy: &PolicyRef) -> Policy {
    let mut labels = vec![format!(
        "k8s:io.cilium.k8s.policy.derived-from={}",
        policy.kind
    )];
    labels.push(format!("k8s:io.cilium.k8s.policy.name={}", policy.name));
    if !policy.namespace.is_empty() {
        labels.push(format!(
            "k8s:io.cilium.k8s.policy.namespace={}",
            policy.namespace
        ));
    }
    Policy {
        name: policy.name.clone(),
        namespace: policy.namespace.clone(),
        labels,
        revision: 0,
        kind: policy.kind.clone(),
    }
}

/// A pod's controllers as Hubble lists them: its owner references (kind and name).
fn workloads(object: &Object) -> Vec<Workload> {
    let Object::Pod(pod) = object else {
        return Vec::new();
    };
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .map(|owner| workload(&owner.kind, &owner.name))
        .collect()
}

/// A ReplicaSet named `<deployment>-<hash>` stands for its Deployment, as in Cilium.
fn workload(kind: &str, name: &str) -> Workload {
    if kind == "ReplicaSet"
        && let Some((deployment, hash)) = name.rsplit_once('-')
        && !deployment.is_empty()
        && !hash.is_empty()
        && hash.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return Workload {
            name: deployment.to_owned(),
            kind: "Deployment".to_owned(),
        };
    }
    Workload {
        name: name.to_owned(),
        kind: kind.to_owned(),
    }
}
