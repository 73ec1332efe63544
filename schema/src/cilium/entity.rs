use std::fmt;
use std::str::FromStr;

/// A `fromEntities`/`toEntities` value (SEMANTICS §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entity {
    All,
    Cluster,
    Health,
    Host,
    Ingress,
    Init,
    KubeApiserver,
    None,
    RemoteNode,
    Unmanaged,
    World,
    WorldIpv4,
    WorldIpv6,
}

/// The error for a string that names no [`Entity`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a known entity")]
pub struct UnknownEntity(pub String);

impl Entity {
    /// Every entity, in the order of their names.
    pub const ALL: [Entity; 13] = [
        Entity::All,
        Entity::Cluster,
        Entity::Health,
        Entity::Host,
        Entity::Ingress,
        Entity::Init,
        Entity::KubeApiserver,
        Entity::None,
        Entity::RemoteNode,
        Entity::Unmanaged,
        Entity::World,
        Entity::WorldIpv4,
        Entity::WorldIpv6,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Entity::All => "all",
            Entity::Cluster => "cluster",
            Entity::Health => "health",
            Entity::Host => "host",
            Entity::Ingress => "ingress",
            Entity::Init => "init",
            Entity::KubeApiserver => "kube-apiserver",
            Entity::None => "none",
            Entity::RemoteNode => "remote-node",
            Entity::Unmanaged => "unmanaged",
            Entity::World => "world",
            Entity::WorldIpv4 => "world-ipv4",
            Entity::WorldIpv6 => "world-ipv6",
        }
    }
}

impl FromStr for Entity {
    type Err = UnknownEntity;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Entity::ALL
            .into_iter()
            .find(|entity| entity.as_str() == text)
            .ok_or_else(|| UnknownEntity(text.to_owned()))
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
