//! The tables the policy derivation writes and the datapath reconcilers read: what the pinned
//! eBPF maps must hold, one row per map entry, each with its reconciliation status.
//!
//! - `identities`: every identity the node knows, with its labels (`myelin identity list`).
//! - `ipcache`: address prefixes and their identities (the `ipcache` map, and for NetworkPolicy
//!   `ipBlock` peers the secondary `ipblock` map).
//! - `datapath-endpoints`: the node's ready endpoints with their identity and enforcement (the
//!   `endpoints` map, and the programs attached to each endpoint's host veth).
//! - `policy-entries`: the resolved policy map entries of every endpoint (the `policy` map).
//! - `l7-rules`: the L7 rules behind each redirect entry, which the proxy enforces. Not
//!   reconciled: the proxy reads it at each request.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

use policy::identity::Identity;
use policy::l7::{L7Parser, L7Rules};
use policy::mapstate::{Key, Source, Verdict};
use policy::rule::Direction;
use schema::cidr::Cidr;
use schema::labels::Labels;
use statedb::{Db, Index, KeySet, Table, TableSchema};

use crate::status::{Reconcilable, Status};

/// One identity and its security labels. Not reconciled into a target: it is what the CLI
/// lists and what flows are enriched from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRow {
    pub identity: Identity,
    pub labels: Labels,
    /// Endpoints on this node have it (so it has a map state).
    pub local: bool,
}

pub const IDENTITY_ID: Index<IdentityRow, u32> =
    Index::new("id", true, |r| KeySet::One(r.identity.0));

pub fn register_identities_table(db: &Db) -> Result<Table<IdentityRow>, statedb::Error> {
    db.register_table(TableSchema::new("identities", IDENTITY_ID))
}

/// Which ipcache map an entry belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpcacheKind {
    /// The primary map: an address's identity (pods, CIDR and FQDN identities, world).
    Primary,
    /// NetworkPolicy `ipBlock` identities, which also cover pod addresses; the datapath consults
    /// them only for allows (SEMANTICS.md: `ipBlock` matches pod IPs).
    IpBlock,
}

/// One IPv4 prefix and its identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpcacheEntry {
    pub kind: IpcacheKind,
    /// An IPv4 prefix (the datapath is IPv4-only today).
    pub prefix: Cidr,
    pub identity: Identity,
    pub status: Status,
}

impl IpcacheEntry {
    pub fn key(&self) -> IpcacheKey {
        ipcache_key(self.kind, self.prefix)
    }
}

/// (ipblock map?, network address, prefix length).
pub type IpcacheKey = (bool, Ipv4Addr, u8);

pub fn ipcache_key(kind: IpcacheKind, prefix: Cidr) -> IpcacheKey {
    let addr = match prefix.network().addr() {
        std::net::IpAddr::V4(v4) => v4,
        std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    (kind == IpcacheKind::IpBlock, addr, prefix.prefix_len())
}

impl Reconcilable for IpcacheEntry {
    fn status(&self) -> &Status {
        &self.status
    }
    fn with_status(&self, status: Status) -> Self {
        IpcacheEntry {
            status,
            ..self.clone()
        }
    }
}

pub const IPCACHE_KEY: Index<IpcacheEntry, IpcacheKey> =
    Index::new("key", true, |e| KeySet::One(e.key()));

pub fn register_ipcache_table(db: &Db) -> Result<Table<IpcacheEntry>, statedb::Error> {
    db.register_table(TableSchema::new("ipcache", IPCACHE_KEY))
}

/// A ready endpoint as the datapath sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatapathEndpoint {
    /// The endpoint id (`endpoints` table), the first field of its policy map keys.
    pub endpoint_id: u16,
    pub ipv4: Ipv4Addr,
    /// The host side of the pod's veth, in the agent's namespace: where the programs attach.
    pub ifindex: u32,
    pub ifname: String,
    /// The pod interface's MAC address.
    pub mac: [u8; 6],
    pub identity: Identity,
    /// Whether policy is enforced, indexed by [`Direction::index`] (ingress, egress).
    pub enforce: [bool; 2],
    pub status: Status,
}

impl DatapathEndpoint {
    pub fn enforces(&self, direction: Direction) -> bool {
        self.enforce[direction.index()]
    }
}

impl Reconcilable for DatapathEndpoint {
    fn status(&self) -> &Status {
        &self.status
    }
    fn with_status(&self, status: Status) -> Self {
        DatapathEndpoint {
            status,
            ..self.clone()
        }
    }
}

pub const DATAPATH_ENDPOINT_ID: Index<DatapathEndpoint, u16> =
    Index::new("id", true, |e| KeySet::One(e.endpoint_id));

pub const DATAPATH_ENDPOINT_IPV4: Index<DatapathEndpoint, Ipv4Addr> =
    Index::new("ipv4", true, |e| KeySet::One(e.ipv4));

pub fn register_datapath_endpoints_table(
    db: &Db,
) -> Result<Table<DatapathEndpoint>, statedb::Error> {
    db.register_table(
        TableSchema::new("datapath-endpoints", DATAPATH_ENDPOINT_ID)
            .with_index(DATAPATH_ENDPOINT_IPV4),
    )
}

