//! The node's own addresses, followed as `ip monitor address` follows them: the agent
//! subscribes to the kernel's IPv4 address notifications, writes the addresses its namespace
//! has into `node-addresses` before the derivation starts, then adds and removes rows as
//! addresses come and go, so `reserved:host` always means the node's current addresses.
//! Loopback addresses are not the node's to others; the pod CIDR's router address is a
//! host address whether configured or not, so the derivation keeps it apart.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use futures::StreamExt;
use reconcilers::node_addresses::NodeAddress;
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use statedb::{Db, Table};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Subscribes, records the current addresses (so none added in between is missed), and
/// follows the notifications until `shutdown`.
pub(crate) fn follow(
    db: &Db,
    table: &Table<NodeAddress>,
    router: Ipv4Addr,
    shutdown: &CancellationToken,
) -> io::Result<JoinHandle<()>> {
    let (connection, _handle, mut messages) =
        rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Ipv4Ifaddr])?;
    let driver = tokio::spawn(connection);
    let current = nix::ifaddrs::getifaddrs()
        .map_err(io::Error::from)?
        .filter_map(|a| a.address?.as_sockaddr_in().map(|sin| sin.ip()))
        .filter(|ip| is_node_address(*ip, router));
    let mut txn = db.write_txn(&[table]);
    for ipv4 in current {
        if let Err(error) = txn.insert(table, NodeAddress { ipv4 }) {
            tracing::warn!(%error, %ipv4, "node address not recorded");
        }
    }
    txn.commit();
    let (db, table, shutdown) = (db.clone(), table.clone(), shutdown.clone());
    Ok(tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => break,
                message = messages.next() => message,
            };
            let Some((message, _)) = message else {
                tracing::warn!("address notifications ended: node addresses no longer followed");
                break;
            };
            let (address, present) = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => (m, true),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => (m, false),
                _ => continue,
            };
            let Some(ipv4) = local_ipv4(&address).filter(|ip| is_node_address(*ip, router)) else {
                continue;
            };
            tracing::info!(%ipv4, present, "node address changed: reserved:host follows");
            let mut txn = db.write_txn(&[&table]);
            let row = NodeAddress { ipv4 };
            let written = if present {
                txn.insert(&table, row).map(|_| ())
            } else {
                txn.delete(&table, &row).map(|_| ())
            };
            if let Err(error) = written {
                tracing::warn!(%error, %ipv4, "node address not recorded");
            }
            txn.commit();
        }
        driver.abort();
    }))
}

fn is_node_address(ip: Ipv4Addr, router: Ipv4Addr) -> bool {
    !ip.is_loopback() && ip != router
}

/// The address an `RTM_NEWADDR`/`RTM_DELADDR` is about: `IFA_LOCAL`, else `IFA_ADDRESS` (the
/// peer's on point-to-point links, the local one elsewhere).
fn local_ipv4(message: &AddressMessage) -> Option<Ipv4Addr> {
    let v4 = |attribute: &AddressAttribute| match attribute {
        AddressAttribute::Local(IpAddr::V4(ip)) => Some((0, *ip)),
        AddressAttribute::Address(IpAddr::V4(ip)) => Some((1, *ip)),
        _ => None,
    };
    message
        .attributes
        .iter()
        .filter_map(v4)
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, ip)| ip)
}
