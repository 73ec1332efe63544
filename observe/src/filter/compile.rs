//! One `FlowFilter` as a list of checks, each the OR of one field's values.

use std::net::IpAddr;

use regex::Regex;
use schema::cidr::Cidr;
use schema::flow::{
    self, EventTypeFilter, Flow, FlowFilter, HttpHeader, NetworkInterface, TcpFlags, Workload,
    layer4, layer7,
};
use schema::labels::Selector;

use super::FilterError;
use super::label::{parse_selector, selector_matches};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Source,
    Destination,
}

#[derive(Debug, Clone)]
enum Check {
    Uuid(Vec<String>),
    Ip(Side, Vec<Cidr>),
    IpXlated(Vec<Cidr>),
    /// (namespace, pod name prefix); an empty namespace matches any.
    Pod(Side, Vec<(String, String)>),
    Service(Side, Vec<(String, String)>),
    Fqdn(Side, Vec<Regex>),
    Label(Side, Vec<Selector>),
    Workload(Side, Vec<Workload>),
    Cluster(Side, Vec<String>),
    Identity(Side, Vec<u32>),
    Port(Side, Vec<u32>),
    TrafficDirection(Vec<i32>),
    Verdict(Vec<i32>),
    DropReason(Vec<i32>),
    Interface(Vec<NetworkInterface>),
    EventType(Vec<EventTypeFilter>),
    HttpStatus(Vec<StatusMatch>),
    HttpMethod(Vec<String>),
    HttpPath(Vec<Regex>),
    HttpUrl(Vec<Regex>),
    HttpHeader(Vec<HttpHeader>),
    Protocol(Vec<String>),
    Reply(Vec<bool>),
    DnsQuery(Vec<Regex>),
    TcpFlags(Vec<TcpFlags>),
    NodeName(Vec<Regex>),
    NodeLabels(Vec<Selector>),
    IpVersion(Vec<i32>),
    TraceId(Vec<String>),
    IpTraceId(Vec<u64>),
    Encrypted(Vec<bool>),
}

/// `404` or `4+` (any 4xx).
#[derive(Debug, Clone, Copy)]
enum StatusMatch {
    Exact(u32),
    Class(u32),
}

#[derive(Debug, Clone)]
pub(super) struct Compiled {
    checks: Vec<Check>,
}

fn invalid(field: &'static str, value: &str, problem: impl ToString) -> FilterError {
    FilterError::Invalid {
        field,
        value: value.to_owned(),
        problem: problem.to_string(),
    }
}

fn each<T>(
    field: &'static str,
    values: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, FilterError> {
    values
        .iter()
        .map(|v| parse(v).map_err(|problem| invalid(field, v, problem)))
        .collect()
}

fn cidr(text: &str) -> Result<Cidr, String> {
    Cidr::parse_prefix_or_addr(text).map_err(|e| e.to_string())
}

fn namespaced(text: &str) -> Result<(String, String), String> {
    Ok(match text.split_once('/') {
        Some((ns, name)) => (ns.to_owned(), name.to_owned()),
        None => (String::new(), text.to_owned()),
    })
}

fn regex(text: &str) -> Result<Regex, String> {
    Regex::new(text).map_err(|e| e.to_string())
}

/// Hubble's wildcard patterns (`*.cilium.io`, `k8s*`): `*` matches within a name.
fn wildcard(text: &str) -> Result<Regex, String> {
    let pattern = regex::escape(text.trim_end_matches('.')).replace(r"\*", "[^.]*");
    Regex::new(&format!("^{pattern}\\.?$")).map_err(|e| e.to_string())
}

fn glob(text: &str) -> Result<Regex, String> {
    let pattern = regex::escape(text).replace(r"\*", ".*");
    Regex::new(&format!("^{pattern}$")).map_err(|e| e.to_string())
}

fn port(text: &str) -> Result<u32, String> {
    text.parse::<u16>()
        .map(u32::from)
        .map_err(|_| "not a port number".to_owned())
}

fn status(text: &str) -> Result<StatusMatch, String> {
    let bad = || "not an HTTP status (404) or class (4+)".to_owned();
    match text.strip_suffix('+') {
        Some(class) if class.len() == 1 => class.parse().map(StatusMatch::Class).map_err(|_| bad()),
        Some(_) => Err(bad()),
        None if text.len() == 3 => text.parse().map(StatusMatch::Exact).map_err(|_| bad()),
        None => Err(bad()),
    }
}

const PROTOCOLS: [&str; 9] = [
    "tcp", "udp", "icmp", "icmpv4", "icmpv6", "sctp", "http", "dns", "kafka",
];

fn protocol(text: &str) -> Result<String, String> {
    let lower = text.to_ascii_lowercase();
    if PROTOCOLS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!(
            "unknown protocol, expected one of {}",
            PROTOCOLS.join(", ")
        ))
    }
}

