use expect_test::{Expect, expect};

use super::{decode, requested_version};

fn check(input: &str, expected: Expect) {
    let rendered = match decode(input.as_bytes()) {
        Ok(conf) => format!("{conf:?}"),
        Err(err) => format!("error {}: {}", err.code.number(), err.msg),
    };
    expected.assert_eq(&rendered);
}

#[test]
fn decodes_the_deployed_conflist_entry() {
    check(
        r#"{"cniVersion":"1.0.0","name":"myelin","type":"myelin-cni","agentSocket":"/run/myelin/agent.sock"}"#,
        expect![[
            r#"NetConf { cni_version: "1.0.0", name: "myelin", agent_socket: "/run/myelin/agent.sock", dns: None, prev_result: None }"#
        ]],
    );
}

#[test]
fn defaults_the_socket_and_keeps_dns_and_prev_result() {
    check(
        r#"{"cniVersion":"1.1.0","name":"myelin","type":"myelin-cni","dns":{"nameservers":["10.96.0.10"]},
            "prevResult":{"cniVersion":"1.1.0","ips":[]},"args":{"labels":{"x":"y"}},"runtimeConfig":{}}"#,
        expect![[
            r#"NetConf { cni_version: "1.1.0", name: "myelin", agent_socket: "/run/myelin/agent.sock", dns: Some(Object {"nameservers": Array [String("10.96.0.10")]}), prev_result: Some(Object {"cniVersion": String("1.1.0"), "ips": Array []}) }"#
        ]],
    );
}

#[test]
fn errors_carry_the_spec_codes_and_name_the_field() {
    let cases = [
        (
            "",
            expect![
                "error 6: decode network configuration: EOF while parsing a value at line 1 column 0"
            ],
        ),
        (
            "{\"cniVersion\":",
            expect![
                "error 6: decode network configuration: EOF while parsing a value at line 1 column 14"
            ],
        ),
        (
            "[]",
            expect!["error 7: network configuration must be a JSON object"],
        ),
        (
            r#"{"name":"n","type":"t"}"#,
            expect!["error 7: missing field `cniVersion`"],
        ),
        (
            r#"{"cniVersion":1,"name":"n","type":"t"}"#,
            expect!["error 7: field `cniVersion` must be a string"],
        ),
        (
            r#"{"cniVersion":"0.4.0","name":"n","type":"t"}"#,
            expect![[
                r#"error 1: incompatible cniVersion "0.4.0": myelin-cni supports 1.0.0, 1.1.0"#
            ]],
        ),
        (
            r#"{"cniVersion":"1.0.0","type":"t"}"#,
            expect!["error 7: missing field `name`"],
        ),
        (
            r#"{"cniVersion":"1.0.0","name":"-n","type":"t"}"#,
            expect![[
                r#"error 7: field `name`: "-n" must start with a letter or digit, then letters, digits, '_', '.' or '-'"#
            ]],
        ),
        (
            r#"{"cniVersion":"1.0.0","name":"n","type":""}"#,
            expect!["error 7: field `type` must not be empty"],
        ),
        (
            r#"{"cniVersion":"1.0.0","name":"n","type":"t","agentSocket":"run/agent.sock"}"#,
            expect![[r#"error 7: field `agentSocket`: "run/agent.sock" is not an absolute path"#]],
        ),
        (
            r#"{"cniVersion":"1.0.0","name":"n","type":"t","agentSocket":7}"#,
            expect!["error 7: field `agentSocket` must be a string"],
        ),
        (
            r#"{"cniVersion":"1.0.0","name":"n","type":"t","prevResult":"x"}"#,
            expect!["error 7: field `prevResult` must be an object"],
        ),
        (
            r#"{"cniVersion":"1.0.0","name":"n","type":"t","ipam":{"type":"host-local"}}"#,
            expect![
                "error 2: unsupported field `ipam`: myelin-cni gets addresses from the myelin agent"
            ],
        ),
        (
            r#"{"cniVersion":"1.0.0","name":"n","type":"t","ipMasq":true}"#,
            expect!["error 2: unsupported field `ipMasq`: myelin-cni does not masquerade"],
        ),
    ];
    for (input, expected) in cases {
        check(input, expected);
    }
}

#[test]
fn answers_in_the_requested_version_when_it_can() {
    assert_eq!(requested_version(br#"{"cniVersion":"1.0.0"}"#), "1.0.0");
    assert_eq!(requested_version(br#"{"cniVersion":"0.3.1"}"#), "1.1.0");
    assert_eq!(requested_version(b"garbage"), "1.1.0");
}

#[test]
fn the_deployed_conflist_is_what_the_plugin_reads() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../deploy/cni/05-myelin.conflist"
    );
    let list: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("conflist")).expect("json");
    // What a runtime does: each plugin gets the list's name and cniVersion.
    let mut plugin = list["plugins"][0].clone();
    plugin["name"] = list["name"].clone();
    plugin["cniVersion"] = list["cniVersion"].clone();
    assert_eq!(plugin["type"], "myelin-cni");
    check(
        &plugin.to_string(),
        expect![[
            r#"NetConf { cni_version: "1.0.0", name: "myelin", agent_socket: "/run/myelin/agent.sock", dns: None, prev_result: None }"#
        ]],
    );
}
