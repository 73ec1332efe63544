use std::collections::{BTreeSet, HashMap};

use schema::labels::{Labels, Selector};

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
#[derive(Debug, Default)]
pub(crate) struct SelectorCache {
    ids: HashMap<Selector, SelectorId>,
    entries: Vec<Option<Entry>>,
    free: Vec<SelectorId>,
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
    /// Interns `selector`, computing its selection over `identities` if it is new.
    pub(super) fn acquire<'a>(
        &mut self,
        selector: &Selector,
        identities: impl Iterator<Item = (Identity, &'a Labels)>,
        matches: &mut usize,
    ) -> SelectorId {
        if let Some(&id) = self.ids.get(selector) {
            if let Some(entry) = self.entries[id].as_mut() {
                entry.refs += 1;
            }
            return id;
        }
        let selected = identities
            .filter(|(_, labels)| {
                *matches += 1;
                selector.matches(labels)
            })
            .map(|(id, _)| id)
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

    /// Records a new identity in every selector that selects it; returns those selectors.
    pub(super) fn add_identity(
        &mut self,
        identity: Identity,
        labels: &Labels,
        matches: &mut usize,
    ) -> Vec<SelectorId> {
        let mut hits = Vec::new();
        for (id, entry) in self.entries.iter_mut().enumerate() {
            let Some(entry) = entry else { continue };
            *matches += 1;
            if entry.selector.matches(labels) {
                entry.selected.insert(identity);
                hits.push(id);
            }
        }
        hits
    }

    /// Forgets an identity; returns the selectors that had selected it.
    pub(super) fn remove_identity(&mut self, identity: Identity) -> Vec<SelectorId> {
        let mut hits = Vec::new();
        for (id, entry) in self.entries.iter_mut().enumerate() {
            if let Some(entry) = entry
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
}
