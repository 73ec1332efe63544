use std::convert::Infallible;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};

use expect_test::expect;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use policy::l7::{HttpMatcher, L7Request, L7Rules};
use policy::rule::Direction;
use schema::cilium::HttpRule;
use tokio::net::{TcpListener, TcpStream};

use super::{Connection, Policies, allows, serve_connection};
use crate::accesslog::{L7Record, LogRecord};

/// `GET /public` only, and records what it was asked and what the proxy logged.
struct GetPublic {
    rules: L7Rules,
    asked: Mutex<Vec<String>>,
    logged: Mutex<Vec<LogRecord>>,
}

impl GetPublic {
    fn new() -> GetPublic {
        let rule = HttpRule {
            method: Some("GET".to_owned()),
            path: Some("/public".to_owned()),
            ..HttpRule::default()
        };
        GetPublic {
            rules: L7Rules::Http(vec![HttpMatcher::new(&rule).expect("valid rule")]),
            asked: Mutex::new(Vec::new()),
            logged: Mutex::new(Vec::new()),
        }
    }
}

impl Policies for GetPublic {
    fn allows(&self, direction: Direction, _: &Connection, request: &L7Request<'_>) -> bool {
        if let L7Request::Http(http) = request {
            self.asked.lock().expect("lock").push(format!(
                "{} {} {} host={}",
                direction.as_str(),
                http.method,
                http.path,
                http.host
            ));
        }
        self.rules.allows(request)
    }

    fn learned(
        &self,
        _: Vec<(String, std::net::Ipv4Addr, u32)>,
    ) -> futures::future::BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    fn log(&self, record: LogRecord) {
        self.logged.lock().expect("lock").push(record);
    }
}

fn v4(addr: SocketAddr) -> SocketAddrV4 {
    match addr {
        SocketAddr::V4(v4) => v4,
        SocketAddr::V6(_) => panic!("bound to an IPv4 address"),
    }
}

/// An upstream answering with what it saw, the client's address included.
async fn upstream() -> SocketAddrV4 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = v4(listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.expect("accept");
            let service =
                hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| async move {
                    let body = format!("{} {} from {}", req.method(), req.uri(), peer.ip());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

#[tokio::test]
async fn every_request_on_a_connection_is_decided_and_allowed_ones_are_forwarded() {
    let server = upstream().await;
    let front = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let front_addr = front.local_addr().expect("addr");
    let policies = Arc::new(GetPublic::new());
    let proxy_policies: Arc<dyn Policies> = Arc::clone(&policies) as Arc<dyn Policies>;
    tokio::spawn(async move {
        let (stream, peer) = front.accept().await.expect("accept");
        // TPROXY would make `server` the accepted socket's local address; here it is given.
        let connection = Connection {
            client: v4(peer),
            server,
        };
        serve_connection(stream, connection, Direction::Egress, proxy_policies).await;
    });

    let stream = TcpStream::connect(front_addr).await.expect("connect");
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(driver);
    let mut out = String::new();
    for (method, path) in [
        ("GET", "/public"),
        ("GET", "/private"),
        ("POST", "/public"),
        ("GET", "/public?x=1"),
        ("GET", "/public"),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "b")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(request).await.expect("response");
        let status = response.status().as_u16();
        let server = response
            .headers()
            .get("server")
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        out.push_str(&format!("{method} {path} -> {status} {server} {body:?}\n"));
    }
    expect![[r#"
        GET /public -> 200  b"GET /public from 127.0.0.1"
        GET /private -> 403 envoy b"Access denied\r\n"
        POST /public -> 403 envoy b"Access denied\r\n"
        GET /public?x=1 -> 403 envoy b"Access denied\r\n"
        GET /public -> 200  b"GET /public from 127.0.0.1"
    "#]]
    .assert_eq(&out);
    expect![[r#"
        egress GET /public host=b
        egress GET /private host=b
        egress POST /public host=b
        egress GET /public?x=1 host=b
        egress GET /public host=b"#]]
    .assert_eq(&policies.asked.lock().expect("lock").join("\n"));

    let client = {
        let logged = policies.logged.lock().expect("lock");
        logged.first().expect("a record").source
    };
    let logged: Vec<String> = policies
        .logged
        .lock()
        .expect("lock")
        .iter()
        .map(|r| {
            let L7Record::Http(http) = &r.l7 else {
                panic!("an HTTP record")
            };
            let from = if r.source == client {
                "client"
            } else {
                "server"
            };
            let to = if r.destination == server {
                "server"
            } else {
                "client"
            };
            format!(
                "{:?} {} {:?} {from}->{to} {} {} {} {} host={}",
                r.r#type,
                r.direction.as_str(),
                r.verdict,
                http.protocol,
                http.method,
                http.url,
                http.code,
                http.headers
                    .iter()
                    .find(|(k, _)| k == "host")
                    .map_or("", |(_, v)| v.as_str()),
            )
        })
        .collect();
    expect![[r#"
        Request egress Forwarded client->server HTTP/1.1 GET http://b/public 0 host=b
        Response egress Forwarded server->client HTTP/1.1 GET http://b/public 200 host=b
        Request egress Denied client->server HTTP/1.1 GET http://b/private 0 host=b
        Response egress Forwarded server->client HTTP/1.1 GET http://b/private 403 host=b
        Request egress Denied client->server HTTP/1.1 POST http://b/public 0 host=b
        Response egress Forwarded server->client HTTP/1.1 POST http://b/public 403 host=b
        Request egress Denied client->server HTTP/1.1 GET http://b/public?x=1 0 host=b
        Response egress Forwarded server->client HTTP/1.1 GET http://b/public?x=1 403 host=b
        Request egress Forwarded client->server HTTP/1.1 GET http://b/public 0 host=b
        Response egress Forwarded server->client HTTP/1.1 GET http://b/public 200 host=b"#]]
    .assert_eq(&logged.join("\n"));
}

#[test]
fn the_authority_stands_in_for_a_missing_host_header() {
    let policies = GetPublic::new();
    let connection = Connection {
        client: "10.0.0.1:1234".parse().expect("addr"),
        server: "10.0.0.2:80".parse().expect("addr"),
    };
    let request = Request::get("http://b.example/public")
        .body(())
        .expect("request");
    assert!(allows(&policies, Direction::Ingress, &connection, &request));
    expect!["ingress GET /public host=b.example"]
        .assert_eq(&policies.asked.lock().expect("lock").join("\n"));
}
