use std::error::Error;
use std::path::Path;

use expect_test::{Expect, expect};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{ManifestError, load_paths, parse_str};
use crate::object::{Kind, Object};

/// An error with its causes, as a status line shows it.
fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        text.push_str(": ");
        text.push_str(&err.to_string());
        cause = err.source();
    }
    text
}

fn summary(results: &[Result<Object, ManifestError>]) -> String {
    results
        .iter()
        .map(|result| match result {
            Ok(object) => format!("ok {} {}", object.kind(), object.object_ref()),
            Err(err) => format!("error {}", chain(err)),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn check(text: &str, expect: Expect) {
    expect.assert_eq(&summary(&parse_str("test.yaml", text)));
}

fn testdata(name: &str) -> Vec<Object> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    load_paths([path])
        .into_iter()
        .map(|result| result.unwrap_or_else(|err| panic!("{}", chain(&err))))
        .collect()
}

fn only(name: &str) -> Object {
    let mut objects = testdata(name);
    assert_eq!(objects.len(), 1, "{name}");
    objects.remove(0)
}

fn cnp(object: Object) -> crate::cilium::CiliumNetworkPolicy {
    match object {
        Object::CiliumNetworkPolicy(policy) => *policy,
        other => panic!("not a CiliumNetworkPolicy: {other:?}"),
    }
}

fn ccnp(object: Object) -> crate::cilium::CiliumClusterwideNetworkPolicy {
    match object {
        Object::CiliumClusterwideNetworkPolicy(policy) => *policy,
        other => panic!("not a CiliumClusterwideNetworkPolicy: {other:?}"),
    }
}

fn np(object: &Object) -> &k8s_openapi::api::networking::v1::NetworkPolicy {
    match object {
        Object::NetworkPolicy(policy) => policy,
        other => panic!("not a NetworkPolicy: {other:?}"),
    }
}

fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn star_wars_l3_l4() {
    let policy = cnp(only("sw_l3_l4_policy.yaml"));
    assert_eq!(policy.metadata.name.as_deref(), Some("rule1"));
    assert_eq!(policy.metadata.namespace.as_deref(), Some("default"));
    let rule = policy.spec.unwrap();
    let subject = rule.endpoint_selector.unwrap();
    assert_eq!(
        subject.match_labels,
        labels(&[("org", "empire"), ("class", "deathstar")])
    );
    let ingress = &rule.ingress[0];
    assert_eq!(
        ingress.from_endpoints[0].match_labels,
        labels(&[("org", "empire")])
    );
    let port = &ingress.to_ports[0].ports[0];
    assert_eq!(port.port.as_deref(), Some("80"));
    assert_eq!(port.protocol.as_deref(), Some("TCP"));
    assert!(ingress.to_ports[0].rules.is_none());
}

#[test]
fn star_wars_l7() {
    let policy = cnp(only("sw_l3_l4_l7_policy.yaml"));
    let rule = policy.spec.unwrap();
    let http = rule.ingress[0].to_ports[0]
        .rules
        .as_ref()
        .and_then(|rules| rules.http.as_ref())
        .unwrap();
    assert_eq!(http.len(), 1);
    assert_eq!(http[0].method.as_deref(), Some("POST"));
    assert_eq!(http[0].path.as_deref(), Some("/v1/request-landing"));
}

#[test]
fn star_wars_app_skips_the_deployment_only() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/http-sw-app.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let results = parse_str("http-sw-app.yaml", &text);
    expect![[r#"
        ok Service default/deathstar
        error http-sw-app.yaml:16 (document 2): unsupported kind "Deployment" of apiVersion "apps/v1"
        ok Pod default/tiefighter
        ok Pod default/xwing"#]]
    .assert_eq(&summary(&results));

    let Ok(Object::Service(service)) = &results[0] else {
        panic!("not a service")
    };
    let spec = service.spec.as_ref().unwrap();
    assert_eq!(spec.ports.as_ref().unwrap()[0].port, 80);
    assert_eq!(
        spec.selector.clone().unwrap(),
        labels(&[("org", "empire"), ("class", "deathstar")])
    );
    let Ok(Object::Pod(xwing)) = &results[3] else {
        panic!("not a pod")
    };
    assert_eq!(
        xwing.metadata.labels.clone().unwrap(),
        labels(&[
            ("app.kubernetes.io/name", "xwing"),
            ("org", "alliance"),
            ("class", "xwing")
        ])
    );
    assert_eq!(xwing.spec.as_ref().unwrap().containers[0].name, "spaceship");
}

#[test]
fn dns_getting_started() {
    let rule = cnp(only("dns_matchname.yaml")).spec.unwrap();
    assert_eq!(
        rule.egress[0].to_fqdns[0].match_name.as_deref(),
        Some("api.github.com")
    );
    let dns = &rule.egress[1];
    assert_eq!(
        dns.to_endpoints[0].match_labels,
        labels(&[
            ("k8s:io.kubernetes.pod.namespace", "kube-system"),
            ("k8s:k8s-app", "kube-dns")
        ])
    );
    let port_rule = &dns.to_ports[0];
    assert_eq!(port_rule.ports[0].port.as_deref(), Some("53"));
    assert_eq!(port_rule.ports[0].protocol.as_deref(), Some("ANY"));
    let patterns = port_rule.rules.as_ref().unwrap().dns.as_ref().unwrap();
    assert_eq!(patterns[0].match_pattern.as_deref(), Some("*"));
}

#[test]
fn dns_getting_started_with_specs() {
    let policy = cnp(only("dns_matchname_specs.yaml"));
    assert!(policy.spec.is_none());
    assert_eq!(policy.specs.len(), 2);
    assert_eq!(policy.rules().count(), 2);
    assert_eq!(
        policy.specs[0].egress[0].to_fqdns[0].match_name.as_deref(),
        Some("api.github.com")
    );
    let all_pods = &policy.specs[1];
    assert!(all_pods.endpoint_selector.as_ref().unwrap().is_empty());
    let dns = all_pods.egress[0].to_ports[0].rules.as_ref().unwrap();
    assert_eq!(
        dns.dns.as_ref().unwrap()[0].match_pattern.as_deref(),
        Some("*")
    );
}

#[test]
fn clusterwide_deny() {
    let policy = ccnp(only("from_world_deny.yaml"));
    assert_eq!(policy.metadata.name.as_deref(), Some("external-lockdown"));
    assert_eq!(policy.metadata.namespace, None);
    let rule = policy.spec.unwrap();
    assert!(rule.endpoint_selector.unwrap().is_empty());
    assert_eq!(rule.ingress_deny[0].from_entities, ["world"]);
    assert_eq!(rule.ingress[0].from_entities, ["all"]);
}

#[test]
fn clusterwide_host_policy() {
    let rule = ccnp(only("host_policy.yaml")).spec.unwrap();
    assert!(rule.endpoint_selector.is_none());
    assert!(rule.node_selector.unwrap().is_empty());
    assert_eq!(rule.ingress[0].to_ports[0].ports.len(), 2);
    assert_eq!(rule.egress[1].to_cidr, ["8.8.0.0/16"]);
    assert_eq!(
        rule.egress[1].to_ports[0].ports[0].protocol.as_deref(),
        Some("UDP")
    );
}

#[test]
fn cidr_policy() {
    let rule = cnp(only("cidr.yaml")).spec.unwrap();
    assert_eq!(rule.egress[0].to_cidr, ["20.1.1.1/32"]);
    let set = &rule.egress[1].to_cidr_set[0];
    assert_eq!(set.cidr.as_deref(), Some("10.0.0.0/8"));
    assert_eq!(set.except, ["10.96.0.0/12"]);
}

#[test]
fn kubernetes_network_policies() {
    let objects = testdata("network_policy.yaml");
    assert_eq!(objects.len(), 3);

    let spec = np(&objects[0]).spec.as_ref().unwrap();
    let pods = spec.pod_selector.as_ref().unwrap();
    assert_eq!(
        pods.match_labels.clone().unwrap(),
        labels(&[("role", "db")])
    );
    assert_eq!(spec.policy_types.clone().unwrap(), ["Ingress", "Egress"]);
    let ingress = &spec.ingress.as_ref().unwrap()[0];
    let from = ingress.from.as_ref().unwrap();
    let block = from[0].ip_block.as_ref().unwrap();
    assert_eq!(block.cidr, "172.17.0.0/16");
    assert_eq!(block.except.clone().unwrap(), ["172.17.1.0/24"]);
    let namespaces = from[1].namespace_selector.as_ref().unwrap();
    assert_eq!(
        namespaces.match_labels.clone().unwrap(),
        labels(&[("project", "myproject")])
    );
    assert!(from[2].pod_selector.is_some());
    let port = &ingress.ports.as_ref().unwrap()[0];
    assert_eq!(port.port, Some(IntOrString::Int(6379)));
    assert_eq!(port.protocol.as_deref(), Some("TCP"));

    let alice = np(&objects[1]);
    assert_eq!(alice.metadata.namespace.as_deref(), Some("default"));
    let spec = alice.spec.as_ref().unwrap();
    let peer = &spec.ingress.as_ref().unwrap()[0].from.as_ref().unwrap()[0];
    assert!(peer.namespace_selector.is_some() && peer.pod_selector.is_some());

    let spec = np(&objects[2]).spec.as_ref().unwrap();
    let port = &spec.egress.as_ref().unwrap()[0].ports.as_ref().unwrap()[0];
    assert_eq!(port.port, Some(IntOrString::Int(32000)));
    assert_eq!(port.end_port, Some(32768));
}

#[test]
fn default_deny_all() {
    let object = only("default_deny_all.yaml");
    let spec = np(&object).spec.as_ref().unwrap();
    assert_eq!(spec.pod_selector, Some(Default::default()));
    assert_eq!(spec.policy_types.clone().unwrap(), ["Ingress", "Egress"]);
    assert!(spec.ingress.is_none() && spec.egress.is_none());
}

#[test]
fn list_of_namespaces() {
    let objects = testdata("namespaces.yaml");
    let names: Vec<_> = objects.iter().map(|o| o.object_ref().to_string()).collect();
    assert_eq!(names, ["star-wars", "kube-system"]);
    assert!(objects.iter().all(|o| o.kind() == Kind::Namespace));
    assert_eq!(
        objects[0].metadata().labels.clone().unwrap()["team"],
        "empire"
    );
}

#[test]
fn loads_a_directory_in_name_order() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let results = load_paths([&dir]);
    let prefix = format!("{}/", dir.display());
    expect![[r#"
        ok CiliumNetworkPolicy default/cidr-rule
        ok NetworkPolicy default/default-deny-all
        ok CiliumNetworkPolicy default/fqdn
        ok CiliumNetworkPolicy default/fqdn
        ok CiliumClusterwideNetworkPolicy external-lockdown
        ok CiliumClusterwideNetworkPolicy allow-google-dns-on-udp-53-only
        ok Service default/deathstar
        error http-sw-app.yaml:16 (document 2): unsupported kind "Deployment" of apiVersion "apps/v1"
        ok Pod default/tiefighter
        ok Pod default/xwing
        ok Namespace star-wars
        ok Namespace kube-system
        ok NetworkPolicy default/test-network-policy
        ok NetworkPolicy default/allow-alice-client
        ok NetworkPolicy default/multi-port-egress
        ok CiliumNetworkPolicy default/rule1
        ok CiliumNetworkPolicy default/rule1"#]]
    .assert_eq(&summary(&results).replace(&prefix, ""));
}

#[test]
fn unreadable_files_do_not_stop_the_others() {
    let good = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cidr.yaml");
    let results = load_paths([Path::new("/nonexistent/policy.yaml"), good.as_path()]);
    expect![[r#"
        error cannot read /nonexistent/policy.yaml: No such file or directory (os error 2)
        ok CiliumNetworkPolicy default/cidr-rule"#]]
    .assert_eq(&summary(&results));
}

#[test]
fn a_bad_document_never_hides_the_others() {
    check(
        r#"apiVersion: v1
kind: Pod
metadata: {name: first}
---
# only a comment: not a document
---
apiVersion: v1
kind: Pod
metadata:
  name: broken
    labels: {}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: typo, namespace: prod}
spec:
  endpointSelector: {}
  ingress:
  - fromEndpoint:
    - {}
    toPorts:
    - ports: [{port: "80", protocool: TCP}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: badtype}
spec:
  endpointSelector: {}
  ingress:
  - toPorts:
    - ports: [{port: "80", endPort: eighty}]
---
apiVersion: v1
metadata: {name: kindless}
---
just a string
---
apiVersion: v1
kind: List
items: {a: b}
---
apiVersion: v1
kind: Namespace
metadata: {name: last}
"#,
        expect![[r#"
            ok Pod default/first
            error test.yaml:7 (document 2): invalid yaml: mapping values are not allowed in this context at line 11 column 11
            error test.yaml:13 (document 3): unsupported kind "Deployment" of apiVersion "apps/v1"
            error test.yaml:17 (document 4): CiliumNetworkPolicy prod/typo: unknown field "spec.ingress[0].fromEndpoint", unknown field "spec.ingress[0].toPorts[0].ports[0].protocool"
            error test.yaml:28 (document 5): CiliumNetworkPolicy default/badtype: spec.ingress[0].toPorts[0].ports[0].endPort: invalid type: string "eighty", expected i32
            error test.yaml:37 (document 6): kind is not set
            error test.yaml:40 (document 7): expected a mapping with apiVersion and kind, found a string
            error test.yaml:42 (document 8): List items must be a sequence
            ok Namespace last"#]],
    );
}

#[test]
fn old_top_level_description_is_an_unknown_field() {
    check(
        r#"apiVersion: "cilium.io/v2"
kind: CiliumNetworkPolicy
description: "L3-L4 policy to restrict deathstar access to empire ships only"
metadata:
  name: "rule1"
spec:
  endpointSelector:
    matchLabels:
      org: empire
"#,
        expect![[
            r#"error test.yaml:1 (document 1): CiliumNetworkPolicy default/rule1: unknown field "description""#
        ]],
    );
}

#[test]
fn tolerates_what_kubectl_tolerates() {
    // Server-written status, null and empty values, ports as numbers, a JSON document,
    // YAML merge keys and a byte order mark.
    let text = "\u{feff}apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: tolerant
  namespace: prod
  annotations: {}
spec:
  endpointSelector: {}
  ingress:
  - fromEndpoints: []
    toPorts:
    - ports:
      - port: 8080
  egress:
status:
  conditions: [{type: Valid, status: 'True'}]
--- # a comment after the separator
{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"json\"}}
---
apiVersion: v1
kind: Pod
metadata:
  name: merged
  labels: &base {app: web}
spec:
  containers:
  - name: a
    env:
    - <<: {name: X}
      value: '1'
";
    let results = parse_str("test.yaml", text);
    expect![[r#"
        ok CiliumNetworkPolicy prod/tolerant
        ok Namespace json
        ok Pod default/merged"#]]
    .assert_eq(&summary(&results));
    let Ok(Object::CiliumNetworkPolicy(policy)) = &results[0] else {
        panic!("not a policy")
    };
    let port = &policy.spec.as_ref().unwrap().ingress[0].to_ports[0].ports[0];
    assert_eq!(port.port.as_deref(), Some("8080"));
    let Ok(Object::Pod(pod)) = &results[2] else {
        panic!("not a pod")
    };
    let env = pod.spec.as_ref().unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    assert_eq!(env[0].name, "X");
}

#[test]
fn kubernetes_types_are_strict_too() {
    check(
        "apiVersion: v1
kind: Pod
metadata:
  name: p
  lables: {app: web}
spec:
  containers:
  - name: a
    imagee: nginx
",
        expect![[
            r#"error test.yaml:1 (document 1): Pod default/p: unknown field "metadata.lables", unknown field "spec.containers[0].imagee""#
        ]],
    );
}

#[test]
fn rich_kubernetes_objects_have_no_false_unknown_fields() {
    check(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: shop
  uid: 6b1c0e2e-0000-4000-8000-000000000000
  creationTimestamp: "2024-05-01T10:00:00Z"
  annotations: {kubectl.kubernetes.io/last-applied-configuration: "{}"}
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-7d4, uid: x, controller: true}
  managedFields:
  - manager: kubectl
    operation: Update
    fieldsType: FieldsV1
    fieldsV1: {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}
spec:
  serviceAccountName: web
  hostNetwork: false
  securityContext: {runAsNonRoot: true, runAsUser: 1000}
  containers:
  - name: app
    image: nginx:1.27
    args: ["--port", "8080"]
    ports:
    - {name: http, containerPort: 8080, protocol: TCP}
    env:
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    resources:
      limits: {cpu: 500m, memory: 128Mi}
      requests: {cpu: "0.1", memory: 64Mi}
    livenessProbe:
      httpGet: {path: /healthz, port: http}
      initialDelaySeconds: 3
    volumeMounts: [{name: cache, mountPath: /cache}]
  volumes:
  - name: cache
    emptyDir: {}
  tolerations:
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
status:
  phase: Running
  podIP: 10.0.1.5
  podIPs: [{ip: 10.0.1.5}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: NodePort
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  sessionAffinity: None
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080, protocol: TCP}
status:
  loadBalancer: {}
"#,
        expect![[r#"
            ok Pod shop/web
            ok Service shop/web"#]],
    );
}
