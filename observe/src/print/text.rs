//! The text formats and the pieces they share with Hubble's printer.

use std::fmt::Write as _;

use schema::flow::{Flow, Verdict, layer4, layer7};

use crate::decode::monitor;
use crate::identity::reserved_name;

/// One `hubble observe` compact line, newline included.
pub fn compact(flow: &Flow) -> String {
    let (mut src, mut dst) = hostnames(flow);
    let mut src_id = identity(flow.source.as_ref().map_or(0, |e| e.identity));
    let mut dst_id = identity(flow.destination.as_ref().map_or(0, |e| e.identity));
    let arrow = match flow.is_reply {
        None => "<>",
        Some(false) => "->",
        // Replies print client first, pointing back at it.
        Some(true) => {
            std::mem::swap(&mut src, &mut dst);
            std::mem::swap(&mut src_id, &mut dst_id);
            "<-"
        }
    };
    format!(
        "{}: {src} {src_id} {arrow} {dst} {dst_id} {} {} ({})\n",
        time(flow),
        flow_type(flow),
        verdict(flow),
        summary(flow)
    )
}

const DICT_SEPARATOR: &str = "------------";

/// `-o dict`: one block per flow, separated by dashes.
pub fn dict(flows: &[Flow]) -> String {
    let mut out = String::new();
    for (i, flow) in flows.iter().enumerate() {
        if i > 0 {
            out.push_str(DICT_SEPARATOR);
            out.push('\n');
        }
        let (src, dst) = hostnames(flow);
        let _ = write!(
            out,
            "  TIMESTAMP: {}\n     SOURCE: {src}\nDESTINATION: {dst}\n       TYPE: {}\n    VERDICT: {}\n    SUMMARY: {}\n",
            time(flow),
            flow_type(flow),
            verdict(flow),
            summary(flow)
        );
    }
    out
}

/// `-o table`: aligned columns like Go's tabwriter (padding 3), header first.
pub fn table(flows: &[Flow]) -> String {
    let mut rows = vec![
        [
            "TIMESTAMP",
            "SOURCE",
            "DESTINATION",
            "TYPE",
            "VERDICT",
            "SUMMARY",
        ]
        .map(str::to_owned),
    ];
    for flow in flows {
        let (src, dst) = hostnames(flow);
        rows.push([
            time(flow),
            src,
            dst,
            flow_type(flow),
            verdict(flow),
            summary(flow),
        ]);
    }
    let mut widths = [0usize; 6];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<width$}", width = widths[i] + 3);
            }
        }
        out.push('\n');
    }
    out
}

/// Go's `Jan _2 15:04:05.000` in UTC.
pub(crate) fn time(flow: &Flow) -> String {
    let Some(ts) = flow.time.as_ref() else {
        return "N/A".to_owned();
    };
    let (_, month, day, hour, minute, second) = civil(ts.seconds);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {day:>2} {hour:02}:{minute:02}:{second:02}.{:03}",
        MONTHS[month - 1],
        ts.nanos / 1_000_000
    )
}

/// Seconds since the epoch as (year, month 1-12, day, hour, minute, second) in UTC.
pub(crate) fn civil(seconds: i64) -> (i64, usize, u32, u32, u32, u32) {
    let days = seconds.div_euclid(86_400);
    let rem = seconds.rem_euclid(86_400);
    // Howard Hinnant's days_from_civil inverse.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let small = |v: i64| u32::try_from(v).unwrap_or(0);
    (
        year,
        usize::try_from(month).unwrap_or(1),
        small(day),
        small(rem / 3600),
        small(rem % 3600 / 60),
        small(rem % 60),
    )
}

/// `(ID:n)`, or `(world)` for reserved identities.
fn identity(id: u32) -> String {
    match reserved_name(id) {
        Some(name) => format!("({name})"),
        None => format!("(ID:{id})"),
    }
}

fn ports(flow: &Flow) -> (u32, u32) {
    match flow.l4.as_ref().and_then(|l4| l4.protocol.as_ref()) {
        Some(layer4::Protocol::Tcp(t)) => (t.source_port, t.destination_port),
        Some(layer4::Protocol::Udp(u)) => (u.source_port, u.destination_port),
        Some(layer4::Protocol::Sctp(s)) => (s.source_port, s.destination_port),
        _ => (0, 0),
    }
}

