//! What the derivation knows of its inputs, and how a batch of input changes becomes engine
//! operations and a set of output rows to recompute ([`Dirty`]).
//!
//! Changes are applied in two steps: `apply_*` records the new inputs and marks what they can
//! affect; `settle` then re-derives exactly the marked pods, endpoints, policies and identities,
//! in the order their dependencies need (policies, pods, endpoints, identities).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use policy::cluster::{
    ServiceCatalog, ServiceInfo, namespace_labels, pod_identity, pod_ip, service_info,
    unknown_namespace_labels,
};
use policy::compile::{self, Context, Services};
use policy::engine::{Delta, Engine, NamedPorts};
use policy::identity::{Allocator, Identity, reserved_labels};
use policy::mapstate::Key;
use policy::rule::Direction;
use policy::translate::Origin;
use schema::cidr::Cidr;
use schema::labels::{Labels, Selector};
use schema::object::Object;

use super::DeriveConfig;
use super::claims::{Claim, Claims};
use crate::datapath::IpcacheKind;
use crate::endpoints::{Endpoint, EndpointState};
use crate::objects::{ObjectKey, StoredObject};

/// (namespace, name) of a pod.
pub(super) type PodKey = (String, String);

struct PodState {
    /// `None` once deleted, until the pod is settled.
    pod: Option<Arc<Object>>,
    /// The identity allocated for the pod's labels; `None` while none could be.
    identity: Option<Identity>,
    labels: Labels,
    named_ports: NamedPorts,
}

struct PolicyState {
    object: Arc<Object>,
    origin: Origin,
    /// Its compilation consulted the services, so a Service change may change its rules.
    uses_services: bool,
}

/// One endpoint as the derivation last saw it.
pub(super) struct EndpointView {
    pub(super) endpoint: Arc<Endpoint>,
    /// The identity of its pod, or `reserved:init` while the pod is unknown.
    pub(super) identity: Identity,
    /// Ready with a host link: it gets a datapath endpoint and its identity a map state.
    pub(super) local: bool,
}

/// The users of one pod identity.
struct IdentityUse {
    labels: Labels,
    pods: BTreeSet<PodKey>,
}

/// What a round must recompute in the output tables.
#[derive(Default)]
pub(super) struct Dirty {
    pub(super) identities: BTreeSet<Identity>,
    pub(super) ipcache: BTreeSet<crate::datapath::IpcacheKey>,
    /// Datapath endpoints by endpoint id.
    pub(super) endpoints: BTreeSet<u16>,
    /// Identities whose endpoints' enforcement (or whole map state) may have changed.
    pub(super) subjects: BTreeSet<Identity>,
    /// Map state entries that changed, per identity.
    pub(super) entries: BTreeSet<(Identity, Key)>,
}

impl Dirty {
    pub(super) fn is_empty(&self) -> bool {
        self.identities.is_empty()
            && self.ipcache.is_empty()
            && self.endpoints.is_empty()
            && self.subjects.is_empty()
            && self.entries.is_empty()
    }

    fn absorb(&mut self, delta: Delta) -> bool {
        let mut prefixes = false;
        for id in delta
            .identities_added
            .iter()
            .chain(&delta.identities_removed)
        {
            prefixes |= id.is_local_scope();
            self.identities.insert(*id);
        }
        // A direction's enforcement decides its allow-all entry (see `write::wanted`), and a
        // subject's map state coming or going may change it in both directions.
        for id in delta.subjects_added.iter().chain(&delta.subjects_removed) {
            self.entries
                .extend(Direction::BOTH.map(|direction| (*id, Key::any(direction, Identity::ANY))));
        }
        self.entries.extend(
            delta
                .enforcement
                .iter()
                .map(|(id, direction, _)| (*id, Key::any(*direction, Identity::ANY))),
        );
        self.subjects.extend(delta.subjects_added);
        self.subjects.extend(delta.subjects_removed);
        self.subjects
            .extend(delta.enforcement.iter().map(|(id, _, _)| *id));
        self.entries
            .extend(delta.entries.iter().map(|(id, change)| (*id, change.key)));
        prefixes
    }
}

