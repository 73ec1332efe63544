use serde::{Deserialize, Serialize};

use super::{EgressRule, IngressRule};
use crate::labels::Label;
use crate::selector::LabelSelector;
use crate::serde_util::nullable;

/// One policy rule: the endpoints it applies to and what they may send and receive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// The pods this rule applies to. Exactly one of this and `node_selector` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_selector: Option<LabelSelector>,
    /// The nodes this rule applies to (host firewall; CiliumClusterwideNetworkPolicy only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<LabelSelector>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ingress: Vec<IngressRule>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ingress_deny: Vec<IngressRule>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub egress: Vec<EgressRule>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub egress_deny: Vec<EgressRule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_default_deny: Option<DefaultDeny>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub labels: Vec<Label>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogConfig>,
}

/// `enableDefaultDeny`: whether a direction this rule touches becomes default-deny (unset
/// means yes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultDeny {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress: Option<bool>,
}

/// `log`: a value copied into policy verdict logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

impl Rule {
    /// Whether the rule touches ingress (has `ingress` or `ingressDeny` entries).
    pub fn touches_ingress(&self) -> bool {
        !self.ingress.is_empty() || !self.ingress_deny.is_empty()
    }

    /// Whether the rule touches egress (has `egress` or `egressDeny` entries).
    pub fn touches_egress(&self) -> bool {
        !self.egress.is_empty() || !self.egress_deny.is_empty()
    }
}
