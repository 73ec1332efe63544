//! Embedded-mode workloads between real namespaces: the built-in pod server (`myelin serve`),
//! `myelin probe` and `probe matrix` against it, and `myelin exec`, run as users run them.
//! A policy drop is silence on the wire; here a blackhole route or rule makes that silence.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use expect_test::expect;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
// Works without a runtime; std's is disallowed so that paused-time tests stay possible.
use tokio::time::Instant;

use crate::cni::binary;
use crate::netns::Netns;

const CLIENT_IP: &str = "10.0.0.1";
const SERVER_IP: &str = "10.0.0.2";

/// `myelin serve` running in a namespace; killed on drop.
struct Server(Child);

impl Server {
    /// Starts the server in `netns` and returns once every port is bound (it logs `serving`).
    fn start(netns: &Netns, pod: &str, ports: &[&str]) -> Server {
        let mut child = Command::new(binary("myelin"))
            .args(["serve", "--pod", pod, "--netns"])
            .arg(netns.path())
            .args(ports)
            .env("MYELIN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn myelin serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let mut seen = String::new();
        let server = Server(child);
        loop {
            let mut line = String::new();
            let n = stderr.read_line(&mut line).expect("read serve's log");
            assert!(n > 0, "myelin serve exited before serving:\n{seen}");
            seen.push_str(&line);
            if line.contains(" serving ") {
                break;
            }
        }
        // Keep the pipe drained so logging never blocks the server.
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        server
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM, as `myelin up` stops it; returns whether it exited cleanly.
    fn stop(mut self) -> bool {
        let pid = Pid::from_raw(i32::try_from(self.pid()).expect("pid fits"));
        kill(pid, Signal::SIGTERM).expect("SIGTERM");
        self.0.wait().expect("wait for serve").success()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A client and a server namespace joined by a veth, the server's pod `default/web` serving
/// 80/TCP, 8080/TCP and 53/UDP. Fields drop in order: the server before its namespace.
struct Pair {
    server: Option<Server>,
    client: Netns,
    server_ns: Netns,
}

impl Pair {
    fn new() -> Pair {
        let client = Netns::new();
        let server_ns = Netns::new();
        client.add_veth_to(&server_ns, "wc", "ws");
        client.exec_ok(&["ip", "addr", "add", &format!("{CLIENT_IP}/24"), "dev", "wc"]);
        server_ns.exec_ok(&["ip", "addr", "add", &format!("{SERVER_IP}/24"), "dev", "ws"]);
        let server = Server::start(
            &server_ns,
            "default/web",
            &["--tcp", "80", "--tcp", "8080", "--udp", "53"],
        );
        Pair {
            server: Some(server),
            client,
            server_ns,
        }
    }

    fn probe(&self, port: &str, extra: &[&str]) -> (i32, String) {
        let client = self.client.path().display().to_string();
        myelin(
            &[
                &[
                    "probe",
                    "--from-netns",
                    &client,
                    "--to",
                    SERVER_IP,
                    "--port",
                    port,
                ],
                extra,
            ]
            .concat(),
        )
    }

    /// `-o json` as printed, with the client namespace's name (it holds the pid) made stable.
    fn probe_json_text(&self, port: &str, extra: &[&str]) -> (i32, String) {
        let (code, stdout) = self.probe(port, &[&["-o", "json"], extra].concat());
        (code, stdout.replace(self.client.name(), "CLIENT"))
    }

    fn probe_json(&self, port: &str, extra: &[&str]) -> (i32, Value) {
        let (code, stdout) = self.probe_json_text(port, extra);
        let json = serde_json::from_str(&stdout).expect("probe prints JSON");
        (code, json)
    }
}

fn run(command: &mut Command) -> Output {
    command.output().expect("run myelin")
}

/// Runs `myelin args..`; returns the exit code and stdout.
fn myelin(args: &[&str]) -> (i32, String) {
    let output = run(Command::new(binary("myelin")).args(args));
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
    )
}

#[test]
fn probe_gets_the_pod_s_answer_and_tells_refused_from_allowed() {
    let mut pair = Pair::new();

    assert_eq!(pair.probe("80/TCP", &[]), (0, "allowed\n".to_owned()));
    let (code, json) = pair.probe_json_text("8080/TCP", &[]);
    assert_eq!(code, 0);
    expect![[r#"
        {"verdict":"allowed","probe":"8080/TCP","from":"/run/netns/CLIENT","to":"10.0.0.2","detail":"HTTP/1.1 200 OK","http_status":200,"body":"default/web GET /\n"}
    "#]]
        .assert_eq(&json);

    // Nothing listens on 81: the server's kernel resets the connection.
    assert_eq!(pair.probe("81/TCP", &[]), (1, "refused\n".to_owned()));

    let (code, json) = pair.probe_json("53/UDP", &[]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["verdict"], "allowed");
    assert_eq!(json["detail"], "echoed");
    let (code, json) = pair.probe_json_text("54/UDP", &[]);
    assert_eq!(code, 1);
    expect![[r#"
        {"verdict":"refused","probe":"54/UDP","from":"/run/netns/CLIENT","to":"10.0.0.2","detail":"port unreachable","http_status":null,"body":null}
    "#]]
        .assert_eq(&json);

    let server = pair.server.take().expect("server");
    assert!(server.stop(), "myelin serve exits 0 on SIGTERM");
}

#[test]
fn a_blackholed_destination_is_denied_after_the_timeout() {
    let pair = Pair::new();
    assert_eq!(pair.probe("80/TCP", &[]), (0, "allowed\n".to_owned()));
    // The server's answers to the client vanish, as a policy drop would make them.
    pair.server_ns.exec_ok(&[
        "ip",
        "route",
        "add",
        "blackhole",
        &format!("{CLIENT_IP}/32"),
    ]);

    for (port, detail) in [
        ("80/TCP", "no connection within 300ms"),
        ("53/UDP", "no answer within 300ms"),
    ] {
        let started = Instant::now();
        let (code, json) = pair.probe_json(port, &["--timeout", "300ms"]);
        let waited = started.elapsed();
        assert_eq!(code, 1, "{json}");
        assert_eq!(json["verdict"], "denied", "{json}");
        assert_eq!(json["detail"], detail, "{json}");
        assert!(
            waited >= Duration::from_millis(300),
            "{port} gave up after {waited:?}"
        );
    }
    assert_eq!(
        pair.probe("80/TCP", &["--timeout", "300ms"]),
        (1, "denied\n".to_owned())
    );
}

#[test]
fn probe_errors_are_not_verdicts() {
    let (code, stdout) = myelin(&[
        "probe",
        "--from-netns",
        "/run/netns/myelin-it-no-such-namespace",
        "--to",
        SERVER_IP,
    ]);
    assert_eq!((code, stdout.as_str()), (2, ""));
    let output = run(Command::new(binary("myelin")).args([
        "probe",
        "--from-netns",
        "/run/netns/myelin-it-no-such-namespace",
        "--to",
        SERVER_IP,
    ]));
    expect![[r#"
        error: open network namespace /run/netns/myelin-it-no-such-namespace: No such file or directory (os error 2)
    "#]]
    .assert_eq(&String::from_utf8_lossy(&output.stderr));
}

#[test]
fn exec_runs_commands_inside_the_namespace() {
    let pair = Pair::new();
    let server_ns = pair.server_ns.path().display().to_string();
    let by_pid = format!(
        "/proc/{}/ns/net",
        pair.server.as_ref().expect("server").pid()
    );
    for netns in [&server_ns, &by_pid] {
        let (code, stdout) = myelin(&["exec", "--netns", netns, "--", "ip", "-4", "-o", "addr"]);
        assert_eq!(code, 0);
        assert!(
            stdout.contains(&format!("inet {SERVER_IP}/24")),
            "{netns}: {stdout}"
        );
        assert!(!stdout.contains(CLIENT_IP), "{netns}: {stdout}");
    }
    // The command's exit code is exec's.
    for netns in [&server_ns, &by_pid] {
        let (code, _) = myelin(&["exec", "--netns", netns, "--", "sh", "-c", "exit 7"]);
        assert_eq!(code, 7, "{netns}");
    }
    // curl from the client pod: two requests on one kept-alive connection.
    let client = pair.client.path().display().to_string();
    let output = run(Command::new(binary("myelin")).args([
        "exec",
        "--netns",
        &client,
        "--",
        "curl",
        "-sSv",
        &format!("http://{SERVER_IP}/a"),
        &format!("http://{SERVER_IP}:80/b?c=d"),
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    expect![[r#"
        default/web GET /a
        default/web GET /b
    "#]]
    .assert_eq(&String::from_utf8_lossy(&output.stdout));
    assert!(stderr.contains("Re-using existing connection"), "{stderr}");
    // stdin passes through too.
    let mut child = Command::new(binary("myelin"))
        .args(["exec", "--netns", &client, "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn exec cat");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"through\n").expect("write stdin");
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read stdout");
    assert!(child.wait().expect("wait").success());
    assert_eq!(out, "through\n");
}

/// Three pods routed through a node namespace, as the CNI plugin wires them: pod i is
/// 10.1.i.2/24 behind 10.1.i.1 on the node. Servers drop before namespaces.
struct Pods {
    servers: Vec<Server>,
    pods: Vec<Netns>,
    _node: Netns,
}

impl Pods {
    fn new(names: &[&str]) -> Pods {
        let node = Netns::new();
        node.exec_ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        let pods: Vec<Netns> = (1..=names.len())
            .map(|i| {
                let pod = Netns::new();
                pod.add_veth_to(&node, "eth0", &format!("p{i}"));
                pod.exec_ok(&[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.1.{i}.2/24"),
                    "dev",
                    "eth0",
                ]);
                node.exec_ok(&[
                    "ip",
                    "addr",
                    "add",
                    &format!("10.1.{i}.1/24"),
                    "dev",
                    &format!("p{i}"),
                ]);
                pod.exec_ok(&[
                    "ip",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("10.1.{i}.1"),
                ]);
                pod
            })
            .collect();
        Pods {
            servers: Vec::new(),
            pods,
            _node: node,
        }
    }

    /// `--pod ns/name,NETNS,IP` for each pod.
    fn args(&self, names: &[&str]) -> Vec<String> {
        names
            .iter()
            .zip(&self.pods)
            .enumerate()
            .flat_map(|(i, (name, pod))| {
                [
                    "--pod".to_owned(),
                    format!("{name},{},10.1.{}.2", pod.path().display(), i + 1),
                ]
            })
            .collect()
    }
}

#[test]
fn probe_matrix_measures_every_pair() {
    let names = ["x/a", "x/b", "y/c"];
    let mut pods = Pods::new(&names);
    for (name, pod) in names.iter().zip(&pods.pods) {
        // x/b serves no TCP port: probes to it on 80/TCP are refused.
        let ports: &[&str] = if *name == "x/b" {
            &["--udp", "53"]
        } else {
            &["--tcp", "80", "--udp", "53"]
        };
        let server = Server::start(pod, name, ports);
        pods.servers.push(server);
    }
    // y/c's web server cannot answer x/a (its replies from port 80 to x/a vanish), while y/c
    // still reaches x/a: one direction only, as an ingress policy on y/c would do.
    pods.pods[2].exec_ok(&[
        "ip",
        "rule",
        "add",
        "pref",
        "10",
        "from",
        "10.1.3.2",
        "to",
        "10.1.1.2",
        "ipproto",
        "tcp",
        "sport",
        "80",
        "blackhole",
    ]);

    let args = pods.args(&names);
    let mut command = vec!["probe", "matrix", "--probe", "80/TCP", "--probe", "53/UDP"];
    command.extend(["--timeout", "500ms"]);
    command.extend(args.iter().map(String::as_str));
    let (code, stdout) = myelin(&command);
    assert_eq!(code, 0);
    expect![[r#"
        80/TCP
        -	x/a	x/b	y/c
        x/a	.	R	X
        x/b	.	R	.
        y/c	.	R	.

        53/UDP
        -	x/a	x/b	y/c
        x/a	.	.	.
        x/b	.	.	.
        y/c	.	.	.
    "#]]
    .assert_eq(&stdout);

    command.extend(["-o", "json"]);
    let (code, stdout) = myelin(&command);
    assert_eq!(code, 0);
    let json: Value = serde_json::from_str(&stdout).expect("matrix JSON");
    expect![[r#"{"allowed":[[true,false,false],[true,false,true],[true,false,true]],"from":["x/a","x/b","y/c"],"probe":"80/TCP","refused":[[false,true,false],[false,true,false],[false,true,false]],"to":["x/a","x/b","y/c"]}"#]]
        .assert_eq(&json["probes"][0].to_string());
}
