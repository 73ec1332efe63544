//! Semantic validation: everything a well-formed object can still get wrong.
//!
//! Every error names the object and the field path as the user wrote them:
//! `default/rule1: spec.ingress[0].toPorts[0].ports[0].port: "eighty" is neither a port number
//! nor a port name`. All errors of an object are reported, not just the first; objects are
//! validated one at a time, so an invalid object never affects another.
//!
//! Some errors say a valid Cilium feature is not supported by Myelin (Kafka rules, TLS
//! interception, CIDR groups, cloud groups, mutual authentication);
//! [`ValidationError::is_unsupported`] tells them apart. Callers must still reject the object:
//! enforcing a policy without the rules it asks for would allow what it forbids.

mod cidr_block;
mod cilium;
mod error;
mod icmp;
mod names;
mod network_policy;
mod peers;
mod ports;
mod report;
mod selector;

pub use error::{Problem, ValidationError};

use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::cilium::{CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy};
use crate::object::{Kind, Object, ObjectRef};
use crate::path::FieldPath;
use report::Report;

/// Validates any supported object. Pods, Services and Namespaces only need a name here.
pub fn object(object: &Object) -> Vec<ValidationError> {
    match object {
        Object::NetworkPolicy(policy) => network_policy(policy),
        Object::CiliumNetworkPolicy(policy) => cilium_network_policy(policy),
        Object::CiliumClusterwideNetworkPolicy(policy) => cilium_clusterwide_network_policy(policy),
        Object::Namespace(_) | Object::Pod(_) | Object::Service(_) => {
            let mut report = Report::new(object.object_ref());
            metadata(&mut report, object.metadata());
            report.finish()
        }
    }
}

/// Validates a Kubernetes NetworkPolicy as the API server would.
pub fn network_policy(policy: &NetworkPolicy) -> Vec<ValidationError> {
    let mut report = Report::new(ObjectRef::of(Kind::NetworkPolicy, &policy.metadata));
    metadata(&mut report, &policy.metadata);
    network_policy::spec(&mut report, policy.spec.as_ref());
    report.finish()
}

/// Validates a CiliumNetworkPolicy (`nodeSelector` is not allowed).
pub fn cilium_network_policy(policy: &CiliumNetworkPolicy) -> Vec<ValidationError> {
    let mut report = Report::new(ObjectRef::of(Kind::CiliumNetworkPolicy, &policy.metadata));
    metadata(&mut report, &policy.metadata);
    cilium::rules(&mut report, policy.spec.as_ref(), &policy.specs, false);
    report.finish()
}

/// Validates a CiliumClusterwideNetworkPolicy.
pub fn cilium_clusterwide_network_policy(
    policy: &CiliumClusterwideNetworkPolicy,
) -> Vec<ValidationError> {
    let kind = Kind::CiliumClusterwideNetworkPolicy;
    let mut report = Report::new(ObjectRef::of(kind, &policy.metadata));
    metadata(&mut report, &policy.metadata);
    cilium::rules(&mut report, policy.spec.as_ref(), &policy.specs, true);
    report.finish()
}

fn metadata(report: &mut Report, metadata: &ObjectMeta) {
    if metadata.name.as_deref().is_none_or(str::is_empty) {
        let path = FieldPath::root().field("metadata").field("name");
        report.error(&path, Problem::Required);
    }
}

#[cfg(test)]
mod tests;
