//! Flows on real traffic, read as users read them: `myelin observe` with hubble's flags in
//! compact and JSON output, and the agent's Observer API through the generated tonic client
//! (follow and a filter). The tutorials' lines: Star Wars' xwing drop (`Policy denied
//! DROPPED`, `policy-verdict:none INGRESS DENIED`) and tiefighter's landing (`to-endpoint
//! FORWARDED`), sleep -> httpbin allowed, and sleep's DNS egress blocked; the L7 proxies'
//! flows: Star Wars' `http-request DROPPED` for the exhaust port with its 403 response, and
//! the DNS proxy's `dns-request proxy` / `dns-response proxy` lines.

use std::path::PathBuf;
use std::time::Duration;

use expect_test::expect;
use hyper_util::rt::TokioIo;
use schema::flow::{FlowFilter, Verdict};
use schema::observer::get_flows_response::ResponseTypes;
use schema::observer::observer_client::ObserverClient;
use schema::observer::{GetFlowsRequest, ServerStatusRequest};
use tonic::transport::{Channel, Endpoint};

use crate::embedded::{Embedded, describe, examples};

/// Times, source ports and identity numbers vary from run to run; retransmitted SYNs repeat a
/// line, so repeats are dropped.
fn normalise(text: &str) -> String {
    let time =
        regex::Regex::new(r"^[A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2}\.\d{3}").expect("regex");
    let port = regex::Regex::new(r":\d{4,5} \(").expect("regex");
    let id = regex::Regex::new(r"\(ID:\d+\)").expect("regex");
    let latency = regex::Regex::new(r" \d+ms \(").expect("regex");
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = time.replace(line, "TIME");
        let line = port.replace_all(&line, ":PORT (");
        let line = id.replace_all(&line, "(ID:N)");
        let line = latency.replace_all(&line, " Nms (").into_owned();
        if !out.contains(&line) {
            out.push(line);
        }
    }
    out.join("\n") + "\n"
}

/// `myelin observe ARGS` until its output satisfies `done` (flows reach the ring a few
/// milliseconds after their packets: the datapath wakes the reader in batches), at most 10 s.
fn observe_until(node: &Embedded, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for _ in 0..100 {
        out = node.myelin_ok(args);
        if done(&out) {
            break;
        }
        for _ in 0..5 {
            crate::cni::pause();
        }
    }
    out
}

fn probe(node: &Embedded, from: &str, to: &str, port: &str) -> String {
    run_probe(node, from, to, port, "1s", &[])
}

/// `myelin probe` with extra arguments (an HTTP request, a DNS name).
fn probe_with(node: &Embedded, from: &str, to: &str, port: &str, extra: &[&str]) -> String {
    run_probe(node, from, to, port, "2s", extra)
}

