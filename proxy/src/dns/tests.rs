use std::net::Ipv4Addr;
use std::sync::Mutex;

use futures::future::BoxFuture;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use policy::l7::L7Request;
use policy::rule::Direction;

use super::{answer_record, learn, query_record, refused};
use crate::accesslog::LogRecord;
use crate::http::{Connection, Policies};

fn query(name: &str) -> Message {
    let mut message = Message::new(4711, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    message
}

#[test]
fn a_denied_query_is_refused_with_its_question() {
    let request = query("Support.GitHub.com.");
    let answer = Message::from_vec(&refused(&request).unwrap()).unwrap();
    assert_eq!(answer.metadata.id, 4711);
    assert_eq!(answer.metadata.message_type, MessageType::Response);
    assert_eq!(answer.metadata.response_code, ResponseCode::Refused);
    assert!(answer.metadata.recursion_desired);
    assert_eq!(answer.queries, request.queries);
    assert!(answer.answers.is_empty());
}

#[derive(Default)]
struct Learned(Mutex<Vec<(String, Ipv4Addr, u32)>>);

impl Policies for Learned {
    fn allows(&self, _: Direction, _: &Connection, _: &L7Request<'_>) -> bool {
        true
    }

    fn learned(&self, names: Vec<(String, Ipv4Addr, u32)>) -> BoxFuture<'static, ()> {
        self.0.lock().unwrap().extend(names);
        Box::pin(async {})
    }

    fn log(&self, _: LogRecord) {}
}

fn a(name: &str, ip: [u8; 4]) -> Record {
    Record::from_rdata(Name::from_ascii(name).unwrap(), 60, RData::A(A(ip.into())))
}

#[tokio::test]
async fn an_answer_teaches_every_name_on_the_way_to_its_addresses() {
    let mut response = query("www.GitHub.com.");
    response.metadata.message_type = MessageType::Response;
    response.add_answer(Record::from_rdata(
        Name::from_ascii("www.github.com.").unwrap(),
        60,
        RData::CNAME(CNAME(Name::from_ascii("github.com.").unwrap())),
    ));
    response.add_answer(a("github.com.", [140, 82, 121, 3]));
    response.add_answer(a("github.com.", [140, 82, 121, 4]));
    let policies = Learned::default();
    learn(&policies, &response).await;
    let learned = policies.0.lock().unwrap().clone();
    let ip3 = Ipv4Addr::new(140, 82, 121, 3);
    let ip4 = Ipv4Addr::new(140, 82, 121, 4);
    assert_eq!(
        learned,
        [
            ("www.github.com".to_owned(), ip3, 60),
            ("github.com".to_owned(), ip3, 60),
            ("www.github.com".to_owned(), ip4, 60),
            ("github.com".to_owned(), ip4, 60),
        ]
    );

    // An error answer teaches nothing.
    let mut failed = query("gone.example.");
    failed.metadata.message_type = MessageType::Response;
    failed.metadata.response_code = ResponseCode::NXDomain;
    failed.add_answer(a("gone.example.", [192, 0, 2, 1]));
    let policies = Learned::default();
    learn(&policies, &failed).await;
    assert!(policies.0.lock().unwrap().is_empty());
}

#[test]
fn the_access_log_tells_the_question_and_the_answer() {
    let asked = query_record(&query("WWW.GitHub.com."));
    assert_eq!(asked.query, "www.github.com.");
    assert_eq!(asked.qtypes, ["A"]);
    let mut response = query("www.github.com.");
    response.metadata.message_type = MessageType::Response;
    response.add_answer(Record::from_rdata(
        Name::from_ascii("www.github.com.").unwrap(),
        3600,
        RData::CNAME(CNAME(Name::from_ascii("GitHub.com.").unwrap())),
    ));
    response.add_answer(a("github.com.", [140, 82, 121, 3]));
    let mut short = a("github.com.", [140, 82, 121, 4]);
    short.ttl = 30;
    response.add_answer(short);
    let answered = answer_record(asked, &response);
    assert_eq!(answered.query, "www.github.com.");
    assert_eq!(answered.rcode, 0);
    assert_eq!(answered.cnames, ["github.com."]);
    assert_eq!(answered.rrtypes, ["CNAME", "A", "A"]);
    assert_eq!(
        answered.ips,
        [
            std::net::IpAddr::from([140, 82, 121, 3]),
            std::net::IpAddr::from([140, 82, 121, 4])
        ]
    );
    assert_eq!(answered.ttl, 30);

    let mut failed = query("gone.example.");
    failed.metadata.message_type = MessageType::Response;
    failed.metadata.response_code = ResponseCode::NXDomain;
    let answered = answer_record(query_record(&failed), &failed);
    assert_eq!((answered.rcode, answered.ips.len()), (3, 0));
}

