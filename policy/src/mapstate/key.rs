use std::fmt;

use crate::identity::Identity;
use crate::rule::Direction;

pub const PROTO_ANY: u8 = 0;
pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_ICMPV6: u8 = 58;
pub const PROTO_SCTP: u8 = 132;

/// A policy map key. `port` is the first port of the prefix; `port_prefix` its length in
/// bits (16 = one port, 0 = every port). With `proto == PROTO_ANY` the port prefix is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub direction: Direction,
    pub identity: Identity,
    pub proto: u8,
    pub port: u16,
    pub port_prefix: u8,
}

impl Key {
    pub fn any(direction: Direction, identity: Identity) -> Self {
        Self {
            direction,
            identity,
            proto: PROTO_ANY,
            port: 0,
            port_prefix: 0,
        }
    }

    pub fn new(
        direction: Direction,
        identity: Identity,
        proto: u8,
        port: u16,
        port_prefix: u8,
    ) -> Self {
        Self {
            direction,
            identity,
            proto,
            port: port & port_mask(port_prefix),
            port_prefix,
        }
    }

    /// Bits of the key after the identity: 8 for the protocol, then the port prefix. Longer
    /// is more specific, as in the BPF LPM trie.
    pub fn specificity(&self) -> u8 {
        if self.proto == PROTO_ANY {
            0
        } else {
            8 + self.port_prefix
        }
    }

    /// Whether `other` (same direction and identity) falls inside this key.
    pub fn covers(&self, other: &Key) -> bool {
        self.direction == other.direction
            && self.identity == other.identity
            && (self.proto == PROTO_ANY
                || (self.proto == other.proto
                    && other.port_prefix >= self.port_prefix
                    && other.port & port_mask(self.port_prefix) == self.port))
    }

    /// The broader keys of the same direction and identity that contain this one.
    pub fn covering(&self) -> impl Iterator<Item = Key> + '_ {
        let ports = (0..self.port_prefix)
            .rev()
            .filter(move |_| self.proto != PROTO_ANY)
            .map(move |len| Key::new(self.direction, self.identity, self.proto, self.port, len));
        let any = (self.proto != PROTO_ANY).then(|| Key::any(self.direction, self.identity));
        ports.chain(any)
    }

    /// The greatest key this one can cover, for range scans in key order.
    pub fn last_covered(&self) -> Key {
        if self.proto == PROTO_ANY {
            return Key {
                direction: self.direction,
                identity: self.identity,
                proto: u8::MAX,
                port: u16::MAX,
                port_prefix: u8::MAX,
            };
        }
        Key {
            port: self.end_port(),
            port_prefix: u8::MAX,
            ..*self
        }
    }

    /// The keys a longest-prefix match tries, most specific first.
    pub fn lookup_chain(
        direction: Direction,
        identity: Identity,
        proto: u8,
        port: u16,
    ) -> impl Iterator<Item = Key> {
        let ports = (0..=16u8)
            .rev()
            .map(move |len| Key::new(direction, identity, proto, port, len));
        ports.chain(std::iter::once(Key::any(direction, identity)))
    }

    /// The last port of the prefix.
    pub fn end_port(&self) -> u16 {
        self.port | !port_mask(self.port_prefix)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ", self.direction.as_str(), self.identity)?;
        match (self.proto, self.port_prefix) {
            (PROTO_ANY, _) => f.write_str("ANY"),
            (proto, 0) => write!(f, "{}", proto_name(proto)),
            (proto, 16) => write!(f, "{}/{}", self.port, proto_name(proto)),
            (proto, _) => write!(f, "{}-{}/{}", self.port, self.end_port(), proto_name(proto)),
        }
    }
}

pub fn proto_name(proto: u8) -> String {
    match proto {
        PROTO_TCP => "TCP".to_owned(),
        PROTO_UDP => "UDP".to_owned(),
        PROTO_SCTP => "SCTP".to_owned(),
        PROTO_ICMP => "ICMP".to_owned(),
        PROTO_ICMPV6 => "ICMPv6".to_owned(),
        other => other.to_string(),
    }
}

fn port_mask(prefix: u8) -> u16 {
    u16::MAX
        .checked_shl(16 - u32::from(prefix.min(16)))
        .unwrap_or(0)
}

/// Splits `lo..=hi` into the fewest prefix-aligned blocks, as `(first port, prefix length)`.
pub fn port_range_prefixes(lo: u16, hi: u16) -> Vec<(u16, u8)> {
    let mut out = Vec::new();
    let (mut lo, hi) = (u32::from(lo), u32::from(hi));
    while lo <= hi {
        // The largest aligned block that starts at `lo` and ends at or before `hi`.
        let mut size: u32 = if lo == 0 {
            1 << 16
        } else {
            1 << lo.trailing_zeros().min(16)
        };
        while lo + size - 1 > hi {
            size >>= 1;
        }
        let prefix = 16 - size.trailing_zeros();
        out.push((
            u16::try_from(lo).expect("invariant: lo <= hi <= u16::MAX"),
            u8::try_from(prefix).expect("invariant: prefix <= 16"),
        ));
        lo += size;
    }
    out
}
