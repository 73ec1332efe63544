//! Program tests: crafted packets through BPF_PROG_TEST_RUN against real maps, asserting the
//! verdict, the conntrack entries and the events the programs write.
//!
//! Test runs happen on the loopback interface (ifindex 1), so the endpoints below sit "behind"
//! ifindex 1.

#![expect(
    clippy::unwrap_used,
    clippy::print_stderr,
    reason = "test harness: a panic is the failure report, stderr the skip and cleanup notes"
)]

mod fixture;
mod packets;

use std::net::Ipv4Addr;

use bpf::events::{CtState, DropReason, MatchType, ObservationPoint};
use bpf::{
    CtKey, Direction, EndpointFlags, EndpointInfo, EventKind, IpcacheValue, Ipv4Prefix, L4,
    PolicyKey, PolicyValue, Program, TestRun, Verdict, identity,
};
use expect_test::expect;
use fixture::{Fixture, drain};
use packets::{ACK, FIN, SYN, icmp_echo, ipv6, tcp, udp};

const POD_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const POD_B: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const WORLD: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const EP_A: u32 = 100;
const ID_A: u32 = 1000;
const ID_B: u32 = 2000;

const OK: u32 = TestRun::TC_ACT_OK;
const SHOT: u32 = TestRun::TC_ACT_SHOT;

/// Pod A (endpoint 100, identity 1000) behind ifindex 1, enforcing `flags`; pod B's /24
/// has identity 2000 in the ipcache; everything else is world.
fn setup(flags: EndpointFlags) -> Fixture {
    let f = Fixture::new();
    f.dp.endpoints()
        .unwrap()
        .insert(
            POD_A,
            &EndpointInfo {
                endpoint_id: EP_A,
                ifindex: 1,
                identity: ID_A,
                mac: [2, 0, 0, 0, 0, 1],
                flags,
            },
        )
        .unwrap();
    let mut ipcache = f.dp.ipcache().unwrap();
    ipcache
        .insert(
            Ipv4Prefix::new(POD_B, 24).unwrap(),
            &IpcacheValue::new(ID_B),
        )
        .unwrap();
    ipcache
        .insert(Ipv4Prefix::host(POD_A), &IpcacheValue::new(ID_A))
        .unwrap();
    f
}

fn enforce_both() -> EndpointFlags {
    EndpointFlags::ENFORCE_INGRESS | EndpointFlags::ENFORCE_EGRESS
}

fn allow(f: &Fixture, direction: Direction, identity: u32, l4: L4) {
    put(f, direction, identity, l4, PolicyValue::allow());
}

fn put(f: &Fixture, direction: Direction, identity: u32, l4: L4, value: PolicyValue) {
    let key = PolicyKey {
        endpoint_id: EP_A,
        direction,
        identity,
        l4,
    };
    f.dp.policy().unwrap().insert(&key, &value).unwrap();
}

fn run(f: &mut Fixture, program: Program, packet: &[u8]) -> u32 {
    f.dp.test_run(program, packet).expect("test run").verdict
}

fn egress(f: &mut Fixture, packet: &[u8]) -> u32 {
    run(f, Program::FromContainer, packet)
}

fn ingress(f: &mut Fixture, packet: &[u8]) -> u32 {
    run(f, Program::ToContainer, packet)
}

#[test]
fn allowed_by_exact_identity_and_port() {
    let mut f = setup(enforce_both());
    allow(&f, Direction::Egress, ID_B, L4::port(L4::TCP, 80));
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, SYN)), OK);
    assert_eq!(egress(&mut f, &tcp(POD_A, 40001, POD_B, 81, SYN)), SHOT);
    assert_eq!(
        egress(&mut f, &udp(POD_A, 40002, POD_B, 80)),
        SHOT,
        "tcp only"
    );
    assert_eq!(
        egress(&mut f, &tcp(POD_A, 40003, WORLD, 80, SYN)),
        SHOT,
        "identity 2000 only"
    );
    // Egress policy says nothing about ingress.
    assert_eq!(ingress(&mut f, &tcp(POD_B, 40004, POD_A, 80, SYN)), SHOT);
}

#[test]
fn allowed_by_wildcard_identity() {
    let mut f = setup(enforce_both());
    allow(
        &f,
        Direction::Ingress,
        identity::ANY,
        L4::port(L4::TCP, 443),
    );
    assert_eq!(ingress(&mut f, &tcp(POD_B, 40000, POD_A, 443, SYN)), OK);
    assert_eq!(ingress(&mut f, &tcp(WORLD, 40000, POD_A, 443, SYN)), OK);
    assert_eq!(ingress(&mut f, &tcp(WORLD, 40000, POD_A, 444, SYN)), SHOT);
}

