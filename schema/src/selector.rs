//! The wire form of a label selector (`matchLabels`, `matchExpressions`), shared by
//! CiliumNetworkPolicy and converted from Kubernetes' own `LabelSelector`.
//!
//! It keeps what the user wrote; [`crate::labels::Selector`] is the parsed model that matches.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde::{Deserialize, Serialize};

use crate::serde_util::nullable;

/// `{matchLabels, matchExpressions}`; empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One `matchExpressions` item, unchecked (see [`crate::labels::Operator::parse`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
}

impl LabelSelector {
    /// Whether it has no `matchLabels` and no `matchExpressions` (selects everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

impl From<&meta::LabelSelector> for LabelSelector {
    fn from(selector: &meta::LabelSelector) -> Self {
        Self {
            match_labels: selector.match_labels.clone().unwrap_or_default(),
            match_expressions: selector
                .match_expressions
                .iter()
                .flatten()
                .map(|req| LabelSelectorRequirement {
                    key: req.key.clone(),
                    operator: req.operator.clone(),
                    values: req.values.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl From<meta::LabelSelector> for LabelSelector {
    fn from(selector: meta::LabelSelector) -> Self {
        Self::from(&selector)
    }
}
