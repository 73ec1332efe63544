//! `endpoints`: the pods on this node by IPv4 address. The program on a pod's host veth finds
//! its endpoint here (by the packet's source leaving the pod, by its destination entering it);
//! a packet whose endpoint is missing or sits behind another interface is dropped.

use std::net::Ipv4Addr;

use aya::maps::{HashMap, MapData};

use super::epoch::Epoch;
use super::{ENDPOINTS, found, map_error, removed};
use crate::Error;

/// `endpoint_info.flags`.
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EndpointFlags(pub u16);

impl EndpointFlags {
    pub const NONE: EndpointFlags = EndpointFlags(0);
    /// Ingress policy is enforced; without it every packet entering the pod is allowed.
    pub const ENFORCE_INGRESS: EndpointFlags = EndpointFlags(1 << 0);
    /// Egress policy is enforced; without it every packet leaving the pod is allowed.
    pub const ENFORCE_EGRESS: EndpointFlags = EndpointFlags(1 << 1);

    pub fn contains(self, other: EndpointFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for EndpointFlags {
    type Output = EndpointFlags;

    fn bitor(self, rhs: EndpointFlags) -> EndpointFlags {
        EndpointFlags(self.0 | rhs.0)
    }
}

/// `struct endpoint_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EndpointInfo {
    /// The endpoint id, also the first part of its policy keys.
    pub endpoint_id: u32,
    /// The interface index of the pod's host-side veth, in the namespace the program runs in.
    pub ifindex: u32,
    /// The endpoint's own security identity.
    pub identity: u32,
    /// The pod-side MAC address.
    pub mac: [u8; 6],
    pub flags: EndpointFlags,
}

#[expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
// SAFETY: repr(C), only integer fields (EndpointFlags is a transparent u16), no implicit
// padding (20 bytes, checked by the layout test).
unsafe impl aya::Pod for EndpointInfo {}

/// The pinned `endpoints` map.
#[derive(Debug)]
pub struct Endpoints {
    map: HashMap<MapData, [u8; 4], EndpointInfo>,
    epoch: Epoch,
}

impl Endpoints {
    pub(crate) fn new(map: HashMap<MapData, [u8; 4], EndpointInfo>, epoch: Epoch) -> Endpoints {
        Endpoints { map, epoch }
    }

    /// Inserts or replaces the endpoint at `addr`.
    pub fn insert(&mut self, addr: Ipv4Addr, info: &EndpointInfo) -> Result<(), Error> {
        self.map
            .insert(addr.octets(), info, 0)
            .map_err(map_error(ENDPOINTS, "insert", addr))?;
        self.epoch.bump()
    }

    /// Removes the endpoint at `addr`; `false` if there was none.
    pub fn remove(&mut self, addr: Ipv4Addr) -> Result<bool, Error> {
        let removed = removed(self.map.remove(&addr.octets()))
            .map_err(map_error(ENDPOINTS, "remove", addr))?;
        if removed {
            self.epoch.bump()?;
        }
        Ok(removed)
    }

    pub fn get(&self, addr: Ipv4Addr) -> Result<Option<EndpointInfo>, Error> {
        found(self.map.get(&addr.octets(), 0)).map_err(map_error(ENDPOINTS, "get", addr))
    }

    /// Every endpoint, in the kernel's iteration order.
    pub fn iter(&self) -> Result<Vec<(Ipv4Addr, EndpointInfo)>, Error> {
        self.map
            .iter()
            .map(|entry| {
                entry
                    .map(|(addr, info)| (Ipv4Addr::from(addr), info))
                    .map_err(map_error(ENDPOINTS, "iterate", ""))
            })
            .collect()
    }
}