pub(super) struct Model {
    cluster: String,
    pub(super) engine: Engine,
    allocator: Allocator,
    /// Labels of the namespaces that have a Namespace object.
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pods: BTreeMap<PodKey, PodState>,
    services: BTreeMap<(String, String), ServiceInfo>,
    policies: BTreeMap<ObjectKey, PolicyState>,
    pub(super) endpoints: BTreeMap<String, EndpointView>,
    /// Container ids by endpoint id.
    pub(super) endpoint_ids: BTreeMap<u16, String>,
    endpoints_by_pod: BTreeMap<PodKey, BTreeSet<String>>,
    identities: BTreeMap<Identity, IdentityUse>,
    /// Local endpoints per identity (`reserved:init` included).
    local_counts: BTreeMap<Identity, usize>,
    pub(super) claims: Claims,
    /// The prefix claims last taken from the engine.
    prefix_claims: BTreeSet<Claim>,
    pending_pods: BTreeSet<PodKey>,
    pending_endpoints: BTreeSet<String>,
    pending_policies: BTreeSet<ObjectKey>,
    pending_identities: BTreeSet<Identity>,
    /// Identities the datapath held per pod address before a restart, until initialized.
    restored: BTreeMap<Ipv4Addr, Identity>,
    /// Output rows marked by `apply_*` and `settle`, handed out by `take_dirty`.
    dirty: Dirty,
}

impl Model {
    pub(super) fn new(config: &DeriveConfig) -> Model {
        let mut engine = Engine::new(config.engine.clone());
        engine.restore_prefix_identities(config.restored_prefixes.iter().copied());
        let mut dirty = Dirty::default();
        dirty
            .identities
            .extend(engine.identities().map(|(id, _)| id));
        let mut claims = Claims::default();
        for addr in &config.host_ipv4 {
            let prefix = Cidr::host(IpAddr::V4(*addr));
            let key = claims.set(
                Claim::Host(*addr),
                Some((IpcacheKind::Primary, prefix, Identity::HOST)),
            );
            dirty.ipcache.extend(key);
        }
        let mut allocator = Allocator::new();
        let restored: BTreeMap<Ipv4Addr, Identity> = config.restored.iter().copied().collect();
        for identity in restored.values() {
            allocator.hold(*identity);
        }
        Model {
            cluster: config.cluster.clone(),
            engine,
            allocator,
            restored,
            namespaces: BTreeMap::new(),
            pods: BTreeMap::new(),
            services: BTreeMap::new(),
            policies: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            endpoint_ids: BTreeMap::new(),
            endpoints_by_pod: BTreeMap::new(),
            identities: BTreeMap::new(),
            local_counts: BTreeMap::new(),
            claims,
            prefix_claims: BTreeSet::new(),
            pending_pods: BTreeSet::new(),
            pending_endpoints: BTreeSet::new(),
            pending_policies: BTreeSet::new(),
            pending_identities: BTreeSet::new(),
            dirty,
        }
    }

    /// Records one change of the `objects` table.
    pub(super) fn apply_object(&mut self, stored: &StoredObject, deleted: bool) {
        let key = stored.key();
        let object = (!deleted).then(|| Arc::clone(&stored.object));
        match stored.object.as_ref() {
            Object::Namespace(ns) => {
                match deleted {
                    true => self.namespaces.remove(&stored.name),
                    false => self
                        .namespaces
                        .insert(stored.name.clone(), namespace_labels(ns)),
                };
                let pods = self
                    .pods
                    .range((stored.name.clone(), String::new())..)
                    .take_while(|((ns, _), _)| *ns == stored.name)
                    .map(|(key, _)| key.clone());
                self.pending_pods.extend(pods);
            }
            Object::Pod(_) => {
                let pod_key = (stored.namespace.clone(), stored.name.clone());
                let state = self.pods.entry(pod_key.clone()).or_insert(PodState {
                    pod: None,
                    identity: None,
                    labels: Labels::new(),
                    named_ports: NamedPorts::new(),
                });
                state.pod = object;
                self.pending_pods.insert(pod_key);
            }
            Object::Service(svc) => {
                let service_key = (stored.namespace.clone(), stored.name.clone());
                match deleted {
                    true => self.services.remove(&service_key),
                    false => self.services.insert(service_key, service_info(svc)),
                };
                let users = self
                    .policies
                    .iter()
                    .filter(|(_, p)| p.uses_services)
                    .map(|(key, _)| key.clone());
                self.pending_policies.extend(users);
            }
            Object::NetworkPolicy(_)
            | Object::CiliumNetworkPolicy(_)
            | Object::CiliumClusterwideNetworkPolicy(_) => {
                match object {
                    Some(object) => {
                        let origin = Origin::of(object.kind(), object.metadata());
                        self.policies.insert(
                            key.clone(),
                            PolicyState {
                                object,
                                origin,
                                uses_services: false,
                            },
                        );
                    }
                    None => {
                        let origin = Origin::of(stored.kind, stored.object.metadata());
                        self.policies.remove(&key);
                        let delta = self.engine.remove_policy(&origin);
                        self.absorb(delta);
                    }
                }
                self.pending_policies.insert(key);
            }
        }
    }

