//! `datapath-endpoints` rows into the `endpoints` map, and both programs attached to each
//! endpoint's host veth.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bpf::{Datapath, EndpointFlags, EndpointInfo, Endpoints, Interface};
use policy::rule::Direction;
use statedb::{ReadTxn, Revision, Table, Txn as _};

use super::{DatapathError, lock};
use crate::datapath::{DATAPATH_ENDPOINT_IPV4, DatapathEndpoint, IpcacheEntry, PolicyEntry};
use crate::operations::Operations;
use crate::reconciler::Reconciler;

/// The `endpoints` map value of a row.
pub fn endpoint_info(endpoint: &DatapathEndpoint) -> EndpointInfo {
    let mut flags = EndpointFlags::NONE;
    if endpoint.enforces(Direction::Ingress) {
        flags = flags | EndpointFlags::ENFORCE_INGRESS;
    }
    if endpoint.enforces(Direction::Egress) {
        flags = flags | EndpointFlags::ENFORCE_EGRESS;
    }
    EndpointInfo {
        endpoint_id: u32::from(endpoint.endpoint_id),
        ifindex: endpoint.ifindex,
        identity: endpoint.identity.0,
        mac: endpoint.mac,
        flags,
    }
}

/// Applies [`DatapathEndpoint`] rows: the map entry first, so that the programs find their
/// endpoint from their first packet on, then the programs on the host veth.
///
/// Like Cilium, which regenerates an endpoint's policy before it attaches its programs, a row
/// is written only once the ipcache and policy reconcilers have applied every change the
/// round's transaction sees: the derivation commits an endpoint with its policy entries, so
/// an endpoint never enforces (a new one, or one whose enforcement just turned on) before its
/// allow entries are in the kernel.
///
/// The map is keyed by address and the pins by interface name, the table by endpoint id: a
/// row rewritten with another address or interface leaves the old entry or pins to prune.
#[derive(Debug)]
pub struct EndpointOps {
    /// What a delete checks for rows that took over the deleted row's interface or address.
    table: Table<DatapathEndpoint>,
    datapath: Arc<Mutex<Datapath>>,
    endpoints: Mutex<Endpoints>,
    /// Where the host veths are; the agent's own namespace when `None`.
    host_netns: Option<PathBuf>,
    /// What an update waits for first.
    before: Option<Before>,
}

/// The reconcilers whose maps an endpoint's verdicts depend on, with their tables.
#[derive(Debug)]
pub struct Before {
    pub ipcache: (Table<IpcacheEntry>, Reconciler<IpcacheEntry>),
    pub policy: (Table<PolicyEntry>, Reconciler<PolicyEntry>),
}

impl Before {
    async fn wait(&self, txn: &ReadTxn) {
        let (table, reconciler) = &self.ipcache;
        reconciler.wait_reconciled(txn.revision(table)).await;
        let (table, reconciler) = &self.policy;
        reconciler.wait_reconciled(txn.revision(table)).await;
    }
}

impl EndpointOps {
    /// Opens the `endpoints` map's handle.
    pub fn new(
        table: Table<DatapathEndpoint>,
        datapath: Arc<Mutex<Datapath>>,
        host_netns: Option<PathBuf>,
    ) -> Result<EndpointOps, bpf::Error> {
        let endpoints = Mutex::new(lock(&datapath).endpoints()?);
        Ok(EndpointOps {
            table,
            datapath,
            endpoints,
            host_netns,
            before: None,
        })
    }

    /// Makes every update wait for these reconcilers first.
    #[must_use]
    pub fn after(self, before: Before) -> EndpointOps {
        EndpointOps {
            before: Some(before),
            ..self
        }
    }

    fn interface<'a>(&'a self, ifname: &'a str) -> Interface<'a> {
        Interface {
            name: ifname,
            netns: self.host_netns.as_deref(),
        }
    }

    fn update_one(&self, endpoint: &DatapathEndpoint) -> Result<(), DatapathError> {
        let error = |source| DatapathError::Endpoint {
            endpoint_id: endpoint.endpoint_id,
            ifname: endpoint.ifname.clone(),
            source,
        };
        lock(&self.endpoints)
            .insert(endpoint.ipv4, &endpoint_info(endpoint))
            .map_err(error)?;
        // On a link pinned earlier (a restart) this swaps the program in place.
        lock(&self.datapath)
            .attach(&self.interface(&endpoint.ifname))
            .map_err(error)
    }

    fn delete_one(&self, txn: &ReadTxn, endpoint: &DatapathEndpoint) -> Result<(), DatapathError> {
        let error = |source| DatapathError::Endpoint {
            endpoint_id: endpoint.endpoint_id,
            ifname: endpoint.ifname.clone(),
            source,
        };
        // A round applies its updates before its deletes: a row that took over the interface
        // or the address in the same round has already written it, and keeps it.
        let taken_over = txn.all(&self.table).any(|e| {
            e.object.ifname == endpoint.ifname && e.object.endpoint_id != endpoint.endpoint_id
        });
        if !taken_over {
            // Removing the pins is all a detach takes, so a vanished interface (whose links
            // the kernel already dropped) detaches fine.
            lock(&self.datapath)
                .detach(&self.interface(&endpoint.ifname))
                .map_err(error)?;
        }
        if txn
            .get(&self.table, &DATAPATH_ENDPOINT_IPV4, &endpoint.ipv4)
            .is_none_or(|e| e.object.endpoint_id == endpoint.endpoint_id)
        {
            lock(&self.endpoints).remove(endpoint.ipv4).map_err(error)?;
        }
        Ok(())
    }
}

impl Operations<DatapathEndpoint> for EndpointOps {
    type Error = DatapathError;

    async fn update(
        &self,
        txn: &ReadTxn,
        _: Revision,
        endpoint: &Arc<DatapathEndpoint>,
    ) -> Result<(), DatapathError> {
        if let Some(before) = &self.before {
            before.wait(txn).await;
        }
        self.update_one(endpoint)
    }

    async fn delete(
        &self,
        txn: &ReadTxn,
        _: Revision,
        endpoint: &Arc<DatapathEndpoint>,
    ) -> Result<(), DatapathError> {
        self.delete_one(txn, endpoint)
    }

    async fn prune(
        &self,
        _: &ReadTxn,
        desired: &[Arc<DatapathEndpoint>],
    ) -> Result<(), DatapathError> {
        let addresses: HashSet<_> = desired.iter().map(|e| e.ipv4).collect();
        let ifnames: HashSet<&str> = desired.iter().map(|e| e.ifname.as_str()).collect();
        let prune = |map, source| DatapathError::Prune { map, source };
        let mut first_error = None;
        {
            let mut endpoints = lock(&self.endpoints);
            for (addr, info) in endpoints.iter().map_err(|e| prune("endpoints", e))? {
                if addresses.contains(&addr) {
                    continue;
                }
                tracing::info!(%addr, endpoint_id = info.endpoint_id, "pruning endpoint not in the datapath-endpoints table");
                if let Err(err) = endpoints.remove(addr) {
                    first_error.get_or_insert(prune("endpoints", err));
                }
            }
        }
        let datapath = lock(&self.datapath);
        let attached = datapath
            .attached_interfaces(self.host_netns.as_deref())
            .map_err(|e| prune("links", e))?;
        for ifname in attached {
            if ifnames.contains(ifname.as_str()) {
                continue;
            }
            tracing::info!(%ifname, "detaching from an interface of no endpoint");
            if let Err(err) = datapath.detach(&self.interface(&ifname)) {
                first_error.get_or_insert(prune("links", err));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
