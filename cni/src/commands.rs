//! ADD, DEL, CHECK and STATUS: the agent for addresses and records, rtnetlink for the veth pair,
//! addresses and routes. A failed ADD undoes what it did, newest first, before it reports.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::path::Path;

use schema::agent_api::{
    self, ApiError, EndpointAdd, EndpointReady, EndpointRef, EndpointState, ErrorCode,
    HostInterface, PodRef, Request, Response, parse_mac,
};

use crate::client::{Client, ClientError};
use crate::config::NetConf;
use crate::error::{CniError, Code, error_chain};
use crate::host_name::host_ifname;
use crate::invocation::Invocation;
use crate::netlink::{EEXIST, Link, Netlink, NetlinkError};
use crate::result::AddResult;

pub(crate) async fn add(inv: &Invocation, conf: &NetConf) -> Result<AddResult, CniError> {
    let netns = open_netns(&inv.netns)?;
    let client = Client::new(&conf.agent_socket);
    let pod = match (&inv.args.pod_namespace, &inv.args.pod_name) {
        (Some(namespace), Some(name)) => Some(PodRef {
            namespace: namespace.clone(),
            name: name.clone(),
        }),
        _ => None,
    };
    let response = client
        .request(&Request::EndpointAdd(EndpointAdd {
            container_id: inv.container_id.clone(),
            ifname: inv.ifname.clone(),
            netns: inv.netns.clone(),
            pod,
            ipv4: inv.args.ip,
        }))
        .await;
    let endpoint = expect_endpoint("allocate an address", response)?;
    tracing::info!(ipv4 = %endpoint.ipv4, state = ?endpoint.state, "agent allocated");

    let wired = async {
        let node = Netlink::current().map_err(netlink_failed)?;
        let pod = Netlink::in_netns(&netns, Path::new(&inv.netns)).map_err(netlink_failed)?;
        if endpoint.state == EndpointState::Ready && endpoint.netns == inv.netns {
            match verify(&node, &pod, inv, &endpoint).await {
                Ok(result) => {
                    tracing::info!("already wired up: same result again");
                    return Ok(result);
                }
                Err(err) => {
                    tracing::warn!(error = %err, "recorded endpoint is broken: wiring again")
                }
            }
        }
        wire(&client, &node, &pod, &netns, inv, &endpoint).await
    }
    .await;
    match wired {
        Ok(result) => Ok(result),
        Err(err) => {
            rollback(&client, inv).await;
            Err(err)
        }
    }
}

/// Undoes a failed ADD: the veth (and with it the pod's interface, address and routes, and the
/// node's route), then the address. Failures are logged: the original error is what matters.
async fn rollback(client: &Client, inv: &Invocation) {
    let host = host_ifname(&inv.container_id);
    match Netlink::current() {
        Ok(node) => match node.delete_link(&host).await {
            Ok(true) => tracing::info!(link = %host, "rollback: deleted veth"),
            Ok(false) => {}
            Err(err) => tracing::error!(error = %error_chain(&err), "rollback: cannot delete veth"),
        },
        Err(err) => tracing::error!(error = %error_chain(&err), "rollback: no netlink"),
    }
    match client
        .request(&Request::EndpointDelete(endpoint_ref(inv)))
        .await
    {
        Ok(Response::Deleted(_)) => tracing::info!("rollback: released the address"),
        Ok(other) => tracing::error!(response = ?other, "rollback: agent did not release"),
        Err(err) => {
            tracing::error!(error = %error_chain(&err), "rollback: cannot release the address")
        }
    }
}

