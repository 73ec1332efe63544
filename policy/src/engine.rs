//! The incremental policy engine: identities and rules in, per-identity map state out, with
//! every operation returning the minimal change to the resolved entries.
//!
//! Work follows the change, not the world. A new identity is matched only against the cached
//! selectors filed under one of its labels (and those requiring none); where a selector
//! selecting it is a rule's peer, only that peer's contributions are added to the rule's
//! subjects; where it is a rule's subject, only that identity's map state is computed. A new
//! rule's selectors are matched only against the identities carrying the label they are filed
//! under, and the rule touches only the identities they select.

mod selector_cache;
mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use schema::cidr::Cidr;
use schema::cilium::{IcmpFamily, Protocol};
use schema::labels::{Label, Labels, Source as LabelSource};

pub use state::{Delta, Stats};

use self::selector_cache::{PeerUse, SelectorCache, SelectorId};
use crate::identity::{Allocator, Identity, ipblock_labels, reserved_labels, world_prefix_labels};
use crate::l7::FqdnPattern;
use crate::mapstate::{
    Effect, Key, MapState, PROTO_ICMP, PROTO_ICMPV6, PROTO_SCTP, PROTO_TCP, PROTO_UDP, Source,
    port_range_prefixes,
};
use crate::rule::{Direction, PeerRule, PortSpec, Rule, Subject};
use crate::translate::Origin;

/// Container ports by name: `http` -> {(TCP, 80)}.
pub type NamedPorts = BTreeMap<String, BTreeSet<(u8, u16)>>;

/// Cilium's policy enforcement modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnforcementMode {
    /// Endpoints are unrestricted until a rule selects them.
    #[default]
    Default,
    /// Every endpoint is default-deny in both directions.
    Always,
    /// Nothing is enforced.
    Never,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub enforcement: EnforcementMode,
    /// The local host can always reach local endpoints (`--allow-localhost=always`, which
    /// Cilium's `auto` means in Kubernetes mode).
    pub allow_localhost: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enforcement: EnforcementMode::Default,
            allow_localhost: true,
        }
    }
}

#[derive(Debug)]
struct IdentityEntry {
    labels: Labels,
    named_ports: NamedPorts,
    /// Has endpoints on this node, so it gets a map state.
    local: bool,
}

#[derive(Debug)]
struct RuleEntry {
    rule: Arc<Rule>,
    subject: Option<SelectorId>,
    peers: Vec<(PeerUse, Vec<SelectorId>)>,
    subjects: BTreeSet<Identity>,
}

#[derive(Debug, Default)]
struct SubjectState {
    rules: BTreeSet<u32>,
    touching: [u32; 2],
    default_deny: [u32; 2],
    map: MapState,
}

pub struct Engine {
    config: Config,
    identities: HashMap<Identity, IdentityEntry>,
    selectors: SelectorCache,
    rules: HashMap<u32, RuleEntry>,
    policies: BTreeMap<Origin, Vec<u32>>,
    subjects: HashMap<Identity, SubjectState>,
    /// Identities of prefixes named by rules: `(prefix, is_ipblock)` -> (identity, users).
    prefixes: BTreeMap<(Cidr, bool), (Identity, usize)>,
    local_scope: Allocator,
    /// Prefix identities a previous agent left in the datapath, held for their prefixes until
    /// [`Engine::forget_restored_prefixes`].
    restored_prefixes: BTreeMap<(Cidr, bool), Identity>,
    named_port_union: BTreeMap<String, BTreeMap<(u8, u16), usize>>,
    /// `toFQDNs` patterns in use, with their users.
    fqdn_patterns: BTreeMap<String, (FqdnPattern, usize)>,
    /// Addresses the DNS proxy learned: the names they were learned for and their identity.
    fqdn_ips: BTreeMap<IpAddr, (BTreeSet<String>, Identity)>,
    next_rule: u32,
    stats: Stats,
    delta: Delta,
}

