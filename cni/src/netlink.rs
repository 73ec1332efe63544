//! rtnetlink in one network namespace: the few link, address, route and neighbour operations
//! wiring a pod needs, and the reads CHECK needs.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::neighbour::NeighbourState;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteScope};
use nix::sched::{CloneFlags, setns};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};
use schema::agent_api::format_mac;
use tokio::task::JoinHandle;

/// `ENODEV`: the kernel has no such link.
const ENODEV: i32 = 19;
/// `EEXIST`.
pub(crate) const EEXIST: i32 = 17;

/// The main routing table (`RT_TABLE_MAIN`).
const RT_TABLE_MAIN: u8 = 254;

#[derive(Debug, thiserror::Error)]
pub(crate) enum NetlinkError {
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
    #[error("no tokio runtime to drive netlink")]
    NoRuntime,
    #[error("{op}")]
    Request {
        op: String,
        #[source]
        source: io::Error,
    },
}

impl NetlinkError {
    pub(crate) fn raw_os_error(&self) -> Option<i32> {
        match self {
            NetlinkError::Request { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

fn request_error(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let op = op.into();
    move |err| NetlinkError::Request {
        op,
        source: match err {
            rtnetlink::Error::NetlinkError(message) => message.to_io(),
            other => io::Error::other(other.to_string()),
        },
    }
}

/// A link as CHECK and the result need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) index: u32,
    pub(crate) name: String,
    pub(crate) mac: String,
    pub(crate) up: bool,
}

/// An IPv4 route of the main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) dst: Ipv4Addr,
    pub(crate) prefix_len: u8,
    pub(crate) gateway: Option<Ipv4Addr>,
    pub(crate) oif: Option<u32>,
}

/// An rtnetlink connection whose socket lives in one namespace.
pub(crate) struct Netlink {
    handle: Handle,
    connection: JoinHandle<()>,
    /// For messages; `None` is the plugin's own (the node's) namespace.
    netns: Option<PathBuf>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Netlink {
    /// A connection in the plugin's own namespace.
    pub(crate) fn current() -> Result<Netlink, NetlinkError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        Ok(Netlink {
            handle,
            connection: tokio::spawn(connection),
            netns: None,
        })
    }

    /// A connection inside the namespace `netns` (opened from `path`). The socket is created by
    /// a short-lived thread that entered the namespace, so this thread never leaves its own.
    pub(crate) fn in_netns(netns: &File, path: &Path) -> Result<Netlink, NetlinkError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetlinkError::NoRuntime)?;
        let (connection, handle) = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    setns(netns, CloneFlags::CLONE_NEWNET).map_err(|source| {
                        NetlinkError::EnterNetns {
                            path: path.to_owned(),
                            source,
                        }
                    })?;
                    // The socket registers with the runtime's reactor as it is created.
                    let _runtime = runtime.enter();
                    let (connection, handle, _) =
                        rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
                    Ok((connection, handle))
                })
                .join()
        })
        .map_err(|_panic| NetlinkError::SocketThread)??;
        Ok(Netlink {
            handle,
            connection: runtime.spawn(connection),
            netns: Some(path.to_owned()),
        })
    }

    fn place(&self) -> String {
        match &self.netns {
            Some(path) => format!(" in {}", path.display()),
            None => String::new(),
        }
    }

    /// The link called `name`, if there is one.
    pub(crate) async fn link(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let mut links = self.handle.link().get().match_name(name).execute();
        match links.try_next().await {
            Ok(Some(message)) => Ok(Some(link(&message))),
            Ok(None) => Ok(None),
            Err(rtnetlink::Error::NetlinkError(message)) if message.raw_code() == -ENODEV => {
                Ok(None)
            }
            Err(err) => Err(request_error(format!("get link {name}{}", self.place()))(
                err,
            )),
        }
    }

    /// Creates veth `host` here with its peer `peer` created directly inside `peer_netns`, so
    /// the pod's end never exists under a temporary name.
    pub(crate) async fn create_veth(
        &self,
        host: &str,
        peer: &str,
        peer_netns: &File,
    ) -> Result<(), NetlinkError> {
        let peer_message = LinkUnspec::new_with_name(peer)
            .setns_by_fd(peer_netns.as_raw_fd())
            .build();
        let message = LinkVeth::new(host, peer)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_message)))
            .build();
        self.handle
            .link()
            .add(message)
            .execute()
            .await
            .map_err(request_error(format!(
                "create veth {host} (peer {peer}){}",
                self.place()
            )))
    }

    pub(crate) async fn set_up(&self, link: &Link) -> Result<(), NetlinkError> {
        let message: LinkMessage = LinkMessageBuilder::<LinkUnspec>::default()
            .index(link.index)
            .up()
            .build();
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(request_error(format!(
                "set {} up{}",
                link.name,
                self.place()
            )))
    }

    /// Deletes the link called `name`; returns whether there was one. Deleting one end of a veth
    /// deletes its peer, in whatever namespace, with every address and route on either.
    pub(crate) async fn delete_link(&self, name: &str) -> Result<bool, NetlinkError> {
        let Some(link) = self.link(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(true),
            Err(rtnetlink::Error::NetlinkError(message)) if message.raw_code() == -ENODEV => {
                Ok(false)
            }
            Err(err) => Err(request_error(format!("delete link {name}{}", self.place()))(err)),
        }
    }

    pub(crate) async fn add_address(
        &self,
        link: &Link,
        ip: Ipv4Addr,
        prefix_len: u8,
    ) -> Result<(), NetlinkError> {
        self.handle
            .address()
            .add(link.index, IpAddr::V4(ip), prefix_len)
            .replace()
            .execute()
            .await
            .map_err(request_error(format!(
                "add address {ip}/{prefix_len} to {}{}",
                link.name,
                self.place()
            )))
    }

    /// The IPv4 addresses of a link, with prefix lengths.
    pub(crate) async fn addresses(&self, link: &Link) -> Result<Vec<(Ipv4Addr, u8)>, NetlinkError> {
        let mut out = Vec::new();
        let mut messages = self
            .handle
            .address()
            .get()
            .set_link_index_filter(link.index)
            .execute();
        while let Some(message) = messages.try_next().await.map_err(request_error(format!(
            "list addresses of {}{}",
            link.name,
            self.place()
        )))? {
            for attribute in &message.attributes {
                if let AddressAttribute::Address(IpAddr::V4(ip)) = attribute {
                    out.push((*ip, message.header.prefix_len));
                }
            }
        }
        Ok(out)
    }

    /// Installs (or replaces) an IPv4 route in the main table: through `gateway` if given,
    /// else directly on the link (link scope, like `ip route add .. dev ..`).
    pub(crate) async fn replace_route(
        &self,
        dst: Ipv4Addr,
        prefix_len: u8,
        gateway: Option<Ipv4Addr>,
        link: &Link,
    ) -> Result<(), NetlinkError> {
        let mut builder = RouteMessageBuilder::<Ipv4Addr>::new()
            .destination_prefix(dst, prefix_len)
            .output_interface(link.index);
        builder = match gateway {
            Some(gateway) => builder.gateway(gateway),
            None => builder.scope(RouteScope::Link),
        };
        self.handle
            .route()
            .add(builder.build())
            .replace()
            .execute()
            .await
            .map_err(request_error(format!(
                "add route {dst}/{prefix_len}{} dev {}{}",
                gateway.map(|g| format!(" via {g}")).unwrap_or_default(),
                link.name,
                self.place()
            )))
    }

    /// The IPv4 routes of the main table.
    pub(crate) async fn routes(&self) -> Result<Vec<Route>, NetlinkError> {
        let mut out = Vec::new();
        let mut messages = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        while let Some(message) = messages
            .try_next()
            .await
            .map_err(request_error(format!("list routes{}", self.place())))?
        {
            if message.header.table == RT_TABLE_MAIN {
                out.push(route(&message));
            }
        }
        Ok(out)
    }

    /// A permanent neighbour entry, so the pod never has to ARP for its gateway.
    pub(crate) async fn add_permanent_neighbour(
        &self,
        link: &Link,
        ip: Ipv4Addr,
        mac: &[u8; 6],
    ) -> Result<(), NetlinkError> {
        self.handle
            .neighbours()
            .add(link.index, IpAddr::V4(ip))
            .link_layer_address(mac)
            .state(NeighbourState::Permanent)
            .replace()
            .execute()
            .await
            .map_err(request_error(format!(
                "add neighbour {ip} on {}{}",
                link.name,
                self.place()
            )))
    }
}

fn link(message: &LinkMessage) -> Link {
    let mut name = String::new();
    let mut mac = String::new();
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name.clone_from(n),
            LinkAttribute::Address(bytes) => mac = format_mac(bytes),
            _ => {}
        }
    }
    Link {
        index: message.header.index,
        name,
        mac,
        up: message.header.flags.contains(LinkFlags::Up),
    }
}

fn route(message: &RouteMessage) -> Route {
    let mut route = Route {
        dst: Ipv4Addr::UNSPECIFIED,
        prefix_len: message.header.destination_prefix_length,
        gateway: None,
        oif: None,
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(RouteAddress::Inet(dst)) => route.dst = *dst,
            RouteAttribute::Gateway(RouteAddress::Inet(gateway)) => route.gateway = Some(*gateway),
            RouteAttribute::Oif(index) => route.oif = Some(*index),
            _ => {}
        }
    }
    route
}
