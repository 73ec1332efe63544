use crate::identity::Identity;
use crate::mapstate::EntryChange;
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
    /// Selector-against-labels evaluations: the candidates the selector cache's index
    /// yields, each evaluated once.
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
    /// of entries that neither existed before nor exist after. An entry that ends with the
    /// verdict it started with stays: its deciding contributions changed, and with them the
    /// policies a flow names.
    pub(crate) fn coalesce(&mut self) {
        // A stable sort keeps each entry's changes in the order they happened.
        self.entries
            .sort_by_key(|(subject, change)| (*subject, change.key));
        let mut folded: Vec<(Identity, EntryChange)> = Vec::with_capacity(self.entries.len());
        for (subject, change) in self.entries.drain(..) {
            match folded.last_mut() {
                Some((s, last)) if *s == subject && last.key == change.key => last.new = change.new,
                _ => folded.push((subject, change)),
            }
        }
        folded.retain(|(_, change)| change.old.is_some() || change.new.is_some());
        self.entries = folded;
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.enforcement.is_empty()
            && self.subjects_added.is_empty()
            && self.subjects_removed.is_empty()
    }
}
