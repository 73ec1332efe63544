//! Embedded mode end to end, as a user runs it: `myelin up` on an example directory, commands
//! in the pods with `myelin exec`, policies with `myelin apply`, and `myelin down` leaving
//! nothing behind. Real namespaces, the real agent and CNI plugin, the eBPF datapath, curl.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cni::binary;

/// One embedded node with its own run directory and name; `Drop` runs `myelin down`.
pub(crate) struct Embedded {
    name: String,
    run_dir: PathBuf,
}

impl Embedded {
    /// `myelin up DIR` (a path below the repository's `examples/`).
    pub(crate) fn up(example: &str) -> Embedded {
        Embedded::up_with(&examples().join(example), &[])
    }

    /// `myelin up DIR ARGS...` with a unique name and run directory.
    pub(crate) fn up_with(dir: &Path, args: &[&str]) -> Embedded {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("myit{}x{n}", std::process::id());
        let run_dir = std::env::temp_dir().join(format!("myelin-it-{name}"));
        let node = Embedded { name, run_dir };
        let dir = dir.display().to_string();
        let mut up = vec!["up", dir.as_str(), "--name", node.name.as_str()];
        up.extend(args);
        let out = node.myelin(&up);
        assert!(out.status.success(), "myelin up failed: {}", describe(&out));
        node
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Where the node's sockets (`agent.sock`, `hubble.sock`) and record are.
    pub(crate) fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The record `myelin up` keeps of the node.
    pub(crate) fn instance(&self) -> schema::embedded::Instance {
        let text = std::fs::read_to_string(self.run_dir.join("embedded.json"))
            .expect("read the node's record");
        serde_json::from_str(&text).expect("the node's record parses")
    }

    /// A pod of the node: its namespace path and address.
    pub(crate) fn pod(&self, key: &str) -> (PathBuf, std::net::Ipv4Addr) {
        let instance = self.instance();
        let pod = instance.pods.get(key).expect("the pod is on the node");
        (Path::new("/run/netns").join(&pod.netns), pod.ipv4)
    }

    /// SIGKILLs the node's agent, as a crash would, and waits until it is gone: the signal
    /// lands asynchronously, and `myelin up` restarts only an agent that is dead.
    pub(crate) fn kill_agent(&self) {
        let agent = self.instance().agent_pid;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(agent).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill the agent");
        let gone = || {
            std::fs::read_to_string(format!("/proc/{agent}/stat")).map_or(true, |stat| {
                stat.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
        };
        for _ in 0..250 {
            if gone() {
                return;
            }
            crate::cni::pause();
        }
        panic!("the agent outlived SIGKILL for 5 s");
    }

    pub(crate) fn myelin(&self, args: &[&str]) -> Output {
        Command::new(binary("myelin"))
            .args(args)
            .env("MYELIN_RUN_DIR", &self.run_dir)
            .output()
            .expect("run myelin")
    }

    /// `myelin ARGS`, which must succeed; its stdout.
    pub(crate) fn myelin_ok(&self, args: &[&str]) -> String {
        let out = self.myelin(args);
        assert!(
            out.status.success(),
            "myelin {args:?} failed: {}",
            describe(&out)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What the tutorial runs in a ship: land on the deathstar through its service name.
    fn land(&self, ship: &str) -> Output {
        self.myelin(&[
            "exec",
            &format!("default/{ship}"),
            "--",
            "curl",
            "-s",
            "--max-time",
            "2",
            "-XPOST",
            "deathstar.default.svc.cluster.local/v1/request-landing",
        ])
    }

    fn netns_left(&self) -> Vec<String> {
        let list = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .filter(|l| l.starts_with(&format!("{}-", self.name)))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.myelin(&["down"]);
    }
}

pub(crate) fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

pub(crate) fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The Star Wars tutorial: both ships land; after rule1 the xwing times out and the
/// tiefighter still lands; `down` removes every namespace, pin and file.
#[test]
fn star_wars_tutorial() {
    let node = Embedded::up("starwars");
    for ship in ["tiefighter", "xwing"] {
        let out = node.land(ship);
        assert!(
            out.status.success(),
            "{ship} cannot land: {}",
            describe(&out)
        );
        let body = String::from_utf8_lossy(&out.stdout);
        assert!(
            body.contains("POST /v1/request-landing") && body.contains("deathstar"),
            "{ship} got {body:?}"
        );
    }

    let applied = node.myelin_ok(&[
        "apply",
        "-f",
        &examples().join("starwars/policy").display().to_string(),
    ]);
    assert_eq!(
        applied.trim(),
        "ciliumnetworkpolicy.cilium.io/rule1 created"
    );

    let tiefighter = node.land("tiefighter");
    assert!(tiefighter.status.success(), "{}", describe(&tiefighter));
    let xwing = node.land("xwing");
    assert_eq!(
        xwing.status.code(),
        Some(28),
        "the xwing must time out (curl exit 28): {}",
        describe(&xwing)
    );

    let endpoints = node.myelin_ok(&["endpoint", "list"]);
    let deathstar_rows: Vec<&str> = endpoints
        .lines()
        .filter(|l| l.contains("k8s:class=deathstar"))
        .collect();
    assert_eq!(deathstar_rows.len(), 2, "{endpoints}");
    for row in deathstar_rows {
        let cells: Vec<&str> = row.split_whitespace().collect();
        // ENDPOINT, ingress and egress enforcement, IDENTITY, first label, IPv4, STATUS.
        assert_eq!(cells.len(), 7, "{endpoints}");
        assert_eq!(
            (cells[1], cells[2], cells[6]),
            ("Enabled", "Disabled", "ready")
        );
    }

    let pin_dir = PathBuf::from(format!("/sys/fs/bpf/{}", node.name));
    assert!(pin_dir.exists());
    let out = node.myelin_ok(&["down"]);
    assert!(out.contains("is down"), "{out}");
    assert_eq!(node.netns_left(), Vec::<String>::new());
    assert!(!pin_dir.exists(), "{} is left", pin_dir.display());
    assert!(!node.run_dir.exists(), "{} is left", node.run_dir.display());
}

/// An `up` that fails half-way (here: an IPv6 pod CIDR, found out once the node namespace
/// exists) removes what it made, so nothing is left for a `down` that has no record to read.
#[test]
fn a_failed_up_leaves_nothing_behind() {
    let node = Embedded {
        name: format!("myit{}xfail", std::process::id()),
        run_dir: std::env::temp_dir().join(format!("myelin-it-{}-fail", std::process::id())),
    };
    let starwars = examples().join("starwars").display().to_string();
    let out = node.myelin(&[
        "up",
        &starwars,
        "--name",
        &node.name,
        "--pod-cidr",
        "fd00::/64",
    ]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only ipv4"),
        "{}",
        describe(&out)
    );
    assert_eq!(node.netns_left(), Vec::<String>::new());
    assert!(!node.run_dir.exists(), "{} is left", node.run_dir.display());
}

/// An address added to the node after the agent started is `reserved:host` too, as Cilium's
/// host endpoint follows the node's devices: a connection from it reaches the deathstar under
/// rule1 (the host passes default deny), and once the address is removed it is the world's.
#[test]
fn addresses_added_to_the_node_later_are_the_host() {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::Duration;

    let node = Embedded::up("starwars");
    node.myelin_ok(&[
        "apply",
        "-f",
        &examples().join("starwars/policy").display().to_string(),
    ]);
    let instance = node.instance();
    let (_, deathstar) = node.pod("default/deathstar-c74d84667-cx5kp");
    let added = Ipv4Addr::new(192, 0, 2, 77);
    let ip = |verb: &str| {
        let out = Command::new("ip")
            .args([
                "-n",
                &instance.node_netns,
                "addr",
                verb,
                "192.0.2.77/32",
                "dev",
                "lo",
            ])
            .output()
            .expect("run ip");
        assert!(out.status.success(), "ip addr {verb}: {}", describe(&out));
    };
    let identity = || {
        bpf::Datapath::open(&instance.pin_dir)
            .and_then(|d| d.ipcache())
            .and_then(|c| c.lookup(added))
            .expect("read the pinned ipcache")
            .map(|v| v.identity)
    };
    // A connection from the node's namespace with the added address as its source.
    let connect = || {
        let netns = Path::new("/run/netns").join(&instance.node_netns);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let file = std::fs::File::open(&netns).expect("open the node's namespace");
                    nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                        .expect("enter the node's namespace");
                    let socket =
                        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
                            .expect("socket");
                    socket
                        .bind(&SocketAddr::from((added, 0)).into())
                        .expect("bind the added address");
                    socket
                        .connect_timeout(
                            &SocketAddr::from((deathstar, 80)).into(),
                            Duration::from_secs(2),
                        )
                        .is_ok()
                })
                .join()
                .expect("connecting thread")
        })
    };
    let eventually = |what: &str, ok: &dyn Fn() -> bool| {
        for _ in 0..250 {
            if ok() {
                return;
            }
            crate::cni::pause();
        }
        panic!("{what}: not within 5 s");
    };

    ip("add");
    eventually("the added address is reserved:host in the ipcache", &|| {
        identity() == Some(1)
    });
    assert!(
        connect(),
        "the node's new address cannot reach the deathstar"
    );

    ip("del");
    eventually("the removed address is no longer the host", &|| {
        identity() != Some(1)
    });
}
