//! Ring buffer records and their decoding: what the observability layer turns into flows.
//!
//! Every record is one `struct event` (192 bytes): a header (type, capture length, packet
//! length, time), the flow (endpoint, interface, identities, IPv4 5-tuple, TCP flags,
//! direction, conntrack state), the kind-specific fields and the first bytes of the packet.

use std::fmt;
use std::net::Ipv4Addr;

use arrayvec::ArrayVec;

use crate::Error;
use crate::maps::Direction;
use crate::maps::policy::Verdict;

mod reader;

pub use reader::EventReader;

/// Bytes of the packet an event carries at most.
pub const CAPTURE_LEN: usize = 128;

/// `struct event_header`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// 1 drop, 2 policy verdict, 3 trace.
    pub r#type: u8,
    pub version: u8,
    pub cap_len: u16,
    pub pkt_len: u32,
    pub ktime_ns: u64,
}

/// `struct event_flow`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventFlow {
    pub endpoint_id: u32,
    pub ifindex: u32,
    pub src_identity: u32,
    pub dst_identity: u32,
    /// Network order octets.
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
    /// Host byte order; ICMP: type and code.
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub tcp_flags: u8,
    pub direction: u8,
    pub ct_state: u8,
}

/// `struct event`, as it sits in the ring buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub hdr: EventHeader,
    pub flow: EventFlow,
    pub code: u16,
    pub match_type: u8,
    pub verdict: u8,
    pub proxy_port: u16,
    pub(crate) pad: u16,
    pub cookie: u32,
    pub(crate) pad2: u32,
    pub data: [u8; CAPTURE_LEN],
}

#[expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
// SAFETY: repr(C), only integer fields and arrays, explicit padding fields, 192 bytes
// (checked by the layout test).
unsafe impl aya::Pod for RawEvent {}

const EVENT_VERSION: u8 = 1;

/// Why a packet was dropped: Cilium's drop reason codes (flow.proto `DropReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DropReason(pub u16);

impl DropReason {
    pub const INVALID_SOURCE_IP: DropReason = DropReason(132);
    pub const POLICY_DENIED: DropReason = DropReason(133);
    pub const INVALID_PACKET: DropReason = DropReason(134);
    pub const NO_MATCHING_LOCAL_CONTAINER: DropReason = DropReason(152);
    pub const CT_MAP_INSERTION_FAILED: DropReason = DropReason(155);
    pub const POLICY_DENY: DropReason = DropReason(181);

    /// The flow.proto enum name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::INVALID_SOURCE_IP => "INVALID_SOURCE_IP",
            DropReason::POLICY_DENIED => "POLICY_DENIED",
            DropReason::INVALID_PACKET => "INVALID_PACKET_DROPPED",
            DropReason::NO_MATCHING_LOCAL_CONTAINER => "NO_MATCHING_LOCAL_CONTAINER_FOUND",
            DropReason::CT_MAP_INSERTION_FAILED => "CT_MAP_INSERTION_FAILED",
            DropReason::POLICY_DENY => "POLICY_DENY",
            _ => "DROP_REASON_UNKNOWN",
        }
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// Where a trace event was taken: flow.proto `TraceObservationPoint` numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObservationPoint(pub u16);

impl ObservationPoint {
    pub const TO_PROXY: ObservationPoint = ObservationPoint(1);
    pub const TO_STACK: ObservationPoint = ObservationPoint(3);
    pub const FROM_ENDPOINT: ObservationPoint = ObservationPoint(5);
    pub const TO_ENDPOINT: ObservationPoint = ObservationPoint(101);

    /// The name `hubble observe` prints.
    pub fn name(self) -> &'static str {
        match self {
            ObservationPoint::TO_PROXY => "to-proxy",
            ObservationPoint::TO_STACK => "to-stack",
            ObservationPoint::FROM_ENDPOINT => "from-endpoint",
            ObservationPoint::TO_ENDPOINT => "to-endpoint",
            _ => "unknown",
        }
    }
}

/// flow.proto `policy_match_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchType {
    None = 0,
    L3Only = 1,
    L3L4 = 2,
    L4Only = 3,
    All = 4,
}

/// Conntrack's view of the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtState {
    /// The first packet of a connection.
    New,
    /// A later packet from the initiator.
    Established,
    /// A packet from the responder.
    Reply,
}

