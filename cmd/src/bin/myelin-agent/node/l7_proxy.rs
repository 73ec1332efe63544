//! The L7 proxy in the agent: listeners bound (ports kept in the state directory) and the
//! node's TPROXY plumbing installed before the derivation starts, so its redirect entries
//! carry real ports; each request is then decided on the tables as they are at that moment.

use std::path::Path;
use std::sync::Arc;

use policy::mapstate::PROTO_TCP;
use policy::rule::Direction;
use proxy::ports::{PORT_RANGE, PortsError, bind_listeners};
use proxy::{Connection, Listener, ListenerKind, Policies};
use reconcilers::datapath::ProxyPorts;
use reconcilers::l7::{L7Tables, proxy_policy};
use statedb::Db;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
            bind_listeners(&state_dir.join(PORTS_FILE), &ListenerKind::HTTP, PORT_RANGE)?;
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
        shutdown: &CancellationToken,
    ) -> Result<Vec<JoinHandle<()>>, ProxyError> {
        let policies: Arc<dyn Policies> = Arc::new(TablePolicies { db, tables });
        self.listeners
            .into_iter()
            .map(|listener| {
                let socket = tokio::net::TcpListener::from_std(listener.socket)
                    .map_err(ProxyError::Tokio)?;
                Ok(tokio::spawn(proxy::serve_http(
                    socket,
                    listener.kind.direction,
                    Arc::clone(&policies),
                    shutdown.clone(),
                )))
            })
            .collect()
    }
}

/// The L7 rules as the derivation's tables hold them.
struct TablePolicies {
    db: Db,
    tables: L7Tables,
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
        let policy = proxy_policy(
            &txn,
            &self.tables,
            direction,
            *endpoint.ip(),
            *peer.ip(),
            PROTO_TCP,
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
}
