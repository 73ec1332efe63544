//! SCTP sockets, which neither std nor tokio open. They are one-to-one style (`SOCK_STREAM`),
//! so once open they connect, listen, accept, read and write exactly like TCP sockets and are
//! handed on as `TcpStream`/`TcpListener`.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use nix::errno::Errno;
use socket2::{Domain, Protocol, Socket, Type};

#[derive(Debug, thiserror::Error)]
pub(crate) enum SctpError {
    #[error("this kernel has no SCTP: opening a socket says protocol not supported")]
    Unsupported,
    #[error("sctp: {what} port {port}")]
    Io {
        what: &'static str,
        port: u16,
        #[source]
        source: io::Error,
    },
}

/// A new SCTP socket for `addr`'s address family.
pub(crate) fn socket(addr: SocketAddr) -> Result<Socket, SctpError> {
    Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(Protocol::from(nix::libc::IPPROTO_SCTP)),
    )
    .map_err(|source| match source.raw_os_error().map(Errno::from_raw) {
        Some(Errno::EPROTONOSUPPORT | Errno::ESOCKTNOSUPPORT) => SctpError::Unsupported,
        _ => SctpError::Io {
            what: "open a socket for",
            port: addr.port(),
            source,
        },
    })
}

/// Listens on every IPv4 address of the current namespace, port `port`.
pub(crate) fn listen(port: u16) -> Result<TcpListener, SctpError> {
    let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
    let socket = socket(addr)?;
    let io = |what| move |source| SctpError::Io { what, port, source };
    socket.set_reuse_address(true).map_err(io("reuse"))?;
    socket.bind(&addr.into()).map_err(io("bind"))?;
    socket.listen(128).map_err(io("listen on"))?;
    socket
        .set_nonblocking(true)
        .map_err(io("set nonblocking on"))?;
    Ok(socket.into())
}
