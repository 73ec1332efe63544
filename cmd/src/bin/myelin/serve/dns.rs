//! The built-in server's DNS: a UDP datagram that is a DNS query is answered, as a pod running
//! CoreDNS would: from the records it was given (`--dns-record NAME=IP`), else by the upstream
//! server (`--dns-upstream`, CoreDNS's `forward`), else `NXDOMAIN`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use tokio::net::UdpSocket;

/// The TTL of the records this server owns, unless told another.
pub(crate) const DEFAULT_TTL: u32 = 60;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// What the server knows: its own records and where to ask about the rest.
#[derive(Clone, Debug)]
pub(crate) struct Zone {
    /// Lowercase names without the trailing dot.
    pub(crate) records: BTreeMap<String, Vec<Ipv4Addr>>,
    pub(crate) upstream: Option<SocketAddr>,
    /// The TTL of the answers from `records`.
    pub(crate) ttl: u32,
}

impl Default for Zone {
    fn default() -> Zone {
        Zone {
            records: BTreeMap::new(),
            upstream: None,
            ttl: DEFAULT_TTL,
        }
    }
}

/// `NAME=IP`.
pub(crate) fn parse_record(text: &str) -> Result<(String, Ipv4Addr), String> {
    let (name, ip) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not NAME=IP"))?;
    let ip = ip
        .parse()
        .map_err(|_| format!("{ip:?} in {text:?} is not an IPv4 address"))?;
    Ok((name.trim_end_matches('.').to_ascii_lowercase(), ip))
}

/// `IP` (port 53) or `IP:PORT`.
pub(crate) fn parse_upstream(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| {
            text.parse::<Ipv4Addr>()
                .map(|ip| SocketAddr::from((ip, 53)))
        })
        .map_err(|_| format!("{text:?} is not IP or IP:PORT"))
}

/// A DNS query in `datagram`, if it is one.
pub(crate) fn query(datagram: &[u8]) -> Option<Message> {
    Message::from_vec(datagram)
        .ok()
        .filter(|m| m.metadata.message_type == MessageType::Query && !m.queries.is_empty())
}

/// The answer to `query`, encoded.
pub(crate) async fn answer(zone: &Zone, query: &Message, datagram: &[u8]) -> Option<Vec<u8>> {
    let question = query.queries.first()?;
    let name = question.name.to_lowercase().to_ascii();
    let name = name.trim_end_matches('.');
    let mut response = Message::response(query.metadata.id, query.metadata.op_code);
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_queries(query.queries.iter().cloned());
    if let Some(ips) = zone.records.get(name) {
        response.metadata.authoritative = true;
        if question.query_type == RecordType::A {
            response.add_answers(
                ips.iter().map(|ip| {
                    Record::from_rdata(question.name.clone(), zone.ttl, RData::A(A(*ip)))
                }),
            );
        }
        return response.to_vec().ok();
    }
    if let Some(upstream) = zone.upstream {
        match forward(upstream, datagram).await {
            Ok(bytes) => return Some(bytes),
            Err(error) => {
                tracing::warn!(%upstream, name, %error, "upstream DNS failed");
                response.metadata.response_code = ResponseCode::ServFail;
                return response.to_vec().ok();
            }
        }
    }
    response.metadata.response_code = ResponseCode::NXDomain;
    response.to_vec().ok()
}

async fn forward(upstream: SocketAddr, datagram: &[u8]) -> std::io::Result<Vec<u8>> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    socket.connect(upstream).await?;
    socket.send(datagram).await?;
    let mut buf = vec![0u8; 64 * 1024];
    let len = tokio::time::timeout(UPSTREAM_TIMEOUT, socket.recv(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
    buf.truncate(len);
    Ok(buf)
}

/// DNS over TCP on an accepted connection: each length-prefixed query answered in turn, until
/// the client closes.
pub(crate) async fn serve_tcp(mut stream: tokio::net::TcpStream, zone: &Zone) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut message).await.is_err() {
            return;
        }
        let Some(query) = query(&message) else {
            tracing::debug!("not a DNS query over TCP: closing");
            return;
        };
        let Some(answer) = answer(zone, &query, &message).await else {
            return;
        };
        let Ok(len) = u16::try_from(answer.len()) else {
            return;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
    }
}
