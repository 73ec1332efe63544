use super::cidr_block::{ExceptRule, cidr_with_except};
use super::report::Context;
use super::{Problem, Report, icmp, ports, selector};
use crate::cidr::Cidr;
use crate::cilium::{
    Authentication, CidrRule, EgressRule, Entity, FqdnSelector, IcmpRule, IngressRule, PortRule,
    ToService,
};
use crate::path::FieldPath;
use crate::selector::LabelSelector;

const MAX_FQDN_LEN: usize = 255;

pub(super) fn ingress(report: &mut Report, path: &FieldPath, rule: &IngressRule, cx: Context) {
    selectors(report, &path.field("fromEndpoints"), &rule.from_endpoints);
    selectors(report, &path.field("fromRequires"), &rule.from_requires);
    selectors(report, &path.field("fromNodes"), &rule.from_nodes);
    cidrs(report, &path.field("fromCIDR"), &rule.from_cidr);
    cidr_sets(report, &path.field("fromCIDRSet"), &rule.from_cidr_set);
    entities(report, &path.field("fromEntities"), &rule.from_entities);
    if !rule.from_groups.is_empty() {
        report.error(&path.field("fromGroups"), Problem::Unsupported);
    }
    common(
        report,
        path,
        &rule.to_ports,
        &rule.icmps,
        rule.authentication.as_ref(),
        cx,
    );
}

pub(super) fn egress(report: &mut Report, path: &FieldPath, rule: &EgressRule, cx: Context) {
    selectors(report, &path.field("toEndpoints"), &rule.to_endpoints);
    selectors(report, &path.field("toRequires"), &rule.to_requires);
    selectors(report, &path.field("toNodes"), &rule.to_nodes);
    cidrs(report, &path.field("toCIDR"), &rule.to_cidr);
    cidr_sets(report, &path.field("toCIDRSet"), &rule.to_cidr_set);
    entities(report, &path.field("toEntities"), &rule.to_entities);
    services(report, &path.field("toServices"), &rule.to_services);
    if !rule.to_groups.is_empty() {
        report.error(&path.field("toGroups"), Problem::Unsupported);
    }
    fqdns(report, &path.field("toFQDNs"), rule, cx);
    common(
        report,
        path,
        &rule.to_ports,
        &rule.icmps,
        rule.authentication.as_ref(),
        cx,
    );
}

/// Checks a `toFQDNs` entry or a DNS L7 rule.
pub(super) fn fqdn_selector(report: &mut Report, path: &FieldPath, fqdn: &FqdnSelector) {
    let name = fqdn.match_name.as_deref().filter(|s| !s.is_empty());
    let pattern = fqdn.match_pattern.as_deref().filter(|s| !s.is_empty());
    if name.is_some() == pattern.is_some() {
        report.error(path, Problem::FqdnChoice);
    }
    let dns_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if let Some(name) = name {
        let name_path = path.field("matchName");
        if name.len() > MAX_FQDN_LEN {
            report.error(&name_path, Problem::TooLong { max: MAX_FQDN_LEN });
        }
        if !name.chars().all(dns_char) {
            report.error(&name_path, Problem::MatchName(name.to_owned()));
        }
    }
    if let Some(pattern) = pattern {
        let pattern_path = path.field("matchPattern");
        if pattern.len() > MAX_FQDN_LEN {
            report.error(&pattern_path, Problem::TooLong { max: MAX_FQDN_LEN });
        }
        if !pattern.chars().all(|c| dns_char(c) || c == '*') {
            report.error(&pattern_path, Problem::MatchPattern(pattern.to_owned()));
        }
    }
}

fn fqdns(report: &mut Report, path: &FieldPath, rule: &EgressRule, cx: Context) {
    if rule.to_fqdns.is_empty() {
        return;
    }
    if cx.deny {
        return report.error(path, Problem::NotAllowedInDeny);
    }
    for (index, fqdn) in rule.to_fqdns.iter().enumerate() {
        fqdn_selector(report, &path.index(index), fqdn);
    }
    let others = [
        ("toEndpoints", rule.to_endpoints.is_empty()),
        ("toCIDR", rule.to_cidr.is_empty()),
        ("toCIDRSet", rule.to_cidr_set.is_empty()),
        ("toEntities", rule.to_entities.is_empty()),
        ("toServices", rule.to_services.is_empty()),
        ("toGroups", rule.to_groups.is_empty()),
        ("toNodes", rule.to_nodes.is_empty()),
    ];
    for (other, empty) in others {
        if !empty {
            report.error(path, Problem::FqdnWithOtherPeers(other));
        }
    }
}

