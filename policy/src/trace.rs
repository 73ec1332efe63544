//! One connection evaluated on both ends, exactly as the datapath decides it: the sender's
//! egress map state and the receiver's ingress map state, then the L7 proxy if either end
//! redirects.

use std::net::IpAddr;
use std::str::FromStr;

use schema::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cluster::{Cluster, PodInfo, ServiceInfo};
use crate::identity::Identity;
use crate::l7::{HttpRequest, L7Parser, L7Request};
use crate::mapstate::{
    Decision, Effect, Key, PROTO_ICMP, PROTO_SCTP, PROTO_TCP, PROTO_UDP, Source,
};
use crate::rule::Direction;
use crate::translate::Origin;

/// One end of a connection, as `policy trace` names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    Pod {
        namespace: String,
        name: String,
    },
    Host,
    RemoteNode,
    Ip(IpAddr),
    Service {
        namespace: String,
        name: String,
    },
    /// An address the DNS proxy learned for the name.
    Fqdn(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    #[error(
        "{0:?} is not a peer: use ns/pod, host, remote-node, world:IP, ip:IP, svc:ns/name or fqdn:NAME"
    )]
    BadPeer(String),
    #[error("{0:?} is not a probe: use PORT/PROTOCOL, e.g. 80/TCP")]
    BadProbe(String),
    #[error("no pod {0}")]
    NoPod(String),
    #[error("no service {0}")]
    NoService(String),
    #[error("service {0} has no backend pod")]
    NoBackend(String),
    #[error("service {service} has no port {port}")]
    NoServicePort { service: String, port: u16 },
    #[error("no address learned for {0}: pass --fqdn-ip {0}=IP")]
    NoFqdnIp(String),
    #[error("no cluster DNS pod (a pod in kube-system labelled k8s-app=kube-dns)")]
    NoDnsPod,
}

impl FromStr for Peer {
    type Err = TraceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || TraceError::BadPeer(text.to_owned());
        let ns_name = |rest: &str| -> Result<(String, String), TraceError> {
            match rest.split_once('/') {
                Some((ns, name)) if !ns.is_empty() && !name.is_empty() => {
                    Ok((ns.to_owned(), name.to_owned()))
                }
                _ => Err(bad()),
            }
        };
        match text {
            "host" => return Ok(Peer::Host),
            "remote-node" => return Ok(Peer::RemoteNode),
            _ => {}
        }
        if let Some(rest) = text
            .strip_prefix("world:")
            .or_else(|| text.strip_prefix("ip:"))
        {
            return rest.parse().map(Peer::Ip).map_err(|_| bad());
        }
        if let Some(rest) = text.strip_prefix("svc:") {
            let (namespace, name) = ns_name(rest)?;
            return Ok(Peer::Service { namespace, name });
        }
        if let Some(rest) = text.strip_prefix("fqdn:") {
            return Ok(Peer::Fqdn(rest.trim_end_matches('.').to_ascii_lowercase()));
        }
        let (namespace, name) = ns_name(text)?;
        Ok(Peer::Pod { namespace, name })
    }
}

/// A protocol and port (for ICMP, the type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Probe {
    pub proto: u8,
    pub port: u16,
}

impl Probe {
    pub fn tcp(port: u16) -> Self {
        Self {
            proto: PROTO_TCP,
            port,
        }
    }
}

impl FromStr for Probe {
    type Err = TraceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || TraceError::BadProbe(text.to_owned());
        let (port, proto) = text.split_once('/').unwrap_or((text, "TCP"));
        let proto = match proto.to_ascii_uppercase().as_str() {
            "TCP" => PROTO_TCP,
            "UDP" => PROTO_UDP,
            "SCTP" => PROTO_SCTP,
            _ => return Err(bad()),
        };
        let port = port.parse().map_err(|_| bad())?;
        Ok(Self { proto, port })
    }
}

impl std::fmt::Display for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{}",
            self.port,
            crate::mapstate::proto_name(self.proto)
        )
    }
}

/// An HTTP request to evaluate against L7 rules.
#[derive(Debug, Clone, Default)]
pub struct Http {
    pub method: Option<String>,
    pub path: Option<String>,
    pub host: Option<String>,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default)]
pub struct Request {
    pub http: Option<Http>,
    /// A DNS query name (the destination is then the cluster DNS pod, 53/UDP).
    pub dns: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// The DNS proxy answered REFUSED.
    Refused,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::Refused => "refused",
        }
    }
}

