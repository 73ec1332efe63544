//! Datapath events into flows, with the numbers Hubble uses.
//!
//! The mapping follows Cilium's monitor and Hubble's L3/L4 parser: a drop is `DROPPED` with its
//! reason, a trace `FORWARDED` at its observation point, a policy verdict `FORWARDED`,
//! `REDIRECTED` or `DROPPED` by the entry that decided (no entry: denied by default). Drops
//! leave `is_reply` absent, as Cilium cannot tell; policy verdicts are for new connections.

use std::time::{Duration, SystemTime};

use bpf::events::{CtState, DropReason, EventKind, MatchType};
use bpf::{Direction, Event, Verdict as MapVerdict};
use prost_types::Timestamp;
use schema::flow::{
    self, CiliumEventType, Ethernet, Flow, FlowType, IpVersion, Layer4, NetworkInterface, Tcp,
    TcpFlags, TraceObservationPoint, TrafficDirection, Verdict, layer4,
};

#[cfg(test)]
mod tests;

/// Cilium's monitor message types (`pkg/monitor/api`), the `event_type.type` of a flow and of
/// `--type` filters.
pub mod monitor {
    pub const DROP: i32 = 1;
    pub const DEBUG: i32 = 2;
    pub const CAPTURE: i32 = 3;
    pub const TRACE: i32 = 4;
    pub const POLICY_VERDICT: i32 = 9;
    pub const RECORD_CAPTURE: i32 = 128;
    pub const ACCESS_LOG: i32 = 129;
    pub const TRACE_SOCK: i32 = 133;
}

/// Why an event cannot become a flow.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("decoding a ring buffer record")]
    Event(#[source] bpf::Error),
}

/// Turns events of one node into flows.
#[derive(Clone, Debug)]
pub struct Decoder {
    node_name: String,
    /// Wall-clock time of `ktime_ns == 0` (boot), so event times become timestamps.
    boot: SystemTime,
}

impl Decoder {
    pub fn new(node_name: impl Into<String>, boot: SystemTime) -> Decoder {
        Decoder {
            node_name: node_name.into(),
            boot,
        }
    }

    /// The node whose flows this decodes.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// One ring buffer record into a flow, before enrichment.
    pub fn decode(&self, record: &[u8]) -> Result<Flow, DecodeError> {
        let event = Event::decode(record).map_err(DecodeError::Event)?;
        Ok(self.flow(&event))
    }

    /// When the event happened, as a flow's `time`.
    pub fn time(&self, event: &Event) -> Timestamp {
        timestamp(self.boot + Duration::from_nanos(event.ktime_ns))
    }

    /// A decoded event into a flow, before enrichment: endpoints carry only the identities.
    pub fn flow(&self, event: &Event) -> Flow {
        let f = &event.flow;
        let mut flow = Flow {
            time: Some(timestamp(self.boot + Duration::from_nanos(event.ktime_ns))),
            r#type: FlowType::L3L4.into(),
            node_name: self.node_name.clone(),
            ethernet: ethernet(&event.data),
            ip: Some(flow::Ip {
                source: ipv4(f.saddr),
                destination: ipv4(f.daddr),
                ip_version: IpVersion::IPv4.into(),
                ..flow::Ip::default()
            }),
            l4: layer4(f.proto, f.sport, f.dport, f.tcp_flags),
            source: Some(flow::Endpoint {
                identity: f.src_identity,
                ..flow::Endpoint::default()
            }),
            destination: Some(flow::Endpoint {
                identity: f.dst_identity,
                ..flow::Endpoint::default()
            }),
            traffic_direction: match f.direction {
                Direction::Ingress => TrafficDirection::Ingress,
                Direction::Egress => TrafficDirection::Egress,
            }
            .into(),
            interface: (f.ifindex != 0).then(|| NetworkInterface {
                index: f.ifindex,
                name: String::new(),
            }),
            ..Flow::default()
        };
        // The endpoint the event was taken at is the destination of ingress traffic and the
        // source of egress traffic.
        let local = match f.direction {
            Direction::Ingress => flow.destination.as_mut(),
            Direction::Egress => flow.source.as_mut(),
        };
        if let Some(local) = local {
            local.id = f.endpoint_id;
        }
        match &event.kind {
            EventKind::Drop { reason } => {
                flow.verdict = Verdict::Dropped.into();
                set_drop_reason(&mut flow, *reason);
                flow.event_type = Some(CiliumEventType {
                    r#type: monitor::DROP,
                    sub_type: i32::from(reason.0),
                });
            }
            EventKind::PolicyVerdict {
                verdict,
                match_type,
                ..
            } => {
                flow.verdict = match verdict {
                    Some(MapVerdict::Allow) => Verdict::Forwarded,
                    Some(MapVerdict::Redirect { .. }) => Verdict::Redirected,
                    Some(MapVerdict::Deny) | None => Verdict::Dropped,
                }
                .into();
                match verdict {
                    Some(MapVerdict::Deny) => set_drop_reason(&mut flow, DropReason::POLICY_DENY),
                    None => set_drop_reason(&mut flow, DropReason::POLICY_DENIED),
                    Some(MapVerdict::Redirect { proxy_port }) => {
                        flow.proxy_port = u32::from(*proxy_port);
                    }
                    Some(MapVerdict::Allow) => {}
                }
                flow.policy_match_type = match match_type {
                    MatchType::None => 0,
                    MatchType::L3Only => 1,
                    MatchType::L3L4 => 2,
                    MatchType::L4Only => 3,
                    MatchType::All => 4,
                };
                flow.is_reply = Some(false);
                flow.event_type = Some(CiliumEventType {
                    r#type: monitor::POLICY_VERDICT,
                    sub_type: 0,
                });
            }
            EventKind::Trace { point } => {
                flow.verdict = Verdict::Forwarded.into();
                let point = TraceObservationPoint::try_from(i32::from(point.0))
                    .unwrap_or(TraceObservationPoint::UnknownPoint);
                flow.trace_observation_point = point.into();
                flow.is_reply = Some(f.ct_state == CtState::Reply);
                flow.event_type = Some(CiliumEventType {
                    r#type: monitor::TRACE,
                    sub_type: trace_sub_type(point),
                });
            }
        }
        #[expect(
            deprecated,
            reason = "Hubble's printers print the summary the server filled"
        )]
        {
            flow.summary = crate::print::l4_summary(&flow);
        }
        flow
    }
}

