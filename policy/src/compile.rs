//! Translated Cilium rules into the engine's [`Rule`] model.
//!
//! Every kind of peer becomes a label selector over identity labels: entities select reserved
//! labels, CIDRs select `cidr:` labels (carried by every identity of a prefix inside them),
//! `toFQDNs` select `fqdn:` labels, `toServices` select the service's pods.

use std::collections::BTreeMap;
use std::sync::Arc;

use schema::cidr::{Cidr, CidrError};
use schema::cilium::{
    CidrRule, EgressRule, Entity, FqdnSelector, IcmpRule, IngressRule, L7Rules as ApiL7Rules,
    PortRule, Protocol, ToService,
};
use schema::labels::{LabelError, Operator, Requirement, Selector, SelectorError, Source};
use schema::object::Object;
use schema::port::Port;
use schema::selector::LabelSelector;

use crate::identity::{CLUSTER, POD_NAMESPACE};
use crate::l7::{FqdnPattern, FqdnPatternError, HttpMatcher, L7Rules};
use crate::rule::{IcmpMatch, L4, PeerRule, PortMatch, PortSpec, Rule, Subject};
use crate::translate::{self, Origin, TranslatedRule};

/// What compiling needs to know about the world outside the rule.
pub trait Services {
    /// The pod selector of a service, `None` if the service is unknown or has none.
    fn selector(&self, namespace: &str, name: &str) -> Option<BTreeMap<String, String>>;
    /// Pod selectors of the services in `namespace` (every namespace if `None`) whose labels
    /// match `labels`, with their namespaces.
    fn matching(
        &self,
        namespace: Option<&str>,
        labels: &Selector,
    ) -> Vec<(String, BTreeMap<String, String>)>;
}

/// No services at all.
pub struct NoServices;

impl Services for NoServices {
    fn selector(&self, _: &str, _: &str) -> Option<BTreeMap<String, String>> {
        None
    }

    fn matching(&self, _: Option<&str>, _: &Selector) -> Vec<(String, BTreeMap<String, String>)> {
        Vec::new()
    }
}

pub struct Context<'a> {
    pub cluster: &'a str,
    pub services: &'a dyn Services,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {path}: {problem}")]
