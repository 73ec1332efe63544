//! Every example's tutorial steps on a real embedded node: the steps and verdicts of
//! `cmd/tests/traces/*.txt` (which `myelin policy trace` is held to offline), applied with
//! `myelin apply -f` / `delete -f` and measured with `myelin probe` on real traffic, one node
//! per example and the probes of a step in parallel.
//!
//! A "world" namespace behind the node stands for the internet: it owns the addresses the
//! traces name (`world:IP`, `--fqdn-ip NAME=IP`), serves HTTP on 80 and 443, and is the source
//! of `--from world:IP` probes.
//!
//! A line with `--http-method` sends that request (with `--http-path` and `--http-host`) and
//! must get the status the trace names: 200 from the pod, or 403 `Access denied` from the L7
//! proxy, on real traffic through the datapath's redirect. A `--dns NAME` line asks kube-dns
//! for NAME; a `--to fqdn:NAME` line first has the pod look NAME up the same way (through the
//! DNS proxy, which learns the answer), then connects to the address. The world answers the
//! names of `--fqdn-ip` (kube-dns forwards to it, as CoreDNS forwards to the node's resolver).
//! A step's lines that need no lookup run first: what a bare address may reach is decided
//! before the step's lookups teach the node its names.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;

use schema::k8s_openapi::api::core::v1::Service;
use schema::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schema::object::Object;

use crate::cni::binary;
use crate::embedded::{Embedded, describe, examples};

/// The only source address `--from world:IP` lines use.
const WORLD_SOURCE: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);

/// The internet, as seen from the node: a namespace routed behind it.
struct World {
    netns: String,
    server: Option<Child>,
}

impl World {
    /// Wires a namespace to the node's, owning `addresses` (and [`WORLD_SOURCE`]), with the
    /// node's default route pointing at it.
    fn attach(
        node: &Embedded,
        addresses: &[Ipv4Addr],
        names: &[String],
        serve_args: &[&str],
    ) -> World {
        let node_netns = node.instance().node_netns;
        let netns = format!("{}-world", node.name());
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("run ip");
            assert!(out.status.success(), "ip {args:?}: {}", describe(&out));
        };
        ip(&["netns", "add", &netns]);
        // From here on, Drop removes the namespace (and with it the veth pair).
        let mut world = World {
            server: None,
            netns,
        };
        let w = world.netns.as_str();
        ip(&[
            "-n",
            &node_netns,
            "link",
            "add",
            "world0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            w,
        ]);
        ip(&[
            "-n",
            &node_netns,
            "addr",
            "add",
            "169.254.42.1/30",
            "dev",
            "world0",
        ]);
        ip(&["-n", &node_netns, "link", "set", "world0", "up"]);
        ip(&["-n", w, "addr", "add", "169.254.42.2/30", "dev", "eth0"]);
        ip(&["-n", w, "link", "set", "eth0", "up"]);
        ip(&["-n", w, "link", "set", "lo", "up"]);
        let mut owned = std::collections::BTreeSet::from([WORLD_SOURCE]);
        owned.extend(addresses);
        for address in &owned {
            ip(&[
                "-n",
                w,
                "addr",
                "add",
                &format!("{address}/32"),
                "dev",
                "lo",
            ]);
        }
        ip(&[
            "-n",
            w,
            "route",
            "add",
            "default",
            "via",
            "169.254.42.1",
            "src",
            &WORLD_SOURCE.to_string(),
        ]);
        ip(&[
            "-n",
            &node_netns,
            "route",
            "add",
            "default",
            "via",
            "169.254.42.2",
        ]);
        world.server = Command::new(binary("myelin"))
            .args([
                "serve",
                "--pod",
                "world/internet",
                "--tcp",
                "80",
                "--tcp",
                "443",
            ])
            .args(["--udp", "53", "--netns", &format!("/run/netns/{w}")])
            .args(serve_args)
            .args(
                names
                    .iter()
                    .flat_map(|record| ["--dns-record", record.as_str()]),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(Some)
            .expect("start the world's server");
        world
    }

    fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.netns)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.netns])
            .output();
    }
}

/// One line of a trace file, as the kernel must answer it today.
struct Check {
    line: String,
    from: From,
    to: Ipv4Addr,
    port: String,
    /// Allowed (answered or refused) rather than dropped.
    allowed: bool,
    /// The request to send (`GET /` if empty).
    http: HttpFlags,
    /// The HTTP status the answer must have.
    status: Option<u16>,
    /// `--dns NAME`: the query to send.
    dns: Option<String>,
    /// A `fqdn:` line: the name to look up from the same pod at kube-dns first.
    resolve: Option<(String, Ipv4Addr)>,
}

