//! Transparent sockets: a listener that accepts connections to any address TPROXY hands it,
//! and upstream connections bound to the client's own (non-local) address.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};

use std::future::Future;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::http::Connection;

/// Accepts redirected connections on a TPROXY listener until `cancel` fires, serving each on
/// its own task (all aborted when this returns). TPROXY leaves the original destination as
/// the accepted socket's local address, so `serve` gets the connection as the client made it.
pub(crate) async fn accept_redirected<F, Fut>(
    listener: TcpListener,
    cancel: CancellationToken,
    mut serve: F,
) where
    F: FnMut(TcpStream, Connection) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
            // Reap finished connections as we go.
            Some(_) = connections.join_next() => continue,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "proxy accept failed");
                continue;
            }
        };
        let connection = match (peer, stream.local_addr()) {
            (SocketAddr::V4(client), Ok(SocketAddr::V4(server))) => Connection { client, server },
            _ => continue,
        };
        connections.spawn(serve(stream, connection));
    }
}

/// A UDP socket with `IP_TRANSPARENT` that reports each datagram's original destination
/// (`IP_RECVORIGDSTADDR`), as a UDP TPROXY target needs.
pub(crate) fn transparent_udp_listener(addr: SocketAddrV4) -> io::Result<std::net::UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_ip_transparent_v4(true)?;
    socket.set_nonblocking(true)?;
    nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv4OrigDstAddr, &true)
        .map_err(io::Error::from)?;
    socket.bind(&SocketAddr::V4(addr).into())?;
    Ok(socket.into())
}

/// A listening TCP socket with `IP_TRANSPARENT`, as TPROXY requires of its target.
pub(crate) fn transparent_listener(addr: SocketAddrV4) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_ip_transparent_v4(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(addr).into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Connects to `server` from `client`'s address, keeping its port when the node has no
/// socket bound there already (the client's own connection ends at the proxy, so its 4-tuple
/// is free towards the server), any port otherwise. `mark` tells the datapath which proxy
/// sent the packets.
pub(crate) async fn connect_as(
    client: SocketAddrV4,
    server: SocketAddrV4,
    mark: u32,
) -> io::Result<TcpStream> {
    match connect_from(client, server, mark).await {
        Err(err) if err.kind() == io::ErrorKind::AddrInUse => {
            connect_from(SocketAddrV4::new(*client.ip(), 0), server, mark).await
        }
        result => result,
    }
}

async fn connect_from(
    source: SocketAddrV4,
    server: SocketAddrV4,
    mark: u32,
) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_ip_transparent_v4(true)?;
    socket.set_mark(mark)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::V4(source).into())?;
    let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(socket));
    socket.connect(SocketAddr::V4(server)).await
}
