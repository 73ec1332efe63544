use std::time::Duration;

use schema::flow::Flow;

use super::{Read, Ring};

fn flow(n: u32) -> Flow {
    Flow {
        policy_match_type: n,
        ..Flow::default()
    }
}

fn read(reader: &mut super::Reader) -> Vec<String> {
    std::iter::from_fn(|| reader.try_next())
        .map(|read| match read {
            Read::Flow(entry) => format!("{}:{}", entry.position, entry.flow().policy_match_type),
            Read::Lost(n) => format!("lost {n}"),
        })
        .collect()
}

#[test]
fn keeps_the_last_capacity_flows_and_counts_losses() {
    let (mut writer, ring) = Ring::new(3);
    let mut early = ring.reader(0);
    for n in 0..5 {
        writer.push(flow(n));
    }
    assert_eq!((ring.len(), ring.written(), ring.oldest()), (3, 5, 2));
    assert!(ring.get(1).is_none());
    assert_eq!(read(&mut early), ["lost 2", "2:2", "3:3", "4:4"]);
    assert!(early.try_next().is_none());
    writer.push(flow(5));
    assert_eq!(read(&mut early), ["5:5"]);
}

#[test]
fn default_capacity_is_hubbles() {
    assert_eq!(super::DEFAULT_CAPACITY, 4095);
}

#[tokio::test]
async fn followers_wake_on_new_flows() {
    let (mut writer, ring) = Ring::new(8);
    let mut reader = ring.reader(0);
    let follower = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..3 {
            match reader.next().await {
                Read::Flow(entry) => got.push(entry.flow().policy_match_type),
                Read::Lost(n) => panic!("lost {n}"),
            }
        }
        got
    });
    for n in 0..3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        writer.push(flow(n));
    }
    let got = tokio::time::timeout(Duration::from_secs(5), follower)
        .await
        .expect("follower woke")
        .expect("follower ran");
    assert_eq!(got, [0, 1, 2]);
}
