//! `policy`: one LPM trie for every endpoint's L3/L4 policy.
//!
//! A key is `[endpoint id | peer identity | direction | protocol | destination port]`; its
//! prefix always covers the first three (72 bits), then the protocol byte (unless the entry is
//! for any protocol), then as many leading port bits as the entry fixes. Peer identity 0 is the
//! wildcard "any peer". A port range is written as several entries, one per block from
//! [`port_range_to_prefixes`](crate::port_range_to_prefixes). ICMP entries put the ICMP type in
//! the port (`L4::icmp_type`).
//!
//! For each packet the datapath looks up (endpoint, direction, peer identity) and
//! (endpoint, direction, identity 0), each returning its longest-prefix hit:
//! - either hit is [`Verdict::Deny`]: drop, reason 181 (policy deny);
//! - otherwise the hit with the longer L4 prefix wins (the peer's on a tie), allow or redirect;
//! - no hit: drop, reason 133 (policy denied).
//!
//! **The writer's contract**: because each lookup returns only its longest match, a deny must
//! never be hidden behind a more specific allow *of the same identity key*. When a deny covers
//! an allow for the same (endpoint, direction, identity), the writer writes the deny over the
//! allow's key as well (or leaves the allow out). Denies of identity 0 versus allows of a peer
//! identity need nothing: both lookups run.

use std::fmt;

use aya::maps::MapData;
use aya::maps::lpm_trie::{Key, LpmTrie};

use super::epoch::Epoch;
use super::{Direction, POLICY, found, map_error, removed};
use crate::Error;
use crate::ports::{PortPrefix, port_range_to_prefixes};

/// Bits of the key that every entry fixes: endpoint id, identity, direction.
pub const PREFIX_FIXED: u32 = 72;
const PREFIX_PROTO: u32 = 80;

/// `struct policy_key` without its leading `prefixlen` (aya's `Key` adds it).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyKeyData {
    pub endpoint_id: u32,
    pub identity: u32,
    pub direction: u8,
    pub proto: u8,
    /// Network byte order, so that a prefix is a block of ports.
    pub dport: [u8; 2],
}

#[expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
// SAFETY: repr(C), only integer fields, no implicit padding (12 bytes, checked by the layout
// test).
unsafe impl aya::Pod for PolicyKeyData {}

/// `struct policy_value`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PolicyValueRaw {
    /// 1 allow, 2 deny, 3 redirect.
    pub verdict: u8,
    /// The key's prefix length past [`PREFIX_FIXED`]; the datapath compares it between hits.
    pub l4_prefixlen: u8,
    /// Host byte order; redirect only.
    pub proxy_port: u16,
    pub cookie: u32,
}

#[expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
// SAFETY: repr(C), only integer fields, no implicit padding (8 bytes, checked by the layout
// test).
unsafe impl aya::Pod for PolicyValueRaw {}

/// Which packets of the peer an entry matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum L4 {
    /// Every protocol and port (an L3-only rule when the identity is not 0).
    Any,
    /// Every port of one IP protocol (6 TCP, 17 UDP, 1 ICMP, 132 SCTP).
    Proto(u8),
    /// A block of destination ports of one protocol; for ICMP the "port" is the ICMP type.
    Ports { proto: u8, ports: PortPrefix },
}

impl L4 {
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ICMP: u8 = 1;
    pub const SCTP: u8 = 132;

    /// One destination port.
    pub fn port(proto: u8, port: u16) -> L4 {
        L4::Ports {
            proto,
            ports: PortPrefix::exact(port),
        }
    }

    /// One ICMP type (8 echo request, 0 echo reply, ...).
    pub fn icmp_type(icmp_type: u8) -> L4 {
        L4::port(L4::ICMP, u16::from(icmp_type))
    }

    /// The entries that together match `lo..=hi` of `proto`.
    pub fn port_range(proto: u8, lo: u16, hi: u16) -> Result<Vec<L4>, Error> {
        Ok(port_range_to_prefixes(lo, hi)?
            .into_iter()
            .map(|ports| L4::Ports { proto, ports })
            .collect())
    }