#[test]
fn allowed_by_port_range() {
    let mut f = setup(enforce_both());
    for l4 in L4::port_range(L4::UDP, 8080, 8090).unwrap() {
        allow(&f, Direction::Egress, ID_B, l4);
    }
    for (port, want) in [
        (8079, SHOT),
        (8080, OK),
        (8085, OK),
        (8088, OK),
        (8090, OK),
        (8091, SHOT),
    ] {
        assert_eq!(
            egress(&mut f, &udp(POD_A, 5000, POD_B, port)),
            want,
            "port {port}"
        );
    }
    assert_eq!(f.dp.policy().unwrap().iter().unwrap().len(), 3);
}

/// `Policy::lookup` answers as the datapath's lookup does: the longest prefix in the map.
#[test]
fn policy_lookup_is_longest_prefix() {
    let f = setup(enforce_both());
    for l4 in L4::port_range(L4::UDP, 8080, 8090).unwrap() {
        allow(&f, Direction::Egress, ID_B, l4);
    }
    put(
        &f,
        Direction::Egress,
        ID_B,
        L4::Proto(L4::TCP),
        PolicyValue::deny(),
    );
    let policy = f.dp.policy().unwrap();
    let lookup = |l4| {
        let key = PolicyKey {
            endpoint_id: EP_A,
            direction: Direction::Egress,
            identity: ID_B,
            l4,
        };
        policy.lookup(&key).unwrap().map(|v| v.verdict)
    };
    assert_eq!(lookup(L4::port(L4::UDP, 8086)), Some(Verdict::Allow));
    assert_eq!(lookup(L4::port(L4::UDP, 8091)), None);
    assert_eq!(lookup(L4::port(L4::TCP, 8086)), Some(Verdict::Deny));
    let other_identity = PolicyKey {
        endpoint_id: EP_A,
        direction: Direction::Egress,
        identity: ID_A,
        l4: L4::port(L4::UDP, 8086),
    };
    assert_eq!(policy.lookup(&other_identity).unwrap(), None);
}

#[tokio::test(flavor = "current_thread")]
async fn l3_deny_beats_a_port_allow() {
    let mut f = setup(enforce_both());
    allow(&f, Direction::Egress, identity::ANY, L4::port(L4::TCP, 80));
    put(&f, Direction::Egress, ID_B, L4::Any, PolicyValue::deny());
    let mut events = f.dp.events().unwrap();
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, SYN)), SHOT);
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, WORLD, 80, SYN)), OK);
    let drops: Vec<_> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::Drop { reason } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(drops, [DropReason::POLICY_DENY]);
}

#[test]
fn wildcard_port_deny_beats_an_l3_allow() {
    let mut f = setup(enforce_both());
    allow(&f, Direction::Ingress, ID_B, L4::Any);
    put(
        &f,
        Direction::Ingress,
        identity::ANY,
        L4::port(L4::TCP, 22),
        PolicyValue::deny(),
    );
    assert_eq!(ingress(&mut f, &tcp(POD_B, 40000, POD_A, 22, SYN)), SHOT);
    assert_eq!(ingress(&mut f, &tcp(POD_B, 40000, POD_A, 23, SYN)), OK);
    assert_eq!(ingress(&mut f, &udp(POD_B, 40000, POD_A, 22)), OK);
}

#[test]
fn unknown_peer_is_world() {
    let mut f = setup(enforce_both());
    allow(&f, Direction::Egress, identity::WORLD, L4::Any);
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, WORLD, 8443, SYN)), OK);
    assert_eq!(
        egress(&mut f, &udp(POD_A, 40000, Ipv4Addr::new(8, 8, 8, 8), 53)),
        OK
    );
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, POD_B, 8443, SYN)), SHOT);
    assert_eq!(f.dp.ipcache().unwrap().lookup(WORLD).unwrap(), None);
}

#[test]
fn enforcement_off_passes_everything() {
    let mut f = setup(EndpointFlags::ENFORCE_INGRESS);
    // No policy at all: egress is not enforced, ingress is.
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, SYN)), OK);
    assert_eq!(egress(&mut f, &udp(POD_A, 40000, WORLD, 53)), OK);
    assert_eq!(ingress(&mut f, &tcp(WORLD, 40000, POD_A, 22, SYN)), SHOT);

    let mut f = setup(EndpointFlags::NONE);
    assert_eq!(ingress(&mut f, &tcp(WORLD, 40000, POD_A, 22, SYN)), OK);
}

#[test]
fn unknown_or_spoofed_endpoints_are_dropped_and_ipv6_passes() {
    let mut f = setup(EndpointFlags::NONE);
    let stranger = Ipv4Addr::new(10, 0, 0, 99);
    assert_eq!(egress(&mut f, &tcp(stranger, 1, POD_B, 80, SYN)), SHOT);
    assert_eq!(ingress(&mut f, &tcp(POD_B, 1, stranger, 80, SYN)), SHOT);
    // Pod A's address, but the packet is not on A's interface.
    let mut endpoints = f.dp.endpoints().unwrap();
    let mut info = endpoints.get(POD_A).unwrap().unwrap();
    info.ifindex = 4242;
    endpoints.insert(POD_A, &info).unwrap();
    assert_eq!(egress(&mut f, &tcp(POD_A, 1, POD_B, 80, SYN)), SHOT);
    assert_eq!(egress(&mut f, &ipv6()), OK);
    assert_eq!(ingress(&mut f, &ipv6()), OK);
}