/// A rule that took part in a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRef {
    pub origin: Option<Origin>,
    /// `spec.ingress[0]`, or what a synthetic entry stands for.
    pub path: String,
    pub effect: &'static str,
}

/// One end's decision.
#[derive(Debug, Clone)]
pub struct Side {
    pub direction: Direction,
    /// The endpoint whose map state decided (`ns/pod`); `None` when that end is not a local
    /// endpoint and nothing is enforced there.
    pub endpoint: Option<String>,
    pub identity: Option<Identity>,
    pub peer_identity: Identity,
    pub decision: Decision,
    pub verdict: Verdict,
    pub rules: Vec<RuleRef>,
    /// Rules that select the endpoint at all (to explain a default deny).
    pub selected_by: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Trace {
    pub verdict: Verdict,
    pub http_status: Option<u16>,
    pub egress: Side,
    pub ingress: Side,
    /// L7 rules consulted, when traffic went through the proxy.
    pub l7: Vec<RuleRef>,
    pub probe: Probe,
}

struct End<'a> {
    pod: Option<&'a PodInfo>,
    identity: Identity,
    ipblock: Option<Identity>,
    name: String,
}

/// Evaluates one connection from `from` to `to`.
pub fn trace(
    cluster: &Cluster,
    from: &Peer,
    to: &Peer,
    probe: Probe,
    request: &Request,
    fqdn_ips: &[(String, IpAddr)],
) -> Result<Trace, TraceError> {
    let src = resolve(cluster, from, fqdn_ips)?;
    let (dst, probe) = match (to, request.dns.is_some()) {
        (_, true) => (
            dns_server(cluster)?,
            Probe {
                proto: PROTO_UDP,
                port: 53,
            },
        ),
        (Peer::Service { namespace, name }, false) => {
            let (service, backend) = service_backend(cluster, namespace, name)?;
            let end = End::pod(cluster, backend, service_host(namespace, name));
            (end, target_probe(service, backend, probe)?)
        }
        (peer, false) => (resolve(cluster, peer, fqdn_ips)?, probe),
    };
    let egress = side(cluster, Direction::Egress, &src, &dst, probe);
    let ingress = side(cluster, Direction::Ingress, &dst, &src, probe);
    let mut l7 = Vec::new();
    let mut http_status = None;
    let l4_allowed = egress.verdict == Verdict::Allowed && ingress.verdict == Verdict::Allowed;
    let mut verdict = if l4_allowed {
        Verdict::Allowed
    } else {
        Verdict::Denied
    };
    if l4_allowed {
        let http = request.http.clone().unwrap_or_default();
        let host = http.host.clone().unwrap_or_else(|| dst.name.clone());
        let http_request = L7Request::Http(HttpRequest {
            method: http.method.as_deref().unwrap_or("GET"),
            path: http.path.as_deref().unwrap_or("/"),
            host: &host,
            headers: &http.headers,
        });
        for (side, owner, peer) in [(&egress, &src, &dst), (&ingress, &dst, &src)] {
            let Decision::Redirected { parser, .. } = side.decision else {
                continue;
            };
            let l7_request = match (parser, request.dns.as_deref()) {
                (L7Parser::Http, _) => http_request,
                (L7Parser::Dns, Some(name)) => L7Request::Dns(name),
                // Without a query there is nothing for the DNS proxy to judge: the flow is open.
                (L7Parser::Dns, None) => continue,
            };
            let Some(map) = owner
                .pod
                .and_then(|pod| cluster.engine.map_state(pod.identity))
            else {
                continue;
            };
            let peers: Vec<Identity> = std::iter::once(peer.identity).chain(peer.ipblock).collect();
            let policy = map.l7_policy(side.direction, &peers, probe.proto, probe.port);
            let allowing = policy.allowing(&l7_request);
            if allowing.is_empty() {
                verdict = match parser {
                    L7Parser::Http => {
                        http_status = Some(403);
                        Verdict::Denied
                    }
                    L7Parser::Dns => Verdict::Refused,
                };
                break;
            }
            l7.extend(allowing.into_iter().map(|s| rule_ref(cluster, s, "allow")));
        }
        if verdict == Verdict::Allowed && probe.proto == PROTO_TCP {
            let redirected = [&egress, &ingress].iter().any(|s| {
                matches!(
                    s.decision,
                    Decision::Redirected {
                        parser: L7Parser::Http,
                        ..
                    }
                )
            });
            if request.http.is_some() || redirected {
                http_status = Some(200);
            }
        }
    }
    Ok(Trace {
        verdict,
        http_status,
        egress,
        ingress,
        l7,
        probe,
    })
}

