//! Per-identity policy map state: what the datapath's policy map holds for the endpoints of
//! one identity, plus the contributions each entry came from.
//!
//! Keys mirror the BPF policy map (an LPM trie): direction, peer identity (0 = any peer),
//! protocol (0 = any) and a port prefix. [`MapState::decide`] is the datapath's lookup
//! algorithm, so the offline evaluator predicts exactly what the kernel does.
//!
//! The contract with the datapath: a deny at a broad key (all ports of a peer) is materialised
//! over every narrower key of the same peer, so a longest-prefix match never finds an allow
//! that a broader deny overrides. Across identities the datapath looks up both the peer and the
//! wildcard and lets any deny win.

mod key;

use std::collections::{BTreeMap, btree_map};
use std::ops::Bound;
use std::sync::Arc;

pub use key::{
    Key, PROTO_ANY, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP,
    port_range_prefixes, proto_name,
};

use crate::identity::Identity;
use crate::l7::{L7Parser, L7Request, L7Rules};
use crate::rule::Direction;

/// Where a contribution came from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Peer rule `index` of `rule`'s allow (`deny: false`) or deny list for `direction`,
    /// because it selects `peer`.
    Rule {
        rule: u32,
        direction: Direction,
        deny: bool,
        index: u16,
        peer: Identity,
    },
    /// Every rule touching the direction says `enableDefaultDeny: false`.
    DefaultAllow(Direction),
    /// The local host may always reach local endpoints (`--allow-localhost=always`).
    Localhost,
}

/// What one contribution asks for.
#[derive(Debug, Clone)]
pub enum Effect {
    Allow,
    Deny,
    /// Allow through the L7 proxy, subject to these rules.
    L7(Arc<L7Rules>),
}

/// The verdict an entry gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verdict {
    Allow,
    Deny,
    Redirect(L7Parser),
}

/// A change to one resolved entry: what the datapath must apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryChange {
    pub key: Key,
    pub old: Option<Verdict>,
    pub new: Option<Verdict>,
}

#[derive(Debug, Clone, Default)]
pub struct MapState {
    enforced: [bool; 2],
    /// Per key, its contributions sorted by source: most keys have one, so a sorted `Vec`
    /// beats a map in time and memory.
    contributions: BTreeMap<Key, Vec<(Source, Effect)>>,
    by_source: BTreeMap<Source, Vec<Key>>,
    /// How many deny contributions each key has, so that resolving a key looks for broader
    /// denies among the few deny keys instead of probing every covering prefix.
    denies: BTreeMap<Key, usize>,
    resolved: BTreeMap<Key, Verdict>,
}

/// The outcome of a lookup in one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The direction is not enforced for this endpoint.
    NotEnforced,
    Allowed {
        key: Key,
    },
    Redirected {
        key: Key,
        parser: L7Parser,
    },
    /// A deny entry matched.
    Denied {
        key: Key,
    },
    /// Nothing allowed it (default deny).
    NoMatch,
}

/// The L7 rules the proxy applies to one peer on one port.
#[derive(Debug, Clone, Default)]
pub struct L7Policy {
    /// Some plain L4 allow covers this peer and port: every request passes.
    pub allow_all: Vec<Source>,
    pub rules: Vec<(Source, Arc<L7Rules>)>,
}

impl L7Policy {
    /// The contributions that let `request` through: every plain allow if there is one (the
    /// L7 rules then have no effect), else the L7 rules that match. Empty means denied.
    pub fn allowing(&self, request: &L7Request<'_>) -> Vec<&Source> {
        if !self.allow_all.is_empty() {
            return self.allow_all.iter().collect();
        }
        self.rules
            .iter()
            .filter(|(_, rules)| rules.allows(request))
            .map(|(source, _)| source)
            .collect()
    }
}

impl Decision {
    /// Whether the connection gets through at L3/L4 (a redirect does: the proxy accepts it).
    pub fn allows(&self) -> bool {
        matches!(
            self,
            Decision::NotEnforced | Decision::Allowed { .. } | Decision::Redirected { .. }
        )
    }
}

impl MapState {
    pub fn is_enforced(&self, direction: Direction) -> bool {
        self.enforced[direction.index()]
    }

    pub(crate) fn set_enforced(&mut self, direction: Direction, enforced: bool) -> bool {
        let old = std::mem::replace(&mut self.enforced[direction.index()], enforced);
        old != enforced
    }

    /// The resolved entries: exactly what the datapath's map holds for this identity.
    pub fn entries(&self) -> impl Iterator<Item = (&Key, &Verdict)> {
        self.resolved.iter()
    }

    pub fn len(&self) -> usize {
        self.resolved.len()
    }

    pub fn is_empty(&self) -> bool {
        self.resolved.is_empty()
    }

    pub fn get(&self, key: &Key) -> Option<Verdict> {
        self.resolved.get(key).copied()
    }

    pub fn contributions(&self, key: &Key) -> impl Iterator<Item = (&Source, &Effect)> {
        self.contributions
            .get(key)
            .into_iter()
            .flatten()
            .map(|(source, effect)| (source, effect))
    }

