//! Writing a round's outcome: each marked row is recomputed from the model and compared with
//! what the table holds; only rows whose content differs are written (with a pending status)
//! or deleted, so a row that comes out the same keeps its revision and its status.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use policy::identity::Identity;
use policy::mapstate::{Key, Source, Verdict};
use policy::rule::Direction;
use statedb::{Table, Txn, WriteTxn};

use super::DeriveTables;
use super::model::{Dirty, Model};
use crate::datapath::{
    DATAPATH_ENDPOINT_ID, DatapathEndpoint, IDENTITY_ID, IPCACHE_KEY, IdentityRow, IpcacheEntry,
    IpcacheKey, L7_RULES_KEY, L7RulesRow, POLICY_ENTRY_ENDPOINT, POLICY_ENTRY_KEY, PolicyCookie,
    PolicyEntry, PolicyRef, ProxyPorts, policy_entry_key,
};
use crate::status::Status;
use policy::mapstate::Effect;

/// Rows written and deleted in one table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableCounts {
    pub written: usize,
    pub deleted: usize,
}

/// What one round wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub identities: TableCounts,
    pub ipcache: TableCounts,
    pub datapath_endpoints: TableCounts,
    pub policy_entries: TableCounts,
    pub l7_rules: TableCounts,
    /// Writes the table refused (logged).
    pub errors: usize,
}

impl Written {
    pub fn total(&self) -> usize {
        [
            self.identities,
            self.ipcache,
            self.datapath_endpoints,
            self.policy_entries,
            self.l7_rules,
        ]
        .iter()
        .map(|c| c.written + c.deleted)
        .sum()
    }
}

/// The datapath endpoints as written, by id, with the identity their policy entries follow.
#[derive(Default)]
pub(super) struct EndpointIdentities {
    identity_of: BTreeMap<u16, Identity>,
    by_identity: BTreeMap<Identity, BTreeSet<u16>>,
}

impl EndpointIdentities {
    fn set(&mut self, endpoint: u16, identity: Option<Identity>) -> bool {
        let old = match identity {
            Some(id) => self.identity_of.insert(endpoint, id),
            None => self.identity_of.remove(&endpoint),
        };
        if old == identity {
            return false;
        }
        if let Some(old) = old
            && let Some(set) = self.by_identity.get_mut(&old)
        {
            set.remove(&endpoint);
            if set.is_empty() {
                self.by_identity.remove(&old);
            }
        }
        if let Some(new) = identity {
            self.by_identity.entry(new).or_default().insert(endpoint);
        }
        true
    }

    fn endpoints_of(&self, identity: Identity) -> impl Iterator<Item = u16> + '_ {
        self.by_identity
            .get(&identity)
            .into_iter()
            .flatten()
            .copied()
    }
}

pub(super) struct Writer<'a> {
    pub(super) txn: &'a mut WriteTxn,
    pub(super) tables: &'a DeriveTables,
    pub(super) model: &'a Model,
    pub(super) cookies: &'a mut Cookies,
    pub(super) proxy_ports: &'a ProxyPorts,
    pub(super) written: Written,
}

/// Cookie numbers per distinct set of policies. A number is never reused while the agent
/// runs, so a flow decoded late still names the policies its entry had.
#[derive(Debug, Default)]
pub(super) struct Cookies {
    by_policies: HashMap<Vec<PolicyRef>, u32>,
}

