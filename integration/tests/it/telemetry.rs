//! The agent's telemetry seen from outside, as an operator sees it: a real Prometheus (the
//! Debian package) scrapes `--prometheus-serve-addr` and is queried through its HTTP API, and
//! an OTLP/gRPC receiver built on the collector's own `TraceService` definitions receives the
//! spans of `myelin apply` and of the agent. One agent serves both halves to keep CI short.
//!
//! The agent runs in a node namespace; Prometheus runs there too, and the receiver listens
//! there (for the agent) and in the test's namespace (for the CLI).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::cni::{Node, binary, container_id};
use crate::netns::Netns;

/// How long anything may take to show up (Prometheus scrapes every second).
const PATIENCE: Duration = Duration::from_secs(60);

#[expect(
    clippy::disallowed_methods,
    reason = "polling other processes; no runtime on this thread"
)]
fn nap() {
    std::thread::sleep(Duration::from_millis(200));
}

/// Polls `f` until it returns `Some`, or panics naming `what` and the last value seen.
fn eventually<T, L: std::fmt::Debug>(what: &str, mut f: impl FnMut() -> Result<T, L>) -> T {
    let mut last = None;
    for _ in 0..(PATIENCE.as_millis() / 200) {
        match f() {
            Ok(value) => return value,
            Err(seen) => last = Some(seen),
        }
        nap();
    }
    panic!("{what}: not within {PATIENCE:?}; last seen {last:?}");
}

/// A free port on the loopback of `netns`.
fn free_port(netns: &Netns) -> u16 {
    netns.run_in(|| {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        listener.local_addr().expect("addr").port()
    })
}

/// `GET path` over HTTP/1.0 inside `netns`: (head, body).
fn http_get(netns: &Netns, port: u16, path: &str) -> Option<(String, String)> {
    netns.run_in(|| {
        let mut stream = TcpStream::connect_timeout(
            &SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            Duration::from_secs(2),
        )
        .ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        Some((head.to_owned(), body.to_owned()))
    })
}

/// A child process killed (and reaped) on drop.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prometheus in `netns`, scraping the agent every second, its data in `dir`.
struct Prometheus {
    netns_port: u16,
    _process: Process,
}