impl Engine {
    pub fn new(config: Config) -> Self {
        let mut engine = Self {
            config,
            identities: HashMap::new(),
            selectors: SelectorCache::default(),
            rules: HashMap::new(),
            policies: BTreeMap::new(),
            subjects: HashMap::new(),
            prefixes: BTreeMap::new(),
            local_scope: Allocator::new(),
            restored_prefixes: BTreeMap::new(),
            named_port_union: BTreeMap::new(),
            fqdn_patterns: BTreeMap::new(),
            fqdn_ips: BTreeMap::new(),
            next_rule: 1,
            stats: Stats::default(),
            delta: Delta::default(),
        };
        for (identity, name) in Identity::RESERVED {
            let mut labels = reserved_labels(name);
            if identity == Identity::KUBE_APISERVER {
                labels.extend(reserved_labels("remote-node").iter().cloned());
            }
            engine.add_identity(identity, labels, NamedPorts::new(), false);
        }
        engine.delta = Delta::default();
        engine
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Adds an identity, or changes what is known about it. `local` identities (those with
    /// endpoints on this node) get a map state.
    pub fn upsert_identity(
        &mut self,
        identity: Identity,
        labels: Labels,
        named_ports: NamedPorts,
        local: bool,
    ) -> Delta {
        let _span = tracing::debug_span!(
            "derive",
            derivation = "policy",
            op = "upsert-identity",
            identity = identity.0
        )
        .entered();
        if let Some(existing) = self.identities.get(&identity) {
            if existing.labels == labels
                && existing.named_ports == named_ports
                && existing.local == local
            {
                return Delta::default();
            }
            self.drop_identity(identity);
        }
        self.add_identity(identity, labels, named_ports, local);
        self.finish()
    }

    pub fn remove_identity(&mut self, identity: Identity) -> Delta {
        let _span = tracing::debug_span!(
            "derive",
            derivation = "policy",
            op = "remove-identity",
            identity = identity.0
        )
        .entered();
        self.drop_identity(identity);
        self.finish()
    }

    /// Replaces the rules of one policy object (an empty list removes it).
    pub fn upsert_policy(&mut self, origin: Origin, rules: Vec<Rule>) -> Delta {
        let _span = tracing::debug_span!("derive", derivation = "policy", op = "upsert-policy", policy = %origin).entered();
        if let Some(old) = self.policies.remove(&origin) {
            for id in old {
                self.remove_rule(id);
            }
        }
        if !rules.is_empty() {
            let ids = rules
                .into_iter()
                .map(|r| self.add_rule(Arc::new(r)))
                .collect();
            self.policies.insert(origin, ids);
        }
        self.finish()
    }

    pub fn remove_policy(&mut self, origin: &Origin) -> Delta {
        self.upsert_policy(origin.clone(), Vec::new())
    }

    /// The policy a rule (as map-state sources name it) was translated from.
    pub fn rule_origin(&self, rule: u32) -> Option<&Arc<Origin>> {
        self.rules.get(&rule).map(|entry| &entry.rule.origin)
    }

    pub fn map_state(&self, identity: Identity) -> Option<&MapState> {
        self.subjects.get(&identity).map(|s| &s.map)
    }

    pub fn labels(&self, identity: Identity) -> Option<&Labels> {
        self.identities.get(&identity).map(|e| &e.labels)
    }

    pub fn identities(&self) -> impl Iterator<Item = (Identity, &Labels)> {
        self.identities.iter().map(|(id, e)| (*id, &e.labels))
    }

    /// The rules that select `identity` as their subject.
    pub fn rules_selecting(&self, identity: Identity) -> impl Iterator<Item = &Rule> {
        self.subjects
            .get(&identity)
            .into_iter()
            .flat_map(|s| s.rules.iter())
            .filter_map(|id| self.rules.get(id))
            .map(|entry| entry.rule.as_ref())
    }

    pub fn rule(&self, id: u32) -> Option<&Rule> {
        self.rules.get(&id).map(|e| e.rule.as_ref())
    }

    pub fn policies(&self) -> impl Iterator<Item = (&Origin, impl Iterator<Item = &Rule>)> {
        self.policies.iter().map(|(origin, ids)| {
            (
                origin,
                ids.iter()
                    .filter_map(|id| self.rules.get(id))
                    .map(|e| e.rule.as_ref()),
            )
        })
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn selector_count(&self) -> usize {
        self.selectors.len()
    }

    /// The identity of an address outside the cluster: the most specific prefix a rule names
    /// that contains it, else `world`.
    pub fn world_identity(&self, ip: IpAddr) -> Identity {
        self.longest_prefix(ip, false).unwrap_or(Identity::WORLD)
    }

    /// The identity a pod address has for NetworkPolicy `ipBlock` peers, if any block
    /// contains it.
    pub fn ipblock_identity(&self, ip: IpAddr) -> Option<Identity> {
        self.longest_prefix(ip, true)
    }

    /// Every prefix identity: what the ipcache needs besides pods.
    /// Keeps the numbers the datapath holds for prefixes (`(prefix, is_ipblock, identity)`, read
    /// back after an agent restart): a rule naming one of these prefixes again gets its old
    /// number, so pinned ipcache and policy entries stay right while the new agent rewrites them.
    pub fn restore_prefix_identities(
        &mut self,
        restored: impl IntoIterator<Item = (Cidr, bool, Identity)>,
    ) {
        for (cidr, ipblock, identity) in restored {
            if identity.is_local_scope() {
                self.local_scope.hold(identity);
                self.restored_prefixes.insert((cidr, ipblock), identity);
            }
        }
    }

    /// Once every policy is in, the restored numbers no prefix came back for are free again.
    pub fn forget_restored_prefixes(&mut self) {
        self.restored_prefixes.clear();
        self.local_scope.release_held();
    }

    pub fn prefix_identities(&self) -> impl Iterator<Item = (Cidr, bool, Identity)> + '_ {
        // An address learned through DNS comes last: its identity carries the host prefix's
        // CIDR labels too, so it takes the place of a CIDR rule's identity for the same /32.
        self.prefixes
            .iter()
            .map(|((cidr, ipblock), (id, _))| (*cidr, *ipblock, *id))
            .chain(
                self.fqdn_ips
                    .iter()
                    .map(|(ip, (_, id))| (Cidr::host(*ip), false, *id)),
            )
    }

    /// Records that a DNS answer for `name` carried `ip`: the address gets an identity
    /// labelled with every `toFQDNs` pattern matching one of its names.
    pub fn learn_fqdn(&mut self, name: &str, ip: IpAddr) -> Delta {
        let _span = tracing::debug_span!("derive", derivation = "fqdn", name, %ip).entered();
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let names = self
            .fqdn_ips
            .get(&ip)
            .map(|(names, _)| names.clone())
            .unwrap_or_default();
        let mut names = names;
        names.insert(name);
        self.relabel_fqdn_ip(ip, names);
        self.finish()
    }

    /// Forgets that `name` had `ip` (its DNS answer expired): the address keeps the labels of
    /// its other names, or loses its identity with the last one.
    pub fn forget_fqdn(&mut self, name: &str, ip: IpAddr) -> Delta {
        let _span = tracing::debug_span!("derive", derivation = "fqdn", name, %ip).entered();
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some((names, id)) = self.fqdn_ips.get(&ip) {
            let id = *id;
            let mut names = names.clone();
            names.remove(&name);
            if names.is_empty() {
                self.fqdn_ips.remove(&ip);
                if self.local_scope.release(id) {
                    self.drop_identity(id);
                }
            } else {
                self.relabel_fqdn_ip(ip, names);
            }
        }
        self.finish()
    }

    /// The identity of an address learned through DNS.
    pub fn fqdn_identity(&self, ip: IpAddr) -> Option<Identity> {
        self.fqdn_ips.get(&ip).map(|(_, id)| *id)
    }

    fn relabel_fqdn_ip(&mut self, ip: IpAddr, names: BTreeSet<String>) {
        let mut labels = world_prefix_labels(Cidr::host(ip));
        for (text, (pattern, _)) in &self.fqdn_patterns {
            if names.iter().any(|n| pattern.matches(n)) {
                labels.insert(Label::new(LabelSource::Fqdn, text.as_str(), ""));
            }
        }
        let old = self.fqdn_ips.get(&ip).map(|(_, id)| *id);
        if old.and_then(|id| self.labels(id)) == Some(&labels) {
            self.fqdn_ips
                .insert(ip, (names, old.unwrap_or(Identity::WORLD)));
            return;
        }
        let Ok(allocation) = self.local_scope.allocate(&labels) else {
            tracing::warn!(%ip, "node-local identity space exhausted; address not selectable");
            return;
        };
        if allocation.is_new {
            self.add_identity(allocation.identity, labels, NamedPorts::new(), false);
        }
        self.fqdn_ips.insert(ip, (names, allocation.identity));
        if let Some(old) = old
            && self.local_scope.release(old)
        {
            self.drop_identity(old);
        }
    }

    fn relabel_all_fqdn_ips(&mut self) {
        let all: Vec<(IpAddr, BTreeSet<String>)> = self
            .fqdn_ips
            .iter()
            .map(|(ip, (names, _))| (*ip, names.clone()))
            .collect();
        for (ip, names) in all {
            self.relabel_fqdn_ip(ip, names);
        }
    }

    fn longest_prefix(&self, ip: IpAddr, ipblock: bool) -> Option<Identity> {
        self.prefixes
            .iter()
            .filter(|((cidr, kind), _)| *kind == ipblock && cidr.contains_addr(ip))
            .max_by_key(|((cidr, _), _)| cidr.prefix_len())
            .map(|(_, (id, _))| *id)
    }

    fn finish(&mut self) -> Delta {
        let mut delta = std::mem::take(&mut self.delta);
        delta.coalesce();
        self.stats.entries_changed += delta.entries.len();
        delta
    }

    fn add_identity(
        &mut self,
        identity: Identity,
        labels: Labels,
        named_ports: NamedPorts,
        local: bool,
    ) {
        let hits = self
            .selectors
            .add_identity(identity, &labels, &mut self.stats.selector_matches);
        let union_changed = self.count_named_ports(&named_ports, true);
        self.identities.insert(
            identity,
            IdentityEntry {
                labels,
                named_ports,
                local,
            },
        );
        self.delta.identities_added.push(identity);
        for &sel in &hits {
            let Some(entry) = self.selectors.get(sel) else {
                continue;
            };
            if entry.is_wildcard() {
                continue;
            }
            let uses: Vec<PeerUse> = entry.peer_users.iter().copied().collect();
            for peer_use in uses {
                let subjects = self.subjects_of(peer_use.rule);
                for subject in subjects {
                    self.add_source(subject, peer_use, identity);
                }
            }
        }
        if local {
            let mut state = SubjectState::default();
            for &sel in &hits {
                if let Some(entry) = self.selectors.get(sel) {
                    state.rules.extend(entry.subject_users.iter().copied());
                }
            }
            for rule in &state.rules {
                if let Some(entry) = self.rules.get_mut(rule) {
                    entry.subjects.insert(identity);
                }
            }
            let rules: Vec<u32> = state.rules.iter().copied().collect();
            self.subjects.insert(identity, state);
            self.delta.subjects_added.push(identity);
            for rule in rules {
                self.apply_rule(rule, identity);
            }
            self.refresh_posture(identity);
            self.stats.subjects_computed += 1;
        }
        if union_changed {
            self.refresh_wildcard_named_ports();
        }
    }

    fn drop_identity(&mut self, identity: Identity) {
        let Some(entry) = self.identities.remove(&identity) else {
            return;
        };
        self.delta.identities_removed.push(identity);
        let hits = self.selectors.remove_identity(identity, &entry.labels);
        for &sel in &hits {
            let Some(sel_entry) = self.selectors.get(sel) else {
                continue;
            };
            let uses: Vec<PeerUse> = if sel_entry.is_wildcard() {
                Vec::new()
            } else {
                sel_entry.peer_users.iter().copied().collect()
            };
            let subject_users: Vec<u32> = sel_entry.subject_users.iter().copied().collect();
            for peer_use in uses {
                let subjects = self.subjects_of(peer_use.rule);
                for subject in subjects {
                    self.remove_source(subject, &source(peer_use, identity));
                }
            }
            for rule in subject_users {
                if let Some(r) = self.rules.get_mut(&rule) {
                    r.subjects.remove(&identity);
                }
            }
        }
        if let Some(mut state) = self.subjects.remove(&identity) {
            let mut changes = Vec::new();
            state.map.clear(&mut changes);
            self.delta.record(identity, changes);
            self.delta.subjects_removed.push(identity);
        }
        if self.count_named_ports(&entry.named_ports, false) {
            self.refresh_wildcard_named_ports();
        }
    }

    /// The local identities `rule` selects, copied so the caller may change the engine.
    fn subjects_of(&self, rule: u32) -> Vec<Identity> {
        self.rules
            .get(&rule)
            .map(|r| r.subjects.iter().copied().collect())
            .unwrap_or_default()
    }

    fn add_rule(&mut self, rule: Arc<Rule>) -> u32 {
        let id = self.next_rule;
        self.next_rule += 1;
        let identities = &self.identities;
        let labels_of = |id| identities.get(&id).map(|e| &e.labels);
        let matches = &mut self.stats.selector_matches;
        let subject = match &rule.subject {
            Subject::Endpoints(selector) => {
                Some(self.selectors.acquire(selector, labels_of, matches))
            }
            Subject::Nodes(_) => None,
        };
        let mut peers = Vec::new();
        for direction in Direction::BOTH {
            for deny in [false, true] {
                for (index, peer_rule) in rule.peer_rules(direction, deny).iter().enumerate() {
                    let peer_use = PeerUse {
                        rule: id,
                        direction,
                        deny,
                        index: u16::try_from(index).unwrap_or(u16::MAX),
                    };
                    let mut sels: Vec<SelectorId> = Vec::new();
                    for selector in &peer_rule.peers {
                        let sel = self.selectors.acquire(selector, labels_of, matches);
                        if let Some(entry) = self.selectors.get_mut(sel) {
                            entry.peer_users.insert(peer_use);
                        }
                        sels.push(sel);
                    }
                    peers.push((peer_use, sels));
                }
            }
        }
        let mut subjects = BTreeSet::new();
        if let Some(sel) = subject
            && let Some(entry) = self.selectors.get_mut(sel)
        {
            entry.subject_users.insert(id);
            subjects.extend(
                entry
                    .selected
                    .iter()
                    .filter(|i| self.identities.get(i).is_some_and(|e| e.local))
                    .copied(),
            );
        }
        let prefixes = rule.prefixes.clone();
        self.rules.insert(
            id,
            RuleEntry {
                rule,
                subject,
                peers,
                subjects: subjects.clone(),
            },
        );
        for subject in subjects {
            if let Some(state) = self.subjects.get_mut(&subject) {
                state.rules.insert(id);
            }
            self.apply_rule(id, subject);
            self.refresh_posture(subject);
        }
        for (cidr, ipblock) in prefixes {
            self.acquire_prefix(cidr, false);
            if ipblock {
                self.acquire_prefix(cidr, true);
            }
        }
        if self.count_fqdn_patterns(id, true) {
            self.relabel_all_fqdn_ips();
        }
        id
    }

    /// Adds or removes a rule's `toFQDNs` patterns; true if the set of patterns changed.
    fn count_fqdn_patterns(&mut self, rule: u32, add: bool) -> bool {
        let Some(entry) = self.rules.get(&rule) else {
            return false;
        };
        let mut changed = false;
        for pattern in &entry.rule.fqdns {
            let text = pattern.as_str().to_owned();
            if add {
                let slot = self
                    .fqdn_patterns
                    .entry(text)
                    .or_insert_with(|| (pattern.clone(), 0));
                slot.1 += 1;
                changed |= slot.1 == 1;
            } else if let Some(slot) = self.fqdn_patterns.get_mut(&text) {
                slot.1 -= 1;
                if slot.1 == 0 {
                    self.fqdn_patterns.remove(&text);
                    changed = true;
                }
            }
        }
        changed
    }

    fn remove_rule(&mut self, id: u32) {
        let patterns_changed = self.count_fqdn_patterns(id, false);
        let Some(entry) = self.rules.remove(&id) else {
            return;
        };
        for &subject in &entry.subjects {
            let Some(state) = self.subjects.get_mut(&subject) else {
                continue;
            };
            state.rules.remove(&id);
            for direction in Direction::BOTH {
                if entry.rule.touches(direction) {
                    state.touching[direction.index()] -= 1;
                    if entry.rule.default_deny(direction) {
                        state.default_deny[direction.index()] -= 1;
                    }
                }
            }
            let mut changes = Vec::new();
            for source in state.map.sources_of_rule(id) {
                self.stats.contributions_removed += state.map.remove(&source, &mut changes);
            }
            self.delta.record(subject, changes);
            self.refresh_posture(subject);
        }
        if let Some(sel) = entry.subject {
            if let Some(sel_entry) = self.selectors.get_mut(sel) {
                sel_entry.subject_users.remove(&id);
            }
            self.selectors.release(sel);
        }
        for (peer_use, sels) in &entry.peers {
            for &sel in sels {
                if let Some(sel_entry) = self.selectors.get_mut(sel) {
                    sel_entry.peer_users.remove(peer_use);
                }
                self.selectors.release(sel);
            }
        }
        for (cidr, ipblock) in &entry.rule.prefixes {
            self.release_prefix(*cidr, false);
            if *ipblock {
                self.release_prefix(*cidr, true);
            }
        }
        if patterns_changed {
            self.relabel_all_fqdn_ips();
        }
    }

    /// Adds every contribution of `rule` to `subject`.
    fn apply_rule(&mut self, rule: u32, subject: Identity) {
        let Some(entry) = self.rules.get(&rule) else {
            return;
        };
        let touches = Direction::BOTH.map(|d| (entry.rule.touches(d), entry.rule.default_deny(d)));
        let mut work = Vec::new();
        for (peer_use, sels) in &entry.peers {
            let mut peers = BTreeSet::new();
            for &sel in sels {
                let Some(sel_entry) = self.selectors.get(sel) else {
                    continue;
                };
                if sel_entry.is_wildcard() {
                    peers.insert(Identity::ANY);
                } else {
                    peers.extend(sel_entry.selected.iter().copied());
                }
            }
            work.extend(peers.into_iter().map(|peer| (*peer_use, peer)));
        }
        if let Some(state) = self.subjects.get_mut(&subject) {
            for (i, (touched, default_deny)) in touches.iter().enumerate() {
                if *touched {
                    state.touching[i] += 1;
                    if *default_deny {
                        state.default_deny[i] += 1;
                    }
                }
            }
        }
        for (peer_use, peer) in work {
            self.add_source(subject, peer_use, peer);
        }
    }

    fn add_source(&mut self, subject: Identity, peer_use: PeerUse, peer: Identity) {
        let Some(entry) = self.rules.get(&peer_use.rule) else {
            return;
        };
        let rule = Arc::clone(&entry.rule);
        let Some(peer_rule) = rule
            .peer_rules(peer_use.direction, peer_use.deny)
            .get(usize::from(peer_use.index))
        else {
            return;
        };
        let effects = self.effects(peer_rule, peer_use, subject, peer);
        let Some(state) = self.subjects.get_mut(&subject) else {
            return;
        };
        let mut changes = Vec::with_capacity(effects.len());
        self.stats.contributions_added +=
            state.map.add(source(peer_use, peer), effects, &mut changes);
        self.delta.record(subject, changes);
    }

    fn remove_source(&mut self, subject: Identity, source: &Source) {
        let Some(state) = self.subjects.get_mut(&subject) else {
            return;
        };
        let mut changes = Vec::new();
        self.stats.contributions_removed += state.map.remove(source, &mut changes);
        self.delta.record(subject, changes);
    }

    /// The keys one peer rule contributes for one peer of one subject.
    fn effects(
        &self,
        peer_rule: &PeerRule,
        peer_use: PeerUse,
        subject: Identity,
        peer: Identity,
    ) -> Vec<(Key, Effect)> {
        let direction = peer_use.direction;
        let plain = if peer_use.deny {
            Effect::Deny
        } else {
            Effect::Allow
        };
        if peer_rule.l4.is_all() {
            return vec![(Key::any(direction, peer), plain)];
        }
        let mut out = Vec::with_capacity(peer_rule.l4.ports.len() + peer_rule.l4.icmps.len());
        for port in &peer_rule.l4.ports {
            let effect = match (&port.l7, peer_use.deny) {
                (_, true) => Effect::Deny,
                (Some(l7), false) => Effect::L7(Arc::clone(l7)),
                (None, false) => Effect::Allow,
            };
            match &port.port {
                PortSpec::All => {
                    for &proto in protocols(port.protocol) {
                        out.push((Key::new(direction, peer, proto, 0, 0), effect.clone()));
                    }
                }
                PortSpec::Range(lo, hi) => {
                    for &proto in protocols(port.protocol) {
                        for (start, len) in port_range_prefixes(*lo, *hi) {
                            out.push((
                                Key::new(direction, peer, proto, start, len),
                                effect.clone(),
                            ));
                        }
                    }
                }
                PortSpec::Named(name) => {
                    let wanted = protocols(port.protocol);
                    for (proto, number) in self.resolve_named_port(direction, subject, peer, name) {
                        if wanted.contains(&proto) {
                            out.push((
                                Key::new(direction, peer, proto, number, 16),
                                effect.clone(),
                            ));
                        }
                    }
                }
            }
        }
        for icmp in &peer_rule.l4.icmps {
            let proto = match icmp.family {
                IcmpFamily::V4 => PROTO_ICMP,
                IcmpFamily::V6 => PROTO_ICMPV6,
            };
            out.push((
                Key::new(direction, peer, proto, u16::from(icmp.icmp_type), 16),
                plain.clone(),
            ));
        }
        out
    }

    /// Ingress named ports are the subject's own container ports; egress ones the peer's, or
    /// any pod's when the peer is the wildcard.
    fn resolve_named_port(
        &self,
        direction: Direction,
        subject: Identity,
        peer: Identity,
        name: &str,
    ) -> Vec<(u8, u16)> {
        let owner = match direction {
            Direction::Ingress => subject,
            Direction::Egress => peer,
        };
        if owner == Identity::ANY {
            return self
                .named_port_union
                .get(name)
                .map(|ports| ports.keys().copied().collect())
                .unwrap_or_default();
        }
        self.identities
            .get(&owner)
            .and_then(|e| e.named_ports.get(name))
            .map(|ports| ports.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Adds or removes one identity's named ports from the union; true if the union changed.
    fn count_named_ports(&mut self, ports: &NamedPorts, add: bool) -> bool {
        let mut changed = false;
        for (name, set) in ports {
            let counts = self.named_port_union.entry(name.clone()).or_default();
            for port in set {
                if add {
                    let n = counts.entry(*port).or_insert(0);
                    *n += 1;
                    changed |= *n == 1;
                } else if let Some(n) = counts.get_mut(port) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(port);
                        changed = true;
                    }
                }
            }
            if counts.is_empty() {
                self.named_port_union.remove(name);
            }
        }
        changed
    }

    /// Egress rules to the wildcard peer with named ports follow the union of all named ports.
    fn refresh_wildcard_named_ports(&mut self) {
        let mut work = Vec::new();
        for (id, entry) in &self.rules {
            for (peer_use, sels) in &entry.peers {
                let named = peer_use.direction == Direction::Egress
                    && entry
                        .rule
                        .peer_rules(peer_use.direction, peer_use.deny)
                        .get(usize::from(peer_use.index))
                        .is_some_and(|pr| pr.l4.has_named_ports());
                let wildcard = sels
                    .iter()
                    .any(|s| self.selectors.get(*s).is_some_and(|e| e.is_wildcard()));
                if named && wildcard {
                    work.extend(entry.subjects.iter().map(|s| (*id, *peer_use, *s)));
                }
            }
        }
        for (_, peer_use, subject) in work {
            self.remove_source(subject, &source(peer_use, Identity::ANY));
            self.add_source(subject, peer_use, Identity::ANY);
        }
    }

    /// Enforcement per direction and the synthetic contributions that depend on it.
    fn refresh_posture(&mut self, subject: Identity) {
        let mode = self.config.enforcement;
        let allow_localhost = self.config.allow_localhost;
        let Some(state) = self.subjects.get_mut(&subject) else {
            return;
        };
        let mut changes = Vec::new();
        for direction in Direction::BOTH {
            let i = direction.index();
            let touched = state.touching[i] > 0;
            let enforced = match mode {
                EnforcementMode::Default => touched,
                EnforcementMode::Always => true,
                EnforcementMode::Never => false,
            };
            if state.map.set_enforced(direction, enforced) {
                self.delta.enforcement.push((subject, direction, enforced));
            }
            let synthetic = Source::DefaultAllow(direction);
            let want = touched && state.default_deny[i] == 0;
            if want != state.map.has_source(&synthetic) {
                if want {
                    let effects = vec![(Key::any(direction, Identity::ANY), Effect::Allow)];
                    state.map.add(synthetic, effects, &mut changes);
                } else {
                    state.map.remove(&synthetic, &mut changes);
                }
            }
        }
        let want = allow_localhost && state.map.is_enforced(Direction::Ingress);
        if want != state.map.has_source(&Source::Localhost) {
            if want {
                let effects = vec![(Key::any(Direction::Ingress, Identity::HOST), Effect::Allow)];
                state.map.add(Source::Localhost, effects, &mut changes);
            } else {
                state.map.remove(&Source::Localhost, &mut changes);
            }
        }
        self.delta.record(subject, changes);
    }

    fn acquire_prefix(&mut self, cidr: Cidr, ipblock: bool) {
        if let Some((_, users)) = self.prefixes.get_mut(&(cidr, ipblock)) {
            *users += 1;
            return;
        }
        let labels = if ipblock {
            ipblock_labels(cidr)
        } else {
            world_prefix_labels(cidr)
        };
        let preferred = self.restored_prefixes.get(&(cidr, ipblock)).copied();
        let Ok(allocation) = self.local_scope.allocate_preferring(&labels, preferred) else {
            tracing::warn!(%cidr, "node-local identity space exhausted; prefix not selectable");
            return;
        };
        self.prefixes
            .insert((cidr, ipblock), (allocation.identity, 1));
        self.add_identity(allocation.identity, labels, NamedPorts::new(), false);
    }

    fn release_prefix(&mut self, cidr: Cidr, ipblock: bool) {
        let Some((identity, users)) = self.prefixes.get_mut(&(cidr, ipblock)) else {
            return;
        };
        *users -= 1;
        if *users == 0 {
            let identity = *identity;
            self.prefixes.remove(&(cidr, ipblock));
            self.local_scope.release(identity);
            self.drop_identity(identity);
        }
    }
}

fn source(peer_use: PeerUse, peer: Identity) -> Source {
    Source::Rule {
        rule: peer_use.rule,
        direction: peer_use.direction,
        deny: peer_use.deny,
        index: peer_use.index,
        peer,
    }
}

/// `ANY` with a port means each of TCP, UDP and SCTP (never ICMP).
fn protocols(protocol: Protocol) -> &'static [u8] {
    match protocol {
        Protocol::Tcp => &[PROTO_TCP],
        Protocol::Udp => &[PROTO_UDP],
        Protocol::Sctp => &[PROTO_SCTP],
        Protocol::Any => &[PROTO_TCP, PROTO_UDP, PROTO_SCTP],
    }
}

#[cfg(test)]
mod tests;
