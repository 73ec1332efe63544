use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::cidr_block::{ExceptRule, cidr_with_except};
use super::names::is_port_name;
use super::{Problem, Report, selector};
use crate::path::FieldPath;

/// Checks a NetworkPolicy `spec` as the API server's validation does.
pub(super) fn spec(report: &mut Report, spec: Option<&NetworkPolicySpec>) {
    let path = FieldPath::root().field("spec");
    let Some(spec) = spec else {
        return report.error(&path, Problem::Required);
    };
    if let Some(pods) = &spec.pod_selector {
        selector::kubernetes(report, &path.field("podSelector"), pods);
    }
    for (index, policy_type) in spec.policy_types.iter().flatten().enumerate() {
        if !matches!(policy_type.as_str(), "Ingress" | "Egress") {
            let value = policy_type.clone();
            let allowed = "Ingress, Egress";
            report.error(
                &path.field("policyTypes").index(index),
                Problem::NotOneOf { value, allowed },
            );
        }
    }
    for (index, rule) in spec.ingress.iter().flatten().enumerate() {
        let rule_path = path.field("ingress").index(index);
        ports(report, &rule_path.field("ports"), rule.ports.as_deref());
        peers(report, &rule_path.field("from"), rule.from.as_deref());
    }
    for (index, rule) in spec.egress.iter().flatten().enumerate() {
        let rule_path = path.field("egress").index(index);
        ports(report, &rule_path.field("ports"), rule.ports.as_deref());
        peers(report, &rule_path.field("to"), rule.to.as_deref());
    }
}

fn peers(report: &mut Report, path: &FieldPath, peers: Option<&[NetworkPolicyPeer]>) {
    for (index, peer) in peers.unwrap_or_default().iter().enumerate() {
        let peer_path = path.index(index);
        let selectors = peer.pod_selector.is_some() || peer.namespace_selector.is_some();
        match (&peer.ip_block, selectors) {
            (None, false) => report.error(&peer_path, Problem::EmptyPeer),
            (Some(_), true) => report.error(&peer_path, Problem::IpBlockWithSelector),
            _ => {}
        }
        if let Some(pods) = &peer.pod_selector {
            selector::kubernetes(report, &peer_path.field("podSelector"), pods);
        }
        if let Some(namespaces) = &peer.namespace_selector {
            selector::kubernetes(report, &peer_path.field("namespaceSelector"), namespaces);
        }
        if let Some(block) = &peer.ip_block {
            ip_block(report, &peer_path.field("ipBlock"), block);
        }
    }
}

fn ip_block(report: &mut Report, path: &FieldPath, block: &IPBlock) {
    if block.cidr.is_empty() {
        report.error(&path.field("cidr"), Problem::Required);
        return;
    }
    let except = block.except.as_deref().unwrap_or_default();
    cidr_with_except(report, path, &block.cidr, except, ExceptRule::StrictSubset);
}

fn ports(report: &mut Report, path: &FieldPath, ports: Option<&[NetworkPolicyPort]>) {
    for (index, port) in ports.unwrap_or_default().iter().enumerate() {
        self::port(report, &path.index(index), port);
    }
}

fn port(report: &mut Report, path: &FieldPath, port: &NetworkPolicyPort) {
    if let Some(protocol) = &port.protocol
        && !matches!(protocol.as_str(), "TCP" | "UDP" | "SCTP")
    {
        let value = protocol.clone();
        let allowed = "TCP, UDP, SCTP";
        report.error(
            &path.field("protocol"),
            Problem::NotOneOf { value, allowed },
        );
    }
    match &port.port {
        Some(IntOrString::Int(number)) if !(1..=65535).contains(number) => {
            let port = i64::from(*number);
            report.error(
                &path.field("port"),
                Problem::PortOutOfRange { port, min: 1 },
            );
        }
        Some(IntOrString::String(name)) if !is_port_name(name) => {
            report.error(&path.field("port"), Problem::Port(name.clone()));
        }
        _ => {}
    }
    let Some(end_port) = port.end_port else {
        return;
    };
    let end_path = path.field("endPort");
    match &port.port {
        None => report.error(&end_path, Problem::EndPortWithoutPort),
        Some(IntOrString::String(name)) => {
            report.error(&end_path, Problem::EndPortWithNamedPort(name.clone()));
        }
        Some(IntOrString::Int(number)) if end_port < *number => {
            let port = i64::from(*number);
            report.error(&end_path, Problem::EndPortBelowPort { end_port, port });
        }
        Some(IntOrString::Int(_)) => {}
    }
    if !(1..=65535).contains(&end_port) {
        report.error(&end_path, Problem::EndPortOutOfRange { end_port, min: 1 });
    }
}
