use std::collections::BTreeSet;
use std::fmt;

use super::label::split_source;
use super::{LabelError, Labels, Source};
use crate::selector::LabelSelector;

/// A parsed label selector: every requirement must hold. No requirements selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// One condition on the label with `key` from a matching source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Requirement {
    /// `Any` matches a label of any source.
    pub source: Source,
    pub key: String,
    pub operator: Operator,
}

/// What a [`Requirement`] asks of the label's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// The label exists and its value is one of these.
    In(BTreeSet<String>),
    /// The label is absent or its value is none of these.
    NotIn(BTreeSet<String>),
    Exists,
    DoesNotExist,
}

/// Why a `matchLabels` entry or `matchExpressions` item is not a requirement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error(transparent)]
    Key(#[from] LabelError),
    #[error("{0:?} is not one of In, NotIn, Exists, DoesNotExist")]
    UnknownOperator(String),
    #[error("values must be non-empty for operator {0}")]
    MissingValues(&'static str),
    #[error("values must be empty for operator {0}")]
    UnexpectedValues(&'static str),
}

impl Selector {
    /// The selector that matches every label set.
    pub fn everything() -> Self {
        Self::default()
    }

    /// A selector requiring all of `requirements` (kept sorted, duplicates dropped).
    pub fn new(requirements: impl IntoIterator<Item = Requirement>) -> Self {
        let mut requirements: Vec<_> = requirements.into_iter().collect();
        requirements.sort();
        requirements.dedup();
        Self { requirements }
    }

    /// Parses a policy selector. Keys may carry a source (`k8s:app`); without one they are
    /// `any`. Fails on the first invalid entry; [`crate::validate`] reports all of them.
    pub fn from_label_selector(selector: &LabelSelector) -> Result<Self, SelectorError> {
        let labels = selector
            .match_labels
            .iter()
            .map(|(key, value)| Requirement::new(key, "In", std::slice::from_ref(value)));
        let expressions = selector
            .match_expressions
            .iter()
            .map(|expr| Requirement::new(&expr.key, &expr.operator, &expr.values));
        labels
            .chain(expressions)
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether this is the match-everything selector.
    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|req| req.matches(labels))
    }
}

impl Requirement {
    /// Builds a requirement from a selector key (`[source:]key`), an operator name and values.
    pub fn new(key: &str, operator: &str, values: &[String]) -> Result<Self, SelectorError> {
        let (source, key) = Self::parse_key(key)?;
        let operator = Operator::parse(operator, values)?;
        Ok(Self {
            source,
            key,
            operator,
        })
    }

    /// Splits a selector key into source and key; unprefixed keys are `any`.
    pub fn parse_key(text: &str) -> Result<(Source, String), LabelError> {
        let (source, key) = split_source(text, Source::Any)?;
        if key.is_empty() {
            return Err(LabelError::EmptyKey {
                text: text.to_owned(),
            });
        }
        Ok((source, key.to_owned()))
    }

    /// Whether `labels` satisfy this requirement. The label is looked up by key; a label of a
    /// source this requirement does not select counts as absent.
    pub fn matches(&self, labels: &Labels) -> bool {
        let found = labels
            .get(&self.key)
            .filter(|label| self.source.selects(label.source));
        match &self.operator {
            Operator::In(values) => found.is_some_and(|label| values.contains(&label.value)),
            Operator::NotIn(values) => !found.is_some_and(|label| values.contains(&label.value)),
            Operator::Exists => found.is_some(),
            Operator::DoesNotExist => found.is_none(),
        }
    }
}

impl Operator {
    /// Parses a `matchExpressions` operator with its values, checking that `In`/`NotIn` have
    /// values and `Exists`/`DoesNotExist` have none.
    pub fn parse(operator: &str, values: &[String]) -> Result<Self, SelectorError> {
        let set = || values.iter().cloned().collect::<BTreeSet<_>>();
        match (operator, values.is_empty()) {
            ("In", false) => Ok(Operator::In(set())),
            ("NotIn", false) => Ok(Operator::NotIn(set())),
            ("Exists", true) => Ok(Operator::Exists),
            ("DoesNotExist", true) => Ok(Operator::DoesNotExist),
            ("In", true) => Err(SelectorError::MissingValues("In")),
            ("NotIn", true) => Err(SelectorError::MissingValues("NotIn")),
            ("Exists", false) => Err(SelectorError::UnexpectedValues("Exists")),
            ("DoesNotExist", false) => Err(SelectorError::UnexpectedValues("DoesNotExist")),
            (other, _) => Err(SelectorError::UnknownOperator(other.to_owned())),
        }
    }
}

/// Kubernetes selector syntax with sources: `any:org=empire,k8s:tier in (a,b),!any:x`.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, req) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{req}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = format!("{}:{}", self.source, self.key);
        let join = |values: &BTreeSet<String>| values.iter().cloned().collect::<Vec<_>>().join(",");
        match &self.operator {
            Operator::In(values) if values.len() == 1 => write!(f, "{key}={}", join(values)),
            Operator::In(values) => write!(f, "{key} in ({})", join(values)),
            Operator::NotIn(values) => write!(f, "{key} notin ({})", join(values)),
            Operator::Exists => f.write_str(&key),
            Operator::DoesNotExist => write!(f, "!{key}"),
        }
    }
}
