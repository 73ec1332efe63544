use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{IcmpRule, PortRule};
use crate::selector::LabelSelector;
use crate::serde_util::nullable;

/// An `ingress` (or `ingressDeny`) entry: peers it allows (denies) traffic from, on which ports.
/// The L3 fields are a union; `toPorts`/`icmps` narrow it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressRule {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub from_endpoints: Vec<LabelSelector>,
    /// Deprecated in Cilium 1.17: labels every peer must also carry.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub from_requires: Vec<LabelSelector>,
    #[serde(
        rename = "fromCIDR",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub from_cidr: Vec<String>,
    #[serde(
        rename = "fromCIDRSet",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub from_cidr_set: Vec<CidrRule>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub from_entities: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub from_groups: Vec<Groups>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub from_nodes: Vec<LabelSelector>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_ports: Vec<PortRule>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub icmps: Vec<IcmpRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// An `egress` (or `egressDeny`) entry: peers it allows (denies) traffic to, on which ports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EgressRule {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_endpoints: Vec<LabelSelector>,
    /// Deprecated in Cilium 1.17: labels every peer must also carry.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_requires: Vec<LabelSelector>,
    #[serde(
        rename = "toCIDR",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_cidr: Vec<String>,
    #[serde(
        rename = "toCIDRSet",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_cidr_set: Vec<CidrRule>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_entities: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_services: Vec<ToService>,
    #[serde(
        rename = "toFQDNs",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_fqdns: Vec<FqdnSelector>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_groups: Vec<Groups>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_nodes: Vec<LabelSelector>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub to_ports: Vec<PortRule>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub icmps: Vec<IcmpRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
}

/// An `ingressDeny` entry: the same shape as [`IngressRule`]; validation rejects the fields deny
/// rules do not support.
pub type IngressDenyRule = IngressRule;

/// An `egressDeny` entry: the same shape as [`EgressRule`]; validation rejects the fields deny
/// rules do not support.
pub type EgressDenyRule = EgressRule;

/// A `fromCIDRSet`/`toCIDRSet` entry: one of `cidr` (with optional `except` carve-outs),
/// `cidrGroupRef` or `cidrGroupSelector`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CidrRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_group_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_group_selector: Option<LabelSelector>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub except: Vec<String>,
}

/// A `toServices` entry: one of a service by name or services by label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToService {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_service: Option<K8sService>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_service_selector: Option<K8sServiceSelector>,
}

/// `k8sService`: a service by name; the namespace defaults to the policy's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct K8sService {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `k8sServiceSelector`: services whose labels match `selector`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct K8sServiceSelector {
    pub selector: LabelSelector,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A `toFQDNs` entry or a DNS L7 rule: exactly one of `matchName` and `matchPattern`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FqdnSelector {
    /// A literal DNS name, case-insensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_name: Option<String>,
    /// A name with `*` wildcards (`*.cilium.io`); `*` alone matches every name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_pattern: Option<String>,
}

/// `fromGroups`/`toGroups`: peers from a cloud provider's groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Groups {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsGroup>,
}

/// `aws`: EC2 instances by security group or tags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AwsGroup {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub security_groups_ids: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub security_groups_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// `authentication`: mutual authentication between the peers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// `disabled`, `required` or `test-always-fail`.
    pub mode: String,
}

impl IngressRule {
    /// Whether the rule names any peer (an L3 field is non-empty).
    pub fn has_peers(&self) -> bool {
        !(self.from_endpoints.is_empty()
            && self.from_cidr.is_empty()
            && self.from_cidr_set.is_empty()
            && self.from_entities.is_empty()
            && self.from_groups.is_empty()
            && self.from_nodes.is_empty())
    }
}

impl EgressRule {
    /// Whether the rule names any peer (an L3 field, `toFQDNs` included, is non-empty).
    pub fn has_peers(&self) -> bool {
        !(self.to_endpoints.is_empty()
            && self.to_cidr.is_empty()
            && self.to_cidr_set.is_empty()
            && self.to_entities.is_empty()
            && self.to_services.is_empty()
            && self.to_fqdns.is_empty()
            && self.to_groups.is_empty()
            && self.to_nodes.is_empty())
    }
}
