//! The L7 proxy's access log records as flows, the way Hubble's L7 parser (`parser/seven`)
//! makes them: type `L7`, event type 129 (access log), a request `->` and its response `<-`,
//! `DROPPED` for what the rules denied, and Hubble's summaries (`HTTP/1.1 PUT http://...`,
//! `DNS Answer "1.2.3.4" TTL: 60 (Proxy api.github.com. A)`).

use std::time::Duration;

use proxy::accesslog::{
    DnsRecord, HttpRecord, L7Record, LogRecord, RecordType, Transport, Verdict as Said,
};
use schema::flow::{
    self, CiliumEventType, Flow, FlowType, IpVersion, L7FlowType, Layer4, Layer7, TrafficDirection,
    Verdict, layer4, layer7,
};

use crate::decode::{monitor, timestamp};
use crate::enrich::{Lookup, endpoint};

/// Cilium's `accesslog.DNSSourceProxy`: the answer was seen by the DNS proxy.
const DNS_SOURCE_PROXY: &str = "proxy";

/// The security identities of a record's two ends, as the ipcache gives them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Identities {
    pub source: u32,
    pub destination: u32,
}

/// One access log record into a flow of `node_name`, its ends enriched from `lookup`.
pub fn flow(
    record: &LogRecord,
    identities: Identities,
    node_name: &str,
    lookup: &impl Lookup,
) -> Flow {
    let (sport, dport) = (
        u32::from(record.source.port()),
        u32::from(record.destination.port()),
    );
    let protocol = match record.transport {
        Transport::Tcp => layer4::Protocol::Tcp(flow::Tcp {
            source_port: sport,
            destination_port: dport,
            flags: None,
        }),
        Transport::Udp => layer4::Protocol::Udp(flow::Udp {
            source_port: sport,
            destination_port: dport,
        }),
    };
    let response = record.r#type == RecordType::Response;
    let latency = match &record.l7 {
        L7Record::Http(http) if response => http.latency,
        _ => Duration::ZERO,
    };
    let mut source = flow::Endpoint {
        identity: identities.source,
        ..flow::Endpoint::default()
    };
    endpoint(&mut source, *record.source.ip(), lookup);
    let mut destination = flow::Endpoint {
        identity: identities.destination,
        ..flow::Endpoint::default()
    };
    endpoint(&mut destination, *record.destination.ip(), lookup);
    let mut flow = Flow {
        time: Some(timestamp(record.time)),
        verdict: match record.verdict {
            Said::Forwarded => Verdict::Forwarded,
            Said::Denied => Verdict::Dropped,
            Said::Error => Verdict::Error,
        }
        .into(),
        ip: Some(flow::Ip {
            source: record.source.ip().to_string(),
            destination: record.destination.ip().to_string(),
            ip_version: IpVersion::IPv4.into(),
            ..flow::Ip::default()
        }),
        l4: Some(Layer4 {
            protocol: Some(protocol),
        }),
        source: Some(source),
        destination: Some(destination),
        r#type: FlowType::L7.into(),
        node_name: node_name.to_owned(),
        l7: Some(Layer7 {
            r#type: if response {
                L7FlowType::Response
            } else {
                L7FlowType::Request
            }
            .into(),
            latency_ns: u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX),
            record: Some(match &record.l7 {
                L7Record::Http(http) => layer7::Record::Http(http_fields(http, response)),
                L7Record::Dns(dns) => layer7::Record::Dns(dns_fields(dns, response)),
            }),
        }),
        is_reply: Some(response),
        event_type: Some(CiliumEventType {
            r#type: monitor::ACCESS_LOG,
            sub_type: 0,
        }),
        traffic_direction: match record.direction {
            policy::rule::Direction::Ingress => TrafficDirection::Ingress,
            policy::rule::Direction::Egress => TrafficDirection::Egress,
        }
        .into(),
        ..Flow::default()
    };
    #[expect(
        deprecated,
        reason = "Hubble's printers print the summary and older clients read `reply`"
    )]
    {
        flow.reply = response;
        flow.summary = match &record.l7 {
            L7Record::Http(http) => http_summary(http, response, latency),
            L7Record::Dns(dns) => dns_summary(dns, response),
        };
    }
    flow
}

