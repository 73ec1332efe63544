//! A cluster read from manifests (Namespaces, Pods, Services and policies) and run through the
//! engine: what the offline evaluator and the embedded agent start from.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use schema::k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use schema::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schema::labels::{Labels, Selector};
use schema::object::{DEFAULT_NAMESPACE, Object};

use crate::compile::{self, Context, Services};
use crate::engine::{Config, Engine, NamedPorts};
use crate::identity::{
    Allocator, DEFAULT_CLUSTER, DEFAULT_SERVICE_ACCOUNT, Identity, PodContext, pod_identity_labels,
};
use crate::mapstate::{PROTO_SCTP, PROTO_TCP, PROTO_UDP};
use crate::translate::TranslatedRule;

/// Pods without `status.podIP` get addresses from here, in order.
const ASSIGNED_POD_RANGE: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 0);

#[derive(Debug, Clone)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub ip: IpAddr,
    pub named_ports: NamedPorts,
    pub identity: Identity,
}

#[derive(Debug, Clone)]
pub struct ServiceInfo {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub selector: Option<BTreeMap<String, String>>,
    /// (service port, protocol, target port as written).
    pub ports: Vec<(u16, u8, IntOrString)>,
}

pub struct Cluster {
    pub engine: Engine,
    pub cluster_name: String,
    allocator: Allocator,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    pods: BTreeMap<(String, String), PodInfo>,
    services: BTreeMap<(String, String), ServiceInfo>,
    rules: Vec<TranslatedRule>,
    /// Problems with objects that were therefore left out, one line each.
    pub errors: Vec<String>,
}

impl Cluster {
    pub fn from_objects(objects: impl IntoIterator<Item = Object>, config: Config) -> Self {
        let mut cluster = Self {
            engine: Engine::new(config),
            cluster_name: DEFAULT_CLUSTER.to_owned(),
            allocator: Allocator::new(),
            namespaces: BTreeMap::new(),
            pods: BTreeMap::new(),
            services: BTreeMap::new(),
            rules: Vec::new(),
            errors: Vec::new(),
        };
        // A later object of the same kind and name replaces an earlier one, as a second
        // `kubectl apply -f` would.
        let mut latest: Vec<Option<Object>> = Vec::new();
        let mut index = BTreeMap::new();
        for object in objects {
            if let Some(i) = index.insert((object.kind(), object.object_ref()), latest.len()) {
                latest[i] = None;
            }
            latest.push(Some(object));
        }
        let mut pods = Vec::new();
        let mut policies = Vec::new();
        for object in latest.into_iter().flatten() {
            let problems = schema::validate::object(&object);
            if !problems.is_empty() {
                cluster
                    .errors
                    .extend(problems.iter().map(ToString::to_string));
                continue;
            }
            match object {
                Object::Namespace(ns) => cluster.add_namespace(&ns),
                Object::Pod(pod) => pods.push(*pod),
                Object::Service(svc) => cluster.add_service(&svc),
                other => policies.push(other),
            }
        }
        cluster.add_pods(pods);
        for policy in policies {
            cluster.add_policy(&policy);
        }
        cluster
    }

    fn add_namespace(&mut self, ns: &Namespace) {
        let name = ns.metadata.name.clone().unwrap_or_default();
        self.namespaces.insert(name, namespace_labels(ns));
    }

    fn namespace_labels(&mut self, name: &str) -> BTreeMap<String, String> {
        self.namespaces
            .entry(name.to_owned())
            .or_insert_with(|| unknown_namespace_labels(name))
            .clone()
    }

    fn add_service(&mut self, svc: &Service) {
        let info = service_info(svc);
        self.services
            .insert((info.namespace.clone(), info.name.clone()), info);
    }

