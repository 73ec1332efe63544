use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;

use super::names::{is_label_value, is_qualified_name};
use super::{Problem, Report};
use crate::labels::{Operator, Requirement, SelectorError};
use crate::path::FieldPath;
use crate::selector::LabelSelector;

/// How selector keys are written.
#[derive(Debug, Clone, Copy)]
enum Keys {
    /// Cilium policies: `[source:]key`.
    Sourced,
    /// Kubernetes objects: qualified names, no source.
    Kubernetes,
}

/// A Cilium policy selector: keys may carry a label source (`k8s:app`).
pub(super) fn cilium(report: &mut Report, path: &FieldPath, selector: &LabelSelector) {
    check(report, path, selector, Keys::Sourced);
}

/// A Kubernetes selector (NetworkPolicy `podSelector`, `namespaceSelector`).
pub(super) fn kubernetes(report: &mut Report, path: &FieldPath, selector: &meta::LabelSelector) {
    check(
        report,
        path,
        &LabelSelector::from(selector),
        Keys::Kubernetes,
    );
}

fn check(report: &mut Report, path: &FieldPath, selector: &LabelSelector, keys: Keys) {
    for (key, value) in &selector.match_labels {
        let entry = path.field("matchLabels").key(key);
        if let Some(problem) = key_problem(key, keys) {
            report.error(&entry, problem);
        }
        if !is_label_value(value) {
            report.error(&entry, Problem::LabelValue(value.clone()));
        }
    }
    for (index, expr) in selector.match_expressions.iter().enumerate() {
        let item = path.field("matchExpressions").index(index);
        if let Some(problem) = key_problem(&expr.key, keys) {
            report.error(&item.field("key"), problem);
        }
        match Operator::parse(&expr.operator, &expr.values) {
            Ok(_) => {}
            Err(err @ SelectorError::UnknownOperator(_)) => {
                report.error(&item.field("operator"), err.into());
            }
            Err(err) => report.error(&item.field("values"), err.into()),
        }
        for (i, value) in expr.values.iter().enumerate() {
            if !is_label_value(value) {
                let value_path = item.field("values").index(i);
                report.error(&value_path, Problem::LabelValue(value.clone()));
            }
        }
    }
}

fn key_problem(key: &str, keys: Keys) -> Option<Problem> {
    match keys {
        // Cilium validates `source.key` as a Kubernetes label key.
        Keys::Sourced => match Requirement::parse_key(key) {
            Err(err) => Some(SelectorError::from(err).into()),
            Ok((source, name)) if !is_qualified_name(&format!("{source}.{name}")) => {
                Some(Problem::LabelKey(key.to_owned()))
            }
            Ok(_) => None,
        },
        Keys::Kubernetes => (!is_qualified_name(key)).then(|| Problem::LabelKey(key.to_owned())),
    }
}