    /// Records one change of the `endpoints` table.
    pub(super) fn apply_endpoint(&mut self, endpoint: &Arc<Endpoint>, deleted: bool) {
        let container = endpoint.container_id.clone();
        if let Some(old) = self
            .endpoints
            .get(&container)
            .map(|v| Arc::clone(&v.endpoint))
        {
            self.dirty.endpoints.insert(old.id);
            self.endpoint_ids.remove(&old.id);
            if let Some(pod) = pod_key(&old) {
                self.unlink_endpoint(&pod, &container);
            }
        }
        self.dirty.endpoints.insert(endpoint.id);
        if deleted {
            if let Some(view) = self.endpoints.remove(&container) {
                self.count_local(view.identity, view.local, false);
            }
            let keys = self.claims.set(Claim::Endpoint(container), None);
            self.dirty.ipcache.extend(keys);
            return;
        }
        self.endpoint_ids.insert(endpoint.id, container.clone());
        if let Some(pod) = pod_key(endpoint) {
            self.endpoints_by_pod
                .entry(pod.clone())
                .or_default()
                .insert(container.clone());
            // Its address is now the pod's, rather than `status.podIP`.
            self.pending_pods.insert(pod);
        }
        let view = self
            .endpoints
            .entry(container.clone())
            .or_insert_with(|| EndpointView {
                endpoint: Arc::clone(endpoint),
                identity: Identity::INIT,
                local: false,
            });
        view.endpoint = Arc::clone(endpoint);
        self.pending_endpoints.insert(container);
    }

    fn unlink_endpoint(&mut self, pod: &PodKey, container_id: &str) {
        if let Some(set) = self.endpoints_by_pod.get_mut(pod) {
            set.remove(container_id);
            if set.is_empty() {
                self.endpoints_by_pod.remove(pod);
            }
        }
        self.pending_pods.insert(pod.clone());
    }

    /// A DNS answer gave `name` the address `ipv4` (`learned`), or that answer expired.
    /// One of the node's own addresses came or went: `reserved:host` in the ipcache.
    pub(super) fn apply_host_address(&mut self, ipv4: Ipv4Addr, present: bool) {
        let prefix = Cidr::host(IpAddr::V4(ipv4));
        let keys = self.claims.set(
            Claim::Host(ipv4),
            present.then_some((IpcacheKind::Primary, prefix, Identity::HOST)),
        );
        self.dirty.ipcache.extend(keys);
    }

    pub(super) fn apply_fqdn(&mut self, ipv4: Ipv4Addr, name: &str, learned: bool) {
        let delta = if learned {
            self.engine.learn_fqdn(name, IpAddr::V4(ipv4))
        } else {
            self.engine.forget_fqdn(name, IpAddr::V4(ipv4))
        };
        self.absorb(delta);
    }

    fn absorb(&mut self, delta: Delta) {
        if self.dirty.absorb(delta) {
            self.refresh_prefixes();
        }
    }

    /// Re-derives everything `apply_*` marked and returns the output rows to recompute.
    pub(super) fn settle(&mut self) -> Dirty {
        for key in std::mem::take(&mut self.pending_policies) {
            self.derive_policy(&key);
        }
        for key in std::mem::take(&mut self.pending_pods) {
            self.derive_pod(&key);
        }
        for id in std::mem::take(&mut self.pending_endpoints) {
            self.derive_endpoint(&id);
        }
        for id in std::mem::take(&mut self.pending_identities) {
            self.derive_identity(id);
        }
        std::mem::take(&mut self.dirty)
    }

    fn derive_policy(&mut self, key: &ObjectKey) {
        let Some(state) = self.policies.get_mut(key) else {
            // Deleted: its rules went when the delete was applied.
            return;
        };
        let catalog = Recording {
            inner: ServiceCatalog(&self.services),
            used: Cell::new(false),
        };
        let ctx = Context {
            cluster: &self.cluster,
            services: &catalog,
        };
        let compiled = compile::object(&state.object, &ctx);
        state.uses_services = catalog.used.get();
        let origin = state.origin.clone();
        let delta = match compiled {
            Some(Ok(compiled)) => self.engine.upsert_policy(compiled.origin, compiled.rules),
            Some(Err(error)) => {
                tracing::warn!(policy = %origin, %error, "policy does not compile; skipped");
                self.engine.remove_policy(&origin)
            }
            None => return,
        };
        self.absorb(delta);
    }