#[test]
fn replies_of_allowed_connections_pass_but_new_reverse_connections_do_not() {
    let mut f = setup(enforce_both());
    allow(&f, Direction::Egress, ID_B, L4::port(L4::TCP, 80));
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, SYN)), OK);
    // B answers: no ingress policy, but it is a reply.
    assert_eq!(
        ingress(&mut f, &tcp(POD_B, 80, POD_A, 40000, SYN | ACK)),
        OK
    );
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, ACK)), OK);
    // B opening its own connection to A is new, and A's ingress allows nothing.
    assert_eq!(ingress(&mut f, &tcp(POD_B, 80, POD_A, 40001, SYN)), SHOT);
    assert_eq!(ingress(&mut f, &tcp(POD_B, 5555, POD_A, 80, SYN)), SHOT);

    let ct = f.dp.conntrack().unwrap();
    assert_eq!(ct.len().unwrap(), 1);
    let key = CtKey::new(POD_A, 40000, POD_B, 80, L4::TCP, Direction::Egress);
    let entry = ct.get(&key).unwrap().expect("egress-scope entry");
    assert!(entry.reply_seen());
    assert!(!entry.closing());
    assert_eq!((entry.packets_fwd, entry.packets_rev), (2, 1));
    assert_eq!(
        (entry.tcp_flags_fwd, entry.tcp_flags_rev),
        (SYN | ACK, SYN | ACK)
    );
    assert_eq!(entry.peer_identity, ID_B);
    assert_eq!(entry.bytes_fwd, 2 * 54);
    assert!(entry.last_seen_ns >= entry.created_ns);
}

/// An established connection reuses its recorded allow only until a policy-relevant map
/// changes: every write through a handle moves the epoch, and the next packet decides again.
#[test]
fn established_connections_decide_again_after_any_map_write() {
    let mut f = setup(enforce_both());
    allow(&f, Direction::Egress, ID_B, L4::port(L4::TCP, 80));
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, SYN)), OK);
    let key = CtKey::new(POD_A, 40000, POD_B, 80, L4::TCP, Direction::Egress);
    let recorded = |f: &Fixture| f.dp.conntrack().unwrap().get(&key).unwrap().unwrap().epoch;
    let first = recorded(&f);
    assert_ne!(first, 0, "the allow is recorded");
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, ACK)), OK);
    assert_eq!(
        recorded(&f),
        first,
        "nothing changed, nothing decided again"
    );

    let allow_80 = PolicyKey {
        endpoint_id: EP_A,
        direction: Direction::Egress,
        identity: ID_B,
        l4: L4::port(L4::TCP, 80),
    };
    assert!(f.dp.policy().unwrap().remove(&allow_80).unwrap());
    assert_eq!(
        egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, ACK)),
        SHOT,
        "the allow is gone"
    );
    assert_eq!(recorded(&f), first, "a drop records nothing");

    // A write elsewhere (a new ipcache row) also makes the connection decide again.
    allow(&f, Direction::Egress, ID_B, L4::port(L4::TCP, 80));
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, ACK)), OK);
    let second = recorded(&f);
    assert_ne!(second, first);
    f.dp.ipcache()
        .unwrap()
        .insert(Ipv4Prefix::host(POD_B), &IpcacheValue::new(ID_A))
        .unwrap();
    assert_eq!(
        egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, ACK)),
        SHOT,
        "B's address now has an identity the policy does not allow"
    );
}

#[test]
fn icmp_echo_replies_pass() {
    let mut f = setup(enforce_both());
    allow(&f, Direction::Egress, ID_B, L4::icmp_type(8));
    assert_eq!(egress(&mut f, &icmp_echo(POD_A, POD_B, 8, 77)), OK);
    assert_eq!(ingress(&mut f, &icmp_echo(POD_B, POD_A, 0, 77)), OK);
    assert_eq!(
        ingress(&mut f, &icmp_echo(POD_B, POD_A, 0, 78)),
        SHOT,
        "other id"
    );
    assert_eq!(
        ingress(&mut f, &icmp_echo(POD_B, POD_A, 8, 77)),
        SHOT,
        "B's own ping"
    );
    let key = CtKey::new(POD_A, 77, POD_B, 0, L4::ICMP, Direction::Egress);
    assert!(
        f.dp.conntrack()
            .unwrap()
            .get(&key)
            .unwrap()
            .unwrap()
            .reply_seen()
    );
}

#[test]
fn ingress_scope_replies_pass_egress() {
    let mut f = setup(enforce_both());
    allow(&f, Direction::Ingress, ID_B, L4::Proto(L4::UDP));
    assert_eq!(ingress(&mut f, &udp(POD_B, 999, POD_A, 53)), OK);
    // A's egress allows nothing, but this is A answering.
    assert_eq!(egress(&mut f, &udp(POD_A, 53, POD_B, 999)), OK);
    assert_eq!(egress(&mut f, &udp(POD_A, 53, POD_B, 1000)), SHOT);
}

