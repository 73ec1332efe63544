use schema::flow::{EventTypeFilter, Flow, FlowFilter, TcpFlags, TrafficDirection, Verdict};

use super::{FilterError, FlowFilters};
use crate::decode::monitor;
use crate::enrich::enrich;
use crate::fixtures;

fn flows() -> Vec<(&'static str, Flow)> {
    let decoder = fixtures::decoder();
    [
        ("drop", fixtures::starwars_drop()),
        ("verdict", fixtures::starwars_verdict()),
        ("trace", fixtures::sleep_httpbin_trace()),
        ("reply", fixtures::sleep_httpbin_reply()),
        ("dns", fixtures::dns_drop()),
        ("icmp", fixtures::icmp_verdict()),
    ]
    .into_iter()
    .map(|(name, event)| {
        let mut flow = decoder.flow(&event);
        enrich(&mut flow, &event, &fixtures::lookup());
        (name, flow)
    })
    .collect()
}

/// The names of the fixture flows that pass.
fn selected(whitelist: &[FlowFilter], blacklist: &[FlowFilter]) -> Vec<&'static str> {
    let filters = FlowFilters::new(whitelist, blacklist).expect("valid filters");
    flows()
        .into_iter()
        .filter(|(_, flow)| filters.matches(flow))
        .map(|(name, _)| name)
        .collect()
}

fn one(filter: FlowFilter) -> Vec<&'static str> {
    selected(&[filter], &[])
}

#[test]
fn empty_filters_pass_everything() {
    assert_eq!(selected(&[], &[]).len(), 6);
}

#[test]
fn pods_by_namespace_and_prefix() {
    let pod = |p: &str| FlowFilter {
        source_pod: vec![p.to_owned()],
        ..FlowFilter::default()
    };
    assert_eq!(one(pod("default/xwing")), ["drop", "verdict"]);
    assert_eq!(one(pod("default/sleep-")), ["trace", "icmp"]);
    assert_eq!(
        one(pod("default/")),
        ["drop", "verdict", "trace", "reply", "dns", "icmp"]
    );
    assert_eq!(one(pod("kube-system/")), Vec::<&str>::new());
    // Without a namespace the prefix matches in any namespace.
    assert_eq!(
        one(FlowFilter {
            destination_pod: vec!["coredns".to_owned()],
            ..FlowFilter::default()
        }),
        ["dns"]
    );
}

#[test]
fn fields_and_values_combine() {
    // Values of one field OR; fields AND.
    let filter = FlowFilter {
        source_label: vec!["org=alliance".to_owned(), "k8s:app=sleep".to_owned()],
        verdict: vec![Verdict::Dropped.into()],
        ..FlowFilter::default()
    };
    assert_eq!(one(filter), ["drop", "verdict"]);
    // Whitelist entries OR, the blacklist removes.
    let drops = FlowFilter {
        verdict: vec![Verdict::Dropped.into()],
        ..FlowFilter::default()
    };
    let world = FlowFilter {
        destination_label: vec!["reserved:world".to_owned()],
        ..FlowFilter::default()
    };
    let udp = FlowFilter {
        protocol: vec!["UDP".to_owned()],
        ..FlowFilter::default()
    };
    assert_eq!(
        selected(&[drops, world], &[udp]),
        ["drop", "verdict", "icmp"]
    );
}

#[test]
fn label_selector_syntax() {
    let label = |s: &str| FlowFilter {
        destination_label: vec![s.to_owned()],
        ..FlowFilter::default()
    };
    assert_eq!(one(label("class in (deathstar, x)")), ["drop", "verdict"]);
    assert_eq!(one(label("k8s:app=httpbin,version!=v2")), ["trace"]);
    assert_eq!(one(label("!org,k8s-app")), ["dns"]);
    assert_eq!(
        one(label("any:org notin (empire)")),
        ["trace", "reply", "dns", "icmp"]
    );
}

