//! The DNS proxy, as Cilium's: a pod's DNS traffic that its egress policy's `rules.dns`
//! redirects comes here (UDP and TCP TPROXY to one port). A query for a name no rule allows gets `REFUSED`
//! (Cilium's default `--tofqdns-dns-reject-response-code`); an allowed one goes on to the
//! server the pod asked, from the pod's own address, and the answer's addresses are handed to
//! [`Policies::learned`] and enforced before the pod sees the answer, so its first connection
//! to them already meets the `toFQDNs` rules.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::RData;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg};
use policy::l7::L7Request;
use policy::rule::Direction;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::accesslog::{DnsRecord, L7Record, LogRecord, RecordType, Transport, Verdict};
use crate::http::{Connection, Policies};
use crate::plumbing::upstream_mark;
use crate::socket::connect_as;

/// How long the server the pod asked has to answer (Cilium's `--tofqdns-proxy-response-max-delay`
/// is about the same).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a DNS-over-TCP connection may sit without a query.
const TCP_IDLE: Duration = Duration::from_secs(60);
/// The largest DNS message over UDP with EDNS.
const MAX_MESSAGE: usize = 65_535;

/// A query as the proxy received it.
#[derive(Debug)]
struct Query {
    connection: Connection,
    bytes: Vec<u8>,
}

/// Answers queries on `socket` (a transparent UDP listener) until `cancel` fires.
pub async fn serve_dns(socket: UdpSocket, policies: Arc<dyn Policies>, cancel: CancellationToken) {
    let mut queries = JoinSet::new();
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let received = tokio::select! {
            () = cancel.cancelled() => return,
            readable = socket.readable() => match readable {
                Ok(()) => socket.try_io(Interest::READABLE, || receive(&socket, &mut buf)),
                Err(error) => Err(error),
            },
            Some(_) = queries.join_next() => continue,
        };
        match received {
            Ok(query) => {
                queries.spawn(answer(query, Arc::clone(&policies)));
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => tracing::warn!(%error, "dns proxy receive failed"),
        }
    }
}

/// One datagram with the destination the client sent it to (`IP_ORIGDSTADDR`).
fn receive(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Query> {
    let mut control = nix::cmsg_space!(nix::libc::sockaddr_in);
    let mut iov = [io::IoSliceMut::new(buf)];
    let message = recvmsg::<SockaddrIn>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )
    .map_err(io::Error::from)?;
    let len = message.bytes;
    let client = message
        .address
        .map(|a| SocketAddrV4::new(a.ip(), a.port()))
        .ok_or_else(|| io::Error::other("a datagram without a source"))?;
    let server = message
        .cmsgs()
        .map_err(io::Error::from)?
        .find_map(|cmsg| match cmsg {
            ControlMessageOwned::Ipv4OrigDstAddr(addr) => Some(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr)),
                u16::from_be(addr.sin_port),
            )),
            _ => None,
        })
        .ok_or_else(|| io::Error::other("a datagram without its original destination"))?;
    let bytes = iov[0][..len].to_vec();
    Ok(Query {
        connection: Connection { client, server },
        bytes,
    })
}

async fn answer(query: Query, policies: Arc<dyn Policies>) {
    let Connection { client, server } = query.connection;
    let reply = respond(
        query.connection,
        Transport::Udp,
        &query.bytes,
        &*policies,
        async |bytes| forward_udp(query.connection, bytes).await,
    )
    .await;
    if let Some(reply) = reply
        && let Err(error) = reply_from(server, client, &reply).await
    {
        tracing::warn!(%client, %server, %error, "dns answer not delivered");
    }
}

