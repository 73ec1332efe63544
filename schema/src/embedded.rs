//! What `myelin up` made, so that `apply`, `exec`, `probe` and `down` (separate processes) find
//! it again: kept as JSON in the run directory.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// One embedded node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    /// Prefix of every namespace, pin directory and container id it made.
    pub name: String,
    pub pod_cidr: String,
    /// The node's network namespace (a name under /run/netns): the agent and the pods' host
    /// veths live there, so the machine's own namespace is never touched.
    pub node_netns: String,
    pub agent_pid: u32,
    /// bpffs directory of the agent's pinned maps and links.
    pub pin_dir: String,
    /// Pods by `namespace/name`.
    #[serde(default)]
    pub pods: BTreeMap<String, PodRecord>,
    /// Service selectors by `namespace/name`: each pod's /etc/hosts names a service after its
    /// first ready backend, since there is no service load balancer yet.
    #[serde(default)]
    pub services: BTreeMap<String, BTreeMap<String, String>>,
    /// Whether the agent keeps flows and serves Hubble's API (`myelin up --hubble false`
    /// turns it off, for measuring what observability costs).
    #[serde(default = "enabled")]
    pub hubble: bool,
    /// Where the pods' built-in DNS sends the names it does not own (`myelin up
    /// --dns-upstream`), as CoreDNS forwards to the node's resolver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_upstream: Option<String>,
}

fn enabled() -> bool {
    true
}

/// One pod turned into a network namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRecord {
    /// Its network namespace, a name under /run/netns.
    pub netns: String,
    /// The container id the CNI plugin was called with.
    pub container_id: String,
    pub ipv4: Ipv4Addr,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The processes serving it: containers' own commands, and the built-in server for the
    /// ports of containers without a command this machine can run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<u32>,
}