fn run_probe(
    node: &Embedded,
    from: &str,
    to: &str,
    port: &str,
    timeout: &str,
    extra: &[&str],
) -> String {
    let mut args = vec![
        "probe",
        "--from",
        from,
        "--to",
        to,
        "--port",
        port,
        "--timeout",
        timeout,
    ];
    args.extend_from_slice(extra);
    let out = node.myelin(&args);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

async fn client(socket: PathBuf) -> ObserverClient<Channel> {
    let channel = Endpoint::try_from("http://[::1]:4245")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(&socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .expect("connect to hubble.sock");
    ObserverClient::new(channel)
}

#[test]
fn starwars_flows_through_observe_and_the_observer_api() {
    let node = Embedded::up("starwars");
    node.myelin_ok(&[
        "apply",
        "-f",
        &examples().join("starwars/policy").display().to_string(),
    ]);
    let deathstar = "default/deathstar-c74d84667-cx5kp";

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let socket = node.run_dir().join("hubble.sock");
    // Follow from now, only xwing's drops: tiefighter's landing must not come through.
    let mut stream = runtime.block_on(async {
        let mut client = client(socket.clone()).await;
        let request = GetFlowsRequest {
            follow: true,
            since: Some(prost_now()),
            whitelist: vec![FlowFilter {
                source_pod: vec!["default/xwing".to_owned()],
                verdict: vec![Verdict::Dropped.into()],
                ..FlowFilter::default()
            }],
            ..GetFlowsRequest::default()
        };
        client
            .get_flows(request)
            .await
            .expect("GetFlows")
            .into_inner()
    });

    assert_eq!(
        probe(&node, "default/tiefighter", deathstar, "80/TCP"),
        "allowed"
    );
    assert_eq!(probe(&node, "default/xwing", deathstar, "80/TCP"), "denied");

    let followed = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a followed flow within 10s")
            .expect("the stream is healthy")
            .expect("the stream goes on")
    });
    let Some(ResponseTypes::Flow(flow)) = followed.response_types else {
        panic!("expected a flow, got {followed:?}");
    };
    assert_eq!(
        flow.source.as_ref().map(|s| s.pod_name.as_str()),
        Some("xwing")
    );
    assert_eq!(flow.verdict, i32::from(Verdict::Dropped));
    assert_eq!(followed.node_name, node.name());
    let status = runtime.block_on(async {
        client(socket)
            .await
            .server_status(ServerStatusRequest {})
            .await
            .expect("ServerStatus")
            .into_inner()
    });
    assert!(
        status.seen_flows >= 2 && status.max_flows == 4095,
        "{status:?}"
    );

    let drops = observe_until(
        &node,
        &[
            "observe",
            "--from-pod",
            "default/xwing",
            "--verdict",
            "DROPPED",
        ],
        |out| out.contains("Policy denied"),
    );
    expect![[r#"
        TIME: default/xwing:PORT (ID:N) -> default/deathstar-c74d84667-cx5kp:80 (ID:N) policy-verdict:none INGRESS DENIED (TCP Flags: SYN)
        TIME: default/xwing:PORT (ID:N) <> default/deathstar-c74d84667-cx5kp:80 (ID:N) Policy denied DROPPED (TCP Flags: SYN)
    "#]]
    .assert_eq(&normalise(&drops));

    let json = node.myelin_ok(&[
        "observe",
        "--from-pod",
        "default/xwing",
        "-t",
        "drop",
        "--last",
        "1",
        "-o",
        "json",
    ]);
    let value: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON line");
    let flow = &value["flow"];
    assert_eq!(flow["verdict"], "DROPPED", "{json}");
    assert_eq!(flow["drop_reason_desc"], "POLICY_DENIED", "{json}");
    assert_eq!(flow["traffic_direction"], "INGRESS", "{json}");
    assert_eq!(flow["source"]["pod_name"], "xwing", "{json}");
    assert_eq!(
        flow["destination"]["pod_name"], "deathstar-c74d84667-cx5kp",
        "{json}"
    );
    assert_eq!(flow["l4"]["TCP"]["destination_port"], 80, "{json}");
    assert_eq!(value["node_name"], node.name(), "{json}");

    let landed = observe_until(
        &node,
        &[
            "observe",
            "--from-pod",
            "default/tiefighter",
            "--to-pod",
            deathstar,
            "-t",
            "trace:to-endpoint",
        ],
        |out| out.contains("to-endpoint"),
    );
    assert!(
        normalise(&landed).contains(
            "default/tiefighter:PORT (ID:N) -> default/deathstar-c74d84667-cx5kp:80 (ID:N) to-endpoint FORWARDED (TCP Flags: SYN)"
        ),
        "{landed}"
    );
    // The verdict names the policy that allowed it, as Hubble's `ingress_allowed_by`.
    let verdict = node.myelin_ok(&[
        "observe",
        "--from-pod",
        "default/tiefighter",
        "-t",
        "policy-verdict",
        "--last",
        "1",
        "-o",
        "json",
    ]);
    let value: serde_json::Value = serde_json::from_str(verdict.trim()).expect("one JSON line");
    let allowed_by = &value["flow"]["ingress_allowed_by"][0];
    assert_eq!(allowed_by["name"], "rule1", "{verdict}");
    assert_eq!(allowed_by["namespace"], "default", "{verdict}");
    assert_eq!(allowed_by["kind"], "CiliumNetworkPolicy", "{verdict}");

    // `--not` excludes: no forwarded flow is left among xwing's.
    let not_forwarded = node.myelin_ok(&[
        "observe",
        "--from-pod",
        "default/xwing",
        "--not",
        "--verdict",
        "FORWARDED",
    ]);
    assert!(
        !not_forwarded.is_empty() && !not_forwarded.contains("FORWARDED"),
        "{not_forwarded}"
    );
    let status = node.myelin_ok(&["observe", "status"]);
    assert!(
        status.contains("Healthcheck (via unix://") && status.contains("Connected Nodes: 1/1"),
        "{status}"
    );
}

#[test]
fn sleep_httpbin_allowed_and_dns_egress_blocked() {
    let node = Embedded::up("sleep-httpbin");
    node.myelin_ok(&[
        "apply",
        "-f",
        &examples()
            .join("sleep-httpbin/policy-allow-sleep")
            .display()
            .to_string(),
    ]);
    assert_eq!(
        probe(&node, "foo/sleep", "foo/httpbin", "80/TCP"),
        "allowed"
    );
    let allowed = observe_until(
        &node,
        &[
            "observe",
            "--to-pod",
            "foo/httpbin",
            "--verdict",
            "FORWARDED",
            "-t",
            "trace:to-endpoint",
        ],
        |out| out.contains("to-endpoint FORWARDED"),
    );
    assert!(
        normalise(&allowed).contains(
            "foo/sleep:PORT (ID:N) -> foo/httpbin:80 (ID:N) to-endpoint FORWARDED (TCP Flags: SYN)"
        ),
        "{allowed}"
    );

    // The Kubernetes docs' default deny egress, alone: sleep's DNS queries are blocked.
    let scratch = std::env::temp_dir().join(format!("{}-deny-egress.yaml", node.name()));
    std::fs::write(
        &scratch,
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default-deny-egress\n  namespace: foo\nspec:\n  podSelector: {}\n  policyTypes:\n  - Egress\n",
    )
    .expect("write the policy");
    let applied = node.myelin(&["apply", "-f", &scratch.display().to_string()]);
    let _ = std::fs::remove_file(&scratch);
    assert!(applied.status.success(), "{}", describe(&applied));
    assert_eq!(
        probe(&node, "foo/sleep", "kube-system/coredns", "53/UDP"),
        "denied"
    );
    let blocked = observe_until(
        &node,
        &[
            "observe",
            "--from-pod",
            "foo/sleep",
            "--to-port",
            "53",
            "--verdict",
            "DROPPED",
        ],
        |out| out.contains("Policy denied"),
    );
    let blocked = normalise(&blocked);
    assert!(
        blocked.contains("foo/sleep:PORT (ID:N) -> kube-system/coredns:53 (ID:N) policy-verdict:none EGRESS DENIED (UDP)"),
        "{blocked}"
    );
    assert!(
        blocked.contains(
            "foo/sleep:PORT (ID:N) <> kube-system/coredns:53 (ID:N) Policy denied DROPPED (UDP)"
        ),
        "{blocked}"
    );
}

#[test]
fn http_proxy_flows_with_l7_filters() {
    let node = Embedded::up("starwars");
    node.myelin_ok(&[
        "apply",
        "-f",
        &examples().join("starwars/policy-l7").display().to_string(),
    ]);
    let deathstar = "default/deathstar-c74d84667-cx5kp";
    let host = ["--http-host", "deathstar.default.svc.cluster.local"];
    let land = [
        &[
            "--http-method",
            "POST",
            "--http-path",
            "/v1/request-landing",
        ][..],
        &host,
    ]
    .concat();
    let exhaust = [
        &["--http-method", "PUT", "--http-path", "/v1/exhaust-port"][..],
        &host,
    ]
    .concat();
    assert_eq!(
        probe_with(&node, "default/tiefighter", deathstar, "80/TCP", &land),
        "allowed"
    );
    assert_eq!(
        probe_with(&node, "default/tiefighter", deathstar, "80/TCP", &exhaust),
        "denied"
    );
    let flows = observe_until(
        &node,
        &[
            "observe",
            "--pod",
            "default/tiefighter",
            "--protocol",
            "http",
        ],
        |out| out.lines().count() >= 4,
    );
    expect![[r#"
        TIME: default/tiefighter:PORT (ID:N) -> default/deathstar-c74d84667-cx5kp:80 (ID:N) http-request FORWARDED (HTTP/1.1 POST http://deathstar.default.svc.cluster.local/v1/request-landing)
        TIME: default/tiefighter:PORT (ID:N) <- default/deathstar-c74d84667-cx5kp:80 (ID:N) http-response FORWARDED (HTTP/1.1 200 Nms (POST http://deathstar.default.svc.cluster.local/v1/request-landing))
        TIME: default/tiefighter:PORT (ID:N) -> default/deathstar-c74d84667-cx5kp:80 (ID:N) http-request DROPPED (HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)
        TIME: default/tiefighter:PORT (ID:N) <- default/deathstar-c74d84667-cx5kp:80 (ID:N) http-response FORWARDED (HTTP/1.1 403 Nms (PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port))
    "#]]
    .assert_eq(&normalise(&flows));

    let forbidden = node.myelin_ok(&["observe", "--http-status", "403", "-o", "json"]);
    let value: serde_json::Value = serde_json::from_str(forbidden.trim()).expect("one JSON line");
    let flow = &value["flow"];
    assert_eq!(flow["Type"], "L7", "{forbidden}");
    assert_eq!(flow["l7"]["type"], "RESPONSE", "{forbidden}");
    assert_eq!(flow["l7"]["http"]["code"], 403, "{forbidden}");
    assert_eq!(flow["l7"]["http"]["method"], "PUT", "{forbidden}");
    assert_eq!(flow["is_reply"], true, "{forbidden}");
    assert_eq!(flow["traffic_direction"], "INGRESS", "{forbidden}");
    assert_eq!(flow["destination"]["pod_name"], "tiefighter", "{forbidden}");
    assert_eq!(
        flow["source"]["pod_name"], "deathstar-c74d84667-cx5kp",
        "{forbidden}"
    );

    let denied = node.myelin_ok(&[
        "observe",
        "--http-method",
        "PUT",
        "--verdict",
        "DROPPED",
        "-t",
        "l7",
    ]);
    assert!(
        normalise(&denied).contains(
            "default/tiefighter:PORT (ID:N) -> default/deathstar-c74d84667-cx5kp:80 (ID:N) http-request DROPPED (HTTP/1.1 PUT http://deathstar.default.svc.cluster.local/v1/exhaust-port)"
        ),
        "{denied}"
    );
}

#[test]
fn dns_proxy_flows() {
    let node = Embedded::up("mediabot");
    let scratch = std::env::temp_dir().join(format!("{}-dns-rules.yaml", node.name()));
    std::fs::write(
        &scratch,
        r#"apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: dns-api-only
spec:
  endpointSelector:
    matchLabels:
      class: mediabot
  egress:
  - toEndpoints:
    - matchLabels:
        "k8s:io.kubernetes.pod.namespace": kube-system
        "k8s:k8s-app": kube-dns
    toPorts:
    - ports:
      - port: "53"
        protocol: ANY
      rules:
        dns:
        - matchName: "api.github.com"
"#,
    )
    .expect("write the policy");
    let applied = node.myelin(&["apply", "-f", &scratch.display().to_string()]);
    let _ = std::fs::remove_file(&scratch);
    assert!(applied.status.success(), "{}", describe(&applied));
    let dns = "kube-system/coredns";
    // No upstream: kube-dns answers NXDOMAIN, which the proxy lets through.
    probe_with(
        &node,
        "default/mediabot",
        dns,
        "53/UDP",
        &["--dns", "api.github.com"],
    );
    assert_eq!(
        probe_with(
            &node,
            "default/mediabot",
            dns,
            "53/UDP",
            &["--dns", "support.github.com"]
        ),
        "denied"
    );
    // The same over TCP, which the proxy takes on the same port (a resolver retries a
    // truncated answer over TCP).
    assert_eq!(
        probe_with(
            &node,
            "default/mediabot",
            dns,
            "53/TCP",
            &["--dns", "api.github.com"]
        ),
        "allowed"
    );
    assert_eq!(
        probe_with(
            &node,
            "default/mediabot",
            dns,
            "53/TCP",
            &["--dns", "support.github.com"]
        ),
        "denied"
    );
    let flows = observe_until(
        &node,
        &["observe", "--pod", "default/mediabot", "--protocol", "dns"],
        |out| out.lines().count() >= 6,
    );
    expect![[r#"
        TIME: default/mediabot:PORT (ID:N) -> kube-system/coredns:53 (ID:N) dns-request proxy FORWARDED (DNS Query api.github.com. A)
        TIME: default/mediabot:PORT (ID:N) <- kube-system/coredns:53 (ID:N) dns-response proxy FORWARDED (DNS Answer RCode: Non-Existent Domain TTL: 0 (Proxy api.github.com. A))
        TIME: default/mediabot:PORT (ID:N) -> kube-system/coredns:53 (ID:N) dns-request proxy DROPPED (DNS Query support.github.com. A)
    "#]]
    .assert_eq(&normalise(&flows));
    // Over TCP the same three flows: the proxy answered REFUSED, not silence.
    let json = node.myelin_ok(&[
        "observe",
        "--pod",
        "default/mediabot",
        "--protocol",
        "dns",
        "-o",
        "json",
    ]);
    let over_tcp: Vec<String> = json
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .filter(|v| !v["flow"]["l4"]["TCP"].is_null())
        .map(|v| v["flow"]["Summary"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        over_tcp,
        [
            "DNS Query api.github.com. A",
            "DNS Answer RCode: Non-Existent Domain TTL: 0 (Proxy api.github.com. A)",
            "DNS Query support.github.com. A",
        ],
        "{json}"
    );
}

fn prost_now() -> prost_types::Timestamp {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970");
    prost_types::Timestamp {
        seconds: i64::try_from(now.as_secs()).expect("fits"),
        nanos: i32::try_from(now.subsec_nanos()).expect("fits"),
    }
}
