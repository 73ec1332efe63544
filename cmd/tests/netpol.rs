//! The upstream Kubernetes e2e NetworkPolicy cases (`cmd/tests/netpol/`, see its README.md)
//! run through `myelin policy matrix`, every case compared with its `expected.txt`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use schema::object::Object;

#[path = "netpol/cases.rs"]
mod cases;

use cases::{CLUSTER, Case, cases};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// `myelin policy matrix` over the cluster and one case; the exit code, stdout and stderr.
fn matrix(case: &Case, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec![
        "policy",
        "matrix",
        "--manifests",
        CLUSTER,
        "--manifests",
        &case.dir,
    ];
    for probe in &case.probes {
        args.extend(["--probe", probe.as_str()]);
    }
    args.extend(extra);
    let out = Command::new(env!("CARGO_BIN_EXE_myelin"))
        .args(&args)
        .current_dir(root())
        .output()
        .expect("run myelin");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The lines that differ, as `-expected` / `+actual` pairs with their line numbers.
fn diff(expected: &str, actual: &str) -> String {
    let (want, got): (Vec<_>, Vec<_>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..want.len().max(got.len()) {
        let (w, g) = (want.get(i), got.get(i));
        if w != g {
            let _ = writeln!(out, "  line {}:", i + 1);
            if let Some(w) = w {
                let _ = writeln!(out, "  -{w}");
            }
            if let Some(g) = g {
                let _ = writeln!(out, "  +{g}");
            }
        }
    }
    if out.is_empty() && expected != actual {
        out.push_str("  (only trailing newlines differ)\n");
    }
    out
}

#[test]
fn every_upstream_case_gives_the_expected_matrix() {
    let cases = cases(&root());
    let mut failures = String::new();
    let mut failed = 0;
    for case in &cases {
        let (code, stdout, stderr) = matrix(case, &[]);
        if code != 0 || stdout != case.expected {
            failed += 1;
            let _ = writeln!(
                failures,
                "{} ({}): exit {code}{}\n{}",
                case.dir,
                case.it,
                if stderr.is_empty() {
                    String::new()
                } else {
                    format!(", stderr: {}", stderr.trim_end())
                },
                if stdout.is_empty() {
                    "  (no output)\n".to_owned()
                } else {
                    diff(&case.expected, &stdout)
                }
            );
        }
    }
    assert!(
        failed == 0,
        "{failed} of {} cases differ:\n{failures}",
        cases.len()
    );
}

/// The truth tables of `-o json`, rendered back into the table text of `expected.txt`.
///
/// The JSON shape the issue fixes: `{"probes": [{"probe": "80/TCP", "from": ["x/a", ..],
/// "to": ["x/a", ..], "allowed": [[true, false, ..], ..]}]}`, where `allowed[i][j]` is
/// from[i] -> to[j].
fn tables_from_json(json: &serde_json::Value) -> String {
    let probes = json["probes"].as_array().expect("`probes` is an array");
    let tables: Vec<String> = probes
        .iter()
        .map(|p| {
            assert_eq!(
                p["from"], p["to"],
                "every pod is both a source and a destination"
            );
            let pods: Vec<&str> = p["from"]
                .as_array()
                .expect("`from` is an array")
                .iter()
                .map(|v| v.as_str().expect("pod names are strings"))
                .collect();
            let mut out = format!(
                "{}\n-\t{}\n",
                p["probe"].as_str().expect("probe"),
                pods.join("\t")
            );
            let rows = p["allowed"].as_array().expect("`allowed` is an array");
            for (from, row) in pods.iter().zip(rows) {
                let cells: Vec<&str> = row
                    .as_array()
                    .expect("a row is an array")
                    .iter()
                    .map(|c| {
                        if c.as_bool().expect("cells are booleans") {
                            "."
                        } else {
                            "X"
                        }
                    })
                    .collect();
                let _ = writeln!(out, "{from}\t{}", cells.join("\t"));
            }
            out
        })
        .collect();
    tables.join("\n")
}

#[test]
fn json_output_holds_the_same_matrix() {
    let case = cases(&root())
        .into_iter()
        .find(|c| c.dir.ends_with("/ingress-and-egress-together"))
        .expect("the ingress-and-egress-together case");
    let (code, stdout, stderr) = matrix(&case, &["-o", "json"]);
    assert_eq!(code, 0, "myelin policy matrix -o json failed: {stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is JSON");
    let got = tables_from_json(&json);
    assert!(
        got == case.expected,
        "JSON matrix differs from expected.txt:\n{}",
        diff(&case.expected, &got)
    );
}

/// Every case parses and validates, names its probes, and its tables have the cluster's pods
/// in `ns/pod` order with one `.`/`X` cell per pod: the data the engine is held to is sound.
#[test]
fn every_case_is_well_formed() {
    let cluster_pods: Vec<String> = pods(&[root().join(CLUSTER)]);
    assert_eq!(cluster_pods.len(), 9, "the x/y/z by a/b/c model");
    let header = format!("-\t{}", cluster_pods.join("\t"));
    let cases = cases(&root());
    assert!(cases.len() >= 50, "only {} cases", cases.len());
    let mut its = BTreeSet::new();
    for case in &cases {
        let dir = case.path(&root());
        let errors = problems(&[root().join(CLUSTER), dir.clone()]);
        assert!(errors.is_empty(), "{}: {errors:?}", case.dir);
        assert!(
            case.it.starts_with("should "),
            "{}: `{}`",
            case.dir,
            case.it
        );
        its.insert(case.it.as_str());
        assert_eq!(
            pods(&[root().join(CLUSTER), dir]),
            cluster_pods,
            "{}: a case may change pods, not add them",
            case.dir
        );

        let tables: Vec<&str> = case.expected.split("\n\n").collect();
        assert_eq!(
            tables.len(),
            case.probes.len(),
            "{}: one table per probe",
            case.dir
        );
        for (table, probe) in tables.iter().zip(&case.probes) {
            let lines: Vec<&str> = table.lines().collect();
            assert_eq!(lines.first(), Some(&probe.as_str()), "{}", case.dir);
            assert_eq!(lines.get(1), Some(&header.as_str()), "{}", case.dir);
            assert_eq!(lines.len(), 2 + cluster_pods.len(), "{}", case.dir);
            for (line, from) in lines[2..].iter().zip(&cluster_pods) {
                let mut cells = line.split('\t');
                assert_eq!(cells.next(), Some(from.as_str()), "{}", case.dir);
                let cells: Vec<&str> = cells.collect();
                assert_eq!(cells.len(), cluster_pods.len(), "{}: {line}", case.dir);
                assert!(
                    cells.iter().all(|c| *c == "." || *c == "X"),
                    "{}: {line}",
                    case.dir
                );
            }
        }
        assert!(case.expected.ends_with("X\n") || case.expected.ends_with(".\n"));
    }
    // 42 tests in the main context plus 3 each for UDP and SCTP, whose names repeat main ones.
    assert_eq!(its.len(), 42, "distinct upstream test names");
}

/// `ns/name` of every Pod, sorted, later directories replacing earlier objects of the same name.
fn pods(dirs: &[PathBuf]) -> Vec<String> {
    let mut names = BTreeSet::new();
    for object in schema::manifest::load_paths(dirs) {
        if let Ok(Object::Pod(pod)) = object {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let ip = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
            assert!(ip.is_some(), "pod {ns}/{name} has no status.podIP");
            names.insert(format!("{ns}/{name}"));
        }
    }
    names.into_iter().collect()
}

/// Every load and validation error of the manifests in `dirs`.
fn problems(dirs: &[PathBuf]) -> Vec<String> {
    let mut errors = Vec::new();
    for object in schema::manifest::load_paths(dirs) {
        match object {
            Ok(object) => errors.extend(
                schema::validate::object(&object)
                    .iter()
                    .map(ToString::to_string),
            ),
            Err(e) => errors.push(e.to_string()),
        }
    }
    errors
}
