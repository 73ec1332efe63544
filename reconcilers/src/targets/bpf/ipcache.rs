//! `ipcache` rows into the `ipcache` map (primary identities) or the `ipblock` map
//! (NetworkPolicy `ipBlock` identities), by the row's kind.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use bpf::{Datapath, Ipcache, IpcacheValue, Ipv4Prefix};
use schema::cidr::Cidr;
use statedb::{ReadTxn, Revision};

use super::{DatapathError, lock};
use crate::datapath::{IpcacheEntry, IpcacheKind};
use crate::operations::Operations;

/// The map prefix of a row: its network address (host bits cleared) and length.
pub fn ipv4_prefix(prefix: Cidr) -> Result<Ipv4Prefix, DatapathError> {
    match prefix.network().addr() {
        IpAddr::V4(addr) => Ok(Ipv4Prefix::new(addr, prefix.prefix_len())?),
        IpAddr::V6(_) => Err(DatapathError::NotIpv4 { prefix }),
    }
}

/// Applies [`IpcacheEntry`] rows to the `ipcache` and `ipblock` maps.
#[derive(Debug)]
pub struct IpcacheOps {
    ipcache: Mutex<Ipcache>,
    ipblock: Mutex<Ipcache>,
}

impl IpcacheOps {
    /// Opens both maps' handles.
    pub fn new(datapath: &Datapath) -> Result<IpcacheOps, bpf::Error> {
        Ok(IpcacheOps {
            ipcache: Mutex::new(datapath.ipcache()?),
            ipblock: Mutex::new(datapath.ipblock()?),
        })
    }

    fn map(&self, kind: IpcacheKind) -> &Mutex<Ipcache> {
        match kind {
            IpcacheKind::Primary => &self.ipcache,
            IpcacheKind::IpBlock => &self.ipblock,
        }
    }

    fn update_one(&self, entry: &IpcacheEntry) -> Result<(), DatapathError> {
        let prefix = ipv4_prefix(entry.prefix)?;
        lock(self.map(entry.kind)).insert(prefix, &IpcacheValue::new(entry.identity.0))?;
        Ok(())
    }

    fn delete_one(&self, entry: &IpcacheEntry) -> Result<(), DatapathError> {
        // An IPv6 row was never written: nothing to delete.
        let Ok(prefix) = ipv4_prefix(entry.prefix) else {
            return Ok(());
        };
        lock(self.map(entry.kind)).remove(prefix)?;
        Ok(())
    }

    /// Removes every prefix of `kind`'s map that `desired` lacks.
    fn prune_map(
        &self,
        kind: IpcacheKind,
        desired: &HashSet<(IpcacheKind, Ipv4Prefix)>,
    ) -> Result<(), DatapathError> {
        let mut map = lock(self.map(kind));
        let name = map.name();
        let prune = |source| DatapathError::Prune { map: name, source };
        let mut first_error = None;
        for (prefix, value) in map.iter().map_err(prune)? {
            if desired.contains(&(kind, prefix)) {
                continue;
            }
            tracing::info!(map = name, %prefix, identity = value.identity, "pruning entry not in the ipcache table");
            if let Err(err) = map.remove(prefix) {
                first_error.get_or_insert(prune(err));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Operations<IpcacheEntry> for IpcacheOps {
    type Error = DatapathError;

    async fn update(
        &self,
        _: &ReadTxn,
        _: Revision,
        entry: &Arc<IpcacheEntry>,
    ) -> Result<(), DatapathError> {
        self.update_one(entry)
    }

    async fn delete(
        &self,
        _: &ReadTxn,
        _: Revision,
        entry: &Arc<IpcacheEntry>,
    ) -> Result<(), DatapathError> {
        self.delete_one(entry)
    }

    async fn prune(&self, _: &ReadTxn, desired: &[Arc<IpcacheEntry>]) -> Result<(), DatapathError> {
        let desired: HashSet<_> = desired
            .iter()
            .filter_map(|e| Some((e.kind, ipv4_prefix(e.prefix).ok()?)))
            .collect();
        let ipcache = self.prune_map(IpcacheKind::Primary, &desired);
        let ipblock = self.prune_map(IpcacheKind::IpBlock, &desired);
        ipcache.and(ipblock)
    }
}
