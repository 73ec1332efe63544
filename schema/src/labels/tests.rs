use std::collections::BTreeMap;

use expect_test::{Expect, expect};
use proptest::prelude::*;

use super::{Label, Labels, Operator, Requirement, Selector, Source};
use crate::selector::{LabelSelector, LabelSelectorRequirement};

fn check_parse(inputs: &[&str], expect: Expect) {
    let rendered = inputs
        .iter()
        .map(|input| match Label::parse(input) {
            Ok(label) => format!("{input:?} -> {label} {label:?}"),
            Err(err) => format!("{input:?} -> error: {err}"),
        })
        .collect::<Vec<_>>()
        .join("\n");
    expect.assert_eq(&rendered);
}

#[test]
fn parses_sourced_labels() {
    check_parse(
        &[
            "k8s:app=web",
            "reserved:host",
            "app=x",
            "app",
            "k8s:app=",
            "cidr:10.0.0.0/8",
            "cidr:2001:db8::/32",
            "app=a:b",
            "k8s:io.kubernetes.pod.namespace=kube-system",
            "any:org=empire",
            "",
            "k8s:",
            "=x",
            "bogus:app=x",
        ],
        expect![[r#"
            "k8s:app=web" -> k8s:app=web Label { source: K8s, key: "app", value: "web" }
            "reserved:host" -> reserved:host Label { source: Reserved, key: "host", value: "" }
            "app=x" -> unspec:app=x Label { source: Unspec, key: "app", value: "x" }
            "app" -> unspec:app Label { source: Unspec, key: "app", value: "" }
            "k8s:app=" -> k8s:app Label { source: K8s, key: "app", value: "" }
            "cidr:10.0.0.0/8" -> cidr:10.0.0.0/8 Label { source: Cidr, key: "10.0.0.0/8", value: "" }
            "cidr:2001:db8::/32" -> cidr:2001:db8::/32 Label { source: Cidr, key: "2001:db8::/32", value: "" }
            "app=a:b" -> unspec:app=a:b Label { source: Unspec, key: "app", value: "a:b" }
            "k8s:io.kubernetes.pod.namespace=kube-system" -> k8s:io.kubernetes.pod.namespace=kube-system Label { source: K8s, key: "io.kubernetes.pod.namespace", value: "kube-system" }
            "any:org=empire" -> any:org=empire Label { source: Any, key: "org", value: "empire" }
            "" -> error: label is empty
            "k8s:" -> error: "k8s:" has an empty key
            "=x" -> error: "=x" has an empty key
            "bogus:app=x" -> error: unknown label source "bogus""#]],
    );
}

#[test]
fn selector_keys_default_to_any() {
    let keys = [
        "app",
        "k8s:app",
        "reserved:host",
        "io.cilium.k8s.policy.cluster",
    ]
    .iter()
    .map(|key| format!("{key} -> {:?}", Requirement::parse_key(key).unwrap()))
    .collect::<Vec<_>>()
    .join("\n");
    expect![[r#"
        app -> (Any, "app")
        k8s:app -> (K8s, "app")
        reserved:host -> (Reserved, "host")
        io.cilium.k8s.policy.cluster -> (Any, "io.cilium.k8s.policy.cluster")"#]]
    .assert_eq(&keys);
}

#[test]
fn labels_keep_one_label_per_key_sorted() {
    let mut labels = Labels::parse("k8s:org=empire,k8s:class=deathstar,reserved:host").unwrap();
    let replaced = labels.insert(Label::new(Source::Container, "org", "alliance"));
    assert_eq!(replaced, Some(Label::new(Source::K8s, "org", "empire")));
    expect!["k8s:class=deathstar,reserved:host,container:org=alliance"]
        .assert_eq(&labels.to_string());
    assert_eq!(labels.len(), 3);
    assert_eq!(labels.get("host").map(|l| l.source), Some(Source::Reserved));
    assert_eq!(
        labels.remove("class"),
        Some(Label::new(Source::K8s, "class", "deathstar"))
    );
    assert!(Labels::parse("").unwrap().is_empty());
}

fn selector(labels: &[(&str, &str)], exprs: &[(&str, &str, &[&str])]) -> Selector {
    let selector = LabelSelector {
        match_labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        match_expressions: exprs
            .iter()
            .map(|(key, operator, values)| LabelSelectorRequirement {
                key: (*key).to_owned(),
                operator: (*operator).to_owned(),
                values: values.iter().map(|v| (*v).to_owned()).collect(),
            })
            .collect(),
    };
    Selector::from_label_selector(&selector).unwrap()
}

#[test]
fn sources_restrict_matching() {
    let pod = Labels::parse("k8s:org=empire,k8s:class=deathstar,container:tier=db").unwrap();
    let host = Labels::parse("reserved:host").unwrap();
    let cases = [
        ("org=empire", selector(&[("org", "empire")], &[])),
        ("k8s:org=empire", selector(&[("k8s:org", "empire")], &[])),
        (
            "container:org=empire",
            selector(&[("container:org", "empire")], &[]),
        ),
        (
            "k8s:tier exists",
            selector(&[], &[("k8s:tier", "Exists", &[])]),
        ),
        ("tier exists", selector(&[], &[("tier", "Exists", &[])])),
        (
            "k8s:tier notin (db)",
            selector(&[], &[("k8s:tier", "NotIn", &["db"])]),
        ),
        (
            "class in (a,deathstar)",
            selector(&[], &[("class", "In", &["a", "deathstar"])]),
        ),
        (
            "!k8s:class",
            selector(&[], &[("k8s:class", "DoesNotExist", &[])]),
        ),
        ("reserved:host", selector(&[("reserved:host", "")], &[])),
        ("everything", Selector::everything()),
    ];
    let rendered = cases
        .iter()
        .map(|(name, sel)| {
            format!(
                "{name:<24} [{sel}] pod={} host={}",
                sel.matches(&pod),
                sel.matches(&host)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    expect![[r#"
        org=empire               [any:org=empire] pod=true host=false
        k8s:org=empire           [k8s:org=empire] pod=true host=false
        container:org=empire     [container:org=empire] pod=false host=false
        k8s:tier exists          [k8s:tier] pod=false host=false
        tier exists              [any:tier] pod=true host=false
        k8s:tier notin (db)      [k8s:tier notin (db)] pod=true host=true
        class in (a,deathstar)   [any:class in (a,deathstar)] pod=true host=false
        !k8s:class               [!k8s:class] pod=false host=true
        reserved:host            [reserved:host=] pod=false host=true
        everything               [] pod=true host=true"#]]
    .assert_eq(&rendered);
}

#[test]
fn operators_check_their_values() {
    let none: &[String] = &[];
    let some = &["a".to_owned()];
    let rendered = [
        ("In", none),
        ("NotIn", none),
        ("Exists", some),
        ("DoesNotExist", some),
        ("in", some),
        ("Equals", some),
    ]
    .iter()
    .map(|(op, values)| match Operator::parse(op, values) {
        Ok(op) => format!("{op:?}"),
        Err(err) => err.to_string(),
    })
    .collect::<Vec<_>>()
    .join("\n");
    expect![[r#"
        values must be non-empty for operator In
        values must be non-empty for operator NotIn
        values must be empty for operator Exists
        values must be empty for operator DoesNotExist
        "in" is not one of In, NotIn, Exists, DoesNotExist
        "Equals" is not one of In, NotIn, Exists, DoesNotExist"#]]
    .assert_eq(&rendered);
}

#[test]
fn labels_read_from_strings_and_maps() {
    let yaml = r#"
- "k8s:app=web"
- key: team
  value: empire
  source: k8s
- key: note
"#;
    let labels: Vec<Label> = serde_norway::from_str(yaml).unwrap();
    let written = serde_norway::to_string(&labels).unwrap();
    expect![[r#"
        - key: app
          value: web
          source: k8s
        - key: team
          value: empire
          source: k8s
        - key: note
          value: ''
          source: unspec
    "#]]
    .assert_eq(&written);
    let err = serde_norway::from_str::<Vec<Label>>("- key: x\n  source: nope\n").unwrap_err();
    expect![[r#".[0]: unknown label source "nope" at line 1 column 3"#]]
        .assert_eq(&err.to_string());
}

fn source() -> impl Strategy<Value = Source> {
    proptest::sample::select(Source::ALL.to_vec())
}

fn label() -> impl Strategy<Value = Label> {
    (
        source(),
        "[a-z][a-z0-9./-]{0,12}",
        "([A-Za-z0-9][A-Za-z0-9._-]{0,6})?",
    )
        .prop_map(|(source, key, value)| Label::new(source, key, value))
}

proptest! {
    #[test]
    fn label_print_parse_round_trip(label in label()) {
        let printed = label.to_string();
        prop_assert_eq!(Label::parse(&printed), Ok(label));
        prop_assert_eq!(Label::parse(&printed).unwrap().to_string(), printed);
    }

    #[test]
    fn labels_print_parse_round_trip(labels in proptest::collection::vec(label(), 0..8)) {
        let labels: Labels = labels.into_iter().collect();
        prop_assert_eq!(Labels::parse(&labels.to_string()), Ok(labels));
    }

    #[test]
    fn selector_matches_like_naive_model(
        labels in proptest::collection::btree_map(
            small_key(),
            (proptest::sample::select(vec![Source::K8s, Source::Container, Source::Reserved]),
             small_value()),
            0..4,
        ),
        requirements in proptest::collection::vec(requirement(), 0..4),
    ) {
        let set: Labels = labels
            .iter()
            .map(|(key, (source, value))| Label::new(*source, key.clone(), value.clone()))
            .collect();
        let selector = Selector::new(requirements.iter().cloned());
        prop_assert_eq!(selector.matches(&set), naive_matches(&requirements, &labels));
    }
}

fn small_key() -> impl Strategy<Value = String> {
    proptest::sample::select(vec!["a", "b", "c"]).prop_map(str::to_owned)
}

fn small_value() -> impl Strategy<Value = String> {
    proptest::sample::select(vec!["", "x", "y"]).prop_map(str::to_owned)
}

fn requirement() -> impl Strategy<Value = Requirement> {
    let source = proptest::sample::select(vec![
        Source::Any,
        Source::K8s,
        Source::Container,
        Source::Reserved,
    ]);
    let values = || proptest::collection::btree_set(small_value(), 1..3);
    let operator = prop_oneof![
        values().prop_map(Operator::In),
        values().prop_map(Operator::NotIn),
        Just(Operator::Exists),
        Just(Operator::DoesNotExist),
    ];
    (source, small_key(), operator).prop_map(|(source, key, operator)| Requirement {
        source,
        key,
        operator,
    })
}

/// Kubernetes selector semantics spelled out over `key -> (source, value)`, with `any`
/// matching every source.
fn naive_matches(
    requirements: &[Requirement],
    labels: &BTreeMap<String, (Source, String)>,
) -> bool {
    requirements.iter().all(|req| {
        let value = labels
            .get(&req.key)
            .filter(|(source, _)| req.source == Source::Any || req.source == *source)
            .map(|(_, value)| value);
        match &req.operator {
            Operator::In(values) => value.is_some_and(|v| values.contains(v)),
            Operator::NotIn(values) => value.is_none_or(|v| !values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    })
}
