//! The agent of an embedded node killed with SIGKILL, as a crash would, and started again by
//! `myelin up`: the pinned maps keep enforcing while it is gone, an open TCP connection keeps
//! exchanging data, and the new agent restores the same endpoints and identities, rewrites
//! the maps in place (pruning only what is stale) and enforces new policies. Probes run the
//! whole time, so a moment of wrong verdicts would show.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use bpf::{Datapath, IpcacheValue, Ipv4Prefix};
use nix::sched::{CloneFlags, setns};

use crate::embedded::{Embedded, describe, examples};

/// A keep-alive HTTP/1.1 connection to a pod's built-in server, opened from inside another
/// pod's namespace (the socket stays in that namespace wherever it is used).
pub(crate) struct KeepAlive {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    pub(crate) fn open(netns: &Path, to: Ipv4Addr) -> KeepAlive {
        let stream = thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = File::open(netns).expect("open the pod's namespace");
                    setns(&file, CloneFlags::CLONE_NEWNET).expect("enter the pod's namespace");
                    TcpStream::connect_timeout(&SocketAddr::from((to, 80)), Duration::from_secs(2))
                        .expect("connect to port 80")
                })
                .join()
                .expect("connecting thread")
        });
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("read timeout");
        let reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        KeepAlive { stream, reader }
    }

    fn local_port(&self) -> u16 {
        self.stream.local_addr().expect("local address").port()
    }

    /// One request on the open connection; the response body.
    pub(crate) fn get(&mut self, n: usize) -> Result<String, String> {
        let request = format!("GET /keepalive/{n} HTTP/1.1\r\nHost: deathstar\r\n\r\n");
        self.stream
            .write_all(request.as_bytes())
            .map_err(|e| format!("request {n}: write: {e}"))?;
        let mut length = None;
        let mut status = String::new();
        for i in 0.. {
            let mut line = String::new();
            self.reader
                .read_line(&mut line)
                .map_err(|e| format!("request {n}: read: {e}"))?;
            if line.is_empty() {
                return Err(format!("request {n}: connection closed"));
            }
            if i == 0 {
                status = line.trim().to_owned();
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0; length.ok_or(format!("request {n}: no content-length"))?];
        self.reader
            .read_exact(&mut body)
            .map_err(|e| format!("request {n}: body: {e}"))?;
        if !status.starts_with("HTTP/1.1 200") {
            return Err(format!("request {n}: {status}"));
        }
        Ok(String::from_utf8_lossy(&body).into_owned())
    }
}

/// `myelin probe` from a pod to an address on 80/TCP: "allowed", "denied" or "refused".
fn probe(node: &Embedded, from: &str, to: Ipv4Addr) -> String {
    let out = node.myelin(&[
        "probe",
        "--from",
        from,
        "--to",
        &to.to_string(),
        "--port",
        "80/TCP",
        "--timeout",
        "1s",
    ]);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What the probing thread saw.
#[derive(Default)]
struct Seen {
    rounds: usize,
    wrong: Vec<String>,
}

/// Probes tiefighter (allowed) and xwing (denied) to the deathstar, and sends a request on the
/// open connection, round after round until `stop`; `phase` names the moment for the report.
fn keep_probing(
    node: &Embedded,
    deathstar: Ipv4Addr,
    mut connection: KeepAlive,
    stop: &AtomicBool,
    phase: &AtomicUsize,
    rounds: &[AtomicUsize; 3],
) -> (Seen, KeepAlive) {
    const PHASES: [&str; 3] = [
        "before the kill",
        "while the agent is gone",
        "after the restart",
    ];
    let mut seen = Seen::default();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let at = phase.load(Ordering::SeqCst);
        let (tiefighter, xwing) = thread::scope(|scope| {
            let t = scope.spawn(|| probe(node, "default/tiefighter", deathstar));
            let x = scope.spawn(|| probe(node, "default/xwing", deathstar));
            (
                t.join().expect("probe thread"),
                x.join().expect("probe thread"),
            )
        });
        n += 1;
        let answer = connection.get(n);
        // The phase may have moved on meanwhile: count the round for the phase it began in.
        if tiefighter != "allowed" {
            seen.wrong
                .push(format!("{}: tiefighter {tiefighter}", PHASES[at]));
        }
        if xwing != "denied" {
            seen.wrong.push(format!("{}: xwing {xwing}", PHASES[at]));
        }
        match answer {
            Ok(body) if body.contains("deathstar") && body.contains(&format!("/keepalive/{n}")) => {
            }
            Ok(body) => seen
                .wrong
                .push(format!("{}: connection got {body:?}", PHASES[at])),
            Err(err) => seen
                .wrong
                .push(format!("{}: connection: {err}", PHASES[at])),
        }
        seen.rounds += 1;
        rounds[at].fetch_add(1, Ordering::SeqCst);
    }
    (seen, connection)
}

