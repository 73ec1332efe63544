use regex::Regex;

use super::report::Context;
use super::{Problem, Report, peers};
use crate::cilium::{HttpRule, L7Rules, PortProtocol, PortRule, Protocol};
use crate::path::FieldPath;
use crate::port::Port;

const MAX_PORTS: usize = 40;

/// Checks the `toPorts` of the rule at `path`.
pub(super) fn port_rules(report: &mut Report, path: &FieldPath, rules: &[PortRule], cx: Context) {
    for (index, rule) in rules.iter().enumerate() {
        port_rule(report, &path.field("toPorts").index(index), rule, cx);
    }
}

fn port_rule(report: &mut Report, path: &FieldPath, rule: &PortRule, cx: Context) {
    if rule.ports.len() > MAX_PORTS {
        let count = rule.ports.len();
        let problem = Problem::TooMany {
            count,
            max: MAX_PORTS,
        };
        report.error(&path.field("ports"), problem);
    }
    let parsed: Vec<_> = rule
        .ports
        .iter()
        .enumerate()
        .map(|(index, port)| port_protocol(report, &path.field("ports").index(index), port))
        .collect();
    proxy_settings(report, path, rule, cx);

    let Some(l7) = &rule.rules else { return };
    let rules_path = path.field("rules");
    if cx.deny {
        return report.error(&rules_path, Problem::NotAllowedInDeny);
    }
    l7_rules(report, &rules_path, l7, cx);
    if !l7.is_empty() {
        l7_ports(report, path, rule, &parsed, cx);
    }
}

/// TLS interception, SNI and custom listeners: not in deny rules, not supported by Myelin.
fn proxy_settings(report: &mut Report, path: &FieldPath, rule: &PortRule, cx: Context) {
    let fields = [
        ("terminatingTLS", rule.terminating_tls.is_some()),
        ("originatingTLS", rule.originating_tls.is_some()),
        ("serverNames", !rule.server_names.is_empty()),
        ("listener", rule.listener.is_some()),
    ];
    for (field, present) in fields {
        if present {
            let problem = if cx.deny {
                Problem::NotAllowedInDeny
            } else {
                Problem::Unsupported
            };
            report.error(&path.field(field), problem);
        }
    }
}

/// What L7 rules ask of the ports they apply to (Cilium's `PortRule.Validate`).
fn l7_ports(
    report: &mut Report,
    path: &FieldPath,
    rule: &PortRule,
    parsed: &[(Option<Port>, Option<Protocol>)],
    cx: Context,
) {
    let rules_path = path.field("rules");
    if cx.host {
        report.error(&rules_path, Problem::L7InHostPolicy);
    }
    let dns = rule
        .rules
        .as_ref()
        .and_then(|rules| rules.dns.as_ref())
        .is_some_and(|dns| !dns.is_empty());
    if dns && rule.ports.is_empty() {
        report.error(&rules_path.field("dns"), Problem::DnsWithoutPorts);
    }
    for (index, (entry, (port, protocol))) in rule.ports.iter().zip(parsed).enumerate() {
        let port_path = path.field("ports").index(index);
        if *port == Some(Port::Number(0)) {
            report.error(&port_path.field("port"), Problem::L7OnAllPorts);
        }
        if dns {
            if let (Some(Port::Number(port)), Some(end)) = (port, entry.end_port)
                && end > i32::from(*port)
            {
                report.error(&port_path.field("endPort"), Problem::DnsPortRange);
            }
        } else if let Some(protocol) = protocol
            && *protocol != Protocol::Tcp
        {
            let problem = Problem::L7NotTcp(protocol.to_string());
            report.error(&port_path.field("protocol"), problem);
        }
    }
}

