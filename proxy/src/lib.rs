//! The L7 proxy, built the way Cilium's iptables mode is: the datapath marks a redirected
//! packet `0x0200 | port << 16`, a TPROXY rule in the node namespace hands it to the
//! transparent listener on that port, whose accepted socket's local address is the original
//! destination. Each request is decided against the L7 rules that apply; an allowed one is
//! forwarded from the client's own address, so the destination's policy still sees the client.
//!
//! - [`ports`]: one listener per (parser, direction), ports from Cilium's range, kept across
//!   restarts.
//! - [`http`]: the HTTP/1.1 proxy (hyper) and the decision per request ([`Policies`]).
//! - [`dns`]: the DNS proxy: queries decided by name, answers learned before they are let
//!   through.
//! - [`accesslog`]: what the proxies report of each request and response, for Hubble.
//! - [`plumbing`]: the nftables rules and the policy routing that deliver marked packets.
//!
//! The proxy knows no tables: the agent implements [`Policies`] over them.

pub mod accesslog;
pub mod dns;
pub mod http;
pub mod plumbing;
pub mod ports;
mod socket;

pub use dns::{serve_dns, serve_dns_tcp};
pub use http::{Connection, Policies, serve_http};
pub use ports::{Listener, ListenerKind, ListenerSocket};
