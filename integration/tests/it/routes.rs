//! `RouteTarget` against a real network namespace, checked with `ip -j route`.

use std::error::Error;
use std::net::IpAddr;
use std::path::Path;

use expect_test::{Expect, expect};
use reconcilers::targets::routes::{
    RT_TABLE_MAIN, RTPROT_MYELIN, RouteError, RouteSpec, RouteTarget,
};
use serde_json::Value;

use crate::netns::Netns;

/// A namespace with link `d0` up at 10.200.0.1/24 and fd00:200::1/64, and a target on it.
fn fixture() -> (Netns, RouteTarget) {
    let netns = Netns::new();
    netns.add_link("d0", &["10.200.0.1/24", "fd00:200::1/64"]);
    let target = RouteTarget::open(Some(&netns.path())).expect("open route target");
    (netns, target)
}

fn route(dst: &str, prefix_len: u8) -> RouteSpec {
    RouteSpec {
        table: RT_TABLE_MAIN,
        dst: dst.parse().expect("destination address"),
        prefix_len,
        gateway: None,
        dev: None,
        priority: None,
    }
}

fn ip(address: &str) -> Option<IpAddr> {
    Some(address.parse().expect("ip address"))
}

fn dev(name: &str) -> Option<String> {
    Some(name.to_owned())
}

/// Every IPv4 and IPv6 route in the namespace whose protocol matches, one line each as
/// `ip -j -d route show table all` reports them (`-d`: without it iproute2 omits the default
/// protocol and table), sorted; type unicast and scope global are left out.
pub(crate) fn kernel_routes(netns: &Netns, protocol: &str) -> String {
    let mut lines = Vec::new();
    for family in ["-4", "-6"] {
        let json = netns.exec_ok(&["ip", "-j", "-d", family, "route", "show", "table", "all"]);
        let routes: Vec<Value> = serde_json::from_str(&json).expect("ip -j route output");
        for route in routes {
            let field = |name: &str| match &route[name] {
                Value::String(value) => Some(value.clone()),
                Value::Number(value) => Some(value.to_string()),
                _ => None,
            };
            if field("protocol").as_deref() != Some(protocol) {
                continue;
            }
            let mut line = field("dst").expect("dst");
            for name in ["type", "gateway", "dev", "table", "metric", "scope"] {
                match (name, field(name)) {
                    ("type", Some(kind)) if kind == "unicast" => {}
                    ("scope", Some(scope)) if scope == "global" => {}
                    (_, Some(value)) => line.push_str(&format!(" {name} {value}")),
                    (_, None) => {}
                }
            }
            line.push_str(&format!(" protocol {protocol}"));
            lines.push(line);
        }
    }
    lines.sort();
    lines.join("\n")
}

pub(crate) fn owned_routes(netns: &Netns) -> String {
    kernel_routes(netns, &RTPROT_MYELIN.to_string())
}

async fn list_owned(target: &RouteTarget) -> String {
    let mut routes: Vec<String> = target
        .list_owned()
        .await
        .expect("list owned routes")
        .iter()
        .map(ToString::to_string)
        .collect();
    routes.sort();
    routes.join("\n")
}

/// The error and its sources joined by ": ".
fn chain(err: &dyn Error) -> String {
    let mut rendered = err.to_string();
    let mut source = err.source();
    while let Some(err) = source {
        rendered.push_str(&format!(": {err}"));
        source = err.source();
    }
    rendered
}

fn check_err(result: Result<(), RouteError>, expect: Expect) -> RouteError {
    let err = result.expect_err("the kernel should reject the route");
    expect.assert_eq(&chain(&err));
    err
}

