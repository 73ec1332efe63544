//! `myelin-agent`: the node agent. Today it serves the local API the CNI plugin uses: address
//! allocation from the node's pod CIDR and the `endpoints` table.

mod agent;
mod ipam;
mod objects;
mod server;
mod store;
#[cfg(test)]
mod testdir;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use schema::cidr::Cidr;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use crate::agent::Agent;
use crate::store::Store;

#[derive(Parser)]
#[command(name = "myelin-agent", version, about = "The Myelin node agent")]
struct Args {
    /// Unix socket of the local API (CNI plugin, CLI).
    #[arg(long, default_value = schema::agent_api::DEFAULT_SOCKET)]
    socket: PathBuf,
    /// Where endpoints and address allocations survive restarts.
    #[arg(long, default_value = "/var/lib/myelin")]
    state_dir: PathBuf,
    /// The node's pod CIDR, e.g. 10.244.1.0/24; the first host address is the node's own.
    #[arg(long)]
    pod_cidr: Cidr,
}

fn main() -> Result<()> {
    let args = Args::parse();
    install_subscriber();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start tokio")?;
    runtime.block_on(run(args))
}

/// Logs to stderr, filtered by `MYELIN_LOG`, else `RUST_LOG`, else `info`.
fn install_subscriber() {
    let directives = std::env::var("MYELIN_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(directives))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run(args: Args) -> Result<()> {
    let store = Store::open(&args.state_dir)?;
    let agent = Agent::new(statedb::Db::new(), args.pod_cidr, store)
        .with_context(|| format!("restore state from {}", args.state_dir.display()))?;
    let listener = server::bind(&args.socket)?;
    tracing::info!(socket = %args.socket.display(), pod_cidr = %args.pod_cidr, "serving");

    let shutdown = CancellationToken::new();
    let mut terminate = signal(SignalKind::terminate()).context("watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("watch SIGINT")?;
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        let socket = args.socket.clone();
        async move { server::serve(listener, &socket, Arc::new(agent), shutdown).await }
    });
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
    server.await.context("server task")?;
    tracing::info!("stopped");
    Ok(())
}