/// `--http-method`, `--http-path`, `--http-host` of a trace line, as `myelin probe` takes them.
type HttpFlags = Vec<(String, String)>;

enum From {
    Pod(String),
    World,
    Node,
}

/// What a trace line needs: flags by name, the expected verdict and HTTP status.
struct Line {
    text: String,
    flags: BTreeMap<String, String>,
    verdict: String,
    /// The HTTP status the line expects (`http=200`).
    http: Option<u16>,
}

fn parse_line(text: &str) -> Line {
    let (flags, expect) = text.split_once("=>").expect("a trace line has `=>`");
    let words: Vec<&str> = flags.split_whitespace().collect();
    let flags = words
        .chunks(2)
        .map(|pair| {
            let value = pair.get(1).copied().unwrap_or_default();
            (
                pair[0].trim_start_matches("--").to_owned(),
                value.to_owned(),
            )
        })
        .collect();
    let mut expect = expect.split_whitespace();
    Line {
        text: text.to_owned(),
        flags,
        verdict: expect.next().expect("a verdict").to_owned(),
        http: expect.find_map(|w| w.strip_prefix("http=")?.parse().ok()),
    }
}

/// The steps of a trace file: (manifest directories, lines).
fn steps(example: &str) -> Vec<(Vec<String>, Vec<Line>)> {
    let path = examples().join(format!("../cmd/tests/traces/{example}.txt"));
    let text = std::fs::read_to_string(&path).expect("read the trace file");
    let mut steps: Vec<(Vec<String>, Vec<Line>)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(dirs) = line.strip_prefix("manifests:") {
            steps.push((
                dirs.split_whitespace().map(str::to_owned).collect(),
                Vec::new(),
            ));
        } else {
            steps
                .last_mut()
                .expect("`manifests:` comes first")
                .1
                .push(parse_line(line));
        }
    }
    steps
}

/// The node of one tutorial, with its services and the world behind it.
struct Tutorial {
    node: Embedded,
    world: World,
    services: BTreeMap<String, Service>,
}

impl Tutorial {
    fn up(example: &str) -> Tutorial {
        Tutorial::up_with(example, &[])
    }

