use expect_test::expect;
use metrics::Registry;

use super::{FlowMetrics, UnknownMetric};
use crate::fixtures;

fn counted(list: &str) -> String {
    let registry = Registry::new();
    let metrics = FlowMetrics::register(list, &registry).expect("a valid list");
    let decoder = fixtures::decoder();
    let lookup = fixtures::lookup();
    for event in [
        fixtures::starwars_verdict(),
        fixtures::starwars_drop(),
        fixtures::sleep_httpbin_trace(),
        fixtures::sleep_httpbin_reply(),
        fixtures::dns_drop(),
        fixtures::icmp_verdict(),
    ] {
        let mut flow = decoder.flow(&event);
        crate::enrich::enrich(&mut flow, &event, &lookup);
        metrics.observe(&flow);
    }
    registry.render()
}

#[test]
fn hubble_metrics_count_the_tutorial_flows() {
    expect![[r##"
        # HELP hubble_drop_total Number of drops
        # TYPE hubble_drop_total counter
        hubble_drop_total{reason="POLICY_DENIED",protocol="TCP"} 2
        hubble_drop_total{reason="POLICY_DENIED",protocol="UDP"} 1
        # HELP hubble_tcp_flags_total TCP flag occurrences
        # TYPE hubble_tcp_flags_total counter
        hubble_tcp_flags_total{flag="SYN",family="IPv4"} 1
        hubble_tcp_flags_total{flag="SYN-ACK",family="IPv4"} 1
        # HELP hubble_flows_processed_total Total number of flows processed
        # TYPE hubble_flows_processed_total counter
        hubble_flows_processed_total{protocol="ICMPv4",type="PolicyVerdict",subtype="",verdict="FORWARDED"} 1
        hubble_flows_processed_total{protocol="TCP",type="Drop",subtype="",verdict="DROPPED"} 1
        hubble_flows_processed_total{protocol="TCP",type="PolicyVerdict",subtype="",verdict="DROPPED"} 1
        hubble_flows_processed_total{protocol="TCP",type="Trace",subtype="to-endpoint",verdict="FORWARDED"} 2
        hubble_flows_processed_total{protocol="UDP",type="Drop",subtype="",verdict="DROPPED"} 1
        # HELP hubble_port_distribution_total Numbers of packets distributed by destination port
        # TYPE hubble_port_distribution_total counter
        hubble_port_distribution_total{protocol="ICMPv4",port="0"} 1
        hubble_port_distribution_total{protocol="TCP",port="80"} 1
        # HELP hubble_icmp_total Number of ICMP messages
        # TYPE hubble_icmp_total counter
        hubble_icmp_total{family="IPv4",type="EchoRequest"} 1
    "##]]
    .assert_eq(&counted("drop,tcp,flow,port-distribution,icmp"));
}

#[test]
fn only_enabled_metrics_exist_and_unknown_ones_are_named() {
    let text = counted("drop");
    assert!(text.contains("hubble_drop_total") && !text.contains("hubble_flows_processed_total"));
    let registry = Registry::new();
    assert_eq!(
        FlowMetrics::register("drop flows", &registry).expect_err("flows is no metric"),
        UnknownMetric("flows".to_owned())
    );
}

fn counted_l7(list: &str) -> String {
    let registry = Registry::new();
    let metrics = FlowMetrics::register(list, &registry).expect("a valid list");
    let lookup = fixtures::lookup();
    for (record, ids) in fixtures::access_log() {
        metrics.observe(&crate::seven::flow(&record, ids, "kind-worker", &lookup));
    }
    registry.render()
}

#[test]
fn l7_flows_count_in_hubble_dns_and_http_metrics() {
    expect![[r##"
        # HELP hubble_dns_queries_total Number of DNS queries observed
        # TYPE hubble_dns_queries_total counter
        hubble_dns_queries_total{rcode="",qtypes="A",ips_returned="0"} 1
        hubble_dns_queries_total{rcode="Policy denied",qtypes="A",ips_returned="0"} 1
        # HELP hubble_dns_responses_total Number of DNS queries observed
        # TYPE hubble_dns_responses_total counter
        hubble_dns_responses_total{rcode="No Error",qtypes="A",ips_returned="1"} 1
        # HELP hubble_dns_response_types_total Number of DNS queries observed
        # TYPE hubble_dns_response_types_total counter
        hubble_dns_response_types_total{type="A",qtypes="A"} 1
        # HELP hubble_http_requests_total Count of HTTP requests
        # TYPE hubble_http_requests_total counter
        hubble_http_requests_total{method="POST",protocol="HTTP/1.1",reporter="server"} 1
        hubble_http_requests_total{method="PUT",protocol="HTTP/1.1",reporter="server"} 1
        # HELP hubble_http_responses_total Count of HTTP responses
        # TYPE hubble_http_responses_total counter
        hubble_http_responses_total{method="POST",protocol="HTTP/1.1",status="200",reporter="server"} 1
        hubble_http_responses_total{method="PUT",protocol="HTTP/1.1",status="403",reporter="server"} 1
        # HELP hubble_http_request_duration_seconds Quantiles of HTTP request duration in seconds
        # TYPE hubble_http_request_duration_seconds histogram
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.005"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.01"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.025"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.05"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.1"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.25"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.5"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="1"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="2.5"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="5"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="10"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="+Inf"} 1
        hubble_http_request_duration_seconds_sum{method="POST",reporter="server"} 0.002
        hubble_http_request_duration_seconds_count{method="POST",reporter="server"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.005"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.01"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.025"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.05"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.1"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.25"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.5"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="1"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="2.5"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="5"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="10"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="+Inf"} 1
        hubble_http_request_duration_seconds_sum{method="PUT",reporter="server"} 0
        hubble_http_request_duration_seconds_count{method="PUT",reporter="server"} 1
        # HELP hubble_flows_processed_total Total number of flows processed
        # TYPE hubble_flows_processed_total counter
        hubble_flows_processed_total{protocol="DNS",type="L7",subtype="DNS",verdict="DROPPED"} 1
        hubble_flows_processed_total{protocol="DNS",type="L7",subtype="DNS",verdict="FORWARDED"} 2
        hubble_flows_processed_total{protocol="HTTP",type="L7",subtype="HTTP",verdict="DROPPED"} 1
        hubble_flows_processed_total{protocol="HTTP",type="L7",subtype="HTTP",verdict="FORWARDED"} 3
    "##]]
    .assert_eq(&counted_l7("dns,http,flow"));
    expect![[r##"
        # HELP hubble_http_requests_total Count of HTTP requests
        # TYPE hubble_http_requests_total counter
        hubble_http_requests_total{method="POST",protocol="HTTP/1.1",status="200",reporter="server"} 1
        hubble_http_requests_total{method="PUT",protocol="HTTP/1.1",status="403",reporter="server"} 1
        # HELP hubble_http_request_duration_seconds Quantiles of HTTP request duration in seconds
        # TYPE hubble_http_request_duration_seconds histogram
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.005"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.01"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.025"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.05"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.1"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.25"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="0.5"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="1"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="2.5"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="5"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="10"} 1
        hubble_http_request_duration_seconds_bucket{method="POST",reporter="server",le="+Inf"} 1
        hubble_http_request_duration_seconds_sum{method="POST",reporter="server"} 0.002
        hubble_http_request_duration_seconds_count{method="POST",reporter="server"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.005"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.01"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.025"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.05"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.1"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.25"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.5"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="1"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="2.5"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="5"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="10"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="+Inf"} 1
        hubble_http_request_duration_seconds_sum{method="PUT",reporter="server"} 0
        hubble_http_request_duration_seconds_count{method="PUT",reporter="server"} 1
    "##]]
    .assert_eq(&counted_l7("httpV2"));
}
