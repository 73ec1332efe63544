use std::collections::BTreeMap;

use crate::identity::Identity;
use crate::mapstate::{EntryChange, Key, Verdict};
use crate::rule::Direction;

/// What one engine operation changed: the entries the datapath must write or delete, per
/// subject identity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    pub entries: Vec<(Identity, EntryChange)>,
    pub enforcement: Vec<(Identity, Direction, bool)>,
    pub subjects_added: Vec<Identity>,
    pub subjects_removed: Vec<Identity>,
    pub identities_added: Vec<Identity>,
    pub identities_removed: Vec<Identity>,
}

/// Counters of the work done, for tests that prove incrementality and for benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Map states computed from scratch (a new local identity).
    pub subjects_computed: usize,
    pub contributions_added: usize,
    pub contributions_removed: usize,
    /// Selector-against-labels evaluations.
    pub selector_matches: usize,
    /// Resolved entries changed (after coalescing).
    pub entries_changed: usize,
}

impl Delta {
    pub(crate) fn record(&mut self, subject: Identity, changes: Vec<EntryChange>) {
        self.entries
            .extend(changes.into_iter().map(|c| (subject, c)));
    }

    /// Folds repeated changes of one entry into one (first old, last new) and drops those
    /// that end where they started.
    pub(crate) fn coalesce(&mut self) {
        let mut folded: BTreeMap<(Identity, Key), (Option<Verdict>, Option<Verdict>)> =
            BTreeMap::new();
        for (subject, change) in self.entries.drain(..) {
            folded
                .entry((subject, change.key))
                .and_modify(|(_, new)| *new = change.new)
                .or_insert((change.old, change.new));
        }
        self.entries = folded
            .into_iter()
            .filter(|(_, (old, new))| old != new)
            .map(|((subject, key), (old, new))| (subject, EntryChange { key, old, new }))
            .collect();
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.enforcement.is_empty()
            && self.subjects_added.is_empty()
            && self.subjects_removed.is_empty()
    }
}
