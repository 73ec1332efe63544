//! IP prefixes (`10.0.0.0/8`, `2001:db8::/32`) as written in `toCIDR`, `toCIDRSet` and `ipBlock`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An IP prefix. The address is kept as written (host bits may be set, as Go's
/// `netip.ParsePrefix` allows); [`Cidr::network`] masks them off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix_len: u8,
}

/// Why a string is not a [`Cidr`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("missing prefix length")]
    MissingPrefixLength,
    #[error("{0:?} is not an IP address")]
    InvalidAddress(String),
    #[error("{0:?} is not a prefix length")]
    InvalidPrefixLength(String),
    #[error("prefix length {len} is longer than {max}")]
    PrefixTooLong { len: u8, max: u8 },
}

impl Cidr {
    /// A prefix of `prefix_len` bits starting at `addr`.
    pub fn new(addr: IpAddr, prefix_len: u8) -> Result<Self, CidrError> {
        let max = max_len(addr);
        if prefix_len > max {
            return Err(CidrError::PrefixTooLong {
                len: prefix_len,
                max,
            });
        }
        Ok(Self { addr, prefix_len })
    }

    /// The single-address prefix of `addr` (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> Self {
        Self {
            addr,
            prefix_len: max_len(addr),
        }
    }

    /// Parses `addr/len`, or a bare address as its host prefix (what `fromCIDR`/`toCIDR`
    /// accept; `toCIDRSet` and `ipBlock` need the `/len`).
    pub fn parse_prefix_or_addr(text: &str) -> Result<Self, CidrError> {
        if text.contains('/') {
            text.parse()
        } else {
            parse_addr(text).map(Self::host)
        }
    }

    /// The address as written.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The number of leading bits that are fixed.
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// Whether this is an IPv4 prefix.
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// The prefix with its host bits cleared (`10.1.2.3/8` -> `10.0.0.0/8`).
    #[must_use]
    pub fn network(&self) -> Self {
        let addr = match self.addr {
            IpAddr::V4(v4) => IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask_v4(self.prefix_len))),
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask_v6(self.prefix_len))),
        };
        Self {
            addr,
            prefix_len: self.prefix_len,
        }
    }

    /// Whether `addr` lies in this prefix (never across address families).
    pub fn contains_addr(&self, addr: IpAddr) -> bool {
        match (self.addr, addr) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.prefix_len);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix_len);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// Whether every address of `other` lies in this prefix.
    pub fn contains(&self, other: &Cidr) -> bool {
        other.prefix_len >= self.prefix_len && self.contains_addr(other.addr)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// Parses `addr/len`; the length is required.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, len) = text.split_once('/').ok_or(CidrError::MissingPrefixLength)?;
        let addr = parse_addr(addr)?;
        let valid_digits = !len.is_empty()
            && len.len() <= 3
            && len.bytes().all(|b| b.is_ascii_digit())
            && (len == "0" || !len.starts_with('0'));
        let prefix_len = valid_digits
            .then(|| len.parse::<u8>().ok())
            .flatten()
            .ok_or_else(|| CidrError::InvalidPrefixLength(len.to_owned()))?;
        Self::new(addr, prefix_len)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)
    }
}

fn parse_addr(text: &str) -> Result<IpAddr, CidrError> {
    text.parse()
        .map_err(|_| CidrError::InvalidAddress(text.to_owned()))
}

fn max_len(addr: IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

fn mask_v4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask_v6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

#[cfg(test)]
mod tests;
