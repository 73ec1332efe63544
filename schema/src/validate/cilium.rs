use super::report::Context;
use super::{Problem, Report, peers, selector};
use crate::cilium::Rule;
use crate::path::FieldPath;

/// Checks `spec` and `specs` of a Cilium policy.
pub(super) fn rules(report: &mut Report, spec: Option<&Rule>, specs: &[Rule], clusterwide: bool) {
    let root = FieldPath::root();
    if spec.is_none() && specs.is_empty() {
        report.error(&root.field("spec"), Problem::NoRules);
    }
    if let Some(spec) = spec {
        rule(report, &root.field("spec"), spec, clusterwide);
    }
    for (index, spec) in specs.iter().enumerate() {
        rule(report, &root.field("specs").index(index), spec, clusterwide);
    }
}

fn rule(report: &mut Report, path: &FieldPath, rule: &Rule, clusterwide: bool) {
    match (&rule.endpoint_selector, &rule.node_selector) {
        (None, None) => report.error(path, Problem::NoSubject),
        (Some(_), Some(_)) => report.error(path, Problem::BothSubjects),
        _ => {}
    }
    if let Some(endpoints) = &rule.endpoint_selector {
        selector::cilium(report, &path.field("endpointSelector"), endpoints);
    }
    if let Some(nodes) = &rule.node_selector {
        let nodes_path = path.field("nodeSelector");
        if !clusterwide {
            report.error(&nodes_path, Problem::ClusterwideOnly);
        }
        selector::cilium(report, &nodes_path, nodes);
    }

    let host = rule.node_selector.is_some();
    let context = |ingress, deny| Context {
        deny,
        ingress,
        host,
    };
    for (index, ingress) in rule.ingress.iter().enumerate() {
        let ingress_path = path.field("ingress").index(index);
        peers::ingress(report, &ingress_path, ingress, context(true, false));
    }
    for (index, ingress) in rule.ingress_deny.iter().enumerate() {
        let ingress_path = path.field("ingressDeny").index(index);
        peers::ingress(report, &ingress_path, ingress, context(true, true));
    }
    for (index, egress) in rule.egress.iter().enumerate() {
        let egress_path = path.field("egress").index(index);
        peers::egress(report, &egress_path, egress, context(false, false));
    }
    for (index, egress) in rule.egress_deny.iter().enumerate() {
        let egress_path = path.field("egressDeny").index(index);
        peers::egress(report, &egress_path, egress, context(false, true));
    }
}
