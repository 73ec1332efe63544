use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{FqdnSelector, Secret};
use crate::serde_util::nullable;

/// `toPorts[].rules`: L7 rules of exactly one protocol. A list that is present (even empty)
/// counts as that protocol being chosen, as in Cilium.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct L7Rules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Vec<HttpRule>>,
    /// Parsed so that policies carrying it load; Myelin does not enforce Kafka rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<Vec<KafkaRule>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Vec<DnsRule>>,
    /// A proxylib parser name; not supported by Myelin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l7proto: Option<String>,
    /// Generic key-value rules for `l7proto`; not supported by Myelin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l7: Option<Vec<BTreeMap<String, String>>>,
}

/// An HTTP rule. `method`, `path` and `host` are regular expressions matched against the whole
/// value; a request is allowed when it matches every field that is set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `"Name"` (present) or `"Name: value"` (present with exactly this value).
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub header_matches: Vec<HeaderMatch>,
}

/// A `headerMatches` entry: header `name` must equal `value` (or the secret's value).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderMatch {
    /// What to do on mismatch instead of denying: LOG, ADD, DELETE or REPLACE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A Kafka rule (deprecated upstream, not enforced by Myelin).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KafkaRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(rename = "clientID", default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// A DNS rule: which query names the DNS proxy lets through.
pub type DnsRule = FqdnSelector;

impl L7Rules {
    /// Whether no L7 protocol is chosen: no `http`, `kafka`, `dns` or `l7` list is present
    /// (Cilium's `IsEmpty`; a present empty list counts as chosen).
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.kafka.is_none() && self.dns.is_none() && self.l7.is_none()
    }
}
