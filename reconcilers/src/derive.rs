//! The policy derivation: `objects` and `endpoints` in, one policy [`Engine`] in the middle,
//! `identities`, `ipcache`, `datapath-endpoints`, `policy-entries` and `l7-rules` out.
//!
//! It follows both input tables' change streams and feeds the engine exactly what changed: a
//! Pod or Namespace change re-derives the affected pods' identities, a policy change replaces
//! that object's rules, a Service change recompiles the policies whose compilation looked at
//! services. Each round then recomputes only the output rows those changes can affect and
//! writes the ones whose content differs, in one write transaction, so the reconcilers
//! downstream see real deltas only.
//!
//! [`Engine`]: policy::engine::Engine

mod claims;
mod model;
mod write;

use std::future::Future;
use std::net::Ipv4Addr;

use futures::FutureExt;
use policy::identity::Identity;
use schema::cidr::Cidr;
use statedb::{Changes, Db, Initializer, Revision, Table, Txn, Watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::field::Empty;

use crate::cause::{self, Cause, Causes};
use crate::datapath::{
    DatapathEndpoint, IdentityRow, IpcacheEntry, L7RulesRow, PolicyCookie, PolicyEntry, ProxyPorts,
    register_datapath_endpoints_table, register_identities_table, register_ipcache_table,
    register_l7_rules_table, register_policy_cookies_table, register_policy_entries_table,
};
use crate::endpoints::{Endpoint, register_endpoints_table};
use crate::fqdn::{FqdnName, register_fqdn_names_table};
use crate::node_addresses::{NodeAddress, register_node_addresses_table};
use crate::objects::{StoredObject, register_objects_table};
use model::Model;
use write::{Cookies, EndpointIdentities, Writer};
pub use write::{TableCounts, Written};

/// The name of the derivation's initializer on its output tables, and of its spans.
pub const NAME: &str = "policy-derivation";

/// The tables the derivation reads (`objects`, `endpoints`) and writes (the rest).
#[derive(Clone, Debug)]
pub struct DeriveTables {
    pub objects: Table<StoredObject>,
    pub endpoints: Table<Endpoint>,
    pub identities: Table<IdentityRow>,
    pub ipcache: Table<IpcacheEntry>,
    pub datapath_endpoints: Table<DatapathEndpoint>,
    pub policy_entries: Table<PolicyEntry>,
    pub policy_cookies: Table<PolicyCookie>,
    pub l7_rules: Table<L7RulesRow>,
    /// Input: what DNS answers told the node.
    pub fqdn_names: Table<FqdnName>,
    /// Input: the node's own addresses (`reserved:host`), besides `DeriveConfig::host_ipv4`.
    pub node_addresses: Table<NodeAddress>,
}

impl DeriveTables {
    /// Registers all ten tables.
    pub fn register(db: &Db) -> Result<DeriveTables, statedb::Error> {
        Ok(DeriveTables {
            objects: register_objects_table(db)?,
            endpoints: register_endpoints_table(db)?,
            identities: register_identities_table(db)?,
            ipcache: register_ipcache_table(db)?,
            datapath_endpoints: register_datapath_endpoints_table(db)?,
            policy_entries: register_policy_entries_table(db)?,
            policy_cookies: register_policy_cookies_table(db)?,
            l7_rules: register_l7_rules_table(db)?,
            fqdn_names: register_fqdn_names_table(db)?,
            node_addresses: register_node_addresses_table(db)?,
        })
    }
}

#[derive(Clone, Debug)]
pub struct DeriveConfig {
    /// `io.cilium.k8s.policy.cluster` of every pod.
    pub cluster: String,
    pub engine: policy::engine::Config,
    /// The node's own addresses: `reserved:host` in the ipcache, so that the host's traffic
    /// to its pods is not taken for the world's.
    pub host_ipv4: Vec<Ipv4Addr>,
    /// Pod addresses and the identities the datapath held for them before a restart (the
    /// pinned ipcache): a pod at such an address gets its number back while the derivation
    /// initializes, so the maps it rewrites in place never change a verdict.
    pub restored: Vec<(Ipv4Addr, Identity)>,
    /// The same for the node-local identities of CIDR (`false`) and `ipBlock` (`true`)
    /// prefixes, from the pinned ipcache and ipblock maps.
    pub restored_prefixes: Vec<(Cidr, bool, Identity)>,
    /// The proxy listeners redirect entries point to.
    pub proxy_ports: ProxyPorts,
    pub causes: DeriveCauses,
}

/// The causes the derivation takes (of `objects` revisions) and hands on (of the output
/// tables' revisions it wrote because of them), see [`crate::cause`].
#[derive(Clone, Debug, Default)]
pub struct DeriveCauses {
    pub objects: Causes,
    pub ipcache: Causes,
    pub policy_entries: Causes,
}

impl Default for DeriveConfig {
    fn default() -> Self {
        DeriveConfig {
            cluster: policy::identity::DEFAULT_CLUSTER.to_owned(),
            engine: policy::engine::Config::default(),
            host_ipv4: Vec::new(),
            restored: Vec::new(),
            restored_prefixes: Vec::new(),
            proxy_ports: ProxyPorts::default(),
            causes: DeriveCauses::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeriveError {
    #[error("registering initializer {NAME} on table {table}")]
    Initializer {
        table: &'static str,
        #[source]
        source: statedb::Error,
    },
}

/// The input revisions the outputs reflect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Derived {
    pub objects: Revision,
    pub endpoints: Revision,
    pub fqdn_names: Revision,
    pub node_addresses: Revision,
}

/// A handle to the running derivation.
#[derive(Clone)]
pub struct Derivation {
    objects: Table<StoredObject>,
    endpoints: Table<Endpoint>,
    fqdn_names: Table<FqdnName>,
    node_addresses: Table<NodeAddress>,
    derived: tokio::sync::watch::Receiver<Derived>,
}

impl Derivation {
    /// Registers the derivation's initializers on its output tables, then derives on the
    /// current tokio runtime until `cancel` fires; the returned task ends then.
    pub fn spawn(
        db: Db,
        tables: DeriveTables,
        config: &DeriveConfig,
        cancel: CancellationToken,
    ) -> Result<(Derivation, JoinHandle<()>), DeriveError> {
        let deriver = Deriver::new(db, tables.clone(), config)?;
        let (tx, rx) = tokio::sync::watch::channel(Derived::default());
        let task = tokio::spawn(run(deriver, tx, cancel));
        let handle = Derivation {
            objects: tables.objects,
            endpoints: tables.endpoints,
            fqdn_names: tables.fqdn_names,
            node_addresses: tables.node_addresses,
            derived: rx,
        };
        Ok((handle, task))
    }

    /// The input revisions the output tables reflect now.
    pub fn derived(&self) -> Derived {
        *self.derived.borrow()
    }

    /// Completes once the outputs reflect every input change `txn` sees (or the derivation
    /// stopped).
    pub fn wait_derived(&self, txn: &impl Txn) -> impl Future<Output = ()> + Send + 'static {
        let want = Derived {
            objects: txn.revision(&self.objects),
            endpoints: txn.revision(&self.endpoints),
            fqdn_names: txn.revision(&self.fqdn_names),
            node_addresses: txn.revision(&self.node_addresses),
        };
        let mut rx = self.derived.clone();
        async move {
            // Err: the derivation stopped and nothing more will be derived.
            let _ = rx
                .wait_for(|d| {
                    d.objects >= want.objects
                        && d.endpoints >= want.endpoints
                        && d.fqdn_names >= want.fqdn_names
                        && d.node_addresses >= want.node_addresses
                })
                .await;
        }
    }
}

async fn run(
    mut deriver: Deriver,
    tx: tokio::sync::watch::Sender<Derived>,
    cancel: CancellationToken,
) {
    loop {
        let round = deriver.round();
        tx.send_replace(round.derived);
        let wake = futures::future::select_all(round.watches.iter().map(|w| w.fired().boxed()));
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = wake => {}
        }
    }
}

/// The initializers the derivation holds until its first complete round.
struct Initializers {
    identities: Initializer,
    ipcache: Initializer,
    datapath_endpoints: Initializer,
    policy_entries: Initializer,
}

/// The derivation itself, one synchronous round at a time.
struct Deriver {
    db: Db,
    tables: DeriveTables,
    objects: Changes<StoredObject>,
    endpoints: Changes<Endpoint>,
    fqdn_names: Changes<FqdnName>,
    node_addresses: Changes<NodeAddress>,
    model: Model,
    written: EndpointIdentities,
    cookies: Cookies,
    initializers: Option<Initializers>,
    proxy_ports: ProxyPorts,
    causes: DeriveCauses,
}

struct Round {
    derived: Derived,
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the task reports it in the round's span; tests read it"
        )
    )]
    written: Written,
    /// Fire when there is more to derive.
    watches: Vec<Watch>,
}