    pub fn has_source(&self, source: &Source) -> bool {
        self.by_source.contains_key(source)
    }

    /// Adds a contribution at each key; a source already present is left as it is.
    /// Returns the number of contributions added.
    pub(crate) fn add(
        &mut self,
        source: Source,
        effects: Vec<(Key, Effect)>,
        changes: &mut Vec<EntryChange>,
    ) -> usize {
        if self.by_source.contains_key(&source) {
            return 0;
        }
        let mut keys = Vec::with_capacity(effects.len());
        for (key, effect) in effects {
            let deny = matches!(effect, Effect::Deny);
            let at_key = self.contributions.entry(key).or_default();
            // One source may name a key twice (a port and a named port resolving to it).
            let replaced = match at_key.binary_search_by(|(s, _)| s.cmp(&source)) {
                Ok(i) => Some(std::mem::replace(&mut at_key[i].1, effect)),
                Err(i) => {
                    at_key.insert(i, (source.clone(), effect));
                    None
                }
            };
            let was_deny = matches!(replaced, Some(Effect::Deny));
            if was_deny {
                count_deny(&mut self.denies, key, false);
            }
            if deny {
                count_deny(&mut self.denies, key, true);
            }
            keys.push(key);
            if deny || was_deny {
                self.resolve_around(key, true, changes);
            } else {
                // Resolved here, while this key's contributions are at hand.
                let new = verdict(at_key, denied(&self.denies, key));
                self.set_resolved(key, new, true, changes);
            }
        }
        let added = keys.len();
        self.by_source.insert(source, keys);
        added
    }

    /// Removes one source's contributions; returns how many there were.
    pub(crate) fn remove(&mut self, source: &Source, changes: &mut Vec<EntryChange>) -> usize {
        let Some(keys) = self.by_source.remove(source) else {
            return 0;
        };
        for &key in &keys {
            let mut deny = false;
            let mut new = None;
            if let btree_map::Entry::Occupied(mut at_key) = self.contributions.entry(key) {
                if let Ok(i) = at_key.get().binary_search_by(|(s, _)| s.cmp(source)) {
                    deny = matches!(at_key.get_mut().remove(i).1, Effect::Deny);
                }
                if deny {
                    count_deny(&mut self.denies, key, false);
                }
                if at_key.get().is_empty() {
                    at_key.remove();
                } else {
                    new = verdict(at_key.get(), denied(&self.denies, key));
                }
            }
            if deny {
                self.resolve_around(key, true, changes);
            } else {
                self.set_resolved(key, new, true, changes);
            }
        }
        keys.len()
    }

    /// Every source of `rule`, for removing a rule from this subject.
    pub(crate) fn sources_of_rule(&self, rule: u32) -> Vec<Source> {
        let start = Source::Rule {
            rule,
            direction: Direction::Ingress,
            deny: false,
            index: 0,
            peer: Identity(0),
        };
        self.by_source
            .range(start..)
            .map(|(source, _)| source)
            .take_while(|source| matches!(source, Source::Rule { rule: r, .. } if *r == rule))
            .cloned()
            .collect()
    }

    /// Removes everything; the changes say which entries disappeared.
    pub(crate) fn clear(&mut self, changes: &mut Vec<EntryChange>) {
        for (key, verdict) in std::mem::take(&mut self.resolved) {
            changes.push(EntryChange {
                key,
                old: Some(verdict),
                new: None,
            });
        }
        self.contributions.clear();
        self.by_source.clear();
        self.denies.clear();
    }

    fn resolve_around(&mut self, key: Key, deny_changed: bool, changes: &mut Vec<EntryChange>) {
        self.resolve(key, changes);
        if deny_changed {
            let covered: Vec<Key> = self
                .contributions
                .range((Bound::Excluded(key), Bound::Included(key.last_covered())))
                .map(|(k, _)| *k)
                .filter(|k| key.covers(k))
                .collect();
            for k in covered {
                self.resolve(k, changes);
            }
        }
    }

    fn resolve(&mut self, key: Key, changes: &mut Vec<EntryChange>) {
        let new = self
            .contributions
            .get(&key)
            .and_then(|at_key| verdict(at_key, denied(&self.denies, key)));
        // Only deny changes come here: the denies deciding this key may have changed.
        self.set_resolved(key, new, new == Some(Verdict::Deny), changes);
    }

    /// The contributions that give `key` its verdict: when denied, the denies at it and at the
    /// keys covering it; else its allows; else its L7 redirects. What flows name as the
    /// policies that allowed or denied a connection.
    pub fn deciding_sources(&self, key: &Key) -> Vec<&Source> {
        let Some(verdict) = self.resolved.get(key) else {
            return Vec::new();
        };
        let at = |k: &Key, want: fn(&Effect) -> bool| -> Vec<&Source> {
            self.contributions(k)
                .filter(|(_, e)| want(e))
                .map(|(s, _)| s)
                .collect()
        };
        match verdict {
            Verdict::Deny => {
                let broadest = Key::any(key.direction, key.identity);
                self.denies
                    .range(broadest..=*key)
                    .filter(|(k, _)| k.covers(key))
                    .flat_map(|(k, _)| at(k, |e| matches!(e, Effect::Deny)))
                    .collect()
            }
            Verdict::Allow => at(key, |e| matches!(e, Effect::Allow)),
            Verdict::Redirect(_) => at(key, |e| matches!(e, Effect::L7(_))),
        }
    }

