use std::net::Ipv4Addr;

use expect_test::expect;
use reconcilers::endpoints::ENDPOINT_IPV4;
use schema::agent_api::{
    EndpointAdd, EndpointReady, EndpointRef, EndpointState, ErrorCode, HostInterface, PodRef,
    Request, Response,
};
use statedb::{Db, Txn};

use super::Agent;
use crate::store::Store;
use crate::testdir::TestDir;

fn agent(dir: &TestDir, cidr: &str) -> Agent {
    Agent::new(
        Db::new(),
        cidr.parse().expect("cidr"),
        Store::open(dir.path()).expect("store"),
    )
    .expect("agent")
}

fn add(id: &str) -> Request {
    Request::EndpointAdd(EndpointAdd {
        container_id: id.to_owned(),
        ifname: "eth0".to_owned(),
        netns: format!("/run/netns/{id}"),
        pod: Some(PodRef {
            namespace: "default".to_owned(),
            name: format!("pod-{id}"),
        }),
        ipv4: None,
    })
}

fn key(id: &str) -> EndpointRef {
    EndpointRef {
        container_id: id.to_owned(),
        ifname: "eth0".to_owned(),
    }
}

fn ready(id: &str) -> Request {
    Request::EndpointReady(EndpointReady {
        container_id: id.to_owned(),
        ifname: "eth0".to_owned(),
        host: HostInterface {
            ifindex: 42,
            ifname: "lxc1".to_owned(),
            mac: "02:00:00:00:00:01".to_owned(),
        },
        container_mac: "02:00:00:00:00:02".to_owned(),
    })
}

/// The address in an endpoint response.
fn ipv4_of(response: &Response) -> Option<Ipv4Addr> {
    match response {
        Response::Endpoint(endpoint) => Some(endpoint.ipv4),
        _ => None,
    }
}

fn error_code(response: &Response) -> Option<ErrorCode> {
    match response {
        Response::Error(err) => Some(err.code),
        _ => None,
    }
}