impl Deriver {
    fn new(db: Db, tables: DeriveTables, config: &DeriveConfig) -> Result<Deriver, DeriveError> {
        let mut txn = db.write_txn(&[
            &tables.identities,
            &tables.ipcache,
            &tables.datapath_endpoints,
            &tables.policy_entries,
        ]);
        let register = |name: &'static str, res: Result<Initializer, statedb::Error>| {
            res.map_err(|source| DeriveError::Initializer {
                table: name,
                source,
            })
        };
        let identities = register(
            tables.identities.name(),
            txn.register_initializer(&tables.identities, NAME),
        )?;
        let ipcache = register(
            tables.ipcache.name(),
            txn.register_initializer(&tables.ipcache, NAME),
        )?;
        let datapath_endpoints = register(
            tables.datapath_endpoints.name(),
            txn.register_initializer(&tables.datapath_endpoints, NAME),
        )?;
        let policy_entries = register(
            tables.policy_entries.name(),
            txn.register_initializer(&tables.policy_entries, NAME),
        )?;
        txn.commit();
        Ok(Deriver {
            objects: tables.objects.changes(),
            endpoints: tables.endpoints.changes(),
            fqdn_names: tables.fqdn_names.changes(),
            node_addresses: tables.node_addresses.changes(),
            model: Model::new(config),
            written: EndpointIdentities::default(),
            cookies: Cookies::default(),
            initializers: Some(Initializers {
                identities,
                ipcache,
                datapath_endpoints,
                policy_entries,
            }),
            proxy_ports: config.proxy_ports.clone(),
            causes: config.causes.clone(),
            db,
            tables,
        })
    }

    fn round(&mut self) -> Round {
        let txn = self.db.read_txn();
        let derived = Derived {
            objects: txn.revision(&self.tables.objects),
            endpoints: txn.revision(&self.tables.endpoints),
            fqdn_names: txn.revision(&self.tables.fqdn_names),
            node_addresses: txn.revision(&self.tables.node_addresses),
        };
        let objects_from = self.objects.position();
        let causes = self.causes.objects.take(objects_from, derived.objects);
        let span = tracing::info_span!(
            parent: cause::parent(&causes),
            "derive",
            derivation = NAME,
            rev.objects.from = cause::field(objects_from),
            rev.objects = cause::field(derived.objects),
            rev.endpoints.from = cause::field(self.endpoints.position()),
            rev.endpoints = cause::field(derived.endpoints),
            identities.written = Empty,
            identities.deleted = Empty,
            ipcache.written = Empty,
            ipcache.deleted = Empty,
            datapath_endpoints.written = Empty,
            datapath_endpoints.deleted = Empty,
            policy_entries.written = Empty,
            policy_entries.deleted = Empty,
            rev.ipcache = Empty,
            rev.policy_entries = Empty,
            errors = Empty,
        );
        cause::link(&span, &causes);
        let _enter = span.enter();
        let (changes, objects_watch) = self.objects.next(&txn);
        for change in changes {
            self.model.apply_object(&change.object, change.deleted);
        }
        let (changes, endpoints_watch) = self.endpoints.next(&txn);
        for change in changes {
            self.model.apply_endpoint(&change.object, change.deleted);
        }
        let (changes, fqdn_watch) = self.fqdn_names.next(&txn);
        for change in changes {
            self.model
                .apply_fqdn(change.object.ipv4, &change.object.name, !change.deleted);
        }
        let (changes, addresses_watch) = self.node_addresses.next(&txn);
        for change in changes {
            self.model
                .apply_host_address(change.object.ipv4, !change.deleted);
        }
        let dirty = self.model.settle();
        let mut watches = vec![objects_watch, endpoints_watch, fqdn_watch, addresses_watch];
        let (objects_ready, objects_init) = txn.initialized_watch(&self.tables.objects);
        let (endpoints_ready, endpoints_init) = txn.initialized_watch(&self.tables.endpoints);
        let inputs_ready = objects_ready && endpoints_ready;
        if self.initializers.is_some() {
            // Only the pending ones: a watch that has fired would wake the task at once.
            watches.extend(
                [
                    (!objects_ready).then_some(objects_init),
                    (!endpoints_ready).then_some(endpoints_init),
                ]
                .into_iter()
                .flatten(),
            );
        }
        let complete = if inputs_ready {
            self.initializers.take()
        } else {
            None
        };
        let mut written = Written::default();
        if !dirty.is_empty() || complete.is_some() {
            let tables = &self.tables;
            let mut wtxn = self.db.write_txn(&[
                &tables.identities,
                &tables.ipcache,
                &tables.datapath_endpoints,
                &tables.policy_entries,
                &tables.policy_cookies,
                &tables.l7_rules,
            ]);
            let mut writer = Writer {
                txn: &mut wtxn,
                tables,
                model: &self.model,
                cookies: &mut self.cookies,
                proxy_ports: &self.proxy_ports,
                written: Written::default(),
            };
            writer.write(&dirty, &mut self.written);
            written = writer.written;
            if let Some(init) = complete {
                written.errors += complete_initializers(&mut wtxn, tables, init);
                self.model.forget_restored();
            }
            // Causes go in before the commit, so no reader sees a change without its cause.
            if written.ipcache.written + written.ipcache.deleted > 0 {
                let revision = wtxn.revision(&tables.ipcache);
                span.record("rev.ipcache", cause::field(revision));
                if let Some(since) = cause::since(&causes) {
                    let cause = Cause {
                        span: span.clone(),
                        since,
                    };
                    self.causes.ipcache.record(revision, cause);
                }
            }
            if written.policy_entries.written + written.policy_entries.deleted > 0 {
                let revision = wtxn.revision(&tables.policy_entries);
                span.record("rev.policy_entries", cause::field(revision));
                if let Some(since) = cause::since(&causes) {
                    let cause = Cause {
                        span: span.clone(),
                        since,
                    };
                    self.causes.policy_entries.record(revision, cause);
                }
            }
            wtxn.commit();
        }
        span.record(
            "identities.written",
            cause::field(written.identities.written),
        );
        span.record(
            "identities.deleted",
            cause::field(written.identities.deleted),
        );
        span.record("ipcache.written", cause::field(written.ipcache.written));
        span.record("ipcache.deleted", cause::field(written.ipcache.deleted));
        span.record(
            "datapath_endpoints.written",
            cause::field(written.datapath_endpoints.written),
        );
        span.record(
            "datapath_endpoints.deleted",
            cause::field(written.datapath_endpoints.deleted),
        );
        span.record(
            "policy_entries.written",
            cause::field(written.policy_entries.written),
        );
        span.record(
            "policy_entries.deleted",
            cause::field(written.policy_entries.deleted),
        );
        span.record("errors", cause::field(written.errors));
        Round {
            derived,
            written,
            watches,
        }
    }
}

/// Returns how many could not be completed (logged).
fn complete_initializers(
    txn: &mut statedb::WriteTxn,
    tables: &DeriveTables,
    init: Initializers,
) -> usize {
    let results = [
        (
            tables.identities.name(),
            txn.complete_initializer(&tables.identities, init.identities),
        ),
        (
            tables.ipcache.name(),
            txn.complete_initializer(&tables.ipcache, init.ipcache),
        ),
        (
            tables.datapath_endpoints.name(),
            txn.complete_initializer(&tables.datapath_endpoints, init.datapath_endpoints),
        ),
        (
            tables.policy_entries.name(),
            txn.complete_initializer(&tables.policy_entries, init.policy_entries),
        ),
    ];
    let mut errors = 0;
    for (table, result) in results {
        if let Err(error) = result {
            errors += 1;
            tracing::error!(table, %error, "initializer not completed");
        }
    }
    errors
}

#[cfg(test)]
mod tests;
