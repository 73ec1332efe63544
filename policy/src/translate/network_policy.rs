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
    let origin = Arc::new(Origin::of(Kind::NetworkPolicy, &policy.metadata));
    let namespace = origin.namespace.clone().unwrap_or_default();
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

    let rule = Rule {
        endpoint_selector: Some(subject),
        labels: origin.rule_labels(policy.metadata.uid.as_deref()),
        ..Rule::default()
    };
    let mut translated = TranslatedRule::new(origin, rule, "spec".to_owned());
    if has_ingress {
        let rules = ingress_rules
            .iter()
            .map(|r| (r.from.as_deref(), r.ports.as_deref()));
        let (entries, paths) = direction(rules, "ingress", "from", &namespace, |to_ports, peer| {
            let mut entry = IngressRule {
                to_ports,
                ..IngressRule::default()
            };
            match peer {
                Peer::Endpoints(selector) => entry.from_endpoints.push(selector),
                Peer::Cidr(cidr) => entry.from_cidr_set.push(cidr),
            }
            entry
        });
        translated.rule.ingress = entries;
        translated.ingress_paths = paths;
    }
    if has_egress {
        let rules = egress_rules
            .iter()
            .map(|r| (r.to.as_deref(), r.ports.as_deref()));
        let (entries, paths) = direction(rules, "egress", "to", &namespace, |to_ports, peer| {
            let mut entry = EgressRule {
                to_ports,
                ..EgressRule::default()
            };
            match peer {
                Peer::Endpoints(selector) => entry.to_endpoints.push(selector),
                Peer::Cidr(cidr) => entry.to_cidr_set.push(cidr),
            }
            entry
        });
        translated.rule.egress = entries;
        translated.egress_paths = paths;
    }
    vec![translated]
}

/// One direction's entries and their paths: an entry per peer of every rule, each carrying the
/// rule's ports; no rules at all is `[{}]`, the isolated direction that allows nothing.
fn direction<'a, R: Default>(
    rules: impl ExactSizeIterator<
        Item = (
            Option<&'a [NetworkPolicyPeer]>,
            Option<&'a [NetworkPolicyPort]>,
        ),
    >,
    dir: &str,
    field: &str,
    namespace: &str,
    entry: impl Fn(Vec<PortRule>, Peer) -> R,
) -> (Vec<R>, Vec<String>) {
    if rules.len() == 0 {
        return (vec![R::default()], vec!["spec.policyTypes".to_owned()]);
    }
    let mut entries = Vec::new();
    let mut paths = Vec::new();
    for (i, (peers, ports)) in rules.enumerate() {
        let ports = to_ports(ports);
        for (j, peer) in peers_or_wildcard(peers, namespace) {
            entries.push(entry(ports.clone(), peer));
            paths.push(match j {
                Some(j) => format!("spec.{dir}[{i}].{field}[{j}]"),
                None => format!("spec.{dir}[{i}]"),
            });
        }
    }
    (entries, paths)
}

enum Peer {
    Endpoints(LabelSelector),
    Cidr(CidrRule),
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
