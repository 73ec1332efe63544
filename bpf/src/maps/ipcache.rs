//! `ipcache`: which security identity an IPv4 prefix has. The datapath looks up the peer of
//! every packet here (exact address, longest prefix wins); a miss means `world` (2).
//!
//! `ipblock` has the same layout: the identities of NetworkPolicy `ipBlock` peers, which also
//! cover pod addresses. The datapath consults it only when neither the peer's identity nor the
//! wildcard has an entry for the packet, and then only an allow (or redirect) there counts, as
//! `policy::mapstate::MapState::decide` does with its `ipblock` identity.

use std::net::Ipv4Addr;

use aya::maps::MapData;
use aya::maps::lpm_trie::{Key, LpmTrie};

use super::epoch::Epoch;
use super::{Ipv4Prefix, found, map_error, removed};
use crate::Error;

/// `struct ipcache_value`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpcacheValue {
    /// The prefix's security identity.
    pub identity: u32,
    /// The node to tunnel to (network order octets); unspecified (0.0.0.0) when not tunnelled.
    pub tunnel_endpoint: [u8; 4],
    /// Reserved; 0.
    pub flags: u8,
    pub(crate) pad: [u8; 3],
}

impl IpcacheValue {
    pub fn new(identity: u32) -> IpcacheValue {
        IpcacheValue {
            identity,
            ..IpcacheValue::default()
        }
    }

    pub fn tunnel_endpoint(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.tunnel_endpoint)
    }
}

#[expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
// SAFETY: repr(C), only integer fields, no implicit padding (12 bytes, checked by the layout
// test), so every bit pattern is valid and no byte is uninitialized.
unsafe impl aya::Pod for IpcacheValue {}

/// The pinned `ipcache` or `ipblock` map.
#[derive(Debug)]
pub struct Ipcache {
    map: LpmTrie<MapData, [u8; 4], IpcacheValue>,
    name: &'static str,
    epoch: Epoch,
}

impl Ipcache {
    pub(crate) fn new(
        map: LpmTrie<MapData, [u8; 4], IpcacheValue>,
        name: &'static str,
        epoch: Epoch,
    ) -> Ipcache {
        Ipcache { map, name, epoch }
    }

    /// `ipcache` or `ipblock`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Inserts or replaces the entry for `prefix`.
    pub fn insert(&mut self, prefix: Ipv4Prefix, value: &IpcacheValue) -> Result<(), Error> {
        self.map
            .insert(&key(prefix), value, 0)
            .map_err(map_error(self.name, "insert", prefix))?;
        self.epoch.bump()
    }

    /// Removes the entry for exactly `prefix`; `false` if there was none.
    pub fn remove(&mut self, prefix: Ipv4Prefix) -> Result<bool, Error> {
        let removed = removed(self.map.remove(&key(prefix)))
            .map_err(map_error(self.name, "remove", prefix))?;
        if removed {
            self.epoch.bump()?;
        }
        Ok(removed)
    }

    /// The entry the datapath would use for `addr` (longest prefix match).
    pub fn lookup(&self, addr: Ipv4Addr) -> Result<Option<IpcacheValue>, Error> {
        let prefix = Ipv4Prefix::host(addr);
        found(self.map.get(&key(prefix), 0)).map_err(map_error(self.name, "lookup", prefix))
    }

    /// Every entry, in the kernel's iteration order.
    pub fn iter(&self) -> Result<Vec<(Ipv4Prefix, IpcacheValue)>, Error> {
        let mut entries = Vec::new();
        for entry in self.map.iter() {
            let (key, value) = entry.map_err(map_error(self.name, "iterate", ""))?;
            let len = u8::try_from(key.prefix_len()).unwrap_or(u8::MAX);
            let prefix = Ipv4Prefix::new(Ipv4Addr::from(key.data()), len).map_err(|_| {
                Error::InvalidEntry {
                    map: self.name,
                    key: format!("{}/{}", Ipv4Addr::from(key.data()), key.prefix_len()),
                    problem: "prefix length above 32".to_owned(),
                }
            })?;
            entries.push((prefix, value));
        }
        Ok(entries)
    }
}

fn key(prefix: Ipv4Prefix) -> Key<[u8; 4]> {
    Key::new(u32::from(prefix.prefix_len()), prefix.addr().octets())
}
