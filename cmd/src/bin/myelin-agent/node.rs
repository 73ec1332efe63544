//! The node's derived state and datapath: the policy derivation (objects and endpoints in;
//! identities, ipcache, datapath endpoints and policy entries out) and the reconcilers that
//! drain those tables into the pinned eBPF maps and attach the programs.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use bpf::Datapath;
use bpf::maps::policy::{Policy, PolicyKey, PolicyValue};
use policy::identity::Identity;
use reconcilers::cause::Causes;
use reconcilers::datapath::{
    DatapathEndpoint, IpcacheEntry, PolicyCookie, PolicyEntry, ProxyPorts,
    register_identities_table, register_l7_rules_table, register_policy_cookies_table,
};
use reconcilers::derive::{Derivation, DeriveCauses, DeriveConfig, DeriveError, DeriveTables};
use reconcilers::endpoints::Endpoint;
use reconcilers::fqdn::{FqdnName, register_fqdn_names_table};
use reconcilers::l7::L7Tables;
use reconcilers::node_addresses::register_node_addresses_table;
use reconcilers::objects::StoredObject;
use reconcilers::reconciler::{Health, Reconciler};
use reconcilers::targets::bpf::{DatapathReconcilers, DatapathTables, spawn_datapath_reconcilers};
use schema::agent_api::ReconcilerHealth;
use schema::cidr::Cidr;
use statedb::{Db, ReadTxn, Table, Txn};
use tokio_util::sync::CancellationToken;

use crate::views::Tables;

mod addresses;
mod fqdn_cache;
mod l7_proxy;
mod metrics;

pub(crate) use fqdn_cache::CACHE_FILE as FQDN_CACHE_FILE;
pub(crate) use l7_proxy::{BoundProxy, FqdnLearner};
pub(crate) use metrics::NodeMetrics;