impl Writer<'_> {
    pub(super) fn write(&mut self, dirty: &Dirty, endpoints: &mut EndpointIdentities) {
        for id in &dirty.identities {
            self.identity(*id);
        }
        for key in &dirty.ipcache {
            self.ipcache(key);
        }
        let mut marked = dirty.endpoints.clone();
        for subject in &dirty.subjects {
            marked.extend(endpoints.endpoints_of(*subject));
        }
        let desired: Vec<(u16, Option<DatapathEndpoint>)> = marked
            .iter()
            .map(|id| (*id, self.datapath_endpoint(*id)))
            .collect();
        // Deletes first: an address may move from one endpoint to another in one round, and
        // the table keeps addresses unique.
        let mut resync = BTreeSet::new();
        for (id, want) in &desired {
            let have = self
                .txn
                .get(&self.tables.datapath_endpoints, &DATAPATH_ENDPOINT_ID, id);
            if let Some(have) = have.map(|e| Arc::clone(&e.object))
                && want.as_ref().is_none_or(|w| w.ipv4 != have.ipv4)
            {
                let table = self.tables.datapath_endpoints.clone();
                self.delete(&table, &have, Counter::DatapathEndpoints);
            }
            if endpoints.set(*id, want.as_ref().map(|w| w.identity)) {
                resync.insert(*id);
            }
        }
        for (id, want) in desired {
            let Some(want) = want else { continue };
            let have = self
                .txn
                .get(&self.tables.datapath_endpoints, &DATAPATH_ENDPOINT_ID, &id);
            if have.is_some_and(|h| same_endpoint(&h.object, &want)) {
                continue;
            }
            let table = self.tables.datapath_endpoints.clone();
            self.insert(&table, want, Counter::DatapathEndpoints);
        }
        for (identity, key) in &dirty.entries {
            let verdict = wanted(self.model.engine.map_state(*identity), key);
            let endpoints: Vec<u16> = endpoints
                .endpoints_of(*identity)
                .filter(|endpoint| !resync.contains(endpoint))
                .collect();
            if endpoints.is_empty() {
                continue;
            }
            let want = verdict.map(|v| (v, self.cookie(*identity, key)));
            for endpoint in endpoints {
                self.policy_entry(endpoint, *identity, key, want);
            }
        }
        for endpoint in resync {
            let identity = endpoints.identity_of.get(&endpoint).copied();
            self.resync_entries(endpoint, identity);
        }
    }

    fn identity(&mut self, identity: Identity) {
        let want = self
            .model
            .engine
            .labels(identity)
            .map(|labels| IdentityRow {
                identity,
                labels: labels.clone(),
                local: self.model.is_local(identity),
            });
        let have = self
            .txn
            .get(&self.tables.identities, &IDENTITY_ID, &identity.0)
            .map(|e| Arc::clone(&e.object));
        let table = self.tables.identities.clone();
        match (have, want) {
            (Some(have), None) => self.delete(&table, &have, Counter::Identities),
            (have, Some(want)) if have.as_deref() != Some(&want) => {
                self.insert(&table, want, Counter::Identities);
            }
            _ => {}
        }
    }

    fn ipcache(&mut self, key: &IpcacheKey) {
        let want = self
            .model
            .claims
            .winner(key)
            .map(|(kind, prefix, identity)| IpcacheEntry {
                kind: *kind,
                prefix: *prefix,
                identity: *identity,
                status: Status::pending(),
            });
        let have = self
            .txn
            .get(&self.tables.ipcache, &IPCACHE_KEY, key)
            .map(|e| Arc::clone(&e.object));
        let table = self.tables.ipcache.clone();
        match (have, want) {
            (Some(have), None) => self.delete(&table, &have, Counter::Ipcache),
            (have, Some(want))
                if have.as_deref().is_none_or(|h| {
                    (h.kind, h.prefix, h.identity) != (want.kind, want.prefix, want.identity)
                }) =>
            {
                self.insert(&table, want, Counter::Ipcache);
            }
            _ => {}
        }
    }

    fn datapath_endpoint(&self, id: u16) -> Option<DatapathEndpoint> {
        let view = self.model.endpoint_by_id(id)?;
        if !view.local {
            return None;
        }
        let endpoint = &view.endpoint;
        let host = endpoint.host.as_ref()?;
        let map = self.model.engine.map_state(view.identity);
        let enforce = Direction::BOTH.map(|d| map.is_some_and(|m| m.is_enforced(d)));
        Some(DatapathEndpoint {
            endpoint_id: endpoint.id,
            ipv4: endpoint.ipv4,
            ifindex: host.ifindex,
            ifname: host.ifname.clone(),
            mac: host.container_mac,
            identity: view.identity,
            enforce,
            status: Status::pending(),
        })
    }

    /// The cookie naming the policies behind `identity`'s entry at `key`, interned (and
    /// written to the cookies table) on first use; 0 when no policy decides it.
    fn cookie(&mut self, identity: Identity, key: &Key) -> u32 {
        let engine = &self.model.engine;
        let Some(map) = engine.map_state(identity) else {
            return 0;
        };
        let mut policies: Vec<PolicyRef> = map
            .deciding_sources(key)
            .into_iter()
            .filter_map(|source| match source {
                Source::Rule { rule, .. } => engine.rule_origin(*rule),
                Source::DefaultAllow(_) | Source::Localhost => None,
            })
            .map(|origin| PolicyRef {
                kind: origin.kind.as_str().to_owned(),
                namespace: origin.namespace.clone().unwrap_or_default(),
                name: origin.name.clone(),
            })
            .collect();
        if policies.is_empty() {
            return 0;
        }
        policies.sort();
        policies.dedup();
        if let Some(cookie) = self.cookies.by_policies.get(&policies) {
            return *cookie;
        }
        let cookie = u32::try_from(self.cookies.by_policies.len() + 1).unwrap_or(u32::MAX);
        self.cookies.by_policies.insert(policies.clone(), cookie);
        let table = self.tables.policy_cookies.clone();
        if let Err(error) = self.txn.insert(&table, PolicyCookie { cookie, policies }) {
            tracing::warn!(%error, cookie, "cookie row not written");
        }
        cookie
    }

    fn policy_entry(
        &mut self,
        endpoint: u16,
        identity: Identity,
        key: &Key,
        want: Option<(Verdict, u32)>,
    ) {
        let pk = policy_entry_key(endpoint, key);
        let have = self
            .txn
            .get(&self.tables.policy_entries, &POLICY_ENTRY_KEY, &pk)
            .map(|e| Arc::clone(&e.object));
        let table = self.tables.policy_entries.clone();
        match (have, want) {
            (Some(have), None) => self.delete(&table, &have, Counter::PolicyEntries),
            (have, Some((verdict, cookie))) => {
                let proxy_port = self.proxy_ports.for_verdict(verdict, key.direction);
                if have.as_ref().is_none_or(|h| {
                    (h.verdict, h.proxy_port, h.cookie) != (verdict, proxy_port, cookie)
                }) {
                    let entry = PolicyEntry {
                        endpoint_id: endpoint,
                        key: *key,
                        verdict,
                        proxy_port,
                        cookie,
                        status: Status::pending(),
                    };
                    self.insert(&table, entry, Counter::PolicyEntries);
                }
            }
            (None, None) => {}
        }
        self.l7_rules(endpoint, identity, key, want.map(|(verdict, _)| verdict));
    }

    /// The L7 rules behind a redirect entry; none for any other verdict.
    fn l7_rules(&mut self, endpoint: u16, identity: Identity, key: &Key, verdict: Option<Verdict>) {
        let want = matches!(verdict, Some(Verdict::Redirect(_)))
            .then(|| self.model.engine.map_state(identity))
            .flatten()
            .map(|map| L7RulesRow {
                endpoint_id: endpoint,
                key: *key,
                rules: map
                    .contributions(key)
                    .filter_map(|(source, effect)| match effect {
                        Effect::L7(rules) => Some((source.clone(), Arc::clone(rules))),
                        Effect::Allow | Effect::Deny => None,
                    })
                    .collect(),
            });
        let have = self
            .txn
            .get(
                &self.tables.l7_rules,
                &L7_RULES_KEY,
                &policy_entry_key(endpoint, key),
            )
            .map(|e| Arc::clone(&e.object));
        let table = self.tables.l7_rules.clone();
        match (have, want) {
            (Some(have), None) => self.delete(&table, &have, Counter::L7Rules),
            (have, Some(want)) if have.as_ref().is_none_or(|h| !h.same_rules(&want)) => {
                self.insert(&table, want, Counter::L7Rules);
            }
            _ => {}
        }
    }

    /// Makes one endpoint's entries exactly its identity's map state (none without one).
    fn resync_entries(&mut self, endpoint: u16, identity: Option<Identity>) {
        let want: BTreeMap<Key, Verdict> = match identity {
            Some(id) => {
                let map = self.model.engine.map_state(id);
                let mut want: BTreeMap<Key, Verdict> = map
                    .map(|m| m.entries().map(|(k, v)| (*k, *v)).collect())
                    .unwrap_or_default();
                for direction in Direction::BOTH {
                    let key = Key::any(direction, Identity::ANY);
                    if let Some(verdict) = wanted(map, &key) {
                        want.insert(key, verdict);
                    }
                }
                want
            }
            None => BTreeMap::new(),
        };
        let have: Vec<Arc<PolicyEntry>> = self
            .txn
            .list(
                &self.tables.policy_entries,
                &POLICY_ENTRY_ENDPOINT,
                &endpoint,
            )
            .map(|e| Arc::clone(&e.object))
            .collect();
        let table = self.tables.policy_entries.clone();
        for entry in &have {
            if !want.contains_key(&entry.key) {
                self.delete(&table, entry, Counter::PolicyEntries);
                if let Some(identity) = identity {
                    self.l7_rules(endpoint, identity, &entry.key, None);
                } else if let Some(row) = self
                    .txn
                    .get(&self.tables.l7_rules, &L7_RULES_KEY, &entry.primary_key())
                    .map(|e| Arc::clone(&e.object))
                {
                    let l7 = self.tables.l7_rules.clone();
                    self.delete(&l7, &row, Counter::L7Rules);
                }
            }
        }
        if let Some(identity) = identity {
            for (key, verdict) in want {
                let cookie = self.cookie(identity, &key);
                self.policy_entry(endpoint, identity, &key, Some((verdict, cookie)));
            }
        }
    }

    fn insert<T: Send + Sync + 'static>(&mut self, table: &Table<T>, row: T, counter: Counter) {
        match self.txn.insert(table, row) {
            Ok(_) => self.counts(counter).written += 1,
            Err(error) => {
                self.written.errors += 1;
                tracing::error!(table = table.name(), %error, "derived row not written");
            }
        }
    }

    fn delete<T: Send + Sync + 'static>(&mut self, table: &Table<T>, row: &T, counter: Counter) {
        match self.txn.delete(table, row) {
            Ok(_) => self.counts(counter).deleted += 1,
            Err(error) => {
                self.written.errors += 1;
                tracing::error!(table = table.name(), %error, "derived row not deleted");
            }
        }
    }

    fn counts(&mut self, counter: Counter) -> &mut TableCounts {
        match counter {
            Counter::Identities => &mut self.written.identities,
            Counter::Ipcache => &mut self.written.ipcache,
            Counter::DatapathEndpoints => &mut self.written.datapath_endpoints,
            Counter::PolicyEntries => &mut self.written.policy_entries,
            Counter::L7Rules => &mut self.written.l7_rules,
        }
    }
}

