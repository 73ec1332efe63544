//! Port ranges as the prefix-aligned blocks an LPM trie can hold.

use std::fmt;

use crate::Error;

#[cfg(test)]
mod tests;

/// A block of ports sharing their first `len` bits: `port/len` covers
/// `port ..= port + 2^(16 - len) - 1`. `len` 16 is one port, 0 is every port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PortPrefix {
    port: u16,
    len: u8,
}

impl PortPrefix {
    /// One port.
    pub const fn exact(port: u16) -> PortPrefix {
        PortPrefix { port, len: 16 }
    }

    /// Every port.
    pub const ANY: PortPrefix = PortPrefix { port: 0, len: 0 };

    /// `port/len`; the bits of `port` past `len` must be zero.
    pub fn new(port: u16, len: u8) -> Result<PortPrefix, Error> {
        if len > 16 {
            return Err(Error::InvalidPortPrefix {
                port,
                len,
                problem: "the length must be at most 16",
            });
        }
        if port & !mask(len) != 0 {
            return Err(Error::InvalidPortPrefix {
                port,
                len,
                problem: "bits past the prefix length are set",
            });
        }
        Ok(PortPrefix { port, len })
    }

    pub fn port(self) -> u16 {
        self.port
    }

    /// How many leading bits of the port are fixed (0..=16).
    pub fn prefix_len(self) -> u8 {
        self.len
    }

    /// Whether this block is every port.
    pub fn is_any(self) -> bool {
        self.len == 0
    }

    pub fn first(self) -> u16 {
        self.port
    }

    pub fn last(self) -> u16 {
        self.port | !mask(self.len)
    }

    pub fn contains(self, port: u16) -> bool {
        port & mask(self.len) == self.port
    }
}

impl fmt::Display for PortPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.len == 16 {
            write!(f, "{}", self.port)
        } else {
            write!(f, "{}-{}", self.first(), self.last())
        }
    }
}

fn mask(len: u8) -> u16 {
    match len {
        0 => 0,
        len => u16::MAX << (16 - u32::from(len.min(16))),
    }
}

/// Splits `lo..=hi` into the fewest prefix-aligned blocks, in ascending order: what the policy
/// writer inserts for a port range (for example 8080-8090 is 8080/13, 8088/15, 8090/16).
pub fn port_range_to_prefixes(lo: u16, hi: u16) -> Result<Vec<PortPrefix>, Error> {
    if lo > hi {
        return Err(Error::InvalidPortRange { lo, hi });
    }
    let (mut start, end) = (u32::from(lo), u32::from(hi));
    let mut blocks = Vec::new();
    while start <= end {
        // The largest block aligned at `start` that does not run past `end`.
        let mut bits = start.trailing_zeros().min(16);
        while start + (1 << bits) - 1 > end {
            bits -= 1;
        }
        let port = u16::try_from(start).expect("invariant: start <= hi <= u16::MAX");
        let len = u8::try_from(16 - bits).expect("invariant: bits <= 16");
        blocks.push(PortPrefix { port, len });
        start += 1 << bits;
    }
    Ok(blocks)
}
