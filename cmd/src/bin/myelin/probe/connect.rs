//! One probe: a real connection from inside a namespace, judged the way a policy drop shows on
//! the wire. A dropped packet is silence, so a timeout means denied; a reset or an ICMP port
//! unreachable means the packets got through but nothing listens (refused).

use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use policy::mapstate::{PROTO_SCTP, PROTO_TCP, PROTO_UDP};
use policy::trace::Probe;

use super::timeout::show;
use crate::netns::{self, NetnsError};
use crate::sctp::{self, SctpError};

/// Enough for any status line and headers plus the built-in server's short body.
const MAX_RESPONSE: usize = 64 * 1024;
/// UDP datagrams sent before giving up, spread over the timeout, in case one is lost.
const UDP_ATTEMPTS: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Allowed,
    Denied,
    Refused,
}

impl Verdict {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::Refused => "refused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub(crate) verdict: Verdict,
    /// What decided it: the HTTP status line, the socket error, how long nothing came.
    pub(crate) detail: String,
    pub(crate) http_status: Option<u16>,
    /// The answer's body (TCP, SCTP) or the datagram that came back (UDP), as text.
    pub(crate) body: Option<String>,
}

impl Outcome {
    fn new(verdict: Verdict, detail: impl Into<String>) -> Outcome {
        Outcome {
            verdict,
            detail: detail.into(),
            http_status: None,
            body: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Sctp(#[from] SctpError),
    #[error("open a {proto} socket to probe {addr}")]
    Socket {
        proto: &'static str,
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot probe {0}: use TCP, UDP or SCTP")]
    Protocol(Probe),
    #[error("--dns {0:?}: {1}")]
    DnsName(String, String),
}

/// What a probe sends: the HTTP request of a TCP or SCTP probe once connected; for UDP, a
/// DNS query for `dns` if set, else a datagram to echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    /// The `Host` header; the address probed when `None`.
    pub(crate) host: Option<String>,
    pub(crate) dns: Option<String>,
}

impl Default for Request {
    fn default() -> Request {
        Request {
            method: "GET".to_owned(),
            path: "/".to_owned(),
            host: None,
            dns: None,
        }
    }
}

/// Probes `ip` on `probe`'s port from the namespace at `netns` (the caller's when `None`),
/// waiting at most `timeout` for each step (connect, then the answer).
pub(crate) fn probe(
    netns: Option<&Path>,
    ip: IpAddr,
    probe: Probe,
    timeout: Duration,
) -> Result<Outcome, ProbeError> {
    probe_with(netns, ip, probe, timeout, &Request::default())
}

/// [`probe`], sending `request` on a TCP or SCTP connection.
pub(crate) fn probe_with(
    netns: Option<&Path>,
    ip: IpAddr,
    probe: Probe,
    timeout: Duration,
    request: &Request,
) -> Result<Outcome, ProbeError> {
    let addr = SocketAddr::new(ip, probe.port);
    netns::run_in(netns, || match probe.proto {
        PROTO_TCP => match &request.dns {
            Some(name) => dns_tcp(addr, timeout, name),
            None => Ok(tcp(addr, timeout, request)),
        },
        PROTO_UDP => match &request.dns {
            Some(name) => dns(addr, timeout, name),
            None => udp(addr, timeout),
        },
        PROTO_SCTP => sctp(addr, timeout, request),
        _ => Err(ProbeError::Protocol(probe)),
    })?
}

fn tcp(addr: SocketAddr, timeout: Duration, request: &Request) -> Outcome {
    match TcpStream::connect_timeout(&addr, timeout) {
        Ok(stream) => http_request(stream, addr, timeout, request),
        Err(e) => connect_failed(&e, timeout),
    }
}

fn sctp(addr: SocketAddr, timeout: Duration, request: &Request) -> Result<Outcome, ProbeError> {
    let socket = sctp::socket(addr)?;
    Ok(match socket.connect_timeout(&addr.into(), timeout) {
        // The built-in server speaks HTTP on SCTP ports too.
        Ok(()) => http_request(socket.into(), addr, timeout, request),
        Err(e) => connect_failed(&e, timeout),
    })
}

fn connect_failed(e: &io::Error, timeout: Duration) -> Outcome {
    match e.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock => Outcome::new(
            Verdict::Denied,
            format!("no connection within {}", show(timeout)),
        ),
        ErrorKind::ConnectionRefused => Outcome::new(Verdict::Refused, "connection refused"),
        ErrorKind::ConnectionReset => Outcome::new(Verdict::Refused, "connection reset"),
        // Unreachable, blackholed or prohibited routes: nothing was delivered either.
        _ => Outcome::new(Verdict::Denied, format!("connect: {e}")),
    }
}

/// Sends `request` on an established connection and reads the answer. A 403 is what the L7
/// proxy answers for a request its rules deny, so it counts as denied, as in `policy trace`.
fn http_request(
    mut stream: TcpStream,
    addr: SocketAddr,
    timeout: Duration,
    request: &Request,
) -> Outcome {
    let host = match (&request.host, addr.ip()) {
        (Some(host), _) => host.clone(),
        (None, IpAddr::V4(ip)) => ip.to_string(),
        (None, IpAddr::V6(ip)) => format!("[{ip}]"),
    };
    let request = format!(
        "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: myelin-probe\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        request.method, request.path
    );
    let answer = stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .and_then(|()| stream.write_all(request.as_bytes()))
        .map_err(|e| (Vec::new(), e))
        .and_then(|()| read_answer(&mut stream));
    let (bytes, error) = match answer {
        Ok(bytes) => (bytes, None),
        Err((bytes, e)) => (bytes, Some(e)),
    };
    if !bytes.is_empty() {
        return http_outcome(&bytes);
    }
    match error {
        None => Outcome::new(Verdict::Allowed, "connected; closed without an answer"),
        Some(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Outcome::new(
            Verdict::Allowed,
            format!("connected; no answer within {}", show(timeout)),
        ),
        Some(e) if e.kind() == ErrorKind::ConnectionReset => {
            Outcome::new(Verdict::Refused, "connection reset")
        }
        Some(e) => Outcome::new(Verdict::Allowed, format!("connected; then {e}")),
    }
}

/// Reads until the connection closes, the body announced by `Content-Length` is complete or
/// `MAX_RESPONSE` bytes came. On an error, returns what was read so far with it.
fn read_answer(stream: &mut impl Read) -> Result<Vec<u8>, (Vec<u8>, io::Error)> {
    let mut bytes = Vec::new();
    let mut chunk = [0; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(bytes),
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err((bytes, e)),
        }
        if bytes.len() >= MAX_RESPONSE || http_complete(&bytes) {
            return Ok(bytes);
        }
    }
}

fn http_complete(bytes: &[u8]) -> bool {
    let Some((head, body)) = split_head(bytes) else {
        return false;
    };
    content_length(head).is_some_and(|len| body.len() >= len)
}

fn split_head(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&bytes[..end]).ok()?;
    Some((head, &bytes[end + 4..]))
}

fn content_length(head: &str) -> Option<usize> {
    head.lines().skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    })
}

