//! The tutorials' flows in every format, decoded from ring buffer bytes and enriched.

use expect_test::{Expect, expect};
use schema::flow::Flow;

use super::{Format, print};
use crate::enrich::enrich;
use crate::fixtures;

fn flow(event: bpf::Event) -> Flow {
    let decoder = fixtures::decoder();
    let bytes = fixtures::encode(&event);
    let mut flow = decoder.decode(&bytes).expect("fixture decodes");
    enrich(&mut flow, &event, &fixtures::lookup());
    flow
}

fn flows() -> Vec<Flow> {
    [
        fixtures::starwars_drop(),
        fixtures::starwars_verdict(),
        fixtures::sleep_httpbin_trace(),
        fixtures::sleep_httpbin_reply(),
        fixtures::dns_drop(),
        fixtures::icmp_verdict(),
    ]
    .into_iter()
    .map(flow)
    .collect()
}

fn check(format: Format, expect: Expect) {
    expect.assert_eq(&print(format, &flows()));
}

#[test]
fn compact() {
    check(
        Format::Compact,
        expect![[r#"
            Jun  9 20:38:30.645: default/xwing:42818 (ID:22654) <> default/deathstar-c74d84667-cx5kp:80 (ID:16530) Policy denied DROPPED (TCP Flags: SYN)
            Jun  9 20:38:30.645: default/xwing:42818 (ID:22654) -> default/deathstar-c74d84667-cx5kp:80 (ID:16530) policy-verdict:none INGRESS DENIED (TCP Flags: SYN)
            Jun  9 20:38:30.645: default/sleep-6d68f49858-7ppbf:53352 (ID:43148) -> default/httpbin-797587ddc5-kqb4f:80 (ID:1176) to-endpoint FORWARDED (TCP Flags: SYN)
            Jun  9 20:38:30.645: default/sleep-6d68f49858-7ppbf:53352 (ID:43148) <- default/httpbin-797587ddc5-kqb4f:80 (ID:1176) to-endpoint FORWARDED (TCP Flags: SYN, ACK)
            Jun  9 20:38:30.645: default/mediabot:40507 (ID:5151) <> kube-system/coredns-7db6d8ff4d-6lbqs:53 (ID:102) Policy denied DROPPED (UDP)
            Jun  9 20:38:30.645: default/sleep-6d68f49858-7ppbf (ID:43148) -> 1.1.1.1 (world) policy-verdict:L3-Only EGRESS ALLOWED (ICMPv4 EchoRequest)
        "#]],
    );
}

#[test]
fn dict() {
    check(
        Format::Dict,
        expect![[r#"
          TIMESTAMP: Jun  9 20:38:30.645
             SOURCE: default/xwing:42818
        DESTINATION: default/deathstar-c74d84667-cx5kp:80
               TYPE: Policy denied
            VERDICT: DROPPED
            SUMMARY: TCP Flags: SYN
        ------------
          TIMESTAMP: Jun  9 20:38:30.645
             SOURCE: default/xwing:42818
        DESTINATION: default/deathstar-c74d84667-cx5kp:80
               TYPE: policy-verdict:none INGRESS
            VERDICT: DENIED
            SUMMARY: TCP Flags: SYN
        ------------
          TIMESTAMP: Jun  9 20:38:30.645
             SOURCE: default/sleep-6d68f49858-7ppbf:53352
        DESTINATION: default/httpbin-797587ddc5-kqb4f:80
               TYPE: to-endpoint
            VERDICT: FORWARDED
            SUMMARY: TCP Flags: SYN
        ------------
          TIMESTAMP: Jun  9 20:38:30.645
             SOURCE: default/httpbin-797587ddc5-kqb4f:80
        DESTINATION: default/sleep-6d68f49858-7ppbf:53352
               TYPE: to-endpoint
            VERDICT: FORWARDED
            SUMMARY: TCP Flags: SYN, ACK
        ------------
          TIMESTAMP: Jun  9 20:38:30.645
             SOURCE: default/mediabot:40507
        DESTINATION: kube-system/coredns-7db6d8ff4d-6lbqs:53
               TYPE: Policy denied
            VERDICT: DROPPED
            SUMMARY: UDP
        ------------
          TIMESTAMP: Jun  9 20:38:30.645
             SOURCE: default/sleep-6d68f49858-7ppbf
        DESTINATION: 1.1.1.1
               TYPE: policy-verdict:L3-Only EGRESS
            VERDICT: ALLOWED
            SUMMARY: ICMPv4 EchoRequest
    "#]],
    );
}

#[test]
fn table() {
    check(
        Format::Table,
        expect![[r#"
        TIMESTAMP             SOURCE                                 DESTINATION                               TYPE                            VERDICT     SUMMARY
        Jun  9 20:38:30.645   default/xwing:42818                    default/deathstar-c74d84667-cx5kp:80      Policy denied                   DROPPED     TCP Flags: SYN
        Jun  9 20:38:30.645   default/xwing:42818                    default/deathstar-c74d84667-cx5kp:80      policy-verdict:none INGRESS     DENIED      TCP Flags: SYN
        Jun  9 20:38:30.645   default/sleep-6d68f49858-7ppbf:53352   default/httpbin-797587ddc5-kqb4f:80       to-endpoint                     FORWARDED   TCP Flags: SYN
        Jun  9 20:38:30.645   default/httpbin-797587ddc5-kqb4f:80    default/sleep-6d68f49858-7ppbf:53352      to-endpoint                     FORWARDED   TCP Flags: SYN, ACK
        Jun  9 20:38:30.645   default/mediabot:40507                 kube-system/coredns-7db6d8ff4d-6lbqs:53   Policy denied                   DROPPED     UDP
        Jun  9 20:38:30.645   default/sleep-6d68f49858-7ppbf         1.1.1.1                                   policy-verdict:L3-Only EGRESS   ALLOWED     ICMPv4 EchoRequest
    "#]],
    );
}

#[test]
fn json() {
    check(
        Format::Json,
        expect![[r#"
        {"flow":{"time":"2024-06-09T20:38:30.645Z","verdict":"DROPPED","drop_reason":133,"ethernet":{"source":"0a:00:00:00:00:0b","destination":"0a:00:00:00:00:0c"},"IP":{"source":"10.0.0.11","destination":"10.0.0.12","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":42818,"destination_port":80,"flags":{"SYN":true}}},"source":{"ID":11,"identity":22654,"namespace":"default","labels":["k8s:class=xwing","k8s:org=alliance","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"xwing"},"destination":{"ID":12,"identity":16530,"namespace":"default","labels":["k8s:class=deathstar","k8s:org=empire","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"deathstar-c74d84667-cx5kp","workloads":[{"name":"deathstar","kind":"Deployment"}]},"Type":"L3_L4","node_name":"kind-worker","event_type":{"type":1,"sub_type":133},"traffic_direction":"INGRESS","drop_reason_desc":"POLICY_DENIED","interface":{"index":112,"name":"lxc0012"},"Summary":"TCP Flags: SYN"},"node_name":"kind-worker","time":"2024-06-09T20:38:30.645Z"}
        {"flow":{"time":"2024-06-09T20:38:30.645Z","verdict":"DROPPED","drop_reason":133,"ethernet":{"source":"0a:00:00:00:00:0b","destination":"0a:00:00:00:00:0c"},"IP":{"source":"10.0.0.11","destination":"10.0.0.12","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":42818,"destination_port":80,"flags":{"SYN":true}}},"source":{"ID":11,"identity":22654,"namespace":"default","labels":["k8s:class=xwing","k8s:org=alliance","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"xwing"},"destination":{"ID":12,"identity":16530,"namespace":"default","labels":["k8s:class=deathstar","k8s:org=empire","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"deathstar-c74d84667-cx5kp","workloads":[{"name":"deathstar","kind":"Deployment"}]},"Type":"L3_L4","node_name":"kind-worker","event_type":{"type":9},"traffic_direction":"INGRESS","drop_reason_desc":"POLICY_DENIED","is_reply":false,"interface":{"index":112,"name":"lxc0012"},"Summary":"TCP Flags: SYN"},"node_name":"kind-worker","time":"2024-06-09T20:38:30.645Z"}
        {"flow":{"time":"2024-06-09T20:38:30.645Z","verdict":"FORWARDED","ethernet":{"source":"0a:00:00:00:00:0b","destination":"0a:00:00:00:00:0c"},"IP":{"source":"10.0.0.21","destination":"10.0.0.22","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":53352,"destination_port":80,"flags":{"SYN":true}}},"source":{"ID":21,"identity":43148,"namespace":"default","labels":["k8s:app=sleep","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"sleep-6d68f49858-7ppbf","workloads":[{"name":"sleep","kind":"Deployment"}]},"destination":{"ID":22,"identity":1176,"namespace":"default","labels":["k8s:app=httpbin","k8s:version=v1","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"httpbin-797587ddc5-kqb4f","workloads":[{"name":"httpbin","kind":"Deployment"}]},"Type":"L3_L4","node_name":"kind-worker","event_type":{"type":4},"traffic_direction":"INGRESS","trace_observation_point":"TO_ENDPOINT","is_reply":false,"interface":{"index":122,"name":"lxc0022"},"Summary":"TCP Flags: SYN"},"node_name":"kind-worker","time":"2024-06-09T20:38:30.645Z"}
        {"flow":{"time":"2024-06-09T20:38:30.645Z","verdict":"FORWARDED","ethernet":{"source":"0a:00:00:00:00:0b","destination":"0a:00:00:00:00:0c"},"IP":{"source":"10.0.0.22","destination":"10.0.0.21","ipVersion":"IPv4"},"l4":{"TCP":{"source_port":80,"destination_port":53352,"flags":{"SYN":true,"ACK":true}}},"source":{"ID":22,"identity":1176,"namespace":"default","labels":["k8s:app=httpbin","k8s:version=v1","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"httpbin-797587ddc5-kqb4f","workloads":[{"name":"httpbin","kind":"Deployment"}]},"destination":{"ID":21,"identity":43148,"namespace":"default","labels":["k8s:app=sleep","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"sleep-6d68f49858-7ppbf","workloads":[{"name":"sleep","kind":"Deployment"}]},"Type":"L3_L4","node_name":"kind-worker","event_type":{"type":4},"traffic_direction":"INGRESS","trace_observation_point":"TO_ENDPOINT","is_reply":true,"interface":{"index":121,"name":"lxc0021"},"Summary":"TCP Flags: SYN, ACK"},"node_name":"kind-worker","time":"2024-06-09T20:38:30.645Z"}
        {"flow":{"time":"2024-06-09T20:38:30.645Z","verdict":"DROPPED","drop_reason":133,"ethernet":{"source":"0a:00:00:00:00:0b","destination":"0a:00:00:00:00:0c"},"IP":{"source":"10.0.0.31","destination":"10.0.0.53","ipVersion":"IPv4"},"l4":{"UDP":{"source_port":40507,"destination_port":53}},"source":{"ID":31,"identity":5151,"namespace":"default","labels":["k8s:class=mediabot","k8s:org=empire","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"mediabot"},"destination":{"ID":53,"identity":102,"namespace":"kube-system","labels":["k8s:k8s-app=kube-dns","k8s:io.kubernetes.pod.namespace=kube-system"],"pod_name":"coredns-7db6d8ff4d-6lbqs","workloads":[{"name":"coredns","kind":"Deployment"}]},"Type":"L3_L4","node_name":"kind-worker","event_type":{"type":1,"sub_type":133},"traffic_direction":"EGRESS","drop_reason_desc":"POLICY_DENIED","interface":{"index":131,"name":"lxc0031"},"Summary":"UDP"},"node_name":"kind-worker","time":"2024-06-09T20:38:30.645Z"}
        {"flow":{"time":"2024-06-09T20:38:30.645Z","verdict":"FORWARDED","ethernet":{"source":"0a:00:00:00:00:0b","destination":"0a:00:00:00:00:0c"},"IP":{"source":"10.0.0.21","destination":"1.1.1.1","ipVersion":"IPv4"},"l4":{"ICMPv4":{"type":8}},"source":{"ID":21,"identity":43148,"namespace":"default","labels":["k8s:app=sleep","k8s:io.kubernetes.pod.namespace=default"],"pod_name":"sleep-6d68f49858-7ppbf","workloads":[{"name":"sleep","kind":"Deployment"}]},"destination":{"identity":2,"labels":["reserved:world"]},"Type":"L3_L4","node_name":"kind-worker","event_type":{"type":9},"traffic_direction":"EGRESS","policy_match_type":1,"is_reply":false,"interface":{"index":121,"name":"lxc0021"},"Summary":"ICMPv4 EchoRequest","egress_allowed_by":[{"name":"allow-world","namespace":"default","kind":"CiliumNetworkPolicy"}]},"node_name":"kind-worker","time":"2024-06-09T20:38:30.645Z"}
    "#]],
    );
}
