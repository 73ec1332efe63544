//! Hubble's flow metrics (`--hubble-metrics=drop,tcp,flow,port-distribution,icmp`), with
//! Hubble's names, labels and rules, counted from each enriched flow:
//!
//! - `flow`: `hubble_flows_processed_total{protocol,type,subtype,verdict}`; the type is Trace,
//!   Drop, PolicyVerdict, L7 or Capture, the subtype a trace's observation point
//!   (`to-endpoint`) or an L7 record's protocol, the protocol the L7 or else L4 protocol.
//! - `drop`: `hubble_drop_total{reason,protocol}` for every DROPPED flow.
//! - `tcp`: `hubble_tcp_flags_total{flag,family}`, the SYN, SYN-ACK, FIN, RST of forwarded
//!   and redirected flows.
//! - `port-distribution`: `hubble_port_distribution_total{protocol,port}`, the destination
//!   port of forwarded and redirected flows known not to be replies (ICMP as port 0).
//! - `icmp`: `hubble_icmp_total{family,type}`.
//! - `dns`: `hubble_dns_queries_total{rcode,qtypes,ips_returned}` (a denied query's rcode is
//!   `Policy denied`), `hubble_dns_responses_total{rcode,qtypes,ips_returned}` and
//!   `hubble_dns_response_types_total{type,qtypes}`, from the DNS proxy's L7 flows.
//! - `http`: `hubble_http_requests_total{method,protocol,reporter}`,
//!   `hubble_http_responses_total{method,protocol,status,reporter}` and
//!   `hubble_http_request_duration_seconds{method,reporter}`; `httpV2` counts requests by
//!   their responses, `hubble_http_requests_total{method,protocol,status,reporter}`. The
//!   reporter is `client` for egress and `server` for ingress proxying.

use metrics::{CounterVec, DEFAULT_BUCKETS, HistogramVec, Registry};
use schema::flow::{self, Flow, TrafficDirection, Verdict, layer4};

use crate::decode::monitor;

/// Why a `--hubble-metrics` list is not valid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--hubble-metrics: unknown metric {0:?} (expected dns, drop, tcp, flow, port-distribution, icmp, http)"
)]
pub struct UnknownMetric(pub String);

/// The enabled flow metrics.
#[derive(Clone, Default)]
pub struct FlowMetrics {
    flows: Option<CounterVec>,
    drops: Option<CounterVec>,
    tcp: Option<CounterVec>,
    ports: Option<CounterVec>,
    icmp: Option<CounterVec>,
    dns: Option<DnsMetrics>,
    http: Option<HttpMetrics>,
}

#[derive(Clone)]
struct DnsMetrics {
    queries: CounterVec,
    responses: CounterVec,
    response_types: CounterVec,
}

#[derive(Clone)]
struct HttpMetrics {
    requests: CounterVec,
    /// `None` in `httpV2`, which counts requests when their responses come.
    responses: Option<CounterVec>,
    duration: HistogramVec,
}

impl std::fmt::Debug for FlowMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowMetrics").finish_non_exhaustive()
    }
}

