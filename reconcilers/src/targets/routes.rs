//! Routing-table target: installs, deletes and lists the routes Myelin owns in one network
//! namespace, over rtnetlink.
//!
//! Every route this target installs carries the routing protocol number [`RTPROT_MYELIN`]
//! (`proto 193` in `ip route`), and [`RouteTarget::list_owned`] and [`RouteTarget::delete`] only
//! ever see or touch routes with that protocol, so pruning never removes a route that an
//! administrator, DHCP or the kernel installed.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope, RouteType, RouteVia,
};
use nix::sched::{CloneFlags, setns};
use rtnetlink::{Handle, RouteMessageBuilder};
use tokio::task::JoinHandle;

mod operations;
#[cfg(test)]
mod tests;

pub use operations::RouteOps;

/// The routing protocol number (`rtm_protocol`) of every route Myelin installs.
///
/// Unassigned in the kernel's `rtnetlink.h` and in iproute2's `rt_protos`; `ip route` shows it as
/// `proto 193`.
pub const RTPROT_MYELIN: u8 = 193;

/// The main routing table (`RT_TABLE_MAIN`).
pub const RT_TABLE_MAIN: u32 = 254;

/// The metric the kernel gives an IPv6 route installed without one (`IP6_RT_PRIO_USER`).
const IP6_DEFAULT_METRIC: u32 = 1024;

/// `ESRCH`: what the kernel answers when asked to delete a route it does not have.
const ESRCH: i32 = 3;
/// `ENODEV`: what the kernel answers when asked for a link it does not have.
const ENODEV: i32 = 19;

/// One route the agent wants in a namespace's routing table.
///
/// The kernel aliases a few specs to the same route; [`RouteSpec::canonical`] picks one of them
/// and [`RouteTarget::list_owned`] returns canonical specs. Independently of that, the kernel
/// records the output device it resolved for a gateway route, so a route installed with
/// `dev: None` is listed with `dev: Some(..)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteSpec {
    /// Routing table id, e.g. [`RT_TABLE_MAIN`]; 0 (unspec) is rejected.
    pub table: u32,
    /// Destination network address; bits beyond `prefix_len` must be zero.
    pub dst: IpAddr,
    pub prefix_len: u8,
    /// Next hop. An IPv4 route may have an IPv6 gateway (`RTA_VIA`), not the reverse.
    pub gateway: Option<IpAddr>,
    /// Output interface name, resolved to an ifindex in the target namespace.
    pub dev: Option<String>,
    /// Metric (`RTA_PRIORITY`).
    pub priority: Option<u32>,
}

impl RouteSpec {
    /// The spec the kernel reports back for this route: an IPv4 metric of 0 and an IPv6 metric of
    /// 0 or 1024 are the kernel's default metric and become `None`.
    pub fn canonical(mut self) -> Self {
        if matches!(
            (self.dst, self.priority),
            (_, Some(0)) | (IpAddr::V6(_), Some(IP6_DEFAULT_METRIC))
        ) {
            self.priority = None;
        }
        self
    }

    /// Checks what the kernel would otherwise reject with a bare `EINVAL` or silently rewrite.
    fn validate(&self) -> Result<(), NetlinkError> {
        if self.table == 0 {
            return Err(NetlinkError::UnspecTable);
        }
        let network = match self.dst {
            IpAddr::V4(dst) => {
                self.prefix_len <= 32 && dst.to_bits() & !v4_mask(self.prefix_len) == 0
            }
            IpAddr::V6(dst) => {
                self.prefix_len <= 128 && dst.to_bits() & !v6_mask(self.prefix_len) == 0
            }
        };
        if !network {
            return Err(NetlinkError::NotAPrefix {
                dst: self.dst,
                prefix_len: self.prefix_len,
            });
        }
        if let (IpAddr::V6(_), Some(gateway @ IpAddr::V4(_))) = (self.dst, self.gateway) {
            return Err(NetlinkError::GatewayFamily { gateway });
        }
        Ok(())
    }
}

fn v4_mask(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len.min(32)))
        .unwrap_or(0)
}