#[test]
fn endpoint_lifecycle() {
    let dir = TestDir::new();
    let agent = agent(&dir, "10.244.0.0/24");

    let added = agent.handle(add("a"));
    assert_eq!(ipv4_of(&added), Some(Ipv4Addr::new(10, 244, 0, 2)));
    assert_eq!(agent.handle(add("a")), added, "add is idempotent");

    let Response::Endpoint(endpoint) = agent.handle(ready("a")) else {
        panic!("ready");
    };
    assert_eq!(endpoint.state, EndpointState::Ready);
    let got = agent.handle(Request::EndpointGet(key("a")));
    assert_eq!(got, Response::Endpoint(endpoint));
    expect![[r#"
        {"response":"endpoint","containerId":"a","id":1,"ifname":"eth0","netns":"/run/netns/a","pod":{"namespace":"default","name":"pod-a"},"ipv4":"10.244.0.2","gateway":"169.254.1.1","host":{"ifindex":42,"ifname":"lxc1","mac":"02:00:00:00:00:01"},"containerMac":"02:00:00:00:00:02","state":"ready"}
    "#]]
    .assert_eq(&String::from_utf8(schema::agent_api::encode_line(&got)).expect("utf-8"));

    // The table has it under its address too.
    let txn = agent.db.read_txn();
    let by_ip = txn
        .get(
            &agent.endpoints,
            &ENDPOINT_IPV4,
            &Ipv4Addr::new(10, 244, 0, 2),
        )
        .expect("indexed by address");
    assert_eq!(by_ip.object.container_id, "a");

    let Response::Deleted(deleted) = agent.handle(Request::EndpointDelete(key("a"))) else {
        panic!("delete");
    };
    assert_eq!(
        deleted.endpoint.map(|e| e.ipv4),
        Some(Ipv4Addr::new(10, 244, 0, 2))
    );
    assert_eq!(
        agent.handle(Request::EndpointDelete(key("a"))),
        Response::Deleted(schema::agent_api::Deleted { endpoint: None }),
        "deleting twice succeeds"
    );
    assert_eq!(
        error_code(&agent.handle(Request::EndpointGet(key("a")))),
        Some(ErrorCode::NotFound)
    );
    assert_eq!(
        error_code(&agent.handle(ready("a"))),
        Some(ErrorCode::NotFound)
    );
    expect![[r#"
        Status(
            AgentStatus {
                pod_cidr: "10.244.0.0/24",
                addresses_total: 253,
                addresses_free: 253,
                endpoints: 0,
                reconcilers: [],
                identities: 0,
                policies: 0,
            },
        )
    "#]]
    .assert_debug_eq(&agent.handle(Request::Status));
}

#[test]
fn one_interface_per_container() {
    let dir = TestDir::new();
    let agent = agent(&dir, "10.244.0.0/24");
    agent.handle(add("a"));
    let Request::EndpointAdd(mut second) = add("a") else {
        unreachable!()
    };
    second.ifname = "net1".to_owned();
    let response = agent.handle(Request::EndpointAdd(second));
    expect![[r#"
        Error(
            ApiError {
                code: Conflict,
                message: "container a already has interface eth0; one interface per container is supported, not net1",
            },
        )
    "#]]
    .assert_debug_eq(&response);
}

#[test]
fn exhaustion_is_an_error_and_allocates_nothing() {
    let dir = TestDir::new();
    let agent = agent(&dir, "10.244.0.0/30");
    assert!(ipv4_of(&agent.handle(add("a"))).is_some());
    let response = agent.handle(add("b"));
    expect![[r#"
        Error(
            ApiError {
                code: Exhausted,
                message: "no free address in pod cidr 10.244.0.0/30 (1 allocated)",
            },
        )
    "#]]
    .assert_debug_eq(&response);
    agent.handle(Request::EndpointDelete(key("a")));
    assert!(
        ipv4_of(&agent.handle(add("b"))).is_some(),
        "freed address reused"
    );
}

#[test]
fn rejects_ids_and_names_the_kernel_or_spec_would() {
    let dir = TestDir::new();
    let agent = agent(&dir, "10.244.0.0/24");
    let responses: Vec<_> = ["", "a b", "a\n{"]
        .iter()
        .map(|id| agent.handle(add(id)))
        .collect();
    assert!(
        responses
            .iter()
            .all(|r| error_code(r) == Some(ErrorCode::Invalid)),
        "{responses:?}"
    );
    let Request::EndpointAdd(mut long) = add("a") else {
        unreachable!()
    };
    long.ifname = "a-very-long-ifname".to_owned();
    expect![[r#"
        "invalid request: interface name \"a-very-long-ifname\" is not a valid linux interface name"
    "#]]
    .assert_debug_eq(&match agent.handle(Request::EndpointAdd(long)) {
        Response::Error(err) => err.to_string(),
        other => panic!("{other:?}"),
    });
}

#[test]
fn a_restart_keeps_addresses_and_endpoints() {
    let dir = TestDir::new();
    let (a, b) = {
        let agent = agent(&dir, "10.244.0.0/24");
        let a = agent.handle(add("a"));
        agent.handle(add("b"));
        agent.handle(ready("b"));
        agent.handle(add("c"));
        agent.handle(Request::EndpointDelete(key("c")));
        (ipv4_of(&a), agent.handle(Request::EndpointGet(key("b"))))
    };
    let agent = agent(&dir, "10.244.0.0/24");
    assert_eq!(
        ipv4_of(&agent.handle(add("a"))),
        a,
        "same container, same address"
    );
    assert_eq!(
        agent.handle(Request::EndpointGet(key("b"))),
        b,
        "ready state survives"
    );
    let fresh = ipv4_of(&agent.handle(add("d"))).expect("allocated");
    assert!(Some(fresh) != a && Some(fresh) != ipv4_of(&b));
    let Response::Status(status) = agent.handle(Request::Status) else {
        panic!("status");
    };
    assert_eq!((status.endpoints, status.addresses_free), (3, 250));
}

#[test]
fn a_saved_endpoint_outside_the_new_cidr_stops_the_start() {
    let dir = TestDir::new();
    agent(&dir, "10.244.0.0/24").handle(add("a"));
    let err = Agent::new(
        Db::new(),
        "10.245.0.0/24".parse().expect("cidr"),
        Store::open(dir.path()).expect("store"),
    )
    .err()
    .expect("refuses");
    expect!["saved endpoint a: address: 10.244.0.2 is outside the pool of pod cidr 10.245.0.0/24"]
        .assert_eq(&reconcilers::error_chain(&err));
}