pub struct CompileError {
    pub origin: String,
    pub path: String,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error(transparent)]
    Selector(#[from] SelectorError),
    #[error(transparent)]
    Label(#[from] LabelError),
    #[error("{value:?} is not a valid CIDR: {source}")]
    Cidr { value: String, source: CidrError },
    #[error(transparent)]
    Entity(#[from] schema::cilium::UnknownEntity),
    #[error("{0:?} is neither a port number nor a port name")]
    Port(String),
    #[error("{0:?} is not a protocol")]
    Protocol(String),
    #[error("invalid regular expression: {0}")]
    Regex(String),
    #[error(transparent)]
    Fqdn(#[from] FqdnPatternError),
    #[error("is not supported by myelin")]
    Unsupported,
    #[error("one of endpointSelector or nodeSelector is required")]
    NoSubject,
}

/// A policy object ready for the engine: where it came from, its rules as Cilium writes them
/// (what `policy get` prints) and as the engine evaluates them.
#[derive(Debug)]
pub struct Compiled {
    pub origin: Origin,
    pub translated: Vec<TranslatedRule>,
    pub rules: Vec<Rule>,
}

/// Translates and compiles a policy object; `None` for objects that are not policies.
pub fn object(object: &Object, ctx: &Context<'_>) -> Option<Result<Compiled, CompileError>> {
    let translated = translate::object(object)?;
    let rules: Result<Vec<Rule>, CompileError> = translated.iter().map(|t| rule(t, ctx)).collect();
    Some(rules.map(|rules| Compiled {
        origin: Origin::of(object.kind(), object.metadata()),
        translated,
        rules,
    }))
}

/// Compiles one translated rule.
pub fn rule(translated: &TranslatedRule, ctx: &Context<'_>) -> Result<Rule, CompileError> {
    let mut compiler = Compiler {
        translated,
        ctx,
        prefixes: Vec::new(),
        fqdns: Vec::new(),
    };
    compiler.run()
}

struct Compiler<'a> {
    translated: &'a TranslatedRule,
    ctx: &'a Context<'a>,
    prefixes: Vec<(Cidr, bool)>,
    fqdns: Vec<FqdnPattern>,
}

impl Compiler<'_> {
    fn error(&self, path: &str, problem: impl Into<Problem>) -> CompileError {
        CompileError {
            origin: self.translated.origin.to_string(),
            path: path.to_owned(),
            problem: problem.into(),
        }
    }

    fn run(&mut self) -> Result<Rule, CompileError> {
        let t = self.translated;
        let api = &t.rule;
        let subject = match (&api.endpoint_selector, &api.node_selector) {
            (Some(selector), _) => Subject::Endpoints(self.selector(&t.path, selector)?),
            (None, Some(selector)) => Subject::Nodes(self.selector(&t.path, selector)?),
            (None, None) => return Err(self.error(&t.path, Problem::NoSubject)),
        };
        let ingress = self.peer_rules(api.ingress.iter().map(Fields::ingress), &t.ingress_paths)?;
        let ingress_deny = self.peer_rules(
            api.ingress_deny.iter().map(Fields::ingress),
            &t.ingress_deny_paths,
        )?;
        let egress = self.peer_rules(api.egress.iter().map(Fields::egress), &t.egress_paths)?;
        let egress_deny = self.peer_rules(
            api.egress_deny.iter().map(Fields::egress),
            &t.egress_deny_paths,
        )?;
        let default_deny = api
            .enable_default_deny
            .as_ref()
            .map_or([None, None], |d| [d.ingress, d.egress]);
        let mut prefixes = std::mem::take(&mut self.prefixes);
        prefixes.sort();
        prefixes.dedup();
        Ok(Rule {
            origin: Arc::clone(&t.origin),
            path: t.path.clone(),
            labels: api.labels.clone(),
            subject,
            ingress,
            ingress_deny,
            egress,
            egress_deny,
            default_deny,
            prefixes,
            fqdns: std::mem::take(&mut self.fqdns),
        })
    }

    fn peer_rules<'r>(
        &mut self,
        rules: impl Iterator<Item = Fields<'r>>,
        paths: &[String],
    ) -> Result<Vec<PeerRule>, CompileError> {
        rules
            .zip(paths)
            .map(|(rule, path)| self.peer_rule(&rule, path))
            .collect()
    }

    /// One entry of `ingress`/`egress` (or their deny lists); `dir` is `from` or `to`.
    fn peer_rule(&mut self, rule: &Fields<'_>, path: &str) -> Result<PeerRule, CompileError> {
        let dir = rule.dir;
        if rule.unsupported {
            return Err(self.error(path, Problem::Unsupported));
        }
        let mut peers = Vec::new();
        for selector in rule.endpoints {
            peers.push(self.selector(&format!("{path}.{dir}Endpoints"), selector)?);
        }
        for selector in rule.nodes {
            peers.push(self.node_selector(&format!("{path}.{dir}Nodes"), selector)?);
        }
        let sets: Vec<CidrRule> = rule
            .cidr
            .iter()
            .map(|c| cidr_rule(c))
            .chain(rule.cidr_set.iter().cloned())
            .collect();
        peers.extend(self.cidrs(&format!("{path}.{dir}CIDRSet"), &sets)?);
        peers.extend(self.entities(&format!("{path}.{dir}Entities"), rule.entities)?);
        peers.extend(self.services(&format!("{path}.toServices"), rule.services)?);
        peers.extend(self.fqdn_peers(&format!("{path}.toFQDNs"), rule.fqdns)?);
        let l4 = self.l4(path, rule.to_ports, rule.icmps)?;
        Ok(peer_rule(path, rule.has_peers, peers, l4))
    }

    fn selector(&self, path: &str, selector: &LabelSelector) -> Result<Selector, CompileError> {
        Selector::from_label_selector(selector).map_err(|e| self.error(path, e))
    }

    /// Nodes other than this one: the remote-node identity carries no node labels here, so
    /// a node selector selects every remote node.
    fn node_selector(
        &self,
        path: &str,
        selector: &LabelSelector,
    ) -> Result<Selector, CompileError> {
        let parsed = self.selector(path, selector)?;
        let mut requirements = parsed.requirements().to_vec();
        requirements.push(exists(Source::Reserved, "remote-node"));
        Ok(Selector::new(requirements))
    }

    fn cidrs(&mut self, path: &str, sets: &[CidrRule]) -> Result<Vec<Selector>, CompileError> {
        let pods = self.translated.origin.cidr_matches_pods();
        let mut selectors = Vec::new();
        for set in sets {
            let Some(text) = &set.cidr else {
                return Err(self.error(path, Problem::Unsupported));
            };
            let cidr = parse_cidr(text).map_err(|p| self.error(path, p))?;
            let mut except = Vec::new();
            for text in &set.except {
                let e = parse_cidr(text).map_err(|p| self.error(path, p))?;
                self.prefixes.push((e, pods));
                except.push(not_exists(Source::Cidr, &e.to_string()));
            }
            self.prefixes.push((cidr, pods));
            let world = exists(Source::Reserved, "world");
            let prefix = exists(Source::Cidr, &cidr.to_string());
            // Cilium's CIDR selectors never select cluster endpoints: require world.
            let mut base = vec![prefix];
            if !pods {
                base.push(world.clone());
            }
            selectors.push(Selector::new(
                base.into_iter().chain(except.iter().cloned()),
            ));
            if cidr.prefix_len() == 0 {
                // Addresses in no referenced prefix carry only `reserved:world`.
                selectors.push(Selector::new(std::iter::once(world).chain(except)));
            }
        }
        Ok(selectors)
    }

    fn entities(&self, path: &str, entities: &[String]) -> Result<Vec<Selector>, CompileError> {
        let mut selectors = Vec::new();
        for text in entities {
            let entity: Entity = text
                .parse()
                .map_err(|e| self.error(path, Problem::Entity(e)))?;
            let reserved = |names: &[&str]| -> Vec<Selector> {
                names
                    .iter()
                    .map(|name| Selector::new([exists(Source::Reserved, name)]))
                    .collect()
            };
            selectors.extend(match entity {
                Entity::All => vec![Selector::everything()],
                Entity::None => Vec::new(),
                Entity::World | Entity::WorldIpv4 | Entity::WorldIpv6 => reserved(&["world"]),
                Entity::Host => reserved(&["host"]),
                Entity::RemoteNode => reserved(&["remote-node"]),
                Entity::KubeApiserver => reserved(&["kube-apiserver"]),
                Entity::Ingress => reserved(&["ingress"]),
                Entity::Health => reserved(&["health"]),
                Entity::Init => reserved(&["init"]),
                Entity::Unmanaged => reserved(&["unmanaged"]),
                Entity::Cluster => {
                    let mut all = reserved(&[
                        "host",
                        "remote-node",
                        "init",
                        "ingress",
                        "health",
                        "unmanaged",
                        "kube-apiserver",
                    ]);
                    let cluster = [Requirement {
                        source: Source::K8s,
                        key: CLUSTER.to_owned(),
                        operator: Operator::In([self.ctx.cluster.to_owned()].into()),
                    }];
                    all.push(Selector::new(cluster));
                    all
                }
            });
        }
        Ok(selectors)
    }

    fn services(&self, path: &str, services: &[ToService]) -> Result<Vec<Selector>, CompileError> {
        let mut selectors = Vec::new();
        for service in services {
            let found: Vec<(String, BTreeMap<String, String>)> =
                match (&service.k8s_service, &service.k8s_service_selector) {
                    (Some(by_name), _) => {
                        let namespace = by_name.namespace.as_deref().unwrap_or("default");
                        let name = by_name.service_name.as_deref().unwrap_or_default();
                        self.ctx
                            .services
                            .selector(namespace, name)
                            .map(|s| (namespace.to_owned(), s))
                            .into_iter()
                            .collect()
                    }
                    (None, Some(by_labels)) => {
                        let labels = self.selector(path, &by_labels.selector)?;
                        self.ctx
                            .services
                            .matching(by_labels.namespace.as_deref(), &labels)
                    }
                    (None, None) => Vec::new(),
                };
            for (namespace, pods) in found {
                let requirements = pods
                    .iter()
                    .map(|(k, v)| Requirement {
                        source: Source::K8s,
                        key: k.clone(),
                        operator: Operator::In([v.clone()].into()),
                    })
                    .chain([Requirement {
                        source: Source::K8s,
                        key: POD_NAMESPACE.to_owned(),
                        operator: Operator::In([namespace].into()),
                    }]);
                selectors.push(Selector::new(requirements));
            }
        }
        Ok(selectors)
    }

    fn fqdn_peers(
        &mut self,
        path: &str,
        fqdns: &[FqdnSelector],
    ) -> Result<Vec<Selector>, CompileError> {
        let mut selectors = Vec::new();
        for fqdn in fqdns {
            let pattern = fqdn_pattern(fqdn).map_err(|e| self.error(path, e))?;
            selectors.push(Selector::new([exists(Source::Fqdn, pattern.as_str())]));
            self.fqdns.push(pattern);
        }
        Ok(selectors)
    }

    fn l4(&self, path: &str, ports: &[PortRule], icmps: &[IcmpRule]) -> Result<L4, CompileError> {
        let mut l4 = L4::default();
        for (i, port_rule) in ports.iter().enumerate() {
            let path = format!("{path}.toPorts[{i}]");
            let l7 = match &port_rule.rules {
                Some(rules) => self.l7(&path, rules)?,
                None => None,
            };
            let entries: Vec<_> = if port_rule.ports.is_empty() {
                vec![(Protocol::Any, PortSpec::All)]
            } else {
                port_rule
                    .ports
                    .iter()
                    .map(|p| {
                        let protocol = p.parsed_protocol().ok_or_else(|| {
                            let value = p.protocol.clone().unwrap_or_default();
                            self.error(&path, Problem::Protocol(value))
                        })?;
                        let spec = match (p.port.as_deref(), p.parsed_port()) {
                            (None, _) | (_, Some(Port::Number(0))) => PortSpec::All,
                            (_, Some(Port::Number(n))) => {
                                let end = p
                                    .end_port
                                    .and_then(|e| u16::try_from(e).ok())
                                    .filter(|e| *e > n)
                                    .unwrap_or(n);
                                PortSpec::Range(n, end)
                            }
                            (_, Some(Port::Name(name))) => PortSpec::Named(name),
                            (Some(text), None) => {
                                return Err(self.error(&path, Problem::Port(text.to_owned())));
                            }
                        };
                        Ok((protocol, spec))
                    })
                    .collect::<Result<_, _>>()?
            };
            for (protocol, port) in entries {
                l4.ports.push(PortMatch {
                    protocol,
                    port,
                    l7: l7.clone(),
                });
            }
        }
        for rule in icmps {
            for field in &rule.fields {
                let family = field.parsed_family().ok_or_else(|| {
                    let value = field.family.clone().unwrap_or_default();
                    self.error(path, Problem::Protocol(value))
                })?;
                let icmp_type = field.icmp_type.code(family).ok_or_else(|| {
                    self.error(path, Problem::Protocol(field.icmp_type.to_string()))
                })?;
                l4.icmps.push(IcmpMatch { family, icmp_type });
            }
        }
        Ok(l4)
    }

    fn l7(&self, path: &str, rules: &ApiL7Rules) -> Result<Option<Arc<L7Rules>>, CompileError> {
        if rules.kafka.is_some() || rules.l7.is_some() || rules.l7proto.is_some() {
            return Err(self.error(&format!("{path}.rules"), Problem::Unsupported));
        }
        if let Some(http) = &rules.http {
            let matchers = http
                .iter()
                .map(HttpMatcher::new)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    self.error(&format!("{path}.rules.http"), Problem::Regex(e.to_string()))
                })?;
            return Ok(Some(Arc::new(L7Rules::Http(matchers))));
        }
        if let Some(dns) = &rules.dns {
            let patterns = dns
                .iter()
                .map(fqdn_pattern)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.error(&format!("{path}.rules.dns"), e))?;
            return Ok(Some(Arc::new(L7Rules::Dns(patterns))));
        }
        Ok(None)
    }
}

