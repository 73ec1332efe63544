//! Security identities: reserved numbers, the labels a pod's identity is made of, the local
//! allocator, and the labels of CIDR identities.

mod allocator;
mod cidr;
mod numeric;
mod pod_labels;

pub use allocator::{Allocation, Allocator, AllocatorError};
pub use cidr::{IPBLOCK_KEY, ipblock_labels, world_prefix_labels};
pub use numeric::Identity;
pub use pod_labels::{
    CLUSTER, DEFAULT_CLUSTER, DEFAULT_SERVICE_ACCOUNT, NAMESPACE_LABELS_PREFIX, POD_NAMESPACE,
    PodContext, SERVICE_ACCOUNT, is_security_relevant, pod_identity_labels,
};

use schema::labels::{Label, Labels, Source};

/// The label set of a reserved identity (`reserved:host`, ...).
pub fn reserved_labels(name: &str) -> Labels {
    std::iter::once(Label::new(Source::Reserved, name, "")).collect()
}

#[cfg(test)]
mod tests;
