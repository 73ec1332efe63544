use expect_test::expect;
use schema::flow::Verdict;

use crate::fixtures;
use crate::print::compact;

fn flows() -> Vec<schema::flow::Flow> {
    let lookup = fixtures::lookup();
    fixtures::access_log()
        .iter()
        .map(|(record, ids)| super::flow(record, *ids, "kind-worker", &lookup))
        .collect()
}

#[test]
fn access_log_records_print_as_hubble_prints_l7_flows() {
    let out: String = flows().iter().map(compact).collect();
    expect![[r#"
        Jun  9 20:38:30.645: default/tiefighter:42690 (ID:31028) -> default/deathstar-c74d84667-cx5kp:80 (ID:16530) http-request FORWARDED (HTTP/1.1 POST http://deathstar.default.svc.cluster.local/v1/request-landing)
        Jun  9 20:38:30.645: default/tiefighter:42690 (ID:31028) <- default/deathstar-c74d84667-cx5kp:80 (ID:16530) http-response FORWARDED (HTTP/1.1 200 2ms (POST http://deathstar.default.svc.cluster.local/v1/request-landing))
        Jun  9 20:38:30.645: default/tiefighter:42690 (ID:31028) -> default/deathstar-c74d84667-cx5kp:80 (ID:16530) http-request DROPPED (HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)
        Jun  9 20:38:30.645: default/tiefighter:42690 (ID:31028) <- default/deathstar-c74d84667-cx5kp:80 (ID:16530) http-response FORWARDED (HTTP/1.1 403 0ms (PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port))
        Jun  9 20:38:30.645: default/mediabot:51234 (ID:5151) -> kube-system/coredns-7db6d8ff4d-6lbqs:53 (ID:102) dns-request proxy FORWARDED (DNS Query api.github.com. A)
        Jun  9 20:38:30.645: default/mediabot:51234 (ID:5151) <- kube-system/coredns-7db6d8ff4d-6lbqs:53 (ID:102) dns-response proxy FORWARDED (DNS Answer "140.82.121.6" TTL: 60 (Proxy api.github.com. A))
        Jun  9 20:38:30.645: default/mediabot:51234 (ID:5151) -> kube-system/coredns-7db6d8ff4d-6lbqs:53 (ID:102) dns-request proxy DROPPED (DNS Query support.github.com. A)
    "#]]
    .assert_eq(&out);
}

#[test]
fn l7_flows_carry_hubble_fields() {
    let flows = flows();
    let denied = &flows[2];
    assert_eq!(denied.verdict(), Verdict::Dropped);
    assert_eq!(denied.r#type(), schema::flow::FlowType::L7);
    assert_eq!(denied.node_name, "kind-worker");
    let source = denied.source.as_ref().expect("a source");
    assert_eq!(
        (source.pod_name.as_str(), source.identity, source.id),
        ("tiefighter", 31028, 13)
    );
    assert!(source.labels.contains(&"k8s:org=empire".to_owned()));
    let Some(schema::flow::layer7::Record::Http(http)) =
        denied.l7.as_ref().and_then(|l7| l7.record.as_ref())
    else {
        panic!("an HTTP record");
    };
    assert_eq!(http.code, 0, "a request has no status");
    let keys: Vec<&str> = http.headers.iter().map(|h| h.key.as_str()).collect();
    assert_eq!(keys, ["Host", "User-Agent"]);

    let answer = &flows[5];
    let Some(schema::flow::layer7::Record::Dns(dns)) =
        answer.l7.as_ref().and_then(|l7| l7.record.as_ref())
    else {
        panic!("a DNS record");
    };
    assert_eq!(dns.ips, ["140.82.121.6"]);
    assert_eq!(dns.observation_source, "proxy");
    assert_eq!(answer.is_reply, Some(true));
}

#[test]
fn l7_flows_in_json_as_protojson() {
    let flows = flows();
    expect![[r#"
        {"time":"2024-06-09T20:38:30.645Z","verdict":"FORWARDED","IP":{"source":"10.0.0.12","destination":"10.0.0.13","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":80,"destination_port":42690}},"source":{"ID":12,"identity":16530,"namespace":"default","labels":["k8s:class=deathstar","k8s:org=empire","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"deathstar-c74d84667-cx5kp","workloads":[{"name":"deathstar","kind":"Deployment"}]},"destination":{"ID":13,"identity":31028,"namespace":"default","labels":["k8s:class=tiefighter","k8s:org=empire","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"tiefighter"},"Type":"L7","node_name":"kind-worker","l7":{"type":"RESPONSE","http":{"code":403,"method":"PUT","url":"http://deathstar.default.svc.cluster.local/v1/exhaust-port","protocol":"HTTP/1.1","headers":[{"key":"Host","value":"deathstar.default.svc.cluster.local"},{"key":"User-Agent","value":"curl/8.14.1"}]}},"reply":true,"event_type":{"type":129},"traffic_direction":"INGRESS","is_reply":true,"Summary":"HTTP/1.1 403 0ms (PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)"}
        {"time":"2024-06-09T20:38:30.645Z","verdict":"FORWARDED","IP":{"source":"10.0.0.53","destination":"10.0.0.31","ipVersion":"IPv4"},"l4":{"UDP":{"source_port":53,"destination_port":51234}},"source":{"ID":53,"identity":102,"namespace":"kube-system","labels":["k8s:k8s-app=kube-dns","k8s:io.kubernetes.pod.namespace=kube-system"],"pod_name":"coredns-7db6d8ff4d-6lbqs","workloads":[{"name":"coredns","kind":"Deployment"}]},"destination":{"ID":31,"identity":5151,"namespace":"default","labels":["k8s:class=mediabot","k8s:org=empire","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"mediabot"},"Type":"L7","node_name":"kind-worker","l7":{"type":"RESPONSE","dns":{"query":"api.github.com.","ips":["140.82.121.6"],"ttl":60,"observation_source":"proxy","qtypes":["A"],"rrtypes":["A"]}},"reply":true,"event_type":{"type":129},"traffic_direction":"EGRESS","is_reply":true,"Summary":"DNS Answer \"140.82.121.6\" TTL: 60 (Proxy api.github.com. A)"}"#]]
    .assert_eq(&format!(
        "{}\n{}",
        crate::print::flow_json(&flows[3]),
        crate::print::flow_json(&flows[5])
    ));
}
