//! Apply-to-enforced latency: an embedded node with 100 local endpoints (real namespaces
//! through myelin-cni) and 10,000 remote pods (distinct labels, `status.podIP` outside the
//! node's CIDR, so each has an identity and an ipcache row). Each round changes one policy
//! that selects every local endpoint (a new peer identity and port) and measures from sending
//! it until the new entry is in the pinned kernel policy map for all 100 endpoints, polled
//! through `bpf` handles opened from the pins, not through the agent.
//!
//! Two series: the agent API directly (the request `myelin apply` sends), and the `myelin
//! apply -f` command as a user runs it (process start included).
//!
//! Needs root and the bench-profile binaries: `cargo build --profile bench --bins`, then
//! `cargo bench -p integration --bench apply_latency [-- --applies 300 --cli-applies 50]`.

#![expect(clippy::print_stdout, reason = "a bench binary prints its figures")]

#[path = "support/node.rs"]
#[allow(
    dead_code,
    reason = "shared with the datapath bench, which uses the rest"
)]
mod node;
#[path = "support/stats.rs"]
#[allow(
    dead_code,
    reason = "shared with the datapath bench, which uses the rest"
)]
mod stats;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use bpf::{Datapath, Direction, L4, Policy, PolicyKey, Verdict};
use schema::agent_api::{self, Manifest, Request, Response};

use node::{Node, Scratch, bin_dir};
use stats::{Clock, machine, median, option, quantile};

/// How long one change may take before the benchmark gives up on it.
const GIVE_UP: Duration = Duration::from_secs(30);

