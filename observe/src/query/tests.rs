use prost_types::Timestamp;
use schema::flow::{Flow, FlowFilter, Verdict};
use schema::observer::GetFlowsRequest;

use super::Query;
use crate::ring::Ring;

/// Flows at seconds 0..10; odd ones dropped.
fn ring() -> std::sync::Arc<Ring> {
    let (mut writer, ring) = Ring::new(8);
    for s in 0..10 {
        writer.push(Flow {
            time: Some(Timestamp {
                seconds: s,
                nanos: 0,
            }),
            verdict: if s % 2 == 1 {
                Verdict::Dropped
            } else {
                Verdict::Forwarded
            }
            .into(),
            ..Flow::default()
        });
    }
    ring
}

fn seconds(request: GetFlowsRequest) -> (Vec<i64>, u64) {
    let (entries, next) = Query::new(&request).expect("valid").history(&ring());
    (
        entries
            .iter()
            .map(|e| e.flow().time.expect("time").seconds)
            .collect(),
        next,
    )
}

fn at(seconds: i64) -> Option<Timestamp> {
    Some(Timestamp { seconds, nanos: 0 })
}

#[test]
fn last_first_since_until() {
    let drops = vec![FlowFilter {
        verdict: vec![Verdict::Dropped.into()],
        ..FlowFilter::default()
    }];
    // The ring holds seconds 2..10.
    assert_eq!(seconds(GetFlowsRequest::default()), ((2..10).collect(), 10));
    assert_eq!(
        seconds(GetFlowsRequest {
            number: 3,
            ..GetFlowsRequest::default()
        })
        .0,
        [7, 8, 9]
    );
    assert_eq!(
        seconds(GetFlowsRequest {
            number: 2,
            first: true,
            whitelist: drops.clone(),
            ..GetFlowsRequest::default()
        })
        .0,
        [3, 5]
    );
    assert_eq!(
        seconds(GetFlowsRequest {
            since: at(4),
            until: at(7),
            whitelist: drops,
            ..GetFlowsRequest::default()
        })
        .0,
        [5, 7]
    );
}
