use std::net::Ipv4Addr;

use expect_test::{Expect, expect};

use super::*;

fn pod() -> PodRef {
    PodRef {
        namespace: "default".to_owned(),
        name: "deathstar-1".to_owned(),
    }
}

fn host() -> HostInterface {
    HostInterface {
        ifindex: 7,
        ifname: "lxc0123456789ab".to_owned(),
        mac: "02:00:00:00:00:01".to_owned(),
    }
}

fn ready_endpoint() -> Endpoint {
    Endpoint {
        container_id: "c0ffee".to_owned(),
        id: 3,
        ifname: "eth0".to_owned(),
        netns: "/run/netns/pod".to_owned(),
        pod: Some(pod()),
        ipv4: Ipv4Addr::new(10, 244, 0, 2),
        gateway: POD_GATEWAY,
        host: Some(host()),
        container_mac: Some("02:00:00:00:00:02".to_owned()),
        state: EndpointState::Ready,
        identity: None,
    }
}

fn check_line<T>(message: &T, expected: Expect)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let line = encode_line(message);
    assert_eq!(line.last(), Some(&b'\n'), "one message, one line");
    let text = String::from_utf8(line.clone()).expect("utf-8");
    assert_eq!(text.matches('\n').count(), 1, "{text}");
    expected.assert_eq(&text);
    let back: T = decode_line("message", &line).expect("round trip");
    assert_eq!(&back, message);
}

#[test]
fn requests_are_tagged_lines() {
    check_line(
        &Request::EndpointAdd(EndpointAdd {
            container_id: "c0ffee".to_owned(),
            ifname: "eth0".to_owned(),
            netns: "/run/netns/pod".to_owned(),
            pod: Some(pod()),
        }),
        expect![[r#"
            {"request":"endpoint-add","containerId":"c0ffee","ifname":"eth0","netns":"/run/netns/pod","pod":{"namespace":"default","name":"deathstar-1"}}
        "#]],
    );
    check_line(
        &Request::EndpointReady(EndpointReady {
            container_id: "c0ffee".to_owned(),
            ifname: "eth0".to_owned(),
            host: host(),
            container_mac: "02:00:00:00:00:02".to_owned(),
        }),
        expect![[r#"
            {"request":"endpoint-ready","containerId":"c0ffee","ifname":"eth0","host":{"ifindex":7,"ifname":"lxc0123456789ab","mac":"02:00:00:00:00:01"},"containerMac":"02:00:00:00:00:02"}
        "#]],
    );
    check_line(
        &Request::EndpointDelete(EndpointRef {
            container_id: "c0ffee".to_owned(),
            ifname: "eth0".to_owned(),
        }),
        expect![[r#"
            {"request":"endpoint-delete","containerId":"c0ffee","ifname":"eth0"}
        "#]],
    );
    check_line(
        &Request::Status,
        expect![[r#"
            {"request":"status"}
        "#]],
    );
}

#[test]
fn responses_are_tagged_lines() {
    check_line(
        &Response::Endpoint(ready_endpoint()),
        expect![[r#"
            {"response":"endpoint","containerId":"c0ffee","id":3,"ifname":"eth0","netns":"/run/netns/pod","pod":{"namespace":"default","name":"deathstar-1"},"ipv4":"10.244.0.2","gateway":"169.254.1.1","host":{"ifindex":7,"ifname":"lxc0123456789ab","mac":"02:00:00:00:00:01"},"containerMac":"02:00:00:00:00:02","state":"ready"}
        "#]],
    );
    check_line(
        &Response::Deleted(Deleted { endpoint: None }),
        expect![[r#"
            {"response":"deleted"}
        "#]],
    );
    check_line(
        &Response::Status(AgentStatus {
            pod_cidr: "10.244.0.0/24".to_owned(),
            addresses_total: 253,
            addresses_free: 252,
            endpoints: 1,
        }),
        expect![[r#"
            {"response":"status","podCidr":"10.244.0.0/24","addressesTotal":253,"addressesFree":252,"endpoints":1}
        "#]],
    );
    check_line(
        &Response::Error(ApiError::new(
            ErrorCode::Exhausted,
            "no free address in 10.244.0.0/30",
        )),
        expect![[r#"
            {"response":"error","code":"exhausted","message":"no free address in 10.244.0.0/30"}
        "#]],
    );
}

#[test]
fn unknown_fields_are_ignored_for_compatibility() {
    let request: Request = decode_line(
        "request",
        br#"{"request":"endpoint-get","containerId":"c","ifname":"eth0","since":"v2"}"#,
    )
    .expect("decodes");
    assert_eq!(
        request,
        Request::EndpointGet(EndpointRef {
            container_id: "c".to_owned(),
            ifname: "eth0".to_owned()
        })
    );
}

#[test]
fn errors_name_the_message_and_the_problem() {
    let check = |line: &[u8], expected: Expect| {
        let err = decode_line::<Request>("request", line).expect_err("must not decode");
        expected.assert_eq(&err.to_string());
    };
    check(
        br#"{"request":"endpoint-list"}"#,
        expect![
            "decode request: unknown variant `endpoint-list`, expected one of `endpoint-add`, `endpoint-ready`, `endpoint-delete`, `endpoint-get`, `status` at line 1 column 26"
        ],
    );
    check(
        br#"{"request":"endpoint-add","containerId":"c"}"#,
        expect!["decode request: missing field `ifname`"],
    );
    check(
        b"not json",
        expect!["decode request: expected ident at line 1 column 2"],
    );
}

#[test]
fn api_errors_read_as_sentences() {
    let err = ApiError::new(
        ErrorCode::Conflict,
        "container c has interface eth0, not net1",
    );
    expect!["conflict: container c has interface eth0, not net1"].assert_eq(&err.to_string());
}

#[test]
fn macs_round_trip() {
    let mac = parse_mac("02:ab:00:ff:10:01").expect("mac");
    assert_eq!(format_mac(&mac), "02:ab:00:ff:10:01");
    for bad in [
        "02:ab:00:ff:10",
        "02:ab:00:ff:10:01:02",
        "zz:ab:00:ff:10:01",
        "2:ab:00:ff:10:01:",
    ] {
        assert!(parse_mac(bad).is_none(), "{bad}");
    }
}