fn main() {
    let local: usize = option("endpoints", 100);
    let remote: usize = option("identities", 10_000);
    let applies: usize = option("applies", 300);
    let cli_applies: usize = option("cli-applies", 50);
    let tag = format!("mylat{}", std::process::id());
    println!(
        "apply-to-enforced latency: {local} local endpoints, {remote} remote pod identities, \
         {applies} applies through the agent API, {cli_applies} through `myelin apply -f`"
    );
    println!("machine: {}", machine());
    println!("figures are provisional unless the machine was otherwise idle");

    let dir = Scratch::new(&format!("{tag}-manifests"));
    std::fs::write(dir.0.join("local.yaml"), local_pods(local)).expect("write local pods");
    let start = Clock::now();
    let node = Node::up(&dir.0, &tag);
    println!(
        "myelin up with {local} pods: {:.1} s (agent logs in {})",
        start.elapsed().as_secs_f64(),
        node.run_dir().join("logs").display()
    );
    assert_eq!(node.pods.len(), local, "myelin up started every pod");
    let first = node.pod("default/local-0");
    println!(
        "local pods from {} ({}), all enforcing ingress",
        first.ipv4,
        first.netns.display()
    );
    let socket = node.run_dir().join("agent.sock");

    let start = Clock::now();
    let answer = request(
        &socket,
        &Request::Apply(Manifest {
            source: "remote.yaml".to_owned(),
            text: remote_pods(remote),
            wait: true,
            traceparent: None,
        }),
    );
    assert!(matches!(answer, Response::Applied(_)), "{answer:?}");
    println!(
        "{remote} remote pods applied and enforced: {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let identities = remote_identities(&socket);
    assert_eq!(identities.len(), remote, "every remote pod has an identity");
    let endpoints = local_endpoints(&socket);
    assert_eq!(endpoints.len(), local, "every local pod is an endpoint");
    let total = match request(&socket, &Request::Status) {
        Response::Status(status) => status.identities,
        other => panic!("status: {other:?}"),
    };
    println!("agent: {total} identities, {} endpoints", endpoints.len());

    let datapath = Datapath::open(node.pin_dir()).expect("open the pinned datapath");
    let policy = datapath.policy().expect("the pinned policy map");
    let change = |round: usize| {
        let peer = (round * 7919) % remote;
        let port = 10_000 + u16::try_from(round).expect("fewer than 50,000 rounds");
        let keys: Vec<PolicyKey> = endpoints
            .iter()
            .map(|&endpoint_id| PolicyKey {
                endpoint_id,
                direction: Direction::Ingress,
                identity: identities[&peer],
                l4: L4::port(L4::TCP, port),
            })
            .collect();
        (policy_yaml(peer, port), keys)
    };

    // Warm-up: the first policy creates the object and fills the agent's caches.
    for round in 0..5 {
        let (text, keys) = change(round);
        api_apply(&socket, &policy, text, &keys);
    }
    let mut api = Vec::new();
    for round in 5..5 + applies {
        let (text, keys) = change(round);
        api.push(api_apply(&socket, &policy, text, &keys));
    }
    let file = dir.0.join("policy.yaml");
    let mut cli = Vec::new();
    for round in 5 + applies..5 + applies + cli_applies {
        let (text, keys) = change(round);
        std::fs::write(&file, text).expect("write the policy");
        cli.push(cli_apply(&node, &file, &policy, &keys));
    }

    println!();
    report("agent API, until in the kernel map", &api, |t| t.map);
    report(
        "agent API, until the agent answers (wait: true)",
        &api,
        |t| t.answer,
    );
    report("`myelin apply -f`, until in the kernel map", &cli, |t| {
        t.map
    });
    report("`myelin apply -f`, until the command exits", &cli, |t| {
        t.answer
    });
    println!("goal (issue 4): p50 < 10 ms and p99 < 100 ms until in the kernel map");
    println!();
    println!("per apply, agent API, ms until in the kernel map:");
    print_rows(&api.iter().map(|t| millis(t.map)).collect::<Vec<_>>());
    println!("per apply, `myelin apply -f`, ms until in the kernel map:");
    print_rows(&cli.iter().map(|t| millis(t.map)).collect::<Vec<_>>());
}

/// One change: from sending it until every key is in the map, and until the answer.
#[derive(Clone, Copy)]
struct Timing {
    map: Duration,
    answer: Duration,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(what: &str, timings: &[Timing], pick: impl Fn(&Timing) -> Duration) {
    if timings.is_empty() {
        return;
    }
    let ms: Vec<f64> = timings.iter().map(|t| millis(pick(t))).collect();
    println!(
        "{what} ({} applies): p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        ms.len(),
        median(&ms),
        quantile(&ms, 0.9),
        quantile(&ms, 0.99),
        quantile(&ms, 1.0)
    );
}

fn print_rows(ms: &[f64]) {
    for row in ms.chunks(10) {
        let mut line = String::new();
        for v in row {
            let _ = write!(line, "{v:8.2}");
        }
        println!("{line}");
    }
}

/// Sends the policy through the agent API (as `myelin apply` does, waiting for enforcement)
/// on another thread, and polls the kernel map here meanwhile.
fn api_apply(socket: &Path, policy: &Policy, text: String, keys: &[PolicyKey]) -> Timing {
    let start = Clock::now();
    std::thread::scope(|scope| {
        let answered = scope.spawn(|| {
            let response = request(
                socket,
                &Request::Apply(Manifest {
                    source: "policy.yaml".to_owned(),
                    text,
                    wait: true,
                    traceparent: None,
                }),
            );
            assert!(matches!(response, Response::Applied(_)), "{response:?}");
            start.elapsed()
        });
        let map = wait_in_map(policy, keys, start);
        let answer = answered.join().expect("the apply thread");
        Timing { map, answer }
    })
}

/// Runs `myelin apply -f FILE` and polls the kernel map until it holds every key.
fn cli_apply(node: &Node, file: &Path, policy: &Policy, keys: &[PolicyKey]) -> Timing {
    let start = Clock::now();
    let mut child = Command::new(bin_dir().join("myelin"))
        .args(["apply", "-f"])
        .arg(file)
        .env("MYELIN_RUN_DIR", node.run_dir())
        .stdout(Stdio::null())
        .spawn()
        .expect("run myelin apply");
    let map = wait_in_map(policy, keys, start);
    let status = child.wait().expect("wait for myelin apply");
    let answer = start.elapsed();
    assert!(
        status.success(),
        "myelin apply -f {}: {status}",
        file.display()
    );
    Timing { map, answer }
}

/// Polls until every key's lookup allows; the time since `start`.
fn wait_in_map(policy: &Policy, keys: &[PolicyKey], start: Clock) -> Duration {
    let mut missing: Vec<&PolicyKey> = keys.iter().collect();
    loop {
        missing.retain(|key| {
            let value = policy.lookup(key).expect("policy map lookup");
            value.is_none_or(|v| v.verdict != Verdict::Allow)
        });
        let elapsed = start.elapsed();
        if missing.is_empty() {
            return elapsed;
        }
        assert!(
            elapsed < GIVE_UP,
            "{} of {} entries still missing after {elapsed:?}, e.g. {}",
            missing.len(),
            keys.len(),
            missing[0]
        );
        std::thread::yield_now();
    }
}

/// One request on the agent's socket, one answer.
fn request(socket: &Path, request: &Request) -> Response {
    let mut stream = UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("connect to {}: {e}", socket.display()));
    stream
        .write_all(&agent_api::encode_line(request))
        .expect("send the request");
    let mut line = Vec::new();
    BufReader::new(stream)
        .read_until(b'\n', &mut line)
        .expect("read the answer");
    agent_api::decode_line("response", &line).expect("decode the answer")
}

/// Remote pod number -> its identity, from `myelin identity list`'s request.
fn remote_identities(socket: &Path) -> BTreeMap<usize, u32> {
    let Response::Identities(list) = request(socket, &Request::IdentityList) else {
        panic!("identity list");
    };
    list.identities
        .iter()
        .filter_map(|row| {
            let n = row
                .labels
                .iter()
                .find_map(|l| l.strip_prefix("k8s:pod=remote-"))?;
            Some((n.parse().ok()?, row.id))
        })
        .collect()
}

/// The endpoint ids of the local pods.
fn local_endpoints(socket: &Path) -> Vec<u32> {
    let Response::Endpoints(list) = request(socket, &Request::EndpointList) else {
        panic!("endpoint list");
    };
    list.endpoints
        .iter()
        .filter(|row| row.status == "ready" && row.ingress_enforcement)
        .map(|row| u32::from(row.id))
        .collect()
}

/// Pods with distinct labels and no ports; a policy of their own puts them into ingress
/// enforcement, so every endpoint has policy entries from the start.
fn local_pods(n: usize) -> String {
    let mut text = String::from(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: bench-base\n\
         spec:\n  endpointSelector:\n    matchLabels:\n      role: local\n  ingress:\n  \
         - fromEndpoints:\n    - matchLabels:\n        role: local\n",
    );
    for i in 0..n {
        let _ = write!(
            text,
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: local-{i}\n  labels:\n    \
             role: local\n    pod: local-{i}\nspec:\n  containers:\n  - name: idle\n    \
             image: none\n"
        );
    }
    text
}

/// Pods of other nodes: each its own labels (so its own identity) and an address outside the
/// node's pod CIDR (so an ipcache row and no namespace here).
fn remote_pods(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let _ = write!(
            text,
            "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: remote-{i}\n  labels:\n    \
             role: remote\n    pod: remote-{i}\nspec:\n  containers:\n  - name: idle\n    \
             image: none\nstatus:\n  podIP: 10.250.{}.{}\n",
            i / 250,
            i % 250 + 1
        );
    }
    text
}

/// The policy every round changes: every local endpoint admits one remote pod on one port.
fn policy_yaml(peer: usize, port: u16) -> String {
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata:\n  name: bench-latency\n\
         spec:\n  endpointSelector:\n    matchLabels:\n      role: local\n  ingress:\n  \
         - fromEndpoints:\n    - matchLabels:\n        pod: remote-{peer}\n    toPorts:\n    \
         - ports:\n      - port: \"{port}\"\n        protocol: TCP\n"
    )
}
