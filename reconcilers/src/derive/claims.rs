//! Who wants which ipcache entry. Several sources can name the same prefix (a pod's address
//! and a `toCIDR: [that/32]`, a stale `status.podIP` and a local endpoint); the first claim in
//! [`Claim`] order wins, so the outcome never depends on the order changes arrived in.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use policy::identity::Identity;
use schema::cidr::Cidr;

use super::model::PodKey;
use crate::datapath::{IpcacheKey, IpcacheKind, ipcache_key};

/// In order of precedence: what the node itself knows beats what the API says, and any pod
/// beats a CIDR rule (CIDR selectors never select cluster endpoints).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Claim {
    /// A local endpoint's address, by container id.
    Endpoint(String),
    /// One of the node's own addresses.
    Host(Ipv4Addr),
    /// A pod without a local endpoint, at its `status.podIP`.
    Pod(PodKey),
    /// A prefix some rule names.
    Prefix(IpcacheKind, Cidr),
}

/// What an ipcache row holds apart from its status.
pub(super) type Content = (IpcacheKind, Cidr, Identity);

#[derive(Default)]
pub(super) struct Claims {
    by_key: BTreeMap<IpcacheKey, BTreeMap<Claim, Content>>,
    by_claim: BTreeMap<Claim, (IpcacheKey, Content)>,
}

impl Claims {
    /// Sets (`Some`) or withdraws (`None`) a claim; returns the keys whose claims changed.
    pub(super) fn set(&mut self, claim: Claim, content: Option<Content>) -> Vec<IpcacheKey> {
        let new = content.map(|c| (ipcache_key(c.0, c.1), c));
        if self.by_claim.get(&claim) == new.as_ref() {
            return Vec::new();
        }
        let mut changed = Vec::with_capacity(2);
        if let Some((key, _)) = self.by_claim.remove(&claim) {
            if let Some(at_key) = self.by_key.get_mut(&key) {
                at_key.remove(&claim);
                if at_key.is_empty() {
                    self.by_key.remove(&key);
                }
            }
            changed.push(key);
        }
        if let Some((key, content)) = new {
            self.by_key
                .entry(key)
                .or_default()
                .insert(claim.clone(), content);
            self.by_claim.insert(claim, (key, content));
            if !changed.contains(&key) {
                changed.push(key);
            }
        }
        changed
    }

    /// The entry the ipcache must hold at `key`, if any.
    pub(super) fn winner(&self, key: &IpcacheKey) -> Option<&Content> {
        self.by_key
            .get(key)
            .and_then(|claims| claims.values().next())
    }
}
