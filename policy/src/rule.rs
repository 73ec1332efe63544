//! The compiled rule model the engine evaluates: selectors parsed, ports typed, L7 rules as
//! matchers. One [`Rule`] per translated Cilium rule.

use std::sync::Arc;

use schema::cidr::Cidr;
use schema::cilium::{IcmpFamily, Protocol};
use schema::labels::{Label, Selector};

use crate::l7::{FqdnPattern, L7Rules};
use crate::translate::Origin;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Direction::Ingress => 0,
            Direction::Egress => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub origin: Arc<Origin>,
    /// `spec` or `specs[i]`.
    pub path: String,
    pub labels: Vec<Label>,
    pub subject: Subject,
    pub ingress: Vec<PeerRule>,
    pub ingress_deny: Vec<PeerRule>,
    pub egress: Vec<PeerRule>,
    pub egress_deny: Vec<PeerRule>,
    /// `enableDefaultDeny` per direction (indexed by [`Direction::index`]); `None` = true.
    pub default_deny: [Option<bool>; 2],
    /// Prefixes the peers name, each needing an identity; `true` when pod addresses inside
    /// the prefix must match too (NetworkPolicy `ipBlock`).
    pub prefixes: Vec<(Cidr, bool)>,
    /// `toFQDNs` patterns; IPs learned for matching names get their `fqdn:` labels.
    pub fqdns: Vec<FqdnPattern>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Endpoints(Selector),
    /// Host firewall rules (`nodeSelector`); they select no endpoint.
    Nodes(Selector),
}

/// One entry of `ingress`, `egress`, `ingressDeny` or `egressDeny`.
#[derive(Debug, Clone)]
pub struct PeerRule {
    /// Where the user wrote it: `spec.ingress[0]`.
    pub path: String,
    /// The union of peers. The empty selector is the wildcard (every identity, world included);
    /// no selector at all matches nothing.
    pub peers: Vec<Selector>,
    pub l4: L4,
}

/// The ports and ICMP types a peer rule allows or denies; both empty means all of them.
#[derive(Debug, Clone, Default)]
pub struct L4 {
    pub ports: Vec<PortMatch>,
    pub icmps: Vec<IcmpMatch>,
}

#[derive(Debug, Clone)]
pub struct PortMatch {
    pub protocol: Protocol,
    pub port: PortSpec,
    pub l7: Option<Arc<L7Rules>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortSpec {
    All,
    Range(u16, u16),
    /// A container port name, resolved against the pods on the destination side.
    Named(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpMatch {
    pub family: IcmpFamily,
    pub icmp_type: u8,
}

impl Rule {
    pub fn peer_rules(&self, dir: Direction, deny: bool) -> &[PeerRule] {
        match (dir, deny) {
            (Direction::Ingress, false) => &self.ingress,
            (Direction::Ingress, true) => &self.ingress_deny,
            (Direction::Egress, false) => &self.egress,
            (Direction::Egress, true) => &self.egress_deny,
        }
    }

    /// Whether the rule puts its subjects into enforcement for `dir` (Cilium's "touches"):
    /// `ingress: []` does not, `ingress: [{}]` does.
    pub fn touches(&self, dir: Direction) -> bool {
        !self.peer_rules(dir, false).is_empty() || !self.peer_rules(dir, true).is_empty()
    }

    /// Whether a direction this rule touches is default-deny (`enableDefaultDeny` unset or
    /// true).
    pub fn default_deny(&self, dir: Direction) -> bool {
        self.default_deny[dir.index()].unwrap_or(true)
    }

    pub fn subject_selector(&self) -> Option<&Selector> {
        match &self.subject {
            Subject::Endpoints(selector) => Some(selector),
            Subject::Nodes(_) => None,
        }
    }
}

impl L4 {
    pub fn is_all(&self) -> bool {
        self.ports.is_empty() && self.icmps.is_empty()
    }

    pub fn has_named_ports(&self) -> bool {
        self.ports
            .iter()
            .any(|p| matches!(p.port, PortSpec::Named(_)))
    }
}
