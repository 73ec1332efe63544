use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use expect_test::expect;
use policy::trace::Probe;

use super::connect::{Outcome, Verdict, http_outcome, probe};
use super::matrix::ProbePod;
use super::timeout;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn timeouts_read_as_seconds_or_milliseconds() {
    let parsed: Vec<String> = ["1s", "500ms", "1.5s", "2", "0", "0ms", "1m", "-1s", "soon"]
        .iter()
        .map(|t| match timeout::parse(t) {
            Ok(d) => format!("{t} = {}", timeout::show(d)),
            Err(e) => e,
        })
        .collect();
    expect![[r#"
        1s = 1s
        500ms = 500ms
        1.5s = 1500ms
        2 = 2s
        "0": the timeout must be longer than zero
        "0ms": the timeout must be longer than zero
        "1m" is not a duration: use e.g. 1s, 500ms or 1.5s
        "-1s" is not a duration: use e.g. 1s, 500ms or 1.5s
        "soon" is not a duration: use e.g. 1s, 500ms or 1.5s"#]]
    .assert_eq(&parsed.join("\n"));
}

#[test]
fn a_pod_is_a_name_a_namespace_and_an_address() {
    assert_eq!(
        "x/a,/run/netns/pod-a,10.244.0.7".parse::<ProbePod>(),
        Ok(ProbePod {
            name: "x/a".to_owned(),
            netns: PathBuf::from("/run/netns/pod-a"),
            ip: "10.244.0.7".parse().expect("ip"),
        })
    );
    for bad in [
        "a,/run/netns/a,10.0.0.1",
        "x/a/b,/run/netns/a,10.0.0.1",
        "x/a,,10.0.0.1",
        "x/a,/run/netns/a",
        "x/a,/run/netns/a,10.0.0.300",
        "x/a,/run/netns/a,10.0.0.1,extra",
    ] {
        assert_eq!(
            bad.parse::<ProbePod>(),
            Err(format!("{bad:?} is not a pod: use ns/pod,NETNS,IP"))
        );
    }
}

fn summary(o: &Outcome) -> String {
    format!(
        "{} | {} | {:?} | {:?}",
        o.verdict.as_str(),
        o.detail,
        o.http_status,
        o.body
    )
}

#[test]
fn an_answer_is_judged_by_its_status() {
    let answers: Vec<String> = [
        "HTTP/1.1 200 OK\r\ncontent-length: 13\r\n\r\nx/web GET /\r\n",
        "HTTP/1.1 403 Forbidden\r\ncontent-length: 15\r\n\r\nAccess denied\r\n",
        "HTTP/1.0 503 Service Unavailable\r\n\r\n",
        "SSH-2.0-OpenSSH_9.2\r\n",
    ]
    .iter()
    .map(|a| summary(&http_outcome(a.as_bytes())))
    .collect();
    expect![[r#"
        allowed | HTTP/1.1 200 OK | Some(200) | Some("x/web GET /\r\n")
        denied | HTTP/1.1 403 Forbidden | Some(403) | Some("Access denied\r\n")
        allowed | HTTP/1.0 503 Service Unavailable | Some(503) | Some("")
        allowed | connected; the answer is not HTTP | None | Some("SSH-2.0-OpenSSH_9.2\r\n")"#]]
    .assert_eq(&answers.join("\n"));
}

/// A port on localhost that nothing listens on (just released by a listener).
fn closed_port() -> u16 {
    let listener = TcpListener::bind((LOCALHOST, 0)).expect("bind");
    listener.local_addr().expect("addr").port()
}

#[test]
fn tcp_reads_the_whole_answer_without_waiting_for_close() {
    let listener = TcpListener::bind((LOCALHOST, 0)).expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut request = [0; 1024];
        let n = stream.read(&mut request).expect("read request");
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhello\n")
            .expect("answer");
        // Keep the connection open past the probe: the length says when the answer ends.
        let _ = stream.read(&mut request);
        String::from_utf8_lossy(&request[..n]).into_owned()
    });
    let outcome = probe(None, LOCALHOST, Probe::tcp(port), TIMEOUT).expect("probe");
    expect![[r#"allowed | HTTP/1.1 200 OK | Some(200) | Some("hello\n")"#]]
        .assert_eq(&summary(&outcome));
    let request = server.join().expect("server");
    assert!(request.starts_with("GET / HTTP/1.1\r\n"), "{request}");
    assert!(request.contains("\r\nHost: 127.0.0.1\r\n"), "{request}");
}

#[test]
fn tcp_to_a_closed_port_is_refused() {
    let outcome = probe(None, LOCALHOST, Probe::tcp(closed_port()), TIMEOUT).expect("probe");
    assert_eq!(outcome.verdict, Verdict::Refused, "{outcome:?}");
    assert_eq!(outcome.detail, "connection refused");
}

#[test]
fn udp_gets_its_datagram_back() {
    let server = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    let port = server.local_addr().expect("addr").port();
    let echo = std::thread::spawn(move || {
        let mut buf = [0; 512];
        let (n, peer) = server.recv_from(&mut buf).expect("receive");
        server.send_to(&buf[..n], peer).expect("echo");
    });
    let udp: Probe = format!("{port}/UDP").parse().expect("probe");
    let outcome = probe(None, LOCALHOST, udp, TIMEOUT).expect("probe");
    echo.join().expect("echo thread");
    assert_eq!(outcome.verdict, Verdict::Allowed, "{outcome:?}");
    assert_eq!(outcome.detail, "echoed");
    let body = outcome.body.expect("the datagram");
    assert!(body.starts_with("myelin probe "), "{body}");
}

#[test]
fn udp_to_a_closed_port_is_refused() {
    let socket = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    let port = socket.local_addr().expect("addr").port();
    drop(socket);
    let udp: Probe = format!("{port}/UDP").parse().expect("probe");
    let outcome = probe(None, LOCALHOST, udp, TIMEOUT).expect("probe");
    expect!["refused | port unreachable | None | None"].assert_eq(&summary(&outcome));
}

#[test]
fn icmp_cannot_be_probed() {
    let icmp = policy::trace::icmp_echo_request();
    let err = probe(None, LOCALHOST, icmp, TIMEOUT).expect_err("no ICMP probes");
    expect!["cannot probe 8/ICMP: use TCP, UDP or SCTP"].assert_eq(&err.to_string());
}