fn v6_mask(prefix_len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix_len.min(128)))
        .unwrap_or(0)
}

/// Formats like `ip route` prints a route: `10.1.0.0/24 via 10.0.0.1 dev eth0 table 254 metric 10`.
impl fmt::Display for RouteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.dst, self.prefix_len)?;
        if let Some(gateway) = self.gateway {
            write!(f, " via {gateway}")?;
        }
        if let Some(dev) = &self.dev {
            write!(f, " dev {dev}")?;
        }
        write!(f, " table {}", self.table)?;
        if let Some(metric) = self.priority {
            write!(f, " metric {metric}")?;
        }
        Ok(())
    }
}

/// Errors of [`RouteTarget`].
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("no tokio runtime to drive the netlink connection")]
    NoRuntime(#[source] tokio::runtime::TryCurrentError),
    #[error("open network namespace {}", path.display())]
    OpenNetns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("enter network namespace {}", path.display())]
    EnterNetns {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("open netlink socket")]
    Socket(#[source] io::Error),
    #[error("netlink socket thread panicked")]
    SocketThread,
    #[error("replace route {route}")]
    Replace {
        route: RouteSpec,
        #[source]
        source: NetlinkError,
    },
    #[error("delete route {route}")]
    Delete {
        route: RouteSpec,
        #[source]
        source: NetlinkError,
    },
    #[error("list routes")]
    List(#[source] NetlinkError),
}

impl RouteError {
    /// The errno with which the kernel rejected the request, if it did.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Replace { source, .. } | Self::Delete { source, .. } | Self::List(source) => {
                source.raw_os_error()
            }
            _ => None,
        }
    }
}

/// Why one request about a route failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("link {name:?} not found")]
    LinkNotFound { name: String },
    #[error("{dst}/{prefix_len} is not a network prefix")]
    NotAPrefix { dst: IpAddr, prefix_len: u8 },
    #[error("ipv4 gateway {gateway} for an ipv6 destination")]
    GatewayFamily { gateway: IpAddr },
    #[error("table 0 (unspec) cannot hold routes")]
    UnspecTable,
    #[error("build route message: {0}")]
    Message(String),
    /// The kernel's answer, e.g. `Network is unreachable (os error 101)`.
    #[error(transparent)]
    Kernel(io::Error),
    #[error("netlink request failed")]
    Request(#[source] Box<rtnetlink::Error>),
}

impl NetlinkError {
    /// The errno with which the kernel rejected the request, if it did.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Self::Kernel(err) => err.raw_os_error(),
            _ => None,
        }
    }
}

impl From<rtnetlink::Error> for NetlinkError {
    fn from(err: rtnetlink::Error) -> Self {
        match err {
            rtnetlink::Error::NetlinkError(message) => Self::Kernel(message.to_io()),
            other => Self::Request(Box::new(other)),
        }
    }
}

type Connection = rtnetlink::proto::Connection<rtnetlink::packet_route::RouteNetlinkMessage>;

/// A routing-table target bound to one network namespace.
///
/// Holds an rtnetlink connection whose socket was created inside the namespace; the socket keeps
/// that namespace, so the target can be used from any task. The task driving the connection is
/// aborted when the target is dropped.
#[derive(Debug)]
pub struct RouteTarget {
    handle: Handle,
    connection: JoinHandle<()>,
    netns: Option<PathBuf>,
}

impl Drop for RouteTarget {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl RouteTarget {
    /// Opens a netlink connection inside the namespace at `netns_path` (e.g. `/run/netns/foo`), or
    /// the current one if `None`, and spawns its driver onto the current tokio runtime.
    ///
    /// The socket is created by a short-lived thread that entered the namespace, so the calling
    /// thread never changes namespace. Blocks for that thread (microseconds).
    pub fn open(netns_path: Option<&Path>) -> Result<RouteTarget, RouteError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(RouteError::NoRuntime)?;
        let (connection, handle) = match netns_path {
            None => new_connection()?,
            Some(path) => {
                let netns = File::open(path).map_err(|source| RouteError::OpenNetns {
                    path: path.to_owned(),
                    source,
                })?;
                std::thread::scope(|scope| {
                    scope
                        .spawn(|| {
                            setns(&netns, CloneFlags::CLONE_NEWNET).map_err(|source| {
                                RouteError::EnterNetns {
                                    path: path.to_owned(),
                                    source,
                                }
                            })?;
                            // The socket registers with the runtime's reactor as it is created.
                            let _runtime = runtime.enter();
                            new_connection()
                        })
                        .join()
                })
                .map_err(|_panic| RouteError::SocketThread)??
            }
        };
        let connection = runtime.spawn(connection);
        tracing::debug!(netns = ?netns_path, "opened route target");
        Ok(RouteTarget {
            handle,
            connection,
            netns: netns_path.map(Path::to_owned),
        })
    }

