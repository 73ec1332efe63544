//! The L7 proxy on real traffic: an embedded node (`myelin up`, the real agent), a client and
//! a server pod, curl in the client.
//!
//! Egress: the client may only `GET /public` on the server's port 80. The datapath marks the
//! client's packets for the egress listener, TPROXY hands them to it, and the proxy decides
//! every request of the connection: 200 from the server (which sees the client's own address),
//! or Envoy's 403 `Access denied`; the server's other port stays dropped at L4.
//!
//! Ingress: the same rule on the server's side. The client's datapath decides the server's
//! ingress on local delivery and marks the connection for the ingress listener, which enforces
//! the server's rules.
//! After an agent restart the listeners keep their ports, which the pinned entries name.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Output;

use crate::embedded::{Embedded, describe};

const PODS: &str = "\
apiVersion: v1
kind: Pod
metadata: {name: client, labels: {app: client}}
spec:
  containers: [{name: curl, image: curl}]
---
apiVersion: v1
kind: Pod
metadata: {name: server, labels: {app: server}}
spec:
  containers: [{name: web, image: web, ports: [{containerPort: 80}, {containerPort: 8080}]}]
";

/// `direction` of the pod `app` may only take `GET /public` from (to) the other pod on 80.
fn get_public(direction: &str, app: &str, peers: &str, other: &str) -> String {
    format!(
        "\
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {{name: {app}-get-public}}
spec:
  endpointSelector: {{matchLabels: {{app: {app}}}}}
  {direction}:
  - {peers}: [{{matchLabels: {{app: {other}}}}}]
    toPorts:
    - ports: [{{port: \"80\", protocol: TCP}}]
      rules:
        http: [{{method: GET, path: /public}}]
"
    )
}

/// A scratch directory for manifests, removed on drop.
struct Manifests(PathBuf);

impl Manifests {
    fn new(name: &str, files: &[(&str, &str)]) -> Manifests {
        let dir = std::env::temp_dir().join(format!("myelin-it-l7-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create manifests dir");
        for (file, text) in files {
            std::fs::write(dir.join(file), text).expect("write manifest");
        }
        Manifests(dir)
    }
}

impl Drop for Manifests {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `curl -i` from the client: the status line, the client address the server saw and the
/// body, or the exit code if no answer came.
fn curl(node: &Embedded, urls: &[String]) -> String {
    let mut args = vec![
        "exec",
        "default/client",
        "--",
        "curl",
        "-s",
        "-i",
        "--max-time",
        "3",
    ];
    args.extend(urls.iter().map(String::as_str));
    let out = node.myelin(&args);
    summarize(&out)
}

fn summarize(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("HTTP/") {
            lines.push(line.to_owned());
        } else if let Some(client) = line.strip_prefix("x-myelin-client: ") {
            let ip = client.rsplit_once(':').map_or(client, |(ip, _)| ip);
            lines.push(format!("  server saw {ip}"));
        } else if line.starts_with("server: ") {
            lines.push(format!("  {line}"));
        } else if !line.is_empty() && !line.contains(':') {
            lines.push(format!("  body {line}"));
        }
    }
    if !out.status.success() {
        lines.push(format!("curl exit {:?}", out.status.code()));
    }
    lines.join("\n")
}

/// The proxy port of `endpoint`'s redirect entry, as `myelin bpf policy get` shows it.
fn redirect_port(node: &Embedded, ip: Ipv4Addr) -> u16 {
    let endpoints = node.myelin_ok(&["endpoint", "list"]);
    let id = endpoints
        .lines()
        .find(|l| l.contains(&format!(" {ip} ")))
        .and_then(|l| l.split_whitespace().next())
        .expect("the server is an endpoint");
    let policy = node.myelin_ok(&["bpf", "policy", "get", id]);
    policy
        .lines()
        .filter(|l| l.contains("80/TCP"))
        .find_map(|l| l.split_whitespace().nth(4)?.parse().ok())
        .filter(|port| *port != 0)
        .unwrap_or_else(|| panic!("no redirect entry with a proxy port:\n{policy}"))
}

#[test]
fn egress_http_rules_are_enforced_per_request_by_the_proxy() {
    let manifests = Manifests::new(
        &format!("egress-{}", std::process::id()),
        &[
            ("pods.yaml", PODS),
            (
                "policy.yaml",
                &get_public("egress", "client", "toEndpoints", "server"),
            ),
        ],
    );
    let node = Embedded::up_with(&manifests.0, &[]);
    let (_, client) = node.pod("default/client");
    let (_, server) = node.pod("default/server");
    let url = |path: &str| format!("http://{server}{path}");
    // Two requests on one keep-alive connection, then a request on the port with no rule.
    let got = [
        curl(&node, &[url("/public"), url("/private")]),
        curl(&node, &[url("/public?x=1")]),
        curl(&node, &[format!("http://{server}:8080/public")]),
    ]
    .join("\n")
    .replace(&client.to_string(), "CLIENT");
    expect_test::expect![[r#"
        HTTP/1.1 200 OK
          server saw CLIENT
          body default/server GET /public
        HTTP/1.1 403 Forbidden
          server: envoy
          body Access denied
        HTTP/1.1 403 Forbidden
          server: envoy
          body Access denied
        curl exit Some(28)"#]]
    .assert_eq(&got);
}

#[test]
fn ingress_http_rules_are_enforced_by_the_ingress_listener() {
    let manifests = Manifests::new(
        &format!("ingress-{}", std::process::id()),
        &[
            ("pods.yaml", PODS),
            (
                "policy.yaml",
                &get_public("ingress", "server", "fromEndpoints", "client"),
            ),
        ],
    );
    let node = Embedded::up_with(&manifests.0, &[]);
    let (_, client) = node.pod("default/client");
    let (_, server) = node.pod("default/server");
    let port = redirect_port(&node, server);
    let url = |path: &str| format!("http://{server}{path}");
    let check = |node: &Embedded| {
        curl(node, &[url("/public"), url("/private")]).replace(&client.to_string(), "CLIENT")
    };
    let expected = expect_test::expect![[r#"
        HTTP/1.1 200 OK
          server saw CLIENT
          body default/server GET /public
        HTTP/1.1 403 Forbidden
          server: envoy
          body Access denied"#]];
    expected.assert_eq(&check(&node));

    // A restarted agent binds the same ports again: the pinned entries stay right.
    let agent = node.instance().agent_pid;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(agent).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill the agent");
    let dir = manifests.0.display().to_string();
    let up = node.myelin(&["up", &dir, "--name", node.name()]);
    assert!(up.status.success(), "restart failed: {}", describe(&up));
    assert_eq!(redirect_port(&node, server), port);
    expected.assert_eq(&check(&node));
}