/// The fields ingress and egress rules share, so one compiler serves both; egress-only fields
/// are empty for ingress.
struct Fields<'r> {
    dir: &'static str,
    endpoints: &'r [LabelSelector],
    nodes: &'r [LabelSelector],
    cidr: &'r [String],
    cidr_set: &'r [CidrRule],
    entities: &'r [String],
    services: &'r [ToService],
    fqdns: &'r [FqdnSelector],
    to_ports: &'r [PortRule],
    icmps: &'r [IcmpRule],
    /// `fromRequires`/`toRequires` or groups: valid Cilium that Myelin does not enforce.
    unsupported: bool,
    has_peers: bool,
}

impl<'r> Fields<'r> {
    fn ingress(rule: &'r IngressRule) -> Self {
        Self {
            dir: "from",
            endpoints: &rule.from_endpoints,
            nodes: &rule.from_nodes,
            cidr: &rule.from_cidr,
            cidr_set: &rule.from_cidr_set,
            entities: &rule.from_entities,
            services: &[],
            fqdns: &[],
            to_ports: &rule.to_ports,
            icmps: &rule.icmps,
            unsupported: !rule.from_requires.is_empty() || !rule.from_groups.is_empty(),
            has_peers: rule.has_peers(),
        }
    }

    fn egress(rule: &'r EgressRule) -> Self {
        Self {
            dir: "to",
            endpoints: &rule.to_endpoints,
            nodes: &rule.to_nodes,
            cidr: &rule.to_cidr,
            cidr_set: &rule.to_cidr_set,
            entities: &rule.to_entities,
            services: &rule.to_services,
            fqdns: &rule.to_fqdns,
            to_ports: &rule.to_ports,
            icmps: &rule.icmps,
            unsupported: !rule.to_requires.is_empty() || !rule.to_groups.is_empty(),
            has_peers: rule.has_peers(),
        }
    }
}

