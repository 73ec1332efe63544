//! Hubble in the agent: the flow pipeline (the datapath's ring buffer events decoded, enriched
//! from a snapshot of the tables and kept in the flow ring, with the L7 proxy's access log
//! records as L7 flows) and the `observer.Observer` server on
//! the Hubble unix socket and, optionally, a TCP address.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use bpf::{Datapath, EventReader};
use observe::enrich::{LookupTables, enrich};
use observe::flow_metrics::FlowMetrics;
use observe::ring::RingWriter;
use observe::server::{NodeInfo, ObserverService};
use observe::seven::{self, Identities};
use observe::{Decoder, Ring, TableLookup};
use proxy::accesslog::LogRecord;
use schema::observer::observer_server::ObserverServer;
use statedb::{Db, ReadTxn, Revision, Txn};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tokio_util::sync::CancellationToken;

/// How Hubble runs in this agent (Cilium's `--hubble-*` flags).
pub(crate) struct HubbleConfig {
    pub(crate) socket: PathBuf,
    pub(crate) listen: Option<SocketAddr>,
    pub(crate) capacity: usize,
    pub(crate) node_name: String,
}

/// Starts the pipeline and the servers; they stop on `shutdown`.
pub(crate) async fn start(
    config: HubbleConfig,
    db: Db,
    tables: LookupTables,
    metrics: FlowMetrics,
    access_log: mpsc::Receiver<(LogRecord, Identities)>,
    pin_dir: &Path,
    shutdown: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>> {
    let datapath = Datapath::open(pin_dir)
        .with_context(|| format!("open the datapath at {}", pin_dir.display()))?;
    let events = datapath
        .events()
        .context("open the datapath's event ring buffer")?;
    let (writer, ring) = Ring::new(config.capacity);
    let decoder = Decoder::new(config.node_name.clone(), boot_time());
    let mut tasks = vec![tokio::spawn(pipeline(
        Sources { events, access_log },
        decoder,
        db,
        tables,
        metrics,
        writer,
        shutdown.clone(),
    ))];

    let _ = std::fs::remove_file(&config.socket);
    let unix = tokio::net::UnixListener::bind(&config.socket)
        .with_context(|| format!("bind the Hubble socket {}", config.socket.display()))?;
    let node = |address: String| NodeInfo {
        name: config.node_name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        address,
        started: SystemTime::now(),
    };
    let service = ObserverService::new(
        Arc::clone(&ring),
        node(format!("unix://{}", config.socket.display())),
    );
    tracing::info!(socket = %config.socket.display(), capacity = config.capacity, "serving Hubble");
    let cancel = shutdown.clone();
    let socket = config.socket.clone();
    tasks.push(tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_service(ObserverServer::new(service))
            .serve_with_incoming_shutdown(UnixListenerStream::new(unix), cancel.cancelled())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "the Hubble socket's server failed");
        }
        let _ = std::fs::remove_file(&socket);
    }));
    if let Some(addr) = config.listen {
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("bind the Hubble address {addr}"))?;
        let service = ObserverService::new(ring, node(addr.to_string()));
        tracing::info!(%addr, "serving Hubble over TCP");
        let cancel = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .add_service(ObserverServer::new(service))
                .serve_with_incoming_shutdown(TcpListenerStream::new(tcp), cancel.cancelled())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the Hubble TCP server failed");
            }
        }));
    }
    Ok(tasks)
}

/// Wall-clock time of CLOCK_MONOTONIC's zero, which the datapath's event times count from.
fn boot_time() -> SystemTime {
    let now = SystemTime::now();
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(mono) => {
            let since_boot = Duration::new(
                u64::try_from(mono.tv_sec()).unwrap_or(0),
                u32::try_from(mono.tv_nsec()).unwrap_or(0),
            );
            now.checked_sub(since_boot).unwrap_or(now)
        }
        Err(error) => {
            tracing::warn!(%error, "no monotonic clock: flow times will be off");
            now
        }
    }
}

/// The revisions a [`TableLookup`] was built at: a new snapshot only when one moved.
fn revisions(txn: &ReadTxn, tables: &LookupTables) -> [Revision; 4] {
    [
        txn.revision(&tables.endpoints),
        txn.revision(&tables.identities),
        txn.revision(&tables.objects),
        txn.revision(&tables.policy_cookies),
    ]
}

/// What the pipeline takes in.
enum Input {
    Datapath(Result<bpf::Event, bpf::Error>),
    AccessLog(LogRecord, Identities),
}

/// Where flows come from: the datapath's ring buffer and the proxies' access log.
struct Sources {
    events: EventReader,
    access_log: mpsc::Receiver<(LogRecord, Identities)>,
}

/// Reads events until `shutdown`; the writer never waits for the ring's readers.
async fn pipeline(
    sources: Sources,
    decoder: Decoder,
    db: Db,
    tables: LookupTables,
    metrics: FlowMetrics,
    mut writer: RingWriter,
    shutdown: CancellationToken,
) {
    let Sources {
        mut events,
        mut access_log,
    } = sources;
    let txn = db.read_txn();
    let mut seen = revisions(&txn, &tables);
    let decoder = Arc::new(decoder);
    let mut lookup = Arc::new(TableLookup::from_tables(&txn, &tables));
    loop {
        let input = tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.next() => Input::Datapath(event),
            Some((record, ids)) = access_log.recv() => Input::AccessLog(record, ids),
        };
        let txn = db.read_txn();
        let now = revisions(&txn, &tables);
        if now != seen {
            lookup = Arc::new(TableLookup::from_tables(&txn, &tables));
            seen = now;
        }
        let first = match input {
            Input::Datapath(event) => event,
            Input::AccessLog(record, ids) => {
                let flow = seven::flow(&record, ids, decoder.node_name(), lookup.as_ref());
                metrics.observe(&flow);
                writer.push(flow);
                continue;
            }
        };
        // One snapshot for everything already waiting.
        for event in std::iter::once(first).chain(std::iter::from_fn(|| events.try_next())) {
            match event {
                Ok(event) => {
                    if metrics.is_enabled() {
                        let mut flow = decoder.flow(&event);
                        enrich(&mut flow, &event, lookup.as_ref());
                        metrics.observe(&flow);
                    }
                    writer.push_event(event, &decoder, &lookup);
                }
                Err(error) => tracing::warn!(%error, "undecodable datapath event"),
            }
        }
    }
}