    /// Installs the route, or replaces the one with the same table, destination and metric
    /// (`NLM_F_CREATE | NLM_F_REPLACE`), tagged with [`RTPROT_MYELIN`].
    pub async fn replace(&self, route: &RouteSpec) -> Result<(), RouteError> {
        let error = |source| RouteError::Replace {
            route: route.clone(),
            source,
        };
        route.validate().map_err(error)?;
        let oif = match &route.dev {
            Some(dev) => Some(self.link_index(dev).await.map_err(error)?),
            None => None,
        };
        // Like `ip route add`: an IPv4 route without a gateway has link scope.
        let scope = if route.gateway.is_none() && route.dst.is_ipv4() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        let message = route_message(route, oif, scope, RouteType::Unicast).map_err(error)?;
        self.handle
            .route()
            .add(message)
            .replace()
            .execute()
            .await
            .map_err(|err| error(err.into()))?;
        tracing::debug!(netns = ?self.netns, %route, "replaced route");
        Ok(())
    }

    /// Deletes the route if Myelin installed it. A route that is absent, or whose `dev` no longer
    /// exists, counts as deleted. Unset fields match any value, like `ip route del`.
    pub async fn delete(&self, route: &RouteSpec) -> Result<(), RouteError> {
        let error = |source| RouteError::Delete {
            route: route.clone(),
            source,
        };
        route.validate().map_err(error)?;
        let oif = match &route.dev {
            Some(dev) => match self.link_index(dev).await {
                Ok(index) => Some(index),
                Err(NetlinkError::LinkNotFound { .. }) => {
                    // The kernel removed every route through the link with it.
                    tracing::debug!(netns = ?self.netns, %route, "route already absent: no such link");
                    return Ok(());
                }
                Err(err) => return Err(error(err)),
            },
            None => None,
        };
        // Like `ip route del`: scope "nowhere" and type unspec match any scope and type.
        let message =
            route_message(route, oif, RouteScope::NoWhere, RouteType::Unspec).map_err(error)?;
        match self.handle.route().del(message).execute().await {
            Ok(()) => tracing::debug!(netns = ?self.netns, %route, "deleted route"),
            Err(rtnetlink::Error::NetlinkError(message)) if message.raw_code() == -ESRCH => {
                tracing::debug!(netns = ?self.netns, %route, "route already absent");
            }
            Err(err) => return Err(error(err.into())),
        }
        Ok(())
    }

    /// Every IPv4 and IPv6 route in the namespace, in any table, whose protocol is
    /// [`RTPROT_MYELIN`], as canonical specs with the output device resolved back to its name.
    pub async fn list_owned(&self) -> Result<Vec<RouteSpec>, RouteError> {
        let mut owned = Vec::new();
        let dumps = [
            RouteMessageBuilder::<Ipv4Addr>::new().build(),
            RouteMessageBuilder::<Ipv6Addr>::new().build(),
        ];
        for request in dumps {
            // Without NETLINK_GET_STRICT_CHK the kernel ignores the request's table and dumps
            // every table of the address family.
            let mut routes = self.handle.route().get(request).execute();
            while let Some(message) = routes
                .try_next()
                .await
                .map_err(|err| RouteError::List(err.into()))?
            {
                if u8::from(message.header.protocol) == RTPROT_MYELIN {
                    owned.push(message);
                }
            }
        }
        let links = if owned.iter().any(|message| oif(message).is_some()) {
            self.link_names().await.map_err(RouteError::List)?
        } else {
            HashMap::new()
        };
        Ok(owned
            .iter()
            .filter_map(|message| route_spec(message, &links))
            .collect())
    }