/// One resolved policy map entry of one endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEntry {
    pub endpoint_id: u16,
    pub key: Key,
    pub verdict: Verdict,
    /// Names the policies behind the verdict (a [`PolicyCookie`] row); 0: none (a default
    /// or `allow-localhost` entry).
    pub cookie: u32,
    /// The proxy listener a redirect goes to (0: none, the datapath then just allows).
    pub proxy_port: u16,
    pub status: Status,
}

impl PolicyEntry {
    pub fn primary_key(&self) -> PolicyEntryKey {
        policy_entry_key(self.endpoint_id, &self.key)
    }
}

/// (endpoint id, direction, peer identity, protocol << 24 | port << 8 | port prefix length).
pub type PolicyEntryKey = (u16, u8, u32, u32);

pub fn policy_entry_key(endpoint_id: u16, key: &Key) -> PolicyEntryKey {
    let direction = match key.direction {
        Direction::Ingress => 0,
        Direction::Egress => 1,
    };
    let l4 = (u32::from(key.proto) << 24) | (u32::from(key.port) << 8) | u32::from(key.port_prefix);
    (endpoint_id, direction, key.identity.0, l4)
}

impl Reconcilable for PolicyEntry {
    fn status(&self) -> &Status {
        &self.status
    }
    fn with_status(&self, status: Status) -> Self {
        PolicyEntry {
            status,
            ..self.clone()
        }
    }
}

pub const POLICY_ENTRY_KEY: Index<PolicyEntry, PolicyEntryKey> =
    Index::new("key", true, |e| KeySet::One(e.primary_key()));

/// All entries of one endpoint: `myelin bpf policy get`, and dropping an endpoint's entries.
pub const POLICY_ENTRY_ENDPOINT: Index<PolicyEntry, u16> =
    Index::new("endpoint", false, |e| KeySet::One(e.endpoint_id));

pub fn register_policy_entries_table(db: &Db) -> Result<Table<PolicyEntry>, statedb::Error> {
    db.register_table(
        TableSchema::new("policy-entries", POLICY_ENTRY_KEY).with_index(POLICY_ENTRY_ENDPOINT),
    )
}

/// A policy as flows name it (Hubble's `flow.Policy`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyRef {
    /// `CiliumNetworkPolicy`, `CiliumClusterwideNetworkPolicy` or `NetworkPolicy`.
    pub kind: String,
    /// Empty for cluster-wide policies.
    pub namespace: String,
    pub name: String,
}

/// The policies a policy map entry's cookie stands for: the datapath reports the cookie of the
/// entry that decided a connection, and flows name these. One row per distinct set of
/// policies; a number is never given to another set while the agent runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyCookie {
    pub cookie: u32,
    pub policies: Vec<PolicyRef>,
}

pub const POLICY_COOKIE: Index<PolicyCookie, u32> =
    Index::new("cookie", true, |c| KeySet::One(c.cookie));

pub fn register_policy_cookies_table(db: &Db) -> Result<Table<PolicyCookie>, statedb::Error> {
    db.register_table(TableSchema::new("policy-cookies", POLICY_COOKIE))
}

/// The proxy listeners' ports, one per (parser, direction), as the derivation writes them into
/// redirect entries. A listener that does not exist has none (port 0).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyPorts(BTreeMap<(L7Parser, Direction), u16>);

impl ProxyPorts {
    pub fn new(ports: impl IntoIterator<Item = ((L7Parser, Direction), u16)>) -> ProxyPorts {
        ProxyPorts(ports.into_iter().collect())
    }

    pub fn port(&self, parser: L7Parser, direction: Direction) -> u16 {
        self.0.get(&(parser, direction)).copied().unwrap_or(0)
    }

    /// The port a policy map entry with this verdict carries.
    pub fn for_verdict(&self, verdict: Verdict, direction: Direction) -> u16 {
        match verdict {
            Verdict::Redirect(parser) => self.port(parser, direction),
            Verdict::Allow | Verdict::Deny => 0,
        }
    }
}

/// The L7 rules at one redirect entry of one endpoint: what its L7 contributions allow. The
/// proxy combines the rows (and plain allows) of every key covering a request, as
/// `MapState::l7_policy` does.
#[derive(Clone, Debug)]
pub struct L7RulesRow {
    pub endpoint_id: u16,
    pub key: Key,
    pub rules: Vec<(Source, Arc<L7Rules>)>,
}

impl L7RulesRow {
    pub fn primary_key(&self) -> PolicyEntryKey {
        policy_entry_key(self.endpoint_id, &self.key)
    }

    /// Same sources with the same compiled rules (rules are shared, not rebuilt, while their
    /// policy is unchanged).
    pub fn same_rules(&self, other: &L7RulesRow) -> bool {
        self.rules.len() == other.rules.len()
            && self
                .rules
                .iter()
                .zip(&other.rules)
                .all(|((s1, r1), (s2, r2))| s1 == s2 && Arc::ptr_eq(r1, r2))
    }
}

pub const L7_RULES_KEY: Index<L7RulesRow, PolicyEntryKey> =
    Index::new("key", true, |e| KeySet::One(e.primary_key()));

pub fn register_l7_rules_table(db: &Db) -> Result<Table<L7RulesRow>, statedb::Error> {
    db.register_table(TableSchema::new("l7-rules", L7_RULES_KEY))
}
