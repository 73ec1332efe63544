//! The node namespace's part of transparent proxying, as Cilium installs it in iptables mode:
//! - nftables, prerouting at mangle priority: packets of an existing transparent socket (the
//!   proxy's upstream connections' replies, addressed to a pod) are marked to be delivered
//!   locally; a packet the datapath marked for proxy port P goes to P's listener (TPROXY).
//! - policy routing: `fwmark 0x200/0xf00 lookup 2004` with `local default dev lo` in table
//!   2004, so marked packets are delivered locally instead of forwarded to the pod.
//!
//! Installing is idempotent (the nftables table is replaced in one transaction, an existing
//! rule or route is kept), so a restarted agent installs again; removing the node namespace
//! (`myelin down`) removes it all.

use std::net::Ipv4Addr;
use std::process::Stdio;

use futures::TryStreamExt;
use netlink_packet_route::route::{RouteScope, RouteType};
use netlink_packet_route::rule::{RuleAction, RuleAttribute};
use rtnetlink::RouteMessageBuilder;
use tokio::io::AsyncWriteExt;

use crate::ports::{LISTEN_ADDR, ListenerKind};

/// Cilium's `MARK_MAGIC_TO_PROXY`: the datapath's mark is this `| port << 16`.
pub const MARK_MAGIC_TO_PROXY: u32 = 0x0200;
/// Cilium's `MARK_MAGIC_PROXY_INGRESS`: what the ingress proxy sends on to the pod, which the
/// datapath then delivers instead of redirecting it again.
pub const MARK_MAGIC_PROXY_INGRESS: u32 = 0x0a00;
/// Cilium's `MARK_MAGIC_PROXY_EGRESS`.
pub const MARK_MAGIC_PROXY_EGRESS: u32 = 0x0b00;
/// Cilium's `MagicMarkHostMask`.
pub const MARK_HOST_MASK: u32 = 0x0f00;
/// Cilium's `RouteTableToProxy`.
pub const ROUTE_TABLE_TO_PROXY: u32 = 2004;
/// Cilium's `RulePriorityToProxyIngress`.
pub const RULE_PRIORITY_TO_PROXY: u32 = 9;
/// The nftables table (family `ip`) holding the proxy's rules.
pub const NFT_TABLE: &str = "myelin_proxy";

/// The mark of the proxy's upstream connections in `direction`.
pub fn upstream_mark(direction: policy::rule::Direction) -> u32 {
    match direction {
        policy::rule::Direction::Ingress => MARK_MAGIC_PROXY_INGRESS,
        policy::rule::Direction::Egress => MARK_MAGIC_PROXY_EGRESS,
    }
}

/// The mark the datapath gives a packet redirected to the listener on `port`.
pub fn proxy_mark(port: u16) -> u32 {
    MARK_MAGIC_TO_PROXY | (u32::from(port) << 16)
}

#[derive(Debug, thiserror::Error)]
pub enum PlumbingError {
    #[error("running nft")]
    Nft(#[source] std::io::Error),
    #[error("nft refused the proxy rules: {stderr}")]
    NftFailed { stderr: String },
    #[error("opening a netlink socket")]
    Netlink(#[source] std::io::Error),
    #[error(
        "adding the rule fwmark {MARK_MAGIC_TO_PROXY:#x}/{MARK_HOST_MASK:#x} lookup {ROUTE_TABLE_TO_PROXY}"
    )]
    Rule(#[source] rtnetlink::Error),
    #[error("adding the route local default dev lo table {ROUTE_TABLE_TO_PROXY}")]
    Route(#[source] rtnetlink::Error),
    #[error("finding the loopback link")]
    Loopback(#[source] Option<rtnetlink::Error>),
}

/// The nftables script: replaces [`NFT_TABLE`] with the rules for these listeners.
pub fn ruleset(listeners: &[(ListenerKind, u16)]) -> String {
    let mut rules = format!(
        "\t\tmeta l4proto {{ tcp, udp }} socket transparent 1 meta mark set {MARK_MAGIC_TO_PROXY:#010x} accept comment \"to a proxy socket\"\n"
    );
    for (kind, port) in listeners {
        let proto = match kind.parser {
            policy::l7::L7Parser::Http => "tcp",
            policy::l7::L7Parser::Dns => "{ tcp, udp }",
        };
        rules.push_str(&format!(
            "\t\tmeta mark {:#010x} meta l4proto {proto} tproxy to {LISTEN_ADDR}:{port} meta mark set {MARK_MAGIC_TO_PROXY:#010x} accept comment \"{kind}\"\n",
            proxy_mark(*port)
        ));
    }
    format!(
        "table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\ntable ip {NFT_TABLE} {{\n\tchain prerouting {{\n\t\ttype filter hook prerouting priority mangle; policy accept;\n{rules}\t}}\n}}\n"
    )
}

/// Installs the rules for these listeners and the policy routing, in the current namespace.
pub async fn install(listeners: &[(ListenerKind, u16)]) -> Result<(), PlumbingError> {
    nft(&ruleset(listeners)).await?;
    let (connection, handle, _) = rtnetlink::new_connection().map_err(PlumbingError::Netlink)?;
    let driver = tokio::spawn(connection);
    let result = policy_routing(&handle).await;
    driver.abort();
    result
}

async fn policy_routing(handle: &rtnetlink::Handle) -> Result<(), PlumbingError> {
    let mut rule = handle
        .rule()
        .add()
        .v4()
        .fw_mark(MARK_MAGIC_TO_PROXY)
        .table_id(ROUTE_TABLE_TO_PROXY)
        .priority(RULE_PRIORITY_TO_PROXY);
    rule.message_mut().header.action = RuleAction::ToTable;
    rule.message_mut()
        .attributes
        .push(RuleAttribute::FwMask(MARK_HOST_MASK));
    match rule.execute().await {
        Err(rtnetlink::Error::NetlinkError(message)) if message.raw_code() == -libc_eexist() => {}
        result => result.map_err(PlumbingError::Rule)?,
    }
    let lo = handle
        .link()
        .get()
        .match_name("lo".to_owned())
        .execute()
        .try_next()
        .await
        .map_err(|err| PlumbingError::Loopback(Some(err)))?
        .ok_or(PlumbingError::Loopback(None))?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(Ipv4Addr::UNSPECIFIED, 0)
        .kind(RouteType::Local)
        .scope(RouteScope::Host)
        .table_id(ROUTE_TABLE_TO_PROXY)
        .output_interface(lo.header.index)
        .build();
    handle
        .route()
        .add(route)
        .replace()
        .execute()
        .await
        .map_err(PlumbingError::Route)
}

/// EEXIST, without a libc dependency for one number.
const fn libc_eexist() -> i32 {
    17
}

async fn nft(script: &str) -> Result<(), PlumbingError> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(PlumbingError::Nft)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(PlumbingError::Nft)?;
    }
    let output = child.wait_with_output().await.map_err(PlumbingError::Nft)?;
    if !output.status.success() {
        return Err(PlumbingError::NftFailed {
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