/// A peer rule's peers: none written but ports given means any peer.
fn peer_rule(path: &str, has_peers: bool, peers: Vec<Selector>, l4: L4) -> PeerRule {
    let peers = if !has_peers && !l4.is_all() {
        vec![Selector::everything()]
    } else {
        peers
    };
    PeerRule {
        path: path.to_owned(),
        peers,
        l4,
    }
}

fn cidr_rule(cidr: &str) -> CidrRule {
    CidrRule {
        cidr: Some(cidr.to_owned()),
        ..CidrRule::default()
    }
}

fn parse_cidr(text: &str) -> Result<Cidr, Problem> {
    Cidr::parse_prefix_or_addr(text)
        .map(|c| c.network())
        .map_err(|source| Problem::Cidr {
            value: text.to_owned(),
            source,
        })
}

fn fqdn_pattern(fqdn: &FqdnSelector) -> Result<FqdnPattern, FqdnPatternError> {
    match (&fqdn.match_name, &fqdn.match_pattern) {
        (Some(name), _) => FqdnPattern::name(name),
        (None, Some(pattern)) => FqdnPattern::pattern(pattern),
        (None, None) => Err(FqdnPatternError(String::new())),
    }
}

fn exists(source: Source, key: &str) -> Requirement {
    Requirement {
        source,
        key: key.to_owned(),
        operator: Operator::Exists,
    }
}

fn not_exists(source: Source, key: &str) -> Requirement {
    Requirement {
        source,
        key: key.to_owned(),
        operator: Operator::DoesNotExist,
    }
}