    /// Records the key's verdict. A change is reported when the verdict changed, or when the
    /// contributions deciding it did (`touched`): flows name the policies behind an entry.
    fn set_resolved(
        &mut self,
        key: Key,
        new: Option<Verdict>,
        touched: bool,
        changes: &mut Vec<EntryChange>,
    ) {
        let old = match new {
            Some(verdict) => self.resolved.insert(key, verdict),
            None => self.resolved.remove(&key),
        };
        if old != new || (touched && new.is_some()) {
            changes.push(EntryChange { key, old, new });
        }
    }

    /// Longest-prefix match among one identity's entries, as the BPF LPM trie does.
    pub fn lpm(
        &self,
        direction: Direction,
        identity: Identity,
        proto: u8,
        port: u16,
    ) -> Option<(Key, Verdict)> {
        Key::lookup_chain(direction, identity, proto, port)
            .find_map(|key| self.resolved.get(&key).map(|v| (key, *v)))
    }

    /// The datapath's decision for a packet to (ingress) or from (egress) this endpoint.
    /// `peer` is the peer's identity from the ipcache; `ipblock` the identity its address has
    /// for NetworkPolicy `ipBlock` peers, when the peer is a pod.
    pub fn decide(
        &self,
        direction: Direction,
        peer: Identity,
        ipblock: Option<Identity>,
        proto: u8,
        port: u16,
    ) -> Decision {
        if !self.is_enforced(direction) {
            return Decision::NotEnforced;
        }
        let specific = self.lpm(direction, peer, proto, port);
        let wildcard = self.lpm(direction, Identity::ANY, proto, port);
        for (key, verdict) in specific.iter().chain(wildcard.iter()) {
            if *verdict == Verdict::Deny {
                return Decision::Denied { key: *key };
            }
        }
        let best = match (specific, wildcard) {
            (Some(s), Some(w)) => Some(if w.0.specificity() > s.0.specificity() {
                w
            } else {
                s
            }),
            (s, w) => s.or(w),
        };
        let best = best.or_else(|| {
            ipblock
                .and_then(|id| self.lpm(direction, id, proto, port))
                .filter(|(_, v)| *v != Verdict::Deny)
        });
        match best {
            Some((key, Verdict::Allow)) => Decision::Allowed { key },
            Some((key, Verdict::Redirect(parser))) => Decision::Redirected { key, parser },
            Some((key, Verdict::Deny)) => Decision::Denied { key },
            None => Decision::NoMatch,
        }
    }

    /// What the proxy enforces for `peer` on `proto`/`port`: every allow or L7 contribution at
    /// a key covering it, for the peer itself and for the wildcard.
    pub fn l7_policy(
        &self,
        direction: Direction,
        peers: &[Identity],
        proto: u8,
        port: u16,
    ) -> L7Policy {
        let mut policy = L7Policy::default();
        let identities = peers.iter().copied().chain([Identity::ANY]);
        for identity in identities {
            for key in Key::lookup_chain(direction, identity, proto, port) {
                for (source, effect) in self.contributions(&key) {
                    match effect {
                        Effect::Allow => policy.allow_all.push(source.clone()),
                        Effect::L7(rules) => policy.rules.push((source.clone(), Arc::clone(rules))),
                        Effect::Deny => {}
                    }
                }
            }
        }
        policy
    }
}

/// The verdict of a key from its contributions, `denied` if a deny at it or a broader key
/// applies.
fn verdict(at_key: &[(Source, Effect)], denied: bool) -> Option<Verdict> {
    if at_key.is_empty() {
        return None;
    }
    if denied {
        return Some(Verdict::Deny);
    }
    if at_key.iter().any(|(_, e)| matches!(e, Effect::Allow)) {
        return Some(Verdict::Allow);
    }
    at_key.iter().find_map(|(_, e)| match e {
        Effect::L7(rules) => Some(Verdict::Redirect(rules.parser())),
        _ => None,
    })
}

/// Whether a deny at `key` or at a key covering it exists.
fn denied(denies: &BTreeMap<Key, usize>, key: Key) -> bool {
    // Every key covering this one sorts between the peer's `ANY` key and it.
    let broadest = Key::any(key.direction, key.identity);
    denies.range(broadest..=key).any(|(k, _)| k.covers(&key))
}

fn count_deny(denies: &mut BTreeMap<Key, usize>, key: Key, add: bool) {
    if add {
        *denies.entry(key).or_insert(0) += 1;
    } else if let Some(n) = denies.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            denies.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests;