/// Judges what came back on a connection that was accepted.
pub(super) fn http_outcome(bytes: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(bytes);
    let status_line = text.lines().next().unwrap_or_default();
    let status: Option<u16> = status_line
        .strip_prefix("HTTP/")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok());
    let Some(status) = status else {
        return Outcome {
            body: Some(text.into_owned()),
            ..Outcome::new(Verdict::Allowed, "connected; the answer is not HTTP")
        };
    };
    let body = split_head(bytes).map(|(_, body)| String::from_utf8_lossy(body).into_owned());
    Outcome {
        verdict: if status == 403 {
            Verdict::Denied
        } else {
            Verdict::Allowed
        },
        detail: status_line.to_owned(),
        http_status: Some(status),
        body,
    }
}

/// Sends a datagram and waits for any answer (the built-in server echoes), resending a few
/// times within the timeout. The kernel reports an ICMP port unreachable on the connected
/// socket as a refused connection.
/// Asks for `name`'s A records: an answer is allowed (its addresses are the body), `REFUSED`
/// is what the DNS proxy answers for a name its rules deny, so it counts as denied.
fn dns(addr: SocketAddr, timeout: Duration, name: &str) -> Result<Outcome, ProbeError> {
    let socket_error = |source| ProbeError::Socket {
        proto: "udp",
        addr,
        source,
    };
    let bytes = dns_query(name)?;
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(socket_error)?;
    if let Err(e) = socket.connect(addr) {
        return Ok(connect_failed(&e, timeout));
    }
    socket
        .set_read_timeout(Some((timeout / UDP_ATTEMPTS).max(Duration::from_millis(1))))
        .map_err(socket_error)?;
    let mut buf = vec![0; 64 * 1024];
    for _ in 0..UDP_ATTEMPTS {
        match socket.send(&bytes).and_then(|_| socket.recv(&mut buf)) {
            Ok(n) => return Ok(dns_outcome(&buf[..n])),
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                return Ok(Outcome::new(Verdict::Refused, "port unreachable"));
            }
            Err(e) => return Ok(Outcome::new(Verdict::Denied, format!("udp: {e}"))),
        }
    }
    Ok(Outcome::new(
        Verdict::Denied,
        format!("no answer within {}", show(timeout)),
    ))
}