async fn wire(
    client: &Client,
    node: &Netlink,
    pod: &Netlink,
    netns: &File,
    inv: &Invocation,
    endpoint: &agent_api::Endpoint,
) -> Result<AddResult, CniError> {
    let host_name = host_ifname(&inv.container_id);
    // Left by an ADD that died half-way, or a broken earlier one: the name is this container's.
    if node.delete_link(&host_name).await.map_err(netlink_failed)? {
        tracing::info!(link = %host_name, "deleted a stale veth");
    }
    if pod
        .link(&inv.ifname)
        .await
        .map_err(netlink_failed)?
        .is_some()
    {
        return Err(interface_exists(inv));
    }
    node.create_veth(&host_name, &inv.ifname, netns)
        .await
        .map_err(|err| match err.raw_os_error() {
            Some(EEXIST) => interface_exists(inv),
            _ => netlink_failed(err),
        })?;
    let host = existing_link(node, &host_name, "node namespace").await?;
    let peer = existing_link(pod, &inv.ifname, &inv.netns).await?;
    let host_mac = parse_mac(&host.mac)
        .ok_or_else(|| CniError::new(Code::Io, format!("{host_name} has no ethernet address")))?;

    enable_forwarding(&host_name)?;
    node.set_up(&host).await.map_err(netlink_failed)?;
    pod.set_up(&peer).await.map_err(netlink_failed)?;
    pod.add_address(&peer, endpoint.ipv4, 32)
        .await
        .map_err(netlink_failed)?;
    pod.replace_route(endpoint.gateway, 32, None, &peer)
        .await
        .map_err(netlink_failed)?;
    pod.replace_route(Ipv4Addr::UNSPECIFIED, 0, Some(endpoint.gateway), &peer)
        .await
        .map_err(netlink_failed)?;
    pod.add_permanent_neighbour(&peer, endpoint.gateway, &host_mac)
        .await
        .map_err(netlink_failed)?;
    node.replace_route(endpoint.ipv4, 32, None, &host)
        .await
        .map_err(netlink_failed)?;

    let response = client
        .request(&Request::EndpointReady(EndpointReady {
            container_id: inv.container_id.clone(),
            ifname: inv.ifname.clone(),
            host: HostInterface {
                ifindex: host.index,
                ifname: host.name.clone(),
                mac: host.mac.clone(),
            },
            container_mac: peer.mac.clone(),
        }))
        .await;
    let ready = expect_endpoint("mark the endpoint ready", response)?;
    tracing::info!(host = %host.name, ifindex = host.index, ipv4 = %ready.ipv4, "endpoint ready");
    Ok(add_result(inv, host, peer, &ready))
}

pub(crate) async fn del(inv: &Invocation, conf: &NetConf) -> Result<(), CniError> {
    let node = Netlink::current().map_err(netlink_failed)?;
    let host = host_ifname(&inv.container_id);
    // The link first: the address must not be handed out while a pod still uses it.
    if node.delete_link(&host).await.map_err(netlink_failed)? {
        tracing::info!(link = %host, "deleted veth");
    }
    let client = Client::new(&conf.agent_socket);
    match client
        .request(&Request::EndpointDelete(endpoint_ref(inv)))
        .await
        .map_err(|err| agent_unavailable("release the address", &err))?
    {
        Response::Deleted(deleted) => {
            match deleted.endpoint {
                Some(endpoint) => tracing::info!(ipv4 = %endpoint.ipv4, "released"),
                None => tracing::info!("agent had no endpoint: nothing to release"),
            }
            Ok(())
        }
        Response::Error(err) => Err(api_error("release the address", err)),
        other => Err(unexpected("release the address", &other)),
    }
}

pub(crate) async fn check(inv: &Invocation, conf: &NetConf) -> Result<(), CniError> {
    let netns = open_netns(&inv.netns)?;
    let client = Client::new(&conf.agent_socket);
    let response = client
        .request(&Request::EndpointGet(endpoint_ref(inv)))
        .await;
    let endpoint = expect_endpoint("read the endpoint", response)?;
    if let Some(prev) = &conf.prev_result {
        let want = format!("{}/32", endpoint.ipv4);
        let listed = prev["ips"]
            .as_array()
            .is_some_and(|ips| ips.iter().any(|ip| ip["address"] == want.as_str()));
        if !listed {
            return Err(check_failed(format!(
                "prevResult does not list the endpoint's address {want}"
            )));
        }
    }
    let node = Netlink::current().map_err(netlink_failed)?;
    let pod = Netlink::in_netns(&netns, Path::new(&inv.netns)).map_err(netlink_failed)?;
    verify(&node, &pod, inv, &endpoint).await.map(|_| ())
}

