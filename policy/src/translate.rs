//! Kubernetes NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy into one
//! rule model: Cilium's `api.Rule` after the agent's own rewriting, which is also what
//! `myelin policy get` prints.
//!
//! After translation every selector key carries its source (`any:org`,
//! `k8s:io.kubernetes.pod.namespace`) and every namespace restriction is explicit, so the
//! compiler never needs to know which kind of object a rule came from, except for one Myelin
//! decision: CIDR peers of a NetworkPolicy also match pod addresses ([`Origin::cidr_matches_pods`]).

mod cilium;
mod network_policy;
mod selector;

use std::fmt;
use std::sync::Arc;

use schema::cilium::Rule;
use schema::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schema::labels::{Label, Source};
use schema::object::{DEFAULT_NAMESPACE, Kind, Object};

pub use cilium::{clusterwide_network_policy, network_policy as cilium_network_policy};
pub use network_policy::network_policy;
pub use selector::sourced;

pub const DERIVED_FROM: &str = "io.cilium.k8s.policy.derived-from";
pub const POLICY_NAME: &str = "io.cilium.k8s.policy.name";
pub const POLICY_NAMESPACE: &str = "io.cilium.k8s.policy.namespace";
pub const POLICY_UID: &str = "io.cilium.k8s.policy.uid";

/// The object a rule came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Origin {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

/// One translated rule with the paths of its parts in the object the user wrote, so that a
/// verdict can name `spec.ingress[0]` rather than an index into generated rules.
#[derive(Debug, Clone, PartialEq)]
pub struct TranslatedRule {
    pub origin: Arc<Origin>,
    pub rule: Rule,
    /// Where the rule itself is (`spec`, `specs[1]`).
    pub path: String,
    pub ingress_paths: Vec<String>,
    pub ingress_deny_paths: Vec<String>,
    pub egress_paths: Vec<String>,
    pub egress_deny_paths: Vec<String>,
}

impl Origin {
    /// The object a rule comes from; a namespaced kind without a namespace is in `default`,
    /// as `kubectl apply` would put it.
    pub fn of(kind: Kind, metadata: &ObjectMeta) -> Self {
        let namespace = kind.is_namespaced().then(|| {
            metadata
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
        });
        Self {
            kind,
            namespace,
            name: metadata.name.clone().unwrap_or_default(),
        }
    }

    /// Myelin's decision (SEMANTICS.md): a NetworkPolicy `ipBlock` matches every address in the
    /// block, pod addresses included; Cilium's own CIDR rules never select cluster endpoints.
    pub fn cidr_matches_pods(&self) -> bool {
        self.kind == Kind::NetworkPolicy
    }

    /// The labels Cilium gives a rule it derived from this object.
    pub fn rule_labels(&self, uid: Option<&str>) -> Vec<Label> {
        let mut labels = vec![
            Label::new(Source::K8s, DERIVED_FROM, self.kind.as_str()),
            Label::new(Source::K8s, POLICY_NAME, self.name.as_str()),
        ];
        if let Some(namespace) = &self.namespace {
            labels.push(Label::new(
                Source::K8s,
                POLICY_NAMESPACE,
                namespace.as_str(),
            ));
        }
        if let Some(uid) = uid {
            labels.push(Label::new(Source::K8s, POLICY_UID, uid));
        }
        labels
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

impl TranslatedRule {
    fn new(origin: Arc<Origin>, rule: Rule, path: String) -> Self {
        let paths = |dir: &str, n: usize| (0..n).map(|i| format!("{path}.{dir}[{i}]")).collect();
        Self {
            ingress_paths: paths("ingress", rule.ingress.len()),
            ingress_deny_paths: paths("ingressDeny", rule.ingress_deny.len()),
            egress_paths: paths("egress", rule.egress.len()),
            egress_deny_paths: paths("egressDeny", rule.egress_deny.len()),
            origin,
            rule,
            path,
        }
    }
}

/// The rules of any policy object; `None` for objects that are not policies.
pub fn object(object: &Object) -> Option<Vec<TranslatedRule>> {
    match object {
        Object::NetworkPolicy(np) => Some(network_policy(np)),
        Object::CiliumNetworkPolicy(cnp) => Some(cilium_network_policy(cnp)),
        Object::CiliumClusterwideNetworkPolicy(ccnp) => Some(clusterwide_network_policy(ccnp)),
        Object::Namespace(_) | Object::Pod(_) | Object::Service(_) => None,
    }
}

#[cfg(test)]
mod tests;
