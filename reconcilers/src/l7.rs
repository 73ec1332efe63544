//! What the L7 proxy enforces for one redirected connection, read from the derivation's tables
//! the way the datapath decided it: the local endpoint by address, the peer's identity from the
//! ipcache (longest prefix, world if none), then every entry on the lookup chain of the peer
//! and of the wildcard, as `MapState::l7_policy` does on the engine's own state.

use std::net::Ipv4Addr;
use std::sync::Arc;

use policy::identity::Identity;
use policy::l7::{L7Request, L7Rules};
use policy::mapstate::{Key, Source, Verdict};
use policy::rule::Direction;
use statedb::Txn;

use crate::datapath::{
    DATAPATH_ENDPOINT_IPV4, DatapathEndpoint, IPCACHE_KEY, IpcacheEntry, IpcacheKind, L7_RULES_KEY,
    L7RulesRow, POLICY_ENTRY_KEY, PolicyEntry, ipcache_key, policy_entry_key,
};
use crate::derive::DeriveTables;

/// The tables a proxy decision reads.
#[derive(Clone, Debug)]
pub struct L7Tables {
    pub datapath_endpoints: statedb::Table<DatapathEndpoint>,
    pub ipcache: statedb::Table<IpcacheEntry>,
    pub policy_entries: statedb::Table<PolicyEntry>,
    pub l7_rules: statedb::Table<L7RulesRow>,
}

impl From<&DeriveTables> for L7Tables {
    fn from(tables: &DeriveTables) -> L7Tables {
        L7Tables {
            datapath_endpoints: tables.datapath_endpoints.clone(),
            ipcache: tables.ipcache.clone(),
            policy_entries: tables.policy_entries.clone(),
            l7_rules: tables.l7_rules.clone(),
        }
    }
}

/// The L7 policy of one endpoint towards one peer on one port.
#[derive(Clone, Debug, Default)]
pub struct ProxyPolicy {
    /// The peer's identity (and its `ipBlock` identity), as the ipcache gives them.
    pub peers: Vec<Identity>,
    /// A plain allow covers this peer and port: every request passes.
    pub allow_all: bool,
    pub rules: Vec<(Source, Arc<L7Rules>)>,
}

impl ProxyPolicy {
    /// Whether `request` passes: everything does under a plain allow, else any L7 rule must
    /// allow it.
    pub fn allows(&self, request: &L7Request<'_>) -> bool {
        self.allow_all || self.rules.iter().any(|(_, rules)| rules.allows(request))
    }
}

/// What the proxy enforces for traffic between the local endpoint at `endpoint` and `peer`
/// on `proto`/`port` in `direction`; `None` if no local endpoint has that address.
pub fn proxy_policy(
    txn: &impl Txn,
    tables: &L7Tables,
    direction: Direction,
    endpoint: Ipv4Addr,
    peer: Ipv4Addr,
    proto: u8,
    port: u16,
) -> Option<ProxyPolicy> {
    let endpoint = txn.get(
        &tables.datapath_endpoints,
        &DATAPATH_ENDPOINT_IPV4,
        &endpoint,
    )?;
    let endpoint_id = endpoint.object.endpoint_id;
    let identity = identity_of(txn, tables, peer);
    let mut policy = ProxyPolicy {
        peers: std::iter::once(identity)
            .chain(ipcache_lookup(txn, tables, IpcacheKind::IpBlock, peer))
            .collect(),
        ..ProxyPolicy::default()
    };
    let identities: Vec<Identity> = policy
        .peers
        .iter()
        .copied()
        .chain([Identity::ANY])
        .collect();
    for identity in identities {
        for key in Key::lookup_chain(direction, identity, proto, port) {
            let pk = policy_entry_key(endpoint_id, &key);
            let Some(entry) = txn.get(&tables.policy_entries, &POLICY_ENTRY_KEY, &pk) else {
                continue;
            };
            match entry.object.verdict {
                Verdict::Allow => policy.allow_all = true,
                Verdict::Redirect(_) => {
                    if let Some(row) = txn.get(&tables.l7_rules, &L7_RULES_KEY, &pk) {
                        policy.rules.extend(
                            row.object
                                .rules
                                .iter()
                                .map(|(source, rules)| (source.clone(), Arc::clone(rules))),
                        );
                    }
                }
                Verdict::Deny => {}
            }
        }
    }
    Some(policy)
}

/// The security identity of `addr` as the datapath sees it: the longest prefix holding it in
/// the ipcache, world if none.
pub fn identity_of(txn: &impl Txn, tables: &L7Tables, addr: Ipv4Addr) -> Identity {
    ipcache_lookup(txn, tables, IpcacheKind::Primary, addr).unwrap_or(Identity::WORLD)
}

/// The identity of the longest prefix holding `addr` in one ipcache map.
fn ipcache_lookup(
    txn: &impl Txn,
    tables: &L7Tables,
    kind: IpcacheKind,
    addr: Ipv4Addr,
) -> Option<Identity> {
    (0..=32u8).rev().find_map(|len| {
        let prefix = schema::cidr::Cidr::new(addr.into(), len).ok()?;
        txn.get(&tables.ipcache, &IPCACHE_KEY, &ipcache_key(kind, prefix))
            .map(|e| e.object.identity)
    })
}