#[expect(
    clippy::disallowed_methods,
    reason = "waiting on other processes; no runtime on these threads"
)]
fn pause(how_long: Duration) {
    thread::sleep(how_long);
}

fn wait_rounds(rounds: &AtomicUsize, at_least: usize) {
    for _ in 0..200 {
        if rounds.load(Ordering::SeqCst) >= at_least {
            return;
        }
        pause(Duration::from_millis(50));
    }
    panic!("the probes made no progress");
}

/// The conntrack entry of the open connection (created_ns), as the kernel holds it.
fn connection_entry(pins: &Path, from: Ipv4Addr, port: u16, to: Ipv4Addr) -> Option<u64> {
    let datapath = Datapath::open(pins).expect("open the pins");
    let conntrack = datapath.conntrack().expect("conntrack map");
    conntrack
        .iter()
        .expect("read conntrack")
        .into_iter()
        .find(|(key, _)| {
            key.saddr() == from && key.daddr() == to && key.sport == port && key.dport == 80
        })
        .map(|(_, entry)| entry.created_ns)
}

#[test]
fn agent_restart_keeps_enforcement_connections_endpoints_and_identities() {
    let node = Embedded::up("starwars");
    node.myelin_ok(&[
        "apply",
        "-f",
        &examples().join("starwars/policy").display().to_string(),
    ]);
    // A pod that came last gets the last number, though it sorts first: a restarted agent
    // that allocated in table order would renumber every identity.
    let scratch = std::env::temp_dir().join(format!("{}-restart", node.name()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let manifest = |name: &str, text: &str| {
        let path = scratch.join(name);
        std::fs::write(&path, text).expect("write a manifest");
        path.display().to_string()
    };
    node.myelin_ok(&[
        "apply",
        "-f",
        &manifest(
            "a-wing.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a-wing\n  labels: {org: alliance, class: awing}\n",
        ),
    ]);
    // Two CIDR policies, the first deleted again: the second's prefix keeps the second
    // node-local number, which a restarted agent allocating afresh would hand out as the first.
    let cidr_policy = |name: &str, cidr: &str| {
        manifest(
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: {name}}}\n\
                 spec:\n  endpointSelector: {{matchLabels: {{class: none}}}}\n  egress:\n  \
                 - toCIDR: [{cidr}]\n"
            ),
        )
    };
    let cidr_a = cidr_policy("cidr-a", "192.0.2.0/24");
    node.myelin_ok(&["apply", "-f", &cidr_a]);
    node.myelin_ok(&["apply", "-f", &cidr_policy("cidr-b", "198.51.100.0/24")]);
    node.myelin_ok(&["delete", "-f", &cidr_a]);
    let (tiefighter_netns, tiefighter) = node.pod("default/tiefighter");
    let (_, deathstar) = node.pod("default/deathstar-c74d84667-cx5kp");
    let pins = PathBuf::from(node.instance().pin_dir);

    let endpoints_before = node.myelin_ok(&["endpoint", "list"]);
    let identities_before = node.myelin_ok(&["identity", "list"]);
    // `identity list` prints an identity's number on its first label's line only.
    let mut current = "";
    let cidr_b = identities_before.lines().find_map(|line| {
        if let Some(id) = line
            .split_whitespace()
            .next()
            .filter(|w| w.parse::<u32>().is_ok())
        {
            current = id;
        }
        line.contains("cidr:198.51.100.0/24").then_some(current)
    });
    assert_eq!(
        cidr_b,
        Some("16777218"),
        "cidr-b's prefix has the second node-local number in\n{identities_before}"
    );
    let deathstar_id = endpoints_before
        .lines()
        .find(|l| l.contains(&deathstar.to_string()))
        .and_then(|l| l.split_whitespace().next())
        .expect("the deathstar's endpoint id")
        .to_owned();
    let kernel_policy_before = node.myelin_ok(&["bpf", "policy", "get", &deathstar_id]);

    let mut connection = KeepAlive::open(&tiefighter_netns, deathstar);
    connection.get(0).expect("the connection works");
    let port = connection.local_port();
    let created = connection_entry(&pins, tiefighter, port, deathstar)
        .expect("the open connection has a conntrack entry");

    let stop = AtomicBool::new(false);
    let phase = AtomicUsize::new(0);
    let rounds = [
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ];
    let (seen, mut connection) = thread::scope(|scope| {
        let prober =
            scope.spawn(|| keep_probing(&node, deathstar, connection, &stop, &phase, &rounds));
        wait_rounds(&rounds[0], 1);

        node.kill_agent();
        phase.store(1, Ordering::SeqCst);
        let down = node.myelin(&["status"]);
        assert!(!down.status.success(), "the agent answered after SIGKILL");
        // Something stale behind the dead agent's back: the restart must prune it.
        let mut ipcache = Datapath::open(&pins)
            .expect("open the pins")
            .ipcache()
            .expect("ipcache");
        let stale = Ipv4Addr::new(10, 99, 99, 99);
        ipcache
            .insert(Ipv4Prefix::host(stale), &IpcacheValue::new(4242))
            .expect("insert a stale entry");
        wait_rounds(&rounds[1], 2);

        let up = node.myelin(&[
            "up",
            &examples().join("starwars").display().to_string(),
            "--name",
            node.name(),
        ]);
        assert!(up.status.success(), "restart failed: {}", describe(&up));
        let said = String::from_utf8_lossy(&up.stdout);
        assert!(said.contains("restarting"), "{said}");
        phase.store(2, Ordering::SeqCst);
        let pruned = (0..100).any(|_| {
            pause(Duration::from_millis(100));
            ipcache
                .lookup(stale)
                .expect("lookup")
                .is_none_or(|v| v.identity != 4242)
        });
        assert!(pruned, "the stale ipcache entry is still there");
        wait_rounds(&rounds[2], 2);
        stop.store(true, Ordering::SeqCst);
        prober.join().expect("prober")
    });
    assert!(
        seen.wrong.is_empty(),
        "wrong verdicts in {} rounds:\n{}",
        seen.rounds,
        seen.wrong.join("\n")
    );

    assert_eq!(node.myelin_ok(&["endpoint", "list"]), endpoints_before);
    assert_eq!(node.myelin_ok(&["identity", "list"]), identities_before);
    assert_eq!(
        node.myelin_ok(&["bpf", "policy", "get", &deathstar_id]),
        kernel_policy_before
    );
    assert_eq!(
        connection_entry(&pins, tiefighter, port, deathstar),
        Some(created),
        "the open connection's conntrack entry was replaced"
    );
    connection.get(1000).expect("the connection still works");

    // A policy applied to the restarted agent is enforced: the alliance may land too.
    let alliance = manifest(
        "alliance.yaml",
        "apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata:
  name: alliance
spec:
  endpointSelector:
    matchLabels: {org: empire, class: deathstar}
  ingress:
  - fromEndpoints:
    - matchLabels: {org: alliance}
    toPorts:
    - ports: [{port: \"80\", protocol: TCP}]
",
    );
    node.myelin_ok(&["apply", "-f", &alliance]);
    let _ = std::fs::remove_dir_all(&scratch);
    assert_eq!(probe(&node, "default/xwing", deathstar), "allowed");
    assert_eq!(probe(&node, "default/tiefighter", deathstar), "allowed");
}
