//! Datapath targets: the `ipcache`, `datapath-endpoints` and `policy-entries` tables drained
//! into the pinned eBPF maps of one [`bpf::Datapath`], and the programs attached to each
//! endpoint's host veth.
//!
//! Every row is one map entry, so an update is one map write (an overwrite in place, never a
//! delete and re-insert) and a delete one map delete. Prune lists what the maps and link pins
//! hold and removes only what no row asks for: after an agent restart the reconcilers start
//! against the pins the previous agent left ([`bpf::Datapath::open`] reuses them), rewrite
//! every desired entry where it is, and remove only the rest, so established connections and
//! enforcement carry on.
//!
//! Map writes are single `bpf(2)` calls of a microsecond or so and run on the reconciler's task;
//! each map handle sits behind its own mutex, held for one call or one batch, never across an
//! `.await`.

mod endpoints;
mod ipcache;
mod policy;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bpf::Datapath;
use schema::cidr::Cidr;
use statedb::{Db, Table};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use endpoints::{Before, EndpointOps, endpoint_info};
pub use ipcache::{IpcacheOps, ipv4_prefix};
pub use policy::{PolicyOps, policy_key, policy_value};

use crate::cause::Causes;
use crate::datapath::{
    DatapathEndpoint, IpcacheEntry, PolicyEntry, register_datapath_endpoints_table,
    register_ipcache_table, register_policy_entries_table,
};
use crate::reconciler::{Config, ConfigError, Reconciler};

/// Why a datapath target could not apply, remove or prune an entry.
#[derive(Debug, thiserror::Error)]
pub enum DatapathError {
    #[error("{prefix}: the datapath holds ipv4 prefixes only")]
    NotIpv4 { prefix: Cidr },
    #[error("endpoint {endpoint_id} on {ifname}")]
    Endpoint {
        endpoint_id: u16,
        ifname: String,
        #[source]
        source: bpf::Error,
    },
    #[error("policy entry of endpoint {endpoint_id}: {key}")]
    PolicyKey {
        endpoint_id: u16,
        key: ::policy::mapstate::Key,
        #[source]
        source: bpf::Error,
    },
    #[error("prune {map}")]
    Prune {
        map: &'static str,
        #[source]
        source: bpf::Error,
    },
    #[error("open the datapath's maps")]
    Open(#[source] bpf::Error),
    #[error(transparent)]
    Map(#[from] bpf::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A poisoned lock only means another reconcile call panicked midway; the map handle inside
/// is still a valid file descriptor.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The tables the datapath reconcilers read.
#[derive(Clone, Debug)]
pub struct DatapathTables {
    pub ipcache: Table<IpcacheEntry>,
    pub endpoints: Table<DatapathEndpoint>,
    pub policy: Table<PolicyEntry>,
    /// Why `ipcache` and `policy` rows were written, for their reconcilers' spans and delays.
    pub ipcache_causes: Causes,
    pub policy_causes: Causes,
}

impl DatapathTables {
    pub fn register(db: &Db) -> Result<DatapathTables, statedb::Error> {
        Ok(DatapathTables {
            ipcache: register_ipcache_table(db)?,
            endpoints: register_datapath_endpoints_table(db)?,
            policy: register_policy_entries_table(db)?,
            ipcache_causes: Causes::default(),
            policy_causes: Causes::default(),
        })
    }
}

/// The three running datapath reconcilers.
pub struct DatapathReconcilers {
    pub ipcache: Reconciler<IpcacheEntry>,
    pub endpoints: Reconciler<DatapathEndpoint>,
    pub policy: Reconciler<PolicyEntry>,
    /// They end once the shutdown token fires; the datapath is dropped with the last one.
    pub tasks: Vec<JoinHandle<()>>,
}

impl DatapathReconcilers {
    /// Asks all three for a full pass (update everything, then prune) now.
    pub fn trigger_full_reconcile(&self) {
        self.ipcache.trigger_full_reconcile();
        self.endpoints.trigger_full_reconcile();
        self.policy.trigger_full_reconcile();
    }
}

/// Spawns the `bpf-ipcache`, `bpf-endpoints` and `bpf-policy` reconcilers on the current tokio
/// runtime, all three driving `datapath`; an endpoint is written only after the ipcache and
/// policy changes its round sees ([`EndpointOps::after`]). Programs are attached to the endpoints' host veths
/// in the namespace at `host_netns`, the agent's own when `None`.
pub fn spawn_datapath_reconcilers(
    db: &Db,
    tables: &DatapathTables,
    datapath: Datapath,
    host_netns: Option<&Path>,
    shutdown: &CancellationToken,
) -> Result<DatapathReconcilers, DatapathError> {
    let ipcache_ops = IpcacheOps::new(&datapath).map_err(DatapathError::Open)?;
    let policy_ops = PolicyOps::new(&datapath).map_err(DatapathError::Open)?;
    let datapath = Arc::new(Mutex::new(datapath));
    let endpoint_ops = EndpointOps::new(
        tables.endpoints.clone(),
        datapath,
        host_netns.map(Path::to_owned),
    )
    .map_err(DatapathError::Open)?;
    let (ipcache, ipcache_task) = Reconciler::spawn(
        db.clone(),
        tables.ipcache.clone(),
        ipcache_ops,
        Config {
            causes: tables.ipcache_causes.clone(),
            ..Config::new("bpf-ipcache")
        },
        shutdown.clone(),
    )?;
    let (policy, policy_task) = Reconciler::spawn(
        db.clone(),
        tables.policy.clone(),
        policy_ops,
        Config {
            causes: tables.policy_causes.clone(),
            ..Config::new("bpf-policy")
        },
        shutdown.clone(),
    )?;
    let endpoint_ops = endpoint_ops.after(Before {
        ipcache: (tables.ipcache.clone(), ipcache.clone()),
        policy: (tables.policy.clone(), policy.clone()),
    });
    let (endpoints, endpoints_task) = Reconciler::spawn(
        db.clone(),
        tables.endpoints.clone(),
        endpoint_ops,
        Config::new("bpf-endpoints"),
        shutdown.clone(),
    )?;
    Ok(DatapathReconcilers {
        ipcache,
        endpoints,
        policy,
        tasks: vec![ipcache_task, endpoints_task, policy_task],
    })
}
