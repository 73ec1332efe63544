//! The per-label-values members of a metric family, shared by [`crate::CounterVec`] and
//! [`crate::HistogramVec`].

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

pub(crate) struct Children<T> {
    pub(crate) labels: &'static [&'static str],
    members: Mutex<BTreeMap<Vec<String>, T>>,
}

impl<T: Clone> Children<T> {
    pub(crate) fn new(labels: &'static [&'static str]) -> Children<T> {
        Children {
            labels,
            members: Mutex::new(BTreeMap::new()),
        }
    }

    /// The member for these label values, one per label name, in order (missing values are
    /// empty, extra ones ignored), made by `make` on first use.
    pub(crate) fn get(&self, values: &[&str], make: impl FnOnce() -> T) -> T {
        let key: Vec<String> = (0..self.labels.len())
            .map(|i| values.get(i).copied().unwrap_or_default().to_owned())
            .collect();
        self.members
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_insert_with(make)
            .clone()
    }

    /// Every member with its `(name, value)` labels, in label order; the lock is not held
    /// while `f` runs.
    pub(crate) fn each(&self, mut f: impl FnMut(&[(&str, &str)], &T)) {
        let members = self
            .members
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (values, member) in &members {
            let labels: Vec<(&str, &str)> = self
                .labels
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            f(&labels, member);
        }
    }
}