    /// [`Tutorial::up`] with more arguments for the world's `myelin serve`.
    fn up_with(example: &str, world_args: &[&str]) -> Tutorial {
        let node = Embedded::up_with(
            &examples().join(example),
            // The world answers from its own address, which a resolver must ask.
            &["--dns-upstream", &WORLD_SOURCE.to_string()],
        );
        let mut services = BTreeMap::new();
        let app = examples().join(example).join("app");
        for entry in std::fs::read_dir(&app).expect("read app/") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("read a manifest");
            for object in schema::manifest::parse_str(&path.display().to_string(), &text) {
                if let Ok(Object::Service(svc)) = object {
                    let ns = svc.metadata.namespace.clone().unwrap_or("default".into());
                    let name = svc.metadata.name.clone().unwrap_or_default();
                    services.insert(format!("{ns}/{name}"), *svc);
                }
            }
        }
        let mut world_addresses = Vec::new();
        let mut world_names = Vec::new();
        for (_, lines) in steps(example) {
            for line in lines {
                for key in ["to", "from"] {
                    if let Some(ip) = line.flags.get(key).and_then(|v| v.strip_prefix("world:")) {
                        world_addresses.push(ip.parse().expect("a world address"));
                    }
                }
                if let Some((name, ip)) = line.flags.get("fqdn-ip").and_then(|v| v.split_once('='))
                {
                    world_addresses.push(ip.parse().expect("an fqdn address"));
                    world_names.push(format!("{name}={ip}"));
                }
            }
        }
        let world = World::attach(&node, &world_addresses, &world_names, world_args);
        Tutorial {
            node,
            world,
            services,
        }
    }

    /// The service's first backend (what the pods' hosts files name) and target port.
    fn service(&self, key: &str, port: u16, protocol: &str) -> (Ipv4Addr, u16) {
        let svc = self
            .services
            .get(key)
            .expect("the trace names a known service");
        let spec = svc.spec.as_ref().expect("service spec");
        let selector = spec.selector.clone().unwrap_or_default();
        let target = spec
            .ports
            .iter()
            .flatten()
            .find(|p| {
                p.port == i32::from(port) && p.protocol.as_deref().unwrap_or("TCP") == protocol
            })
            .map_or(port, |p| match &p.target_port {
                Some(IntOrString::Int(n)) => u16::try_from(*n).expect("a port"),
                _ => port,
            });
        let (ns, _) = key.split_once('/').expect("ns/name");
        let instance = self.node.instance();
        let backend = instance
            .pods
            .iter()
            .find(|(pod, record)| {
                pod.starts_with(&format!("{ns}/"))
                    && selector
                        .iter()
                        .all(|(k, v)| record.labels.get(k) == Some(v))
            })
            .map(|(_, record)| record.ipv4)
            .expect("the service has a backend");
        (backend, target)
    }

    /// What `line` must get on real traffic.
    fn check(&self, line: &Line) -> Check {
        let flag = |name: &str| line.flags.get(name).map(String::as_str);
        let from = match flag("from").expect("--from") {
            from if from.starts_with("world:") => {
                assert_eq!(from, format!("world:{WORLD_SOURCE}"), "{}", line.text);
                From::World
            }
            pod => From::Pod(pod.to_owned()),
        };
        let (port, protocol) = match flag("dns") {
            Some(_) => ("53", "UDP"),
            None => flag("port")
                .expect("--port")
                .split_once('/')
                .expect("PORT/PROTOCOL"),
        };
        let port: u16 = port.parse().expect("a port");
        let to = flag("to").unwrap_or("svc:kube-system/kube-dns");
        let mut resolve = None;
        let (to, port) = if let Some(svc) = to.strip_prefix("svc:") {
            self.service(svc, port, protocol)
        } else if let Some(ip) = to.strip_prefix("world:") {
            (ip.parse().expect("an address"), port)
        } else if let Some(name) = to.strip_prefix("fqdn:") {
            let (kube_dns, _) = self.service("kube-system/kube-dns", 53, "UDP");
            resolve = Some((name.to_owned(), kube_dns));
            let ip = flag("fqdn-ip")
                .and_then(|v| v.strip_prefix(&format!("{name}=")))
                .expect("--fqdn-ip for the name");
            (ip.parse().expect("an address"), port)
        } else {
            (self.node.pod(to).1, port)
        };
        // A 403 from the proxy is an answer: the connection was let through to it.
        let allowed = line.verdict == "allowed" || line.http.is_some();
        let http_flags: HttpFlags = ["http-method", "http-path", "http-host"]
            .into_iter()
            .filter_map(|name| Some((format!("--{name}"), flag(name)?.to_owned())))
            .collect();
        Check {
            line: line.text.clone(),
            from,
            to,
            port: format!("{port}/{protocol}"),
            allowed,
            http: http_flags,
            status: line.http,
            // A client of port 53/UDP speaks DNS: the DNS proxy drops anything else, as Cilium's.
            dns: flag("dns").map(str::to_owned).or_else(|| {
                (port == 53 && protocol == "UDP")
                    .then(|| "kubernetes.default.svc.cluster.local".to_owned())
            }),
            resolve,
        }
    }

    /// Runs the checks in parallel; the lines whose real verdict differs.
    fn probe_all(&self, checks: &[Check]) -> Vec<String> {
        thread::scope(|scope| {
            let probes: Vec<_> = checks
                .iter()
                .map(|check| scope.spawn(move || (check, self.probe(check))))
                .collect();
            probes
                .into_iter()
                .filter_map(|probe| {
                    let (check, answer) = probe.join().expect("probe thread");
                    let Ok(answer) = serde_json::from_str::<serde_json::Value>(&answer) else {
                        return Some(format!("{}: probe said {answer:?}", check.line));
                    };
                    let verdict = answer["verdict"].as_str().unwrap_or_default();
                    let status = answer["http_status"].as_u64();
                    // Only a 403 answer counts as denied yet reached.
                    let allowed = match verdict {
                        "allowed" | "refused" => true,
                        "denied" => status == Some(403),
                        other => return Some(format!("{}: probe said {other:?}", check.line)),
                    };
                    if allowed != check.allowed {
                        return Some(format!(
                            "{}: the kernel {} it (probe: {answer})",
                            check.line,
                            if allowed { "allowed" } else { "dropped" }
                        ));
                    }
                    match check.status {
                        Some(want) if status != Some(u64::from(want)) => Some(format!(
                            "{}: expected HTTP {want} (probe: {answer})",
                            check.line
                        )),
                        _ => None,
                    }
                })
                .collect()
        })
    }

    fn probe(&self, check: &Check) -> String {
        let mut args = vec!["probe".to_owned()];
        match &check.from {
            From::Pod(pod) => args.extend(["--from".to_owned(), pod.clone()]),
            From::World => args.extend([
                "--from-netns".to_owned(),
                self.world.path().display().to_string(),
            ]),
            From::Node => args.extend([
                "--from-netns".to_owned(),
                format!("/run/netns/{}", self.node.instance().node_netns),
            ]),
        }
        args.extend([
            "--to".to_owned(),
            check.to.to_string(),
            "--port".to_owned(),
            check.port.clone(),
            "--timeout".to_owned(),
            "1s".to_owned(),
            "-o".to_owned(),
            "json".to_owned(),
        ]);
        for (name, value) in &check.http {
            args.extend([name.clone(), value.clone()]);
        }
        if let Some(name) = &check.dns {
            args.extend(["--dns".to_owned(), name.clone()]);
        }
        if let Some((name, server)) = &check.resolve {
            // The pod's own lookup, as curl would make it; its answer is not the point.
            let mut lookup = args[..3].to_vec();
            lookup.extend([
                "--to".to_owned(),
                server.to_string(),
                "--port".to_owned(),
                "53/UDP".to_owned(),
                "--dns".to_owned(),
                name.clone(),
            ]);
            let lookup: Vec<&str> = lookup.iter().map(String::as_str).collect();
            self.node.myelin(&lookup);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.node.myelin(&args);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Every step in order: its policy directories applied (and the previous step's that it
    /// does not keep deleted), then its lines probed. `extra` adds checks to a step.
    fn run(self, example: &str, extra: impl Fn(&[String]) -> Vec<Check>) {
        let mut applied: Vec<String> = Vec::new();
        let mut failures = Vec::new();
        for (dirs, lines) in steps(example) {
            let wanted: Vec<String> = dirs
                .iter()
                .filter(|d| !d.ends_with("/app"))
                .cloned()
                .collect();
            let root = examples().join("..");
            for dir in applied.iter().rev().filter(|d| !wanted.contains(d)) {
                self.node
                    .myelin_ok(&["delete", "-f", &root.join(dir).display().to_string()]);
            }
            for dir in wanted.iter().filter(|d| !applied.contains(d)) {
                self.node
                    .myelin_ok(&["apply", "-f", &root.join(dir).display().to_string()]);
            }
            applied = wanted;
            let mut checks: Vec<Check> = lines.iter().map(|line| self.check(line)).collect();
            checks.extend(extra(&applied));
            let (lookups, plain): (Vec<Check>, Vec<Check>) = checks
                .into_iter()
                .partition(|c| c.dns.is_some() || c.resolve.is_some());
            for phase in [plain, lookups] {
                failures.extend(
                    self.probe_all(&phase)
                        .into_iter()
                        .map(|f| format!("[{}] {f}", dirs.join(" "))),
                );
            }
        }
        assert!(
            failures.is_empty(),
            "{example}: {} lines differ:\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}

#[test]
fn starwars_tutorial_steps_on_real_traffic() {
    Tutorial::up("starwars").run("starwars", |_| Vec::new());
}

/// Also, under default-deny ingress in foo: the node itself still reaches its pods (Cilium's
/// `allow-localhost`), since its own address is `reserved:host` rather than world; and httpbin's
/// own connection out is answered (the reply passes its enforced ingress) while the same
/// pair's connection the other way is dropped.
#[test]
fn sleep_httpbin_tutorial_steps_on_real_traffic() {
    let httpbin = Ipv4Addr::new(10, 244, 1, 10);
    let coredns = Ipv4Addr::new(10, 244, 0, 2);
    Tutorial::up("sleep-httpbin").run("sleep-httpbin", |applied| {
        if applied != ["examples/sleep-httpbin/policy-deny"] {
            return Vec::new();
        }
        let check = |line: &str, from: From, to, port: &str, allowed| Check {
            line: line.to_owned(),
            from,
            to,
            port: port.to_owned(),
            allowed,
            http: Vec::new(),
            status: None,
            dns: None,
            resolve: None,
        };
        vec![
            check(
                "--from the node --to foo/httpbin --port 80/TCP => allowed",
                From::Node,
                httpbin,
                "80/TCP",
                true,
            ),
            check(
                "--from foo/httpbin --to kube-system/coredns --port 53/TCP => allowed",
                From::Pod("foo/httpbin".to_owned()),
                coredns,
                "53/TCP",
                true,
            ),
            check(
                "--from kube-system/coredns --to foo/httpbin --port 80/TCP => denied",
                From::Pod("kube-system/coredns".to_owned()),
                httpbin,
                "80/TCP",
                false,
            ),
        ]
    });
}

#[test]
fn bookinfo_tutorial_steps_on_real_traffic() {
    Tutorial::up("bookinfo").run("bookinfo", |_| Vec::new());
}

#[test]
fn mediabot_tutorial_steps_on_real_traffic() {
    Tutorial::up("mediabot").run("mediabot", |_| Vec::new());
}

/// What the DNS proxy learned survives the agent: after a SIGKILL and `myelin up` again, the
/// mediabot still reaches api.github.com's address without looking it up again (the cache is
/// read back before the derivation runs, so the pinned ipcache entry is kept, not pruned),
/// and support.github.com's stays denied.
#[test]
fn learned_names_survive_an_agent_restart() {
    let tutorial = Tutorial::up("mediabot");
    let node = &tutorial.node;
    node.myelin_ok(&[
        "apply",
        "-f",
        &examples()
            .join("mediabot/policy-matchname")
            .display()
            .to_string(),
    ]);
    let (api, support) = (
        Ipv4Addr::new(140, 82, 121, 6),
        Ipv4Addr::new(185, 199, 108, 133),
    );
    let (kube_dns, _) = tutorial.service("kube-system/kube-dns", 53, "UDP");
    let probe = |to: Ipv4Addr, port: &str, extra: &[&str]| {
        let mut args = vec![
            "probe".to_owned(),
            "--from".to_owned(),
            "default/mediabot".to_owned(),
            "--to".to_owned(),
            to.to_string(),
            "--port".to_owned(),
            port.to_owned(),
            "--timeout".to_owned(),
            "1s".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = node.myelin(&args);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(probe(api, "443/TCP", &[]), "denied", "not looked up yet");
    assert_eq!(
        probe(kube_dns, "53/UDP", &["--dns", "api.github.com"]),
        "allowed"
    );
    assert_eq!(probe(api, "443/TCP", &[]), "allowed", "after the lookup");
    // The cache's keeper saves the file after the table changed.
    let cache = node.run_dir().join("state/fqdn-names");
    let read = || std::fs::read_to_string(&cache).unwrap_or_default();
    for _ in 0..250 {
        if read().contains("140.82.121.6 api.github.com ") {
            break;
        }
        crate::cni::pause();
    }
    let saved = read();
    assert!(saved.contains("140.82.121.6 api.github.com "), "{saved}");

    node.kill_agent();
    let up = node.myelin(&[
        "up",
        &examples().join("mediabot").display().to_string(),
        "--name",
        node.name(),
    ]);
    assert!(up.status.success(), "restart failed: {}", describe(&up));
    node.myelin_ok(&["status"]);
    assert_eq!(
        probe(api, "443/TCP", &[]),
        "allowed",
        "after the restart, without a new lookup"
    );
    assert_eq!(probe(support, "443/TCP", &[]), "denied");
}

/// A learned name holds for its answer's TTL; then it goes, unless a connection to its
/// address is alive (Cilium's zombies): that connection carries on. Here the world answers
/// with a 4 second TTL, time enough to open the connection on a loaded machine.
#[test]
fn learned_names_expire_with_their_ttl_unless_a_connection_is_alive() {
    let tutorial = Tutorial::up_with("mediabot", &["--dns-ttl", "4"]);
    let node = &tutorial.node;
    node.myelin_ok(&[
        "apply",
        "-f",
        &examples()
            .join("mediabot/policy-matchname")
            .display()
            .to_string(),
    ]);
    let api = Ipv4Addr::new(140, 82, 121, 6);
    let (kube_dns, _) = tutorial.service("kube-system/kube-dns", 53, "UDP");
    for name in ["api.github.com", "support.github.com"] {
        let out = node.myelin_ok(&[
            "probe",
            "--from",
            "default/mediabot",
            "--to",
            &kube_dns.to_string(),
            "--port",
            "53/UDP",
            "--dns",
            name,
        ]);
        assert_eq!(out.trim(), "allowed", "{name}");
    }
    let (mediabot, _) = node.pod("default/mediabot");
    let mut kept = crate::agent_restart::KeepAlive::open(&mediabot, api);
    kept.get(1).expect("api.github.com's address is allowed");

    let cache = node.run_dir().join("state/fqdn-names");
    let read = || std::fs::read_to_string(&cache).unwrap_or_default();
    let mut saved = read();
    // The collector wakes at the expiry; at most 15 s.
    for _ in 0..750 {
        if !saved.contains("support.github.com") {
            break;
        }
        crate::cni::pause();
        saved = read();
    }
    assert!(
        !saved.contains("support.github.com"),
        "support.github.com outlived its TTL with no connection: {saved}"
    );
    assert!(
        saved.contains("api.github.com"),
        "api.github.com went while a connection to it is open: {saved}"
    );
    kept.get(2)
        .expect("the open connection outlives the answer that allowed it");
}