/// The fields every event has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    pub endpoint_id: u32,
    pub ifindex: u32,
    pub src_identity: u32,
    pub dst_identity: u32,
    pub saddr: Ipv4Addr,
    pub daddr: Ipv4Addr,
    /// Ports; for ICMP the type and the code.
    pub sport: u16,
    pub dport: u16,
    pub proto: u8,
    pub tcp_flags: u8,
    /// Relative to the endpoint.
    pub direction: Direction,
    pub ct_state: CtState,
}

impl Flow {
    /// Whether the packet is a reply of a tracked connection: flow.proto's `is_reply`.
    pub fn is_reply(&self) -> bool {
        self.ct_state == CtState::Reply
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    Drop {
        reason: DropReason,
    },
    /// The policy decision for a new connection of an enforcing endpoint; `verdict` is `None`
    /// when no entry matched.
    PolicyVerdict {
        verdict: Option<Verdict>,
        match_type: MatchType,
        cookie: u32,
    },
    Trace {
        point: ObservationPoint,
    },
}

/// One decoded ring buffer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub ktime_ns: u64,
    /// Length of the whole packet.
    pub pkt_len: u32,
    pub flow: Flow,
    /// The first bytes of the packet, Ethernet header first (inline: a reader keeping events
    /// allocates nothing per event for them).
    pub data: ArrayVec<u8, CAPTURE_LEN>,
}

impl Event {
    /// Decodes one ring buffer record.
    pub fn decode(bytes: &[u8]) -> Result<Event, Error> {
        let malformed = |problem: String| Error::MalformedEvent {
            len: bytes.len(),
            problem,
        };
        if bytes.len() < size_of::<RawEvent>() {
            return Err(malformed(format!(
                "shorter than the {} bytes of an event",
                size_of::<RawEvent>()
            )));
        }
        #[expect(unsafe_code, reason = "reading a Pod struct out of ring buffer bytes")]
        // SAFETY: `bytes` holds at least size_of::<RawEvent>() bytes (checked above), the read
        // is unaligned-safe, and RawEvent is plain data for which every bit pattern is valid.
        let raw = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<RawEvent>()) };
        if raw.hdr.version != EVENT_VERSION {
            return Err(malformed(format!("version {}", raw.hdr.version)));
        }
        let direction = Direction::from_raw(raw.flow.direction)
            .ok_or_else(|| malformed(format!("direction {}", raw.flow.direction)))?;
        let ct_state = match raw.flow.ct_state {
            0 => CtState::New,
            1 => CtState::Established,
            2 => CtState::Reply,
            other => return Err(malformed(format!("conntrack state {other}"))),
        };
        let kind = match raw.hdr.r#type {
            1 => EventKind::Drop {
                reason: DropReason(raw.code),
            },
            2 => EventKind::PolicyVerdict {
                verdict: match raw.verdict {
                    0 => None,
                    other => Some(
                        Verdict::from_raw(other, raw.proxy_port)
                            .ok_or_else(|| malformed(format!("verdict {other}")))?,
                    ),
                },
                match_type: match raw.match_type {
                    0 => MatchType::None,
                    1 => MatchType::L3Only,
                    2 => MatchType::L3L4,
                    3 => MatchType::L4Only,
                    4 => MatchType::All,
                    other => return Err(malformed(format!("match type {other}"))),
                },
                cookie: raw.cookie,
            },
            3 => EventKind::Trace {
                point: ObservationPoint(raw.code),
            },
            other => return Err(malformed(format!("type {other}"))),
        };
        let cap_len = usize::from(raw.hdr.cap_len).min(CAPTURE_LEN);
        Ok(Event {
            kind,
            ktime_ns: raw.hdr.ktime_ns,
            pkt_len: raw.hdr.pkt_len,
            flow: Flow {
                endpoint_id: raw.flow.endpoint_id,
                ifindex: raw.flow.ifindex,
                src_identity: raw.flow.src_identity,
                dst_identity: raw.flow.dst_identity,
                saddr: Ipv4Addr::from(raw.flow.saddr),
                daddr: Ipv4Addr::from(raw.flow.daddr),
                sport: raw.flow.sport,
                dport: raw.flow.dport,
                proto: raw.flow.proto,
                tcp_flags: raw.flow.tcp_flags,
                direction,
                ct_state,
            },
            data: raw.data[..cap_len].iter().copied().collect(),
        })
    }
}