impl FlowMetrics {
    /// The metrics `list` names (comma or space separated, as Cilium's flag and Helm value),
    /// registered in `registry`. `dns` and `http` are accepted and count nothing until there
    /// are L7 flows.
    pub fn register(list: &str, registry: &Registry) -> Result<FlowMetrics, UnknownMetric> {
        let mut out = FlowMetrics::default();
        for name in list.split([',', ' ']).filter(|n| !n.is_empty()) {
            // Options after `:` (`drop:sourceContext=pod`) are not supported and ignored.
            let name = name.split(':').next().unwrap_or_default();
            match name {
                "flow" => {
                    out.flows = Some(registry.counter_vec(
                        "hubble_flows_processed_total",
                        "Total number of flows processed",
                        &["protocol", "type", "subtype", "verdict"],
                    ));
                }
                "drop" => {
                    out.drops = Some(registry.counter_vec(
                        "hubble_drop_total",
                        "Number of drops",
                        &["reason", "protocol"],
                    ));
                }
                "tcp" => {
                    out.tcp = Some(registry.counter_vec(
                        "hubble_tcp_flags_total",
                        "TCP flag occurrences",
                        &["flag", "family"],
                    ));
                }
                "port-distribution" => {
                    out.ports = Some(registry.counter_vec(
                        "hubble_port_distribution_total",
                        "Numbers of packets distributed by destination port",
                        &["protocol", "port"],
                    ));
                }
                "icmp" => {
                    out.icmp = Some(registry.counter_vec(
                        "hubble_icmp_total",
                        "Number of ICMP messages",
                        &["family", "type"],
                    ));
                }
                "dns" => {
                    out.dns = Some(DnsMetrics {
                        queries: registry.counter_vec(
                            "hubble_dns_queries_total",
                            "Number of DNS queries observed",
                            &["rcode", "qtypes", "ips_returned"],
                        ),
                        responses: registry.counter_vec(
                            "hubble_dns_responses_total",
                            "Number of DNS queries observed",
                            &["rcode", "qtypes", "ips_returned"],
                        ),
                        response_types: registry.counter_vec(
                            "hubble_dns_response_types_total",
                            "Number of DNS queries observed",
                            &["type", "qtypes"],
                        ),
                    });
                }
                "http" | "httpV2" => {
                    let v2 = name == "httpV2";
                    let requests = if v2 {
                        &["method", "protocol", "status", "reporter"][..]
                    } else {
                        &["method", "protocol", "reporter"][..]
                    };
                    out.http = Some(HttpMetrics {
                        requests: registry.counter_vec(
                            "hubble_http_requests_total",
                            "Count of HTTP requests",
                            requests,
                        ),
                        responses: (!v2).then(|| {
                            registry.counter_vec(
                                "hubble_http_responses_total",
                                "Count of HTTP responses",
                                &["method", "protocol", "status", "reporter"],
                            )
                        }),
                        duration: registry.histogram_vec(
                            "hubble_http_request_duration_seconds",
                            "Quantiles of HTTP request duration in seconds",
                            &["method", "reporter"],
                            DEFAULT_BUCKETS,
                        ),
                    });
                }
                other => return Err(UnknownMetric(other.to_owned())),
            }
        }
        Ok(out)
    }

    /// Whether any metric is on: flows are built for them only then.
    pub fn is_enabled(&self) -> bool {
        self.flows.is_some()
            || self.drops.is_some()
            || self.tcp.is_some()
            || self.ports.is_some()
            || self.icmp.is_some()
            || self.dns.is_some()
            || self.http.is_some()
    }