#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    #[error("register tables")]
    Table(#[from] statedb::Error),
    #[error("open the datapath at {}", pin_dir.display())]
    Datapath {
        pin_dir: std::path::PathBuf,
        #[source]
        source: bpf::Error,
    },
    #[error("start the datapath reconcilers")]
    Reconcilers(#[from] reconcilers::targets::bpf::DatapathError),
    #[error("start the policy derivation")]
    Derivation(#[from] DeriveError),
    #[error("follow the node's addresses")]
    Addresses(#[source] std::io::Error),
    #[error("read the fqdn cache {}", path.display())]
    FqdnCache {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where the node's datapath lives and what it must know of the node.
pub(crate) struct NodeConfig<'a> {
    pub(crate) pin_dir: &'a Path,
    /// The pod CIDR's router address, `reserved:host` whether configured or not; the
    /// namespace's other addresses are followed as they come and go.
    pub(crate) router: Ipv4Addr,
    /// The L7 proxy's listeners, for redirect entries.
    pub(crate) proxy_ports: ProxyPorts,
    /// Where the DNS cache behind `toFQDNs` is kept, and its minimum TTL in seconds.
    pub(crate) fqdn_cache: &'a Path,
    pub(crate) fqdn_min_ttl: u32,
}

/// Waits for what the node's tables say to be in the kernel.
#[derive(Clone)]
pub(crate) struct Enforcement {
    db: Db,
    derivation: Derivation,
    ipcache: (Table<IpcacheEntry>, Reconciler<IpcacheEntry>),
    endpoints: (Table<DatapathEndpoint>, Reconciler<DatapathEndpoint>),
    policy: (Table<PolicyEntry>, Reconciler<PolicyEntry>),
}

impl Enforcement {
    /// Completes once every input change committed so far is derived and every map reflects
    /// it.
    pub(crate) async fn wait_enforced(&self) {
        let txn = self.db.read_txn();
        self.derivation.wait_derived(&txn).await;
        let txn = self.db.read_txn();
        let ipcache = txn.revision(&self.ipcache.0);
        let endpoints = txn.revision(&self.endpoints.0);
        let policy = txn.revision(&self.policy.0);
        self.ipcache.1.wait_reconciled(ipcache).await;
        self.endpoints.1.wait_reconciled(endpoints).await;
        self.policy.1.wait_reconciled(policy).await;
    }
}

pub(crate) struct Node {
    db: Db,
    pub(crate) tables: Tables,
    datapath_tables: DatapathTables,
    derivation: Derivation,
    reconcilers: DatapathReconcilers,
    /// A second handle on the pinned policy map, for `bpf policy get`.
    kernel_policy: Mutex<Policy>,
    /// The policies behind each policy map cookie, for flows.
    pub(crate) policy_cookies: Table<PolicyCookie>,
    l7_rules: Table<reconcilers::datapath::L7RulesRow>,
    fqdn_names: Table<FqdnName>,
    fqdn_min_ttl: u32,
}

impl Node {
    /// Registers the derived tables, opens (or reuses) the pinned datapath under `pin_dir` and
    /// starts the derivation and the reconcilers on the current runtime.
    pub(crate) fn start(
        db: &Db,
        objects: Table<StoredObject>,
        objects_causes: Causes,
        endpoints: Table<Endpoint>,
        config: NodeConfig<'_>,
        shutdown: &CancellationToken,
    ) -> Result<Node, NodeError> {
        let NodeConfig {
            pin_dir,
            router,
            proxy_ports,
            fqdn_cache,
            fqdn_min_ttl,
        } = config;
        let identities = register_identities_table(db)?;
        let policy_cookies = register_policy_cookies_table(db)?;
        let l7_rules = register_l7_rules_table(db)?;
        let fqdn_names = register_fqdn_names_table(db)?;
        // The learned names go in before the derivation starts, so its first round keeps the
        // pinned entries of their addresses (and their connections) rather than pruning them.
        let cached = fqdn_cache::load(fqdn_cache).map_err(|source| NodeError::FqdnCache {
            path: fqdn_cache.to_owned(),
            source,
        })?;
        let mut txn = db.write_txn(&[&fqdn_names]);
        for row in &cached {
            if let Err(error) = txn.insert(&fqdn_names, row.clone()) {
                tracing::warn!(%error, name = row.name, "fqdn cache: row not restored");
            }
        }
        txn.commit();
        tracing::info!(names = cached.len(), "fqdn cache restored");
        let node_addresses = register_node_addresses_table(db)?;
        let _follower = addresses::follow(db, &node_addresses, router, shutdown)
            .map_err(NodeError::Addresses)?;
        let datapath_tables = DatapathTables::register(db)?;
        let datapath = Datapath::open(pin_dir).map_err(|source| NodeError::Datapath {
            pin_dir: pin_dir.to_owned(),
            source,
        })?;
        let kernel_policy = datapath.policy().map_err(|source| NodeError::Datapath {
            pin_dir: pin_dir.to_owned(),
            source,
        })?;
        let restored = restored_identities(&datapath).map_err(|source| NodeError::Datapath {
            pin_dir: pin_dir.to_owned(),
            source,
        })?;
        let restored_prefixes =
            restored_prefixes(&datapath).map_err(|source| NodeError::Datapath {
                pin_dir: pin_dir.to_owned(),
                source,
            })?;
        tracing::info!(
            addresses = restored.len(),
            prefixes = restored_prefixes.len(),
            "identities of the pinned ipcache kept for their pods and prefixes"
        );
        let config = DeriveConfig {
            host_ipv4: vec![router],
            restored,
            restored_prefixes,
            proxy_ports,
            causes: DeriveCauses {
                objects: objects_causes,
                ipcache: datapath_tables.ipcache_causes.clone(),
                policy_entries: datapath_tables.policy_causes.clone(),
            },
            ..DeriveConfig::default()
        };
        let (derivation, _task) = Derivation::spawn(
            db.clone(),
            DeriveTables {
                objects: objects.clone(),
                endpoints: endpoints.clone(),
                identities: identities.clone(),
                ipcache: datapath_tables.ipcache.clone(),
                datapath_endpoints: datapath_tables.endpoints.clone(),
                policy_entries: datapath_tables.policy.clone(),
                policy_cookies: policy_cookies.clone(),
                l7_rules: l7_rules.clone(),
                fqdn_names: fqdn_names.clone(),
                node_addresses,
            },
            &config,
            shutdown.clone(),
        )?;
        let conntrack = datapath.conntrack().map_err(|source| NodeError::Datapath {
            pin_dir: pin_dir.to_owned(),
            source,
        })?;
        tokio::spawn(fqdn_cache::keep(
            db.clone(),
            fqdn_names.clone(),
            conntrack,
            fqdn_cache.to_owned(),
            shutdown.clone(),
        ));
        let reconcilers =
            spawn_datapath_reconcilers(db, &datapath_tables, datapath, None, shutdown)?;
        Ok(Node {
            db: db.clone(),
            tables: Tables {
                objects,
                endpoints,
                identities,
                datapath_endpoints: datapath_tables.endpoints.clone(),
            },
            datapath_tables,
            derivation,
            reconcilers,
            kernel_policy: Mutex::new(kernel_policy),
            policy_cookies,
            l7_rules,
            fqdn_names,
            fqdn_min_ttl,
        })
    }

    /// The tables the L7 proxy decides requests on.
    pub(crate) fn l7_tables(&self) -> L7Tables {
        L7Tables {
            datapath_endpoints: self.datapath_tables.endpoints.clone(),
            ipcache: self.datapath_tables.ipcache.clone(),
            policy_entries: self.datapath_tables.policy.clone(),
            l7_rules: self.l7_rules.clone(),
        }
    }

    pub(crate) fn read_txn(&self) -> ReadTxn {
        self.db.read_txn()
    }

    /// Waits until every input change committed so far is derived and every map reflects
    /// it: the change is enforced in the kernel.
    pub(crate) async fn wait_enforced(&self) {
        self.enforcement().wait_enforced().await;
    }

    pub(crate) fn enforcement(&self) -> Enforcement {
        Enforcement {
            db: self.db.clone(),
            derivation: self.derivation.clone(),
            ipcache: (
                self.datapath_tables.ipcache.clone(),
                self.reconcilers.ipcache.clone(),
            ),
            endpoints: (
                self.datapath_tables.endpoints.clone(),
                self.reconcilers.endpoints.clone(),
            ),
            policy: (
                self.datapath_tables.policy.clone(),
                self.reconcilers.policy.clone(),
            ),
        }
    }

    /// What the DNS proxy needs to make its answers' addresses enforced.
    pub(crate) fn fqdn_learner(&self) -> FqdnLearner {
        FqdnLearner {
            names: self.fqdn_names.clone(),
            enforcement: self.enforcement(),
            min_ttl: self.fqdn_min_ttl,
        }
    }

    pub(crate) fn health(&self) -> Vec<ReconcilerHealth> {
        [
            (
                self.reconcilers.ipcache.name(),
                self.reconcilers.ipcache.health(),
            ),
            (
                self.reconcilers.endpoints.name(),
                self.reconcilers.endpoints.health(),
            ),
            (
                self.reconcilers.policy.name(),
                self.reconcilers.policy.health(),
            ),
        ]
        .into_iter()
        .map(|(name, health)| match health {
            Health::Ok => ReconcilerHealth {
                name: name.to_owned(),
                state: "ok".to_owned(),
                failing: Vec::new(),
            },
            Health::Degraded { failing } => ReconcilerHealth {
                name: name.to_owned(),
                state: "degraded".to_owned(),
                failing,
            },
        })
        .collect()
    }

    /// (identities, policy objects) known.
    pub(crate) fn counts(&self) -> (u32, u32) {
        let txn = self.db.read_txn();
        let identities = txn.len(&self.tables.identities);
        let policies = txn
            .all(&self.tables.objects)
            .filter(|entry| policy::translate::object(&entry.object.object).is_some())
            .count();
        (
            u32::try_from(identities).unwrap_or(u32::MAX),
            u32::try_from(policies).unwrap_or(u32::MAX),
        )
    }

    /// The kernel policy map's entries, all endpoints.
    pub(crate) fn kernel_policy(&self) -> Result<Vec<(PolicyKey, PolicyValue)>, bpf::Error> {
        self.kernel_policy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
    }
}

/// The pod identities a previous agent left in the pinned ipcache, per address: what the
/// kernel enforces until the derivation has rewritten every entry, so the derivation keeps
/// them (Cilium restores its identities the same way, from state that outlived the agent).
fn restored_identities(datapath: &Datapath) -> Result<Vec<(Ipv4Addr, Identity)>, bpf::Error> {
    Ok(datapath
        .ipcache()?
        .iter()?
        .into_iter()
        .filter(|(prefix, value)| {
            prefix.prefix_len() == 32
                && (Identity::FIRST_CLUSTER_LOCAL..=Identity::LAST_CLUSTER_LOCAL)
                    .contains(&value.identity)
        })
        .map(|(prefix, value)| (prefix.addr(), Identity(value.identity)))
        .collect())
}

/// The node-local identities of CIDR prefixes (ipcache) and `ipBlock` prefixes (ipblock) a
/// previous agent left pinned, kept for the same reason.
fn restored_prefixes(datapath: &Datapath) -> Result<Vec<(Cidr, bool, Identity)>, bpf::Error> {
    let mut restored = Vec::new();
    for (ipblock, map) in [(false, datapath.ipcache()?), (true, datapath.ipblock()?)] {
        for (prefix, value) in map.iter()? {
            let identity = Identity(value.identity);
            if !identity.is_local_scope() {
                continue;
            }
            if let Ok(cidr) = Cidr::new(IpAddr::V4(prefix.addr()), prefix.prefix_len()) {
                restored.push((cidr, ipblock, identity));
            }
        }
    }
    Ok(restored)
}
