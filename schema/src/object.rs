//! The kinds of object Myelin reads, and how to name one in messages.

use std::fmt;

use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::cilium::{CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy};

/// The namespace a namespaced object lands in when its manifest names none (as `kubectl
/// apply` with the default context namespace).
pub const DEFAULT_NAMESPACE: &str = "default";

/// A supported kind, identified by `apiVersion` and `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Pod,
    Service,
    NetworkPolicy,
    CiliumNetworkPolicy,
    CiliumClusterwideNetworkPolicy,
}

/// One parsed object. The large k8s-openapi types are boxed to keep the enum small.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    Namespace(Box<Namespace>),
    Pod(Box<Pod>),
    Service(Box<Service>),
    NetworkPolicy(Box<NetworkPolicy>),
    CiliumNetworkPolicy(Box<CiliumNetworkPolicy>),
    CiliumClusterwideNetworkPolicy(Box<CiliumClusterwideNetworkPolicy>),
}

/// An object's name as users read it: `namespace/name`, or `name` when cluster-scoped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub namespace: Option<String>,
    pub name: String,
}

impl Kind {
    /// Every kind, in order.
    pub const ALL: [Kind; 6] = [
        Kind::Namespace,
        Kind::Pod,
        Kind::Service,
        Kind::NetworkPolicy,
        Kind::CiliumNetworkPolicy,
        Kind::CiliumClusterwideNetworkPolicy,
    ];

    /// The kind for an `apiVersion` and `kind` pair, if supported.
    pub fn from_type_meta(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.api_version() == api_version && k.as_str() == kind)
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::Namespace | Kind::Pod | Kind::Service => "v1",
            Kind::NetworkPolicy => "networking.k8s.io/v1",
            Kind::CiliumNetworkPolicy | Kind::CiliumClusterwideNetworkPolicy => {
                crate::cilium::API_VERSION
            }
        }
    }

    /// The `kind` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Pod => "Pod",
            Kind::Service => "Service",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::CiliumNetworkPolicy => "CiliumNetworkPolicy",
            Kind::CiliumClusterwideNetworkPolicy => "CiliumClusterwideNetworkPolicy",
        }
    }

    /// The resource name kubectl prints (`pod`, `ciliumnetworkpolicy.cilium.io`).
    pub fn resource(self) -> &'static str {
        match self {
            Kind::Namespace => "namespace",
            Kind::Pod => "pod",
            Kind::Service => "service",
            Kind::NetworkPolicy => "networkpolicy.networking.k8s.io",
            Kind::CiliumNetworkPolicy => "ciliumnetworkpolicy.cilium.io",
            Kind::CiliumClusterwideNetworkPolicy => "ciliumclusterwidenetworkpolicy.cilium.io",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::CiliumClusterwideNetworkPolicy)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Namespace(_) => Kind::Namespace,
            Object::Pod(_) => Kind::Pod,
            Object::Service(_) => Kind::Service,
            Object::NetworkPolicy(_) => Kind::NetworkPolicy,
            Object::CiliumNetworkPolicy(_) => Kind::CiliumNetworkPolicy,
            Object::CiliumClusterwideNetworkPolicy(_) => Kind::CiliumClusterwideNetworkPolicy,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::Namespace(o) => &o.metadata,
            Object::Pod(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::NetworkPolicy(o) => &o.metadata,
            Object::CiliumNetworkPolicy(o) => &o.metadata,
            Object::CiliumClusterwideNetworkPolicy(o) => &o.metadata,
        }
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Object::Namespace(o) => &mut o.metadata,
            Object::Pod(o) => &mut o.metadata,
            Object::Service(o) => &mut o.metadata,
            Object::NetworkPolicy(o) => &mut o.metadata,
            Object::CiliumNetworkPolicy(o) => &mut o.metadata,
            Object::CiliumClusterwideNetworkPolicy(o) => &mut o.metadata,
        }
    }

    /// `metadata.name`, if set.
    pub fn name(&self) -> Option<&str> {
        self.metadata().name.as_deref()
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata().namespace.as_deref()
    }

    /// The object as JSON with `apiVersion` and `kind`: a manifest [`crate::manifest::parse_str`]
    /// reads back into an equal object.
    pub fn to_json(&self) -> String {
        let json = match self {
            Object::Namespace(o) => serde_json::to_string(o),
            Object::Pod(o) => serde_json::to_string(o),
            Object::Service(o) => serde_json::to_string(o),
            Object::NetworkPolicy(o) => serde_json::to_string(o),
            Object::CiliumNetworkPolicy(o) => serde_json::to_string(o),
            Object::CiliumClusterwideNetworkPolicy(o) => serde_json::to_string(o),
        };
        json.expect("invariant: API objects have string keys and no fallible serializers")
    }

    /// The object's reference for messages (the namespace is dropped for cluster-scoped kinds).
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::of(self.kind(), self.metadata())
    }
}

impl ObjectRef {
    /// The reference of an object of `kind` with `metadata`.
    pub fn of(kind: Kind, metadata: &ObjectMeta) -> Self {
        Self {
            namespace: metadata.namespace.clone().filter(|_| kind.is_namespaced()),
            name: metadata.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(namespace) = &self.namespace {
            write!(f, "{namespace}/")?;
        }
        if self.name.is_empty() {
            f.write_str("<unnamed>")
        } else {
            f.write_str(&self.name)
        }
    }
}

#[cfg(test)]
mod tests;