    fn add_pods(&mut self, pods: Vec<Pod>) {
        let mut used: BTreeSet<IpAddr> = pods.iter().filter_map(|p| pod_ip(p).ok()?).collect();
        let mut next = u32::from(ASSIGNED_POD_RANGE) + 1;
        let mut by_identity: BTreeMap<Identity, (Labels, NamedPorts)> = BTreeMap::new();
        for pod in pods {
            let namespace = namespace_of(pod.metadata.namespace.as_deref());
            let name = pod.metadata.name.clone().unwrap_or_default();
            let ip = match pod_ip(&pod) {
                Ok(Some(ip)) => ip,
                Ok(None) => loop {
                    let candidate = IpAddr::V4(Ipv4Addr::from(next));
                    next += 1;
                    if used.insert(candidate) {
                        break candidate;
                    }
                },
                Err(e) => {
                    self.errors.push(format!("{namespace}/{name}: {e}"));
                    continue;
                }
            };
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let namespace_labels = self.namespace_labels(&namespace);
            let (identity_labels, named_ports) =
                pod_identity(&pod, &namespace_labels, &self.cluster_name);
            let identity = match self.allocator.allocate(&identity_labels) {
                Ok(allocation) => allocation.identity,
                Err(e) => {
                    self.errors.push(format!("{namespace}/{name}: {e}"));
                    continue;
                }
            };
            let entry = by_identity
                .entry(identity)
                .or_insert_with(|| (identity_labels, NamedPorts::new()));
            for (port_name, ports) in &named_ports {
                entry.1.entry(port_name.clone()).or_default().extend(ports);
            }
            self.pods.insert(
                (namespace.clone(), name.clone()),
                PodInfo {
                    namespace,
                    name,
                    labels,
                    ip,
                    named_ports,
                    identity,
                },
            );
        }
        for (identity, (labels, named_ports)) in by_identity {
            self.engine
                .upsert_identity(identity, labels, named_ports, true);
        }
    }

    fn add_policy(&mut self, object: &Object) {
        let ctx = Context {
            cluster: &self.cluster_name,
            services: &ServiceCatalog(&self.services),
        };
        match compile::object(object, &ctx) {
            Some(Ok(compiled)) => {
                self.engine.upsert_policy(compiled.origin, compiled.rules);
                self.rules.extend(compiled.translated);
            }
            Some(Err(e)) => self.errors.push(e.to_string()),
            None => {}
        }
    }

    pub fn pods(&self) -> impl Iterator<Item = &PodInfo> {
        self.pods.values()
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<&PodInfo> {
        self.pods.get(&(namespace.to_owned(), name.to_owned()))
    }

    pub fn pod_by_ip(&self, ip: IpAddr) -> Option<&PodInfo> {
        self.pods.values().find(|p| p.ip == ip)
    }

    pub fn service(&self, namespace: &str, name: &str) -> Option<&ServiceInfo> {
        self.services.get(&(namespace.to_owned(), name.to_owned()))
    }

    /// The pods a service's selector selects, in name order.
    pub fn backends(&self, service: &ServiceInfo) -> Vec<&PodInfo> {
        let Some(selector) = &service.selector else {
            return Vec::new();
        };
        self.pods
            .values()
            .filter(|p| p.namespace == service.namespace)
            .filter(|p| selector.iter().all(|(k, v)| p.labels.get(k) == Some(v)))
            .collect()
    }

    /// The translated rules, as `policy get` prints them.
    pub fn translated_rules(&self) -> &[TranslatedRule] {
        &self.rules
    }
}

/// Services by (namespace, name), as policy compilation consults them for `toServices`.
pub struct ServiceCatalog<'a>(pub &'a BTreeMap<(String, String), ServiceInfo>);

