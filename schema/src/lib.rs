//! Myelin's API types: the objects users write, read from YAML the way `kubectl apply -f` reads
//! it, and checked with errors that name the object and the field.
//!
//! - [`manifest`]: multi-document YAML (strings, files, directories) into [`object::Object`]s,
//!   one result per document so a bad document never hides the others.
//! - [`object`]: the supported kinds (Namespace, Pod, Service, NetworkPolicy,
//!   CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy) and `namespace/name` references.
//! - [`cilium`]: the `cilium.io/v2` policy types.
//! - [`selector`]: the wire `LabelSelector` shared by both policy flavours.
//! - [`labels`]: sourced labels, label sets and the selector model that matches them.
//! - [`validate`]: semantic checks, every error as `ns/name: spec.path[0].field: problem`.
//! - [`agent_api`]: requests and responses of the agent's unix socket (CNI plugin, CLI).
//! - [`embedded`]: the record `myelin up` keeps of what it made, for later commands and `down`.
//! - [`flow`], [`observer`], [`relay`]: Hubble's protobuf types and the Observer gRPC service
//!   (prost and tonic, generated from `proto/`).
//! - [`cidr`], [`port`], [`path`]: small value types the others share.
//!
//! This crate depends on no other Myelin crate and does no I/O beyond reading manifest files.

pub mod agent_api;
pub mod cidr;
pub mod cilium;
pub mod embedded;
mod hubble;
pub mod labels;
pub mod manifest;
pub mod object;
pub mod path;
pub mod port;
pub mod selector;
pub mod validate;

mod serde_util;

pub use hubble::{flow, observer, relay};

/// The Kubernetes API types used here, re-exported so users name the same version.
pub use k8s_openapi;