impl Compiled {
    pub(super) fn new(f: &FlowFilter) -> Result<Compiled, FilterError> {
        use Side::{Destination as D, Source as S};
        let mut checks = Vec::new();
        let mut push = |empty: bool, check: Check| {
            if !empty {
                checks.push(check);
            }
        };
        push(f.uuid.is_empty(), Check::Uuid(f.uuid.clone()));
        push(
            f.source_ip.is_empty(),
            Check::Ip(S, each("source_ip", &f.source_ip, cidr)?),
        );
        push(
            f.source_ip_xlated.is_empty(),
            Check::IpXlated(each("source_ip_xlated", &f.source_ip_xlated, cidr)?),
        );
        push(
            f.destination_ip.is_empty(),
            Check::Ip(D, each("destination_ip", &f.destination_ip, cidr)?),
        );
        push(
            f.source_pod.is_empty(),
            Check::Pod(S, each("source_pod", &f.source_pod, namespaced)?),
        );
        push(
            f.destination_pod.is_empty(),
            Check::Pod(D, each("destination_pod", &f.destination_pod, namespaced)?),
        );
        push(
            f.source_service.is_empty(),
            Check::Service(S, each("source_service", &f.source_service, namespaced)?),
        );
        push(
            f.destination_service.is_empty(),
            Check::Service(
                D,
                each("destination_service", &f.destination_service, namespaced)?,
            ),
        );
        push(
            f.source_fqdn.is_empty(),
            Check::Fqdn(S, each("source_fqdn", &f.source_fqdn, wildcard)?),
        );
        push(
            f.destination_fqdn.is_empty(),
            Check::Fqdn(D, each("destination_fqdn", &f.destination_fqdn, wildcard)?),
        );
        push(
            f.source_label.is_empty(),
            Check::Label(S, each("source_label", &f.source_label, parse_selector)?),
        );
        push(
            f.destination_label.is_empty(),
            Check::Label(
                D,
                each("destination_label", &f.destination_label, parse_selector)?,
            ),
        );
        push(
            f.source_workload.is_empty(),
            Check::Workload(S, f.source_workload.clone()),
        );
        push(
            f.destination_workload.is_empty(),
            Check::Workload(D, f.destination_workload.clone()),
        );
        push(
            f.source_cluster_name.is_empty(),
            Check::Cluster(S, f.source_cluster_name.clone()),
        );
        push(
            f.destination_cluster_name.is_empty(),
            Check::Cluster(D, f.destination_cluster_name.clone()),
        );
        push(
            f.source_identity.is_empty(),
            Check::Identity(S, f.source_identity.clone()),
        );
        push(
            f.destination_identity.is_empty(),
            Check::Identity(D, f.destination_identity.clone()),
        );
        push(
            f.source_port.is_empty(),
            Check::Port(S, each("source_port", &f.source_port, port)?),
        );
        push(
            f.destination_port.is_empty(),
            Check::Port(D, each("destination_port", &f.destination_port, port)?),
        );
        push(
            f.traffic_direction.is_empty(),
            Check::TrafficDirection(f.traffic_direction.clone()),
        );
        push(f.verdict.is_empty(), Check::Verdict(f.verdict.clone()));
        push(
            f.drop_reason_desc.is_empty(),
            Check::DropReason(f.drop_reason_desc.clone()),
        );
        push(
            f.interface.is_empty(),
            Check::Interface(f.interface.clone()),
        );
        push(
            f.event_type.is_empty(),
            Check::EventType(f.event_type.clone()),
        );
        push(
            f.http_status_code.is_empty(),
            Check::HttpStatus(each("http_status_code", &f.http_status_code, status)?),
        );
        push(
            f.http_method.is_empty(),
            Check::HttpMethod(f.http_method.clone()),
        );
        push(
            f.http_path.is_empty(),
            Check::HttpPath(each("http_path", &f.http_path, regex)?),
        );
        push(
            f.http_url.is_empty(),
            Check::HttpUrl(each("http_url", &f.http_url, regex)?),
        );
        push(
            f.http_header.is_empty(),
            Check::HttpHeader(f.http_header.clone()),
        );
        push(
            f.protocol.is_empty(),
            Check::Protocol(each("protocol", &f.protocol, protocol)?),
        );
        push(f.reply.is_empty(), Check::Reply(f.reply.clone()));
        push(
            f.dns_query.is_empty(),
            Check::DnsQuery(each("dns_query", &f.dns_query, regex)?),
        );
        push(f.tcp_flags.is_empty(), Check::TcpFlags(f.tcp_flags.clone()));
        push(
            f.node_name.is_empty(),
            Check::NodeName(each("node_name", &f.node_name, glob)?),
        );
        push(
            f.node_labels.is_empty(),
            Check::NodeLabels(each("node_labels", &f.node_labels, parse_selector)?),
        );
        push(
            f.ip_version.is_empty(),
            Check::IpVersion(f.ip_version.clone()),
        );
        push(f.trace_id.is_empty(), Check::TraceId(f.trace_id.clone()));
        push(
            f.ip_trace_id.is_empty(),
            Check::IpTraceId(f.ip_trace_id.clone()),
        );
        push(
            f.encrypted.is_empty(),
            Check::Encrypted(f.encrypted.clone()),
        );
        Ok(Compiled { checks })
    }

