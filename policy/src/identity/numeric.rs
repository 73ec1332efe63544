use std::fmt;

/// A security identity: the number the datapath carries for a set of security-relevant labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity(pub u32);

impl Identity {
    /// Invalid as a peer; in policy map keys it is the wildcard "any peer".
    pub const ANY: Identity = Identity(0);
    pub const HOST: Identity = Identity(1);
    pub const WORLD: Identity = Identity(2);
    pub const UNMANAGED: Identity = Identity(3);
    pub const HEALTH: Identity = Identity(4);
    pub const INIT: Identity = Identity(5);
    pub const REMOTE_NODE: Identity = Identity(6);
    pub const KUBE_APISERVER: Identity = Identity(7);
    pub const INGRESS: Identity = Identity(8);
    pub const WORLD_IPV4: Identity = Identity(9);
    pub const WORLD_IPV6: Identity = Identity(10);

    /// Cluster-local identities allocated for pods (cluster id 0).
    pub const FIRST_CLUSTER_LOCAL: u32 = 256;
    pub const LAST_CLUSTER_LOCAL: u32 = 65535;
    /// Node-local identities (bit 24) for CIDR and FQDN prefixes.
    pub const LOCAL_SCOPE: u32 = 1 << 24;
    pub const LAST_LOCAL_SCOPE: u32 = (1 << 25) - 1;

    /// The reserved identities, with the label each one carries (`reserved:<name>`).
    pub const RESERVED: [(Identity, &'static str); 10] = [
        (Identity::HOST, "host"),
        (Identity::WORLD, "world"),
        (Identity::UNMANAGED, "unmanaged"),
        (Identity::HEALTH, "health"),
        (Identity::INIT, "init"),
        (Identity::REMOTE_NODE, "remote-node"),
        (Identity::KUBE_APISERVER, "kube-apiserver"),
        (Identity::INGRESS, "ingress"),
        (Identity::WORLD_IPV4, "world-ipv4"),
        (Identity::WORLD_IPV6, "world-ipv6"),
    ];

    pub fn is_reserved(self) -> bool {
        (1..Self::FIRST_CLUSTER_LOCAL).contains(&self.0)
    }

    pub fn is_local_scope(self) -> bool {
        self.0 & Self::LOCAL_SCOPE != 0
    }

    /// The reserved name (`host`, `world`, ...) of a reserved identity.
    pub fn reserved_name(self) -> Option<&'static str> {
        Self::RESERVED
            .iter()
            .find(|(id, _)| *id == self)
            .map(|(_, name)| *name)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
