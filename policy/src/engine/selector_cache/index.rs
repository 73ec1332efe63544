//! Postings that let the selector cache match only what can match: selectors filed under one
//! label they require, identities filed under every label they carry.
//!
//! The key of a requirement is looked up whatever its source; `matches` still decides, so
//! an index only has to return a superset of the true matches.

use std::collections::{BTreeSet, HashMap};

use schema::labels::{Labels, Operator, Selector};

use super::SelectorId;
use crate::identity::{CLUSTER, Identity, POD_NAMESPACE};

/// The label a selector is filed under: every label set it selects carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filing<'a> {
    /// A label with `key` and one of `values`.
    Value {
        key: &'a str,
        values: &'a BTreeSet<String>,
    },
    /// A label with `key`, any value.
    Key(&'a str),
    /// Nothing required (only `NotIn`/`DoesNotExist`, or no requirement): any label set.
    Everywhere,
}

/// Picks the requirement that narrows candidates most. Policies pin most selectors to a
/// namespace, so `In` on the pod namespace comes first; then `In` on other keys (fewest
/// values), then `Exists`; keys nearly every pod carries come last.
pub(crate) fn filing(selector: &Selector) -> Filing<'_> {
    let mut best: Option<((u8, usize), Filing<'_>)> = None;
    for req in selector.requirements() {
        let key = req.key.as_str();
        let ubiquitous = key == CLUSTER;
        let (rank, filing) = match &req.operator {
            Operator::In(values) if key == POD_NAMESPACE => {
                ((0, values.len()), Filing::Value { key, values })
            }
            Operator::In(values) if !ubiquitous => {
                ((1, values.len()), Filing::Value { key, values })
            }
            Operator::In(values) => ((3, values.len()), Filing::Value { key, values }),
            Operator::Exists if !ubiquitous && key != POD_NAMESPACE => ((2, 0), Filing::Key(key)),
            Operator::Exists => ((3, usize::MAX), Filing::Key(key)),
            Operator::NotIn(_) | Operator::DoesNotExist => continue,
        };
        if best.as_ref().is_none_or(|(r, _)| rank < *r) {
            best = Some((rank, filing));
        }
    }
    best.map_or(Filing::Everywhere, |(_, filing)| filing)
}

/// Selectors by the label they are filed under.
#[derive(Debug, Default)]
pub(crate) struct SelectorIndex {
    by_value: HashMap<String, HashMap<String, BTreeSet<SelectorId>>>,
    by_key: HashMap<String, BTreeSet<SelectorId>>,
    everywhere: BTreeSet<SelectorId>,
}

impl SelectorIndex {
    pub(crate) fn insert(&mut self, id: SelectorId, selector: &Selector) {
        match filing(selector) {
            Filing::Value { key, values } => {
                let by_value = self.by_value.entry(key.to_owned()).or_default();
                for value in values {
                    by_value.entry(value.clone()).or_default().insert(id);
                }
            }
            Filing::Key(key) => {
                self.by_key.entry(key.to_owned()).or_default().insert(id);
            }
            Filing::Everywhere => {
                self.everywhere.insert(id);
            }
        }
    }

    pub(crate) fn remove(&mut self, id: SelectorId, selector: &Selector) {
        match filing(selector) {
            Filing::Value { key, values } => {
                let Some(by_value) = self.by_value.get_mut(key) else {
                    return;
                };
                for value in values {
                    if let Some(ids) = by_value.get_mut(value.as_str()) {
                        ids.remove(&id);
                        if ids.is_empty() {
                            by_value.remove(value.as_str());
                        }
                    }
                }
                if by_value.is_empty() {
                    self.by_value.remove(key);
                }
            }
            Filing::Key(key) => {
                if let Some(ids) = self.by_key.get_mut(key) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        self.by_key.remove(key);
                    }
                }
            }
            Filing::Everywhere => {
                self.everywhere.remove(&id);
            }
        }
    }

    /// The selectors that may select `labels`, in id order: a superset of those that do.
    /// A selector is filed once and a label set has one label per key, so none repeats.
    pub(crate) fn candidates(&self, labels: &Labels) -> Vec<SelectorId> {
        let mut out: Vec<SelectorId> = self.everywhere.iter().copied().collect();
        for label in labels {
            if let Some(ids) = self
                .by_value
                .get(label.key.as_str())
                .and_then(|by_value| by_value.get(label.value.as_str()))
            {
                out.extend(ids);
            }
            if let Some(ids) = self.by_key.get(label.key.as_str()) {
                out.extend(ids);
            }
        }
        out.sort_unstable();
        out
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.by_value.is_empty() && self.by_key.is_empty() && self.everywhere.is_empty()
    }
}

/// Identities by every label they carry.
#[derive(Debug, Default)]
pub(crate) struct IdentityIndex {
    by_value: HashMap<String, HashMap<String, BTreeSet<Identity>>>,
    all: BTreeSet<Identity>,
}

impl IdentityIndex {
    pub(crate) fn insert(&mut self, identity: Identity, labels: &Labels) {
        self.all.insert(identity);
        for label in labels {
            self.by_value
                .entry(label.key.clone())
                .or_default()
                .entry(label.value.clone())
                .or_default()
                .insert(identity);
        }
    }

    pub(crate) fn remove(&mut self, identity: Identity, labels: &Labels) {
        self.all.remove(&identity);
        for label in labels {
            let Some(by_value) = self.by_value.get_mut(label.key.as_str()) else {
                continue;
            };
            if let Some(ids) = by_value.get_mut(label.value.as_str()) {
                ids.remove(&identity);
                if ids.is_empty() {
                    by_value.remove(label.value.as_str());
                }
            }
            if by_value.is_empty() {
                self.by_value.remove(label.key.as_str());
            }
        }
    }

    /// The identities `selector` may select: a superset of those it does. Unlike selectors,
    /// which are filed once under a label chosen without knowing the identities, this picks
    /// the `In` requirement with the fewest identities now: a selector pinned to a namespace
    /// and one pod label costs that pod's postings, not the whole namespace's.
    pub(crate) fn candidates(&self, selector: &Selector) -> BTreeSet<Identity> {
        let narrowest = selector
            .requirements()
            .iter()
            .filter_map(|req| match &req.operator {
                Operator::In(values) => {
                    let postings = self.postings(&req.key, values);
                    Some((
                        postings.clone().map(BTreeSet::len).sum::<usize>(),
                        req,
                        values,
                    ))
                }
                Operator::NotIn(_) | Operator::Exists | Operator::DoesNotExist => None,
            })
            .min_by_key(|(size, ..)| *size);
        if let Some((_, req, values)) = narrowest {
            return self.postings(&req.key, values).flatten().copied().collect();
        }
        match filing(selector) {
            Filing::Value { key, values } => {
                self.postings(key, values).flatten().copied().collect()
            }
            Filing::Key(key) => self
                .by_value
                .get(key)
                .into_iter()
                .flat_map(HashMap::values)
                .flatten()
                .copied()
                .collect(),
            Filing::Everywhere => self.all.clone(),
        }
    }

    /// The identity sets filed under `key` with one of `values`.
    fn postings<'s>(
        &'s self,
        key: &str,
        values: &'s BTreeSet<String>,
    ) -> impl Iterator<Item = &'s BTreeSet<Identity>> + Clone + 's {
        let by_value = self.by_value.get(key);
        values
            .iter()
            .filter_map(move |value| by_value.and_then(|by_value| by_value.get(value.as_str())))
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.by_value.is_empty() && self.all.is_empty()
    }
}
