use expect_test::expect;
use schema::agent_api::{Applied, Manifest};
use statedb::Db;

use super::Objects;
use crate::testdir::TestDir;

fn manifest(text: &str) -> Manifest {
    Manifest {
        source: "test.yaml".to_owned(),
        text: text.to_owned(),
        wait: false,
        traceparent: None,
    }
}

/// kubectl's lines: `resource/name action`, with the errors of rejected objects.
fn lines(applied: &Applied) -> String {
    let mut out = String::new();
    for r in &applied.results {
        let ns = r
            .namespace
            .as_deref()
            .map(|n| format!("{n}/"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{}/{ns}{} {}\n",
            r.resource,
            r.name,
            r.action.as_str()
        ));
        for e in &r.errors {
            out.push_str(&format!("  {e}\n"));
        }
    }
    out
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: xwing, labels: {org: alliance}}
spec: {containers: [{name: c, image: i}]}
";

const POLICY: &str = "apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1}
spec:
  endpointSelector: {matchLabels: {org: empire}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts: [{ports: [{port: \"80\", protocol: TCP}]}]
";

const BAD_POLICY: &str = "apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: bad}
spec:
  endpointSelector: {}
  ingress:
  - toPorts: [{ports: [{port: \"99999\"}]}]
";

#[test]
fn apply_reports_each_object_like_kubectl_and_rejects_only_the_invalid_one() {
    let dir = TestDir::new();
    std::fs::create_dir_all(dir.path()).expect("create dir");
    let objects = Objects::open(&Db::new(), dir.path()).expect("open");
    let text = format!("{POD}---\n{POLICY}---\n{BAD_POLICY}");
    let (applied, first) = objects.apply(&manifest(&text)).expect("apply");
    expect![[r#"
        pod/default/xwing created
        ciliumnetworkpolicy.cilium.io/default/rule1 created
        ciliumnetworkpolicy.cilium.io/default/bad invalid
          default/bad: spec.ingress[0].toPorts[0].ports[0].port: "99999" is neither a port number nor a port name
    "#]]
    .assert_eq(&lines(&applied));
    assert_eq!(objects.all().len(), 2);

    let changed = POLICY.replace("\"80\"", "\"443\"");
    let (again, second) = objects
        .apply(&manifest(&format!("{POD}---\n{changed}")))
        .expect("apply");
    expect![[r#"
        pod/default/xwing unchanged
        ciliumnetworkpolicy.cilium.io/default/rule1 configured
    "#]]
    .assert_eq(&lines(&again));
    assert!(second > first);
}

#[test]
fn a_restarted_agent_restores_what_was_applied() {
    let dir = TestDir::new();
    std::fs::create_dir_all(dir.path()).expect("create dir");
    let before = {
        let objects = Objects::open(&Db::new(), dir.path()).expect("open");
        objects
            .apply(&manifest(&format!("{POD}---\n{POLICY}")))
            .expect("apply");
        objects.all()
    };
    let objects = Objects::open(&Db::new(), dir.path()).expect("reopen");
    assert_eq!(objects.all(), before);

    let (deleted, _) = objects.delete(&manifest(POLICY)).expect("delete");
    expect![[r#"
        ciliumnetworkpolicy.cilium.io/default/rule1 deleted
    "#]]
    .assert_eq(&lines(&deleted));
    let (again, _) = objects.delete(&manifest(POLICY)).expect("delete");
    expect![[r#"
        ciliumnetworkpolicy.cilium.io/default/rule1 not found
    "#]]
    .assert_eq(&lines(&again));
    let objects = Objects::open(&Db::new(), dir.path()).expect("reopen");
    assert_eq!(objects.all().len(), 1, "the delete was persisted");
}

#[test]
fn a_corrupt_state_file_names_the_line() {
    let dir = TestDir::new();
    std::fs::create_dir_all(dir.path()).expect("create dir");
    std::fs::write(dir.path().join("objects.jsonl"), "{}\n").expect("write");
    let err = Objects::open(&Db::new(), dir.path())
        .err()
        .expect("must fail");
    let message = reconcilers::error_chain(&err);
    assert!(message.contains("objects.jsonl:1:"), "{message}");
}

/// What a change writes: only the objects it changed, as journal lines.
fn journal(dir: &TestDir) -> Vec<String> {
    std::fs::read_to_string(dir.path().join("objects.jsonl"))
        .expect("read the journal")
        .lines()
        .map(|line| {
            line.strip_prefix(super::DELETE).map_or_else(
                || {
                    let value: serde_json::Value = serde_json::from_str(line).expect("json");
                    format!("put {}", value["metadata"]["name"].as_str().unwrap_or(""))
                },
                |key| format!("delete {}", key.replace('\t', "/")),
            )
        })
        .collect()
}

#[test]
fn changes_append_to_the_journal_and_a_restart_replays_it() {
    let dir = TestDir::new();
    std::fs::create_dir_all(dir.path()).expect("create dir");
    let objects = Objects::open(&Db::new(), dir.path()).expect("open");
    objects
        .apply(&manifest(&format!("{POD}---\n{POLICY}")))
        .expect("apply");
    objects.apply(&manifest(POD)).expect("unchanged");
    objects.delete(&manifest(POLICY)).expect("delete");
    objects.apply(&manifest(POLICY)).expect("apply again");
    objects.delete(&manifest(POD)).expect("delete");
    assert_eq!(
        journal(&dir),
        [
            "put xwing",
            "put rule1",
            "delete CiliumNetworkPolicy/default/rule1",
            "put rule1",
            "delete Pod/default/xwing",
        ]
    );
    let after = objects.all();
    let reopened = Objects::open(&Db::new(), dir.path()).expect("reopen");
    assert_eq!(reopened.all(), after);
    assert_eq!(after.len(), 1);
}

#[test]
fn a_torn_last_line_is_dropped_and_the_journal_rewritten() {
    let dir = TestDir::new();
    std::fs::create_dir_all(dir.path()).expect("create dir");
    let objects = Objects::open(&Db::new(), dir.path()).expect("open");
    objects.apply(&manifest(POD)).expect("apply");
    let before = objects.all();
    let path = dir.path().join("objects.jsonl");
    let mut text = std::fs::read_to_string(&path).expect("read");
    text.push_str("{\"apiVersion\":\"v1\",\"kind\":\"Po");
    std::fs::write(&path, text).expect("tear");
    let reopened = Objects::open(&Db::new(), dir.path()).expect("reopen");
    assert_eq!(reopened.all(), before);
    assert_eq!(journal(&dir), ["put xwing"]);
}

#[test]
fn a_long_journal_is_rewritten_with_the_live_objects_only() {
    let dir = TestDir::new();
    std::fs::create_dir_all(dir.path()).expect("create dir");
    let objects = Objects::open(&Db::new(), dir.path()).expect("open");
    objects.apply(&manifest(POD)).expect("apply");
    for _ in 0..super::SLACK_LINES {
        objects.apply(&manifest(POLICY)).expect("apply");
        objects.delete(&manifest(POLICY)).expect("delete");
    }
    let lines = journal(&dir).len();
    assert!(lines <= super::SLACK_LINES + 3, "{lines} lines");
    let reopened = Objects::open(&Db::new(), dir.path()).expect("reopen");
    assert_eq!(reopened.all(), objects.all());
}
