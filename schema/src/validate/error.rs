use crate::cidr::CidrError;
use crate::cilium::UnknownEntity;
use crate::labels::SelectorError;
use crate::object::ObjectRef;
use crate::path::FieldPath;

/// One mistake in one object: `default/rule1: spec.ingress[0].toPorts[0].ports[0].port: ...`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {path}: {problem}")]
pub struct ValidationError {
    pub object: ObjectRef,
    pub path: FieldPath,
    pub problem: Problem,
}

impl ValidationError {
    /// Whether the field is valid for Cilium but not supported by Myelin.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self.problem,
            Problem::Unsupported | Problem::UnsupportedValue(_)
        )
    }
}

/// What is wrong with the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("is required")]
    Required,
    #[error("has {count} entries, at most {max} are allowed")]
    TooMany { count: usize, max: usize },
    #[error("{value:?} is not one of {allowed}")]
    NotOneOf {
        value: String,
        allowed: &'static str,
    },
    #[error("is not supported by myelin")]
    Unsupported,
    #[error("{0:?} is not supported by myelin")]
    UnsupportedValue(String),
    #[error("is not allowed in deny rules")]
    NotAllowedInDeny,

    #[error("one of spec or specs is required")]
    NoRules,
    #[error("one of endpointSelector or nodeSelector is required")]
    NoSubject,
    #[error("endpointSelector and nodeSelector cannot both be set")]
    BothSubjects,
    #[error("is only allowed in CiliumClusterwideNetworkPolicy")]
    ClusterwideOnly,

    #[error(transparent)]
    Selector(#[from] SelectorError),
    #[error("{0:?} is not a valid label key")]
    LabelKey(String),
    #[error("{0:?} is not a valid label value")]
    LabelValue(String),

    #[error("{value:?} is not a valid CIDR: {reason}")]
    Cidr { value: String, reason: CidrError },
    #[error("{except:?} is not inside {cidr:?}")]
    ExceptOutsideCidr { except: String, cidr: String },
    #[error("{except:?} is not a strict subset of {cidr:?}")]
    ExceptNotStrictSubset { except: String, cidr: String },
    #[error("exactly one of cidr, cidrGroupRef and cidrGroupSelector is required")]
    CidrRuleChoice,
    #[error(transparent)]
    Entity(#[from] UnknownEntity),
    #[error("exactly one of k8sService and k8sServiceSelector is required")]
    ServiceChoice,
    #[error("exactly one of matchName and matchPattern is required")]
    FqdnChoice,
    #[error("{0:?} may only contain letters, digits, '-', '_' and '.'")]
    MatchName(String),
    #[error("{0:?} may only contain letters, digits, '-', '_', '.' and '*'")]
    MatchPattern(String),
    #[error("is longer than {max} characters")]
    TooLong { max: usize },
    #[error("cannot be combined with {0} in the same rule")]
    FqdnWithOtherPeers(&'static str),
    #[error("cannot be combined with toPorts in the same rule")]
    IcmpWithToPorts,
    #[error("must specify at least one of podSelector, namespaceSelector and ipBlock")]
    EmptyPeer,
    #[error("ipBlock cannot be combined with podSelector or namespaceSelector")]
    IpBlockWithSelector,

    #[error("{0:?} is neither a port number nor a port name")]
    Port(String),
    #[error("port {port} is out of range {min}-65535")]
    PortOutOfRange { port: i64, min: u16 },
    #[error("endPort {end_port} is out of range {min}-65535")]
    EndPortOutOfRange { end_port: i32, min: u16 },
    #[error("endPort {end_port} is less than port {port}")]
    EndPortBelowPort { end_port: i32, port: i64 },
    #[error("endPort cannot be used with named port {0:?}")]
    EndPortWithNamedPort(String),
    #[error("endPort requires a numeric port")]
    EndPortWithoutPort,

    #[error("only one of http, kafka, dns and l7proto may be set, found {found}")]
    MultipleL7 { found: String },
    #[error("L7 rules other than dns need protocol TCP, not {0}")]
    L7NotTcp(String),
    #[error("port 0 (all ports) cannot carry L7 rules")]
    L7OnAllPorts,
    #[error("L7 rules are not supported in host policies (nodeSelector)")]
    L7InHostPolicy,
    #[error("dns rules are not allowed on ingress")]
    DnsOnIngress,
    #[error("dns rules need a port (53)")]
    DnsWithoutPorts,
    #[error("dns rules do not support port ranges")]
    DnsPortRange,
    #[error("l7 requires l7proto")]
    L7WithoutProto,
    #[error("{value:?} is not a valid regular expression: {reason}")]
    Regex { value: String, reason: String },

    #[error("{value:?} is not an ICMP type number (0-255) or {family} type name")]
    IcmpType { value: String, family: &'static str },
}