impl Prometheus {
    fn start(node: &Node, target_port: u16) -> Prometheus {
        let dir = node.dir().join("prometheus");
        std::fs::create_dir_all(&dir).expect("prometheus dir");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
                 - job_name: myelin-agent\n    static_configs:\n      \
                 - targets: ['127.0.0.1:{target_port}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let port = free_port(&node.netns);
        let log = std::fs::File::create(dir.join("log")).expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", node.netns.name(), "prometheus"])
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus (Debian package `prometheus`)");
        Prometheus {
            netns_port: port,
            _process: Process(child),
        }
    }

    /// The value of the single series `query` selects, once Prometheus has one.
    fn value(&self, netns: &Netns, query: &str) -> Result<f64, String> {
        let path = format!("/api/v1/query?query={}", percent_encode(query));
        let (_, body) = http_get(netns, self.netns_port, &path).ok_or("no answer")?;
        let json: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        let result = json["data"]["result"].as_array().ok_or(body.clone())?;
        match result.as_slice() {
            [series] => series["value"][1]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or(body),
            _ => Err(body),
        }
    }

    /// Waits until `query`'s value satisfies `ok`.
    fn wait(&self, netns: &Netns, query: &str, ok: impl Fn(f64) -> bool) -> f64 {
        eventually(query, || match self.value(netns, query) {
            Ok(v) if ok(v) => Ok(v),
            Ok(v) => Err(v.to_string()),
            Err(e) => Err(e),
        })
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A span as received, with the `service.name` of its resource.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    span: Span,
}

impl Received {
    fn attr(&self, key: &str) -> Option<&AnyValue> {
        self.span
            .attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    fn str(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(AnyValue::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    fn int(&self, key: &str) -> Option<i64> {
        match self.attr(key) {
            Some(AnyValue::IntValue(i)) => Some(*i),
            _ => None,
        }
    }
}

/// The collector's trace service, keeping every span it is sent.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        for resource_spans in request.into_inner().resource_spans {
            let service = resource_spans
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(AnyValue::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    spans.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// The OTLP/gRPC receiver: one listener in the test's namespace, one in the node's, served on
/// a thread of their own until drop.
struct Receiver {
    collector: Collector,
    host_port: u16,
    node_port: u16,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start(node_netns: &Netns) -> Receiver {
        let host = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind receiver");
        let node = node_netns.run_in(|| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind"));
        let port = |l: &TcpListener| l.local_addr().expect("addr").port();
        let (host_port, node_port) = (port(&host), port(&node));
        let collector = Collector::default();
        let stop = CancellationToken::new();
        let thread = std::thread::spawn({
            let collector = collector.clone();
            let stop = stop.clone();
            move || serve(collector, [host, node], stop)
        });
        Receiver {
            collector,
            host_port,
            node_port,
            stop,
            thread: Some(thread),
        }
    }

    fn spans(&self) -> Vec<Received> {
        self.collector
            .spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(collector: Collector, listeners: [TcpListener; 2], stop: CancellationToken) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("receiver runtime");
    runtime.block_on(async move {
        let servers = listeners.map(|listener| {
            listener.set_nonblocking(true).expect("nonblocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector.clone()))
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    stop.clone().cancelled_owned(),
                )
        });
        let [a, b] = servers;
        let (a, b) = tokio::join!(a, b);
        a.expect("receiver (test namespace)");
        b.expect("receiver (node namespace)");
    });
}

fn manifest(dir: &Path, pod: &str) -> std::path::PathBuf {
    let path = dir.join("web.yaml");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {pod}\n  labels:\n    app: web\n\
             spec:\n  containers:\n  - name: web\n    image: web\n---\n\
             apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: web\n\
             spec:\n  endpointSelector:\n    matchLabels:\n      app: web\n  ingress:\n  \
             - fromEndpoints:\n    - matchLabels:\n        app: client\n    toPorts:\n    \
             - ports:\n      - port: \"80\"\n        protocol: TCP\n"
        ),
    )
    .expect("write manifest");
    path
}

/// `deploy/`'s scrape config is valid and its dashboard queries only families the agent
/// serves (with `--hubble-metrics` on).
fn deploy_files_use_what_the_agent_serves(exposition: &str) {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    let check = Command::new("promtool")
        .args(["check", "config"])
        .arg(deploy.join("prometheus/prometheus.yml"))
        .output()
        .expect("run promtool (Debian package `prometheus`)");
    assert!(check.status.success(), "promtool: {check:?}");
    let text = std::fs::read_to_string(deploy.join("grafana/myelin-agent.json"))
        .expect("read the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard is JSON");
    let mut used = Vec::new();
    for target in dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
    {
        let expr = target["expr"].as_str().expect("expr");
        for (at, _) in expr
            .match_indices("cilium_")
            .chain(expr.match_indices("myelin_"))
            .chain(expr.match_indices("hubble_"))
        {
            let name: String = expr[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name)
                .to_owned();
            used.push(family);
        }
    }
    assert!(used.len() >= 12, "{used:?}");
    for family in used {
        assert!(
            exposition.contains(&format!("# TYPE {family} ")),
            "the dashboard queries {family}, which the agent does not serve"
        );
    }
}

#[test]
fn prometheus_scrapes_the_agent_and_an_apply_is_traced_to_its_map_writes() {
    let mut node = Node::without_agent();
    let receiver = Receiver::start(&node.netns);
    let metrics_port = free_port(&node.netns);
    node.start_agent_with(
        &[
            "--prometheus-serve-addr".to_owned(),
            format!("127.0.0.1:{metrics_port}"),
            "--hubble-metrics".to_owned(),
            "drop,tcp,flow,port-distribution,icmp,dns,http".to_owned(),
        ],
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{}", receiver.node_port),
            ),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ],
    );
    let prometheus = Prometheus::start(&node, metrics_port);

    // The exposition itself: the 0.0.4 text format's content type, Cilium's names.
    let (head, body) = http_get(&node.netns, metrics_port, "/metrics").expect("scrape");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    deploy_files_use_what_the_agent_serves(&body);
    for family in [
        "# TYPE cilium_endpoint_state gauge",
        "# TYPE cilium_policy_implementation_delay histogram",
        "cilium_bpf_map_pressure{map_name=\"policy\"}",
        "cilium_statedb_table_objects{table=\"objects\"}",
        "myelin_reconciler_duration_seconds_bucket{reconciler=\"bpf-policy\",le=\"+Inf\"}",
    ] {
        assert!(body.contains(family), "no {family:?} in:\n{body}");
    }

    // Something to measure: a pod, then its Pod object and a policy selecting it.
    let pod = Netns::new();
    let web = node
        .cni("ADD", &container_id(), &pod, &node.config())
        .address();
    let apply = Command::new(binary("myelin"))
        .args(["apply", "-f"])
        .arg(manifest(node.dir(), pod.name()))
        .env("MYELIN_RUN_DIR", node.dir())
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{}", receiver.host_port),
        )
        .env("OTEL_SERVICE_NAME", "myelin-it-cli")
        .output()
        .expect("run myelin apply");
    assert!(apply.status.success(), "myelin apply: {apply:?}");

    let netns = &node.netns;
    prometheus.wait(netns, "cilium_policy", |v| v == 1.0);
    prometheus.wait(netns, "cilium_endpoint", |v| v == 1.0);
    prometheus.wait(
        netns,
        r#"cilium_endpoint_state{endpoint_state="ready"}"#,
        |v| v == 1.0,
    );
    prometheus.wait(netns, "cilium_identity", |v| v >= 1.0);
    prometheus.wait(netns, "cilium_policy_max_revision", |v| v >= 1.0);
    prometheus.wait(
        netns,
        r#"cilium_statedb_table_objects{table="objects"}"#,
        |v| v == 2.0,
    );
    prometheus.wait(
        netns,
        r#"cilium_bpf_map_pressure{map_name="policy"}"#,
        |v| v > 0.0,
    );
    prometheus.wait(netns, "cilium_policy_implementation_delay_count", |v| {
        v >= 1.0
    });
    prometheus.wait(
        netns,
        r#"myelin_reconciler_rounds_total{reconciler="bpf-policy",reason="change"}"#,
        |v| v >= 1.0,
    );
    prometheus.wait(
        netns,
        r#"myelin_reconciler_errors_total{reconciler="bpf-policy"}"#,
        |v| v == 0.0,
    );

    // A drop the test causes: a pod that is not `app: client` connects to the web pod, whose
    // policy admits only clients; Hubble's drop counter goes through Prometheus.
    let stranger = Netns::new();
    node.cni("ADD", &container_id(), &stranger, &node.config())
        .ok();
    let refused = stranger.run_in(|| {
        TcpStream::connect_timeout(&SocketAddr::from((web, 80)), Duration::from_millis(500))
    });
    assert!(refused.is_err(), "the stranger reached the web pod");
    prometheus.wait(
        netns,
        r#"hubble_drop_total{reason="POLICY_DENIED",protocol="TCP"}"#,
        |v| v >= 1.0,
    );
    prometheus.wait(
        netns,
        r#"hubble_flows_processed_total{type="PolicyVerdict",verdict="DROPPED"}"#,
        |v| v >= 1.0,
    );
    // Hubble counts TCP flags of forwarded flows only: a SYN the policy lets through, from the
    // node itself (`reserved:host` passes default deny, as in Cilium). The node's namespace
    // has no address of its own here, so it gets the pod CIDR's router address, as `myelin
    // up` gives it. Nothing listens on the pod, which answers RST.
    let out = Command::new("ip")
        .args([
            "-n",
            netns.name(),
            "addr",
            "add",
            "10.244.0.1/32",
            "dev",
            "lo",
        ])
        .output()
        .expect("run ip");
    assert!(out.status.success(), "ip addr add: {out:?}");
    let answered = netns.run_in(|| {
        TcpStream::connect_timeout(&SocketAddr::from((web, 80)), Duration::from_secs(2))
    });
    assert!(
        matches!(&answered, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "the node's SYN should meet the pod's RST: {answered:?}"
    );
    prometheus.wait(netns, r#"hubble_tcp_flags_total{flag="SYN"}"#, |v| v >= 1.0);

    // The trace: the CLI's span, the agent's request, the derivation round, the bpf-policy
    // reconcile round, all one trace id, each the child of the one before.
    let find = |spans: &[Received], pred: &dyn Fn(&Received) -> bool| {
        spans.iter().find(|s| pred(s)).cloned()
    };
    let (cli, api, derive, reconcile) = eventually("the apply's trace", || {
        let spans = receiver.spans();
        let cli = find(&spans, &|s| {
            s.service == "myelin-it-cli" && s.span.name == "apply"
        })
        .ok_or("no apply span")?;
        let trace = &cli.span.trace_id;
        let child = |parent: &Received, name: &str| {
            find(&spans, &|s| {
                s.span.trace_id == *trace
                    && s.span.parent_span_id == parent.span.span_id
                    && s.span.name == name
            })
        };
        let api = child(&cli, "api").ok_or("no api span in the trace")?;
        let derive = child(&api, "derive").ok_or("no derive span in the trace")?;
        let reconcile = find(&spans, &|s| {
            s.span.trace_id == *trace
                && s.span.parent_span_id == derive.span.span_id
                && s.str("reconciler") == Some("bpf-policy")
        })
        .ok_or("no bpf-policy reconcile span in the trace")?;
        Ok::<_, &str>((cli, api, derive, reconcile))
    });
    assert_eq!(cli.int("files"), Some(1), "{cli:?}");
    assert_eq!(api.service, "myelin-agent");
    assert_eq!(api.str("request"), Some("apply"));
    let revision = api.int("rev.objects").expect("api span: rev.objects");
    assert_eq!(derive.str("derivation"), Some("policy-derivation"));
    let (from, to) = (
        derive.int("rev.objects.from").expect("rev.objects.from"),
        derive.int("rev.objects").expect("rev.objects"),
    );
    assert!(
        from < revision && revision <= to,
        "the derivation round covers objects revision {revision}: ({from}, {to}]"
    );
    assert!(derive.int("policy_entries.written") > Some(0), "{derive:?}");
    assert_eq!(derive.int("errors"), Some(0));
    assert_eq!(reconcile.span.name, "reconcile");
    assert_eq!(reconcile.str("table"), Some("policy-entries"));
    assert_eq!(reconcile.str("reason"), Some("change"));
    assert!(reconcile.int("deltas.insert") > Some(0), "{reconcile:?}");
    assert_eq!(reconcile.int("errors"), Some(0));
    let written = derive
        .int("rev.policy_entries")
        .expect("derive span: rev.policy_entries");
    let (rev_from, rev_to) = (
        reconcile.int("rev.from").expect("rev.from"),
        reconcile.int("rev.to").expect("rev.to"),
    );
    assert!(
        rev_from < written && written <= rev_to,
        "the reconcile round covers policy-entries revision {written}: ({rev_from}, {rev_to}]"
    );
}
