use std::collections::HashMap;

use expect_test::{Expect, expect};

use super::{from_env, parse_args};

fn check(vars: &[(&str, &str)], expected: &Expect) {
    let env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let got = from_env(|name| env.get(name).cloned());
    let rendered = match got {
        Ok(invocation) => format!("{invocation:?}"),
        Err(err) => format!("error {}: {}", err.code.number(), err.msg),
    };
    expected.assert_eq(&rendered);
}

const ADD: &[(&str, &str)] = &[
    ("CNI_COMMAND", "ADD"),
    ("CNI_CONTAINERID", "abc123"),
    ("CNI_NETNS", "/run/netns/pod"),
    ("CNI_IFNAME", "eth0"),
    ("CNI_PATH", "/opt/cni/bin"),
    (
        "CNI_ARGS",
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc123;K8S_POD_UID=u-1",
    ),
];

fn with(overrides: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars: Vec<_> = ADD
        .iter()
        .filter(|(k, _)| !overrides.iter().any(|(o, _)| o == k))
        .copied()
        .collect();
    vars.extend(overrides.iter().filter(|(_, v)| *v != "<unset>"));
    vars
}

#[test]
fn reads_an_add() {
    check(
        ADD,
        &expect![[
            r#"Invocation { command: Add, container_id: "abc123", netns: "/run/netns/pod", ifname: "eth0", args: CniArgs { pod_namespace: Some("default"), pod_name: Some("web-0"), ip: None } }"#
        ]],
    );
}

#[test]
fn del_may_come_without_a_netns() {
    check(
        &with(&[("CNI_COMMAND", "DEL"), ("CNI_NETNS", "<unset>")]),
        &expect![[
            r#"Invocation { command: Del, container_id: "abc123", netns: "", ifname: "eth0", args: CniArgs { pod_namespace: Some("default"), pod_name: Some("web-0"), ip: None } }"#
        ]],
    );
}

#[test]
fn version_and_status_need_nothing_else() {
    check(
        &[("CNI_COMMAND", "VERSION")],
        &expect![[
            r#"Invocation { command: Version, container_id: "", netns: "", ifname: "", args: CniArgs { pod_namespace: None, pod_name: None, ip: None } }"#
        ]],
    );
    check(
        &[("CNI_COMMAND", "STATUS")],
        &expect![[
            r#"Invocation { command: Status, container_id: "", netns: "", ifname: "", args: CniArgs { pod_namespace: None, pod_name: None, ip: None } }"#
        ]],
    );
}

#[test]
fn invalid_environments_are_error_4() {
    let cases: [(&[(&'static str, &'static str)], Expect); 10] = [
        (
            &[("CNI_COMMAND", "<unset>")],
            expect!["error 4: CNI_COMMAND is not set"],
        ),
        (
            &[("CNI_COMMAND", "GC")],
            expect![[
                r#"error 4: CNI_COMMAND "GC" is not one of ADD, DEL, CHECK, STATUS, VERSION"#
            ]],
        ),
        (
            &[("CNI_CONTAINERID", "<unset>")],
            expect!["error 4: CNI_CONTAINERID is required for ADD"],
        ),
        (
            &[("CNI_CONTAINERID", "")],
            expect!["error 4: CNI_CONTAINERID is required for ADD"],
        ),
        (
            &[("CNI_CONTAINERID", "a/b")],
            expect![[
                r#"error 4: CNI_CONTAINERID "a/b" may contain only letters, digits, '_', '.' and '-'"#
            ]],
        ),
        (
            &[("CNI_COMMAND", "CHECK"), ("CNI_NETNS", "<unset>")],
            expect!["error 4: CNI_NETNS is required for CHECK"],
        ),
        (
            &[("CNI_IFNAME", "eth0123456789abc")],
            expect![[r#"error 4: CNI_IFNAME "eth0123456789abc" is longer than 15 bytes"#]],
        ),
        (
            &[("CNI_IFNAME", "..")],
            expect![[r#"error 4: CNI_IFNAME ".." is reserved"#]],
        ),
        (
            &[("CNI_IFNAME", "eth 0")],
            expect![[r#"error 4: CNI_IFNAME "eth 0" contains '/', ':' or whitespace"#]],
        ),
        (
            &[("CNI_ARGS", "K8S_POD_NAME=web;oops")],
            expect![[r#"error 4: CNI_ARGS: "oops" is not KEY=VALUE"#]],
        ),
    ];
    for (overrides, expected) in &cases {
        check(&with(overrides), expected);
    }
}

#[test]
fn cni_args_keep_what_matters_and_ignore_the_rest() {
    let render = |text: &str| match parse_args(text) {
        Ok(args) => format!("{args:?}"),
        Err(err) => format!("error {}: {}", err.code.number(), err.msg),
    };
    let cases = [
        "",
        "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-1",
        "K8S_POD_NAME=a;;K8S_POD_NAME=b;",
        "FOO=BAR;K8S_POD_NAME=x=y",
        "K8S_POD_NAMESPACE=",
        "=value",
        "K8S_POD_NAME=a;IP=10.42.1.1",
        "IP=10.42.1",
    ];
    let rendered: Vec<String> = cases
        .iter()
        .map(|text| format!("{text:?} -> {}", render(text)))
        .collect();
    expect![[r#"
        "" -> CniArgs { pod_namespace: None, pod_name: None, ip: None }
        "K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-1" -> CniArgs { pod_namespace: Some("kube-system"), pod_name: Some("coredns-1"), ip: None }
        "K8S_POD_NAME=a;;K8S_POD_NAME=b;" -> CniArgs { pod_namespace: None, pod_name: Some("b"), ip: None }
        "FOO=BAR;K8S_POD_NAME=x=y" -> CniArgs { pod_namespace: None, pod_name: Some("x=y"), ip: None }
        "K8S_POD_NAMESPACE=" -> CniArgs { pod_namespace: Some(""), pod_name: None, ip: None }
        "=value" -> error 4: CNI_ARGS: "=value" has an empty key
        "K8S_POD_NAME=a;IP=10.42.1.1" -> CniArgs { pod_namespace: None, pod_name: Some("a"), ip: Some(10.42.1.1) }
        "IP=10.42.1" -> error 4: CNI_ARGS: IP="10.42.1" is not an IPv4 address"#]]
    .assert_eq(&rendered.join("\n"));
}