    /// Key bits past [`PREFIX_FIXED`].
    fn prefix_bits(self) -> u32 {
        match self {
            L4::Any => 0,
            L4::Proto(_) => 8,
            L4::Ports { ports, .. } => 8 + u32::from(ports.prefix_len()),
        }
    }
}

impl fmt::Display for L4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            L4::Any => f.write_str("any"),
            L4::Proto(proto) => write!(f, "{}", proto_name(*proto)),
            L4::Ports { proto, ports } => write!(f, "{ports}/{}", proto_name(*proto)),
        }
    }
}

fn proto_name(proto: u8) -> String {
    match proto {
        L4::TCP => "tcp".to_owned(),
        L4::UDP => "udp".to_owned(),
        L4::ICMP => "icmp".to_owned(),
        L4::SCTP => "sctp".to_owned(),
        other => format!("proto-{other}"),
    }
}

/// One policy entry's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyKey {
    pub endpoint_id: u32,
    pub direction: Direction,
    /// The peer's security identity; 0 matches every peer.
    pub identity: u32,
    pub l4: L4,
}

impl PolicyKey {
    /// The LPM key the kernel stores.
    pub fn to_raw(&self) -> Key<PolicyKeyData> {
        let (proto, port) = match self.l4 {
            L4::Any => (0, 0),
            L4::Proto(proto) => (proto, 0),
            L4::Ports { proto, ports } => (proto, ports.port()),
        };
        Key::new(
            PREFIX_FIXED + self.l4.prefix_bits(),
            PolicyKeyData {
                endpoint_id: self.endpoint_id,
                identity: self.identity,
                direction: self.direction as u8,
                proto,
                dport: port.to_be_bytes(),
            },
        )
    }

    pub fn from_raw(key: &Key<PolicyKeyData>) -> Result<PolicyKey, Error> {
        let data = key.data();
        let prefix_len = key.prefix_len();
        let invalid = |problem: &str| Error::InvalidEntry {
            map: POLICY,
            key: format!("{data:?}/{prefix_len}"),
            problem: problem.to_owned(),
        };
        let direction = Direction::from_raw(data.direction).ok_or_else(|| invalid("direction"))?;
        let l4 = match prefix_len {
            PREFIX_FIXED => L4::Any,
            PREFIX_PROTO => L4::Proto(data.proto),
            len if len > PREFIX_PROTO && len <= PREFIX_PROTO + 16 => L4::Ports {
                proto: data.proto,
                ports: PortPrefix::new(
                    u16::from_be_bytes(data.dport),
                    u8::try_from(len - PREFIX_PROTO).expect("invariant: at most 16"),
                )?,
            },
            _ => return Err(invalid("prefix length")),
        };
        Ok(PolicyKey {
            endpoint_id: data.endpoint_id,
            direction,
            identity: data.identity,
            l4,
        })
    }
}

impl fmt::Display for PolicyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "endpoint {} {} identity {} {}",
            self.endpoint_id, self.direction, self.identity, self.l4
        )
    }
}

/// What happens to a matching packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Allow,
    Deny,
    /// Allow, and mark the packet for the L7 proxy listening on `proxy_port` (Cilium's mark
    /// `0x0200 | port << 16`, which the proxy's TPROXY rule matches). The mark only steers
    /// packets leaving a pod (they are routed after `from_container`); redirecting traffic
    /// into a pod needs the proxy's own datapath work and is not done here.
    Redirect {
        proxy_port: u16,
    },
}

impl Verdict {
    /// `VERDICT_*` of myelin.h and the proxy port, as the policy map and events carry them.
    fn to_raw(self) -> (u8, u16) {
        match self {
            Verdict::Allow => (1, 0),
            Verdict::Deny => (2, 0),
            Verdict::Redirect { proxy_port } => (3, proxy_port),
        }
    }

