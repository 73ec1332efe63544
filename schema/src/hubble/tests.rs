//! The generated types against bytes written by hand from upstream's field numbers and enum
//! values: a renumbered field or enum value in `proto/` fails here.

use prost::Message;

use crate::flow::{
    CiliumEventType, DropReason, Endpoint, Flow, FlowFilter, FlowType, Layer4, Policy, Tcp,
    TcpFlags, TraceObservationPoint, TrafficDirection, Verdict, layer4,
};
use crate::observer::{
    GetFlowsRequest, GetFlowsResponse, ServerStatusResponse, get_flows_response,
};

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(u8::try_from(v & 0x7f).expect("seven bits") | 0x80);
        v >>= 7;
    }
    out.push(u8::try_from(v).expect("below 0x80"));
}

/// A varint field.
fn int(number: u64, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(number << 3, &mut out);
    varint(value, &mut out);
    out
}

/// A length-delimited field.
fn bytes(number: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((number << 3) | 2, &mut out);
    varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

/// Each message must encode to exactly the hand-built bytes, and decode from them.
fn check<M: Message + Default + PartialEq + std::fmt::Debug>(message: M, wire: Vec<u8>) {
    assert_eq!(message.encode_to_vec(), wire, "encoding {message:?}");
    assert_eq!(M::decode(wire.as_slice()).expect("decodes"), message);
}

#[test]
fn flow_fields_keep_upstream_numbers() {
    let cases: Vec<(Flow, Vec<u8>)> = vec![
        (
            Flow {
                verdict: Verdict::Dropped.into(),
                ..Flow::default()
            },
            int(2, 2),
        ),
        (
            Flow {
                r#type: FlowType::L3L4.into(),
                ..Flow::default()
            },
            int(10, 1),
        ),
        (
            Flow {
                node_name: "n".into(),
                ..Flow::default()
            },
            bytes(11, b"n"),
        ),
        (
            Flow {
                traffic_direction: TrafficDirection::Egress.into(),
                ..Flow::default()
            },
            int(22, 2),
        ),
        (
            Flow {
                policy_match_type: 3,
                ..Flow::default()
            },
            int(23, 3),
        ),
        (
            Flow {
                trace_observation_point: TraceObservationPoint::ToEndpoint.into(),
                ..Flow::default()
            },
            int(24, 101),
        ),
        (
            Flow {
                drop_reason_desc: DropReason::PolicyDenied.into(),
                ..Flow::default()
            },
            int(25, 133),
        ),
        (
            Flow {
                drop_reason_desc: DropReason::PolicyDeny.into(),
                ..Flow::default()
            },
            int(25, 181),
        ),
        // Present but false: an empty BoolValue, distinct from absent (unknown).
        (
            Flow {
                is_reply: Some(false),
                ..Flow::default()
            },
            bytes(26, &[]),
        ),
        (
            Flow {
                is_reply: Some(true),
                ..Flow::default()
            },
            bytes(26, &int(1, 1)),
        ),
        (
            Flow {
                event_type: Some(CiliumEventType {
                    r#type: 9,
                    sub_type: 1,
                }),
                ..Flow::default()
            },
            bytes(19, &[int(1, 9), int(2, 1)].concat()),
        ),
        (
            Flow {
                source: Some(Endpoint {
                    id: 7,
                    identity: 43148,
                    namespace: "default".into(),
                    labels: vec!["k8s:app=sleep".into()],
                    pod_name: "sleep".into(),
                    ..Endpoint::default()
                }),
                ..Flow::default()
            },
            bytes(
                8,
                &[
                    int(1, 7),
                    int(2, 43148),
                    bytes(3, b"default"),
                    bytes(4, b"k8s:app=sleep"),
                    bytes(5, b"sleep"),
                ]
                .concat(),
            ),
        ),
        (
            Flow {
                l4: Some(Layer4 {
                    protocol: Some(layer4::Protocol::Tcp(Tcp {
                        source_port: 53352,
                        destination_port: 80,
                        flags: Some(TcpFlags {
                            syn: true,
                            ack: true,
                            ..TcpFlags::default()
                        }),
                    })),
                }),
                ..Flow::default()
            },
            bytes(
                6,
                &bytes(
                    1,
                    &[
                        int(1, 53352),
                        int(2, 80),
                        bytes(3, &[int(2, 1), int(5, 1)].concat()),
                    ]
                    .concat(),
                ),
            ),
        ),
        (
            Flow {
                ingress_denied_by: vec![Policy {
                    name: "rule1".into(),
                    namespace: "default".into(),
                    kind: "CiliumNetworkPolicy".into(),
                    ..Policy::default()
                }],
                ..Flow::default()
            },
            bytes(
                21005,
                &[
                    bytes(1, b"rule1"),
                    bytes(2, b"default"),
                    bytes(5, b"CiliumNetworkPolicy"),
                ]
                .concat(),
            ),
        ),
        (
            Flow {
                egress_allowed_by: vec![Policy::default()],
                ..Flow::default()
            },
            bytes(21001, &[]),
        ),
    ];
    for (flow, wire) in cases {
        check(flow, wire);
    }
}

#[test]
fn observer_requests_keep_upstream_numbers() {
    // What `hubble observe --last 20 -f --from-pod default/xwing --not --verdict FORWARDED` sends.
    let request = GetFlowsRequest {
        number: 20,
        follow: true,
        whitelist: vec![FlowFilter {
            source_pod: vec!["default/xwing".into()],
            ..FlowFilter::default()
        }],
        blacklist: vec![FlowFilter {
            verdict: vec![Verdict::Forwarded.into()],
            ..FlowFilter::default()
        }],
        ..GetFlowsRequest::default()
    };
    // Fields in declaration order: number, follow, blacklist, whitelist.
    let wire = [
        int(1, 20),
        int(3, 1),
        bytes(5, &bytes(5, &[1])),
        bytes(6, &bytes(2, b"default/xwing")),
    ]
    .concat();
    check(request, wire);

    check(
        GetFlowsRequest {
            first: true,
            ..GetFlowsRequest::default()
        },
        int(9, 1),
    );

    check(
        ServerStatusResponse {
            num_flows: 3,
            max_flows: 4095,
            seen_flows: 5,
            ..ServerStatusResponse::default()
        },
        [int(1, 3), int(2, 4095), int(3, 5)].concat(),
    );

    check(
        GetFlowsResponse {
            response_types: Some(get_flows_response::ResponseTypes::Flow(Box::new(Flow {
                verdict: Verdict::Forwarded.into(),
                ..Flow::default()
            }))),
            node_name: "node".into(),
            time: None,
        },
        [bytes(1, &int(2, 1)), bytes(1000, b"node")].concat(),
    );
}