fn common(
    report: &mut Report,
    path: &FieldPath,
    to_ports: &[PortRule],
    icmps: &[IcmpRule],
    authentication: Option<&Authentication>,
    cx: Context,
) {
    ports::port_rules(report, path, to_ports, cx);
    icmp::rules(report, &path.field("icmps"), icmps);
    if !icmps.is_empty() && !to_ports.is_empty() {
        report.error(&path.field("icmps"), Problem::IcmpWithToPorts);
    }
    if let Some(auth) = authentication {
        let auth_path = path.field("authentication");
        if cx.deny {
            report.error(&auth_path, Problem::NotAllowedInDeny);
        } else {
            match auth.mode.as_str() {
                "disabled" => {}
                "required" | "test-always-fail" => report.error(
                    &auth_path.field("mode"),
                    Problem::UnsupportedValue(auth.mode.clone()),
                ),
                other => report.error(
                    &auth_path.field("mode"),
                    Problem::NotOneOf {
                        value: other.to_owned(),
                        allowed: "disabled, required, test-always-fail",
                    },
                ),
            }
        }
    }
}

fn selectors(report: &mut Report, path: &FieldPath, selectors: &[LabelSelector]) {
    for (index, peer) in selectors.iter().enumerate() {
        selector::cilium(report, &path.index(index), peer);
    }
}

fn cidrs(report: &mut Report, path: &FieldPath, cidrs: &[String]) {
    for (index, cidr) in cidrs.iter().enumerate() {
        if cidr.is_empty() {
            report.error(&path.index(index), Problem::Required);
        } else if let Err(reason) = Cidr::parse_prefix_or_addr(cidr) {
            let value = cidr.clone();
            report.error(&path.index(index), Problem::Cidr { value, reason });
        }
    }
}

fn cidr_sets(report: &mut Report, path: &FieldPath, rules: &[CidrRule]) {
    for (index, rule) in rules.iter().enumerate() {
        let rule_path = path.index(index);
        let cidr = rule.cidr.as_deref().filter(|s| !s.is_empty());
        let group_ref = rule.cidr_group_ref.as_deref().filter(|s| !s.is_empty());
        let choices = [
            cidr.is_some(),
            group_ref.is_some(),
            rule.cidr_group_selector.is_some(),
        ];
        if choices.iter().filter(|set| **set).count() != 1 {
            report.error(&rule_path, Problem::CidrRuleChoice);
        }
        if group_ref.is_some() {
            report.error(&rule_path.field("cidrGroupRef"), Problem::Unsupported);
        }
        if rule.cidr_group_selector.is_some() {
            report.error(&rule_path.field("cidrGroupSelector"), Problem::Unsupported);
        }
        if let Some(cidr) = cidr {
            cidr_with_except(report, &rule_path, cidr, &rule.except, ExceptRule::Inside);
        }
    }
}

fn entities(report: &mut Report, path: &FieldPath, entities: &[String]) {
    for (index, entity) in entities.iter().enumerate() {
        if let Err(err) = entity.parse::<Entity>() {
            report.error(&path.index(index), err.into());
        }
    }
}

fn services(report: &mut Report, path: &FieldPath, services: &[ToService]) {
    for (index, service) in services.iter().enumerate() {
        let service_path = path.index(index);
        let by_name = service.k8s_service.as_ref();
        let by_selector = service.k8s_service_selector.as_ref();
        if by_name.is_some() == by_selector.is_some() {
            report.error(&service_path, Problem::ServiceChoice);
        }
        if let Some(by_name) = by_name
            && by_name.service_name.as_deref().is_none_or(str::is_empty)
        {
            let name_path = service_path.field("k8sService").field("serviceName");
            report.error(&name_path, Problem::Required);
        }
        if let Some(by_selector) = by_selector {
            let selector_path = service_path.field("k8sServiceSelector").field("selector");
            selector::cilium(report, &selector_path, &by_selector.selector);
        }
    }
}