impl Services for ServiceCatalog<'_> {
    fn selector(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>> {
        self.0
            .get(&(namespace.to_owned(), name.to_owned()))
            .and_then(|s| s.selector.clone())
    }

    fn matching(
        &self,
        namespace: Option<&str>,
        labels: &Selector,
    ) -> Vec<(String, BTreeMap<String, String>)> {
        self.0
            .values()
            .filter(|s| namespace.is_none_or(|ns| ns == s.namespace))
            .filter(|s| {
                let labels_of: Labels = s
                    .labels
                    .iter()
                    .map(|(k, v)| {
                        schema::labels::Label::new(
                            schema::labels::Source::K8s,
                            k.as_str(),
                            v.as_str(),
                        )
                    })
                    .collect();
                labels.matches(&labels_of)
            })
            .filter_map(|s| s.selector.clone().map(|sel| (s.namespace.clone(), sel)))
            .collect()
    }
}

/// The labels pods of a namespace carry as `io.cilium.k8s.namespace.labels.*`: its own, plus
/// `kubernetes.io/metadata.name` as the API server adds it.
pub fn namespace_labels(ns: &Namespace) -> BTreeMap<String, String> {
    let name = ns.metadata.name.clone().unwrap_or_default();
    let mut labels = ns.metadata.labels.clone().unwrap_or_default();
    labels.insert(NAMESPACE_NAME_LABEL.to_owned(), name);
    labels
}

/// The labels of a namespace no Namespace object describes (yet).
pub fn unknown_namespace_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned())])
}

const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A pod's security identity labels (its own, its namespace's, service account and cluster)
/// and the named ports its containers declare.
pub fn pod_identity(
    pod: &Pod,
    namespace_labels: &BTreeMap<String, String>,
    cluster: &str,
) -> (Labels, NamedPorts) {
    let namespace = namespace_of(pod.metadata.namespace.as_deref());
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let service_account = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .unwrap_or(DEFAULT_SERVICE_ACCOUNT);
    let identity_labels = pod_identity_labels(
        labels,
        PodContext {
            namespace: &namespace,
            namespace_labels,
            service_account,
            cluster,
        },
    );
    (identity_labels, named_ports(pod))
}

/// `status.podIP`, if the pod has one.
pub fn pod_ip(pod: &Pod) -> Result<Option<IpAddr>, PodIpError> {
    let Some(text) = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()) else {
        return Ok(None);
    };
    text.parse()
        .map(Some)
        .map_err(|_| PodIpError(text.to_owned()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("status.podIP: {0:?} is not an IP address")]
pub struct PodIpError(pub String);

/// What policy needs of a Service: its pod selector and ports.
pub fn service_info(svc: &Service) -> ServiceInfo {
    let spec = svc.spec.as_ref();
    let ports = spec
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let port = u16::try_from(p.port).ok()?;
            let proto = proto_number(p.protocol.as_deref());
            let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
            Some((port, proto, target))
        })
        .collect();
    ServiceInfo {
        namespace: namespace_of(svc.metadata.namespace.as_deref()),
        name: svc.metadata.name.clone().unwrap_or_default(),
        labels: svc.metadata.labels.clone().unwrap_or_default(),
        selector: spec.and_then(|s| s.selector.clone()),
        ports,
    }
}

fn namespace_of(namespace: Option<&str>) -> String {
    namespace.unwrap_or(DEFAULT_NAMESPACE).to_owned()
}

fn proto_number(protocol: Option<&str>) -> u8 {
    match protocol {
        Some("UDP") => PROTO_UDP,
        Some("SCTP") => PROTO_SCTP,
        _ => PROTO_TCP,
    }
}

/// Container ports by name (lowercased), as named-port rules resolve them.
pub fn named_ports(pod: &Pod) -> NamedPorts {
    let mut out = NamedPorts::new();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    for port in containers.iter().flat_map(|c| c.ports.iter().flatten()) {
        let (Some(name), Ok(number)) = (&port.name, u16::try_from(port.container_port)) else {
            continue;
        };
        out.entry(name.to_ascii_lowercase())
            .or_default()
            .insert((proto_number(port.protocol.as_deref()), number));
    }
    out
}
