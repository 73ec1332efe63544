//! Flows: the datapath's ring buffer events as Hubble's `flow.Flow`, enriched from the tables,
//! kept in a bounded ring, selected with Hubble's filters and printed the way `hubble observe`
//! prints them.
//!
//! - [`decode`]: a `bpf` event (drop, policy verdict, trace) into a `Flow` with Cilium's numbers.
//! - [`seven`]: the L7 proxy's access log records into L7 flows, as Hubble's L7 parser.
//! - [`enrich`]: endpoints, identities, labels and policies from a [`enrich::Lookup`], which
//!   [`enrich::TableLookup`] builds from a statedb read transaction.
//! - [`ring`]: the bounded flow ring; one writer that never waits, readers by position, lost
//!   counts, async follow.
//! - [`filter`]: `FlowFilter` whitelists and blacklists; [`query`] adds number/first/since/until.
//! - [`print`]: compact, dict, table and JSON output.
//! - [`flow_metrics`]: Hubble's `hubble_*` counters of flows.
//! - [`merge`]: flows of several nodes in time order (the relay).
//! - [`server`]: the `observer.Observer` gRPC service over a ring.

pub mod decode;
pub mod enrich;
pub mod filter;
pub mod flow_metrics;
pub mod merge;
pub mod print;
pub mod query;
pub mod ring;
pub mod server;
pub mod seven;

mod identity;

#[cfg(any(test, feature = "test-util"))]
pub mod fixtures;

pub use decode::Decoder;
pub use enrich::{Lookup, TableLookup};
pub use filter::{FilterError, FlowFilters};
pub use ring::{Reader, Ring};
