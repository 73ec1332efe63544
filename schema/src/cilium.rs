//! CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (`cilium.io/v2`) as users write them.
//!
//! The types follow Cilium's `pkg/policy/api` JSON field names. They keep what was written
//! (ports, protocols, entities and CIDRs stay strings) so that [`crate::validate`] can report
//! every mistake with its path; typed views ([`Port`](crate::port::Port), [`Protocol`],
//! [`Entity`], [`IcmpType::code`]) parse them.
//!
//! Deny rules use the allow-rule types: `ingressDeny` holds [`IngressRule`]s. Fields that Cilium's
//! deny types lack (`toPorts[].rules`, `toFQDNs`, `authentication`, TLS, listener) parse, and
//! validation rejects them with a precise message instead of "unknown field".
//!
//! Unknown fields: serde ignores them here; [`crate::manifest`] rejects them, naming each one,
//! the way `kubectl apply` does with strict field validation.

mod entity;
mod icmp;
mod l7;
mod peers;
mod ports;
mod resource;
mod rule;

pub use entity::{Entity, UnknownEntity};
pub use icmp::{IcmpFamily, IcmpField, IcmpRule, IcmpType};
pub use l7::{DnsRule, HeaderMatch, HttpRule, KafkaRule, L7Rules};
pub use peers::{
    Authentication, AwsGroup, CidrRule, EgressDenyRule, EgressRule, FqdnSelector, Groups,
    IngressDenyRule, IngressRule, K8sService, K8sServiceSelector, ToService,
};
pub use ports::{EnvoyConfig, Listener, PortProtocol, PortRule, Protocol, Secret, TlsContext};
pub use resource::{API_VERSION, CiliumClusterwideNetworkPolicy, CiliumNetworkPolicy};
pub use rule::{DefaultDeny, LogConfig, Rule};

#[cfg(test)]
mod tests;