/// Allows `api.example` only; keeps what it learned and logged.
#[derive(Default)]
struct OnlyApi {
    learned: Mutex<Vec<(String, Ipv4Addr, u32)>>,
    logged: Mutex<Vec<LogRecord>>,
}

impl Policies for OnlyApi {
    fn allows(&self, _: Direction, _: &Connection, request: &L7Request<'_>) -> bool {
        matches!(request, L7Request::Dns("api.example"))
    }

    fn learned(&self, names: Vec<(String, Ipv4Addr, u32)>) -> BoxFuture<'static, ()> {
        self.learned.lock().unwrap().extend(names);
        Box::pin(async {})
    }

    fn log(&self, record: LogRecord) {
        self.logged.lock().unwrap().push(record);
    }
}

async fn read_framed(stream: &mut tokio::net::TcpStream) -> Message {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut bytes).await.unwrap();
    Message::from_vec(&bytes).unwrap()
}

async fn write_framed(stream: &mut tokio::net::TcpStream, message: &Message) {
    use tokio::io::AsyncWriteExt;
    let bytes = message.to_vec().unwrap();
    let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    stream.write_all(&framed).await.unwrap();
}

#[tokio::test]
async fn queries_over_tcp_are_decided_one_by_one_and_answers_learned() {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use tokio::net::{TcpListener, TcpStream};

    let v4 = |addr: SocketAddr| match addr {
        SocketAddr::V4(v4) => v4,
        SocketAddr::V6(_) => panic!("IPv4"),
    };
    // The server the client asked: answers every query with 192.0.2.7.
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = v4(upstream.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = upstream.accept().await.unwrap();
            tokio::spawn(async move {
                let query = read_framed(&mut stream).await;
                let mut answer = query.clone();
                answer.metadata.message_type = MessageType::Response;
                let name = query.queries[0].name.to_ascii();
                answer.add_answer(a(&name, [192, 0, 2, 7]));
                write_framed(&mut stream, &answer).await;
            });
        }
    });
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front_addr = front.local_addr().unwrap();
    let policies = Arc::new(OnlyApi::default());
    let proxy_policies: Arc<dyn Policies> = Arc::clone(&policies) as Arc<dyn Policies>;
    tokio::spawn(async move {
        let (stream, peer) = front.accept().await.unwrap();
        // TPROXY would make `server` the accepted socket's local address; here it is given.
        let connection = Connection {
            client: v4(peer),
            server,
        };
        super::serve_tcp_connection(stream, connection, proxy_policies).await;
    });

    let mut client = TcpStream::connect(front_addr).await.unwrap();
    write_framed(&mut client, &query("api.example.")).await;
    let answered = read_framed(&mut client).await;
    assert_eq!(answered.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answered.answers.len(), 1);
    write_framed(&mut client, &query("other.example.")).await;
    let refused = read_framed(&mut client).await;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert_eq!(refused.metadata.id, 4711);

    assert_eq!(
        *policies.learned.lock().unwrap(),
        [("api.example".to_owned(), Ipv4Addr::new(192, 0, 2, 7), 60)]
    );
    let logged: Vec<String> = policies
        .logged
        .lock()
        .unwrap()
        .iter()
        .map(|r| {
            let crate::accesslog::L7Record::Dns(dns) = &r.l7 else {
                panic!("a DNS record")
            };
            let towards_server = r.destination == server;
            format!(
                "{:?} {:?} {} {} {:?}",
                r.r#type, r.verdict, towards_server, dns.query, dns.ips
            )
        })
        .collect();
    assert_eq!(
        logged,
        [
            "Request Forwarded true api.example. []",
            "Response Forwarded false api.example. [192.0.2.7]",
            "Request Denied true other.example. []",
        ]
    );
}