/// Decides one query, whatever carried it: the answer to send back (the server's, through
/// `forward`, or `REFUSED`), or nothing when there is none to give. Logs the query and its
/// answer, and has the answer's addresses enforced before returning it.
async fn respond(
    connection: Connection,
    transport: Transport,
    bytes: &[u8],
    policies: &dyn Policies,
    forward: impl AsyncFnOnce(&[u8]) -> io::Result<Vec<u8>>,
) -> Option<Vec<u8>> {
    let Connection { client, server } = connection;
    let request = match Message::from_vec(bytes) {
        Ok(message) if message.metadata.message_type == MessageType::Query => message,
        Ok(_) | Err(_) => {
            tracing::debug!(%client, %server, "not a DNS query: dropped");
            return None;
        }
    };
    let name = request
        .queries
        .first()
        .map(|q| q.name.to_lowercase().to_ascii())
        .unwrap_or_default();
    let name = name.trim_end_matches('.');
    let allowed = policies.allows(Direction::Egress, &connection, &L7Request::Dns(name));
    let asked = query_record(&request);
    let log = |r#type, verdict, dns: DnsRecord| {
        let (source, destination) = match r#type {
            RecordType::Request => (client, server),
            RecordType::Response => (server, client),
        };
        policies.log(LogRecord {
            r#type,
            direction: Direction::Egress,
            verdict,
            time: SystemTime::now(),
            source,
            destination,
            transport,
            l7: L7Record::Dns(dns),
        });
    };
    let verdict = if allowed {
        Verdict::Forwarded
    } else {
        Verdict::Denied
    };
    log(RecordType::Request, verdict, asked.clone());
    if !allowed {
        tracing::info!(%client, %server, name, "dns query denied by L7 policy");
        return match refused(&request) {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                tracing::warn!(%error, "cannot encode a REFUSED answer");
                None
            }
        };
    }
    match forward(bytes).await {
        Ok(response) => {
            // Parsed once for both: what the answer teaches and what the access log says.
            match Message::from_vec(&response) {
                Ok(message) => {
                    learn(policies, &message).await;
                    log(
                        RecordType::Response,
                        Verdict::Forwarded,
                        answer_record(asked, &message),
                    );
                }
                Err(_) => log(RecordType::Response, Verdict::Forwarded, asked),
            }
            Some(response)
        }
        Err(error) => {
            tracing::warn!(%client, %server, name, %error, "dns upstream failed");
            log(RecordType::Response, Verdict::Error, asked);
            None
        }
    }
}

/// Serves DNS over TCP on `listener` (the same port's TCP TPROXY target) until `cancel`
/// fires: each connection's length-prefixed queries are decided one by one, an allowed one
/// forwarded over its own connection to the server the client asked, from the client's
/// address.
pub async fn serve_dns_tcp(
    listener: TcpListener,
    policies: Arc<dyn Policies>,
    cancel: CancellationToken,
) {
    crate::socket::accept_redirected(listener, cancel, |stream, connection| {
        serve_tcp_connection(stream, connection, Arc::clone(&policies))
    })
    .await;
}

/// One client connection over TCP: queries until the client closes, an unanswerable query or
/// an idle minute.
pub async fn serve_tcp_connection(
    mut stream: TcpStream,
    connection: Connection,
    policies: Arc<dyn Policies>,
) {
    loop {
        let query = match tokio::time::timeout(TCP_IDLE, read_message(&mut stream)).await {
            Ok(Ok(Some(query))) => query,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(error)) => {
                tracing::debug!(client = %connection.client, %error, "dns over tcp: bad read");
                return;
            }
        };
        let reply = respond(
            connection,
            Transport::Tcp,
            &query,
            &*policies,
            async |bytes| forward_tcp(connection, bytes).await,
        )
        .await;
        let Some(reply) = reply else { return };
        if let Err(error) = write_message(&mut stream, &reply).await {
            tracing::debug!(client = %connection.client, %error, "dns over tcp: answer not sent");
            return;
        }
    }
}

/// Asks over TCP, from the client's address.
async fn forward_tcp(connection: Connection, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let Connection { client, server } = connection;
    let exchange = async {
        let mut upstream = connect_as(client, server, upstream_mark(Direction::Egress)).await?;
        write_message(&mut upstream, bytes).await?;
        read_message(&mut upstream).await?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed without answering",
            )
        })
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer from the server"))?
}

/// One DNS message over TCP: a two-byte length, then the message (RFC 1035 4.2.2); `None` at a
/// clean end of stream.
async fn read_message(stream: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut message).await?;
    Ok(Some(message))
}

async fn write_message(stream: &mut TcpStream, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a DNS message over 64 KiB"))?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await
}