/// Checks that the pod's networking is as the agent recorded it; returns the ADD result it
/// amounts to.
async fn verify(
    node: &Netlink,
    pod: &Netlink,
    inv: &Invocation,
    endpoint: &agent_api::Endpoint,
) -> Result<AddResult, CniError> {
    let (Some(recorded), Some(container_mac), EndpointState::Ready) =
        (&endpoint.host, &endpoint.container_mac, endpoint.state)
    else {
        return Err(check_failed(format!(
            "endpoint of container {} is not ready",
            inv.container_id
        )));
    };
    let Some(host) = node.link(&recorded.ifname).await.map_err(netlink_failed)? else {
        return Err(check_failed(format!(
            "host interface {} is missing",
            recorded.ifname
        )));
    };
    if host.index != recorded.ifindex || host.mac != recorded.mac {
        return Err(check_failed(format!(
            "host interface {} is index {} mac {}, the agent recorded index {} mac {}",
            host.name, host.index, host.mac, recorded.ifindex, recorded.mac
        )));
    }
    let Some(peer) = pod.link(&inv.ifname).await.map_err(netlink_failed)? else {
        return Err(check_failed(format!(
            "interface {} is missing in {}",
            inv.ifname, inv.netns
        )));
    };
    if &peer.mac != container_mac {
        return Err(check_failed(format!(
            "interface {} in {} has mac {}, not {container_mac}: it was replaced",
            inv.ifname, inv.netns, peer.mac
        )));
    }
    for link in [&host, &peer] {
        if !link.up {
            return Err(check_failed(format!("interface {} is down", link.name)));
        }
    }
    let addresses = pod.addresses(&peer).await.map_err(netlink_failed)?;
    if !addresses.contains(&(endpoint.ipv4, 32)) {
        return Err(check_failed(format!(
            "address {}/32 is missing on {} in {}",
            endpoint.ipv4, inv.ifname, inv.netns
        )));
    }
    let pod_routes = pod.routes().await.map_err(netlink_failed)?;
    let gateway = endpoint.gateway;
    let has = |routes: &[crate::netlink::Route], dst: Ipv4Addr, len: u8, gw, oif| {
        routes
            .iter()
            .any(|r| r.dst == dst && r.prefix_len == len && r.gateway == gw && r.oif == Some(oif))
    };
    if !has(&pod_routes, gateway, 32, None, peer.index) {
        return Err(check_failed(format!(
            "route {gateway}/32 dev {} is missing in {}",
            inv.ifname, inv.netns
        )));
    }
    if !has(
        &pod_routes,
        Ipv4Addr::UNSPECIFIED,
        0,
        Some(gateway),
        peer.index,
    ) {
        return Err(check_failed(format!(
            "default route via {gateway} dev {} is missing in {}",
            inv.ifname, inv.netns
        )));
    }
    let node_routes = node.routes().await.map_err(netlink_failed)?;
    if !has(&node_routes, endpoint.ipv4, 32, None, host.index) {
        return Err(check_failed(format!(
            "route {}/32 dev {} is missing in the node namespace",
            endpoint.ipv4, host.name
        )));
    }
    Ok(add_result(inv, host, peer, endpoint))
}

/// What ADD reports for the pod wired through `host` and `peer` with `endpoint`'s addresses.
fn add_result(
    inv: &Invocation,
    host: Link,
    peer: Link,
    endpoint: &agent_api::Endpoint,
) -> AddResult {
    AddResult {
        host_ifname: host.name,
        host_mac: host.mac,
        ifname: inv.ifname.clone(),
        container_mac: peer.mac,
        sandbox: inv.netns.clone(),
        ipv4: endpoint.ipv4,
        gateway: endpoint.gateway,
    }
}

