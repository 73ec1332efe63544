//! The requests and answers of the `myelin` CLI: applying manifests and reading what the agent
//! derived and what its datapath holds.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Manifest text (YAML or JSON, possibly several documents), parsed by the agent exactly as
/// `myelin policy validate` parses files.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Names the text in errors, usually its path.
    pub source: String,
    pub text: String,
    /// Answer only once the change is enforced in the kernel (derived and written to every
    /// map), not as soon as it is stored.
    #[serde(default)]
    pub wait: bool,
    /// The W3C trace context (`00-<trace id>-<span id>-<flags>`) of the client's span, so the
    /// agent's spans for this change continue the client's trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// One result per document, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub results: Vec<ObjectResult>,
}

/// What happened to one object, named as kubectl names it (`ciliumnetworkpolicy.cilium.io/rule1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectResult {
    /// `pod`, `networkpolicy.networking.k8s.io`, `ciliumnetworkpolicy.cilium.io`, ...; empty
    /// when the document could not be read at all.
    #[serde(default)]
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
    pub action: ObjectAction,
    /// Why the object was rejected, one problem per entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObjectAction {
    Created,
    Configured,
    Unchanged,
    Deleted,
    NotFound,
    /// Rejected; nothing else in the manifest is affected.
    Invalid,
}

impl ObjectAction {
    /// The word kubectl prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectAction::Created => "created",
            ObjectAction::Configured => "configured",
            ObjectAction::Unchanged => "unchanged",
            ObjectAction::Deleted => "deleted",
            ObjectAction::NotFound => "not found",
            ObjectAction::Invalid => "invalid",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointList {
    pub endpoints: Vec<EndpointRow>,
}

/// One endpoint as `cilium endpoint list` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRow {
    pub id: u16,
    pub container_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<super::PodRef>,
    pub netns: String,
    pub ingress_enforcement: bool,
    pub egress_enforcement: bool,
    /// Absent until the endpoint is ready and its identity derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<u32>,
    /// The identity's labels, `k8s:app=x`, sorted.
    pub labels: Vec<String>,
    pub ipv4: Ipv4Addr,
    /// `ready`, `waiting-for-identity`, `waiting-for-netns`, `regenerating` or `not-ready: ...`.
    pub status: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityList {
    pub identities: Vec<IdentityRow>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityRow {
    pub id: u32,
    pub labels: Vec<String>,
}

/// The translated rules of every stored policy, `cilium policy get`'s JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRules {
    pub rules: serde_json::Value,
    /// The derivation's input revision these rules are at.
    pub revision: u64,
}

impl Eq for PolicyRules {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BpfPolicyGet {
    pub endpoint: u16,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BpfPolicy {
    pub endpoint: u16,
    pub entries: Vec<BpfPolicyEntry>,
}

/// One entry of the kernel's policy map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BpfPolicyEntry {
    /// `Ingress` or `Egress`.
    pub direction: String,
    /// 0 = any peer.
    pub identity: u32,
    /// The peer identity's labels (`reserved:unknown` for 0).
    pub labels: Vec<String>,
    /// `ANY`, `TCP`, `80/TCP`, `8000-8003/TCP` (a port prefix).
    pub port_protocol: String,
    /// `allow`, `deny` or `redirect`.
    pub verdict: String,
    pub proxy_port: u16,
}

/// One reconciler's health, for `myelin status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcilerHealth {
    pub name: String,
    /// `ok` or `degraded`.
    pub state: String,
    /// The keys that failed and why, for a degraded one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
}
