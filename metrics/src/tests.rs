use std::sync::Arc;

use expect_test::expect;

use crate::{Collect, Encoder, Histogram, Kind, Registry};

struct Fixed;

impl Collect for Fixed {
    fn collect(&self, out: &mut Encoder) {
        out.family(
            "myelin_gauge",
            "A gauge.\nSecond line \\ slash",
            Kind::Gauge,
        )
        .sample(&[], 3.0)
        .sample(&[("path", "a\"b\\c\nd")], 0.25);
        out.family("myelin_delay_seconds", "A histogram.", Kind::Histogram)
            .histogram(
                &[("source", "api")],
                Histogram {
                    bounds: &[0.001, 0.5, 1.0],
                    counts: &[2, 0, 1],
                    sum: 1.75,
                    count: 4,
                },
            );
    }
}

#[test]
fn renders_text_format_0_0_4() {
    let registry = Registry::new();
    registry.register(Arc::new(Fixed));
    let drops = registry.counter_vec(
        "hubble_drop_total",
        "Dropped flows.",
        &["reason", "protocol"],
    );
    drops.with(&["POLICY_DENIED", "TCP"]).inc();
    let udp = drops.with(&["POLICY_DENIED", "UDP"]);
    udp.add(2);
    drops.with(&["POLICY_DENIED", "TCP"]).inc();
    expect![[r#"
        # HELP myelin_gauge A gauge.\nSecond line \\ slash
        # TYPE myelin_gauge gauge
        myelin_gauge 3
        myelin_gauge{path="a\"b\\c\nd"} 0.25
        # HELP myelin_delay_seconds A histogram.
        # TYPE myelin_delay_seconds histogram
        myelin_delay_seconds_bucket{source="api",le="0.001"} 2
        myelin_delay_seconds_bucket{source="api",le="0.5"} 2
        myelin_delay_seconds_bucket{source="api",le="1"} 3
        myelin_delay_seconds_bucket{source="api",le="+Inf"} 4
        myelin_delay_seconds_sum{source="api"} 1.75
        myelin_delay_seconds_count{source="api"} 4
        # HELP hubble_drop_total Dropped flows.
        # TYPE hubble_drop_total counter
        hubble_drop_total{reason="POLICY_DENIED",protocol="TCP"} 2
        hubble_drop_total{reason="POLICY_DENIED",protocol="UDP"} 2
    "#]]
    .assert_eq(&registry.render());
}

#[test]
fn counter_handles_share_one_value() {
    let registry = Registry::new();
    let flows = registry.counter_vec("hubble_flows_processed_total", "Flows.", &["type"]);
    let handle = flows.with(&["Trace"]);
    handle.inc();
    flows.with(&["Trace", "ignored"]).add(4);
    assert_eq!(handle.get(), 5);
    assert_eq!(
        flows.with(&[]).get(),
        0,
        "missing values are empty, a separate series"
    );
}

#[test]
fn histogram_vecs_count_each_observation_in_its_bucket() {
    let registry = Registry::new();
    let durations = registry.histogram_vec(
        "hubble_http_request_duration_seconds",
        "Quantiles of HTTP request duration in seconds",
        &["method", "reporter"],
        &[0.01, 0.1, 1.0],
    );
    let get = durations.with(&["GET", "client"]);
    get.observe(0.002);
    get.observe(0.05);
    durations.with(&["GET", "client"]).observe(3.0);
    durations.with(&["PUT", "server"]).observe(0.1);
    expect![[r##"
        # HELP hubble_http_request_duration_seconds Quantiles of HTTP request duration in seconds
        # TYPE hubble_http_request_duration_seconds histogram
        hubble_http_request_duration_seconds_bucket{method="GET",reporter="client",le="0.01"} 1
        hubble_http_request_duration_seconds_bucket{method="GET",reporter="client",le="0.1"} 2
        hubble_http_request_duration_seconds_bucket{method="GET",reporter="client",le="1"} 2
        hubble_http_request_duration_seconds_bucket{method="GET",reporter="client",le="+Inf"} 3
        hubble_http_request_duration_seconds_sum{method="GET",reporter="client"} 3.052
        hubble_http_request_duration_seconds_count{method="GET",reporter="client"} 3
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.01"} 0
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="0.1"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="1"} 1
        hubble_http_request_duration_seconds_bucket{method="PUT",reporter="server",le="+Inf"} 1
        hubble_http_request_duration_seconds_sum{method="PUT",reporter="server"} 0.1
        hubble_http_request_duration_seconds_count{method="PUT",reporter="server"} 1
    "##]]
    .assert_eq(&registry.render());
}