/// A request carries no status.
fn http_fields(http: &HttpRecord, response: bool) -> flow::Http {
    let mut headers: Vec<flow::HttpHeader> = http
        .headers
        .iter()
        .map(|(key, value)| flow::HttpHeader {
            key: canonical_header(key),
            value: value.clone(),
        })
        .collect();
    // Hubble lists them by key, as Go's `http.Header` map iterates them sorted.
    headers.sort_by(|a, b| a.key.cmp(&b.key));
    flow::Http {
        code: if response { u32::from(http.code) } else { 0 },
        method: http.method.clone(),
        url: http.url.clone(),
        protocol: http.protocol.clone(),
        headers,
    }
}

/// Go's canonical header key (`x-request-id` -> `X-Request-Id`), as Cilium's access log keeps
/// them.
fn canonical_header(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = true;
    for c in key.chars() {
        out.push(if upper {
            c.to_ascii_uppercase()
        } else {
            c.to_ascii_lowercase()
        });
        upper = c == '-';
    }
    out
}

/// A query carries only what was asked.
fn dns_fields(dns: &DnsRecord, response: bool) -> flow::Dns {
    let asked = flow::Dns {
        query: dns.query.clone(),
        observation_source: DNS_SOURCE_PROXY.to_owned(),
        qtypes: dns.qtypes.clone(),
        ..flow::Dns::default()
    };
    if !response {
        return asked;
    }
    flow::Dns {
        ips: dns.ips.iter().map(ToString::to_string).collect(),
        ttl: dns.ttl,
        cnames: dns.cnames.clone(),
        rcode: u32::from(dns.rcode),
        rrtypes: dns.rrtypes.clone(),
        ..asked
    }
}

/// `HTTP/1.1 PUT http://...`, or for a response `HTTP/1.1 403 0ms (PUT http://...)`.
fn http_summary(http: &HttpRecord, response: bool, latency: Duration) -> String {
    let request = format!("{} {}", http.method, http.url);
    if response {
        format!(
            "{} {} {}ms ({request})",
            http.protocol,
            http.code,
            latency.as_millis()
        )
    } else {
        format!("{} {request}", http.protocol)
    }
}

/// `DNS Query api.github.com. A`, or for an answer `DNS Answer "1.2.3.4" TTL: 60 (Proxy
/// api.github.com. A)`, `DNS Answer RCode: Non-Existent Domain TTL: 0 (...)`.
fn dns_summary(dns: &DnsRecord, response: bool) -> String {
    let qtypes = dns.qtypes.join(",");
    if !response {
        return format!("DNS Query {} {qtypes}", dns.query);
    }
    let answer = if dns.rcode == 0 {
        let mut parts = Vec::new();
        if !dns.ips.is_empty() {
            let ips: Vec<String> = dns.ips.iter().map(ToString::to_string).collect();
            parts.push(format!("{:?}", ips.join(",")));
        }
        if !dns.cnames.is_empty() {
            parts.push(format!("CNAMEs: {:?}", dns.cnames.join(",")));
        }
        parts.join(" ")
    } else {
        format!("RCode: {}", rcode_name(dns.rcode))
    };
    format!(
        "DNS Answer {answer} TTL: {} (Proxy {} {qtypes})",
        dns.ttl, dns.query
    )
}

/// gopacket's names of DNS response codes, which Hubble prints and labels metrics with.
pub fn rcode_name(rcode: u16) -> &'static str {
    match rcode {
        0 => "No Error",
        1 => "Format Error",
        2 => "Server Failure",
        3 => "Non-Existent Domain",
        4 => "Not Implemented",
        5 => "Query Refused",
        6 => "Name Exists when it should not",
        7 => "RR Set Exists when it should not",
        8 => "RR Set that should exist does not",
        9 => "Not Authorized",
        10 => "Name not contained in zone",
        16 => "Bad OPT Version",
        17 => "Key not recognized",
        18 => "Signature out of time window",
        19 => "Bad TKEY Mode",
        20 => "Duplicate key name",
        21 => "Algorithm not supported",
        22 => "Bad Truncation",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests;
