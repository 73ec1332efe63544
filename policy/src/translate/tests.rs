use std::collections::BTreeMap;

use schema::manifest;

use super::*;

fn translate(yaml: &str) -> Vec<TranslatedRule> {
    let parsed = manifest::parse_str("test", yaml)
        .into_iter()
        .next()
        .expect("one document")
        .expect("valid");
    object(&parsed).expect("a policy")
}

fn translate_yaml(yaml: &str) -> String {
    let mut out = String::new();
    for rule in &translate(yaml) {
        out.push_str(&format!("{:#?}\n", rule.rule));
        out.push_str(&format!("ingress paths: {:?}\n", rule.ingress_paths));
        out.push_str(&format!("egress paths: {:?}\n", rule.egress_paths));
    }
    out
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn cnp_selectors_get_sources_and_the_policy_namespace() {
    let rules = translate(
        r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: rule1, namespace: default}
spec:
  endpointSelector: {matchLabels: {org: empire, class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}, {matchLabels: {"k8s:io.kubernetes.pod.namespace": other}}, {matchLabels: {"reserved:host": ""}}]
"#,
    );
    let rule = &rules[0].rule;
    let ns = "k8s:io.kubernetes.pod.namespace";
    let subject = rule.endpoint_selector.as_ref().expect("subject");
    assert_eq!(
        subject.match_labels,
        labels(&[
            ("any:class", "deathstar"),
            ("any:org", "empire"),
            (ns, "default")
        ])
    );
    let peers: Vec<_> = rule.ingress[0]
        .from_endpoints
        .iter()
        .map(|s| s.match_labels.clone())
        .collect();
    assert_eq!(
        peers,
        [
            labels(&[("any:org", "empire"), (ns, "default")]),
            // A peer that names its namespace keeps it.
            labels(&[(ns, "other")]),
            // The reserved:host selector keeps no namespace.
            labels(&[("reserved:host", "")]),
        ]
    );
}

#[test]
fn network_policy_peers_become_rules_with_ports() {
    let out = translate_yaml(
        r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Ingress, Egress]
  ingress:
  - from:
    - podSelector: {matchLabels: {pod: b}}
    - namespaceSelector: {matchLabels: {ns: y}}
      podSelector: {matchLabels: {pod: c}}
    - namespaceSelector: {}
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
    ports: [{port: 80}, {port: serve-81-udp, protocol: UDP}]
"#,
    );
    expect_test::expect_file!["tests/network_policy.txt"].assert_eq(&out);
}