    /// The inverse of `to_raw`; `None` for a number that is no verdict.
    pub(crate) fn from_raw(verdict: u8, proxy_port: u16) -> Option<Verdict> {
        match verdict {
            1 => Some(Verdict::Allow),
            2 => Some(Verdict::Deny),
            3 => Some(Verdict::Redirect { proxy_port }),
            _ => None,
        }
    }
}

/// One policy entry's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PolicyValue {
    pub verdict: Verdict,
    /// Opaque to the datapath; reported in policy-verdict events so that a flow can name the
    /// rule that decided it.
    pub cookie: u32,
}

impl PolicyValue {
    pub fn allow() -> PolicyValue {
        PolicyValue {
            verdict: Verdict::Allow,
            cookie: 0,
        }
    }

    pub fn deny() -> PolicyValue {
        PolicyValue {
            verdict: Verdict::Deny,
            cookie: 0,
        }
    }

    fn to_raw(self, key: &PolicyKey) -> PolicyValueRaw {
        let (verdict, proxy_port) = self.verdict.to_raw();
        PolicyValueRaw {
            verdict,
            l4_prefixlen: u8::try_from(key.l4.prefix_bits()).expect("invariant: at most 24"),
            proxy_port,
            cookie: self.cookie,
        }
    }

    fn from_raw(raw: PolicyValueRaw) -> Option<PolicyValue> {
        Some(PolicyValue {
            verdict: Verdict::from_raw(raw.verdict, raw.proxy_port)?,
            cookie: raw.cookie,
        })
    }
}

/// The pinned `policy` map.
#[derive(Debug)]
pub struct Policy {
    map: LpmTrie<MapData, PolicyKeyData, PolicyValueRaw>,
    epoch: Epoch,
}

impl Policy {
    pub(crate) fn new(
        map: LpmTrie<MapData, PolicyKeyData, PolicyValueRaw>,
        epoch: Epoch,
    ) -> Policy {
        Policy { map, epoch }
    }

    /// Inserts or replaces one entry.
    pub fn insert(&mut self, key: &PolicyKey, value: &PolicyValue) -> Result<(), Error> {
        self.map
            .insert(&key.to_raw(), value.to_raw(key), 0)
            .map_err(map_error(POLICY, "insert", key))?;
        self.epoch.bump()
    }

    /// Removes exactly this entry; `false` if there was none.
    pub fn remove(&mut self, key: &PolicyKey) -> Result<bool, Error> {
        let removed =
            removed(self.map.remove(&key.to_raw())).map_err(map_error(POLICY, "remove", key))?;
        if removed {
            self.epoch.bump()?;
        }
        Ok(removed)
    }

    /// The entry the datapath's lookup of `key` hits: the longest prefix of it that is in the
    /// map, so an L3-only or whole-protocol entry answers for a port. Lets a reader outside the
    /// agent check that a change is enforced without walking the whole map.
    pub fn lookup(&self, key: &PolicyKey) -> Result<Option<PolicyValue>, Error> {
        let raw =
            found(self.map.get(&key.to_raw(), 0)).map_err(map_error(POLICY, "lookup", key))?;
        raw.map(|raw| {
            PolicyValue::from_raw(raw).ok_or_else(|| Error::InvalidEntry {
                map: POLICY,
                key: key.to_string(),
                problem: format!("verdict {}", raw.verdict),
            })
        })
        .transpose()
    }

    /// Every entry, in the kernel's iteration order.
    pub fn iter(&self) -> Result<Vec<(PolicyKey, PolicyValue)>, Error> {
        let mut entries = Vec::new();
        for entry in self.map.iter() {
            let (raw_key, raw_value) = entry.map_err(map_error(POLICY, "iterate", ""))?;
            let key = PolicyKey::from_raw(&raw_key)?;
            let value = PolicyValue::from_raw(raw_value).ok_or_else(|| Error::InvalidEntry {
                map: POLICY,
                key: key.to_string(),
                problem: format!("verdict {}", raw_value.verdict),
            })?;
            entries.push((key, value));
        }
        Ok(entries)
    }
}
