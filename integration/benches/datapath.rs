//! Datapath cost: two pods talking through the node, once over plain veths without programs and
//! once wired by Myelin (agent, CNI plugin, both pods enforcing both directions under a policy
//! that allows the traffic), measured in one run, interleaved, the order alternating per round.
//!
//! Both topologies have the same shape: pod namespace - veth - node namespace (routing, proxy
//! ARP, a /32 route per pod) - veth - pod namespace. Figures: TCP throughput (iperf3 -J),
//! request/response rate (1-byte ping-pong on one TCP connection) and new connections per
//! second (connect, 1-byte exchange, close), each with the ratio Myelin/plain.
//!
//! Needs root and the bench-profile binaries: `cargo build --profile bench --bins`, then
//! `cargo bench -p integration --bench datapath [-- --rounds 5 --seconds 3 --only
//! throughput,req/resp,new-conn --detach true]` (`--detach` removes Myelin's programs: a control
//! run whose ratios should be 1). Everything it makes (namespaces, links, pins, processes) is
//! removed when it ends, also on a panic.

#![expect(clippy::print_stdout, reason = "a bench binary prints its figures")]

#[path = "support/node.rs"]
mod node;
#[path = "support/stats.rs"]
mod stats;

use std::fs::File;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sched::{CloneFlags, CpuSet, sched_setaffinity, setns};
use nix::unistd::Pid;

use node::{Node, Scratch};
use stats::{Clock, machine, median, option, quantile};

const IPERF_PORT: u16 = 5201;
const RR_PORT: u16 = 7000;
const CRR_PORT: u16 = 7001;
/// No rule allows it: a connection must time out under Myelin (and be refused on plain veths).
const DENIED_PORT: u16 = 7002;
const GATEWAY: &str = "169.254.1.1";

