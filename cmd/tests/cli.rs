//! The `myelin` CLI run as a user runs it, output compared with snapshots.

use std::path::Path;
use std::process::Command;

use expect_test::{Expect, expect};

/// Runs `myelin args..` from the workspace root; returns the exit code and stdout.
fn myelin(args: &[&str]) -> (i32, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    let out = Command::new(env!("CARGO_BIN_EXE_myelin"))
        .args(args)
        .current_dir(root)
        .output()
        .expect("run myelin");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8 output"),
    )
}

fn check(args: &[&str], code: i32, stdout: Expect) {
    let (got_code, got) = myelin(args);
    stdout.assert_eq(&got);
    assert_eq!(got_code, code, "exit code of myelin {}", args.join(" "));
}

#[test]
fn the_star_wars_example_is_valid() {
    check(
        &[
            "policy",
            "validate",
            "examples/starwars/app",
            "examples/starwars/policy",
            "examples/starwars/policy-l7",
        ],
        0,
        expect![[r#"
            7 objects valid
        "#]],
    );
}

#[test]
fn every_error_is_printed_one_per_line() {
    check(
        &["policy", "validate", "cmd/tests/data/invalid"],
        1,
        expect![[r#"
            cmd/tests/data/invalid/policies.yaml:1 (document 1): CiliumNetworkPolicy default/rule1: unknown field "spec.ingress[0].fromEndpoint"
            cmd/tests/data/invalid/policies.yaml:15 (document 2): unsupported kind "Deployment" of apiVersion "apps/v1"
            prod/bad-ports: spec.ingress[0].ports[0].protocol: "ICMP" is not one of TCP, UDP, SCTP
            prod/bad-ports: spec.ingress[0].ports[1].port: port 70000 is out of range 1-65535
            prod/bad-ports: spec.ingress[1].from[0].ipBlock.except[0]: "192.168.0.0/16" is not a strict subset of "10.0.0.0/8"
        "#]],
    );
}

const SW: [&str; 4] = [
    "--manifests",
    "examples/starwars/app",
    "--manifests",
    "examples/starwars/policy",
];

#[test]
fn star_wars_matrix_without_and_with_rule1() {
    check(
        &[
            "policy",
            "matrix",
            "--manifests",
            "examples/starwars/app",
            "-o",
            "json",
        ],
        0,
        expect![[r#"
            {"probes":[{"probe":"80/TCP","from":["default/deathstar-c74d84667-cx5kp","default/deathstar-c74d84667-t2lcz","default/tiefighter","default/xwing"],"to":["default/deathstar-c74d84667-cx5kp","default/deathstar-c74d84667-t2lcz","default/tiefighter","default/xwing"],"allowed":[[true,true,true,true],[true,true,true,true],[true,true,true,true],[true,true,true,true]]}]}
        "#]],
    );
    let args: Vec<&str> = ["policy", "matrix"].into_iter().chain(SW).collect();
    check(
        &args,
        0,
        expect![[r#"
            80/TCP
            -	default/deathstar-c74d84667-cx5kp	default/deathstar-c74d84667-t2lcz	default/tiefighter	default/xwing
            default/deathstar-c74d84667-cx5kp	.	.	.	.
            default/deathstar-c74d84667-t2lcz	.	.	.	.
            default/tiefighter	.	.	.	.
            default/xwing	X	X	.	.
        "#]],
    );
}

#[test]
fn star_wars_trace_explains_both_ends() {
    let args: Vec<&str> = ["policy", "trace"]
        .into_iter()
        .chain(SW)
        .chain([
            "--from",
            "default/xwing",
            "--to",
            "svc:default/deathstar",
            "--port",
            "80/TCP",
        ])
        .collect();
    check(
        &args,
        0,
        expect![[r#"
            probe: 80/TCP
            egress: default/xwing (identity 258), peer identity 256: allowed, not enforced (no policy selects it for egress)
            ingress: default/deathstar-c74d84667-cx5kp (identity 256), peer identity 258: denied, no rule allows it (default deny)
              selected by CiliumNetworkPolicy default/rule1 spec
            verdict: denied
        "#]],
    );
    let args: Vec<&str> = ["policy", "trace", "--manifests", "examples/starwars/app"]
        .into_iter()
        .chain(["--manifests", "examples/starwars/policy-l7"])
        .chain([
            "--from",
            "default/tiefighter",
            "--to",
            "svc:default/deathstar",
        ])
        .chain(["--http-method", "PUT", "--http-path", "/v1/exhaust-port"])
        .collect();
    check(
        &args,
        0,
        expect![[r#"
            probe: 80/TCP
            egress: default/tiefighter (identity 257), peer identity 256: allowed, not enforced (no policy selects it for egress)
            ingress: default/deathstar-c74d84667-cx5kp (identity 256), peer identity 257: allowed by entry ingress 257 80/TCP
              CiliumNetworkPolicy default/rule1 spec.ingress[0] (redirect)
            http: 403
            verdict: denied
        "#]],
    );
}

#[test]
fn policy_get_prints_translated_rules() {
    let args: Vec<&str> = ["policy", "get"].into_iter().chain(SW).collect();
    let (code, out) = myelin(&args);
    expect_test::expect_file!["snapshots/policy_get_rule1.txt"].assert_eq(&out);
    assert_eq!(code, 0);
}
