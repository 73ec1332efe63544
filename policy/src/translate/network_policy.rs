use std::sync::Arc;

use schema::cilium::{CidrRule, EgressRule, IngressRule, PortProtocol, PortRule, Rule};
use schema::k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort,
};
use schema::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schema::labels::Source;
use schema::object::Kind;
use schema::selector::LabelSelector;

use super::selector::{and, any_namespace, namespace_labels, pin_namespace, sourced};
use super::{Origin, TranslatedRule};

/// A NetworkPolicy as one Cilium rule, the way Cilium's `pkg/k8s/network_policy.go` does it:
/// every peer becomes its own rule entry carrying the policy's ports, and a direction listed
/// in `policyTypes` without rules becomes `[{}]` (isolated, nothing allowed).
pub fn network_policy(policy: &NetworkPolicy) -> Vec<TranslatedRule> {
    let namespace = policy
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| schema::object::DEFAULT_NAMESPACE.to_owned());
    let origin = Arc::new(Origin {
        kind: Kind::NetworkPolicy,
        namespace: Some(namespace.clone()),
        name: policy.metadata.name.clone().unwrap_or_default(),
    });
    let Some(spec) = &policy.spec else {
        return Vec::new();
    };
    let mut subject = spec
        .pod_selector
        .as_ref()
        .map(|s| sourced(&LabelSelector::from(s), Source::K8s))
        .unwrap_or_default();
    pin_namespace(&mut subject, &namespace);

    let ingress_rules = spec.ingress.as_deref().unwrap_or_default();
    let egress_rules = spec.egress.as_deref().unwrap_or_default();
    // The API's defaults: Ingress always, Egress when egress rules exist.
    let (has_ingress, has_egress) = match &spec.policy_types {
        Some(types) if !types.is_empty() => (
            types.iter().any(|t| t == "Ingress"),
            types.iter().any(|t| t == "Egress"),
        ),
        _ => (true, !egress_rules.is_empty()),
    };

    let mut rule = Rule {
        endpoint_selector: Some(subject),
        labels: origin.rule_labels(policy.metadata.uid.as_deref()),
        ..Rule::default()
    };
    let mut ingress_paths = Vec::new();
    let mut egress_paths = Vec::new();
    if has_ingress {
        if ingress_rules.is_empty() {
            rule.ingress.push(IngressRule::default());
            ingress_paths.push("spec.policyTypes".to_owned());
        }
        for (i, np_rule) in ingress_rules.iter().enumerate() {
            let ports = to_ports(np_rule.ports.as_deref());
            for (j, peer) in peers_or_wildcard(np_rule.from.as_deref(), &namespace) {
                let mut entry = IngressRule {
                    to_ports: ports.clone(),
                    ..IngressRule::default()
                };
                match peer {
                    Peer::Endpoints(selector) => entry.from_endpoints.push(selector),
                    Peer::Cidr(cidr) => entry.from_cidr_set.push(cidr),
                }
                rule.ingress.push(entry);
                ingress_paths.push(peer_path("ingress", i, "from", j));
            }
        }
    }
    if has_egress {
        if egress_rules.is_empty() {
            rule.egress.push(EgressRule::default());
            egress_paths.push("spec.policyTypes".to_owned());
        }
        for (i, np_rule) in egress_rules.iter().enumerate() {
            let ports = to_ports(np_rule.ports.as_deref());
            for (j, peer) in peers_or_wildcard(np_rule.to.as_deref(), &namespace) {
                let mut entry = EgressRule {
                    to_ports: ports.clone(),
                    ..EgressRule::default()
                };
                match peer {
                    Peer::Endpoints(selector) => entry.to_endpoints.push(selector),
                    Peer::Cidr(cidr) => entry.to_cidr_set.push(cidr),
                }
                rule.egress.push(entry);
                egress_paths.push(peer_path("egress", i, "to", j));
            }
        }
    }
    let mut translated = TranslatedRule::new(origin, rule, "spec".to_owned());
    translated.ingress_paths = ingress_paths;
    translated.egress_paths = egress_paths;
    vec![translated]
}

enum Peer {
    Endpoints(LabelSelector),
    Cidr(CidrRule),
}

fn peer_path(dir: &str, rule: usize, field: &str, peer: Option<usize>) -> String {
    match peer {
        Some(j) => format!("spec.{dir}[{rule}].{field}[{j}]"),
        None => format!("spec.{dir}[{rule}]"),
    }
}

/// The peers of one NetworkPolicy rule; none means every source or destination, which Cilium
/// writes as the wildcard endpoint selector `{}` (all identities, world included).
fn peers_or_wildcard(
    peers: Option<&[NetworkPolicyPeer]>,
    namespace: &str,
) -> Vec<(Option<usize>, Peer)> {
    let peers = peers.unwrap_or_default();
    if peers.is_empty() {
        return vec![(None, Peer::Endpoints(LabelSelector::default()))];
    }
    peers
        .iter()
        .enumerate()
        .filter_map(|(j, peer)| self::peer(peer, namespace).map(|p| (Some(j), p)))
        .collect()
}

fn peer(peer: &NetworkPolicyPeer, namespace: &str) -> Option<Peer> {
    if let Some(block) = &peer.ip_block {
        return Some(Peer::Cidr(CidrRule {
            cidr: Some(block.cidr.clone()),
            except: block.except.clone().unwrap_or_default(),
            ..CidrRule::default()
        }));
    }
    let pods = peer
        .pod_selector
        .as_ref()
        .map(|s| sourced(&LabelSelector::from(s), Source::K8s));
    match &peer.namespace_selector {
        Some(namespaces) => {
            let namespaces = LabelSelector::from(namespaces);
            let mut selector = namespace_labels(&namespaces);
            if namespaces.is_empty() {
                any_namespace(&mut selector);
            }
            Some(Peer::Endpoints(and(selector, pods.unwrap_or_default())))
        }
        // A pod selector alone means pods of the policy's own namespace.
        None => pods.map(|mut selector| {
            pin_namespace(&mut selector, namespace);
            Peer::Endpoints(selector)
        }),
    }
}

/// NetworkPolicy ports as Cilium port rules: protocol defaults to TCP, a missing port means
/// every port (`"0"`), named ports stay names.
fn to_ports(ports: Option<&[NetworkPolicyPort]>) -> Vec<PortRule> {
    let ports = ports.unwrap_or_default();
    if ports.is_empty() {
        return Vec::new();
    }
    let ports = ports
        .iter()
        .map(|port| PortProtocol {
            port: Some(match &port.port {
                Some(IntOrString::Int(n)) => n.to_string(),
                Some(IntOrString::String(name)) => name.clone(),
                None => "0".to_owned(),
            }),
            end_port: port.end_port,
            protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".to_owned())),
        })
        .collect();
    vec![PortRule {
        ports,
        ..PortRule::default()
    }]
}
