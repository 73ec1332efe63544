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