/// Asks the server the client asked, from the client's address (its own port when free, so
/// the answer is recognised as the proxy's on its way back).
async fn forward_udp(connection: Connection, bytes: &[u8]) -> io::Result<Vec<u8>> {
    let Connection { client, server } = connection;
    let mark = upstream_mark(Direction::Egress);
    let socket = match transparent_udp(client, Some(mark)) {
        Err(error) if error.kind() == io::ErrorKind::AddrInUse => {
            transparent_udp(SocketAddrV4::new(*client.ip(), 0), Some(mark))?
        }
        result => result?,
    };
    socket.connect(server).await?;
    socket.send(bytes).await?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    let len = tokio::time::timeout(UPSTREAM_TIMEOUT, socket.recv(&mut buf))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer from the server"))??;
    buf.truncate(len);
    Ok(buf)
}

/// Hands the answer's IPv4 addresses, by every name they answer for and with their TTL, to
/// the agent and waits until it enforces them.
async fn learn(policies: &dyn Policies, message: &Message) {
    if message.metadata.response_code != ResponseCode::NoError {
        return;
    }
    let asked: Vec<String> = message
        .queries
        .iter()
        .map(|q| q.name.to_lowercase().to_ascii())
        .collect();
    let mut learned: Vec<(String, Ipv4Addr, u32)> = Vec::new();
    for record in &message.answers {
        if let RData::A(a) = &record.data {
            // The address answers for the name asked and for any CNAME on the way to it.
            let owner = record.name.to_lowercase().to_ascii();
            for name in asked.iter().chain([&owner]) {
                let name = name.trim_end_matches('.').to_owned();
                match learned
                    .iter_mut()
                    .find(|(n, ip, _)| *n == name && *ip == a.0)
                {
                    Some(seen) => seen.2 = seen.2.min(record.ttl),
                    None => learned.push((name, a.0, record.ttl)),
                }
            }
        }
    }
    if !learned.is_empty() {
        policies.learned(learned).await;
    }
}

/// What the access log says of a query: the name and the types asked.
fn query_record(request: &Message) -> DnsRecord {
    DnsRecord {
        query: request
            .queries
            .first()
            .map(|q| q.name.to_lowercase().to_ascii())
            .unwrap_or_default(),
        qtypes: request
            .queries
            .iter()
            .map(|q| q.query_type.to_string())
            .collect(),
        ..DnsRecord::default()
    }
}

/// `asked` completed with what the answer says: its code, addresses (with their lowest TTL),
/// CNAME targets and record types.
fn answer_record(asked: DnsRecord, message: &Message) -> DnsRecord {
    let mut record = DnsRecord {
        rcode: u16::from(message.metadata.response_code),
        ..asked
    };
    let mut ttl = None::<u32>;
    for answer in &message.answers {
        record.rrtypes.push(answer.record_type().to_string());
        let ip = match &answer.data {
            RData::A(a) => Some(std::net::IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(std::net::IpAddr::V6(aaaa.0)),
            RData::CNAME(cname) => {
                record.cnames.push(cname.0.to_lowercase().to_ascii());
                None
            }
            _ => None,
        };
        if let Some(ip) = ip {
            record.ips.push(ip);
            ttl = Some(ttl.map_or(answer.ttl, |t| t.min(answer.ttl)));
        }
    }
    record.ttl = ttl.unwrap_or_default();
    record
}

fn refused(request: &Message) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut response = Message::error_msg(
        request.metadata.id,
        request.metadata.op_code,
        ResponseCode::Refused,
    );
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_queries(request.queries.iter().cloned());
    response.to_vec()
}

/// Sends `bytes` to `client` from `server`'s address, as the server would have.
async fn reply_from(server: SocketAddrV4, client: SocketAddrV4, bytes: &[u8]) -> io::Result<()> {
    let socket = transparent_udp(server, None)?;
    socket.send_to(bytes, client).await?;
    Ok(())
}

/// A UDP socket bound to `addr`, which need not be the node's (`IP_TRANSPARENT`).
pub(crate) fn transparent_udp(addr: SocketAddrV4, mark: Option<u32>) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_ip_transparent_v4(true)?;
    if let Some(mark) = mark {
        socket.set_mark(mark)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(addr).into())?;
    UdpSocket::from_std(socket.into())
}

#[cfg(test)]
mod tests;
