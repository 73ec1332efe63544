//! The `fqdn-names` table: what DNS answers told the node, as Cilium's DNS cache holds it. The
//! DNS proxy writes a row per (address, name) of an allowed answer, until when it holds; the
//! derivation gives each address an identity carrying the `toFQDNs` selectors its names match.
//! The agent deletes a row once it has expired and no connection to its address is alive.

use std::net::Ipv4Addr;

use statedb::{Db, Index, KeySet, Table, TableSchema};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FqdnName {
    pub ipv4: Ipv4Addr,
    /// Lowercase, without the trailing dot.
    pub name: String,
    /// Seconds since the Unix epoch when the answer stops holding: its TTL (at least the
    /// agent's minimum) after it was learned.
    pub expires: u64,
}

impl FqdnName {
    pub fn new(ipv4: Ipv4Addr, name: &str, expires: u64) -> FqdnName {
        FqdnName {
            ipv4,
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            expires,
        }
    }
}

pub const FQDN_NAME_KEY: Index<FqdnName, (Ipv4Addr, String)> =
    Index::new("key", true, |r| KeySet::One((r.ipv4, r.name.clone())));

pub fn register_fqdn_names_table(db: &Db) -> Result<Table<FqdnName>, statedb::Error> {
    db.register_table(TableSchema::new("fqdn-names", FQDN_NAME_KEY))
}
