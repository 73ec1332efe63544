//! The `fqdn-names` table: what DNS answers told the node, as Cilium's DNS cache holds it. The
//! DNS proxy writes a row per (address, name) of an allowed answer; the derivation gives each
//! address an identity carrying the `toFQDNs` selectors its names match.

use std::net::Ipv4Addr;

use statedb::{Db, Index, KeySet, Table, TableSchema};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FqdnName {
    pub ipv4: Ipv4Addr,
    /// Lowercase, without the trailing dot.
    pub name: String,
}

impl FqdnName {
    pub fn new(ipv4: Ipv4Addr, name: &str) -> FqdnName {
        FqdnName {
            ipv4,
            name: name.trim_end_matches('.').to_ascii_lowercase(),
        }
    }
}

pub const FQDN_NAME_KEY: Index<FqdnName, (Ipv4Addr, String)> =
    Index::new("key", true, |r| KeySet::One((r.ipv4, r.name.clone())));

pub fn register_fqdn_names_table(db: &Db) -> Result<Table<FqdnName>, statedb::Error> {
    db.register_table(TableSchema::new("fqdn-names", FQDN_NAME_KEY))
}
