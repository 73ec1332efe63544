//! What the CLI reads: endpoints, identities, policies and the kernel's policy map, rendered
//! from the tables (and, for `bpf policy get`, from the pinned map itself).

use std::sync::Arc;

use bpf::maps::Direction as BpfDirection;
use bpf::maps::policy::{L4, PolicyKey, PolicyValue, Verdict as BpfVerdict};
use policy::rule::Direction;
use reconcilers::datapath::{
    DATAPATH_ENDPOINT_ID, DatapathEndpoint, IDENTITY_ID, IdentityRow as IdentityEntry,
};
use reconcilers::endpoints::{ENDPOINT_ID, Endpoint, EndpointState};
use reconcilers::objects::StoredObject;
use reconcilers::status::StatusKind;
use schema::agent_api::{
    BpfPolicy, BpfPolicyEntry, EndpointList, EndpointRow, IdentityList, IdentityRow, PodRef,
    PolicyRules,
};
use statedb::{ReadTxn, Table, Txn};

/// The tables the views read.
pub(crate) struct Tables {
    pub(crate) objects: Table<StoredObject>,
    pub(crate) endpoints: Table<Endpoint>,
    pub(crate) identities: Table<IdentityEntry>,
    pub(crate) datapath_endpoints: Table<DatapathEndpoint>,
}

impl Tables {
    pub(crate) fn endpoint_list(&self, txn: &ReadTxn) -> EndpointList {
        let endpoints = txn
            .all(&self.endpoints)
            .map(|entry| {
                let endpoint = &entry.object;
                let datapath = txn
                    .get(
                        &self.datapath_endpoints,
                        &DATAPATH_ENDPOINT_ID,
                        &endpoint.id,
                    )
                    .map(|e| Arc::clone(&e.object));
                let identity = datapath.as_ref().map(|d| d.identity.0);
                EndpointRow {
                    id: endpoint.id,
                    container_id: endpoint.container_id.clone(),
                    pod: endpoint.pod.as_ref().map(|pod| PodRef {
                        namespace: pod.namespace.clone(),
                        name: pod.name.clone(),
                    }),
                    netns: endpoint.netns.clone(),
                    ingress_enforcement: datapath
                        .as_ref()
                        .is_some_and(|d| d.enforces(Direction::Ingress)),
                    egress_enforcement: datapath
                        .as_ref()
                        .is_some_and(|d| d.enforces(Direction::Egress)),
                    identity,
                    labels: identity.map(|id| self.labels(txn, id)).unwrap_or_default(),
                    ipv4: endpoint.ipv4,
                    status: endpoint_status(endpoint, datapath.as_deref()),
                }
            })
            .collect();
        EndpointList { endpoints }
    }

    pub(crate) fn identity_list(&self, txn: &ReadTxn) -> IdentityList {
        IdentityList {
            identities: txn
                .all(&self.identities)
                .map(|entry| IdentityRow {
                    id: entry.object.identity.0,
                    labels: sorted_labels(&entry.object),
                })
                .collect(),
        }
    }

    pub(crate) fn policy_rules(&self, txn: &ReadTxn) -> PolicyRules {
        let rules: Vec<schema::cilium::Rule> = txn
            .all(&self.objects)
            .filter_map(|entry| policy::translate::object(&entry.object.object))
            .flatten()
            .map(|translated| translated.rule)
            .collect();
        PolicyRules {
            rules: serde_json::to_value(&rules)
                .expect("invariant: rules have string keys and no fallible serializers"),
            revision: txn.revision(&self.objects),
        }
    }

    /// `entries` is the whole kernel map; those of `endpoint` are shown, with peer labels.
    pub(crate) fn bpf_policy(
        &self,
        txn: &ReadTxn,
        endpoint: u16,
        entries: Vec<(PolicyKey, PolicyValue)>,
    ) -> BpfPolicy {
        let mut rows: Vec<(PolicyKey, BpfPolicyEntry)> = entries
            .into_iter()
            .filter(|(key, _)| key.endpoint_id == u32::from(endpoint))
            .map(|(key, value)| {
                let (verdict, proxy_port) = match value.verdict {
                    BpfVerdict::Allow => ("allow", 0),
                    BpfVerdict::Deny => ("deny", 0),
                    BpfVerdict::Redirect { proxy_port } => ("redirect", proxy_port),
                };
                let labels = if key.identity == 0 {
                    vec!["reserved:unknown".to_owned()]
                } else {
                    self.labels(txn, key.identity)
                };
                let row = BpfPolicyEntry {
                    direction: match key.direction {
                        BpfDirection::Ingress => "Ingress",
                        BpfDirection::Egress => "Egress",
                    }
                    .to_owned(),
                    identity: key.identity,
                    labels,
                    port_protocol: port_protocol(key.l4),
                    verdict: verdict.to_owned(),
                    proxy_port,
                };
                (key, row)
            })
            .collect();
        rows.sort_by_key(|(key, _)| *key);
        BpfPolicy {
            endpoint,
            entries: rows.into_iter().map(|(_, row)| row).collect(),
        }
    }

    pub(crate) fn has_endpoint(&self, txn: &ReadTxn, endpoint: u16) -> bool {
        txn.get(&self.endpoints, &ENDPOINT_ID, &endpoint).is_some()
    }

    fn labels(&self, txn: &ReadTxn, identity: u32) -> Vec<String> {
        txn.get(&self.identities, &IDENTITY_ID, &identity)
            .map(|entry| sorted_labels(&entry.object))
            .unwrap_or_default()
    }
}

fn sorted_labels(identity: &IdentityEntry) -> Vec<String> {
    let mut labels: Vec<String> = identity.labels.iter().map(ToString::to_string).collect();
    labels.sort();
    labels
}

fn endpoint_status(endpoint: &Endpoint, datapath: Option<&DatapathEndpoint>) -> String {
    match (endpoint.state, datapath) {
        (EndpointState::WaitingForNetns, _) => "waiting-for-netns".to_owned(),
        (EndpointState::Ready, None) => "waiting-for-identity".to_owned(),
        (EndpointState::Ready, Some(d)) => match d.status.kind {
            StatusKind::Done => "ready".to_owned(),
            StatusKind::Pending => "regenerating".to_owned(),
            StatusKind::Error => format!(
                "not-ready: {}",
                d.status.error.as_deref().unwrap_or("unknown error")
            ),
        },
    }
}

/// `ANY`, `TCP`, `80/TCP`, `8000-8003/TCP`, as `cilium bpf policy get` writes them.
fn port_protocol(l4: L4) -> String {
    let proto = |p: u8| match p {
        L4::TCP => "TCP".to_owned(),
        L4::UDP => "UDP".to_owned(),
        L4::SCTP => "SCTP".to_owned(),
        L4::ICMP => "ICMP".to_owned(),
        other => other.to_string(),
    };
    match l4 {
        L4::Any => "ANY".to_owned(),
        L4::Proto(p) => proto(p),
        L4::Ports { proto: p, ports } => format!("{ports}/{}", proto(p)),
    }
}
