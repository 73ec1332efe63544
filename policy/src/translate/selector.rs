use schema::labels::{Requirement, Source};
use schema::selector::{LabelSelector, LabelSelectorRequirement};

use crate::identity::{NAMESPACE_LABELS_PREFIX, POD_NAMESPACE};

/// Rewrites every key to carry its source, `default` where the user wrote none
/// (`org` -> `any:org`), as Cilium shows selectors in `cilium policy get`.
pub fn sourced(selector: &LabelSelector, default: Source) -> LabelSelector {
    map_keys(selector, |key| with_source(key, default))
}

/// The same selector with every key (of `matchLabels` and `matchExpressions`) rewritten.
fn map_keys(selector: &LabelSelector, key: impl Fn(&str) -> String) -> LabelSelector {
    LabelSelector {
        match_labels: selector
            .match_labels
            .iter()
            .map(|(k, v)| (key(k), v.clone()))
            .collect(),
        match_expressions: selector
            .match_expressions
            .iter()
            .map(|req| LabelSelectorRequirement {
                key: key(&req.key),
                operator: req.operator.clone(),
                values: req.values.clone(),
            })
            .collect(),
    }
}

pub(super) fn with_source(key: &str, default: Source) -> String {
    match Requirement::parse_key(key) {
        Ok((Source::Any, bare)) if !key.starts_with("any:") => format!("{default}:{bare}"),
        Ok((source, bare)) => format!("{source}:{bare}"),
        // Validation rejects such keys; keep them so the compiler reports them.
        Err(_) => key.to_owned(),
    }
}

fn bare_key(key: &str) -> Option<(Source, String)> {
    Requirement::parse_key(key).ok()
}

/// Every key of the selector with its source.
fn keys(selector: &LabelSelector) -> impl Iterator<Item = (Source, String)> + '_ {
    selector
        .match_labels
        .keys()
        .chain(selector.match_expressions.iter().map(|req| &req.key))
        .filter_map(|key| bare_key(key))
}

/// Whether a peer selector already says which namespaces it means (or names reserved
/// identities), in which case Cilium leaves it alone.
pub(super) fn constrains_namespace(selector: &LabelSelector) -> bool {
    keys(selector).any(|(source, key)| {
        key == POD_NAMESPACE
            || source == Source::Reserved
            || key.starts_with(NAMESPACE_LABELS_PREFIX)
    })
}

/// `k8s:io.kubernetes.pod.namespace=<namespace>`, replacing any namespace the user wrote.
pub(super) fn pin_namespace(selector: &mut LabelSelector, namespace: &str) {
    selector
        .match_labels
        .retain(|key, _| bare_key(key).is_none_or(|(_, bare)| bare != POD_NAMESPACE));
    selector
        .match_labels
        .insert(format!("k8s:{POD_NAMESPACE}"), namespace.to_owned());
}

/// `k8s:io.kubernetes.pod.namespace Exists`: any pod in any namespace.
pub(super) fn any_namespace(selector: &mut LabelSelector) {
    selector.match_expressions.push(LabelSelectorRequirement {
        key: format!("k8s:{POD_NAMESPACE}"),
        operator: "Exists".to_owned(),
        values: Vec::new(),
    });
}

/// A NetworkPolicy `namespaceSelector` as a selector over the pod's namespace labels.
pub(super) fn namespace_labels(selector: &LabelSelector) -> LabelSelector {
    map_keys(selector, |key| {
        format!("k8s:{NAMESPACE_LABELS_PREFIX}{key}")
    })
}

/// Both selectors at once.
pub(super) fn and(mut a: LabelSelector, b: LabelSelector) -> LabelSelector {
    a.match_labels.extend(b.match_labels);
    a.match_expressions.extend(b.match_expressions);
    a
}
