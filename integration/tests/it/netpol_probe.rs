//! `myelin probe matrix` (real traffic through the eBPF datapath) against the upstream
//! Kubernetes e2e NetworkPolicy cases that `myelin policy matrix` is held to in
//! `cmd/tests/netpol.rs`: one embedded node with the x/y/z cluster (its pods keep their
//! manifest addresses, so `ipBlock` rules mean the same), each case applied, probed and undone.
//!
//! Two things the kernel cannot show are left out, and only those: a pod's connection to its
//! own address goes over its loopback and never reaches the veth, so the diagonal is not
//! compared (Cilium does not police it either); and SCTP probes, when the kernel has no SCTP.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use schema::object::Object;

use crate::embedded::{Embedded, describe};

#[path = "../../../cmd/tests/netpol/cases.rs"]
mod cases;

use cases::{CLUSTER, cases};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sctp_available() -> bool {
    Path::new("/proc/net/sctp").exists()
}

/// The tables of `text` (`policy matrix` table output), one per probe, with the diagonal
/// blanked.
fn without_diagonal(text: &str) -> String {
    let mut out = String::new();
    for block in text.split("\n\n") {
        for (row, line) in block.lines().enumerate() {
            let mut cells: Vec<&str> = line.split('\t').collect();
            // Row 0 is the probe, row 1 the header; row r >= 2 is source r-2, whose own
            // column is cell r-1.
            if row >= 2 && row - 1 < cells.len() {
                cells[row - 1] = "~";
            }
            out.push_str(&cells.join("\t"));
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// The NetworkPolicies of a case directory, as one manifest for `myelin delete -f`.
fn policies_only(dir: &Path, into: &Path) {
    let mut text = String::new();
    for entry in fs::read_dir(dir).expect("read case") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let source = fs::read_to_string(&path).expect("read yaml");
        for object in schema::manifest::parse_str(&path.display().to_string(), &source) {
            let object = object.expect("case manifests parse");
            if matches!(object, Object::NetworkPolicy(_)) {
                text.push_str("---\n");
                text.push_str(&object.to_json());
                text.push('\n');
            }
        }
    }
    fs::write(into, text).expect("write policies");
}

#[test]
fn probe_matrix_equals_policy_matrix_on_the_upstream_cases() {
    let root = root();
    let cluster = root.join(CLUSTER);
    let node = Embedded::up_with(&cluster, &["--pod-cidr", "10.42.0.0/16"]);
    let scratch = tempfile_path(&node);
    let mut failures = String::new();
    let mut compared = 0;
    for case in cases(&root) {
        let dir = case.path(&root);
        let probes: Vec<&String> = case
            .probes
            .iter()
            .filter(|p| sctp_available() || !p.ends_with("/SCTP"))
            .collect();
        if probes.is_empty() {
            continue;
        }
        let applied = node.myelin(&["apply", "-f", &dir.display().to_string()]);
        assert!(
            applied.status.success(),
            "{}: {}",
            case.dir,
            describe(&applied)
        );
        let mut args = vec!["probe", "matrix", "--timeout", "300ms"];
        for probe in &probes {
            args.extend(["--probe", probe.as_str()]);
        }
        let measured = node.myelin_ok(&args);
        let expected: String = case
            .expected
            .split("\n\n")
            .filter(|block| probes.iter().any(|p| block.starts_with(p.as_str())))
            .collect::<Vec<_>>()
            .join("\n\n");
        if without_diagonal(&measured) != without_diagonal(&expected) {
            let _ = writeln!(
                failures,
                "{} ({}):\nexpected:\n{expected}\nmeasured:\n{measured}",
                case.dir, case.it
            );
        }
        compared += 1;
        policies_only(&dir, &scratch);
        node.myelin_ok(&["delete", "-f", &scratch.display().to_string()]);
        node.myelin_ok(&["apply", "-f", &cluster.display().to_string()]);
    }
    let _ = fs::remove_file(&scratch);
    assert!(compared >= 50, "only {compared} cases compared");
    assert!(failures.is_empty(), "probe matrix differs:\n{failures}");
}

fn tempfile_path(node: &Embedded) -> PathBuf {
    std::env::temp_dir().join(format!("myelin-it-netpol-{}.yaml", node.name()))
}