fn main() {
    let rounds: usize = option("rounds", 5);
    let seconds: f64 = option("seconds", 3.0);
    let tag = format!("mybench{}", std::process::id());
    println!("datapath benchmark: {rounds} rounds, {seconds} s per figure, interleaved");
    println!("machine: {}", machine());
    println!("figures are provisional unless the machine was otherwise idle");

    // The baseline: plain veths (the datapath's cost), or a Myelin node without Hubble (what
    // observability costs: no traces written, no flow pipeline reading them).
    let baseline: String = option("baseline", "plain".to_owned());
    let dir = Scratch::new(&format!("{tag}-manifests"));
    std::fs::write(dir.0.join("pods.yaml"), MANIFESTS).expect("write manifests");
    let myelin = Node::up(&dir.0, &format!("{tag}m"));
    let (plain, quiet) = match baseline.as_str() {
        "plain" => (Some(Plain::new(&format!("{tag}p"))), None),
        "no-hubble" => (
            None,
            Some(Node::up_with(
                &dir.0,
                &format!("{tag}q"),
                &["--hubble", "false"],
            )),
        ),
        other => panic!("--baseline {other}: expected plain or no-hubble"),
    };
    let base = match (&plain, &quiet) {
        (Some(plain), _) => Topology::plain(plain),
        (None, Some(quiet)) => Topology {
            label: "no-hubble",
            ..Topology::myelin(quiet)
        },
        (None, None) => unreachable!("one baseline is built"),
    };
    let topologies = [base, Topology::myelin(&myelin)];
    check_enforcing(&myelin);
    let detached: bool = option("detach", false);
    if detached {
        // A control: the same node with its programs' links removed, to tell the programs'
        // cost from any other difference between the two topologies.
        for pin in std::fs::read_dir(myelin.pin_dir().join("v1/links")).expect("link pins") {
            std::fs::remove_file(pin.expect("link pin").path()).expect("remove a link pin");
        }
        println!("--detach true: Myelin's programs are detached, both sides should be equal");
    }
    let topologies = topologies.map(|t| Topology {
        enforcing: t.enforcing && !detached,
        ..t
    });
    for t in &topologies {
        t.start_servers();
    }
    for t in &topologies {
        t.check_denied_port();
        t.warm_up();
    }
    println!(
        "{}:  {} -> {} ({})",
        topologies[0].label,
        topologies[0].client.display(),
        topologies[0].server,
        if plain.is_some() {
            "no programs"
        } else {
            "Myelin with --hubble false: no traces, no flow pipeline"
        }
    );
    println!(
        "myelin: {} -> {} (from_container/to_container on both host veths; agent logs in {})",
        topologies[1].client.display(),
        topologies[1].server,
        myelin.run_dir().display()
    );
    println!();
    println!(
        "{:<6} {:<12} {:<7} {:>16} {:>16} {:>7}",
        "round", "figure", "first", topologies[0].label, "myelin", "ratio"
    );
    let only: String = option("only", String::new());
    let mut figures: Vec<Series> = Figure::ALL
        .iter()
        .filter(|f| only.is_empty() || only.split(',').any(|name| name == f.name()))
        .map(|&f| Series::new(f))
        .collect();
    for round in 0..rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for series in &mut figures {
            let mut pair = [0.0; 2];
            for &i in &order {
                pair[i] = series.figure.measure(&topologies[i], seconds);
            }
            series.plain.push(pair[0]);
            series.myelin.push(pair[1]);
            println!(
                "{:<6} {:<12} {:<7} {:>16} {:>16} {:>7.3}",
                round + 1,
                series.figure.name(),
                topologies[order[0]].label,
                series.figure.show(pair[0]),
                series.figure.show(pair[1]),
                pair[1] / pair[0]
            );
        }
    }
    println!();
    println!(
        "summary: medians over {rounds} rounds; ratio = myelin/{} of the medians; per-round ratios min/median/max",
        topologies[0].label
    );
    println!(
        "{:<12} {:>16} {:>16} {:>7}   per-round ratio",
        "figure", topologies[0].label, "myelin", "ratio"
    );
    for series in &figures {
        let (plain, myelin) = (median(&series.plain), median(&series.myelin));
        let ratios: Vec<f64> = series
            .plain
            .iter()
            .zip(&series.myelin)
            .map(|(p, m)| m / p)
            .collect();
        println!(
            "{:<12} {:>16} {:>16} {:>7.3}   {:.3} / {:.3} / {:.3}",
            series.figure.name(),
            series.figure.show(plain),
            series.figure.show(myelin),
            myelin / plain,
            quantile(&ratios, 0.0),
            median(&ratios),
            quantile(&ratios, 1.0),
        );
    }
    if plain.is_some() {
        println!("goal (issue 4): ratio >= 0.95 on each figure");
    } else {
        println!("goal (issue 5): observability costs under 5% of new-conn (ratio >= 0.95)");
    }
}

/// Two pods that may talk on the three benchmark ports, and nothing else: each pod enforces
/// ingress and egress, so every packet crosses two programs.
const MANIFESTS: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: bench-client
  labels:
    app: bench-client
spec:
  containers:
  - name: client
    image: none
---
apiVersion: v1
kind: Pod
metadata:
  name: bench-server
  labels:
    app: bench-server
spec:
  containers:
  - name: iperf3
    image: none
    command: ["iperf3", "-s"]
    ports:
    - containerPort: 5201
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: bench-server
spec:
  endpointSelector:
    matchLabels:
      app: bench-server
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: bench-client
    toPorts:
    - ports:
      - port: "5201"
        protocol: TCP
      - port: "7000"
        protocol: TCP
      - port: "7001"
        protocol: TCP
  egress:
  - toEndpoints:
    - matchLabels:
        app: bench-client
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: bench-client
spec:
  endpointSelector:
    matchLabels:
      app: bench-client
  egress:
  - toEndpoints:
    - matchLabels:
        app: bench-server
    toPorts:
    - ports:
      - port: "5201"
        protocol: TCP
      - port: "7000"
        protocol: TCP
      - port: "7001"
        protocol: TCP
  ingress:
  - fromEndpoints:
    - matchLabels:
        app: bench-server
"#;

