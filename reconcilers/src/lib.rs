//! The reconciler framework and the targets it drives: a reconciler reads one desired-state
//! table and makes a target (routing table, BPF maps, ...) match it, writing a status back per
//! object.

pub mod cause;
pub mod datapath;
pub mod derive;
pub mod endpoints;
pub mod fqdn;
pub mod l7;
pub mod node_addresses;
pub mod objects;
pub mod operations;
pub mod reconciler;
pub mod routes;
pub mod status;
pub mod targets;

pub use derive::{Derivation, DeriveCauses, DeriveConfig, DeriveTables};
pub use operations::Operations;
pub use reconciler::{Config, ConfigError, Health, Metrics, Reason, Reconciler};
pub use status::{Reconcilable, Status, StatusKind, error_chain};
