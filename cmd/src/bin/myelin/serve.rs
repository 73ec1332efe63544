//! `myelin serve` (hidden): the built-in server of embedded-mode pods. Every TCP (and SCTP)
//! port answers any HTTP/1.1 request 200 with the pod's name, the method and the path; every
//! UDP port answers DNS queries (`dns.rs`) and echoes other datagrams. `myelin up` starts one
//! per pod, inside the pod's namespace.

use std::convert::Infallible;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, UdpSocket};
use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::netns;
use crate::sctp::{self, SctpError};

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// The pod served, NS/NAME; every answer names it.
    #[arg(long, value_parser = pod_name)]
    pod: String,
    /// A TCP port to answer HTTP on; repeat for several.
    #[arg(long = "tcp")]
    tcp: Vec<u16>,
    /// A UDP port to echo on; repeat for several.
    #[arg(long = "udp")]
    udp: Vec<u16>,
    /// An SCTP port to answer HTTP on (if the kernel has SCTP); repeat for several.
    #[arg(long = "sctp")]
    sctp: Vec<u16>,
    /// Enter this network namespace first: /run/netns/NAME or /proc/PID/ns/net.
    #[arg(long)]
    netns: Option<PathBuf>,
    /// A DNS record NAME=IP to answer queries with; repeat for several.
    #[arg(long = "dns-record", value_parser = dns::parse_record)]
    dns_records: Vec<(String, Ipv4Addr)>,
    /// Where DNS queries for other names go: IP or IP:PORT (else they get NXDOMAIN).
    #[arg(long = "dns-upstream", value_parser = dns::parse_upstream)]
    dns_upstream: Option<std::net::SocketAddr>,
    /// The TTL, in seconds, of the answers from `--dns-record`.
    #[arg(long = "dns-ttl", default_value_t = dns::DEFAULT_TTL)]
    dns_ttl: u32,
}

fn pod_name(text: &str) -> Result<String, String> {
    match text.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok(text.to_owned())
        }
        _ => Err(format!("{text:?} is not a pod: use NS/NAME")),
    }
}

pub(crate) fn run(args: ServeArgs) -> ExitCode {
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    // Before the runtime exists: threads inherit the namespace of the thread that creates them.
    if let Some(path) = &args.netns {
        netns::enter(path)?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start tokio")?;
    runtime.block_on(serve_ports(args))
}

async fn serve_ports(args: ServeArgs) -> Result<()> {
    let pod: Arc<str> = args.pod.into();
    let mut zone = dns::Zone {
        upstream: args.dns_upstream,
        ttl: args.dns_ttl,
        ..dns::Zone::default()
    };
    for (name, ip) in args.dns_records {
        zone.records.entry(name).or_default().push(ip);
    }
    let zone = Arc::new(zone);
    let mut tasks = JoinSet::new();
    // Every port is bound before any is served, so a port that is taken fails the whole
    // server at once rather than leaving it half up.
    let mut listeners = Vec::new();
    for &port in &args.tcp {
        let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, port))
            .await
            .with_context(|| format!("listen on {port}/TCP"))?;
        listeners.push(listener);
    }
    for &port in &args.sctp {
        let listener = match sctp::listen(port) {
            Ok(listener) => listener,
            // The pod's other ports are still worth serving; the probes of this one will say
            // refused or denied, and this says why.
            Err(SctpError::Unsupported) => {
                tracing::error!(port, "not serving {port}/SCTP: this kernel has no SCTP");
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        listeners
            .push(TcpListener::from_std(listener).with_context(|| format!("serve {port}/SCTP"))?);
    }
    for &port in &args.udp {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port))
            .await
            .with_context(|| format!("listen on {port}/UDP"))?;
        tasks.spawn(echo(Arc::new(socket), port, Arc::clone(&zone)));
    }
    for listener in listeners {
        tasks.spawn(serve_tcp(listener, Arc::clone(&pod), Arc::clone(&zone)));
    }
    tracing::info!(
        pod = &*pod,
        tcp = ?args.tcp,
        udp = ?args.udp,
        sctp = ?args.sctp,
        "serving"
    );
    let mut terminate = signal(SignalKind::terminate()).context("watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("watch SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
        _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
        Some(ended) = tasks.join_next() => ended.context("a server task failed")?,
    }
    Ok(())
}

/// Accepts forever; each connection is served on its own task: HTTP with keep-alive, or DNS
/// when its first byte cannot start a request line (a DNS message's length does not).
async fn serve_tcp(listener: TcpListener, pod: Arc<str>, zone: Arc<dns::Zone>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors, usually: back off instead of spinning.
                tracing::warn!(error = %e, "accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let pod = Arc::clone(&pod);
        let zone = Arc::clone(&zone);
        tokio::spawn(async move {
            let mut first = [0u8; 1];
            if matches!(stream.peek(&mut first).await, Ok(1) if !first[0].is_ascii_uppercase()) {
                dns::serve_tcp(stream, &zone).await;
                return;
            }
            let service = service_fn(move |request| answer(Arc::clone(&pod), peer, request));
            let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection");
            }
        });
    }
}

async fn answer(
    pod: Arc<str>,
    peer: std::net::SocketAddr,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = body_text(&pod, request.method().as_str(), request.uri().path());
    tracing::debug!(method = %request.method(), path = request.uri().path(), "request");
    // Read the request's body to its end so the connection can carry the next request; a
    // broken body only ends this connection, which hyper reports.
    let mut body = request.into_body();
    while let Some(Ok(_)) = body.frame().await {}
    let mut response = Response::new(Full::new(Bytes::from(text)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    // Who connected, as the server saw it: behind the L7 proxy it is still the client pod.
    if let Ok(value) = HeaderValue::from_str(&peer.to_string()) {
        response.headers_mut().insert(CLIENT_HEADER, value);
    }
    Ok(response)
}

/// The response header carrying the client's address and port.
pub(crate) const CLIENT_HEADER: &str = "x-myelin-client";

/// What every request gets back: `ns/pod METHOD /path`.
pub(crate) fn body_text(pod: &str, method: &str, path: &str) -> String {
    format!("{pod} {method} {path}\n")
}

/// Answers DNS queries (each on its own task: an upstream may be slow) and echoes the rest.
async fn echo(socket: Arc<UdpSocket>, port: u16, zone: Arc<dns::Zone>) {
    let mut buf = vec![0; 64 * 1024];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, peer)) => {
                let datagram = &buf[..n];
                if let Some(query) = dns::query(datagram) {
                    let (socket, zone, datagram) =
                        (Arc::clone(&socket), Arc::clone(&zone), datagram.to_vec());
                    tokio::spawn(async move {
                        if let Some(answer) = dns::answer(&zone, &query, &datagram).await
                            && let Err(e) = socket.send_to(&answer, peer).await
                        {
                            tracing::debug!(%peer, port, error = %e, "dns answer");
                        }
                    });
                } else if let Err(e) = socket.send_to(datagram, peer).await {
                    tracing::debug!(%peer, port, error = %e, "echo");
                }
            }
            Err(e) => {
                tracing::warn!(port, error = %e, "receive");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

mod dns;
#[cfg(test)]
mod tests;