/// Both pods of the Myelin node must show ingress and egress enforcement, and both host veths
/// must have the programs' links pinned: otherwise the comparison would be plain vs plain.
fn check_enforcing(node: &Node) {
    let list = node.myelin_ok(&["endpoint", "list"]);
    for key in ["default/bench-client", "default/bench-server"] {
        let ip = node.pod(key).ipv4.to_string();
        let row: Vec<&str> = list
            .lines()
            .find(|line| line.split_whitespace().any(|cell| cell == ip))
            .unwrap_or_else(|| panic!("{key} ({ip}) is not in `myelin endpoint list`:\n{list}"))
            .split_whitespace()
            .collect();
        assert_eq!(
            (row[1], row[2], row.last().copied()),
            ("Enabled", "Enabled", Some("ready")),
            "{key} must enforce both directions:\n{list}"
        );
    }
    let links = std::fs::read_dir(node.pin_dir().join("v1/links"))
        .expect("the node's link pins")
        .count();
    assert!(
        links >= 4,
        "expected both programs on both host veths, found {links} link pins"
    );
}

#[derive(Clone, Copy)]
enum Figure {
    Throughput,
    RequestResponse,
    ConnectRequestResponse,
}

impl Figure {
    const ALL: [Figure; 3] = [
        Figure::Throughput,
        Figure::RequestResponse,
        Figure::ConnectRequestResponse,
    ];

    fn name(self) -> &'static str {
        match self {
            Figure::Throughput => "throughput",
            Figure::RequestResponse => "req/resp",
            Figure::ConnectRequestResponse => "new-conn",
        }
    }

    fn show(self, value: f64) -> String {
        match self {
            Figure::Throughput => format!("{:.2} Gbit/s", value / 1e9),
            Figure::RequestResponse => format!("{value:.0} /s"),
            Figure::ConnectRequestResponse => format!("{value:.0} conn/s"),
        }
    }

    fn measure(self, t: &Topology, seconds: f64) -> f64 {
        match self {
            Figure::Throughput => t.iperf3(seconds),
            Figure::RequestResponse => t.request_response(seconds),
            Figure::ConnectRequestResponse => t.connect_request_response(seconds),
        }
    }
}

struct Series {
    figure: Figure,
    plain: Vec<f64>,
    myelin: Vec<f64>,
}

impl Series {
    fn new(figure: Figure) -> Series {
        Series {
            figure,
            plain: Vec::new(),
            myelin: Vec::new(),
        }
    }
}

/// What the measurements need of either topology: the client pod's namespace and the server.
struct Topology {
    label: &'static str,
    client: PathBuf,
    server_netns: PathBuf,
    server: Ipv4Addr,
    /// Whether the policy drops [`DENIED_PORT`] (Myelin) or nothing does (plain).
    enforcing: bool,
}

impl Topology {
    fn plain(plain: &Plain) -> Topology {
        Topology {
            label: "plain",
            client: plain.netns_path(CLIENT),
            server_netns: plain.netns_path(SERVER),
            server: SERVER_IP,
            enforcing: false,
        }
    }

    fn myelin(node: &Node) -> Topology {
        let client = node.pod("default/bench-client");
        let server = node.pod("default/bench-server");
        Topology {
            label: "myelin",
            client: client.netns.clone(),
            server_netns: server.netns.clone(),
            server: server.ipv4,
            enforcing: true,
        }
    }

    /// The request/response servers, on threads of this process; their sockets live in the
    /// server pod's namespace (a socket keeps the namespace it was made in).
    fn start_servers(&self) {
        let rr = in_netns(&self.server_netns, || {
            TcpListener::bind((Ipv4Addr::UNSPECIFIED, RR_PORT)).expect("bind the rr server")
        });
        let crr = in_netns(&self.server_netns, || {
            TcpListener::bind((Ipv4Addr::UNSPECIFIED, CRR_PORT)).expect("bind the crr server")
        });
        std::thread::spawn(move || {
            pin_to_cpu(SERVER_CPU);
            serve_ping_pong(&rr);
        });
        std::thread::spawn(move || {
            pin_to_cpu(SERVER_CPU);
            serve_one_exchange(&crr);
        });
    }

    fn addr(&self, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(self.server, port)
    }

