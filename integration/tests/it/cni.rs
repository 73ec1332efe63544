//! The real `myelin-cni` and `myelin-agent` binaries, run as a container runtime runs them: the
//! agent inside a "node" namespace, the plugin there too (via `ip netns exec`) with the spec's
//! environment and the network configuration on stdin, pods as further namespaces. The machine's
//! own namespace is never touched.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use expect_test::expect;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use schema::agent_api::{self, AgentStatus, Request, Response};
use serde_json::Value;

use crate::netns::Netns;

const POD_CIDR: &str = "10.244.0.0/24";

/// A built binary of this workspace, next to the test executable's target directory.
pub(crate) fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/it-<hash> -> target/debug/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace --bins` before the integration tests \
         (`cargo xtask ci` does)",
        path.display()
    );
    path
}

#[expect(
    clippy::disallowed_methods,
    reason = "waiting on other processes; no runtime on these threads"
)]
pub(crate) fn pause() {
    std::thread::sleep(Duration::from_millis(20));
}

/// A scratch directory removed on drop.
struct TestDir(PathBuf);

impl TestDir {
    fn new() -> TestDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("myelin-it-cni-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create test dir");
        TestDir(dir)
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one plugin run printed.
#[derive(Debug)]
pub(crate) struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}): {self:?}"))
    }

    /// The spec's error object; panics unless the run failed with one.
    fn error(&self) -> (u64, String) {
        assert!(!self.success, "expected a failure: {self:?}");
        let json = self.json();
        assert_eq!(json["cniVersion"].as_str().map(str::len), Some(5), "{json}");
        (
            json["code"].as_u64().expect("numeric code"),
            json["msg"].as_str().expect("msg").to_owned(),
        )
    }

    pub(crate) fn ok(&self) -> &Self {
        assert!(self.success, "plugin failed: {self:?}");
        self
    }

    /// The pod's address from a successful ADD's result.
    pub(crate) fn address(&self) -> std::net::Ipv4Addr {
        let json = self.ok().json();
        json["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no IPv4 address in {json}"))
    }
}

/// A node: its namespace, the agent running inside it and the agent's state directory. Drop
/// stops the agent (SIGTERM, then SIGKILL), then the namespace and the directory go.
pub(crate) struct Node {
    agent: Option<Child>,
    dir: TestDir,
    pub(crate) netns: Netns,
}

impl Node {
    fn new() -> Node {
        let mut node = Node::without_agent();
        node.start_agent();
        node
    }

    /// The namespace and directory only, to prepare before [`Node::start_agent_with`].
    pub(crate) fn without_agent() -> Node {
        Node {
            agent: None,
            dir: TestDir::new(),
            netns: Netns::new(),
        }
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir.0
    }

    pub(crate) fn socket(&self) -> PathBuf {
        self.dir.0.join("agent.sock")
    }

    pub(crate) fn config(&self) -> String {
        config(&self.socket())
    }

    fn start_agent(&mut self) {
        self.start_agent_with(&[], &[]);
    }

    /// Starts the agent with further arguments and environment variables.
    pub(crate) fn start_agent_with(&mut self, args: &[String], env: &[(&str, String)]) {
        assert!(self.agent.is_none(), "agent already running");
        let child = Command::new("ip")
            .args(["netns", "exec", self.netns.name()])
            .arg(binary("myelin-agent"))
            .arg("--socket")
            .arg(self.socket())
            .arg("--state-dir")
            .arg(self.dir.0.join("state"))
            .args(["--pod-cidr", POD_CIDR])
            // `ip netns exec` gives the agent its own mounts, so this bpffs directory (and
            // with it every pin) lives and dies with the agent's mount namespace.
            .arg("--bpf-pin-dir")
            .arg(format!("/sys/fs/bpf/{}", self.netns.name()))
            .args(args)
            .env("MYELIN_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn myelin-agent");
        self.agent = Some(child);
        for _ in 0..250 {
            if self.try_status().is_some() {
                return;
            }
            pause();
        }
        panic!("myelin-agent did not answer on {}", self.socket().display());
    }

    /// SIGTERM and wait, as a graceful shutdown; SIGKILL if it does not stop in 5 s.
    fn stop_agent(&mut self) {
        let Some(mut child) = self.agent.take() else {
            return;
        };
        let pid = i32::try_from(child.id()).map(Pid::from_raw);
        if let Ok(pid) = pid {
            let _ = kill(pid, Signal::SIGTERM);
        }
        for _ in 0..250 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            pause();
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn try_status(&self) -> Option<AgentStatus> {
        let mut stream = UnixStream::connect(self.socket()).ok()?;
        stream
            .write_all(&agent_api::encode_line(&Request::Status))
            .ok()?;
        let mut line = Vec::new();
        BufReader::new(stream).read_until(b'\n', &mut line).ok()?;
        match agent_api::decode_line("response", &line).ok()? {
            Response::Status(status) => Some(status),
            _ => None,
        }
    }

    fn status(&self) -> AgentStatus {
        self.try_status().expect("agent status")
    }

    /// Runs the plugin in the node's namespace exactly as a runtime does.
    pub(crate) fn cni(
        &self,
        command: &str,
        container_id: &str,
        pod: &Netns,
        stdin: &str,
    ) -> Outcome {
        self.cni_env(
            &[
                ("CNI_COMMAND", command),
                ("CNI_CONTAINERID", container_id),
                ("CNI_NETNS", &pod.path().display().to_string()),
                ("CNI_IFNAME", "eth0"),
                ("CNI_PATH", "/opt/cni/bin"),
                (
                    "CNI_ARGS",
                    &format!(
                        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME={}",
                        pod.name()
                    ),
                ),
            ],
            stdin,
        )
    }

    fn cni_env(&self, env: &[(&str, &str)], stdin: &str) -> Outcome {
        run_cni(Some(self.netns.name()), env, stdin)
    }

    fn links(&self) -> Vec<String> {
        link_names(&self.netns)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop_agent();
    }
}

/// The network configuration a runtime streams to the plugin, for the agent at `socket`.
fn config(socket: &Path) -> String {
    format!(
        r#"{{"cniVersion":"1.0.0","name":"myelin","type":"myelin-cni","agentSocket":"{}"}}"#,
        socket.display()
    )
}

fn run_cni(netns: Option<&str>, env: &[(&str, &str)], stdin: &str) -> Outcome {
    let mut command = match netns {
        Some(netns) => {
            let mut command = Command::new("ip");
            command
                .args(["netns", "exec", netns])
                .arg(binary("myelin-cni"));
            command
        }
        None => Command::new(binary("myelin-cni")),
    };
    let mut child = command
        .env_remove("CNI_COMMAND")
        .envs(env.iter().copied())
        .env("MYELIN_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn myelin-cni");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write config");
    let output = child.wait_with_output().expect("wait for myelin-cni");
    Outcome {
        success: output.status.success(),
        stdout: String::from_utf8(output.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(output.stderr).expect("utf-8 stderr"),
    }
}

fn link_names(netns: &Netns) -> Vec<String> {
    netns
        .exec_ok(&["ip", "-o", "link", "show"])
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .collect()
}

/// The IPv4 routing table of `netns`, as `ip -4 route show` prints it.
fn routes(netns: &Netns) -> String {
    netns.exec_ok(&["ip", "-4", "route", "show"])
}

/// The pod's IPv4 address from an ADD result.
fn pod_ip(result: &Value) -> Ipv4Addr {
    let address = result["ips"][0]["address"].as_str().expect("address");
    address
        .strip_suffix("/32")
        .expect("a /32")
        .parse()
        .expect("ipv4")
}

/// The result with what differs per run (MACs, names, paths) replaced, for a snapshot.
fn normalized(result: &Value, pod: &Netns) -> String {
    let mut result = result.clone();
    for interface in result["interfaces"].as_array_mut().expect("interfaces") {
        interface["mac"] = Value::String("<mac>".to_owned());
    }
    let host = result["interfaces"][0]["name"].as_str().expect("host name");
    assert!(host.starts_with("lxc") && host.len() == 15, "{host}");
    result["interfaces"][0]["name"] = Value::String("lxc<hash>".to_owned());
    assert_eq!(
        result["interfaces"][1]["sandbox"].as_str(),
        Some(pod.path().to_str().expect("utf-8 path"))
    );
    result["interfaces"][1]["sandbox"] = Value::String("<netns>".to_owned());
    serde_json::to_string_pretty(&result).expect("json")
}

/// Runs `f` on a thread that entered `netns`; sockets it opens belong to that namespace.
/// A TCP exchange from `client` (address `client_ip`) to `server_ip` inside `server`: real
/// packets through both veths and the node's routing table, arriving from the client pod's own
/// address.
fn tcp_round_trip(client: &Netns, client_ip: Ipv4Addr, server: &Netns, server_ip: Ipv4Addr) {
    let server_file = std::fs::File::open(server.path()).expect("open netns");
    std::thread::scope(|scope| {
        let (port_tx, port_rx) = std::sync::mpsc::channel();
        let server = scope.spawn(move || {
            setns(&server_file, CloneFlags::CLONE_NEWNET).expect("setns");
            let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind");
            listener.set_nonblocking(true).expect("nonblocking");
            port_tx
                .send(listener.local_addr().expect("addr").port())
                .expect("send port");
            // Poll so a client that never arrives fails the test instead of hanging it.
            for _ in 0..250 {
                match listener.accept() {
                    Ok((mut stream, peer)) => {
                        stream.set_nonblocking(false).expect("blocking");
                        let mut buf = [0u8; 4];
                        stream.read_exact(&mut buf).expect("read");
                        stream.write_all(&buf).expect("echo");
                        return Some(peer);
                    }
                    Err(err) if err.kind() == ErrorKind::WouldBlock => pause(),
                    Err(err) => panic!("accept: {err}"),
                }
            }
            None
        });
        let port = port_rx.recv().expect("port");
        let echoed = client.run_in(|| {
            let mut stream =
                TcpStream::connect_timeout(&(server_ip, port).into(), Duration::from_secs(3))
                    .expect("connect to the other pod");
            stream
                .set_read_timeout(Some(Duration::from_secs(3)))
                .expect("timeout");
            stream.write_all(b"ping").expect("send");
            let mut buf = [0u8; 4];
            stream.read_exact(&mut buf).expect("echo");
            buf
        });
        assert_eq!(&echoed, b"ping");
        let peer = server.join().expect("server thread").expect("a connection");
        assert_eq!(peer.ip(), client_ip, "{peer}");
    });
}

static CONTAINER: AtomicUsize = AtomicUsize::new(0);

/// A container id unique to this test run.
pub(crate) fn container_id() -> String {
    format!(
        "it-{}-{}",
        std::process::id(),
        CONTAINER.fetch_add(1, Ordering::Relaxed)
    )
}

#[test]
fn version_lists_the_supported_versions() {
    let out = run_cni(
        None,
        &[("CNI_COMMAND", "VERSION")],
        r#"{"cniVersion":"1.0.0"}"#,
    );
    expect![[r#"
        {"cniVersion":"1.0.0","supportedVersions":["1.0.0","1.1.0"]}
    "#]]
    .assert_eq(&out.ok().stdout);
}

#[test]
fn add_wires_pods_that_talk_check_and_del_clean_up() {
    let node = Node::new();
    let (pod_a, pod_b) = (Netns::new(), Netns::new());
    let (id_a, id_b) = (container_id(), container_id());

    let out_a = node.cni("ADD", &id_a, &pod_a, &node.config());
    let result_a = out_a.ok().json();
    // Logs go to stderr inside the request's span; stdout is only the result.
    assert!(
        out_a
            .stderr
            .contains(&format!("cni{{cmd=\"ADD\" container_id={id_a}}}")),
        "{}",
        out_a.stderr
    );
    expect![[r#"
        {
          "cniVersion": "1.0.0",
          "dns": {},
          "interfaces": [
            {
              "mac": "<mac>",
              "name": "lxc<hash>"
            },
            {
              "mac": "<mac>",
              "name": "eth0",
              "sandbox": "<netns>"
            }
          ],
          "ips": [
            {
              "address": "10.244.0.2/32",
              "gateway": "169.254.1.1",
              "interface": 1
            }
          ],
          "routes": [
            {
              "dst": "0.0.0.0/0",
              "gw": "169.254.1.1"
            }
          ]
        }"#]]
    .assert_eq(&normalized(&result_a, &pod_a));
    let result_b = node.cni("ADD", &id_b, &pod_b, &node.config()).ok().json();
    let (ip_a, ip_b) = (pod_ip(&result_a), pod_ip(&result_b));
    assert_ne!(ip_a, ip_b);

    // The pod really has the address, the gateway route and the default route.
    let addr = pod_a.exec_ok(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    assert!(addr.contains(&format!("inet {ip_a}/32")), "{addr}");
    let pod_routes = routes(&pod_a);
    assert!(
        pod_routes.contains("default via 169.254.1.1 dev eth0"),
        "{pod_routes}"
    );
    assert!(pod_routes.contains("169.254.1.1 dev eth0"), "{pod_routes}");
    let mac = result_a["interfaces"][1]["mac"].as_str().expect("mac");
    let link = pod_a.exec_ok(&["ip", "-o", "link", "show", "eth0"]);
    assert!(link.contains(mac) && link.contains(",UP"), "{link}");
    // And the node routes the pod's address to its veth.
    let host = result_a["interfaces"][0]["name"].as_str().expect("host");
    let node_routes = routes(&node.netns);
    assert!(
        node_routes.contains(&format!("{ip_a} dev {host} ")),
        "{node_routes}"
    );
    assert_eq!(
        node.netns
            .exec_ok(&["cat", &format!("/proc/sys/net/ipv4/conf/{host}/proxy_arp")])
            .trim(),
        "1"
    );

    // Real traffic, both ways.
    tcp_round_trip(&pod_a, ip_a, &pod_b, ip_b);
    tcp_round_trip(&pod_b, ip_b, &pod_a, ip_a);

    // A second ADD is the same ADD: same result, no second address.
    let again = node.cni("ADD", &id_a, &pod_a, &node.config());
    assert_eq!(again.ok().stdout, out_a.stdout);
    let status = node.status();
    assert_eq!((status.endpoints, status.addresses_free), (2, 251));

    // CHECK with the result of the ADD as prevResult, as the runtime sends it.
    let mut check_config: Value = serde_json::from_str(&node.config()).expect("config");
    check_config["prevResult"] = result_a.clone();
    let out = node.cni("CHECK", &id_a, &pod_a, &check_config.to_string());
    assert_eq!(out.ok().stdout, "");

    // Someone removes the pod's eth0 behind the plugin's back.
    pod_a.exec_ok(&["ip", "link", "del", "eth0"]);
    let (code, msg) = node
        .cni("CHECK", &id_a, &pod_a, &check_config.to_string())
        .error();
    assert_eq!(code, 102);
    assert!(msg.ends_with("is missing"), "{msg}");

    // DEL removes what is left and releases the address; a second DEL succeeds too.
    node.cni("DEL", &id_a, &pod_a, &node.config()).ok();
    node.cni("DEL", &id_a, &pod_a, &node.config()).ok();
    node.cni("DEL", &id_b, &pod_b, &node.config()).ok();
    assert_eq!(node.links(), ["lo"]);
    assert_eq!(link_names(&pod_a), ["lo"]);
    assert_eq!(link_names(&pod_b), ["lo"]);
    let status = node.status();
    assert_eq!((status.endpoints, status.addresses_free), (0, 253));
    assert!(
        !routes(&node.netns).contains("10.244.0."),
        "no node route left"
    );
    // A DEL for a container the agent never saw succeeds.
    node.cni("DEL", "never-added", &pod_a, &node.config()).ok();
}

#[test]
fn errors_carry_the_spec_codes_and_leave_nothing_behind() {
    let mut node = Node::new();
    let pod = Netns::new();
    let id = container_id();

    let (code, msg) = node.cni("ADD", &id, &pod, "{not json").error();
    assert_eq!(code, 6, "{msg}");

    let netns_path = pod.path().display().to_string();
    let (code, msg) = node
        .cni_env(
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_NETNS", &netns_path),
                ("CNI_IFNAME", "eth0"),
                ("CNI_PATH", "/opt/cni/bin"),
            ],
            &node.config(),
        )
        .error();
    assert_eq!(
        (code, msg.as_str()),
        (4, "CNI_CONTAINERID is required for ADD")
    );

    let old = node.config().replace("1.0.0", "0.2.0");
    let (code, msg) = node.cni("ADD", &id, &pod, &old).error();
    assert_eq!(code, 1, "{msg}");
    assert!(msg.contains("0.2.0"), "{msg}");

    // A namespace that does not exist: the container is unknown.
    let gone = node.cni_env(
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", &id),
            ("CNI_NETNS", "/run/netns/myelin-it-does-not-exist"),
            ("CNI_IFNAME", "eth0"),
        ],
        &node.config(),
    );
    assert_eq!(gone.error().0, 3);

    // The interface name is taken in the pod: nothing of ours may stay, no address leaks.
    pod.add_link("eth0", &[]);
    let (code, msg) = node.cni("ADD", &id, &pod, &node.config()).error();
    assert_eq!(code, 103, "{msg}");
    assert_eq!(node.links(), ["lo"]);
    assert_eq!(node.status().addresses_free, 253);
    pod.exec_ok(&["ip", "link", "del", "eth0"]);

    // The agent is down: try again later, and no veth left behind.
    node.stop_agent();
    let down = node.cni("ADD", &id, &pod, &node.config());
    let (code, msg) = down.error();
    assert_eq!(code, 11, "{msg}");
    assert!(msg.contains("agent unreachable"), "{msg}");
    assert_eq!(node.links(), ["lo"]);
    assert_eq!(link_names(&pod), ["lo"]);
    let (code, _) = node.cni("STATUS", "", &pod, &node.config()).error();
    assert_eq!(code, 50);

    node.start_agent();
    node.cni("STATUS", "", &pod, &node.config()).ok();
    let status = node.status();
    assert_eq!((status.endpoints, status.addresses_free), (0, 253));
}

#[test]
fn an_agent_restart_keeps_the_allocation() {
    let mut node = Node::new();
    let pod = Netns::new();
    let id = container_id();
    let first = node.cni("ADD", &id, &pod, &node.config()).ok().json();

    node.stop_agent();
    assert!(
        !node.socket().exists(),
        "a graceful stop removes the socket"
    );
    node.start_agent();

    let status = node.status();
    assert_eq!((status.endpoints, status.addresses_free), (1, 252));
    let again = node.cni("ADD", &id, &pod, &node.config()).ok().json();
    assert_eq!(again, first, "same address, same interfaces");
    let other = node
        .cni("ADD", &container_id(), &Netns::new(), &node.config())
        .ok()
        .json();
    assert_ne!(pod_ip(&other), pod_ip(&first));
}

#[test]
fn a_thousand_add_del_cycles_leak_nothing() {
    let node = Node::new();
    let pod = Netns::new();
    // Tests running alongside create `myelin-it-*` and, through `myelin up`, `myit<pid>x*`
    // namespaces; anything else is new.
    let embedded = format!("myit{}x", std::process::id());
    let foreign_namespaces = || -> Vec<String> {
        crate::netns::list()
            .into_iter()
            .filter(|name| !name.starts_with("myelin-it-") && !name.starts_with(&embedded))
            .collect()
    };
    let before = foreign_namespaces();
    for _ in 0..1000 {
        let id = container_id();
        node.cni("ADD", &id, &pod, &node.config()).ok();
        node.cni("DEL", &id, &pod, &node.config()).ok();
    }
    let status = node.status();
    assert_eq!((status.endpoints, status.addresses_free), (0, 253));
    assert_eq!(node.links(), ["lo"]);
    assert_eq!(link_names(&pod), ["lo"]);
    assert!(
        !routes(&node.netns).contains("10.244.0."),
        "no node route left"
    );
    assert_eq!(foreign_namespaces(), before);
    assert!(pod.path().exists() && node.netns.path().exists());
}

/// A stand-in agent that allocates, then fails `endpoint-ready`: the plugin has created the
/// veth and configured the pod by then, so this is the half-way failure to roll back. Returns
/// the requests it saw.
fn failing_agent(socket: &Path) -> std::thread::JoinHandle<Vec<String>> {
    let listener = std::os::unix::net::UnixListener::bind(socket).expect("bind fake agent");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for _ in 0..250 {
            let mut stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    pause();
                    continue;
                }
                Err(err) => panic!("accept: {err}"),
            };
            stream.set_nonblocking(false).expect("blocking");
            let mut line = Vec::new();
            BufReader::new(&stream)
                .read_until(b'\n', &mut line)
                .expect("read request");
            let request: Request = agent_api::decode_line("request", &line).expect("request");
            let response = match &request {
                Request::EndpointAdd(add) => {
                    seen.push("endpoint-add".to_owned());
                    Response::Endpoint(agent_api::Endpoint {
                        container_id: add.container_id.clone(),
                        id: 1,
                        ifname: add.ifname.clone(),
                        netns: add.netns.clone(),
                        pod: add.pod.clone(),
                        ipv4: Ipv4Addr::new(10, 244, 0, 9),
                        gateway: agent_api::POD_GATEWAY,
                        host: None,
                        container_mac: None,
                        state: agent_api::EndpointState::WaitingForNetns,
                        identity: None,
                    })
                }
                Request::EndpointReady(_) => {
                    seen.push("endpoint-ready".to_owned());
                    Response::Error(agent_api::ApiError::new(
                        agent_api::ErrorCode::Internal,
                        "disk full",
                    ))
                }
                Request::EndpointDelete(_) => {
                    seen.push("endpoint-delete".to_owned());
                    stream
                        .write_all(&agent_api::encode_line(&Response::Deleted(
                            agent_api::Deleted { endpoint: None },
                        )))
                        .expect("answer");
                    return seen;
                }
                other => panic!("unexpected request {other:?}"),
            };
            stream
                .write_all(&agent_api::encode_line(&response))
                .expect("answer");
        }
        seen
    })
}

#[test]
fn a_failure_half_way_rolls_back_the_veth_and_the_address() {
    let node = Netns::new();
    let pod = Netns::new();
    let dir = TestDir::new();
    let socket = dir.0.join("fake-agent.sock");
    let agent = failing_agent(&socket);
    let config = config(&socket);
    let netns_path = pod.path().display().to_string();
    let out = run_cni(
        Some(node.name()),
        &[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", &container_id()),
            ("CNI_NETNS", &netns_path),
            ("CNI_IFNAME", "eth0"),
        ],
        &config,
    );
    let (code, msg) = out.error();
    assert_eq!(code, 100, "{msg}");
    assert!(msg.ends_with("internal error: disk full"), "{msg}");
    assert!(
        out.stderr.contains("rollback: deleted veth"),
        "{}",
        out.stderr
    );
    assert_eq!(
        agent.join().expect("fake agent"),
        ["endpoint-add", "endpoint-ready", "endpoint-delete"],
        "the address was released"
    );
    assert_eq!(link_names(&node), ["lo"]);
    assert_eq!(link_names(&pod), ["lo"]);
    assert!(!routes(&node).contains("10.244.0.9"), "no node route left");
}
