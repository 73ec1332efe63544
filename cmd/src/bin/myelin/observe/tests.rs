use std::time::{Duration, SystemTime};

use clap::Parser as _;
use expect_test::expect;

use super::filters::{self, FlagError};
use super::{request, status_text, time};

fn raw(args: &str) -> Vec<String> {
    args.split_whitespace().map(str::to_owned).collect()
}

fn filters_of(args: &str) -> String {
    let (white, black) = filters::build(&filters::filter_flags(&raw(args))).expect("valid flags");
    format!("whitelist: {white:?}\nblacklist: {black:?}")
}

#[test]
fn from_flags_and_one_filter_either_way_flags_two() {
    expect![[r#"
        whitelist: [FlowFilter { uuid: [], source_ip: [], source_ip_xlated: [], source_pod: ["default/xwing"], source_fqdn: [], source_label: [], source_service: [], source_workload: [], source_cluster_name: [], destination_ip: [], destination_pod: [], destination_fqdn: [], destination_label: [], destination_service: [], destination_workload: [], destination_cluster_name: [], traffic_direction: [], verdict: [Dropped], drop_reason_desc: [], interface: [], event_type: [], http_status_code: [], protocol: [], source_port: [], destination_port: [], reply: [], dns_query: [], source_identity: [], destination_identity: [], http_method: [], http_path: [], http_url: [], http_header: [], tcp_flags: [], node_name: [], node_labels: [], ip_version: [], trace_id: [], ip_trace_id: [], encrypted: [] }]
        blacklist: []"#]]
    .assert_eq(&filters_of("--from-pod default/xwing --verdict DROPPED -o json"));
    let (white, _) = filters::build(&filters::filter_flags(&raw(
        "--pod default/sleep --protocol TCP",
    )))
    .expect("valid");
    assert_eq!(white.len(), 2);
    assert_eq!(
        (
            white[0].source_pod.as_slice(),
            white[0].destination_pod.as_slice()
        ),
        (&["default/sleep".to_owned()][..], &[][..])
    );
    assert_eq!(white[1].destination_pod, ["default/sleep"]);
    assert!(white.iter().all(|f| f.protocol == ["tcp"]));
}

#[test]
fn not_sends_the_next_filter_to_the_blacklist() {
    let (white, black) = filters::build(&filters::filter_flags(&raw(
        "--namespace kube-system --not --label=app=coredns -t trace:to-endpoint",
    )))
    .expect("valid");
    assert_eq!(white.len(), 2, "-n is either way");
    assert_eq!(white[0].source_pod, ["kube-system/"]);
    assert_eq!(white[1].destination_pod, ["kube-system/"]);
    assert!(white.iter().all(|f| f.event_type.len() == 1
        && f.event_type[0].r#type == 4
        && f.event_type[0].match_sub_type));
    assert_eq!(black.len(), 2);
    assert_eq!(black[0].source_label, ["app=coredns"]);
    assert_eq!(black[1].destination_label, ["app=coredns"]);
}

#[test]
fn bad_values_name_the_flag() {
    let build = |args: &str| filters::build(&filters::filter_flags(&raw(args)));
    expect![[r#"--verdict: "MAYBE" is not a verdict (FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED, TRANSLATED)"#]]
        .assert_eq(&build("--verdict MAYBE").expect_err("invalid").to_string());
    expect![[r#"--to-port: "http" is not a port number"#]]
        .assert_eq(&build("--to-port http").expect_err("invalid").to_string());
    assert_eq!(build("--not"), Err(FlagError::DanglingNot));
}

#[derive(clap::Parser)]
struct Wrapper {
    #[command(flatten)]
    args: super::ObserveArgs,
}

#[test]
fn number_follows_hubble_defaults() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let req = |args: &str| {
        let parsed = Wrapper::parse_from(std::iter::once("observe").chain(args.split_whitespace()));
        request(&parsed.args, &raw(args), now).expect("valid")
    };
    assert_eq!((req("").number, req("").first), (20, false));
    assert_eq!((req("--last 5").number, req("--first 3").first), (5, true));
    assert_eq!(req("--all").number, 0);
    let since = req("--since 5m");
    assert_eq!(since.number, 0);
    assert_eq!(since.since.map(|t| t.seconds), Some(1_700_000_000 - 300));
    assert!(req("-f").follow);
}

#[test]
fn times_are_durations_ago_or_rfc3339() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let seconds = |text: &str| time::parse(text, now).map(|t| (t.seconds, t.nanos));
    assert_eq!(seconds("1h30m"), Ok((1_700_000_000 - 5400, 0)));
    assert_eq!(
        seconds("2024-06-09T20:38:30.645Z"),
        Ok((1_717_965_510, 645_000_000))
    );
    assert_eq!(seconds("2024-06-09T22:38:30+02:00"), Ok((1_717_965_510, 0)));
    expect![[r#""yesterday" is neither a duration (5m, 1h30m) nor an RFC3339 time"#]]
        .assert_eq(&seconds("yesterday").expect_err("invalid").to_string());
}

#[test]
fn status_prints_like_hubble_status() {
    let status = schema::observer::ServerStatusResponse {
        num_flows: 1234,
        max_flows: 4095,
        seen_flows: 1234,
        num_connected_nodes: Some(1),
        num_unavailable_nodes: Some(0),
        flows_rate: 2.5,
        ..Default::default()
    };
    expect![[r#"
        Healthcheck (via unix:///run/myelin/hubble.sock): Ok
        Current/Max Flows: 1,234/4,095 (30.13%)
        Flows/s: 2.50
        Connected Nodes: 1/1
    "#]]
    .assert_eq(&status_text(&status, "unix:///run/myelin/hubble.sock"));
}
