//! `conntrack`: connections the datapath let through, Cilium-style scoped.
//!
//! An entry is keyed by the tuple of a connection's first packet and a scope: `Egress` when the
//! connection left a pod (created once that pod's egress policy allowed it), `Ingress` when it
//! entered one (once its ingress policy allowed it). A packet whose reversed tuple has an entry
//! in the opposite scope is a reply and passes without a policy lookup; every other packet is
//! checked against policy. TCP, UDP and ICMP echo (the id plays the source port on the request
//! side) are tracked; other protocols have ports 0. ICMP errors about a tracked connection are
//! not recognised as related yet: they go through policy with the ICMP type as the port.
//! Entries age out by LRU only: FIN/RST set [`CtEntry::CLOSING`] but do not shorten the
//! lifetime, and there is no garbage collector yet.

use std::fmt;
use std::net::Ipv4Addr;

use aya::maps::{HashMap, MapData};

use super::{CONNTRACK, Direction, found, map_error, removed};
use crate::Error;

/// `struct ct_key`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CtKey {
    /// Network order octets.
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
    /// Host byte order.
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    /// 0 ingress, 1 egress: see [`CtKey::scope`].
    pub scope: u8,
    pub(crate) pad: u16,
}

impl CtKey {
    pub fn new(
        saddr: Ipv4Addr,
        sport: u16,
        daddr: Ipv4Addr,
        dport: u16,
        proto: u8,
        scope: Direction,
    ) -> CtKey {
        CtKey {
            saddr: saddr.octets(),
            daddr: daddr.octets(),
            sport,
            dport,
            proto,
            scope: scope as u8,
            pad: 0,
        }
    }

    pub fn saddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.saddr)
    }

    pub fn daddr(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.daddr)
    }

    /// Which side's policy created the entry; `None` for a corrupt entry.
    pub fn scope(&self) -> Option<Direction> {
        Direction::from_raw(self.scope)
    }
}

impl fmt::Display for CtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} -> {}:{} proto {} scope {}",
            self.saddr(),
            self.sport,
            self.daddr(),
            self.dport,
            self.proto,
            self.scope
        )
    }
}

#[expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
// SAFETY: repr(C), only integer fields, explicit padding field, 16 bytes (checked by the
// layout test).
unsafe impl aya::Pod for CtKey {}

/// `struct ct_entry`. Times are `bpf_ktime_get_coarse_ns` (CLOCK_MONOTONIC_COARSE: a tick
/// resolution, and no clock read per packet).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtEntry {
    pub created_ns: u64,
    pub last_seen_ns: u64,
    /// Packets and bytes from the initiator.
    pub packets_fwd: u64,
    pub bytes_fwd: u64,
    /// Packets and bytes of replies.
    pub packets_rev: u64,
    pub bytes_rev: u64,
    /// The peer's identity as of the last policy decision.
    pub peer_identity: u32,
    /// The proxy the connection was redirected to (as of that decision); 0 if none.
    pub proxy_port: u16,
    /// Union of the TCP flags seen from the initiator and from the responder.
    pub tcp_flags_fwd: u8,
    pub tcp_flags_rev: u8,
    /// [`CtEntry::REPLY_SEEN`], [`CtEntry::CLOSING`].
    pub flags: u8,
    pub(crate) pad: [u8; 3],
    /// The policy epoch the last allow was decided under; 0 = decide again.
    pub epoch: u32,
}

impl CtEntry {
    pub const REPLY_SEEN: u8 = 1 << 0;
    pub const CLOSING: u8 = 1 << 1;

    pub fn reply_seen(&self) -> bool {
        self.flags & CtEntry::REPLY_SEEN != 0
    }

    pub fn closing(&self) -> bool {
        self.flags & CtEntry::CLOSING != 0
    }
}

#[expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
// SAFETY: repr(C), only integer fields, explicit padding field, 64 bytes (checked by the
// layout test).
unsafe impl aya::Pod for CtEntry {}

/// The pinned `conntrack` map. The datapath writes it; the agent reads it (and may delete
/// entries, for example when a policy change must cut connections).
#[derive(Debug)]
pub struct Conntrack {
    map: HashMap<MapData, CtKey, CtEntry>,
}

impl Conntrack {
    pub(crate) fn new(map: HashMap<MapData, CtKey, CtEntry>) -> Conntrack {
        Conntrack { map }
    }

    pub fn get(&self, key: &CtKey) -> Result<Option<CtEntry>, Error> {
        found(self.map.get(key, 0)).map_err(map_error(CONNTRACK, "get", key))
    }

    /// Every entry, in the kernel's iteration order.
    pub fn iter(&self) -> Result<Vec<(CtKey, CtEntry)>, Error> {
        self.map
            .iter()
            .map(|entry| entry.map_err(map_error(CONNTRACK, "iterate", "")))
            .collect()
    }

    /// How many entries there are (walks the map).
    pub fn len(&self) -> Result<usize, Error> {
        Ok(self.map.keys().count())
    }

    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.map.keys().next().is_none())
    }

    /// Removes one entry; `false` if there was none.
    pub fn remove(&mut self, key: &CtKey) -> Result<bool, Error> {
        removed(self.map.remove(key)).map_err(map_error(CONNTRACK, "remove", key))
    }
}