/// Source and destination as `ns/pod:port`, `ns/service:port`, `name1,name2:port` or
/// `ip:port`; no port when there is none.
pub fn hostnames(flow: &Flow) -> (String, String) {
    let Some(ip) = flow.ip.as_ref() else {
        return match flow.ethernet.as_ref() {
            Some(eth) => (eth.source.clone(), eth.destination.clone()),
            None => (String::new(), String::new()),
        };
    };
    let (sport, dport) = ports(flow);
    let host = |addr: &str,
                port: u32,
                ep: Option<&schema::flow::Endpoint>,
                svc: Option<&schema::flow::Service>,
                names: &[String]| {
        let mut namespace = ep.map_or("", |e| e.namespace.as_str());
        let pod = ep.map_or("", |e| e.pod_name.as_str());
        let service = svc.map_or("", |s| s.name.as_str());
        if let Some(svc) = svc {
            namespace = svc.namespace.as_str();
        }
        let join = |name: &str| {
            if namespace.is_empty() {
                name.to_owned()
            } else {
                format!("{namespace}/{name}")
            }
        };
        let host = if !pod.is_empty() {
            join(pod)
        } else if !service.is_empty() {
            join(service)
        } else if !names.is_empty() {
            names.join(",")
        } else {
            addr.to_owned()
        };
        match port {
            0 if host.contains(':') => host,
            0 => host,
            port if host.contains(':') => format!("[{host}]:{port}"),
            port => format!("{host}:{port}"),
        }
    };
    (
        host(
            &ip.source,
            sport,
            flow.source.as_ref(),
            flow.source_service.as_ref(),
            &flow.source_names,
        ),
        host(
            &ip.destination,
            dport,
            flow.destination.as_ref(),
            flow.destination_service.as_ref(),
            &flow.destination_names,
        ),
    )
}

/// The TYPE column: observation point, drop reason, `policy-verdict:<match> <dir>` or L7 kind.
pub fn flow_type(flow: &Flow) -> String {
    if let Some(l7) = flow.l7.as_ref() {
        let kind = l7.r#type().as_str_name().to_ascii_lowercase();
        return match l7.record.as_ref() {
            Some(layer7::Record::Http(_)) => format!("http-{kind}"),
            Some(layer7::Record::Dns(dns)) => format!("dns-{kind} {}", dns.observation_source),
            None => format!("l7-{kind}"),
        };
    }
    let Some(event) = flow.event_type.as_ref() else {
        return "UNKNOWN".to_owned();
    };
    match event.r#type {
        monitor::TRACE => trace_point_name(event.sub_type).to_owned(),
        monitor::DROP => drop_reason_text(event.sub_type),
        monitor::POLICY_VERDICT => format!(
            "policy-verdict:{} {}",
            match_type_name(flow.policy_match_type),
            flow.traffic_direction().as_str_name()
        ),
        monitor::CAPTURE => flow.debug_capture_point().as_str_name().to_owned(),
        _ => "UNKNOWN".to_owned(),
    }
}