    /// Under Myelin a port no rule allows times out; on plain veths it is refused. Proves in
    /// the same run that the programs are there and deciding.
    fn check_denied_port(&self) {
        let addr = self.addr(DENIED_PORT);
        let result = in_netns(&self.client, || {
            TcpStream::connect_timeout(&addr.into(), Duration::from_secs(1))
        });
        let kind = result.err().map(|e| e.kind());
        let want = if self.enforcing {
            ErrorKind::TimedOut
        } else {
            ErrorKind::ConnectionRefused
        };
        assert_eq!(kind, Some(want), "{}: connect to {addr}", self.label);
    }

    fn warm_up(&self) {
        self.iperf3(1.0);
        self.request_response(0.5);
        self.connect_request_response(0.5);
    }

    /// iperf3's received bits per second over `seconds`.
    fn iperf3(&self, seconds: f64) -> f64 {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.client.display()))
            .args([
                "--",
                "iperf3",
                "-J",
                "-A",
                &format!("{CLIENT_CPU},{SERVER_CPU}"),
                "-c",
            ])
            .arg(self.server.to_string())
            .args(["-p", &IPERF_PORT.to_string(), "-t", &seconds.to_string()])
            .output()
            .expect("run iperf3");
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        report["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .unwrap_or_else(|| {
                panic!(
                    "{}: iperf3 failed ({}): {}{}",
                    self.label,
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    }

    /// 1-byte requests and answers on one connection, per second.
    fn request_response(&self, seconds: f64) -> f64 {
        let addr = self.addr(RR_PORT);
        in_netns(&self.client, || {
            pin_to_cpu(CLIENT_CPU);
            let mut stream = TcpStream::connect(addr).expect("connect to the rr server");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let mut byte = [0u8; 1];
            let start = Clock::now();
            let limit = Duration::from_secs_f64(seconds);
            let mut done = 0u64;
            loop {
                stream.write_all(&[1]).expect("rr request");
                stream.read_exact(&mut byte).expect("rr answer");
                done += 1;
                if done.is_multiple_of(256) && start.elapsed() >= limit {
                    break;
                }
            }
            per_second(done, start)
        })
    }

    /// Connect, 1-byte request and answer, close, in a loop; connections per second.
    fn connect_request_response(&self, seconds: f64) -> f64 {
        let addr = self.addr(CRR_PORT);
        in_netns(&self.client, || {
            pin_to_cpu(CLIENT_CPU);
            let mut byte = [0u8; 1];
            let start = Clock::now();
            let limit = Duration::from_secs_f64(seconds);
            let mut done = 0u64;
            loop {
                let mut stream = TcpStream::connect(addr).expect("connect to the crr server");
                stream.set_nodelay(true).expect("TCP_NODELAY");
                stream.write_all(&[1]).expect("crr request");
                stream.read_exact(&mut byte).expect("crr answer");
                // The server closes first, so TIME_WAIT stays on its side and the client's
                // ports are free again at once.
                let eof = stream.read(&mut byte).expect("crr close");
                assert_eq!(eof, 0, "the crr server closes after one answer");
                done += 1;
                if done.is_multiple_of(16) && start.elapsed() >= limit {
                    break;
                }
            }
            per_second(done, start)
        })
    }
}

#[expect(clippy::cast_precision_loss, reason = "a count of requests in seconds")]
fn per_second(done: u64, start: Clock) -> f64 {
    done as f64 / start.elapsed().as_secs_f64()
}

/// Client and server each on a CPU of their own, the same in both topologies: whether the two
/// share a CPU changes request/response rates more than the datapath does.
const CLIENT_CPU: usize = 0;
const SERVER_CPU: usize = 1;

/// Pins the calling thread (its softirq work on the way out follows it).
fn pin_to_cpu(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).expect("a CPU number within the set");
    sched_setaffinity(Pid::from_raw(0), &set).expect("sched_setaffinity");
}

/// Answers each byte with a byte, one connection after the other.
fn serve_ping_pong(listener: &TcpListener) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let mut byte = [0u8; 1];
        while stream.read_exact(&mut byte).is_ok() && stream.write_all(&byte).is_ok() {}
    }
}

