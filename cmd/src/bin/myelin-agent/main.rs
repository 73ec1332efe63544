//! `myelin-agent`: the node agent. It serves the local API (the CNI plugin's address allocation
//! and endpoints, the CLI's manifests and views), derives identities and policy from the
//! objects and endpoints tables, and reconciles the result into the pinned eBPF datapath.

mod agent;
mod api;
mod hubble;
mod ipam;
mod metrics_server;
mod node;
mod objects;
mod server;
mod store;
#[cfg(test)]
mod testdir;
mod views;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use cmd::logging;
use schema::cidr::Cidr;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::api::Api;
use crate::node::{BoundProxy, Node, NodeConfig, NodeMetrics};
use crate::objects::Objects;
use crate::store::Store;

/// Access log records waiting for Hubble's pipeline; more are dropped rather than waited for.
const ACCESS_LOG_QUEUE: usize = 4096;

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
    /// bpffs directory of the datapath's pinned maps and links; reused across restarts.
    #[arg(long, default_value = "/sys/fs/bpf/myelin")]
    bpf_pin_dir: PathBuf,
    /// Serve Prometheus metrics on this address's `/metrics` (e.g. `127.0.0.1:9962`); off
    /// when not given.
    #[arg(long)]
    prometheus_serve_addr: Option<SocketAddr>,
    /// Keep flows and serve Hubble's Observer API (`--enable-hubble=false` turns it off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    enable_hubble: bool,
    /// Unix socket of the Hubble Observer API; next to `--socket` as `hubble.sock` by default.
    #[arg(long)]
    hubble_socket_path: Option<PathBuf>,
    /// Also serve the Observer API on this TCP address (e.g. `0.0.0.0:4244`).
    #[arg(long)]
    hubble_listen_address: Option<SocketAddr>,
    /// Flows kept in the ring (Hubble's default: 4095).
    #[arg(long, default_value_t = observe::ring::DEFAULT_CAPACITY)]
    hubble_event_buffer_capacity: usize,
    /// The node's name in flows; the host name by default.
    #[arg(long)]
    node_name: Option<String>,
    /// Hubble's flow metrics on the Prometheus endpoint, e.g. `drop,tcp,flow,port-distribution,icmp`.
    #[arg(long, default_value = "")]
    hubble_metrics: String,
    /// The least time, in seconds, a DNS answer keeps its addresses in `toFQDNs` policy
    /// (Cilium's `--tofqdns-min-ttl`; 0 honours the answers' TTLs). Past it an address stays
    /// while a connection to it is alive.
    #[arg(long, default_value_t = 0)]
    tofqdns_min_ttl: u32,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let _telemetry = logging::install("info", "myelin-agent");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start tokio")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let store = Store::open(&args.state_dir)?;
    let db = statedb::Db::new();
    let agent = Agent::new(db.clone(), args.pod_cidr, store)
        .with_context(|| format!("restore state from {}", args.state_dir.display()))?;
    let objects = Objects::open(&db, &args.state_dir)
        .with_context(|| format!("restore objects from {}", args.state_dir.display()))?;
    let shutdown = CancellationToken::new();
    let router = router_address(&args.pod_cidr);
    tracing::info!(%router, "the router address and the node's addresses are reserved:host");
    let proxy = BoundProxy::bind(&args.state_dir)
        .await
        .context("start the L7 proxy")?;
    let fqdn_cache = args.state_dir.join(node::FQDN_CACHE_FILE);
    let node = Node::start(
        &db,
        objects.table().clone(),
        objects.causes().clone(),
        agent.endpoints_table().clone(),
        NodeConfig {
            pin_dir: &args.bpf_pin_dir,
            router,
            proxy_ports: proxy.ports(),
            fqdn_cache: &fqdn_cache,
            fqdn_min_ttl: args.tofqdns_min_ttl,
        },
        &shutdown,
    )?;
    let registry = Arc::new(metrics::Registry::new());
    let flow_metrics =
        observe::flow_metrics::FlowMetrics::register(&args.hubble_metrics, &registry)?;
    // Without Hubble nobody reads traces, so the datapath does not write them (drops and
    // verdicts still go to the ring buffer); a restart with Hubble turns them back on.
    let trace_mode = if args.enable_hubble {
        bpf::TraceMode::Aggregate
    } else {
        bpf::TraceMode::None
    };
    bpf::Datapath::open(&args.bpf_pin_dir)
        .and_then(|datapath| datapath.set_trace_mode(trace_mode))
        .with_context(|| format!("set the trace mode in {}", args.bpf_pin_dir.display()))?;
    // The proxies' access log records become L7 flows in Hubble's pipeline.
    let (access_log, access_log_rx) = tokio::sync::mpsc::channel(ACCESS_LOG_QUEUE);
    let hubble = if args.enable_hubble {
        let config = hubble::HubbleConfig {
            socket: args
                .hubble_socket_path
                .clone()
                .unwrap_or_else(|| args.socket.with_file_name("hubble.sock")),
            listen: args.hubble_listen_address,
            capacity: args.hubble_event_buffer_capacity,
            node_name: args.node_name.clone().unwrap_or_else(|| {
                nix::unistd::gethostname()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| "localhost".to_owned())
            }),
        };
        let tables = observe::enrich::LookupTables {
            endpoints: agent.endpoints_table().clone(),
            identities: node.tables.identities.clone(),
            objects: objects.table().clone(),
            policy_cookies: node.policy_cookies.clone(),
        };
        hubble::start(
            config,
            db.clone(),
            tables,
            flow_metrics,
            access_log_rx,
            &args.bpf_pin_dir,
            &shutdown,
        )
        .await?
    } else {
        Vec::new()
    };
    let proxies = proxy
        .serve(
            db.clone(),
            node.l7_tables(),
            node.fqdn_learner(),
            args.enable_hubble.then_some(access_log),
            &shutdown,
        )
        .context("serve the L7 proxy")?;
    let api = Api {
        agent,
        objects,
        node,
    };
    let api = Arc::new(api);
    registry.register(Arc::new(NodeMetrics(Arc::clone(&api))));
    let metrics = match args.prometheus_serve_addr {
        Some(addr) => {
            let listener = metrics_server::bind(addr).await?;
            tracing::info!(addr = %addr, "serving metrics");
            Some(tokio::spawn(metrics_server::serve(
                listener,
                registry,
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let listener = server::bind(&args.socket)?;
    tracing::info!(
        socket = %args.socket.display(),
        pod_cidr = %args.pod_cidr,
        pin_dir = %args.bpf_pin_dir.display(),
        "serving"
    );

    let mut terminate = signal(SignalKind::terminate()).context("watch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("watch SIGINT")?;
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        let socket = args.socket.clone();
        async move { server::serve(listener, &socket, api, shutdown).await }
    });
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = interrupt.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
    server.await.context("server task")?;
    if let Some(metrics) = metrics {
        metrics.await.context("metrics task")?;
    }
    for task in hubble {
        task.await.context("hubble task")?;
    }
    for proxy in proxies {
        proxy.await.context("proxy task")?;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The pod CIDR's first host address: the node's own on the pods' side (`myelin up` puts it
/// on the node's loopback, as Cilium puts it on `cilium_host`), `reserved:host` to the
/// datapath like every other address of the node, which the agent follows as they change.
fn router_address(pod_cidr: &Cidr) -> Ipv4Addr {
    match pod_cidr.network().addr() {
        IpAddr::V4(network) => Ipv4Addr::from(u32::from(network).saturating_add(1)),
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}
