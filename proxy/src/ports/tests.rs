use std::collections::BTreeSet;

use expect_test::expect;

use super::{ListenerKind, candidates, format, parse};

#[test]
fn the_recorded_port_comes_first_and_taken_ports_are_skipped() {
    let taken = BTreeSet::from([10000]);
    let order: Vec<u16> = candidates(Some(10003), &taken, 10000..=10004).collect();
    assert_eq!(order, [10003, 10001, 10002, 10004]);
    // A recorded port outside the range is no preference.
    let order: Vec<u16> = candidates(Some(80), &BTreeSet::new(), 10000..=10002).collect();
    assert_eq!(order, [10000, 10001, 10002]);
}

#[test]
fn the_state_file_round_trips() {
    let text = format(ListenerKind::HTTP.into_iter().zip([10007, 10001]));
    expect![[r#"
        http-ingress 10007
        http-egress 10001
    "#]]
    .assert_eq(&text);
    let parsed = parse(&format!("{text}garbage\nhttp-egress notaport\n"));
    assert_eq!(parsed.get("http-ingress"), Some(&10007));
    assert_eq!(
        parsed.get("http-egress"),
        Some(&10001),
        "a bad line is ignored"
    );
}

#[test]
fn listeners_take_their_recorded_ports_again() {
    let dir = std::env::temp_dir().join(format!("myelin-proxy-ports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let state = dir.join("proxy-ports");
    std::fs::write(&state, "http-ingress 42007\nhttp-egress 42003\n").expect("state");
    // A private range, so that the agent's listeners do not collide.
    let range = 42000..=42100;
    let ports =
        |listeners: &[super::Listener]| listeners.iter().map(|l| l.port).collect::<Vec<_>>();
    let first =
        super::bind_listeners(&state, &ListenerKind::HTTP, range.clone()).expect("listeners bind");
    assert_eq!(ports(&first), [42007, 42003]);
    drop(first);
    // Someone else holds the ingress port now: it moves, and the new port is recorded.
    let squatter = std::net::TcpListener::bind(("127.0.0.1", 42007)).expect("bind");
    let again = super::bind_listeners(&state, &ListenerKind::HTTP, range).expect("rebind");
    assert_eq!(ports(&again), [42000, 42003]);
    drop(squatter);
    expect![[r#"
        http-ingress 42000
        http-egress 42003
    "#]]
    .assert_eq(&std::fs::read_to_string(&state).expect("state"));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
