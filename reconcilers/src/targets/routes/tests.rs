use std::error::Error;
use std::io;
use std::net::IpAddr;

use expect_test::{Expect, expect};

use super::{NetlinkError, RouteError, RouteSpec};

fn spec(dst: &str, prefix_len: u8) -> RouteSpec {
    RouteSpec {
        table: 254,
        dst: dst.parse().unwrap(),
        prefix_len,
        gateway: None,
        dev: None,
        priority: None,
    }
}

fn ip(address: &str) -> IpAddr {
    address.parse().unwrap()
}

/// The error and its sources joined by ": ", as status and logs render them.
fn chain(err: &dyn Error) -> String {
    let mut rendered = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        rendered.push_str(": ");
        rendered.push_str(&err.to_string());
        source = err.source();
    }
    rendered
}

fn check_display(route: &RouteSpec, expect: Expect) {
    expect.assert_eq(&route.to_string());
}

#[test]
fn display_like_ip_route() {
    check_display(&spec("10.1.0.0", 24), expect!["10.1.0.0/24 table 254"]);
    check_display(
        &RouteSpec {
            gateway: Some(ip("10.0.0.1")),
            dev: Some("eth0".to_owned()),
            priority: Some(10),
            ..spec("10.1.0.0", 24)
        },
        expect!["10.1.0.0/24 via 10.0.0.1 dev eth0 table 254 metric 10"],
    );
    check_display(
        &RouteSpec {
            dev: Some("d0".to_owned()),
            table: 100,
            ..spec("fd00:201::", 64)
        },
        expect!["fd00:201::/64 dev d0 table 100"],
    );
    check_display(
        &RouteSpec {
            gateway: Some(ip("fe80::1")),
            ..spec("0.0.0.0", 0)
        },
        expect!["0.0.0.0/0 via fe80::1 table 254"],
    );
}

#[test]
fn error_messages_name_the_route_and_chain_the_cause() {
    let replace = RouteError::Replace {
        route: RouteSpec {
            dev: Some("nosuch".to_owned()),
            ..spec("10.1.0.0", 24)
        },
        source: NetlinkError::LinkNotFound {
            name: "nosuch".to_owned(),
        },
    };
    expect![[r#"replace route 10.1.0.0/24 dev nosuch table 254: link "nosuch" not found"#]]
        .assert_eq(&chain(&replace));
    assert_eq!(replace.raw_os_error(), None);

    let unreachable = RouteError::Replace {
        route: RouteSpec {
            gateway: Some(ip("192.0.2.1")),
            ..spec("10.9.0.0", 16)
        },
        source: NetlinkError::Kernel(io::Error::from_raw_os_error(101)),
    };
    expect![
        "replace route 10.9.0.0/16 via 192.0.2.1 table 254: Network is unreachable (os error 101)"
    ]
    .assert_eq(&chain(&unreachable));
    assert_eq!(unreachable.raw_os_error(), Some(101));

    let delete = RouteError::Delete {
        route: spec("10.1.0.1", 24),
        source: spec("10.1.0.1", 24).validate().unwrap_err(),
    };
    expect!["delete route 10.1.0.1/24 table 254: 10.1.0.1/24 is not a network prefix"]
        .assert_eq(&chain(&delete));

    let request = RouteError::List(NetlinkError::from(rtnetlink::Error::RequestFailed));
    expect!["list routes: netlink request failed: A netlink request failed"]
        .assert_eq(&chain(&request));
}

#[test]
fn kernel_errors_keep_their_errno() {
    let message = {
        let mut message = rtnetlink::packet_core::ErrorMessage::default();
        message.code = std::num::NonZeroI32::new(-101);
        message
    };
    let err = NetlinkError::from(rtnetlink::Error::NetlinkError(message));
    assert_eq!(err.raw_os_error(), Some(101));
    expect!["Network is unreachable (os error 101)"].assert_eq(&err.to_string());
}

#[test]
fn validate() {
    let check = |route: RouteSpec, expect: Expect| {
        let rendered = match route.validate() {
            Ok(()) => "ok".to_owned(),
            Err(err) => err.to_string(),
        };
        expect.assert_eq(&rendered);
    };
    check(spec("10.1.0.0", 24), expect!["ok"]);
    check(spec("0.0.0.0", 0), expect!["ok"]);
    check(spec("10.1.2.3", 32), expect!["ok"]);
    check(spec("::", 0), expect!["ok"]);
    check(spec("fd00::1", 128), expect!["ok"]);
    check(
        spec("10.1.0.1", 24),
        expect!["10.1.0.1/24 is not a network prefix"],
    );
    check(
        spec("10.1.0.0", 33),
        expect!["10.1.0.0/33 is not a network prefix"],
    );
    check(
        spec("fd00::1", 64),
        expect!["fd00::1/64 is not a network prefix"],
    );
    check(
        spec("fd00::", 129),
        expect!["fd00::/129 is not a network prefix"],
    );
    check(
        RouteSpec {
            table: 0,
            ..spec("10.1.0.0", 24)
        },
        expect!["table 0 (unspec) cannot hold routes"],
    );
    check(
        RouteSpec {
            gateway: Some(ip("10.0.0.1")),
            ..spec("fd00::", 64)
        },
        expect!["ipv4 gateway 10.0.0.1 for an ipv6 destination"],
    );
    check(
        RouteSpec {
            gateway: Some(ip("fe80::1")),
            ..spec("10.1.0.0", 24)
        },
        expect!["ok"],
    );
}

#[test]
fn canonical_drops_default_metrics() {
    let with = |dst: &str, priority| RouteSpec {
        priority,
        ..spec(dst, 0)
    };
    assert_eq!(with("0.0.0.0", Some(0)).canonical().priority, None);
    assert_eq!(with("0.0.0.0", Some(1024)).canonical().priority, Some(1024));
    assert_eq!(with("0.0.0.0", Some(7)).canonical().priority, Some(7));
    assert_eq!(with("::", Some(0)).canonical().priority, None);
    assert_eq!(with("::", Some(1024)).canonical().priority, None);
    assert_eq!(with("::", Some(7)).canonical().priority, Some(7));
    assert_eq!(with("::", None).canonical().priority, None);
}

#[test]
fn open_without_runtime_is_an_error() {
    let err = super::RouteTarget::open(None).unwrap_err();
    expect!["no tokio runtime to drive the netlink connection: there is no reactor running, must be called from the context of a Tokio 1.x runtime"]
        .assert_eq(&chain(&err));
}