    fn derive_pod(&mut self, key: &PodKey) {
        let old = self.pods.get(key).and_then(|p| p.identity);
        let new = match self.pods.get(key).and_then(|p| p.pod.as_deref()) {
            Some(Object::Pod(pod)) => {
                let ns_labels = self
                    .namespaces
                    .get(&key.0)
                    .cloned()
                    .unwrap_or_else(|| unknown_namespace_labels(&key.0));
                Some((pod_identity(pod, &ns_labels, &self.cluster), pod_ip(pod)))
            }
            _ => None,
        };
        let Some(((labels, named_ports), ip)) = new else {
            // Deleted.
            self.pods.remove(key);
            if let Some(old) = old {
                self.release(old, key);
            }
            self.dirty
                .ipcache
                .extend(self.claims.set(Claim::Pod(key.clone()), None));
            self.mark_pod_endpoints(key);
            return;
        };
        let unchanged = self
            .pods
            .get(key)
            .is_some_and(|p| p.identity.is_some() && p.labels == labels);
        let identity = if unchanged {
            old
        } else {
            // Allocate before releasing, so a relabelled pod never gets its old number back
            // for different labels.
            let preferred = self.restored_identity(key, ip.as_ref().ok().copied().flatten());
            let identity = match self.allocator.allocate_preferring(&labels, preferred) {
                Ok(allocation) => Some(allocation.identity),
                Err(error) => {
                    tracing::warn!(pod = %format!("{}/{}", key.0, key.1), %error, "no identity for pod");
                    None
                }
            };
            if let Some(id) = identity {
                let entry = self.identities.entry(id).or_insert_with(|| IdentityUse {
                    labels: labels.clone(),
                    pods: BTreeSet::new(),
                });
                entry.pods.insert(key.clone());
                self.pending_identities.insert(id);
            }
            if let Some(old) = old {
                self.release(old, key);
            }
            self.mark_pod_endpoints(key);
            identity
        };
        if let Some(state) = self.pods.get_mut(key) {
            if state.named_ports != named_ports
                && let Some(id) = identity
            {
                self.pending_identities.insert(id);
            }
            state.identity = identity;
            state.labels = labels;
            state.named_ports = named_ports;
        }
        let claim = match (identity, ip) {
            (Some(id), Ok(Some(IpAddr::V4(addr)))) if !self.endpoints_by_pod.contains_key(key) => {
                Some((IpcacheKind::Primary, Cidr::host(IpAddr::V4(addr)), id))
            }
            (_, Err(error)) => {
                tracing::warn!(pod = %format!("{}/{}", key.0, key.1), %error, "pod address ignored");
                None
            }
            _ => None,
        };
        self.dirty
            .ipcache
            .extend(self.claims.set(Claim::Pod(key.clone()), claim));
    }

    /// The identity the datapath held for the pod's address before a restart: its local
    /// endpoint's address, else its `status.podIP`.
    fn restored_identity(&self, pod: &PodKey, pod_ip: Option<IpAddr>) -> Option<Identity> {
        if self.restored.is_empty() {
            return None;
        }
        let endpoint_ip = self
            .endpoints_by_pod
            .get(pod)
            .and_then(|ids| ids.iter().next())
            .and_then(|id| self.endpoints.get(id))
            .map(|view| view.endpoint.ipv4);
        let ip = endpoint_ip.or(match pod_ip {
            Some(IpAddr::V4(ip)) => Some(ip),
            _ => None,
        })?;
        self.restored.get(&ip).copied()
    }

    /// Once initialized, numbers no pod came back for are free again.
    pub(super) fn forget_restored(&mut self) {
        self.restored.clear();
        self.allocator.release_held();
        self.engine.forget_restored_prefixes();
    }

    fn release(&mut self, identity: Identity, pod: &PodKey) {
        if let Some(entry) = self.identities.get_mut(&identity) {
            entry.pods.remove(pod);
            if entry.pods.is_empty() {
                self.identities.remove(&identity);
            }
        }
        self.allocator.release(identity);
        self.pending_identities.insert(identity);
    }

    fn mark_pod_endpoints(&mut self, pod: &PodKey) {
        if let Some(ids) = self.endpoints_by_pod.get(pod) {
            self.pending_endpoints.extend(ids.iter().cloned());
        }
    }

