use schema::manifest;
use schema::object::Object;

use super::*;

fn translate_yaml(yaml: &str) -> String {
    let object = manifest::parse_str("test", yaml)
        .into_iter()
        .next()
        .expect("one document")
        .expect("valid");
    let rules = match &object {
        Object::NetworkPolicy(np) => network_policy(np),
        Object::CiliumNetworkPolicy(p) => cilium_network_policy(p),
        Object::CiliumClusterwideNetworkPolicy(p) => clusterwide_network_policy(p),
        _ => panic!("not a policy"),
    };
    let mut out = String::new();
    for rule in &rules {
        out.push_str(&serde_norway_free_json(&rule.rule));
        out.push_str(&format!("ingress paths: {:?}\n", rule.ingress_paths));
        out.push_str(&format!("egress paths: {:?}\n", rule.egress_paths));
    }
    out
}

/// A compact, stable rendering for snapshots (the crate does not depend on serde_json).
fn serde_norway_free_json(rule: &schema::cilium::Rule) -> String {
    format!("{rule:#?}\n")
}

#[test]
fn cnp_selectors_get_sources_and_the_policy_namespace() {
    let out = translate_yaml(
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
    assert!(out.contains(r#""any:org": "empire""#), "{out}");
    assert!(
        out.contains(r#""k8s:io.kubernetes.pod.namespace": "default""#),
        "{out}"
    );
    assert!(
        out.contains(r#""k8s:io.kubernetes.pod.namespace": "other""#),
        "{out}"
    );
    // The reserved:host selector keeps no namespace.
    let host = out.split("reserved:host").nth(1).expect("host selector");
    assert!(
        !host
            .split('}')
            .next()
            .unwrap_or_default()
            .contains("pod.namespace"),
        "{out}"
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