    pub(super) fn matches(&self, flow: &Flow) -> bool {
        self.checks.iter().all(|check| check.matches(flow))
    }
}

fn endpoint(flow: &Flow, side: Side) -> Option<&flow::Endpoint> {
    match side {
        Side::Source => flow.source.as_ref(),
        Side::Destination => flow.destination.as_ref(),
    }
}

fn ip(flow: &Flow, side: Side) -> Option<IpAddr> {
    let ip = flow.ip.as_ref()?;
    match side {
        Side::Source => ip.source.parse().ok(),
        Side::Destination => ip.destination.parse().ok(),
    }
}

fn ports(flow: &Flow) -> Option<(u32, u32)> {
    match flow.l4.as_ref()?.protocol.as_ref()? {
        layer4::Protocol::Tcp(t) => Some((t.source_port, t.destination_port)),
        layer4::Protocol::Udp(u) => Some((u.source_port, u.destination_port)),
        layer4::Protocol::Sctp(s) => Some((s.source_port, s.destination_port)),
        layer4::Protocol::IcmPv4(_) | layer4::Protocol::IcmPv6(_) => None,
    }
}

fn http(flow: &Flow) -> Option<&flow::Http> {
    match flow.l7.as_ref()?.record.as_ref()? {
        layer7::Record::Http(http) => Some(http),
        layer7::Record::Dns(_) => None,
    }
}

fn dns(flow: &Flow) -> Option<&flow::Dns> {
    match flow.l7.as_ref()?.record.as_ref()? {
        layer7::Record::Dns(dns) => Some(dns),
        layer7::Record::Http(_) => None,
    }
}

fn flags_contain(have: &TcpFlags, want: &TcpFlags) -> bool {
    let bits = |f: &TcpFlags| [f.fin, f.syn, f.rst, f.psh, f.ack, f.urg, f.ece, f.cwr, f.ns];
    bits(have)
        .iter()
        .zip(bits(want))
        .all(|(have, want)| *have || !want)
}

fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.find('/') {
        Some(i) if url.contains("://") => &rest[i..],
        _ => rest,
    }
}

