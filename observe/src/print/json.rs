//! protojson as Hubble prints it (`UseProtoNames`): proto field names, enums by name, fields in
//! declaration order, defaults left out, 64-bit integers as strings, RFC 3339 times, wrapper
//! types as bare values. Written by hand for the fields Myelin fills.

use std::fmt::Write as _;

use prost_types::Timestamp;
use schema::flow::{self, Flow, layer4};

use super::text::civil;

/// A JSON value with ordered keys.
enum J {
    Str(String),
    /// Already rendered (numbers, booleans).
    Raw(String),
    Obj(Vec<(&'static str, J)>),
    Arr(Vec<J>),
}

impl J {
    fn write(&self, out: &mut String) {
        match self {
            J::Str(s) => out.push_str(&serde_json::to_string(s).unwrap_or_default()),
            J::Raw(s) => out.push_str(s),
            J::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "\"{key}\":");
                    value.write(out);
                }
                out.push('}');
            }
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
        }
    }
}

/// Collects the non-default fields of one message.
#[derive(Default)]
struct Obj(Vec<(&'static str, J)>);

impl Obj {
    fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        if !value.is_empty() {
            self.0.push((key, J::Str(value.to_owned())));
        }
        self
    }
    fn u32(&mut self, key: &'static str, value: u32) -> &mut Self {
        if value != 0 {
            self.0.push((key, J::Raw(value.to_string())));
        }
        self
    }
    fn i32(&mut self, key: &'static str, value: i32) -> &mut Self {
        if value != 0 {
            self.0.push((key, J::Raw(value.to_string())));
        }
        self
    }
    fn u64(&mut self, key: &'static str, value: u64) -> &mut Self {
        if value != 0 {
            self.0.push((key, J::Str(value.to_string())));
        }
        self
    }
    fn bool(&mut self, key: &'static str, value: bool) -> &mut Self {
        if value {
            self.0.push((key, J::Raw("true".to_owned())));
        }
        self
    }
    /// An enum by name; the zero value is left out like any default.
    fn enumeration(&mut self, key: &'static str, value: i32, name: Option<&str>) -> &mut Self {
        if value != 0 {
            let v = match name {
                Some(name) => J::Str(name.to_owned()),
                None => J::Raw(value.to_string()),
            };
            self.0.push((key, v));
        }
        self
    }
    fn obj(&mut self, key: &'static str, value: Option<Obj>) -> &mut Self {
        if let Some(value) = value {
            self.0.push((key, J::Obj(value.0)));
        }
        self
    }
    fn strs(&mut self, key: &'static str, values: &[String]) -> &mut Self {
        if !values.is_empty() {
            self.0.push((
                key,
                J::Arr(values.iter().map(|v| J::Str(v.clone())).collect()),
            ));
        }
        self
    }
    fn objs(&mut self, key: &'static str, values: Vec<Obj>) -> &mut Self {
        if !values.is_empty() {
            self.0.push((
                key,
                J::Arr(values.into_iter().map(|o| J::Obj(o.0)).collect()),
            ));
        }
        self
    }
    fn done(&mut self) -> Obj {
        Obj(std::mem::take(&mut self.0))
    }
}

/// RFC 3339 in UTC with 0, 3, 6 or 9 fractional digits, as protojson writes timestamps.
fn rfc3339(ts: &Timestamp) -> String {
    let (year, month, day, hour, minute, second) = civil(ts.seconds);
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
    let nanos = ts.nanos;
    if nanos != 0 {
        if nanos % 1_000_000 == 0 {
            let _ = write!(out, ".{:03}", nanos / 1_000_000);
        } else if nanos % 1_000 == 0 {
            let _ = write!(out, ".{:06}", nanos / 1_000);
        } else {
            let _ = write!(out, ".{nanos:09}");
        }
    }
    out.push('Z');
    out
}

fn endpoint(ep: Option<&flow::Endpoint>) -> Option<Obj> {
    let ep = ep?;
    Some(
        Obj::default()
            .u32("ID", ep.id)
            .u32("identity", ep.identity)
            .str("cluster_name", &ep.cluster_name)
            .str("namespace", &ep.namespace)
            .strs("labels", &ep.labels)
            .str("pod_name", &ep.pod_name)
            .objs(
                "workloads",
                ep.workloads
                    .iter()
                    .map(|w| {
                        Obj::default()
                            .str("name", &w.name)
                            .str("kind", &w.kind)
                            .done()
                    })
                    .collect(),
            )
            .done(),
    )
}

fn ports(source: u32, destination: u32) -> Obj {
    Obj::default()
        .u32("source_port", source)
        .u32("destination_port", destination)
        .done()
}

fn l4(l4: Option<&flow::Layer4>) -> Option<Obj> {
    let protocol = l4?.protocol.as_ref()?;
    let mut out = Obj::default();
    match protocol {
        layer4::Protocol::Tcp(tcp) => {
            let mut t = ports(tcp.source_port, tcp.destination_port);
            if let Some(f) = tcp.flags {
                t.obj(
                    "flags",
                    Some(
                        Obj::default()
                            .bool("FIN", f.fin)
                            .bool("SYN", f.syn)
                            .bool("RST", f.rst)
                            .bool("PSH", f.psh)
                            .bool("ACK", f.ack)
                            .bool("URG", f.urg)
                            .bool("ECE", f.ece)
                            .bool("CWR", f.cwr)
                            .bool("NS", f.ns)
                            .done(),
                    ),
                );
            }
            out.obj("TCP", Some(t));
        }
        layer4::Protocol::Udp(udp) => {
            out.obj("UDP", Some(ports(udp.source_port, udp.destination_port)));
        }
        layer4::Protocol::IcmPv4(icmp) => {
            out.obj(
                "ICMPv4",
                Some(
                    Obj::default()
                        .u32("type", icmp.r#type)
                        .u32("code", icmp.code)
                        .done(),
                ),
            );
        }
        layer4::Protocol::IcmPv6(icmp) => {
            out.obj(
                "ICMPv6",
                Some(
                    Obj::default()
                        .u32("type", icmp.r#type)
                        .u32("code", icmp.code)
                        .done(),
                ),
            );
        }
        layer4::Protocol::Sctp(sctp) => {
            out.obj("SCTP", Some(ports(sctp.source_port, sctp.destination_port)));
        }
    }
    Some(out)
}

fn l7(l7: &flow::Layer7) -> Obj {
    let mut o = Obj::default();
    o.enumeration("type", l7.r#type, Some(l7.r#type().as_str_name()));
    o.u64("latency_ns", l7.latency_ns);
    match l7.record.as_ref() {
        Some(flow::layer7::Record::Dns(dns)) => {
            o.obj(
                "dns",
                Some(
                    Obj::default()
                        .str("query", &dns.query)
                        .strs("ips", &dns.ips)
                        .u32("ttl", dns.ttl)
                        .strs("cnames", &dns.cnames)
                        .str("observation_source", &dns.observation_source)
                        .u32("rcode", dns.rcode)
                        .strs("qtypes", &dns.qtypes)
                        .strs("rrtypes", &dns.rrtypes)
                        .done(),
                ),
            );
        }
        Some(flow::layer7::Record::Http(http)) => {
            let headers = http
                .headers
                .iter()
                .map(|h| {
                    Obj::default()
                        .str("key", &h.key)
                        .str("value", &h.value)
                        .done()
                })
                .collect();
            o.obj(
                "http",
                Some(
                    Obj::default()
                        .u32("code", http.code)
                        .str("method", &http.method)
                        .str("url", &http.url)
                        .str("protocol", &http.protocol)
                        .objs("headers", headers)
                        .done(),
                ),
            );
        }
        None => {}
    }
    o.done()
}

fn policies(list: &[flow::Policy]) -> Vec<Obj> {
    list.iter()
        .map(|p| {
            Obj::default()
                .str("name", &p.name)
                .str("namespace", &p.namespace)
                .strs("labels", &p.labels)
                .u64("revision", p.revision)
                .str("kind", &p.kind)
                .done()
        })
        .collect()
}

fn flow_obj(f: &Flow) -> Obj {
    let mut o = Obj::default();
    if let Some(time) = f.time.as_ref() {
        o.0.push(("time", J::Str(rfc3339(time))));
    }
    o.str("uuid", &f.uuid);
    o.enumeration("verdict", f.verdict, Some(f.verdict().as_str_name()));
    #[expect(
        deprecated,
        reason = "protojson prints every set field, deprecated ones too"
    )]
    let (drop_reason, reply, summary) = (f.drop_reason, f.reply, f.summary.clone());
    o.u32("drop_reason", drop_reason);
    o.obj(
        "ethernet",
        f.ethernet.as_ref().map(|e| {
            Obj::default()
                .str("source", &e.source)
                .str("destination", &e.destination)
                .done()
        }),
    );
    o.obj(
        "IP",
        f.ip.as_ref().map(|ip| {
            Obj::default()
                .str("source", &ip.source)
                .str("source_xlated", &ip.source_xlated)
                .str("destination", &ip.destination)
                .enumeration(
                    "ipVersion",
                    ip.ip_version,
                    Some(ip.ip_version().as_str_name()),
                )
                .bool("encrypted", ip.encrypted)
                .done()
        }),
    );
    o.obj("l4", l4(f.l4.as_ref()));
    o.obj("source", endpoint(f.source.as_ref()));
    o.obj("destination", endpoint(f.destination.as_ref()));
    o.enumeration("Type", f.r#type, Some(f.r#type().as_str_name()));
    o.str("node_name", &f.node_name);
    o.strs("node_labels", &f.node_labels);
    o.strs("source_names", &f.source_names);
    o.strs("destination_names", &f.destination_names);
    o.obj("l7", f.l7.as_ref().map(l7));
    o.bool("reply", reply);
    o.obj(
        "event_type",
        f.event_type.as_ref().map(|e| {
            Obj::default()
                .i32("type", e.r#type)
                .i32("sub_type", e.sub_type)
                .done()
        }),
    );
    o.enumeration(
        "traffic_direction",
        f.traffic_direction,
        Some(f.traffic_direction().as_str_name()),
    );
    o.u32("policy_match_type", f.policy_match_type);
    o.enumeration(
        "trace_observation_point",
        f.trace_observation_point,
        Some(f.trace_observation_point().as_str_name()),
    );
    o.enumeration(
        "drop_reason_desc",
        f.drop_reason_desc,
        Some(f.drop_reason_desc().as_str_name()),
    );
    if let Some(reply) = f.is_reply {
        o.0.push(("is_reply", J::Raw(reply.to_string())));
    }
    o.obj(
        "interface",
        f.interface.as_ref().map(|i| {
            Obj::default()
                .u32("index", i.index)
                .str("name", &i.name)
                .done()
        }),
    );
    o.u32("proxy_port", f.proxy_port);
    o.str("Summary", &summary);
    o.objs("egress_allowed_by", policies(&f.egress_allowed_by));
    o.objs("ingress_allowed_by", policies(&f.ingress_allowed_by));
    o.objs("egress_denied_by", policies(&f.egress_denied_by));
    o.objs("ingress_denied_by", policies(&f.ingress_denied_by));
    o.strs("policy_log", &f.policy_log);
    o.done()
}

/// One flow as protojson.
pub fn flow_json(flow: &Flow) -> String {
    let mut out = String::new();
    J::Obj(flow_obj(flow).0).write(&mut out);
    out
}

/// The `GetFlowsResponse` carrying `flow`, as `hubble observe -o json` prints each line.
pub fn response_json(flow: &Flow) -> String {
    let mut o = Obj::default();
    o.obj("flow", Some(flow_obj(flow)));
    o.str("node_name", &flow.node_name);
    if let Some(time) = flow.time.as_ref() {
        o.0.push(("time", J::Str(rfc3339(time))));
    }
    let mut out = String::new();
    J::Obj(o.0).write(&mut out);
    out
}
