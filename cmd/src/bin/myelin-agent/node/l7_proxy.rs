//! The L7 proxy in the agent: listeners bound (ports kept in the state directory) and the
//! node's TPROXY plumbing installed before the derivation starts, so its redirect entries
//! carry real ports; each request is then decided on the tables as they are at that moment.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use futures::future::BoxFuture;
use observe::seven::Identities;
use policy::mapstate::{PROTO_TCP, PROTO_UDP};
use policy::rule::Direction;
use proxy::accesslog::LogRecord;
use proxy::ports::{PORT_RANGE, PortsError, bind_listeners};
use proxy::{Connection, Listener, ListenerKind, ListenerSocket, Policies};
use reconcilers::datapath::ProxyPorts;
use reconcilers::fqdn::{FQDN_NAME_KEY, FqdnName};
use reconcilers::l7::{L7Tables, identity_of, proxy_policy};
use statedb::{Db, Table, Txn};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::Enforcement;

/// The file recording the listeners' ports, in the state directory.
const PORTS_FILE: &str = "proxy-ports";

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error("bind the proxy listeners")]
    Ports(#[from] PortsError),
    #[error("install the proxy's nftables rules and policy routing")]
    Plumbing(#[from] proxy::plumbing::PlumbingError),
    #[error("register the listener with tokio")]
    Tokio(#[source] std::io::Error),
}

/// Bound listeners and installed plumbing, not serving yet.
pub(crate) struct BoundProxy {
    listeners: Vec<Listener>,
}

impl BoundProxy {
    pub(crate) async fn bind(state_dir: &Path) -> Result<BoundProxy, ProxyError> {
        let listeners =
            bind_listeners(&state_dir.join(PORTS_FILE), &ListenerKind::ALL, PORT_RANGE)?;
        let ports: Vec<(ListenerKind, u16)> = listeners.iter().map(|l| (l.kind, l.port)).collect();
        proxy::plumbing::install(&ports).await?;
        Ok(BoundProxy { listeners })
    }

    /// What the derivation writes into redirect entries.
    pub(crate) fn ports(&self) -> ProxyPorts {
        ProxyPorts::new(
            self.listeners
                .iter()
                .map(|l| ((l.kind.parser, l.kind.direction), l.port)),
        )
    }

    /// Serves every listener until `shutdown`.
    pub(crate) fn serve(
        self,
        db: Db,
        tables: L7Tables,
        fqdn: FqdnLearner,
        access_log: Option<AccessLog>,
        shutdown: &CancellationToken,
    ) -> Result<Vec<JoinHandle<()>>, ProxyError> {
        let policies: Arc<dyn Policies> = Arc::new(TablePolicies {
            db,
            tables,
            fqdn,
            access_log,
        });
        let mut tasks = Vec::new();
        for listener in self.listeners {
            let shutdown = shutdown.clone();
            match listener.socket {
                ListenerSocket::Tcp(socket) => {
                    let socket =
                        tokio::net::TcpListener::from_std(socket).map_err(ProxyError::Tokio)?;
                    tasks.push(tokio::spawn(proxy::serve_http(
                        socket,
                        listener.kind.direction,
                        Arc::clone(&policies),
                        shutdown,
                    )));
                }
                ListenerSocket::Dns { udp, tcp } => {
                    let udp = tokio::net::UdpSocket::from_std(udp).map_err(ProxyError::Tokio)?;
                    let tcp = tokio::net::TcpListener::from_std(tcp).map_err(ProxyError::Tokio)?;
                    tasks.push(tokio::spawn(proxy::serve_dns(
                        udp,
                        Arc::clone(&policies),
                        shutdown.clone(),
                    )));
                    tasks.push(tokio::spawn(proxy::serve_dns_tcp(
                        tcp,
                        Arc::clone(&policies),
                        shutdown,
                    )));
                }
            }
        }
        Ok(tasks)
    }
}

/// Writes what DNS answers told the proxy into `fqdn-names` and waits until it is enforced.
/// The cache's keeper saves the table to its file.
#[derive(Clone)]
pub(crate) struct FqdnLearner {
    pub(crate) names: Table<FqdnName>,
    pub(crate) enforcement: Enforcement,
    /// `--tofqdns-min-ttl`: an answer holds at least this long.
    pub(crate) min_ttl: u32,
}

/// Where the proxies' access log records go, with both ends' identities: Hubble's flow
/// pipeline. Bounded; a record that finds it full is dropped, never waited for.
pub(crate) type AccessLog = mpsc::Sender<(LogRecord, Identities)>;

/// The L7 rules as the derivation's tables hold them.
struct TablePolicies {
    db: Db,
    tables: L7Tables,
    fqdn: FqdnLearner,
    access_log: Option<AccessLog>,
}

impl Policies for TablePolicies {
    fn allows(
        &self,
        direction: Direction,
        connection: &Connection,
        request: &policy::l7::L7Request<'_>,
    ) -> bool {
        // The endpoint whose policy redirected: the client going out, the server coming in.
        let (endpoint, peer) = match direction {
            Direction::Egress => (connection.client, connection.server),
            Direction::Ingress => (connection.server, connection.client),
        };
        let txn = self.db.read_txn();
        let proto = match request {
            policy::l7::L7Request::Http(_) => PROTO_TCP,
            policy::l7::L7Request::Dns(_) => PROTO_UDP,
        };
        let policy = proxy_policy(
            &txn,
            &self.tables,
            direction,
            *endpoint.ip(),
            *peer.ip(),
            proto,
            connection.server.port(),
        );
        match policy {
            Some(policy) => policy.allows(request),
            None => {
                tracing::warn!(
                    direction = direction.as_str(),
                    endpoint = %endpoint,
                    "redirected connection of no local endpoint: denied"
                );
                false
            }
        }
    }

    fn log(&self, record: LogRecord) {
        let Some(access_log) = &self.access_log else {
            return;
        };
        let txn = self.db.read_txn();
        let identities = Identities {
            source: identity_of(&txn, &self.tables, *record.source.ip()).0,
            destination: identity_of(&txn, &self.tables, *record.destination.ip()).0,
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = access_log.try_send((record, identities)) {
            tracing::debug!("hubble's access log queue is full: record dropped");
        }
    }

    fn learned(&self, names: Vec<(String, Ipv4Addr, u32)>) -> BoxFuture<'static, ()> {
        let db = self.db.clone();
        let fqdn = self.fqdn.clone();
        Box::pin(async move {
            let now = super::fqdn_cache::unix_now();
            let mut txn = db.write_txn(&[&fqdn.names]);
            let mut new = 0usize;
            for (name, ip, ttl) in &names {
                let row = FqdnName::new(*ip, name, now + u64::from((*ttl).max(fqdn.min_ttl)));
                let known = txn
                    .get(&fqdn.names, &FQDN_NAME_KEY, &(row.ipv4, row.name.clone()))
                    .map(|known| known.object.expires);
                match known {
                    Some(expires) if expires >= row.expires => continue,
                    Some(_) => {}
                    None => new += 1,
                }
                if let Err(error) = txn.insert(&fqdn.names, row) {
                    tracing::warn!(%error, name, %ip, "fqdn name not recorded");
                }
            }
            txn.commit();
            if new > 0 {
                tracing::debug!(names = new, "dns answers learned; waiting until enforced");
                fqdn.enforcement.wait_enforced().await;
            }
        })
    }
}