/// Checks one `ports` entry, returning what parsed.
fn port_protocol(
    report: &mut Report,
    path: &FieldPath,
    entry: &PortProtocol,
) -> (Option<Port>, Option<Protocol>) {
    let port = match entry.port.as_deref() {
        None | Some("") => {
            report.error(&path.field("port"), Problem::Required);
            None
        }
        Some(text) => {
            let port = Port::parse(text);
            if port.is_none() {
                report.error(&path.field("port"), Problem::Port(text.to_owned()));
            }
            port
        }
    };
    if let Some(end_port) = entry.end_port {
        let end_path = path.field("endPort");
        match &port {
            _ if !(0..=65535).contains(&end_port) => {
                report.error(&end_path, Problem::EndPortOutOfRange { end_port, min: 0 });
            }
            Some(Port::Name(name)) if end_port != 0 => {
                report.error(&end_path, Problem::EndPortWithNamedPort(name.clone()));
            }
            Some(Port::Number(port)) if end_port != 0 && end_port < i32::from(*port) => {
                let port = i64::from(*port);
                report.error(&end_path, Problem::EndPortBelowPort { end_port, port });
            }
            _ => {}
        }
    }
    let protocol = entry.parsed_protocol();
    if protocol.is_none() {
        let value = entry.protocol.clone().unwrap_or_default();
        let allowed = "TCP, UDP, SCTP, ANY";
        report.error(
            &path.field("protocol"),
            Problem::NotOneOf { value, allowed },
        );
    }
    (port, protocol)
}

fn l7_rules(report: &mut Report, path: &FieldPath, l7: &L7Rules, cx: Context) {
    let proto = l7.l7proto.as_deref().filter(|s| !s.is_empty());
    let chosen: Vec<&str> = [
        ("http", l7.http.is_some()),
        ("kafka", l7.kafka.is_some()),
        ("dns", l7.dns.is_some()),
        ("l7proto", proto.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    if chosen.len() > 1 {
        let found = chosen.join(" and ");
        report.error(path, Problem::MultipleL7 { found });
    }
    for (index, http) in l7.http.iter().flatten().enumerate() {
        http_rule(report, &path.field("http").index(index), http);
    }
    if l7.kafka.is_some() {
        report.error(&path.field("kafka"), Problem::Unsupported);
    }
    if let Some(dns) = &l7.dns {
        if cx.ingress {
            report.error(&path.field("dns"), Problem::DnsOnIngress);
        }
        for (index, rule) in dns.iter().enumerate() {
            peers::fqdn_selector(report, &path.field("dns").index(index), rule);
        }
    }
    if proto.is_some() {
        report.error(&path.field("l7proto"), Problem::Unsupported);
    } else if l7.l7.is_some() {
        report.error(&path.field("l7"), Problem::L7WithoutProto);
    }
}

fn http_rule(report: &mut Report, path: &FieldPath, rule: &HttpRule) {
    let patterns = [
        ("method", &rule.method),
        ("path", &rule.path),
        ("host", &rule.host),
    ];
    for (field, pattern) in patterns {
        let Some(pattern) = pattern.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        if let Err(err) = Regex::new(pattern) {
            let value = pattern.to_owned();
            let reason = regex_reason(&err);
            report.error(&path.field(field), Problem::Regex { value, reason });
        }
    }
    for (index, header) in rule.header_matches.iter().enumerate() {
        let header_path = path.field("headerMatches").index(index);
        if header.name.is_empty() {
            report.error(&header_path.field("name"), Problem::Required);
        }
        if let Some(mismatch) = &header.mismatch
            && !matches!(mismatch.as_str(), "LOG" | "ADD" | "DELETE" | "REPLACE")
        {
            let value = mismatch.clone();
            let allowed = "LOG, ADD, DELETE, REPLACE";
            report.error(
                &header_path.field("mismatch"),
                Problem::NotOneOf { value, allowed },
            );
        }
        if header.secret.as_ref().is_some_and(|s| s.name.is_empty()) {
            let name_path = header_path.field("secret").field("name");
            report.error(&name_path, Problem::Required);
        }
    }
}

/// The one-line reason of a regex error (its display spans several lines with a caret).
fn regex_reason(err: &regex::Error) -> String {
    let text = err.to_string();
    let last = text.lines().rev().find(|line| !line.trim().is_empty());
    let last = last.unwrap_or(&text).trim();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}