/// [`dns`] over TCP (RFC 1035 4.2.2: each message after its two-byte length), as a resolver
/// asks when an answer over UDP was truncated.
fn dns_tcp(addr: SocketAddr, timeout: Duration, name: &str) -> Result<Outcome, ProbeError> {
    let bytes = dns_query(name)?;
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(stream) => stream,
        Err(e) => return Ok(connect_failed(&e, timeout)),
    };
    let mut exchange = || -> std::io::Result<Vec<u8>> {
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let len = u16::try_from(bytes.len()).map_err(std::io::Error::other)?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        stream.write_all(&framed)?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len)?;
        let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut answer)?;
        Ok(answer)
    };
    Ok(match exchange() {
        Ok(answer) => dns_outcome(&answer),
        Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Outcome::new(
            Verdict::Denied,
            format!("no answer within {}", show(timeout)),
        ),
        Err(e) => Outcome::new(Verdict::Denied, format!("tcp: {e}")),
    })
}

/// A query for `name`'s A records.
fn dns_query(name: &str) -> Result<Vec<u8>, ProbeError> {
    use hickory_proto::op::{Message, MessageType, OpCode, Query};
    use hickory_proto::rr::{Name, RecordType};
    let qname = Name::from_ascii(format!("{}.", name.trim_end_matches('.')))
        .map_err(|e| ProbeError::DnsName(name.to_owned(), e.to_string()))?;
    let mut query = Message::new(
        u16::try_from(std::process::id() & 0xffff).unwrap_or(0),
        MessageType::Query,
        OpCode::Query,
    );
    query.metadata.recursion_desired = true;
    query.add_query(Query::query(qname, RecordType::A));
    query
        .to_vec()
        .map_err(|e| ProbeError::DnsName(name.to_owned(), e.to_string()))
}

/// What an answer means: `REFUSED` is denied, any other answer allowed with its addresses.
fn dns_outcome(bytes: &[u8]) -> Outcome {
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RData;
    let Ok(answer) = Message::from_vec(bytes) else {
        return Outcome::new(Verdict::Allowed, "answered, not DNS");
    };
    let code = answer.metadata.response_code;
    let addresses: Vec<String> = answer
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    let verdict = if code == ResponseCode::Refused {
        Verdict::Denied
    } else {
        Verdict::Allowed
    };
    Outcome {
        body: Some(addresses.join(" ")),
        ..Outcome::new(verdict, format!("dns {code}"))
    }
}

fn udp(addr: SocketAddr, timeout: Duration) -> Result<Outcome, ProbeError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let unspecified: IpAddr = match addr {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket_error = |source| ProbeError::Socket {
        proto: "udp",
        addr,
        source,
    };
    let socket = UdpSocket::bind((unspecified, 0)).map_err(socket_error)?;
    if let Err(e) = socket.connect(addr) {
        return Ok(connect_failed(&e, timeout));
    }
    socket
        .set_read_timeout(Some((timeout / UDP_ATTEMPTS).max(Duration::from_millis(1))))
        .map_err(socket_error)?;
    let payload = format!(
        "myelin probe {}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut buf = [0; 2048];
    for _ in 0..UDP_ATTEMPTS {
        let answer = socket
            .send(payload.as_bytes())
            .and_then(|_| socket.recv(&mut buf));
        match answer {
            Ok(n) => {
                let body = String::from_utf8_lossy(&buf[..n]).into_owned();
                let detail = if body == payload {
                    "echoed".to_owned()
                } else {
                    format!("answered {n} bytes")
                };
                return Ok(Outcome {
                    body: Some(body),
                    ..Outcome::new(Verdict::Allowed, detail)
                });
            }
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                return Ok(Outcome::new(Verdict::Refused, "port unreachable"));
            }
            Err(e) => return Ok(Outcome::new(Verdict::Denied, format!("udp: {e}"))),
        }
    }
    Ok(Outcome::new(
        Verdict::Denied,
        format!("no answer within {}", show(timeout)),
    ))
}
