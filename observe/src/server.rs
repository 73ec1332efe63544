//! Hubble's `observer.Observer` service over one node's flow ring: what the agent serves on its
//! Hubble socket, so `myelin observe`, a relay or the hubble CLI can read it.
//!
//! `GetFlows` answers from the ring as [`Query`] selects (number, first, since, until, the
//! filters), then, with `follow`, every new flow that matches, reporting flows the reader lost
//! to the writer as `lost_events` (source `HUBBLE_RING_BUFFER`) instead of blocking it.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::Stream;
use prost_types::Timestamp;
use schema::flow::{Flow, LostEvent, LostEventSource};
use schema::observer::get_flows_response::ResponseTypes;
use schema::observer::observer_server::Observer;
use schema::observer::{
    GetFlowsRequest, GetFlowsResponse, GetNamespacesRequest, GetNamespacesResponse,
    GetNodesRequest, GetNodesResponse, Namespace, Node, ServerStatusRequest, ServerStatusResponse,
};
use schema::relay::NodeState;
use tonic::{Request, Response, Status};

use crate::query::Query;
use crate::ring::{Read, Reader, Ring};

#[cfg(test)]
mod tests;

/// What `ServerStatus` and `GetNodes` say about this node.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub name: String,
    pub version: String,
    /// Where the server listens, as a relay would dial it.
    pub address: String,
    pub started: SystemTime,
}

/// The Observer service of one node.
#[derive(Clone, Debug)]
pub struct ObserverService {
    ring: Arc<Ring>,
    node: NodeInfo,
}

impl ObserverService {
    pub fn new(ring: Arc<Ring>, node: NodeInfo) -> ObserverService {
        ObserverService { ring, node }
    }

    fn uptime_ns(&self) -> u64 {
        let uptime = SystemTime::now()
            .duration_since(self.node.started)
            .unwrap_or_default();
        u64::try_from(uptime.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Flows per second over the last minute of flows stored, as `hubble status` shows it.
    fn flows_rate(&self) -> f64 {
        const WINDOW: Duration = Duration::from_secs(60);
        let Some(since) = SystemTime::now().checked_sub(WINDOW) else {
            return 0.0;
        };
        let since = timestamp(since);
        let mut recent = 0_u32;
        for position in (self.ring.oldest()..self.ring.written()).rev() {
            let Some(entry) = self.ring.get(position) else {
                break;
            };
            match &entry.time() {
                Some(time) if (time.seconds, time.nanos) >= (since.seconds, since.nanos) => {
                    recent += 1;
                }
                _ => break,
            }
        }
        f64::from(recent) / WINDOW.as_secs_f64()
    }
}

pub(crate) fn timestamp(time: SystemTime) -> Timestamp {
    let since_epoch = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since_epoch.subsec_nanos()).unwrap_or(0),
    }
}

/// The stream `GetFlows` answers with.
pub type FlowStream = Pin<Box<dyn Stream<Item = Result<GetFlowsResponse, Status>> + Send>>;

/// Where a `GetFlows` stream is: the history still to send, then (with follow) the reader.
struct Streaming {
    node_name: String,
    query: Query,
    history: std::vec::IntoIter<Arc<crate::ring::Entry>>,
    follow: Option<Reader>,
}

impl Streaming {
    fn response(&self, response: ResponseTypes, time: Option<Timestamp>) -> GetFlowsResponse {
        GetFlowsResponse {
            response_types: Some(response),
            node_name: self.node_name.clone(),
            time,
        }
    }

    async fn next(&mut self) -> Option<GetFlowsResponse> {
        if let Some(entry) = self.history.next() {
            return Some(self.flow_response(entry.flow()));
        }
        let reader = self.follow.as_mut()?;
        loop {
            match reader.next().await {
                Read::Flow(entry) => {
                    if self.query.matches(entry.flow()) {
                        return Some(self.flow_response(entry.flow()));
                    }
                }
                Read::Lost(lost) => {
                    let lost = LostEvent {
                        source: LostEventSource::HubbleRingBuffer.into(),
                        num_events_lost: lost,
                        ..LostEvent::default()
                    };
                    let now = Some(timestamp(SystemTime::now()));
                    return Some(self.response(ResponseTypes::LostEvents(lost), now));
                }
            }
        }
    }

    fn flow_response(&self, flow: &Flow) -> GetFlowsResponse {
        self.response(ResponseTypes::Flow(Box::new(flow.clone())), flow.time)
    }
}

#[tonic::async_trait]
impl Observer for ObserverService {
    type GetFlowsStream = FlowStream;

    async fn get_flows(
        &self,
        request: Request<GetFlowsRequest>,
    ) -> Result<Response<FlowStream>, Status> {
        let request = request.into_inner();
        let query = Query::new(&request).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let (history, end) = query.history(&self.ring);
        // `until` in the past ends the stream with the history, as in Hubble.
        let follow = (query.follow
            && query.until.is_none_or(|until| {
                let now = timestamp(SystemTime::now());
                (until.seconds, until.nanos) > (now.seconds, now.nanos)
            }))
        .then(|| self.ring.reader(end));
        let streaming = Streaming {
            node_name: self.node.name.clone(),
            query,
            history: history.into_iter(),
            follow,
        };
        let stream = futures::stream::unfold(streaming, |mut streaming| async move {
            let response = streaming.next().await?;
            Some((Ok(response), streaming))
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_nodes(
        &self,
        _: Request<GetNodesRequest>,
    ) -> Result<Response<GetNodesResponse>, Status> {
        let node = Node {
            name: self.node.name.clone(),
            version: self.node.version.clone(),
            address: self.node.address.clone(),
            state: NodeState::NodeConnected.into(),
            tls: None,
            uptime_ns: self.uptime_ns(),
            num_flows: self.ring.len() as u64,
            max_flows: self.ring.capacity() as u64,
            seen_flows: self.ring.written(),
        };
        Ok(Response::new(GetNodesResponse { nodes: vec![node] }))
    }

    async fn get_namespaces(
        &self,
        _: Request<GetNamespacesRequest>,
    ) -> Result<Response<GetNamespacesResponse>, Status> {
        let mut seen = BTreeSet::new();
        for position in self.ring.oldest()..self.ring.written() {
            let Some(entry) = self.ring.get(position) else {
                continue;
            };
            for endpoint in [&entry.flow().source, &entry.flow().destination]
                .into_iter()
                .flatten()
            {
                if !endpoint.namespace.is_empty() {
                    seen.insert((endpoint.cluster_name.clone(), endpoint.namespace.clone()));
                }
            }
        }
        let namespaces = seen
            .into_iter()
            .map(|(cluster, namespace)| Namespace { cluster, namespace })
            .collect();
        Ok(Response::new(GetNamespacesResponse { namespaces }))
    }

    async fn server_status(
        &self,
        _: Request<ServerStatusRequest>,
    ) -> Result<Response<ServerStatusResponse>, Status> {
        Ok(Response::new(ServerStatusResponse {
            num_flows: self.ring.len() as u64,
            max_flows: self.ring.capacity() as u64,
            seen_flows: self.ring.written(),
            uptime_ns: self.uptime_ns(),
            num_connected_nodes: Some(1),
            num_unavailable_nodes: Some(0),
            unavailable_nodes: Vec::new(),
            version: self.node.version.clone(),
            flows_rate: self.flows_rate(),
        }))
    }
}
