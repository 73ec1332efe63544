//! Datapath events of the tutorials' flows, their ring buffer bytes and the lookup that
//! enriches them; for tests and benches (feature `test-util`).

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use bpf::events::{CAPTURE_LEN, CtState, DropReason, EventKind, Flow, MatchType, ObservationPoint};
use bpf::{Direction, Event};
use schema::flow::{Policy, Workload};

use crate::Decoder;
use crate::enrich::{EndpointInfo, TableLookup};
use crate::seven::Identities;

/// `Jun  9 20:38:30` UTC, 1000 s after boot.
pub const EPOCH_SECONDS: u64 = 1_717_965_510;

/// A decoder of node `kind-worker` whose boot makes the fixtures' times `Jun  9 20:38:30.645`.
pub fn decoder() -> Decoder {
    Decoder::new(
        "kind-worker",
        SystemTime::UNIX_EPOCH + Duration::from_secs(EPOCH_SECONDS - 1000),
    )
}

const KTIME: u64 = 1000 * 1_000_000_000 + 645_000_000;

pub const XWING: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
pub const DEATHSTAR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 12);
pub const SLEEP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 21);
pub const HTTPBIN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 22);
pub const COREDNS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 53);
pub const MEDIABOT: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 31);
pub const TIEFIGHTER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 13);

/// Address, endpoint id, namespace, pod, identity, labels, workload.
type Pod<'a> = (
    Ipv4Addr,
    u32,
    &'a str,
    &'a str,
    u32,
    &'a [&'a str],
    Option<(&'a str, &'a str)>,
);

/// The tutorials' pods on one node with their identities.
pub fn lookup() -> TableLookup {
    let mut lookup = TableLookup::new();
    let pods: [Pod<'_>; 7] = [
        (
            TIEFIGHTER,
            13,
            "default",
            "tiefighter",
            31028,
            &["k8s:class=tiefighter", "k8s:org=empire"],
            None,
        ),
        (
            XWING,
            11,
            "default",
            "xwing",
            22654,
            &["k8s:class=xwing", "k8s:org=alliance"],
            None,
        ),
        (
            DEATHSTAR,
            12,
            "default",
            "deathstar-c74d84667-cx5kp",
            16530,
            &["k8s:class=deathstar", "k8s:org=empire"],
            Some(("deathstar", "Deployment")),
        ),
        (
            SLEEP,
            21,
            "default",
            "sleep-6d68f49858-7ppbf",
            43148,
            &["k8s:app=sleep"],
            Some(("sleep", "Deployment")),
        ),
        (
            HTTPBIN,
            22,
            "default",
            "httpbin-797587ddc5-kqb4f",
            1176,
            &["k8s:app=httpbin", "k8s:version=v1"],
            Some(("httpbin", "Deployment")),
        ),
        (
            COREDNS,
            53,
            "kube-system",
            "coredns-7db6d8ff4d-6lbqs",
            102,
            &["k8s:k8s-app=kube-dns"],
            Some(("coredns", "Deployment")),
        ),
        (
            MEDIABOT,
            31,
            "default",
            "mediabot",
            5151,
            &["k8s:class=mediabot", "k8s:org=empire"],
            None,
        ),
    ];
    for (ip, id, namespace, pod, identity, labels, workload) in pods {
        lookup.insert_endpoint(
            ip,
            EndpointInfo {
                id,
                namespace: namespace.to_owned(),
                pod_name: pod.to_owned(),
                workloads: workload
                    .map(|(name, kind)| Workload {
                        name: name.to_owned(),
                        kind: kind.to_owned(),
                    })
                    .into_iter()
                    .collect(),
                host_ifindex: 100 + id,
                host_ifname: format!("lxc{id:04}"),
            },
        );
        let mut labels: Vec<String> = labels.iter().map(|l| (*l).to_owned()).collect();
        labels.push(format!("k8s:io.kubernetes.pod.namespace={namespace}"));
        lookup.insert_identity(identity, labels);
    }
    lookup.insert_policies(
        7,
        vec![Policy {
            name: "allow-world".to_owned(),
            namespace: "default".to_owned(),
            kind: "CiliumNetworkPolicy".to_owned(),
            ..Policy::default()
        }],
    );
    lookup
}

const TCP_SYN: u8 = 0x02;

#[expect(
    clippy::too_many_arguments,
    reason = "one event's fields, spelled out per fixture"
)]
fn event(
    kind: EventKind,
    endpoint_id: u32,
    direction: Direction,
    (saddr, src_identity, sport): (Ipv4Addr, u32, u16),
    (daddr, dst_identity, dport): (Ipv4Addr, u32, u16),
    proto: u8,
    tcp_flags: u8,
    ct_state: CtState,
) -> Event {
    Event {
        kind,
        ktime_ns: KTIME,
        pkt_len: 74,
        flow: Flow {
            endpoint_id,
            ifindex: 100 + endpoint_id,
            src_identity,
            dst_identity,
            saddr,
            daddr,
            sport,
            dport,
            proto,
            tcp_flags,
            direction,
            ct_state,
        },
        data: [0x0a, 0, 0, 0, 0, 0x0c, 0x0a, 0, 0, 0, 0, 0x0b, 0x08, 0x00]
            .into_iter()
            .collect(),
    }
}

