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
