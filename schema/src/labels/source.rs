use std::fmt;
use std::str::FromStr;

use super::LabelError;

/// Who attached a label. Declared in alphabetical order so that sorting by source sorts by
/// the printed form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// Selector-only wildcard: matches a label of any source.
    Any,
    /// An IP prefix (`cidr:10.0.0.0/8`).
    Cidr,
    /// A CiliumCIDRGroup the address belongs to.
    CidrGroup,
    /// Set by the container runtime.
    Container,
    /// A toFQDNs selector whose DNS answers the address came from.
    Fqdn,
    /// From Kubernetes: pod labels and the labels the agent derives (namespace, service account).
    K8s,
    /// A node label.
    Node,
    /// The agent's reserved identities: `reserved:host`, `reserved:world`, ...
    Reserved,
    /// Written without a source outside a selector.
    Unspec,
}

impl Source {
    /// Every source, in order.
    pub const ALL: [Source; 9] = [
        Source::Any,
        Source::Cidr,
        Source::CidrGroup,
        Source::Container,
        Source::Fqdn,
        Source::K8s,
        Source::Node,
        Source::Reserved,
        Source::Unspec,
    ];

    /// The name as written before the `:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Any => "any",
            Source::Cidr => "cidr",
            Source::CidrGroup => "cidrgroup",
            Source::Container => "container",
            Source::Fqdn => "fqdn",
            Source::K8s => "k8s",
            Source::Node => "node",
            Source::Reserved => "reserved",
            Source::Unspec => "unspec",
        }
    }

    /// Whether a selector key of this source matches a label of source `label`.
    pub fn selects(self, label: Source) -> bool {
        self == Source::Any || self == label
    }
}

impl FromStr for Source {
    type Err = LabelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == text)
            .ok_or_else(|| LabelError::UnknownSource {
                prefix: text.to_owned(),
            })
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
