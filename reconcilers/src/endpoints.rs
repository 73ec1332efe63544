//! The `endpoints` table: the pods on this node, one per container, written by the agent as the
//! CNI plugin adds and deletes them. Later derivations (identity, ipcache, the datapath's endpoint
//! map) read it.

use std::net::Ipv4Addr;

use statedb::{Db, Index, KeySet, Table, TableSchema};

/// One pod interface on this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The runtime's container (sandbox) id, `CNI_CONTAINERID`.
    pub container_id: String,
    /// The node-local endpoint id (1..=65535), stable for the endpoint's life and across agent
    /// restarts: it is the first field of the endpoint's policy map keys.
    pub id: u16,
    /// `None` outside Kubernetes (no `K8S_POD_*` in `CNI_ARGS`).
    pub pod: Option<PodName>,
    /// Path of the pod's network namespace.
    pub netns: String,
    /// The interface name inside the pod, `CNI_IFNAME`.
    pub ifname: String,
    pub ipv4: Ipv4Addr,
    /// Known once the plugin reported the pod's veth.
    pub host: Option<HostLink>,
    pub state: EndpointState,
    /// The security identity of the pod's labels, once identities are derived.
    pub identity: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PodName {
    pub namespace: String,
    pub name: String,
}

/// The node-side end of the pod's veth pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostLink {
    pub ifindex: u32,
    pub ifname: String,
    pub mac: [u8; 6],
    /// The pod interface's MAC address.
    pub container_mac: [u8; 6],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EndpointState {
    /// Address allocated; the pod's interface is not wired up yet.
    WaitingForNetns,
    Ready,
}

pub const ENDPOINT_CONTAINER: Index<Endpoint, String> =
    Index::new("container", true, |e| KeySet::One(e.container_id.clone()));

/// Unique: IPAM never hands out one address twice.
/// Unique: ids are handed out once per endpoint.
pub const ENDPOINT_ID: Index<Endpoint, u16> = Index::new("id", true, |e| KeySet::One(e.id));

pub const ENDPOINT_IPV4: Index<Endpoint, Ipv4Addr> =
    Index::new("ipv4", true, |e| KeySet::One(e.ipv4));

pub const ENDPOINT_POD: Index<Endpoint, (String, String)> =
    Index::new("pod", false, |e| match &e.pod {
        Some(pod) => KeySet::One((pod.namespace.clone(), pod.name.clone())),
        None => KeySet::none(),
    });

pub fn register_endpoints_table(db: &Db) -> Result<Table<Endpoint>, statedb::Error> {
    db.register_table(
        TableSchema::new("endpoints", ENDPOINT_CONTAINER)
            .with_index(ENDPOINT_ID)
            .with_index(ENDPOINT_IPV4)
            .with_index(ENDPOINT_POD),
    )
}
