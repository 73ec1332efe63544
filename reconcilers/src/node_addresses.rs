//! The `node-addresses` table: the node's own IPv4 addresses, which the derivation gives the
//! `reserved:host` identity in the ipcache (Cilium's host endpoint). The agent writes the
//! addresses it has at start and follows the kernel's address changes, so an address added
//! later is the host's too, and a removed one stops being.

use std::net::Ipv4Addr;

use statedb::{Db, Index, KeySet, Table, TableSchema};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddress {
    pub ipv4: Ipv4Addr,
}

pub const NODE_ADDRESS_KEY: Index<NodeAddress, Ipv4Addr> =
    Index::new("ipv4", true, |r| KeySet::One(r.ipv4));

pub fn register_node_addresses_table(db: &Db) -> Result<Table<NodeAddress>, statedb::Error> {
    db.register_table(TableSchema::new("node-addresses", NODE_ADDRESS_KEY))
}
