mod index;

use std::collections::{BTreeSet, HashMap};

use schema::labels::{Labels, Selector};

use self::index::{IdentityIndex, SelectorIndex};
use crate::identity::Identity;
use crate::rule::Direction;

pub(crate) type SelectorId = usize;

/// A use of a selector as the peer of one peer rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct PeerUse {
    pub rule: u32,
    pub direction: Direction,
    pub deny: bool,
    pub index: u16,
}

/// Which identities each selector in use selects, kept current as identities come and go,
/// so that policy computation never matches labels itself.
///
/// Matching is indexed both ways: a new identity meets only the selectors filed under one of
/// its labels, a new selector only the identities carrying the label it is filed under.
#[derive(Debug, Default)]
pub(crate) struct SelectorCache {
    ids: HashMap<Selector, SelectorId>,
    entries: Vec<Option<Entry>>,
    free: Vec<SelectorId>,
    filed: SelectorIndex,
    identities: IdentityIndex,
}

#[derive(Debug)]
pub(crate) struct Entry {
    pub selector: Selector,
    pub selected: BTreeSet<Identity>,
    pub subject_users: BTreeSet<u32>,
    pub peer_users: BTreeSet<PeerUse>,
    refs: usize,
}

impl Entry {
    /// The empty selector as a peer is the wildcard: one policy entry for identity 0.
    pub(super) fn is_wildcard(&self) -> bool {
        self.selector.is_everything()
    }
}

impl SelectorCache {
    /// Interns `selector`, computing its selection if it is new. `labels_of` knows the labels
    /// of every identity added to this cache.
    pub(super) fn acquire<'a>(
        &mut self,
        selector: &Selector,
        labels_of: impl Fn(Identity) -> Option<&'a Labels>,
        matches: &mut usize,
    ) -> SelectorId {
        if let Some(&id) = self.ids.get(selector) {
            if let Some(entry) = self.entries[id].as_mut() {
                entry.refs += 1;
            }
            return id;
        }
        let selected = self
            .identities
            .candidates(selector)
            .into_iter()
            .filter(|identity| {
                *matches += 1;
                labels_of(*identity).is_some_and(|labels| selector.matches(labels))
            })
            .collect();
        let entry = Entry {
            selector: selector.clone(),
            selected,
            subject_users: BTreeSet::new(),
            peer_users: BTreeSet::new(),
            refs: 1,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id] = Some(entry);
                id
            }
            None => {
                self.entries.push(Some(entry));
                self.entries.len() - 1
            }
        };
        self.ids.insert(selector.clone(), id);
        self.filed.insert(id, selector);
        id
    }

    pub(super) fn release(&mut self, id: SelectorId) {
        let Some(entry) = self.entries.get_mut(id).and_then(Option::as_mut) else {
            return;
        };
        entry.refs -= 1;
        if entry.refs == 0 {
            if let Some(entry) = self.entries[id].take() {
                self.ids.remove(&entry.selector);
                self.filed.remove(id, &entry.selector);
            }
            self.free.push(id);
        }
    }

    pub(super) fn get(&self, id: SelectorId) -> Option<&Entry> {
        self.entries.get(id).and_then(Option::as_ref)
    }

    pub(super) fn get_mut(&mut self, id: SelectorId) -> Option<&mut Entry> {
        self.entries.get_mut(id).and_then(Option::as_mut)
    }

    /// Records a new identity in every selector that selects it; returns those selectors,
    /// in id order.
    pub(super) fn add_identity(
        &mut self,
        identity: Identity,
        labels: &Labels,
        matches: &mut usize,
    ) -> Vec<SelectorId> {
        self.identities.insert(identity, labels);
        let mut hits = Vec::new();
        for id in self.filed.candidates(labels) {
            let Some(entry) = self.entries.get_mut(id).and_then(Option::as_mut) else {
                continue;
            };
            *matches += 1;
            if entry.selector.matches(labels) {
                entry.selected.insert(identity);
                hits.push(id);
            }
        }
        hits
    }

    /// Forgets an identity, which was added with `labels`; returns the selectors that had
    /// selected it, in id order. Those are among the candidates for its labels, since every
    /// selection holds exactly the matching identities.
    pub(super) fn remove_identity(
        &mut self,
        identity: Identity,
        labels: &Labels,
    ) -> Vec<SelectorId> {
        self.identities.remove(identity, labels);
        let mut hits = Vec::new();
        for id in self.filed.candidates(labels) {
            if let Some(entry) = self.entries.get_mut(id).and_then(Option::as_mut)
                && entry.selected.remove(&identity)
            {
                hits.push(id);
            }
        }
        hits
    }

    pub(super) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Every selector in use with what it selects, for checking selections against a full
    /// scan.
    #[cfg(test)]
    pub(super) fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().flatten()
    }
}

#[cfg(test)]
mod tests;