    async fn link_index(&self, name: &str) -> Result<u32, NetlinkError> {
        let not_found = || NetlinkError::LinkNotFound {
            name: name.to_owned(),
        };
        let mut links = self.handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link.header.index),
            Ok(None) => Err(not_found()),
            Err(rtnetlink::Error::NetlinkError(message)) if message.raw_code() == -ENODEV => {
                Err(not_found())
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn link_names(&self) -> Result<HashMap<u32, String>, NetlinkError> {
        let mut names = HashMap::new();
        let mut links = self.handle.link().get().execute();
        while let Some(link) = links.try_next().await? {
            let name = link
                .attributes
                .into_iter()
                .find_map(|attribute| match attribute {
                    LinkAttribute::IfName(name) => Some(name),
                    _ => None,
                });
            if let Some(name) = name {
                names.insert(link.header.index, name);
            }
        }
        Ok(names)
    }
}

fn new_connection() -> Result<(Connection, Handle), RouteError> {
    let (connection, handle, _unsolicited) =
        rtnetlink::new_connection().map_err(RouteError::Socket)?;
    Ok((connection, handle))
}

fn route_message(
    route: &RouteSpec,
    oif: Option<u32>,
    scope: RouteScope,
    kind: RouteType,
) -> Result<RouteMessage, NetlinkError> {
    let message = |err: &dyn fmt::Display| NetlinkError::Message(err.to_string());
    let mut builder = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(route.dst, route.prefix_len)
        .map_err(|err| message(&err))?
        .table_id(route.table)
        .protocol(RouteProtocol::from(RTPROT_MYELIN))
        .scope(scope)
        .kind(kind);
    if let Some(gateway) = route.gateway {
        builder = builder.gateway(gateway).map_err(|err| message(&err))?;
    }
    if let Some(oif) = oif {
        builder = builder.output_interface(oif);
    }
    if let Some(metric) = route.priority {
        builder = builder.priority(metric);
    }
    Ok(builder.build())
}

fn oif(message: &RouteMessage) -> Option<u32> {
    message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            RouteAttribute::Oif(index) => Some(*index),
            _ => None,
        })
}

/// The spec of a dumped route; `None` if it is not an IP route or its device vanished meanwhile.
fn route_spec(message: &RouteMessage, links: &HashMap<u32, String>) -> Option<RouteSpec> {
    let mut dst = match message.header.address_family {
        netlink_packet_route::AddressFamily::Inet => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        netlink_packet_route::AddressFamily::Inet6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        _ => return None,
    };
    let mut table = u32::from(message.header.table);
    let mut gateway = None;
    let mut dev = None;
    let mut priority = None;
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(address) => dst = ip(address)?,
            RouteAttribute::Gateway(address) => gateway = ip(address),
            RouteAttribute::Via(RouteVia::Inet(address)) => gateway = Some(IpAddr::V4(*address)),
            RouteAttribute::Via(RouteVia::Inet6(address)) => gateway = Some(IpAddr::V6(*address)),
            RouteAttribute::Oif(index) => match links.get(index) {
                Some(name) => dev = Some(name.clone()),
                None => {
                    tracing::debug!(ifindex = index, "skipping route through a vanished link");
                    return None;
                }
            },
            RouteAttribute::Priority(metric) => priority = Some(*metric),
            // Tables above 255 only fit the attribute, the header then says RT_TABLE_COMPAT.
            RouteAttribute::Table(id) => table = *id,
            _ => {}
        }
    }
    let spec = RouteSpec {
        table,
        dst,
        prefix_len: message.header.destination_prefix_length,
        gateway,
        dev,
        priority,
    };
    Some(spec.canonical())
}

fn ip(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(address) => Some(IpAddr::V4(*address)),
        RouteAddress::Inet6(address) => Some(IpAddr::V6(*address)),
        _ => None,
    }
}
