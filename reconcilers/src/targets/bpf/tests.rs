//! The row-to-map conversions. What the ops do with the kernel's maps is tested against real
//! pinned maps in integration/tests/it/bpf_reconciler.rs.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use expect_test::expect;
use policy::identity::Identity;
use policy::l7::L7Parser;
use policy::mapstate::{Key, PROTO_ANY, PROTO_ICMP, PROTO_TCP, PROTO_UDP, Verdict};
use policy::rule::Direction;
use schema::cidr::Cidr;

use super::{endpoint_info, ipv4_prefix, policy_key, policy_value};
use crate::datapath::DatapathEndpoint;
use crate::status::Status;

#[test]
fn policy_keys_and_values() {
    let cases = [
        (
            Key::any(Direction::Ingress, Identity(16_777_217)),
            Verdict::Allow,
        ),
        (
            Key::new(Direction::Egress, Identity::ANY, PROTO_UDP, 0, 0),
            Verdict::Deny,
        ),
        (
            Key::new(Direction::Egress, Identity(300), PROTO_TCP, 80, 16),
            Verdict::Redirect(L7Parser::Http),
        ),
        (
            Key::new(Direction::Ingress, Identity(300), PROTO_TCP, 8080, 13),
            Verdict::Allow,
        ),
        (
            Key::new(Direction::Ingress, Identity(2), PROTO_ICMP, 8, 16),
            Verdict::Allow,
        ),
    ];
    let mut out = String::new();
    for (key, verdict) in cases {
        let map_key = policy_key(7, &key).unwrap();
        let raw = map_key.to_raw();
        writeln!(
            out,
            "{key} {verdict:?} -> {map_key} (prefix {}) {:?}",
            raw.prefix_len(),
            policy_value(verdict, 10001, 0).verdict
        )
        .unwrap();
    }
    expect![[r#"
        ingress 16777217 ANY Allow -> endpoint 7 ingress identity 16777217 any (prefix 72) Allow
        egress 0 UDP Deny -> endpoint 7 egress identity 0 udp (prefix 80) Deny
        egress 300 80/TCP Redirect(Http) -> endpoint 7 egress identity 300 80/tcp (prefix 96) Redirect { proxy_port: 10001 }
        ingress 300 8080-8087/TCP Allow -> endpoint 7 ingress identity 300 8080-8087/tcp (prefix 93) Allow
        ingress 2 8/ICMP Allow -> endpoint 7 ingress identity 2 8/icmp (prefix 96) Allow
    "#]]
    .assert_eq(&out);
}

#[test]
fn a_key_with_host_bits_in_its_port_is_an_error() {
    let key = Key {
        direction: Direction::Egress,
        identity: Identity(300),
        proto: PROTO_TCP,
        port: 8081,
        port_prefix: 13,
    };
    let err = policy_key(7, &key).unwrap_err();
    expect!["policy entry of endpoint 7: egress 300 8081-8087/TCP: invalid port prefix 8081/13: bits past the prefix length are set"]
        .assert_eq(&crate::error_chain(&err));
    assert!(policy_key(7, &Key::any(Direction::Egress, Identity(300))).is_ok());
    assert_eq!(
        policy_key(
            7,
            &Key::new(Direction::Egress, Identity(1), PROTO_ANY, 0, 0)
        )
        .unwrap()
        .l4,
        bpf::L4::Any
    );
}

#[test]
fn ipcache_prefixes() {
    let prefix = |text: &str| Cidr::parse_prefix_or_addr(text).unwrap();
    let v4 = ipv4_prefix(prefix("10.1.2.3/16")).unwrap();
    assert_eq!(v4.to_string(), "10.1.0.0/16", "host bits cleared");
    assert_eq!(
        ipv4_prefix(prefix("10.1.2.3")).unwrap().to_string(),
        "10.1.2.3/32"
    );
    let err = ipv4_prefix(prefix("fd00::/64")).unwrap_err();
    expect!["fd00::/64: the datapath holds ipv4 prefixes only"].assert_eq(&err.to_string());
}

#[test]
fn endpoint_values() {
    let endpoint = |enforce| DatapathEndpoint {
        endpoint_id: 12,
        ipv4: Ipv4Addr::new(10, 0, 0, 5),
        ifindex: 42,
        ifname: "lxc1234".to_owned(),
        mac: [2, 0, 0, 0, 0, 5],
        identity: Identity(40_001),
        enforce,
        status: Status::pending(),
    };
    let flags = |enforce| endpoint_info(&endpoint(enforce)).flags.0;
    assert_eq!(
        [
            flags([false, false]),
            flags([true, false]),
            flags([false, true]),
            flags([true, true])
        ],
        [0, 1, 2, 3]
    );
    expect![[r#"
        EndpointInfo {
            endpoint_id: 12,
            ifindex: 42,
            identity: 40001,
            mac: [
                2,
                0,
                0,
                0,
                0,
                5,
            ],
            flags: EndpointFlags(
                3,
            ),
        }
    "#]]
    .assert_debug_eq(&endpoint_info(&endpoint([true, true])));
}