/// The VERDICT column; policy verdict events say ALLOWED, DENIED or AUDITED.
pub fn verdict(flow: &Flow) -> String {
    let policy = flow
        .event_type
        .as_ref()
        .is_some_and(|e| e.r#type == monitor::POLICY_VERDICT);
    let v = flow.verdict();
    match v {
        Verdict::Forwarded | Verdict::Redirected if policy => "ALLOWED".to_owned(),
        Verdict::Dropped | Verdict::Error if policy => "DENIED".to_owned(),
        Verdict::Audit if policy => "AUDITED".to_owned(),
        other => other.as_str_name().to_owned(),
    }
}

/// The SUMMARY column: the flow's `Summary`, which the decoder fills as Hubble's parser does.
pub fn summary(flow: &Flow) -> String {
    #[expect(deprecated, reason = "Hubble's printers still print the summary field")]
    let summary = &flow.summary;
    summary.clone()
}

/// Hubble's L3/L4 summary: `TCP Flags: SYN, ACK`, `UDP`, `ICMPv4 EchoRequest`.
pub(crate) fn l4_summary(flow: &Flow) -> String {
    match flow.l4.as_ref().and_then(|l4| l4.protocol.as_ref()) {
        Some(layer4::Protocol::Tcp(tcp)) => {
            let f = tcp.flags.unwrap_or_default();
            let names: Vec<&str> = [
                (f.syn, "SYN"),
                (f.ack, "ACK"),
                (f.rst, "RST"),
                (f.fin, "FIN"),
                (f.psh, "PSH"),
                (f.urg, "URG"),
                (f.ece, "ECE"),
                (f.cwr, "CWR"),
                (f.ns, "NS"),
            ]
            .into_iter()
            .filter(|(set, _)| *set)
            .map(|(_, name)| name)
            .collect();
            format!("TCP Flags: {}", names.join(", "))
        }
        Some(layer4::Protocol::Udp(_)) => "UDP".to_owned(),
        Some(layer4::Protocol::Sctp(_)) => "SCTP".to_owned(),
        Some(layer4::Protocol::IcmPv4(icmp)) => {
            format!("ICMPv4 {}", icmpv4_name(icmp.r#type, icmp.code))
        }
        Some(layer4::Protocol::IcmPv6(icmp)) => {
            format!("ICMPv6 Type({}) Code({})", icmp.r#type, icmp.code)
        }
        None => String::new(),
    }
}

/// gopacket's names of ICMPv4 types, as Hubble prints them.
fn icmpv4_name(kind: u32, code: u32) -> String {
    let unreachable = [
        "Net",
        "Host",
        "Protocol",
        "Port",
        "FragmentationNeeded",
        "SourceRoutingFailed",
    ];
    match kind {
        0 => "EchoReply".to_owned(),
        3 => match unreachable.get(usize::try_from(code).unwrap_or(usize::MAX)) {
            Some(name) => format!("DestinationUnreachable({name})"),
            None => format!("DestinationUnreachable(Code: {code})"),
        },
        5 => "Redirect".to_owned(),
        8 => "EchoRequest".to_owned(),
        11 => "TimeExceeded".to_owned(),
        12 => "ParameterProblem".to_owned(),
        other => format!("Type({other}) Code({code})"),
    }
}

/// Cilium's trace sub type names (`pkg/monitor/api`).
pub(crate) fn trace_point_name(sub_type: i32) -> &'static str {
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
        12 => "from-crypto",
        13 => "to-crypto",
        _ => "unknown",
    }
}

fn match_type_name(match_type: u32) -> &'static str {
    match match_type {
        0 => "none",
        1 => "L3-Only",
        2 => "L3-L4",
        3 => "L4-Only",
        4 => "all",
        5 => "L3-Proto",
        6 => "Proto-Only",
        _ => "unknown",
    }
}

/// Cilium's drop reason texts (`pkg/monitor/api/drop.go`); unknown codes print as `n, 0`.
pub(crate) fn drop_reason_text(code: i32) -> String {
    let text = match code {
        130 => "Invalid source mac",
        131 => "Invalid destination mac",
        132 => "Invalid source ip",
        133 => "Policy denied",
        134 => "Invalid packet",
        135 => "CT: Truncated or invalid header",
        136 => "Fragmentation needed",
        137 => "CT: Unknown L4 protocol",
        138 => "CT: Can't create entry from packet",
        139 => "Unsupported L3 protocol",
        140 => "Missed tail call",
        141 => "Error writing to packet",
        142 => "Unknown L4 protocol",
        143 => "Unknown ICMPv4 code",
        144 => "Unknown ICMPv4 type",
        145 => "Unknown ICMPv6 code",
        146 => "Unknown ICMPv6 type",
        147 => "Error retrieving tunnel key",
        148 => "Error retrieving tunnel options",
        149 => "Invalid Geneve option",
        150 => "Unknown L3 target address",
        151 => "Stale or unroutable IP",
        152 => "No matching local container found",
        153 => "Error while correcting L3 checksum",
        154 => "Error while correcting L4 checksum",
        155 => "CT: Map insertion failed",
        156 => "Invalid IPv6 extension header",
        157 => "IP fragmentation not supported",
        158 => "Service backend not found",
        160 => "No tunnel/encapsulation endpoint (datapath BUG!)",
        161 => "NAT 46/64 not enabled",
        162 => "Reached EDT rate-limiting drop horizon",
        163 => "Unknown connection tracking state",
        164 => "Local host is unreachable",
        165 => "No configuration available to perform policy decision",
        166 => "Unsupported L2 protocol",
        167 => "No mapping for NAT masquerade",
        168 => "Unsupported protocol for NAT masquerade",
        169 => "FIB lookup failed",
        170 => "Encapsulation traffic is prohibited",
        171 => "Invalid identity",
        172 => "Unknown sender",
        173 => "NAT not needed",
        174 => "Is a ClusterIP",
        175 => "First logical datagram fragment not found",
        176 => "Forbidden ICMPv6 message",
        177 => "Denied by LB src range check",
        178 => "Socket lookup failed",
        179 => "Socket assign failed",
        180 => "Proxy redirection not supported for protocol",
        181 => "Policy denied by denylist",
        182 => "VLAN traffic disallowed by VLAN filter",
        183 => "Incorrect VNI from VTEP",
        184 => "Failed to update or lookup TC buffer",
        185 => "No SID was found for the IP address",
        186 => "SRv6 state was removed during tail call",
        187 => "L3 translation from IPv4 to IPv6 failed (NAT46)",
        188 => "L3 translation from IPv6 to IPv4 failed (NAT64)",
        189 => "Authentication required",
        190 => "No conntrack map found",
        191 => "No nat map found",
        192 => "Invalid ClusterID",
        193 => "Unsupported packet protocol for DSR encapsulation",
        194 => "No egress gateway found",
        195 => "Traffic is unencrypted",
        196 => "TTL exceeded",
        197 => "No node ID found",
        198 => "Rate limited",
        199 => "IGMP handled",
        200 => "IGMP subscribed",
        201 => "Multicast handled",
        202 => "Host datapath not ready",
        203 => "Endpoint policy program not available",
        204 => "No Egress IP configured",
        205 => "Punt to proxy",
        _ => return format!("{code}, 0"),
    };
    text.to_owned()
}