/// Answers one byte per connection and closes it.
fn serve_one_exchange(listener: &TcpListener) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        let mut byte = [0u8; 1];
        if stream.read_exact(&mut byte).is_ok() {
            let _ = stream.write_all(&byte);
        }
    }
}

/// Runs `f` on a thread that entered the network namespace at `netns`.
fn in_netns<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> T {
    let file = File::open(netns).unwrap_or_else(|e| panic!("open {}: {e}", netns.display()));
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
                f()
            })
            .join()
            .expect("thread in the namespace")
    })
}

const CLIENT: &str = "client";
const SERVER: &str = "server";
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 245, 0, 2);
const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 245, 0, 3);

/// The baseline: the same shape as a Myelin node, built with `ip`, no programs anywhere.
/// `Drop` stops iperf3 and deletes the namespaces (the veths go with them).
struct Plain {
    prefix: String,
    namespaces: Vec<String>,
    iperf3: Option<Child>,
}

impl Plain {
    fn new(prefix: &str) -> Plain {
        let mut plain = Plain {
            prefix: prefix.to_owned(),
            namespaces: Vec::new(),
            iperf3: None,
        };
        let node = plain.netns("node");
        sysctl(&node, "net.ipv4.ip_forward=1");
        plain.pod(CLIENT, CLIENT_IP);
        plain.pod(SERVER, SERVER_IP);
        let child = Command::new("nsenter")
            .arg(format!("--net={}", plain.netns_path(SERVER).display()))
            .args(["--", "iperf3", "-s"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iperf3 -s");
        plain.iperf3 = Some(child);
        plain
    }

    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    fn netns_path(&self, what: &str) -> PathBuf {
        Path::new("/run/netns").join(self.name(what))
    }

    /// A namespace with `lo` up, recorded for `Drop` before it exists.
    fn netns(&mut self, what: &str) -> String {
        let name = self.name(what);
        self.namespaces.push(name.clone());
        ip(&["netns", "add", &name]);
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// What myelin-cni does for a pod: veth, /32 address, the link-local gateway with a
    /// permanent neighbour entry, proxy ARP on the host end, and a /32 route to the pod.
    fn pod(&mut self, what: &str, address: Ipv4Addr) {
        let node = self.name("node");
        let pod = self.netns(what);
        let host = format!("veth{what}");
        ip(&[
            "-n", &node, "link", "add", &host, "type", "veth", "peer", "name", "eth0", "netns",
            &pod,
        ]);
        sysctl(&node, &format!("net.ipv4.conf.{host}.proxy_arp=1"));
        sysctl(&node, &format!("net.ipv4.neigh.{host}.proxy_delay=0"));
        ip(&["-n", &node, "link", "set", &host, "up"]);
        ip(&["-n", &pod, "link", "set", "eth0", "up"]);
        ip(&[
            "-n",
            &pod,
            "address",
            "add",
            &format!("{address}/32"),
            "dev",
            "eth0",
        ]);
        ip(&[
            "-n", &pod, "route", "add", GATEWAY, "dev", "eth0", "scope", "link",
        ]);
        ip(&[
            "-n", &pod, "route", "add", "default", "via", GATEWAY, "dev", "eth0",
        ]);
        let link = ip(&["-n", &node, "-o", "link", "show", "dev", &host]);
        let mac = link
            .split_whitespace()
            .skip_while(|word| *word != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no mac for {host} in {link}"))
            .to_owned();
        ip(&[
            "-n",
            &pod,
            "neigh",
            "add",
            GATEWAY,
            "lladdr",
            &mac,
            "dev",
            "eth0",
            "nud",
            "permanent",
        ]);
        ip(&[
            "-n",
            &node,
            "route",
            "add",
            &format!("{address}/32"),
            "dev",
            &host,
        ]);
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        if let Some(mut child) = self.iperf3.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for name in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// `ip ARGS`, which must succeed; its stdout.
fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sysctl(netns: &str, setting: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", netns, "sysctl", "-qw", setting])
        .output()
        .expect("run sysctl");
    assert!(
        out.status.success(),
        "sysctl {setting} in {netns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