impl Check {
    fn matches(&self, flow: &Flow) -> bool {
        match self {
            Check::Uuid(uuids) => uuids.contains(&flow.uuid),
            Check::Ip(side, cidrs) => {
                ip(flow, *side).is_some_and(|ip| cidrs.iter().any(|c| c.contains_addr(ip)))
            }
            Check::IpXlated(cidrs) => flow
                .ip
                .as_ref()
                .and_then(|ip| ip.source_xlated.parse().ok())
                .is_some_and(|ip| cidrs.iter().any(|c| c.contains_addr(ip))),
            Check::Pod(side, pods) => endpoint(flow, *side).is_some_and(|ep| {
                pods.iter().any(|(ns, prefix)| {
                    (ns.is_empty() || *ns == ep.namespace)
                        && (prefix.is_empty()
                            || (!ep.pod_name.is_empty()
                                && ep.pod_name.starts_with(prefix.as_str())))
                        && !(ns.is_empty() && ep.pod_name.is_empty())
                })
            }),
            Check::Service(side, services) => {
                let service = match side {
                    Side::Source => flow.source_service.as_ref(),
                    Side::Destination => flow.destination_service.as_ref(),
                };
                service.is_some_and(|svc| {
                    services.iter().any(|(ns, prefix)| {
                        (ns.is_empty() || *ns == svc.namespace)
                            && !svc.name.is_empty()
                            && svc.name.starts_with(prefix.as_str())
                    })
                })
            }
            Check::Fqdn(side, patterns) => {
                let names = match side {
                    Side::Source => &flow.source_names,
                    Side::Destination => &flow.destination_names,
                };
                names
                    .iter()
                    .any(|name| patterns.iter().any(|p| p.is_match(name)))
            }
            Check::Label(side, selectors) => endpoint(flow, *side)
                .is_some_and(|ep| selectors.iter().any(|s| selector_matches(s, &ep.labels))),
            Check::Workload(side, workloads) => endpoint(flow, *side).is_some_and(|ep| {
                workloads.iter().any(|want| {
                    ep.workloads.iter().any(|have| {
                        (want.name.is_empty() || want.name == have.name)
                            && (want.kind.is_empty() || want.kind == have.kind)
                    })
                })
            }),
            Check::Cluster(side, names) => {
                endpoint(flow, *side).is_some_and(|ep| names.contains(&ep.cluster_name))
            }
            Check::Identity(side, ids) => {
                endpoint(flow, *side).is_some_and(|ep| ids.contains(&ep.identity))
            }
            Check::Port(side, wanted) => ports(flow).is_some_and(|(sport, dport)| {
                wanted.contains(match side {
                    Side::Source => &sport,
                    Side::Destination => &dport,
                })
            }),
            Check::TrafficDirection(dirs) => dirs.contains(&flow.traffic_direction),
            Check::Verdict(verdicts) => verdicts.contains(&flow.verdict),
            Check::DropReason(reasons) => reasons.contains(&flow.drop_reason_desc),
            Check::Interface(interfaces) => flow.interface.as_ref().is_some_and(|have| {
                interfaces.iter().any(|want| {
                    (want.index == 0 || want.index == have.index)
                        && (want.name.is_empty() || want.name == have.name)
                })
            }),
            Check::EventType(types) => flow.event_type.as_ref().is_some_and(|have| {
                types.iter().any(|want| {
                    want.r#type == have.r#type
                        && (!want.match_sub_type || want.sub_type == have.sub_type)
                })
            }),
            Check::HttpStatus(statuses) => http(flow).is_some_and(|h| {
                h.code != 0
                    && statuses.iter().any(|s| match s {
                        StatusMatch::Exact(code) => h.code == *code,
                        StatusMatch::Class(class) => h.code / 100 == *class,
                    })
            }),
            Check::HttpMethod(methods) => http(flow)
                .is_some_and(|h| methods.iter().any(|m| m.eq_ignore_ascii_case(&h.method))),
            Check::HttpPath(paths) => {
                http(flow).is_some_and(|h| paths.iter().any(|p| p.is_match(url_path(&h.url))))
            }
            Check::HttpUrl(urls) => {
                http(flow).is_some_and(|h| urls.iter().any(|u| u.is_match(&h.url)))
            }
            Check::HttpHeader(headers) => http(flow).is_some_and(|h| {
                headers.iter().any(|want| {
                    h.headers
                        .iter()
                        .any(|have| have.key == want.key && have.value == want.value)
                })
            }),
            Check::Protocol(protocols) => protocols.iter().any(|p| {
                let l4 = flow.l4.as_ref().and_then(|l4| l4.protocol.as_ref());
                match p.as_str() {
                    "tcp" => matches!(l4, Some(layer4::Protocol::Tcp(_))),
                    "udp" => matches!(l4, Some(layer4::Protocol::Udp(_))),
                    "sctp" => matches!(l4, Some(layer4::Protocol::Sctp(_))),
                    "icmpv4" => matches!(l4, Some(layer4::Protocol::IcmPv4(_))),
                    "icmpv6" => matches!(l4, Some(layer4::Protocol::IcmPv6(_))),
                    "icmp" => matches!(
                        l4,
                        Some(layer4::Protocol::IcmPv4(_) | layer4::Protocol::IcmPv6(_))
                    ),
                    "http" => http(flow).is_some(),
                    "dns" => dns(flow).is_some(),
                    _ => false,
                }
            }),
            Check::Reply(replies) => flow.is_reply.is_some_and(|r| replies.contains(&r)),
            Check::DnsQuery(patterns) => {
                dns(flow).is_some_and(|d| patterns.iter().any(|p| p.is_match(&d.query)))
            }
            Check::TcpFlags(wanted) => {
                let have = match flow.l4.as_ref().and_then(|l4| l4.protocol.as_ref()) {
                    Some(layer4::Protocol::Tcp(tcp)) => tcp.flags.as_ref(),
                    _ => None,
                };
                have.is_some_and(|have| wanted.iter().any(|want| flags_contain(have, want)))
            }
            Check::NodeName(patterns) => patterns.iter().any(|p| p.is_match(&flow.node_name)),
            Check::NodeLabels(selectors) => selectors
                .iter()
                .any(|s| selector_matches(s, &flow.node_labels)),
            Check::IpVersion(versions) => flow
                .ip
                .as_ref()
                .is_some_and(|ip| versions.contains(&ip.ip_version)),
            Check::TraceId(ids) => flow
                .trace_context
                .as_ref()
                .and_then(|t| t.parent.as_ref())
                .is_some_and(|p| ids.contains(&p.trace_id)),
            Check::IpTraceId(ids) => flow
                .ip_trace_id
                .as_ref()
                .is_some_and(|t| ids.contains(&t.trace_id)),
            Check::Encrypted(values) => flow
                .ip
                .as_ref()
                .is_some_and(|ip| values.contains(&ip.encrypted)),
        }
    }
}
