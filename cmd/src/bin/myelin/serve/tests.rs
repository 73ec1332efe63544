use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket as StdUdpSocket};
use std::sync::Arc;
use std::time::Duration;

use expect_test::expect;
use tokio::net::{TcpListener, UdpSocket};

use super::{echo, serve_tcp};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Sends `request` and reads one answer: its status line and body (the date header varies).
fn exchange(stream: &mut TcpStream, request: &str) -> String {
    stream.write_all(request.as_bytes()).expect("send");
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).expect("status line");
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("header");
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().expect("length");
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    format!(
        "{} -> {:?}",
        status.trim_end(),
        String::from_utf8_lossy(&body)
    )
}

#[test]
fn every_request_gets_the_pod_method_and_path_on_kept_alive_concurrent_connections() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(serve_tcp(listener, "x/web".into(), Arc::default()));
        let transcript = tokio::task::spawn_blocking(move || {
            let connect = |addr: SocketAddr| {
                let stream = TcpStream::connect(addr).expect("connect");
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .expect("timeout");
                stream
            };
            let mut first = connect(addr);
            let mut second = connect(addr);
            // The second connection is answered while the first one is open and idle; then
            // the first carries two requests, a body included.
            [
                exchange(&mut second, "GET /two HTTP/1.1\r\nHost: web\r\n\r\n"),
                exchange(
                    &mut first,
                    "POST /one?q=1 HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\n\r\nhello",
                ),
                exchange(&mut first, "DELETE /again HTTP/1.1\r\nHost: web\r\n\r\n"),
            ]
            .join("\n")
        })
        .await
        .expect("client");
        server.abort();
        expect![[r#"
            HTTP/1.1 200 OK -> "x/web GET /two\n"
            HTTP/1.1 200 OK -> "x/web POST /one\n"
            HTTP/1.1 200 OK -> "x/web DELETE /again\n""#]]
        .assert_eq(&transcript);
    });
}

#[test]
fn udp_ports_echo() {
    runtime().block_on(async {
        let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = socket.local_addr().expect("addr");
        let server = tokio::spawn(echo(Arc::new(socket), addr.port(), Arc::default()));
        let answers = tokio::task::spawn_blocking(move || {
            let client = StdUdpSocket::bind("127.0.0.1:0").expect("bind client");
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            client.connect(addr).expect("connect");
            ["ping", "pong"]
                .iter()
                .map(|text| {
                    client.send(text.as_bytes()).expect("send");
                    let mut buf = [0; 64];
                    let n = client.recv(&mut buf).expect("echo");
                    String::from_utf8_lossy(&buf[..n]).into_owned()
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("client");
        server.abort();
        assert_eq!(answers, ["ping", "pong"]);
    });
}

#[test]
fn tcp_ports_answer_dns_when_the_client_speaks_it() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RData, RecordType};
    use std::io::{Read, Write};

    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut zone = super::dns::Zone::default();
        zone.records
            .insert("api.example".to_owned(), vec![[192, 0, 2, 9].into()]);
        let server = tokio::spawn(serve_tcp(listener, "x/dns".into(), Arc::new(zone)));
        let answers = tokio::task::spawn_blocking(move || {
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut answers = Vec::new();
            for name in ["api.example.", "gone.example."] {
                let mut query = Message::new(7, MessageType::Query, OpCode::Query);
                query.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
                let bytes = query.to_vec().unwrap();
                let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
                framed.extend_from_slice(&bytes);
                stream.write_all(&framed).expect("send");
                let mut len = [0u8; 2];
                stream.read_exact(&mut len).expect("length");
                let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
                stream.read_exact(&mut answer).expect("answer");
                let answer = Message::from_vec(&answer).expect("DNS");
                let ips: Vec<String> = answer
                    .answers
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::A(a) => Some(a.0.to_string()),
                        _ => None,
                    })
                    .collect();
                answers.push(format!("{name} {} {ips:?}", answer.metadata.response_code));
            }
            answers
        })
        .await
        .expect("client");
        server.abort();
        assert_eq!(
            answers,
            [
                "api.example. No Error [\"192.0.2.9\"]",
                "gone.example. Non-Existent Domain []"
            ]
        );
    });
}
