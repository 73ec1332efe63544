use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use schema::flow::{FlowFilter, Verdict};
use schema::observer::get_flows_response::ResponseTypes;
use schema::observer::observer_server::Observer as _;
use schema::observer::{GetFlowsRequest, GetNodesRequest, ServerStatusRequest};
use tonic::Request;

use super::{NodeInfo, ObserverService};
use crate::fixtures;
use crate::ring::Ring;

fn service(capacity: usize) -> (crate::ring::RingWriter, ObserverService) {
    let (writer, ring) = Ring::new(capacity);
    let node = NodeInfo {
        name: "kind-worker".to_owned(),
        version: "test".to_owned(),
        address: "unix:///tmp/hubble.sock".to_owned(),
        started: SystemTime::now(),
    };
    (writer, ObserverService::new(ring, node))
}

/// Pushes the Star Wars drop, its verdict and the sleep->httpbin trace, enriched.
fn push_tutorial_flows(writer: &mut crate::ring::RingWriter) {
    let decoder = fixtures::decoder();
    let lookup = fixtures::lookup();
    for event in [
        fixtures::starwars_verdict(),
        fixtures::starwars_drop(),
        fixtures::sleep_httpbin_trace(),
    ] {
        let mut flow = decoder.flow(&event);
        crate::enrich::enrich(&mut flow, &event, &lookup);
        writer.push(flow);
    }
}

fn summary(response: &schema::observer::GetFlowsResponse) -> String {
    match &response.response_types {
        Some(ResponseTypes::Flow(flow)) => crate::print::compact(flow).trim_end().to_owned(),
        Some(ResponseTypes::LostEvents(lost)) => format!("lost {}", lost.num_events_lost),
        other => format!("{other:?}"),
    }
}

#[tokio::test]
async fn get_flows_answers_the_last_flows_that_pass_the_filters() {
    let (mut writer, service) = service(16);
    push_tutorial_flows(&mut writer);
    let dropped = FlowFilter {
        verdict: vec![Verdict::Dropped.into()],
        ..FlowFilter::default()
    };
    let request = GetFlowsRequest {
        number: 20,
        whitelist: vec![dropped],
        ..GetFlowsRequest::default()
    };
    let stream = service
        .get_flows(Request::new(request))
        .await
        .expect("a stream")
        .into_inner();
    let responses: Vec<_> = stream.collect().await;
    let lines: Vec<String> = responses
        .iter()
        .map(|r| summary(r.as_ref().expect("no error")))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines[0].contains("policy-verdict:none INGRESS DENIED"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains("Policy denied DROPPED (TCP Flags: SYN)"),
        "{lines:#?}"
    );
    let response = responses[1].as_ref().expect("no error");
    assert_eq!(response.node_name, "kind-worker");
    assert!(response.time.is_some());
}

#[tokio::test]
async fn follow_streams_new_flows_and_reports_losses() {
    let (mut writer, service) = service(2);
    let request = GetFlowsRequest {
        follow: true,
        ..GetFlowsRequest::default()
    };
    let mut stream = service
        .get_flows(Request::new(request))
        .await
        .expect("a stream")
        .into_inner();
    // Nothing yet: the stream waits.
    let waited = tokio::time::timeout(Duration::from_millis(50), stream.next()).await;
    assert!(waited.is_err(), "a follow stream with no flows must wait");
    push_tutorial_flows(&mut writer);
    let mut lines = Vec::new();
    for _ in 0..3 {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("a response in time")
            .expect("the stream goes on")
            .expect("no error");
        lines.push(summary(&next));
    }
    // Three pushed into a ring of two before the reader looked: the first one is lost.
    assert_eq!(lines[0], "lost 1");
    assert!(lines[1].contains("DROPPED"), "{lines:#?}");
    assert!(lines[2].contains("to-endpoint FORWARDED"), "{lines:#?}");
}

#[tokio::test]
async fn status_and_nodes_count_the_ring() {
    let (mut writer, service) = service(2);
    push_tutorial_flows(&mut writer);
    let status = service
        .server_status(Request::new(ServerStatusRequest {}))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        (status.num_flows, status.max_flows, status.seen_flows),
        (2, 2, 3)
    );
    assert_eq!(status.num_connected_nodes, Some(1));
    let nodes = service
        .get_nodes(Request::new(GetNodesRequest {}))
        .await
        .expect("nodes")
        .into_inner()
        .nodes;
    assert_eq!(nodes.len(), 1);
    assert_eq!(
        (nodes[0].name.as_str(), nodes[0].seen_flows),
        ("kind-worker", 3)
    );
}
