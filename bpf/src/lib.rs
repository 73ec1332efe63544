//! Myelin's eBPF datapath: the tc programs that enforce policy on each pod's host veth, the
//! `#[repr(C)]` layouts of their maps and events, and the aya loader with typed map handles.
//!
//! ```text
//!  pod netns            host (node) netns
//!  eth0 ── veth ──> host end: tc ingress  from_container  (pod EGRESS policy) ──> stack
//!  eth0 <── veth ── host end: tc egress   to_container    (pod INGRESS policy) <── stack
//! ```
//!
//! Maps (pinned under `<pin dir>/v1/maps/`): `ipcache` (prefix -> identity), `ipblock` (prefix
//! -> NetworkPolicy `ipBlock` identity, consulted only for allows), `endpoints` (pod IPv4 ->
//! endpoint), `policy` (endpoint, direction, identity, proto, port -> verdict),
//! `conntrack` (scoped connection tuples), `config`, and the `events` ring buffer with the
//! per-CPU `events_lost` counter. The policy engine computes their contents elsewhere; this
//! crate only knows layouts and the kernel. IPv4 only for now: IPv6 passes untouched.
//!
//! What a reconciler does with it:
//!
//! ```no_run
//! use std::net::Ipv4Addr;
//!
//! use bpf::{
//!     Datapath, Direction, EndpointFlags, EndpointInfo, Interface, IpcacheValue, Ipv4Prefix,
//!     L4, PolicyKey, PolicyValue,
//! };
//!
//! # fn main() -> Result<(), bpf::Error> {
//! // Reuses whatever an earlier agent pinned there.
//! let mut dp = Datapath::open("/sys/fs/bpf/myelin")?;
//! let pod = Ipv4Addr::new(10, 0, 0, 5);
//! dp.ipcache()?
//!     .insert(Ipv4Prefix::host(pod), &IpcacheValue::new(16530))?;
//! let info = EndpointInfo {
//!     endpoint_id: 7,
//!     ifindex: 42, // the host-side veth
//!     identity: 16530,
//!     mac: [0x02, 0, 0, 0, 0, 5],
//!     flags: EndpointFlags::ENFORCE_INGRESS,
//! };
//! dp.endpoints()?.insert(pod, &info)?;
//! let mut policy = dp.policy()?;
//! for l4 in L4::port_range(L4::TCP, 8080, 8090)? {
//!     let key = PolicyKey { endpoint_id: 7, direction: Direction::Ingress, identity: 31028, l4 };
//!     policy.insert(&key, &PolicyValue::allow())?;
//! }
//! dp.attach(&Interface { name: "lxc1234", netns: None })?;
//! # Ok(())
//! # }
//! ```

pub mod events;
pub mod maps;

mod error;
mod loader;
mod ports;

#[cfg(test)]
mod tests;

pub use error::Error;
pub use events::{Event, EventKind, EventReader};
pub use loader::{Datapath, Interface, LAYOUT_VERSION, Options, Program, TestRun};
pub use maps::config::TraceMode;
pub use maps::conntrack::{Conntrack, CtEntry, CtKey};
pub use maps::endpoints::{EndpointFlags, EndpointInfo, Endpoints};
pub use maps::ipcache::{Ipcache, IpcacheValue};
pub use maps::policy::{L4, Policy, PolicyKey, PolicyValue, Verdict};
pub use maps::{Direction, Ipv4Prefix};
pub use ports::{PortPrefix, port_range_to_prefixes};

/// Reserved security identities the datapath itself relies on.
pub mod identity {
    /// In policy keys: any peer.
    pub const ANY: u32 = 0;
    pub const HOST: u32 = 1;
    /// What the datapath assumes for an address missing from the ipcache.
    pub const WORLD: u32 = 2;
}
