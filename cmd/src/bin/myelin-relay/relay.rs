//! The relay's Observer: every call fans out to the peers (the agents' Observer servers) and
//! their answers are merged as Hubble Relay merges them. A peer that does not answer is
//! reported unavailable, and the others still answer.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::time::SystemTime;

use futures::{Stream, StreamExt as _};
use observe::merge::{self, SortBuffer};
use schema::observer::get_flows_response::ResponseTypes;
use schema::observer::observer_client::ObserverClient;
use schema::observer::observer_server::Observer;
use schema::observer::{
    GetFlowsRequest, GetFlowsResponse, GetNamespacesRequest, GetNamespacesResponse,
    GetNodesRequest, GetNodesResponse, Node, ServerStatusRequest, ServerStatusResponse,
};
use schema::relay::{NodeState, NodeStatusEvent};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// One agent the relay reads.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) address: String,
    pub(crate) client: ObserverClient<Channel>,
}

#[derive(Clone, Debug)]
pub(crate) struct Relay {
    pub(crate) peers: Vec<Peer>,
    pub(crate) started: SystemTime,
}

type FlowStream = Pin<Box<dyn Stream<Item = Result<GetFlowsResponse, Status>> + Send>>;

fn now() -> prost_types::Timestamp {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

/// Hubble Relay's notice that some nodes cannot be read.
fn unavailable(nodes: Vec<String>) -> GetFlowsResponse {
    GetFlowsResponse {
        response_types: Some(ResponseTypes::NodeStatus(NodeStatusEvent {
            state_change: NodeState::NodeUnavailable.into(),
            node_names: nodes,
            message: "unable to connect to the peer's Observer".to_owned(),
        })),
        node_name: String::new(),
        time: Some(now()),
    }
}

impl Relay {
    /// Each peer's `GetFlows` stream, and the addresses that failed to open one.
    async fn open(
        &self,
        request: &GetFlowsRequest,
    ) -> (Vec<tonic::Streaming<GetFlowsResponse>>, Vec<String>) {
        let calls = self.peers.iter().map(|peer| {
            let mut client = peer.client.clone();
            let request = request.clone();
            async move { (peer.address.clone(), client.get_flows(request).await) }
        });
        let mut streams = Vec::new();
        let mut failed = Vec::new();
        for (address, answer) in futures::future::join_all(calls).await {
            match answer {
                Ok(stream) => streams.push(stream.into_inner()),
                Err(status) => {
                    tracing::warn!(peer = %address, %status, "peer unavailable");
                    failed.push(address);
                }
            }
        }
        (streams, failed)
    }
}

#[tonic::async_trait]
impl Observer for Relay {
    type GetFlowsStream = FlowStream;

    async fn get_flows(
        &self,
        request: Request<GetFlowsRequest>,
    ) -> Result<Response<FlowStream>, Status> {
        let request = request.into_inner();
        let (streams, failed) = self.open(&request).await;
        let notice = (!failed.is_empty()).then(|| unavailable(failed));
        if !request.follow {
            // Each peer answers its own `number`; the cut applies to the merged history.
            let mut all = Vec::new();
            for mut stream in streams {
                while let Ok(Some(response)) = stream.message().await {
                    all.push(response);
                }
            }
            let merged = merge::history(all, request.number, request.first);
            let out = notice.into_iter().chain(merged).map(Ok);
            return Ok(Response::new(Box::pin(futures::stream::iter(out))));
        }
        let merged = futures::stream::select_all(streams.into_iter().map(|s| s.boxed()));
        let sorted = sort(merged);
        let out = futures::stream::iter(notice.map(Ok)).chain(sorted);
        Ok(Response::new(Box::pin(out)))
    }

    async fn get_nodes(
        &self,
        _: Request<GetNodesRequest>,
    ) -> Result<Response<GetNodesResponse>, Status> {
        let calls = self.peers.iter().map(|peer| {
            let mut client = peer.client.clone();
            async move {
                (
                    peer.address.clone(),
                    client.get_nodes(GetNodesRequest {}).await,
                )
            }
        });
        let mut nodes = Vec::new();
        for (address, answer) in futures::future::join_all(calls).await {
            match answer {
                Ok(answer) => {
                    nodes.extend(answer.into_inner().nodes.into_iter().map(|node| Node {
                        address: address.clone(),
                        ..node
                    }))
                }
                Err(_) => nodes.push(Node {
                    name: address.clone(),
                    address,
                    state: NodeState::NodeUnavailable.into(),
                    ..Node::default()
                }),
            }
        }
        Ok(Response::new(GetNodesResponse { nodes }))
    }

    async fn get_namespaces(
        &self,
        _: Request<GetNamespacesRequest>,
    ) -> Result<Response<GetNamespacesResponse>, Status> {
        let calls = self.peers.iter().map(|peer| {
            let mut client = peer.client.clone();
            async move { client.get_namespaces(GetNamespacesRequest {}).await }
        });
        let mut seen = BTreeSet::new();
        for answer in futures::future::join_all(calls).await.into_iter().flatten() {
            for namespace in answer.into_inner().namespaces {
                seen.insert((namespace.cluster, namespace.namespace));
            }
        }
        let namespaces = seen
            .into_iter()
            .map(|(cluster, namespace)| schema::observer::Namespace { cluster, namespace })
            .collect();
        Ok(Response::new(GetNamespacesResponse { namespaces }))
    }

    async fn server_status(
        &self,
        _: Request<ServerStatusRequest>,
    ) -> Result<Response<ServerStatusResponse>, Status> {
        let calls = self.peers.iter().map(|peer| {
            let mut client = peer.client.clone();
            async move {
                (
                    peer.address.clone(),
                    client.server_status(ServerStatusRequest {}).await,
                )
            }
        });
        let mut total = ServerStatusResponse {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_ns: u64::try_from(
                SystemTime::now()
                    .duration_since(self.started)
                    .unwrap_or_default()
                    .as_nanos(),
            )
            .unwrap_or(u64::MAX),
            ..ServerStatusResponse::default()
        };
        let (mut connected, mut unavailable) = (0_u32, 0_u32);
        for (address, answer) in futures::future::join_all(calls).await {
            match answer {
                Ok(status) => {
                    let status = status.into_inner();
                    connected += 1;
                    total.num_flows += status.num_flows;
                    total.max_flows += status.max_flows;
                    total.seen_flows += status.seen_flows;
                    total.flows_rate += status.flows_rate;
                }
                Err(_) => {
                    unavailable += 1;
                    total.unavailable_nodes.push(address);
                }
            }
        }
        total.num_connected_nodes = Some(connected);
        total.num_unavailable_nodes = Some(unavailable);
        Ok(Response::new(total))
    }
}

/// The merged follow stream through Hubble Relay's sort buffer.
fn sort(
    mut merged: impl Stream<Item = Result<GetFlowsResponse, Status>> + Send + Unpin + 'static,
) -> impl Stream<Item = Result<GetFlowsResponse, Status>> + Send {
    async_stream(move |tx| async move {
        let mut buffer = SortBuffer::new(merge::SORT_BUFFER_LEN, merge::SORT_BUFFER_DRAIN);
        loop {
            let due = buffer.next_due();
            let next = async {
                match due {
                    Some(due) => tokio::time::timeout_at(due, merged.next()).await.ok(),
                    None => Some(merged.next().await),
                }
            };
            match next.await {
                // A peer answered.
                Some(Some(Ok(response))) => {
                    for out in buffer.push(response, tokio::time::Instant::now()) {
                        if tx.send(Ok(out)).await.is_err() {
                            return;
                        }
                    }
                }
                // A peer failed mid-stream: the others go on.
                Some(Some(Err(status))) => tracing::warn!(%status, "a peer's stream failed"),
                // Every peer's stream ended.
                Some(None) => {
                    for out in buffer.drain_all() {
                        if tx.send(Ok(out)).await.is_err() {
                            return;
                        }
                    }
                    return;
                }
                // The oldest held response is due.
                None => {}
            }
            for out in buffer.drain_due(tokio::time::Instant::now()) {
                if tx.send(Ok(out)).await.is_err() {
                    return;
                }
            }
        }
    })
}

/// A stream fed by a task through a small channel; the task stops when the receiver is gone.
fn async_stream<F, Fut>(body: F) -> impl Stream<Item = Result<GetFlowsResponse, Status>> + Send
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<GetFlowsResponse, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(body(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