/// Star Wars: the xwing's SYN to the deathstar, dropped at the deathstar's ingress.
pub fn starwars_drop() -> Event {
    event(
        EventKind::Drop {
            reason: DropReason::POLICY_DENIED,
        },
        12,
        Direction::Ingress,
        (XWING, 22654, 42818),
        (DEATHSTAR, 16530, 80),
        6,
        TCP_SYN,
        CtState::New,
    )
}

/// Star Wars: the policy verdict for the same SYN: nothing matched.
pub fn starwars_verdict() -> Event {
    event(
        EventKind::PolicyVerdict {
            verdict: None,
            match_type: MatchType::None,
            cookie: 0,
        },
        12,
        Direction::Ingress,
        (XWING, 22654, 42818),
        (DEATHSTAR, 16530, 80),
        6,
        TCP_SYN,
        CtState::New,
    )
}

/// sleep -> httpbin, allowed, delivered to httpbin.
pub fn sleep_httpbin_trace() -> Event {
    event(
        EventKind::Trace {
            point: ObservationPoint::TO_ENDPOINT,
        },
        22,
        Direction::Ingress,
        (SLEEP, 43148, 53352),
        (HTTPBIN, 1176, 80),
        6,
        TCP_SYN,
        CtState::New,
    )
}

/// httpbin's SYN-ACK back to sleep, delivered to sleep.
pub fn sleep_httpbin_reply() -> Event {
    event(
        EventKind::Trace {
            point: ObservationPoint::TO_ENDPOINT,
        },
        21,
        Direction::Ingress,
        (HTTPBIN, 1176, 80),
        (SLEEP, 43148, 53352),
        6,
        TCP_SYN | 0x10,
        CtState::Reply,
    )
}

/// mediabot's DNS query to kube-dns, dropped at mediabot's egress.
pub fn dns_drop() -> Event {
    event(
        EventKind::Drop {
            reason: DropReason::POLICY_DENIED,
        },
        31,
        Direction::Egress,
        (MEDIABOT, 5151, 40507),
        (COREDNS, 102, 53),
        17,
        0,
        CtState::New,
    )
}

/// An ICMP echo request from sleep to the world, allowed by an L3 rule at sleep's egress.
pub fn icmp_verdict() -> Event {
    event(
        EventKind::PolicyVerdict {
            verdict: Some(bpf::Verdict::Allow),
            match_type: MatchType::L3Only,
            cookie: 7,
        },
        21,
        Direction::Egress,
        (SLEEP, 43148, 8),
        (Ipv4Addr::new(1, 1, 1, 1), 2, 0),
        1,
        0,
        CtState::New,
    )
}

/// `struct event` bytes of `event`, as the datapath writes them (bpf/src/bpf/myelin.h).
pub fn encode(event: &Event) -> Vec<u8> {
    let mut out = vec![0u8; 64 + CAPTURE_LEN];
    let (kind, code, match_type, verdict, proxy_port, cookie) = match &event.kind {
        EventKind::Drop { reason } => (1u8, reason.0, 0u8, 0u8, 0u16, 0u32),
        EventKind::PolicyVerdict {
            verdict,
            match_type,
            cookie,
        } => {
            let (v, port) = match verdict {
                None => (0, 0),
                Some(bpf::Verdict::Allow) => (1, 0),
                Some(bpf::Verdict::Deny) => (2, 0),
                Some(bpf::Verdict::Redirect { proxy_port }) => (3, *proxy_port),
            };
            (2, 0, *match_type as u8, v, port, *cookie)
        }
        EventKind::Trace { point } => (3, point.0, 0, 0, 0, 0),
    };
    let f = &event.flow;
    let cap_len = event.data.len().min(CAPTURE_LEN);
    out[0] = kind;
    out[1] = 1;
    out[2..4].copy_from_slice(&u16::try_from(cap_len).unwrap_or(0).to_ne_bytes());
    out[4..8].copy_from_slice(&event.pkt_len.to_ne_bytes());
    out[8..16].copy_from_slice(&event.ktime_ns.to_ne_bytes());
    out[16..20].copy_from_slice(&f.endpoint_id.to_ne_bytes());
    out[20..24].copy_from_slice(&f.ifindex.to_ne_bytes());
    out[24..28].copy_from_slice(&f.src_identity.to_ne_bytes());
    out[28..32].copy_from_slice(&f.dst_identity.to_ne_bytes());
    out[32..36].copy_from_slice(&f.saddr.octets());
    out[36..40].copy_from_slice(&f.daddr.octets());
    out[40..42].copy_from_slice(&f.sport.to_ne_bytes());
    out[42..44].copy_from_slice(&f.dport.to_ne_bytes());
    out[44] = f.proto;
    out[45] = f.tcp_flags;
    out[46] = f.direction as u8;
    out[47] = match f.ct_state {
        CtState::New => 0,
        CtState::Established => 1,
        CtState::Reply => 2,
    };
    out[48..50].copy_from_slice(&code.to_ne_bytes());
    out[50] = match_type;
    out[51] = verdict;
    out[52..54].copy_from_slice(&proxy_port.to_ne_bytes());
    out[56..60].copy_from_slice(&cookie.to_ne_bytes());
    out[64..64 + cap_len].copy_from_slice(&event.data[..cap_len]);
    out
}