/// STATUS: nothing if the agent can serve ADDs, error 50 otherwise.
pub(crate) async fn status(conf: &NetConf) -> Result<(), CniError> {
    let client = Client::new(&conf.agent_socket);
    match client.request(&Request::Status).await {
        Ok(Response::Status(status)) if status.addresses_free > 0 => {
            tracing::info!(free = status.addresses_free, cidr = %status.pod_cidr, "available");
            Ok(())
        }
        Ok(Response::Status(status)) => Err(CniError::new(
            Code::NotAvailable,
            format!("no free address in pod cidr {}", status.pod_cidr),
        )),
        Ok(Response::Error(err)) => Err(CniError::new(Code::NotAvailable, err.to_string())),
        Ok(other) => Err(unexpected("read the agent's status", &other)),
        Err(err) => Err(CniError::with_cause(
            Code::NotAvailable,
            "myelin agent is not available",
            &err,
        )),
    }
}

fn open_netns(path: &str) -> Result<File, CniError> {
    File::open(path).map_err(|err| {
        let code = if err.kind() == io::ErrorKind::NotFound {
            Code::UnknownContainer
        } else {
            Code::Io
        };
        CniError::with_cause(code, format!("open network namespace {path}"), &err)
    })
}

async fn existing_link(netlink: &Netlink, name: &str, place: &str) -> Result<Link, CniError> {
    netlink
        .link(name)
        .await
        .map_err(netlink_failed)?
        .ok_or_else(|| CniError::new(Code::Io, format!("{name} vanished from {place}")))
}

/// Pods reach each other and the world through the node: it must forward, and the host end of
/// each veth answers ARP for the pod's gateway (the pod also has a permanent entry for it).
fn enable_forwarding(host: &str) -> Result<(), CniError> {
    let settings = [
        ("/proc/sys/net/ipv4/ip_forward".to_owned(), "1"),
        (format!("/proc/sys/net/ipv4/conf/{host}/proxy_arp"), "1"),
        (format!("/proc/sys/net/ipv4/neigh/{host}/proxy_delay"), "0"),
    ];
    for (path, value) in settings {
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current.trim() == value {
            continue;
        }
        std::fs::write(&path, value).map_err(|err| {
            CniError::with_cause(Code::Io, format!("write {value} to {path}"), &err)
        })?;
    }
    Ok(())
}

fn endpoint_ref(inv: &Invocation) -> EndpointRef {
    EndpointRef {
        container_id: inv.container_id.clone(),
        ifname: inv.ifname.clone(),
    }
}

fn expect_endpoint(
    what: &str,
    response: Result<Response, ClientError>,
) -> Result<agent_api::Endpoint, CniError> {
    match response.map_err(|err| agent_unavailable(what, &err))? {
        Response::Endpoint(endpoint) => Ok(endpoint),
        Response::Error(err) => Err(api_error(what, err)),
        other => Err(unexpected(what, &other)),
    }
}

fn agent_unavailable(what: &str, err: &ClientError) -> CniError {
    let code = match err {
        ClientError::Unreachable { .. }
        | ClientError::Timeout { .. }
        | ClientError::NoAnswer { .. } => Code::TryAgainLater,
        ClientError::Io { .. } | ClientError::Decode { .. } => Code::Io,
    };
    CniError::with_cause(code, format!("{what}: {err}"), err)
}

fn api_error(what: &str, err: ApiError) -> CniError {
    let code = match err.code {
        ErrorCode::Exhausted => Code::AddressesExhausted,
        ErrorCode::NotFound => Code::UnknownContainer,
        ErrorCode::Conflict | ErrorCode::Invalid | ErrorCode::Internal => Code::AgentRefused,
    };
    CniError::new(code, format!("{what}: agent: {err}"))
}

fn unexpected(what: &str, response: &Response) -> CniError {
    CniError::new(
        Code::Io,
        format!("{what}: unexpected answer from the agent: {response:?}"),
    )
}

fn netlink_failed(err: NetlinkError) -> CniError {
    CniError::with_cause(Code::Io, err.to_string(), &err)
}

fn interface_exists(inv: &Invocation) -> CniError {
    CniError::new(
        Code::InterfaceExists,
        format!("interface {} already exists in {}", inv.ifname, inv.netns),
    )
}

fn check_failed(msg: String) -> CniError {
    CniError::new(Code::CheckFailed, msg)
}