    /// Counts one flow in every enabled metric.
    pub fn observe(&self, flow: &Flow) {
        if let Some(flows) = &self.flows {
            let (kind, subtype) = type_and_subtype(flow);
            flows
                .with(&[flow_protocol(flow), kind, &subtype, verdict(flow)])
                .inc();
        }
        let l4 = flow.l4.as_ref().and_then(|l4| l4.protocol.as_ref());
        if let Some(drops) = &self.drops
            && flow.verdict == i32::from(Verdict::Dropped)
        {
            let reason = flow::DropReason::try_from(flow.drop_reason_desc)
                .map_or("DROP_REASON_UNKNOWN", |r| r.as_str_name());
            drops.with(&[reason, flow_protocol(flow)]).inc();
        }
        let family = family(flow);
        let passed = flow.verdict == i32::from(Verdict::Forwarded)
            || flow.verdict == i32::from(Verdict::Redirected);
        if let Some(tcp) = &self.tcp
            && passed
            && !family.is_empty()
            && let Some(layer4::Protocol::Tcp(t)) = l4
            && let Some(flags) = &t.flags
        {
            if flags.syn {
                let flag = if flags.ack { "SYN-ACK" } else { "SYN" };
                tcp.with(&[flag, family]).inc();
            }
            if flags.fin {
                tcp.with(&["FIN", family]).inc();
            }
            if flags.rst {
                tcp.with(&["RST", family]).inc();
            }
        }
        if let Some(ports) = &self.ports
            && passed
            && flow.is_reply == Some(false)
            && let Some(port) = destination_port(l4)
        {
            ports.with(&[protocol(l4), &port.to_string()]).inc();
        }
        if let Some(icmp) = &self.icmp {
            match l4 {
                Some(layer4::Protocol::IcmPv4(i)) => {
                    icmp.with(&["IPv4", icmp_v4_type(i.r#type)]).inc();
                }
                Some(layer4::Protocol::IcmPv6(i)) => {
                    icmp.with(&["IPv6", &i.r#type.to_string()]).inc();
                }
                _ => {}
            }
        }
        let l7 = flow.l7.as_ref();
        match l7.and_then(|l7| l7.record.as_ref()) {
            Some(flow::layer7::Record::Dns(dns)) => {
                if let Some(metrics) = &self.dns {
                    metrics.observe(flow, dns);
                }
            }
            Some(flow::layer7::Record::Http(http)) => {
                if let (Some(metrics), Some(l7)) = (&self.http, l7) {
                    metrics.observe(flow, l7, http);
                }
            }
            None => {}
        }
    }
}

impl DnsMetrics {
    /// As Hubble's `dns` handler: queries (denied ones with rcode `Policy denied`), responses
    /// by rcode, and the answers' record types.
    fn observe(&self, flow: &Flow, dns: &flow::Dns) {
        let qtypes = dns.qtypes.join(",");
        let ips = dns.ips.len().to_string();
        if flow.verdict == i32::from(Verdict::Dropped) {
            self.queries.with(&["Policy denied", &qtypes, &ips]).inc();
        } else if flow.is_reply != Some(true) {
            self.queries.with(&["", &qtypes, &ips]).inc();
        } else {
            let rcode = u16::try_from(dns.rcode).map_or("Unknown", crate::seven::rcode_name);
            self.responses.with(&[rcode, &qtypes, &ips]).inc();
            for rrtype in &dns.rrtypes {
                self.response_types.with(&[rrtype, &qtypes]).inc();
            }
        }
    }
}

impl HttpMetrics {
    fn observe(&self, flow: &Flow, l7: &flow::Layer7, http: &flow::Http) {
        let reporter = match TrafficDirection::try_from(flow.traffic_direction) {
            Ok(TrafficDirection::Egress) => "client",
            Ok(TrafficDirection::Ingress) => "server",
            _ => "unknown",
        };
        let method = http.method.as_str();
        let protocol = http.protocol.as_str();
        let response = l7.r#type == i32::from(flow::L7FlowType::Response);
        let status = http.code.to_string();
        match (&self.responses, response) {
            (Some(_), false) => self.requests.with(&[method, protocol, reporter]).inc(),
            (None, false) => {}
            (responses, true) => {
                match responses {
                    Some(responses) => responses.with(&[method, protocol, &status, reporter]),
                    None => self.requests.with(&[method, protocol, &status, reporter]),
                }
                .inc();
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "a latency in nanoseconds is far below 2^53"
                )]
                let seconds = l7.latency_ns as f64 / 1e9;
                self.duration.with(&[method, reporter]).observe(seconds);
            }
        }
    }
}

fn type_and_subtype(flow: &Flow) -> (&'static str, String) {
    let event = flow.event_type.as_ref();
    let kind = event.map_or(0, |e| e.r#type);
    match kind {
        monitor::ACCESS_LOG => {
            let sub = match flow.l7.as_ref().and_then(|l7| l7.record.as_ref()) {
                Some(flow::layer7::Record::Dns(_)) => "DNS",
                Some(flow::layer7::Record::Http(_)) => "HTTP",
                None => "",
            };
            ("L7", sub.to_owned())
        }
        monitor::DROP => ("Drop", String::new()),
        monitor::CAPTURE => ("Capture", String::new()),
        monitor::TRACE => (
            "Trace",
            trace_point(event.map_or(0, |e| e.sub_type)).to_owned(),
        ),
        monitor::POLICY_VERDICT => ("PolicyVerdict", String::new()),
        other => ("Unknown", other.to_string()),
    }
}

/// Cilium's `TraceObservationPoints` names by trace sub type.
fn trace_point(sub_type: i32) -> &'static str {
    match sub_type {
        0 => "to-endpoint",
        1 => "to-proxy",
        2 => "to-host",
        3 => "to-stack",
        4 => "to-overlay",
        5 => "from-endpoint",
        6 => "from-proxy",
        7 => "from-host",
        8 => "from-stack",
        9 => "from-overlay",
        10 => "from-network",
        11 => "to-network",
        _ => "unknown",
    }
}

fn verdict(flow: &Flow) -> &'static str {
    Verdict::try_from(flow.verdict).map_or("VERDICT_UNKNOWN", |v| v.as_str_name())
}

/// Hubble's `FlowProtocol`: an L7 flow's application protocol, else the L4 protocol.
fn flow_protocol(flow: &Flow) -> &'static str {
    let kind = flow.event_type.as_ref().map_or(0, |e| e.r#type);
    match kind {
        monitor::ACCESS_LOG => match flow.l7.as_ref().and_then(|l7| l7.record.as_ref()) {
            Some(flow::layer7::Record::Dns(_)) => "DNS",
            Some(flow::layer7::Record::Http(_)) => "HTTP",
            None => "Unknown L7",
        },
        monitor::DROP | monitor::TRACE | monitor::POLICY_VERDICT | monitor::CAPTURE => {
            match flow.l4.as_ref().and_then(|l4| l4.protocol.as_ref()) {
                None => "Unknown L4",
                l4 => protocol(l4),
            }
        }
        _ => "Unknown flow",
    }
}

fn protocol(l4: Option<&layer4::Protocol>) -> &'static str {
    match l4 {
        Some(layer4::Protocol::Tcp(_)) => "TCP",
        Some(layer4::Protocol::Udp(_)) => "UDP",
        Some(layer4::Protocol::Sctp(_)) => "SCTP",
        Some(layer4::Protocol::IcmPv4(_)) => "ICMPv4",
        Some(layer4::Protocol::IcmPv6(_)) => "ICMPv6",
        _ => "Unknown",
    }
}

fn family(flow: &Flow) -> &'static str {
    match flow.ip.as_ref().map(|ip| ip.ip_version) {
        Some(v) if v == i32::from(flow::IpVersion::IPv6) => "IPv6",
        Some(v) if v == i32::from(flow::IpVersion::IPv4) => "IPv4",
        _ => "",
    }
}

fn destination_port(l4: Option<&layer4::Protocol>) -> Option<u32> {
    match l4? {
        layer4::Protocol::Tcp(t) => Some(t.destination_port),
        layer4::Protocol::Udp(u) => Some(u.destination_port),
        layer4::Protocol::Sctp(s) => Some(s.destination_port),
        layer4::Protocol::IcmPv4(_) | layer4::Protocol::IcmPv6(_) => Some(0),
    }
}

/// Go's `layers.ICMPv4TypeCode` type names, as Hubble labels them.
fn icmp_v4_type(r#type: u32) -> &'static str {
    match r#type {
        0 => "EchoReply",
        3 => "DestinationUnreachable",
        4 => "SourceQuench",
        5 => "Redirect",
        8 => "EchoRequest",
        9 => "RouterAdvertisement",
        10 => "RouterSolicitation",
        11 => "TimeExceeded",
        12 => "ParameterProblem",
        13 => "TimestampRequest",
        14 => "TimestampReply",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests;
