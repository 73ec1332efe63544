use std::fmt;

use super::{Label, LabelError};

/// A set of labels with at most one label per key, kept sorted by key.
///
/// Like Cilium's `labels.Labels` (a map keyed by the key alone), `k8s:app` and `container:app`
/// cannot both be present: inserting one replaces the other. That keeps selector matching
/// unambiguous: a key names at most one label.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels {
    sorted: Vec<Label>,
}

impl Labels {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list (`k8s:app=web,reserved:host`), the form [`Labels`] prints.
    /// Unprefixed labels are `unspec`; a later label replaces an earlier one with the same key.
    pub fn parse(text: &str) -> Result<Self, LabelError> {
        if text.is_empty() {
            return Ok(Self::new());
        }
        text.split(',').map(Label::parse).collect()
    }

    /// Adds `label`, returning the label it replaced (same key, any source).
    pub fn insert(&mut self, label: Label) -> Option<Label> {
        match self.position(&label.key) {
            Ok(i) => Some(std::mem::replace(&mut self.sorted[i], label)),
            Err(i) => {
                self.sorted.insert(i, label);
                None
            }
        }
    }

    /// Removes and returns the label with `key`.
    pub fn remove(&mut self, key: &str) -> Option<Label> {
        self.position(key).ok().map(|i| self.sorted.remove(i))
    }

    /// The label with `key`, whatever its source.
    pub fn get(&self, key: &str) -> Option<&Label> {
        self.position(key).ok().map(|i| &self.sorted[i])
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.sorted.iter()
    }

    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.sorted
            .binary_search_by(|label| label.key.as_str().cmp(key))
    }
}

impl FromIterator<Label> for Labels {
    fn from_iter<I: IntoIterator<Item = Label>>(iter: I) -> Self {
        let mut labels = Labels::new();
        labels.extend(iter);
        labels
    }
}

impl Extend<Label> for Labels {
    fn extend<I: IntoIterator<Item = Label>>(&mut self, iter: I) {
        for label in iter {
            self.insert(label);
        }
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, label) in self.sorted.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{label}")?;
        }
        Ok(())
    }
}