    fn derive_endpoint(&mut self, container: &str) {
        let Some(view) = self.endpoints.get(container) else {
            return;
        };
        let endpoint = Arc::clone(&view.endpoint);
        let (old_identity, old_local) = (view.identity, view.local);
        let identity = pod_key(&endpoint)
            .and_then(|pod| self.pods.get(&pod))
            .and_then(|p| p.identity)
            .unwrap_or(Identity::INIT);
        let local = endpoint.state == EndpointState::Ready && endpoint.host.is_some();
        self.count_local(old_identity, old_local, false);
        self.count_local(identity, local, true);
        if let Some(view) = self.endpoints.get_mut(container) {
            view.identity = identity;
            view.local = local;
        }
        self.dirty.endpoints.insert(endpoint.id);
        let prefix = Cidr::host(IpAddr::V4(endpoint.ipv4));
        let claim = Some((IpcacheKind::Primary, prefix, identity));
        let keys = self
            .claims
            .set(Claim::Endpoint(container.to_owned()), claim);
        self.dirty.ipcache.extend(keys);
    }

    /// Adds or removes one endpoint from its identity's local count.
    fn count_local(&mut self, identity: Identity, local: bool, add: bool) {
        if !local {
            return;
        }
        let count = self.local_counts.entry(identity).or_default();
        if add {
            *count += 1;
        } else {
            *count = count.saturating_sub(1);
        }
        if *count == 0 {
            self.local_counts.remove(&identity);
        }
        self.pending_identities.insert(identity);
    }

    pub(super) fn is_local(&self, identity: Identity) -> bool {
        self.local_counts.contains_key(&identity)
    }

    fn derive_identity(&mut self, identity: Identity) {
        self.dirty.identities.insert(identity);
        let local = self.is_local(identity);
        let delta = if identity == Identity::INIT {
            self.engine
                .upsert_identity(identity, reserved_labels("init"), NamedPorts::new(), local)
        } else if identity.is_reserved() || identity.is_local_scope() {
            return;
        } else if let Some(entry) = self.identities.get(&identity) {
            let mut named_ports = NamedPorts::new();
            for pod in &entry.pods {
                let Some(state) = self.pods.get(pod) else {
                    continue;
                };
                for (name, ports) in &state.named_ports {
                    named_ports.entry(name.clone()).or_default().extend(ports);
                }
            }
            self.engine
                .upsert_identity(identity, entry.labels.clone(), named_ports, local)
        } else {
            self.engine.remove_identity(identity)
        };
        self.absorb(delta);
    }

    /// The ipcache entries of CIDR and `ipBlock` prefixes, from the engine's current set.
    fn refresh_prefixes(&mut self) {
        let wanted: BTreeMap<Claim, (IpcacheKind, Cidr, Identity)> = self
            .engine
            .prefix_identities()
            .filter(|(cidr, _, _)| cidr.is_ipv4())
            .map(|(cidr, ipblock, id)| {
                let kind = match ipblock {
                    true => IpcacheKind::IpBlock,
                    false => IpcacheKind::Primary,
                };
                (Claim::Prefix(kind, cidr), (kind, cidr, id))
            })
            .collect();
        let stale: Vec<Claim> = self
            .prefix_claims
            .iter()
            .filter(|claim| !wanted.contains_key(claim))
            .cloned()
            .collect();
        for claim in stale {
            let keys = self.claims.set(claim, None);
            self.dirty.ipcache.extend(keys);
        }
        for (claim, entry) in &wanted {
            let keys = self.claims.set(claim.clone(), Some(*entry));
            self.dirty.ipcache.extend(keys);
        }
        self.prefix_claims = wanted.into_keys().collect();
    }

    pub(super) fn endpoint_by_id(&self, id: u16) -> Option<&EndpointView> {
        self.endpoint_ids
            .get(&id)
            .and_then(|container| self.endpoints.get(container))
    }
}

fn pod_key(endpoint: &Endpoint) -> Option<PodKey> {
    endpoint
        .pod
        .as_ref()
        .map(|p| (p.namespace.clone(), p.name.clone()))
}

/// Services as compilation sees them, noting whether it looked at all.
struct Recording<'a> {
    inner: ServiceCatalog<'a>,
    used: Cell<bool>,
}

impl Services for Recording<'_> {
    fn selector(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        self.used.set(true);
        self.inner.selector(namespace, name)
    }

    fn matching(
        &self,
        namespace: Option<&str>,
        labels: &Selector,
    ) -> Vec<(String, BTreeMap<String, String>)> {
        self.used.set(true);
        self.inner.matching(namespace, labels)
    }
}