#[test]
fn identity_ip_port_direction_type_flags() {
    assert_eq!(
        one(FlowFilter {
            destination_identity: vec![2],
            ..FlowFilter::default()
        }),
        ["icmp"]
    );
    assert_eq!(
        one(FlowFilter {
            source_ip: vec!["10.0.0.20/30".to_owned()],
            ..FlowFilter::default()
        }),
        ["trace", "reply", "icmp"]
    );
    assert_eq!(
        one(FlowFilter {
            destination_port: vec!["53".to_owned()],
            ..FlowFilter::default()
        }),
        ["dns"]
    );
    assert_eq!(
        one(FlowFilter {
            traffic_direction: vec![TrafficDirection::Egress.into()],
            ..FlowFilter::default()
        }),
        ["dns", "icmp"]
    );
    let trace_to_endpoint = EventTypeFilter {
        r#type: monitor::TRACE,
        match_sub_type: true,
        sub_type: 0,
    };
    let verdicts = EventTypeFilter {
        r#type: monitor::POLICY_VERDICT,
        ..EventTypeFilter::default()
    };
    assert_eq!(
        one(FlowFilter {
            event_type: vec![trace_to_endpoint, verdicts],
            ..FlowFilter::default()
        }),
        ["verdict", "trace", "reply", "icmp"]
    );
    assert_eq!(
        one(FlowFilter {
            tcp_flags: vec![TcpFlags {
                syn: true,
                ack: true,
                ..TcpFlags::default()
            }],
            ..FlowFilter::default()
        }),
        ["reply"]
    );
    assert_eq!(
        one(FlowFilter {
            reply: vec![false],
            ..FlowFilter::default()
        }),
        ["verdict", "trace", "icmp"]
    );
    assert_eq!(
        one(FlowFilter {
            node_name: vec!["kind-*".to_owned()],
            protocol: vec!["icmp".to_owned()],
            ..FlowFilter::default()
        }),
        ["icmp"]
    );
    // HTTP filters match only L7 flows.
    assert_eq!(
        one(FlowFilter {
            http_method: vec!["GET".to_owned()],
            ..FlowFilter::default()
        }),
        Vec::<&str>::new()
    );
}

#[test]
fn invalid_filters_name_the_field() {
    let err = FlowFilters::new(
        &[FlowFilter {
            destination_port: vec!["http".to_owned()],
            ..FlowFilter::default()
        }],
        &[],
    )
    .expect_err("a named port is not a port filter");
    assert_eq!(
        err,
        FilterError::Invalid {
            field: "destination_port",
            value: "http".to_owned(),
            problem: "not a port number".to_owned()
        }
    );
    assert!(
        FlowFilters::new(
            &[FlowFilter {
                source_label: vec!["app in a".to_owned()],
                ..FlowFilter::default()
            }],
            &[]
        )
        .is_err()
    );
}

/// The indices of the access log fixture's flows that pass `filter`.
fn l7_selected(filter: FlowFilter) -> Vec<usize> {
    let filters = FlowFilters::new(&[filter], &[]).expect("valid filters");
    let lookup = fixtures::lookup();
    fixtures::access_log()
        .iter()
        .map(|(record, ids)| crate::seven::flow(record, *ids, "kind-worker", &lookup))
        .enumerate()
        .filter(|(_, flow)| filters.matches(flow))
        .map(|(i, _)| i)
        .collect()
}

#[test]
fn http_and_l7_filters_select_the_proxys_flows() {
    // 0 POST request, 1 its 200, 2 PUT request (denied), 3 its 403, 4-6 DNS.
    let http = |f: fn(&mut FlowFilter)| {
        let mut filter = FlowFilter::default();
        f(&mut filter);
        l7_selected(filter)
    };
    assert_eq!(http(|f| f.http_status_code = vec!["403".into()]), [3]);
    assert_eq!(http(|f| f.http_status_code = vec!["2+".into()]), [1]);
    assert_eq!(http(|f| f.http_method = vec!["PUT".into()]), [2, 3]);
    assert_eq!(http(|f| f.http_path = vec!["^/v1/exhaust".into()]), [2, 3]);
    assert_eq!(http(|f| f.protocol = vec!["http".into()]), [0, 1, 2, 3]);
    assert_eq!(http(|f| f.protocol = vec!["dns".into()]), [4, 5, 6]);
    assert_eq!(
        http(|f| {
            f.event_type = vec![EventTypeFilter {
                r#type: monitor::ACCESS_LOG,
                ..EventTypeFilter::default()
            }];
            f.verdict = vec![Verdict::Dropped.into()];
        }),
        [2, 6]
    );
    assert_eq!(
        http(|f| f.http_header = vec![schema::flow::HttpHeader {
            key: "User-Agent".into(),
            value: "curl/8.14.1".into(),
        }]),
        [0, 1, 2, 3]
    );
    assert_eq!(
        http(|f| f.source_pod = vec!["default/mediabot".into()]),
        [4, 6]
    );
}