/// Which pod can reach which at L3/L4, rows = sources, columns = destinations, both in
/// [`Cluster::pods`] order (a redirect to the proxy counts as allowed: the connection is
/// accepted). A pod reaching itself is evaluated like any other pair, as upstream's e2e tests
/// expect: they probe the pod's own Service, which hairpins through the node.
pub fn matrix(cluster: &Cluster, probe: Probe) -> Vec<Vec<bool>> {
    let ends: Vec<End<'_>> = cluster
        .pods()
        .map(|pod| End::pod(cluster, pod, pod.name.clone()))
        .collect();
    ends.iter()
        .map(|src| {
            ends.iter()
                .map(|dst| {
                    decision(cluster, Direction::Egress, src, dst, probe).allows()
                        && decision(cluster, Direction::Ingress, dst, src, probe).allows()
                })
                .collect()
        })
        .collect()
}

/// What `owner`'s map state decides for traffic with `peer`; nothing is enforced at an end
/// that is not a local endpoint.
fn decision(
    cluster: &Cluster,
    direction: Direction,
    owner: &End<'_>,
    peer: &End<'_>,
    probe: Probe,
) -> Decision {
    owner
        .pod
        .and_then(|pod| cluster.engine.map_state(pod.identity))
        .map_or(Decision::NotEnforced, |map| {
            map.decide(
                direction,
                peer.identity,
                peer.ipblock,
                probe.proto,
                probe.port,
            )
        })
}

fn side(
    cluster: &Cluster,
    direction: Direction,
    owner: &End<'_>,
    peer: &End<'_>,
    probe: Probe,
) -> Side {
    let mut side = Side {
        direction,
        endpoint: None,
        identity: None,
        peer_identity: peer.identity,
        decision: Decision::NotEnforced,
        verdict: Verdict::Allowed,
        rules: Vec::new(),
        selected_by: Vec::new(),
    };
    let Some(pod) = owner.pod else { return side };
    side.endpoint = Some(format!("{}/{}", pod.namespace, pod.name));
    side.identity = Some(pod.identity);
    let Some(map) = cluster.engine.map_state(pod.identity) else {
        return side;
    };
    side.decision = decision(cluster, direction, owner, peer, probe);
    side.selected_by = cluster
        .engine
        .rules_selecting(pod.identity)
        .filter(|r| r.touches(direction))
        .map(|r| format!("{} {}", r.origin, r.path))
        .collect();
    side.selected_by.dedup();
    let keys: Vec<Key> = match side.decision {
        Decision::NotEnforced | Decision::NoMatch => Vec::new(),
        Decision::Allowed { key } | Decision::Redirected { key, .. } => vec![key],
        Decision::Denied { key } => std::iter::once(key).chain(key.covering()).collect(),
    };
    let deny = !side.decision.allows();
    if deny {
        side.verdict = Verdict::Denied;
    }
    for key in keys {
        for (source, effect) in map.contributions(&key) {
            let (wanted, effect_name) = match effect {
                Effect::Deny => (deny, "deny"),
                Effect::Allow => (!deny, "allow"),
                Effect::L7(_) => (!deny, "redirect"),
            };
            if wanted {
                side.rules.push(rule_ref(cluster, source, effect_name));
            }
        }
    }
    side
}

fn rule_ref(cluster: &Cluster, source: &Source, effect: &'static str) -> RuleRef {
    match source {
        Source::Rule {
            rule,
            direction,
            deny,
            index,
            ..
        } => {
            let found = cluster.engine.rule(*rule);
            let path = found
                .and_then(|r| r.peer_rules(*direction, *deny).get(usize::from(*index)))
                .map(|pr| pr.path.clone())
                .unwrap_or_default();
            RuleRef {
                origin: found.map(|r| (*r.origin).clone()),
                path,
                effect,
            }
        }
        Source::DefaultAllow(direction) => RuleRef {
            origin: None,
            path: format!("enableDefaultDeny.{}: false", direction.as_str()),
            effect,
        },
        Source::Localhost => RuleRef {
            origin: None,
            path: "the local host may always reach local endpoints".to_owned(),
            effect,
        },
    }
}