#[tokio::test(flavor = "current_thread")]
async fn events_carry_reason_verdict_and_flow() {
    let mut f = setup(enforce_both());
    let cookie = 0xc0ffee;
    put(
        &f,
        Direction::Egress,
        ID_B,
        L4::port(L4::TCP, 80),
        PolicyValue {
            verdict: Verdict::Allow,
            cookie,
        },
    );
    let mut events = f.dp.events().unwrap();

    let denied = tcp(POD_A, 40000, POD_B, 81, SYN);
    assert_eq!(egress(&mut f, &denied), SHOT);
    let got = drain(&mut events);
    let kinds: Vec<_> = got.iter().map(|e| format!("{:?}", e.kind)).collect();
    expect![[r#"
        [
            "PolicyVerdict { verdict: None, match_type: None, cookie: 0 }",
            "Drop { reason: DropReason(133) }",
        ]
    "#]]
    .assert_debug_eq(&kinds);
    let drop = &got[1];
    assert_eq!(drop.pkt_len, u32::try_from(denied.len()).unwrap());
    assert_eq!(
        drop.data.as_slice(),
        denied.as_slice(),
        "the whole (short) packet is captured"
    );
    assert!(drop.ktime_ns > 0);
    expect![[r#"
        Flow {
            endpoint_id: 100,
            ifindex: 1,
            src_identity: 1000,
            dst_identity: 2000,
            saddr: 10.0.0.1,
            daddr: 10.0.1.2,
            sport: 40000,
            dport: 81,
            proto: 6,
            tcp_flags: 2,
            direction: Egress,
            ct_state: New,
        }
    "#]]
    .assert_debug_eq(&drop.flow);

    assert_eq!(egress(&mut f, &tcp(POD_A, 40001, POD_B, 80, SYN)), OK);
    assert_eq!(
        ingress(&mut f, &tcp(POD_B, 80, POD_A, 40001, SYN | ACK)),
        OK
    );
    let got = drain(&mut events);
    let summary: Vec<_> = got
        .iter()
        .map(|e| match &e.kind {
            EventKind::Trace { point } => format!(
                "trace {} {:?} {}:{} -> {}:{} reply={}",
                point.name(),
                e.flow.direction,
                e.flow.saddr,
                e.flow.sport,
                e.flow.daddr,
                e.flow.dport,
                e.flow.is_reply()
            ),
            other => format!("{other:?} {:?}", e.flow.ct_state),
        })
        .collect();
    expect![[r#"
        [
            "PolicyVerdict { verdict: Some(Allow), match_type: L3L4, cookie: 12648430 } New",
            "trace to-stack Egress 10.0.0.1:40001 -> 10.0.1.2:80 reply=false",
            "trace to-endpoint Ingress 10.0.1.2:80 -> 10.0.0.1:40001 reply=true",
        ]
    "#]]
    .assert_debug_eq(&summary);
    assert_eq!(
        got[0].kind,
        EventKind::PolicyVerdict {
            verdict: Some(Verdict::Allow),
            match_type: MatchType::L3L4,
            cookie
        }
    );
    assert_eq!(got[2].flow.ct_state, CtState::Reply);
    assert_eq!(
        got[2].kind,
        EventKind::Trace {
            point: ObservationPoint::TO_ENDPOINT
        }
    );
    assert_eq!(f.dp.lost_events().unwrap(), 0);

    // Aggregation: a plain ACK of an established connection is not traced, nor a SYN its
    // direction already carried (a retransmission); its first FIN is.
    assert_eq!(egress(&mut f, &tcp(POD_A, 40001, POD_B, 80, ACK)), OK);
    assert_eq!(egress(&mut f, &tcp(POD_A, 40001, POD_B, 80, SYN)), OK);
    assert!(drain(&mut events).is_empty());
    assert_eq!(egress(&mut f, &tcp(POD_A, 40001, POD_B, 80, FIN | ACK)), OK);
    assert_eq!(drain(&mut events).len(), 1, "to-stack for the first FIN");
    assert_eq!(egress(&mut f, &tcp(POD_A, 40001, POD_B, 80, FIN | ACK)), OK);
    assert!(
        drain(&mut events).is_empty(),
        "a retransmitted FIN is not traced"
    );
    f.dp.set_trace_mode(bpf::TraceMode::All).unwrap();
    assert_eq!(egress(&mut f, &tcp(POD_A, 40001, POD_B, 80, ACK)), OK);
    assert_eq!(drain(&mut events).len(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn redirect_and_match_types() {
    let mut f = setup(enforce_both());
    put(
        &f,
        Direction::Egress,
        identity::ANY,
        L4::port(L4::TCP, 80),
        PolicyValue {
            verdict: Verdict::Redirect { proxy_port: 15001 },
            cookie: 7,
        },
    );
    allow(&f, Direction::Egress, ID_B, L4::Any);
    allow(&f, Direction::Egress, identity::ANY, L4::Proto(L4::UDP));
    let mut events = f.dp.events().unwrap();
    let redirected =
        f.dp.test_run(Program::FromContainer, &tcp(POD_A, 1, POD_B, 80, SYN))
            .unwrap();
    assert_eq!(redirected.verdict, OK);
    // What steers the packet to the proxy: Cilium's to-proxy mark with the port on top.
    assert_eq!(redirected.mark, 0x0200 | (15001 << 16));
    let allowed =
        f.dp.test_run(Program::FromContainer, &tcp(POD_A, 2, POD_B, 22, SYN))
            .unwrap();
    assert_eq!(allowed.verdict, OK);
    assert_eq!(allowed.mark, 0, "an allow leaves the mark alone");
    assert_eq!(egress(&mut f, &udp(POD_A, 3, WORLD, 5353)), OK);
    let verdicts: Vec<_> = drain(&mut events)
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::PolicyVerdict {
                verdict,
                match_type,
                ..
            } => Some((e.flow.dport, verdict, match_type)),
            _ => None,
        })
        .collect();
    // Port 80: the wildcard's L4 entry is more specific than B's L3-only allow.
    expect![[r#"
        [
            (
                80,
                Some(
                    Redirect {
                        proxy_port: 15001,
                    },
                ),
                L4Only,
            ),
            (
                22,
                Some(
                    Allow,
                ),
                L3Only,
            ),
            (
                5353,
                Some(
                    Allow,
                ),
                L4Only,
            ),
        ]
    "#]]
    .assert_debug_eq(&verdicts);
    let key = CtKey::new(POD_A, 1, POD_B, 80, L4::TCP, Direction::Egress);
    assert_eq!(
        f.dp.conntrack()
            .unwrap()
            .get(&key)
            .unwrap()
            .unwrap()
            .proxy_port,
        15001
    );
}

#[test]
fn map_handles_round_trip() {
    let f = setup(enforce_both());
    let mut policy = f.dp.policy().unwrap();
    let keys = [
        PolicyKey {
            endpoint_id: 7,
            direction: Direction::Ingress,
            identity: 0,
            l4: L4::Any,
        },
        PolicyKey {
            endpoint_id: 7,
            direction: Direction::Egress,
            identity: 300,
            l4: L4::Proto(L4::SCTP),
        },
        PolicyKey {
            endpoint_id: 7,
            direction: Direction::Egress,
            identity: 300,
            l4: L4::port_range(L4::TCP, 1024, 2047).unwrap()[0],
        },
    ];
    for key in &keys {
        policy.insert(key, &PolicyValue::deny()).unwrap();
    }
    let mut listed: Vec<_> = policy.iter().unwrap().into_iter().map(|(k, _)| k).collect();
    listed.sort();
    let mut want = keys.to_vec();
    want.sort();
    assert_eq!(listed, want);
    assert!(policy.remove(&keys[0]).unwrap());
    assert!(
        !policy.remove(&keys[0]).unwrap(),
        "second delete finds nothing"
    );

    let mut ipcache = f.dp.ipcache().unwrap();
    let mut prefixes: Vec<_> = ipcache
        .iter()
        .unwrap()
        .into_iter()
        .map(|(p, v)| format!("{p} {}", v.identity))
        .collect();
    prefixes.sort();
    assert_eq!(prefixes, ["10.0.0.1/32 1000", "10.0.1.0/24 2000"]);
    assert_eq!(
        ipcache
            .lookup(Ipv4Addr::new(10, 0, 1, 200))
            .unwrap()
            .unwrap()
            .identity,
        ID_B
    );
    assert!(ipcache.remove(Ipv4Prefix::new(POD_B, 24).unwrap()).unwrap());
    assert_eq!(ipcache.lookup(POD_B).unwrap(), None);
    assert_eq!(f.dp.endpoints().unwrap().iter().unwrap().len(), 1);
    assert!(f.dp.conntrack().unwrap().is_empty().unwrap());
}

#[test]
fn reopening_pins_keeps_the_maps() {
    let Fixture { dp, pins } = setup(enforce_both());
    let layout_dir = dp.pin_dir().to_path_buf();
    assert!(layout_dir.ends_with("v1"));
    drop(dp);
    let dp = bpf::Datapath::open_with(&pins.0, fixture::small()).unwrap();
    assert_eq!(dp.pin_dir(), layout_dir);
    assert_eq!(
        dp.endpoints()
            .unwrap()
            .get(POD_A)
            .unwrap()
            .unwrap()
            .endpoint_id,
        EP_A
    );
    assert_eq!(dp.ipcache().unwrap().iter().unwrap().len(), 2);
    drop(dp);
    drop(pins);
}

/// A NetworkPolicy `ipBlock` identity covering pod B's /24.
const ID_BLOCK: u32 = 16_777_300;

fn ipblock_b(f: &Fixture) {
    f.dp.ipblock()
        .unwrap()
        .insert(
            Ipv4Prefix::new(POD_B, 24).unwrap(),
            &IpcacheValue::new(ID_BLOCK),
        )
        .unwrap();
}

/// The policy-verdict and drop events in the ring buffer, one line each.
fn verdicts(events: &mut bpf::EventReader) -> Vec<String> {
    drain(events)
        .into_iter()
        .filter_map(|e| {
            let flow = format!(
                "{:?} {}->{} :{}",
                e.flow.direction, e.flow.src_identity, e.flow.dst_identity, e.flow.dport
            );
            match e.kind {
                EventKind::PolicyVerdict {
                    verdict,
                    match_type,
                    cookie,
                } => Some(format!("{flow} {verdict:?} {match_type:?} cookie {cookie}")),
                EventKind::Drop { reason } => Some(format!("{flow} drop {}", reason.0)),
                EventKind::Trace { .. } => None,
            }
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn pod_peer_allowed_only_through_its_ipblock_identity() {
    let mut f = setup(enforce_both());
    allow(&f, Direction::Egress, ID_BLOCK, L4::port(L4::TCP, 80));
    allow(&f, Direction::Ingress, ID_BLOCK, L4::Any);
    assert_eq!(
        egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, SYN)),
        SHOT,
        "B is not in the ipblock map yet"
    );
    ipblock_b(&f);
    let mut events = f.dp.events().unwrap();
    drain(&mut events);
    assert_eq!(egress(&mut f, &tcp(POD_A, 40001, POD_B, 80, SYN)), OK);
    assert_eq!(egress(&mut f, &tcp(POD_A, 40002, POD_B, 81, SYN)), SHOT);
    assert_eq!(ingress(&mut f, &udp(POD_B, 40003, POD_A, 53)), OK);
    assert_eq!(
        egress(&mut f, &tcp(POD_A, 40004, WORLD, 80, SYN)),
        SHOT,
        "outside the block"
    );
    // Flows keep naming the peer by its pod identity.
    expect![[r#"
        [
            "Egress 1000->2000 :80 Some(Allow) L3L4 cookie 0",
            "Egress 1000->2000 :81 None None cookie 0",
            "Egress 1000->2000 :81 drop 133",
            "Ingress 2000->1000 :53 Some(Allow) L3Only cookie 0",
            "Egress 1000->2 :80 None None cookie 0",
            "Egress 1000->2 :80 drop 133",
        ]
    "#]]
    .assert_debug_eq(&verdicts(&mut events));
}

#[tokio::test(flavor = "current_thread")]
async fn a_deny_on_the_primary_identity_wins_over_an_ipblock_allow() {
    let mut f = setup(enforce_both());
    ipblock_b(&f);
    allow(&f, Direction::Egress, ID_BLOCK, L4::Any);
    put(
        &f,
        Direction::Egress,
        ID_B,
        L4::port(L4::TCP, 80),
        PolicyValue::deny(),
    );
    put(
        &f,
        Direction::Egress,
        identity::ANY,
        L4::port(L4::TCP, 22),
        PolicyValue::deny(),
    );
    let mut events = f.dp.events().unwrap();
    assert_eq!(egress(&mut f, &tcp(POD_A, 40000, POD_B, 80, SYN)), SHOT);
    assert_eq!(egress(&mut f, &tcp(POD_A, 40001, POD_B, 22, SYN)), SHOT);
    assert_eq!(egress(&mut f, &tcp(POD_A, 40002, POD_B, 81, SYN)), OK);
    expect![[r#"
        [
            "Egress 1000->2000 :80 Some(Deny) L3L4 cookie 0",
            "Egress 1000->2000 :80 drop 181",
            "Egress 1000->2000 :22 Some(Deny) L4Only cookie 0",
            "Egress 1000->2000 :22 drop 181",
            "Egress 1000->2000 :81 Some(Allow) L3Only cookie 0",
        ]
    "#]]
    .assert_debug_eq(&verdicts(&mut events));

    // A deny of the ipBlock identity itself is no deny: it only never allows.
    put(
        &f,
        Direction::Ingress,
        ID_BLOCK,
        L4::Any,
        PolicyValue::deny(),
    );
    assert_eq!(ingress(&mut f, &udp(POD_B, 40003, POD_A, 53)), SHOT);
    allow(&f, Direction::Ingress, identity::ANY, L4::Proto(L4::UDP));
    assert_eq!(ingress(&mut f, &udp(POD_B, 40004, POD_A, 53)), OK);
    expect![[r#"
        [
            "Ingress 2000->1000 :53 None None cookie 0",
            "Ingress 2000->1000 :53 drop 133",
            "Ingress 2000->1000 :53 Some(Allow) L4Only cookie 0",
        ]
    "#]]
    .assert_debug_eq(&verdicts(&mut events));
}

#[tokio::test(flavor = "current_thread")]
async fn no_ipblock_entry_changes_nothing() {
    let mut f = setup(enforce_both());
    allow(&f, Direction::Egress, ID_BLOCK, L4::Any);
    put(
        &f,
        Direction::Egress,
        ID_B,
        L4::port(L4::TCP, 80),
        PolicyValue {
            verdict: Verdict::Allow,
            cookie: 11,
        },
    );
    let mut events = f.dp.events().unwrap();
    // New source ports each round, so that every round's packets open new connections.
    let mut sport = 40000;
    let mut run_all = |f: &mut Fixture| -> Vec<u32> {
        sport += 3;
        [
            tcp(POD_A, sport, POD_B, 80, SYN),
            tcp(POD_A, sport + 1, POD_B, 81, SYN),
            udp(POD_A, sport + 2, WORLD, 53),
        ]
        .iter()
        .map(|p| egress(f, p))
        .collect()
    };
    assert_eq!(run_all(&mut f), [OK, SHOT, SHOT]);
    let without = verdicts(&mut events);
    // An ipblock entry for other addresses: same verdicts, same events.
    f.dp.ipblock()
        .unwrap()
        .insert(
            Ipv4Prefix::new(Ipv4Addr::new(192, 168, 0, 0), 16).unwrap(),
            &IpcacheValue::new(ID_BLOCK),
        )
        .unwrap();
    assert_eq!(run_all(&mut f), [OK, SHOT, SHOT]);
    assert_eq!(verdicts(&mut events), without);
    // B's own entry decides port 80 even once B is in the block (its cookie says so).
    ipblock_b(&f);
    assert_eq!(run_all(&mut f), [OK, OK, SHOT]);
    expect![[r#"
        [
            "Egress 1000->2000 :80 Some(Allow) L3L4 cookie 11",
            "Egress 1000->2000 :81 Some(Allow) L3Only cookie 0",
            "Egress 1000->2 :53 None None cookie 0",
            "Egress 1000->2 :53 drop 133",
        ]
    "#]]
    .assert_debug_eq(&verdicts(&mut events));
}

#[test]
fn redirect_without_a_proxy_port_allows_and_leaves_the_mark() {
    let mut f = setup(enforce_both());
    put(
        &f,
        Direction::Egress,
        ID_B,
        L4::port(L4::TCP, 80),
        PolicyValue {
            verdict: Verdict::Redirect { proxy_port: 0 },
            cookie: 0,
        },
    );
    let run =
        f.dp.test_run(Program::FromContainer, &tcp(POD_A, 1, POD_B, 80, SYN))
            .unwrap();
    assert_eq!((run.verdict, run.mark), (OK, 0));
}

#[test]
fn every_map_is_pinned() {
    let f = Fixture::new();
    let mut pinned: Vec<String> = std::fs::read_dir(f.dp.pin_dir().join("maps"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    pinned.sort();
    expect![[r#"
        [
            "config",
            "conntrack",
            "endpoints",
            "events",
            "events_lost",
            "ipblock",
            "ipcache",
            "policy",
            "policy_epoch",
        ]
    "#]]
    .assert_debug_eq(&pinned);
}

/// A local destination (pod C, endpoint 300) is delivered straight into its
/// pod from the source's program once both ends allow: redirected to the peer of C's host veth,
/// with C's MAC, the source host veth's MAC as the source, and one hop less TTL. C's ingress
/// is decided there, with its own conntrack entry, so its replies come back the same way.
#[test]
fn local_destinations_are_delivered_into_the_pod_after_their_ingress_decides() {
    const POD_C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
    const EP_C: u32 = 300;
    const ID_C: u32 = 3000;
    const C_MAC: [u8; 6] = [2, 0, 0, 0, 0, 3];
    let mut f = setup(enforce_both());
    f.dp.endpoints()
        .unwrap()
        .insert(
            POD_C,
            &EndpointInfo {
                endpoint_id: EP_C,
                // Test runs see every packet on ifindex 1, so C's replies must come from there.
                ifindex: 1,
                identity: ID_C,
                mac: C_MAC,
                flags: enforce_both(),
            },
        )
        .unwrap();
    f.dp.ipcache()
        .unwrap()
        .insert(Ipv4Prefix::host(POD_C), &IpcacheValue::new(ID_C))
        .unwrap();
    allow(&f, Direction::Egress, ID_C, L4::port(L4::TCP, 80));

    // A may send, but C's ingress allows nothing: dropped in A's program.
    let syn = tcp(POD_A, 40000, POD_C, 80, SYN);
    assert_eq!(egress(&mut f, &syn), SHOT);

    let key = PolicyKey {
        endpoint_id: EP_C,
        direction: Direction::Ingress,
        identity: ID_A,
        l4: L4::port(L4::TCP, 80),
    };
    f.dp.policy()
        .unwrap()
        .insert(&key, &PolicyValue::allow())
        .unwrap();
    let syn = tcp(POD_A, 40001, POD_C, 80, SYN);
    let run = f.dp.test_run(Program::FromContainer, &syn).unwrap();
    assert_eq!(run.verdict, TestRun::TC_ACT_REDIRECT);
    assert_eq!(&run.packet[..6], &C_MAC, "the destination pod's MAC");
    assert_eq!(
        &run.packet[6..12],
        &syn[..6],
        "the source host veth's MAC as the source"
    );
    assert_eq!(run.packet[14 + 8], syn[14 + 8] - 1, "one hop less TTL");
    let header = &run.packet[14..34];
    let sum = header
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    assert_eq!(
        (sum & 0xffff) + (sum >> 16),
        0xffff,
        "a valid IPv4 checksum"
    );
    // C's ingress entry exists, so its reply passes C's egress as a reply and is delivered
    // back into A.
    let reply = tcp(POD_C, 80, POD_A, 40001, SYN | ACK);
    let reply_run = f.dp.test_run(Program::FromContainer, &reply).unwrap();
    assert_eq!(reply_run.verdict, TestRun::TC_ACT_REDIRECT);
    assert_eq!(&reply_run.packet[..6], &[2, 0, 0, 0, 0, 1], "A's MAC");

    // A destination that is not local takes the stack, as before.
    assert_eq!(egress(&mut f, &tcp(POD_A, 40002, POD_B, 80, SYN)), SHOT);
}

/// A connection from outside the node that pod A's ingress redirects to the proxy: A's
/// `to_container` runs after the node's routing, so it hairpins the marked packet back in
/// through the veth (addressed to the veth's own MAC, the routed packet's source) for TPROXY.
/// What the ingress proxy sends on (mark 0xa00) is delivered, its mark left alone.
#[test]
fn ingress_redirects_hairpin_to_the_proxy_and_the_proxy_reaches_the_pod() {
    let mut f = setup(enforce_both());
    put(
        &f,
        Direction::Ingress,
        identity::WORLD,
        L4::port(L4::TCP, 80),
        PolicyValue {
            verdict: Verdict::Redirect { proxy_port: 15001 },
            cookie: 0,
        },
    );
    let syn = tcp(WORLD, 50000, POD_A, 80, SYN);
    let run = f.dp.test_run(Program::ToContainer, &syn).unwrap();
    assert_eq!(run.verdict, TestRun::TC_ACT_REDIRECT);
    assert_eq!(run.mark, 0x0200 | (15001 << 16));
    assert_eq!(&run.packet[..6], &syn[6..12], "to the veth's own MAC");
    assert_eq!(&run.packet[6..], &syn[6..], "nothing else changes");

    let from_proxy =
        f.dp.test_run_marked(Program::ToContainer, &syn, 0x0a00)
            .unwrap();
    assert_eq!((from_proxy.verdict, from_proxy.mark), (OK, 0x0a00));
    assert_eq!(from_proxy.packet, syn);

    // Back in through the veth, the hairpinned packet is not A's egress.
    let hairpinned =
        f.dp.test_run_marked(Program::FromContainer, &run.packet, run.mark)
            .unwrap();
    assert_eq!(hairpinned.verdict, OK);
}

/// The reply to a connection a proxy took over is the proxy's: local delivery must not put it
/// into the client pod, whose own connection ends at the proxy. Pod C's egress to A on 80 is
/// redirected; the egress proxy connects to A from C's address; A's reply takes the stack.
#[test]
fn replies_of_proxied_connections_take_the_stack() {
    const POD_C: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 3);
    let mut f = setup(enforce_both());
    f.dp.endpoints()
        .unwrap()
        .insert(
            POD_C,
            &EndpointInfo {
                endpoint_id: 300,
                ifindex: 1,
                identity: 3000,
                mac: [2, 0, 0, 0, 0, 3],
                flags: EndpointFlags::ENFORCE_EGRESS,
            },
        )
        .unwrap();
    f.dp.ipcache()
        .unwrap()
        .insert(Ipv4Prefix::host(POD_C), &IpcacheValue::new(3000))
        .unwrap();
    let key = PolicyKey {
        endpoint_id: 300,
        direction: Direction::Egress,
        identity: ID_A,
        l4: L4::port(L4::TCP, 80),
    };
    let redirect = PolicyValue {
        verdict: Verdict::Redirect { proxy_port: 15002 },
        cookie: 0,
    };
    f.dp.policy().unwrap().insert(&key, &redirect).unwrap();
    allow(&f, Direction::Ingress, 3000, L4::port(L4::TCP, 80));

    let syn = tcp(POD_C, 40000, POD_A, 80, SYN);
    let to_proxy = f.dp.test_run(Program::FromContainer, &syn).unwrap();
    assert_eq!(
        (to_proxy.verdict, to_proxy.mark),
        (OK, 0x0200 | (15002 << 16))
    );
    let upstream =
        f.dp.test_run_marked(Program::ToContainer, &syn, 0x0b00)
            .unwrap();
    assert_eq!(upstream.verdict, OK);
    let reply = tcp(POD_A, 80, POD_C, 40000, SYN | ACK);
    let run = f.dp.test_run(Program::FromContainer, &reply).unwrap();
    assert_eq!(run.verdict, OK, "not redirected into C");
    assert_eq!(run.packet, reply);
}