#[derive(Clone, Copy)]
enum Counter {
    Identities,
    Ipcache,
    DatapathEndpoints,
    PolicyEntries,
    L7Rules,
}

/// Equal but for the status, which belongs to the reconciler.
/// The verdict an endpoint's policy map holds at `key`: its map state's, and in a direction
/// the endpoint does not enforce an allow-all entry, as Cilium writes one
/// (`AllowAllIdentities`). The datapath does not look at the map in that direction, but the
/// entry makes turning enforcement off safe in any order: the policy reconciler writes it
/// before it deletes the entries that no longer apply, so packets meeting the endpoint while
/// it still enforces are allowed, not dropped for want of an entry.
fn wanted(map: Option<&policy::mapstate::MapState>, key: &Key) -> Option<Verdict> {
    let enforced = map.is_some_and(|m| m.is_enforced(key.direction));
    if !enforced && *key == Key::any(key.direction, Identity::ANY) {
        return Some(Verdict::Allow);
    }
    map.and_then(|m| m.get(key))
}

fn same_endpoint(a: &DatapathEndpoint, b: &DatapathEndpoint) -> bool {
    a.endpoint_id == b.endpoint_id
        && a.ipv4 == b.ipv4
        && a.ifindex == b.ifindex
        && a.ifname == b.ifname
        && a.mac == b.mac
        && a.identity == b.identity
        && a.enforce == b.enforce
}
