use std::time::Duration;

use prost_types::Timestamp;
use schema::observer::GetFlowsResponse;
use tokio::time::Instant;

use super::{SortBuffer, history};

fn at(node: &str, seconds: i64) -> GetFlowsResponse {
    GetFlowsResponse {
        node_name: node.to_owned(),
        time: Some(Timestamp { seconds, nanos: 0 }),
        ..GetFlowsResponse::default()
    }
}

fn names(responses: &[GetFlowsResponse]) -> Vec<String> {
    responses
        .iter()
        .map(|r| format!("{}@{}", r.node_name, r.time.map_or(0, |t| t.seconds)))
        .collect()
}

#[test]
fn history_orders_every_node_by_time_and_cuts_overall() {
    // Each node already answered with its own last 3.
    let a = vec![at("a", 1), at("a", 4), at("a", 6)];
    let b = vec![at("b", 2), at("b", 3), at("b", 7)];
    let all: Vec<_> = a.into_iter().chain(b).collect();
    assert_eq!(
        names(&history(all.clone(), 3, false)),
        ["a@4", "a@6", "b@7"]
    );
    assert_eq!(names(&history(all.clone(), 3, true)), ["a@1", "b@2", "b@3"]);
    assert_eq!(history(all, 0, false).len(), 6);
}

#[tokio::test(start_paused = true)]
async fn the_sort_buffer_reorders_within_its_window() {
    let mut buffer = SortBuffer::new(10, Duration::from_secs(1));
    let start = Instant::now();
    assert!(buffer.push(at("a", 5), start).is_empty());
    assert!(
        buffer
            .push(at("b", 3), start + Duration::from_millis(300))
            .is_empty()
    );
    assert!(
        buffer
            .drain_due(start + Duration::from_millis(900))
            .is_empty()
    );
    // b@3 is the oldest and has waited only 900 ms at 1.2 s: nothing leaves before it is due,
    // then both leave in time order.
    assert!(
        buffer
            .drain_due(start + Duration::from_millis(1200))
            .is_empty()
    );
    assert_eq!(
        names(&buffer.drain_due(start + Duration::from_millis(1300))),
        ["b@3", "a@5"]
    );
    assert!(buffer.is_empty());
}

#[test]
fn a_full_sort_buffer_lets_the_oldest_go() {
    let now = Instant::now();
    let mut buffer = SortBuffer::new(2, Duration::from_secs(1));
    assert!(buffer.push(at("a", 9), now).is_empty());
    assert!(buffer.push(at("b", 1), now).is_empty());
    assert_eq!(names(&buffer.push(at("a", 5), now)), ["b@1"]);
    assert_eq!(names(&buffer.drain_all()), ["a@5", "a@9"]);
}