impl<'a> End<'a> {
    fn pod(cluster: &Cluster, pod: &'a PodInfo, name: String) -> Self {
        End {
            pod: Some(pod),
            identity: pod.identity,
            ipblock: cluster.engine.ipblock_identity(pod.ip),
            name,
        }
    }

    fn outside(identity: Identity, ipblock: Option<Identity>, name: String) -> Self {
        End {
            pod: None,
            identity,
            ipblock,
            name,
        }
    }
}

fn resolve<'a>(
    cluster: &'a Cluster,
    peer: &Peer,
    fqdn_ips: &[(String, IpAddr)],
) -> Result<End<'a>, TraceError> {
    match peer {
        Peer::Pod { namespace, name } => {
            let pod = cluster
                .pod(namespace, name)
                .ok_or_else(|| TraceError::NoPod(format!("{namespace}/{name}")))?;
            Ok(End::pod(cluster, pod, pod.name.clone()))
        }
        Peer::Host => Ok(End::outside(Identity::HOST, None, "host".to_owned())),
        Peer::RemoteNode => Ok(End::outside(
            Identity::REMOTE_NODE,
            None,
            "remote-node".to_owned(),
        )),
        Peer::Ip(ip) => Ok(match cluster.pod_by_ip(*ip) {
            Some(pod) => End::pod(cluster, pod, pod.name.clone()),
            None => End::outside(cluster.engine.world_identity(*ip), None, ip.to_string()),
        }),
        Peer::Fqdn(name) => {
            let ip = fqdn_ips
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, ip)| *ip)
                .ok_or_else(|| TraceError::NoFqdnIp(name.clone()))?;
            let identity = cluster
                .engine
                .fqdn_identity(ip)
                .unwrap_or_else(|| cluster.engine.world_identity(ip));
            Ok(End::outside(identity, None, name.clone()))
        }
        Peer::Service { namespace, name } => {
            let (_, backend) = service_backend(cluster, namespace, name)?;
            Ok(End::pod(cluster, backend, service_host(namespace, name)))
        }
    }
}

fn service_host(namespace: &str, name: &str) -> String {
    format!("{name}.{namespace}.svc.cluster.local")
}

/// Policy sees the backend after service translation: the first backend pod.
fn service_backend<'a>(
    cluster: &'a Cluster,
    namespace: &str,
    name: &str,
) -> Result<(&'a ServiceInfo, &'a PodInfo), TraceError> {
    let id = format!("{namespace}/{name}");
    let service = cluster
        .service(namespace, name)
        .ok_or_else(|| TraceError::NoService(id.clone()))?;
    let backend = *cluster
        .backends(service)
        .first()
        .ok_or(TraceError::NoBackend(id))?;
    Ok((service, backend))
}

/// The probe as the backend receives it: the service port translated to its target port.
fn target_probe(
    service: &ServiceInfo,
    backend: &PodInfo,
    probe: Probe,
) -> Result<Probe, TraceError> {
    let (_, proto, target) = service
        .ports
        .iter()
        .find(|(port, proto, _)| *port == probe.port && *proto == probe.proto)
        .ok_or_else(|| TraceError::NoServicePort {
            service: format!("{}/{}", service.namespace, service.name),
            port: probe.port,
        })?;
    let port = match target {
        IntOrString::Int(n) => u16::try_from(*n).unwrap_or(probe.port),
        IntOrString::String(port_name) => backend
            .named_ports
            .get(&port_name.to_ascii_lowercase())
            .and_then(|ports| ports.iter().find(|(p, _)| p == proto))
            .map_or(probe.port, |(_, n)| *n),
    };
    Ok(Probe {
        proto: *proto,
        port,
    })
}

fn dns_server(cluster: &Cluster) -> Result<End<'_>, TraceError> {
    let pod = cluster
        .pods()
        .find(|p| {
            p.namespace == "kube-system"
                && p.labels.get("k8s-app").map(String::as_str) == Some("kube-dns")
        })
        .ok_or(TraceError::NoDnsPod)?;
    Ok(End::pod(cluster, pod, pod.name.clone()))
}

/// ICMP echo request as a probe.
pub fn icmp_echo_request() -> Probe {
    Probe {
        proto: PROTO_ICMP,
        port: 8,
    }
}
