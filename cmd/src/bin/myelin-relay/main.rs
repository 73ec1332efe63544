//! `myelin-relay`: one Observer API over several agents, as Hubble Relay is: `GetFlows` merged by
//! time from every peer, `ServerStatus` summed, `GetNodes` listing each peer with its state.
//!
//! `myelin-relay --peer unix:///run/myelin/hubble.sock --peer 10.0.0.2:4244
//! --listen-address 0.0.0.0:4245`, then `myelin observe --server localhost:4245`.

mod relay;

use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use clap::Parser;
use cmd::{logging, observer_client};
use schema::observer::observer_server::ObserverServer;
use tokio::signal::unix::{SignalKind, signal};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tokio_util::sync::CancellationToken;

use crate::relay::{Peer, Relay};

#[derive(Parser)]
#[command(
    name = "myelin-relay",
    version,
    about = "One Hubble Observer API over several Myelin agents"
)]
struct Args {
    /// An agent's Observer API: `unix:///path` or `host:port`; repeat for each node.
    #[arg(long = "peer", required = true)]
    peers: Vec<String>,
    /// Where to serve: `host:port` (Hubble Relay's default is :4245) or `unix:///path`.
    #[arg(long, default_value = "0.0.0.0:4245")]
    listen_address: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let _telemetry = logging::install("info", "myelin-relay");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start tokio")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let peers = args
        .peers
        .iter()
        .map(|address| {
            Ok(Peer {
                address: address.clone(),
                client: observer_client::client(address)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let relay = Relay {
        peers,
        started: SystemTime::now(),
    };
    let shutdown = CancellationToken::new();
    let server = tonic::transport::Server::builder().add_service(ObserverServer::new(relay));
    let served = {
        let cancel = shutdown.clone();
        if let Some(path) = args
            .listen_address
            .strip_prefix("unix://")
            .or_else(|| args.listen_address.strip_prefix("unix:"))
        {
            let _ = std::fs::remove_file(path);
            let listener =
                tokio::net::UnixListener::bind(path).with_context(|| format!("bind {path}"))?;
            tracing::info!(socket = path, peers = ?args.peers, "relaying");
            tokio::spawn(server.serve_with_incoming_shutdown(
                UnixListenerStream::new(listener),
                cancel.cancelled_owned(),
            ))
        } else {
            let addr = args.listen_address.trim_start_matches("http://");
            let addr = if addr.starts_with(':') {
                format!("0.0.0.0{addr}")
            } else {
                addr.to_owned()
            };
            let listener = tokio::net::TcpListener::bind(&addr)
                .await
                .with_context(|| format!("bind {addr}"))?;
            tracing::info!(%addr, peers = ?args.peers, "relaying");
            tokio::spawn(server.serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                cancel.cancelled_owned(),
            ))
        }
    };
    let mut terminate = signal(SignalKind::terminate()).context("watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("watch SIGINT")?;
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
    match served.await.context("server task")? {
        Ok(()) => Ok(()),
        Err(error) => bail!("serving: {error}"),
    }
}
