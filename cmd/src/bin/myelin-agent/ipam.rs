//! Address allocation from the node's pod CIDR.
//!
//! The pool is the CIDR minus its network address, its broadcast address and the first host
//! address, which is the node's (router's) own. Allocation is next-fit from the last address
//! handed out, so an address just released is the last to be reused: a late packet for a deleted
//! pod does not reach its successor.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use schema::cidr::Cidr;

#[cfg(test)]
mod tests;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum IpamError {
    #[error("pod cidr {cidr} is not ipv4")]
    NotIpv4 { cidr: Cidr },
    #[error("pod cidr {cidr} is too small: a pool needs a /30 or larger")]
    TooSmall { cidr: Cidr },
    #[error("no free address in pod cidr {cidr} ({allocated} allocated)")]
    Exhausted { cidr: Cidr, allocated: usize },
    #[error("{ip} is outside the pool of pod cidr {cidr}")]
    OutOfPool { ip: Ipv4Addr, cidr: Cidr },
    #[error("{ip} is already allocated to {owner}")]
    Taken { ip: Ipv4Addr, owner: String },
}

/// The allocations of one pod CIDR, owner by owner (container ids).
#[derive(Debug)]
pub(crate) struct Ipam {
    cidr: Cidr,
    first: u32,
    last: u32,
    /// Where the next search starts.
    cursor: u32,
    allocated: BTreeMap<Ipv4Addr, String>,
}

impl Ipam {
    pub(crate) fn new(cidr: Cidr) -> Result<Ipam, IpamError> {
        let cidr = cidr.network();
        let IpAddr::V4(network) = cidr.addr() else {
            return Err(IpamError::NotIpv4 { cidr });
        };
        if cidr.prefix_len() > 30 {
            return Err(IpamError::TooSmall { cidr });
        }
        let network = u32::from(network);
        let broadcast = network | (u32::MAX >> cidr.prefix_len());
        Ok(Ipam {
            cidr,
            first: network + 2,
            last: broadcast - 1,
            cursor: network + 2,
            allocated: BTreeMap::new(),
        })
    }

    pub(crate) fn cidr(&self) -> Cidr {
        self.cidr
    }

    /// How many addresses the pool holds.
    pub(crate) fn total(&self) -> u32 {
        self.last - self.first + 1
    }

    pub(crate) fn free(&self) -> u32 {
        let allocated = u32::try_from(self.allocated.len())
            .expect("invariant: allocations are addresses of one ipv4 pool");
        self.total() - allocated
    }

    /// The owner's address: the one it has, or a new one.
    pub(crate) fn allocate(&mut self, owner: &str) -> Result<Ipv4Addr, IpamError> {
        if let Some((ip, _)) = self.allocated.iter().find(|(_, o)| o.as_str() == owner) {
            return Ok(*ip);
        }
        let candidates = (self.cursor..=self.last).chain(self.first..self.cursor);
        for candidate in candidates {
            let ip = Ipv4Addr::from(candidate);
            if let std::collections::btree_map::Entry::Vacant(slot) = self.allocated.entry(ip) {
                slot.insert(owner.to_owned());
                self.cursor = if candidate == self.last {
                    self.first
                } else {
                    candidate + 1
                };
                return Ok(ip);
            }
        }
        Err(IpamError::Exhausted {
            cidr: self.cidr,
            allocated: self.allocated.len(),
        })
    }

    /// Records an allocation made earlier (restored from the state directory).
    pub(crate) fn reserve(&mut self, ip: Ipv4Addr, owner: &str) -> Result<(), IpamError> {
        if !(self.first..=self.last).contains(&u32::from(ip)) {
            return Err(IpamError::OutOfPool {
                ip,
                cidr: self.cidr,
            });
        }
        match self.allocated.get(&ip) {
            Some(existing) if existing != owner => Err(IpamError::Taken {
                ip,
                owner: existing.clone(),
            }),
            _ => {
                self.allocated.insert(ip, owner.to_owned());
                Ok(())
            }
        }
    }

    /// Frees the address; returns its owner if it was allocated.
    pub(crate) fn release(&mut self, ip: Ipv4Addr) -> Option<String> {
        self.allocated.remove(&ip)
    }

    #[cfg(test)]
    pub(crate) fn allocations(&self) -> impl Iterator<Item = (Ipv4Addr, &str)> {
        self.allocated
            .iter()
            .map(|(ip, owner)| (*ip, owner.as_str()))
    }
}
