//! What the proxies tell about each request and response they see, as Cilium's proxies write
//! access log records that Hubble turns into L7 flows: who sent the message to whom, what the
//! policy made of it, and the HTTP or DNS fields.

use std::net::{IpAddr, SocketAddrV4};
use std::time::{Duration, SystemTime};

use policy::rule::Direction;

/// Whether a record is about a request or its response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordType {
    Request,
    Response,
}

/// What became of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Passed on (for a response: delivered to the client, whoever wrote it).
    Forwarded,
    /// Refused by the L7 rules.
    Denied,
    /// The proxy could not pass it on.
    Error,
}

/// What carried the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Udp,
}

/// One access log record.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    pub r#type: RecordType,
    /// Whose policy redirected the connection: the client's going out (egress), the server's
    /// coming in (ingress). Hubble's traffic direction.
    pub direction: Direction,
    pub verdict: Verdict,
    pub time: SystemTime,
    /// The message's sender: the client for a request, the server for a response.
    pub source: SocketAddrV4,
    pub destination: SocketAddrV4,
    pub transport: Transport,
    pub l7: L7Record,
}

/// The application protocol's part of a record.
#[derive(Clone, Debug, PartialEq)]
pub enum L7Record {
    Http(HttpRecord),
    Dns(DnsRecord),
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRecord {
    pub method: String,
    /// `http://host/path?query`, as Envoy logs it.
    pub url: String,
    /// `HTTP/1.1`.
    pub protocol: String,
    /// The response's status; 0 in a request's record.
    pub code: u16,
    /// The request's headers (both records carry them, as Envoy's do).
    pub headers: Vec<(String, String)>,
    /// From the request to the response's head; zero in a request's record.
    pub latency: Duration,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DnsRecord {
    /// The name asked, fully qualified (`api.github.com.`).
    pub query: String,
    /// The types asked (`A`).
    pub qtypes: Vec<String>,
    /// The addresses an answer gave.
    pub ips: Vec<IpAddr>,
    /// The lowest TTL of those addresses' records.
    pub ttl: u32,
    /// The CNAME targets on the way, fully qualified.
    pub cnames: Vec<String>,
    /// The answer's response code; 0 in a query's record.
    pub rcode: u16,
    /// The types of the answer's records.
    pub rrtypes: Vec<String>,
}
