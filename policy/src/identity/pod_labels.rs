use std::collections::BTreeMap;

use schema::labels::{Label, Labels, Source};

/// Label keys Cilium adds to every pod endpoint.
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const SERVICE_ACCOUNT: &str = "io.cilium.k8s.policy.serviceaccount";
pub const CLUSTER: &str = "io.cilium.k8s.policy.cluster";
/// Prefix of the keys that carry the pod's namespace labels.
pub const NAMESPACE_LABELS_PREFIX: &str = "io.cilium.k8s.namespace.labels.";
pub const DEFAULT_CLUSTER: &str = "default";
pub const DEFAULT_SERVICE_ACCOUNT: &str = "default";

/// Where a pod lives: what Cilium adds to its own labels to make its identity labels.
#[derive(Debug, Clone, Copy)]
pub struct PodContext<'a> {
    pub namespace: &'a str,
    pub namespace_labels: &'a BTreeMap<String, String>,
    pub service_account: &'a str,
    pub cluster: &'a str,
}

/// The security-relevant labels of a pod: its own labels minus those that differ between
/// replicas or carry no meaning for policy, plus namespace, service account, cluster and the
/// namespace's labels. Two replicas of a Deployment get the same set, hence one identity.
pub fn pod_identity_labels(pod_labels: &BTreeMap<String, String>, ctx: PodContext<'_>) -> Labels {
    let own = pod_labels
        .iter()
        .filter(|(key, _)| is_security_relevant(key))
        .map(|(key, value)| Label::new(Source::K8s, key.as_str(), value.as_str()));
    let namespace_labels = ctx.namespace_labels.iter().map(|(key, value)| {
        Label::new(
            Source::K8s,
            format!("{NAMESPACE_LABELS_PREFIX}{key}"),
            value.as_str(),
        )
    });
    let added = [
        Label::new(Source::K8s, POD_NAMESPACE, ctx.namespace),
        Label::new(Source::K8s, SERVICE_ACCOUNT, ctx.service_account),
        Label::new(Source::K8s, CLUSTER, ctx.cluster),
    ];
    own.chain(namespace_labels).chain(added).collect()
}

/// Cilium's default identity-relevant label filter: exclusions by key.
pub fn is_security_relevant(key: &str) -> bool {
    const EXACT: [&str; 5] = [
        "pod-template-generation",
        "pod-template-hash",
        "controller-revision-hash",
        "controller-uid",
        "etcd_node",
    ];
    let prefix = key.split_once('/').map_or("", |(prefix, _)| prefix);
    !(key.starts_with("io.kubernetes")
        || key.starts_with("annotation.")
        || prefix.ends_with("kubernetes.io")
        || prefix.ends_with("k8s.io")
        || EXACT.contains(&key))
}