/// What the L7 proxy logs in the tutorials, with the identities of both ends: the tiefighter
/// landing (allowed) and going for the exhaust port (denied, answered 403) past the
/// deathstar's ingress rules, and the mediabot's DNS lookups of api.github.com (answered) and
/// support.github.com (refused) at its egress.
pub fn access_log() -> Vec<(proxy::accesslog::LogRecord, Identities)> {
    use proxy::accesslog::{
        DnsRecord, HttpRecord, L7Record, LogRecord, RecordType, Transport, Verdict,
    };
    use std::net::SocketAddrV4;

    let time = SystemTime::UNIX_EPOCH + Duration::from_millis(EPOCH_SECONDS * 1000 + 645);
    let fighter = SocketAddrV4::new(TIEFIGHTER, 42690);
    let deathstar = SocketAddrV4::new(DEATHSTAR, 80);
    let bot = SocketAddrV4::new(MEDIABOT, 51234);
    let dns = SocketAddrV4::new(COREDNS, 53);
    let http = |method: &str, path: &str, code: u16, ms: u64| HttpRecord {
        method: method.to_owned(),
        url: format!("http://deathstar.default.svc.cluster.local{path}"),
        protocol: "HTTP/1.1".to_owned(),
        code,
        headers: vec![
            (
                "host".to_owned(),
                "deathstar.default.svc.cluster.local".to_owned(),
            ),
            ("user-agent".to_owned(), "curl/8.14.1".to_owned()),
        ],
        latency: Duration::from_millis(ms),
    };
    let record = |r#type, verdict, (source, destination), l7| LogRecord {
        r#type,
        direction: if l7_is_http(&l7) {
            policy::rule::Direction::Ingress
        } else {
            policy::rule::Direction::Egress
        },
        verdict,
        time,
        source,
        destination,
        transport: if l7_is_http(&l7) {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        l7,
    };
    let starwars = Identities {
        source: 31028,
        destination: 16530,
    };
    let back = |ids: Identities| Identities {
        source: ids.destination,
        destination: ids.source,
    };
    let mediabot = Identities {
        source: 5151,
        destination: 102,
    };
    let asked = |name: &str| DnsRecord {
        query: name.to_owned(),
        qtypes: vec!["A".to_owned()],
        ..DnsRecord::default()
    };
    vec![
        (
            record(
                RecordType::Request,
                Verdict::Forwarded,
                (fighter, deathstar),
                L7Record::Http(http("POST", "/v1/request-landing", 0, 0)),
            ),
            starwars,
        ),
        (
            record(
                RecordType::Response,
                Verdict::Forwarded,
                (deathstar, fighter),
                L7Record::Http(http("POST", "/v1/request-landing", 200, 2)),
            ),
            back(starwars),
        ),
        (
            record(
                RecordType::Request,
                Verdict::Denied,
                (fighter, deathstar),
                L7Record::Http(http("PUT", "/v1/exhaust-port", 0, 0)),
            ),
            starwars,
        ),
        (
            record(
                RecordType::Response,
                Verdict::Forwarded,
                (deathstar, fighter),
                L7Record::Http(http("PUT", "/v1/exhaust-port", 403, 0)),
            ),
            back(starwars),
        ),
        (
            record(
                RecordType::Request,
                Verdict::Forwarded,
                (bot, dns),
                L7Record::Dns(asked("api.github.com.")),
            ),
            mediabot,
        ),
        (
            record(
                RecordType::Response,
                Verdict::Forwarded,
                (dns, bot),
                L7Record::Dns(DnsRecord {
                    ips: vec![std::net::IpAddr::from([140, 82, 121, 6])],
                    ttl: 60,
                    rrtypes: vec!["A".to_owned()],
                    ..asked("api.github.com.")
                }),
            ),
            back(mediabot),
        ),
        (
            record(
                RecordType::Request,
                Verdict::Denied,
                (bot, dns),
                L7Record::Dns(asked("support.github.com.")),
            ),
            mediabot,
        ),
    ]
}

fn l7_is_http(l7: &proxy::accesslog::L7Record) -> bool {
    matches!(l7, proxy::accesslog::L7Record::Http(_))
}
