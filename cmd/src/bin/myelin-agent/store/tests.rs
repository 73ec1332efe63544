use std::net::Ipv4Addr;

use expect_test::expect;
use schema::agent_api::{Endpoint, EndpointState, POD_GATEWAY};

use super::Store;
use crate::testdir::TestDir;

fn endpoint(id: &str, host: u8) -> Endpoint {
    Endpoint {
        container_id: id.to_owned(),
        id: u16::from(host),
        ifname: "eth0".to_owned(),
        netns: format!("/run/netns/{id}"),
        pod: None,
        ipv4: Ipv4Addr::new(10, 244, 0, host),
        gateway: POD_GATEWAY,
        host: None,
        container_mac: None,
        state: EndpointState::WaitingForNetns,
        identity: None,
    }
}

#[test]
fn saves_and_loads_endpoints() {
    let dir = TestDir::new();
    let store = Store::open(&dir.path().join("nested")).expect("open");
    assert_eq!(store.load().expect("empty"), Vec::new());

    let saved = vec![endpoint("a", 2), endpoint("b", 3)];
    store.save(&saved).expect("save");
    assert_eq!(
        Store::open(&dir.path().join("nested"))
            .expect("reopen")
            .load()
            .expect("load"),
        saved
    );
    expect![[r#"
        {"containerId":"a","id":2,"ifname":"eth0","netns":"/run/netns/a","ipv4":"10.244.0.2","gateway":"169.254.1.1","state":"waiting-for-netns"}
        {"containerId":"b","id":3,"ifname":"eth0","netns":"/run/netns/b","ipv4":"10.244.0.3","gateway":"169.254.1.1","state":"waiting-for-netns"}
    "#]]
    .assert_eq(&std::fs::read_to_string(store.path()).expect("read"));

    store.save(&saved[1..]).expect("save fewer");
    assert_eq!(store.load().expect("load"), saved[1..]);
    let names: Vec<_> = std::fs::read_dir(dir.path().join("nested"))
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["endpoints.jsonl"], "no temporary file left behind");
}

#[test]
fn a_corrupt_line_is_reported_with_its_position() {
    let dir = TestDir::new();
    let store = Store::open(dir.path()).expect("open");
    store.save(&[endpoint("a", 2)]).expect("save");
    let mut text = std::fs::read_to_string(store.path()).expect("read");
    text.push_str("{\"containerId\":\n");
    std::fs::write(store.path(), text).expect("write");
    let err = store.load().expect_err("corrupt");
    let rendered = format!("{err}: {}", std::error::Error::source(&err).expect("cause"));
    assert!(
        rendered.ends_with(
            "endpoints.jsonl:2: decode endpoint: EOF while parsing a value at line 1 column 15"
        ),
        "{rendered}"
    );
}
