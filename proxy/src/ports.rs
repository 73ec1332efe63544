//! One listener per (parser, direction), like Cilium's `http-ingress` and `http-egress`, on a
//! port of Cilium's proxy range. The ports are recorded in a state file and taken again on the
//! next start, so the redirect entries pinned in the policy map stay right across a restart.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use policy::l7::L7Parser;
use policy::rule::Direction;

use crate::socket::{transparent_listener, transparent_udp_listener};

/// Cilium's default proxy port range.
pub const PORT_RANGE: RangeInclusive<u16> = 10000..=20000;

/// The address the listeners bind and TPROXY delivers to.
pub const LISTEN_ADDR: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerKind {
    pub parser: L7Parser,
    pub direction: Direction,
}

impl ListenerKind {
    /// Cilium's listeners: HTTP both ways, DNS for egress (`toFQDNs` learns from a pod's own
    /// lookups).
    pub const ALL: [ListenerKind; 3] = [
        ListenerKind {
            parser: L7Parser::Http,
            direction: Direction::Ingress,
        },
        ListenerKind {
            parser: L7Parser::Http,
            direction: Direction::Egress,
        },
        ListenerKind {
            parser: L7Parser::Dns,
            direction: Direction::Egress,
        },
    ];

    pub const HTTP: [ListenerKind; 2] = [
        ListenerKind {
            parser: L7Parser::Http,
            direction: Direction::Ingress,
        },
        ListenerKind {
            parser: L7Parser::Http,
            direction: Direction::Egress,
        },
    ];
}

impl fmt::Display for ListenerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.parser.as_str(), self.direction.as_str())
    }
}

/// A bound transparent listener.
#[derive(Debug)]
pub struct Listener {
    pub kind: ListenerKind,
    pub port: u16,
    pub socket: ListenerSocket,
}

/// HTTP listens on TCP; DNS on UDP and TCP on the same port, as Cilium's DNS proxy does (a
/// resolver retries over TCP when an answer is truncated).
#[derive(Debug)]
pub enum ListenerSocket {
    Tcp(std::net::TcpListener),
    Dns {
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
    },
}

fn bind(kind: ListenerKind, addr: SocketAddrV4) -> io::Result<ListenerSocket> {
    match kind.parser {
        L7Parser::Http => transparent_listener(addr).map(ListenerSocket::Tcp),
        L7Parser::Dns => Ok(ListenerSocket::Dns {
            udp: transparent_udp_listener(addr)?,
            tcp: transparent_listener(addr)?,
        }),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    #[error("no free port for the {listener} listener in {first}-{last}")]
    Exhausted {
        listener: ListenerKind,
        first: u16,
        last: u16,
        #[source]
        last_error: Option<io::Error>,
    },
    #[error("reading proxy ports from {path}")]
    Load {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing proxy ports to {path}")]
    Save {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Binds one listener per kind on [`LISTEN_ADDR`]: the port `state` recorded for it if it is
/// still free, else the first free port of `range`; then records the ports in `state`.
pub fn bind_listeners(
    state: &Path,
    kinds: &[ListenerKind],
    range: RangeInclusive<u16>,
) -> Result<Vec<Listener>, PortsError> {
    let recorded = match std::fs::read_to_string(state) {
        Ok(text) => parse(&text),
        Err(err) if err.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
        Err(source) => {
            return Err(PortsError::Load {
                path: state.to_owned(),
                source,
            });
        }
    };
    let mut listeners: Vec<Listener> = Vec::new();
    for kind in kinds {
        let taken: BTreeSet<u16> = listeners.iter().map(|l| l.port).collect();
        let mut last_error = None;
        let bound = candidates(
            recorded.get(&kind.to_string()).copied(),
            &taken,
            range.clone(),
        )
        .find_map(
            |port| match bind(*kind, SocketAddrV4::new(LISTEN_ADDR, port)) {
                Ok(socket) => Some((port, socket)),
                Err(err) => {
                    last_error = Some(err);
                    None
                }
            },
        );
        let Some((port, socket)) = bound else {
            return Err(PortsError::Exhausted {
                listener: *kind,
                first: *range.start(),
                last: *range.end(),
                last_error,
            });
        };
        tracing::info!(listener = %kind, port, "proxy listener bound");
        listeners.push(Listener {
            kind: *kind,
            port,
            socket,
        });
    }
    let text = format(listeners.iter().map(|l| (l.kind, l.port)));
    std::fs::write(state, text).map_err(|source| PortsError::Save {
        path: state.to_owned(),
        source,
    })?;
    Ok(listeners)
}

/// The ports to try, in order: the recorded one (if in range), then the range, skipping ports
/// another listener took.
fn candidates(
    recorded: Option<u16>,
    taken: &BTreeSet<u16>,
    range: RangeInclusive<u16>,
) -> impl Iterator<Item = u16> + '_ {
    let recorded = recorded.filter(|port| range.contains(port));
    recorded
        .into_iter()
        .chain(range.filter(move |port| Some(*port) != recorded))
        .filter(|port| !taken.contains(port))
}

/// `name port` lines; anything else is ignored (a port is only a preference).
fn parse(text: &str) -> BTreeMap<String, u16> {
    text.lines()
        .filter_map(|line| {
            let (name, port) = line.split_once(' ')?;
            Some((name.to_owned(), port.trim().parse().ok()?))
        })
        .collect()
}

fn format(ports: impl Iterator<Item = (ListenerKind, u16)>) -> String {
    ports
        .map(|(kind, port)| format!("{kind} {port}\n"))
        .collect()
}

#[cfg(test)]
mod tests;