#[tokio::test(flavor = "current_thread")]
async fn replace_installs_routes_tagged_with_myelin_protocol() {
    let (netns, target) = fixture();
    let routes = [
        RouteSpec {
            dev: dev("d0"),
            ..route("10.201.0.0", 24)
        },
        RouteSpec {
            gateway: ip("10.200.0.2"),
            ..route("10.202.0.0", 24)
        },
        RouteSpec {
            dev: dev("d0"),
            ..route("fd00:201::", 64)
        },
        RouteSpec {
            gateway: ip("10.200.0.3"),
            dev: dev("d0"),
            table: 1000,
            priority: Some(10),
            ..route("0.0.0.0", 0)
        },
        RouteSpec {
            gateway: ip("fd00:200::2"),
            table: 100,
            priority: Some(5),
            ..route("fd00:202::", 48)
        },
    ];
    for route in &routes {
        target.replace(route).await.expect("replace route");
    }

    expect![[r#"
        10.201.0.0/24 dev d0 table main scope link protocol 193
        10.202.0.0/24 gateway 10.200.0.2 dev d0 table main protocol 193
        default gateway 10.200.0.3 dev d0 table 1000 metric 10 protocol 193
        fd00:201::/64 dev d0 table main metric 1024 protocol 193
        fd00:202::/48 gateway fd00:200::2 dev d0 table 100 metric 5 protocol 193"#]]
    .assert_eq(&owned_routes(&netns));
    // The kernel records the device it resolved for 10.202.0.0/24 and metric 1024 for
    // fd00:201::/64; list_owned reports the latter as the default metric.
    expect![[r#"
        0.0.0.0/0 via 10.200.0.3 dev d0 table 1000 metric 10
        10.201.0.0/24 dev d0 table 254
        10.202.0.0/24 via 10.200.0.2 dev d0 table 254
        fd00:201::/64 dev d0 table 254
        fd00:202::/48 via fd00:200::2 dev d0 table 100 metric 5"#]]
    .assert_eq(&list_owned(&target).await);

    // Not the kernel's connected routes, and not the current namespace's table.
    let connected = kernel_routes(&netns, "kernel");
    assert!(connected.contains("10.200.0.0/24 dev d0"), "{connected}");
    let host = std::process::Command::new("ip")
        .args(["route", "show", "table", "all", "proto", "193"])
        .output()
        .expect("spawn ip");
    assert!(
        !String::from_utf8_lossy(&host.stdout).contains("10.201.0.0/24"),
        "route leaked into the test's own namespace"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn replace_is_idempotent_and_replaces_the_next_hop() {
    let (netns, target) = fixture();
    let via2 = RouteSpec {
        gateway: ip("10.200.0.2"),
        dev: dev("d0"),
        ..route("10.202.0.0", 24)
    };
    target.replace(&via2).await.expect("replace route");
    target
        .replace(&via2)
        .await
        .expect("replace the same route again");
    let via3 = RouteSpec {
        gateway: ip("10.200.0.3"),
        ..via2.clone()
    };
    target.replace(&via3).await.expect("replace the next hop");
    expect!["10.202.0.0/24 gateway 10.200.0.3 dev d0 table main protocol 193"]
        .assert_eq(&owned_routes(&netns));
    expect!["10.202.0.0/24 via 10.200.0.3 dev d0 table 254"].assert_eq(&list_owned(&target).await);

    // A different metric is a different route.
    let metric = RouteSpec {
        priority: Some(20),
        ..via3.clone()
    };
    target
        .replace(&metric)
        .await
        .expect("replace route with metric");
    expect![[r#"
        10.202.0.0/24 via 10.200.0.3 dev d0 table 254
        10.202.0.0/24 via 10.200.0.3 dev d0 table 254 metric 20"#]]
    .assert_eq(&list_owned(&target).await);
}

#[tokio::test(flavor = "current_thread")]
async fn delete_removes_only_that_route_and_is_idempotent() {
    let (netns, target) = fixture();
    let on_link = RouteSpec {
        dev: dev("d0"),
        ..route("10.201.0.0", 24)
    };
    let via = RouteSpec {
        gateway: ip("10.200.0.2"),
        ..route("10.202.0.0", 24)
    };
    let v6 = RouteSpec {
        dev: dev("d0"),
        ..route("fd00:201::", 64)
    };
    for route in [&on_link, &via, &v6] {
        target.replace(route).await.expect("replace route");
    }

    target.delete(&on_link).await.expect("delete route");
    expect![[r#"
        10.202.0.0/24 gateway 10.200.0.2 dev d0 table main protocol 193
        fd00:201::/64 dev d0 table main metric 1024 protocol 193"#]]
    .assert_eq(&owned_routes(&netns));
    target
        .delete(&on_link)
        .await
        .expect("delete an absent route");

    target.delete(&v6).await.expect("delete ipv6 route");
    target
        .delete(&v6)
        .await
        .expect("delete an absent ipv6 route");
    expect!["10.202.0.0/24 via 10.200.0.2 dev d0 table 254"].assert_eq(&list_owned(&target).await);

    // Deleting through a link that does not exist: no such route can exist either.
    let gone = RouteSpec {
        dev: dev("nosuch"),
        ..route("10.203.0.0", 24)
    };
    target
        .delete(&gone)
        .await
        .expect("delete through a missing link");

    // The routes of a deleted link vanish with it.
    target.delete(&via).await.expect("delete via route");
    target.replace(&on_link).await.expect("replace route");
    netns.exec_ok(&["ip", "link", "del", "d0"]);
    expect![""].assert_eq(&list_owned(&target).await);
    target
        .delete(&on_link)
        .await
        .expect("delete route of a deleted link");
}

#[tokio::test(flavor = "current_thread")]
async fn kernel_rejections_are_errors_naming_the_route() {
    let (netns, target) = fixture();
    let unreachable = RouteSpec {
        gateway: ip("192.0.2.1"),
        ..route("10.203.0.0", 24)
    };
    let err = check_err(
        target.replace(&unreachable).await,
        expect![
            "replace route 10.203.0.0/24 via 192.0.2.1 table 254: Network is unreachable (os error 101)"
        ],
    );
    assert_eq!(err.raw_os_error(), Some(101), "ENETUNREACH");

    check_err(
        target
            .replace(&RouteSpec {
                dev: dev("nosuch"),
                ..route("10.1.0.0", 24)
            })
            .await,
        expect![[r#"replace route 10.1.0.0/24 dev nosuch table 254: link "nosuch" not found"#]],
    );
    check_err(
        target.replace(&route("10.1.0.1", 24)).await,
        expect!["replace route 10.1.0.1/24 table 254: 10.1.0.1/24 is not a network prefix"],
    );
    check_err(
        target
            .replace(&RouteSpec {
                gateway: ip("10.0.0.1"),
                ..route("fd00:203::", 64)
            })
            .await,
        expect![
            "replace route fd00:203::/64 via 10.0.0.1 table 254: ipv4 gateway 10.0.0.1 for an ipv6 destination"
        ],
    );
    // None of the rejected routes was installed.
    expect![""].assert_eq(&list_owned(&target).await);

    netns.exec_ok(&["ip", "link", "set", "d0", "down"]);
    check_err(
        target
            .replace(&RouteSpec {
                dev: dev("d0"),
                gateway: ip("10.200.0.2"),
                ..route("10.204.0.0", 24)
            })
            .await,
        expect![
            "replace route 10.204.0.0/24 via 10.200.0.2 dev d0 table 254: Network is unreachable (os error 101)"
        ],
    );
    expect![""].assert_eq(&list_owned(&target).await);
}

#[tokio::test(flavor = "current_thread")]
async fn routes_added_by_hand_are_neither_owned_nor_deleted() {
    let (netns, target) = fixture();
    netns.exec_ok(&["ip", "route", "add", "10.205.0.0/24", "dev", "d0"]);
    let same = RouteSpec {
        dev: dev("d0"),
        ..route("10.205.0.0", 24)
    };
    expect![""].assert_eq(&list_owned(&target).await);
    target.delete(&same).await.expect("delete is a no-op");
    expect!["10.205.0.0/24 dev d0 table main scope link protocol boot"]
        .assert_eq(&kernel_routes(&netns, "boot"));

    // Replacing takes the route over.
    target.replace(&same).await.expect("replace route");
    expect!["10.205.0.0/24 dev d0 table 254"].assert_eq(&list_owned(&target).await);
    expect![""].assert_eq(&kernel_routes(&netns, "boot"));
}

#[tokio::test(flavor = "current_thread")]
async fn open_reports_a_missing_namespace() {
    let err = RouteTarget::open(Some(Path::new("/run/netns/myelin-it-nosuch")))
        .expect_err("no such namespace");
    expect![
        "open network namespace /run/netns/myelin-it-nosuch: No such file or directory (os error 2)"
    ]
    .assert_eq(&chain(&err));
}

#[tokio::test(flavor = "current_thread")]
async fn target_outlives_use_from_other_tasks() {
    let (netns, target) = fixture();
    let target = std::sync::Arc::new(target);
    let task = tokio::spawn({
        let target = std::sync::Arc::clone(&target);
        async move {
            target
                .replace(&RouteSpec {
                    dev: dev("d0"),
                    ..route("10.206.0.0", 24)
                })
                .await
        }
    });
    task.await
        .expect("join task")
        .expect("replace route from a task");
    expect!["10.206.0.0/24 dev d0 table main scope link protocol 193"]
        .assert_eq(&owned_routes(&netns));
}