fn set_drop_reason(flow: &mut Flow, reason: DropReason) {
    #[expect(
        deprecated,
        reason = "older Hubble clients still read the numeric reason"
    )]
    {
        flow.drop_reason = u32::from(reason.0);
    }
    flow.drop_reason_desc = flow::DropReason::try_from(i32::from(reason.0))
        .unwrap_or(flow::DropReason::Unknown)
        .into();
}

/// Cilium's trace sub type (`TraceToLxc` = 0, ...): the observation point's number, except that
/// `TO_ENDPOINT` (101 in flow.proto) is sub type 0.
pub fn trace_sub_type(point: TraceObservationPoint) -> i32 {
    match point {
        TraceObservationPoint::ToEndpoint => 0,
        other => other as i32,
    }
}

pub(crate) fn timestamp(time: SystemTime) -> Timestamp {
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
    }
}

fn ethernet(data: &[u8]) -> Option<Ethernet> {
    let header = data.get(..12)?;
    Some(Ethernet {
        source: mac(&header[6..12]),
        destination: mac(&header[..6]),
    })
}

/// `aa:bb:cc:dd:ee:ff`, written digit by digit: `format!` costs more than the rest of a flow.
fn mac(octets: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(17);
    for (i, octet) in octets.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.push(char::from(HEX[usize::from(octet >> 4)]));
        out.push(char::from(HEX[usize::from(octet & 0xf)]));
    }
    out
}

/// Dotted decimal, written digit by digit (`Ipv4Addr::to_string` goes through `fmt`).
fn ipv4(addr: std::net::Ipv4Addr) -> String {
    let mut out = String::with_capacity(15);
    for (i, octet) in addr.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if octet >= 100 {
            out.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            out.push(char::from(b'0' + octet / 10 % 10));
        }
        out.push(char::from(b'0' + octet % 10));
    }
    out
}

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_SCTP: u8 = 132;

fn layer4(proto: u8, sport: u16, dport: u16, tcp_flags: u8) -> Option<Layer4> {
    let protocol = match proto {
        PROTO_TCP => layer4::Protocol::Tcp(Tcp {
            source_port: u32::from(sport),
            destination_port: u32::from(dport),
            flags: Some(tcp(tcp_flags)),
        }),
        PROTO_UDP => layer4::Protocol::Udp(flow::Udp {
            source_port: u32::from(sport),
            destination_port: u32::from(dport),
        }),
        PROTO_SCTP => layer4::Protocol::Sctp(flow::Sctp {
            source_port: u32::from(sport),
            destination_port: u32::from(dport),
        }),
        // The datapath puts the ICMP type and code where the ports go.
        PROTO_ICMP => layer4::Protocol::IcmPv4(flow::IcmPv4 {
            r#type: u32::from(sport),
            code: u32::from(dport),
        }),
        _ => return None,
    };
    Some(Layer4 {
        protocol: Some(protocol),
    })
}

/// The TCP header's flag byte (FIN is bit 0).
fn tcp(flags: u8) -> TcpFlags {
    let bit = |n: u8| flags & (1 << n) != 0;
    TcpFlags {
        fin: bit(0),
        syn: bit(1),
        rst: bit(2),
        psh: bit(3),
        ack: bit(4),
        urg: bit(5),
        ece: bit(6),
        cwr: bit(7),
        ns: false,
    }
}
