//! The datapath reconcilers against real pinned maps, real veths and real TCP: rows in the
//! `ipcache`, `datapath-endpoints` and `policy-entries` tables make traffic pass or drop,
//! deletes remove exactly their entry, a full pass prunes what was written behind the
//! reconcilers' back, and a restart keeps every still-desired entry, link and connection.

use std::collections::{BTreeSet, HashSet};
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use bpf::{
    CtKey, Datapath, EndpointFlags, EndpointInfo, Interface, IpcacheValue, Ipv4Prefix, L4,
    PolicyKey, PolicyValue,
};
use expect_test::expect;
use policy::identity::Identity;
use policy::l7::L7Parser;
use policy::mapstate::{Key, PROTO_TCP, Verdict};
use policy::rule::Direction;
use reconcilers::datapath::{DatapathEndpoint, IpcacheEntry, IpcacheKind, PolicyEntry};
use reconcilers::targets::bpf::{
    DatapathReconcilers, DatapathTables, policy_key, spawn_datapath_reconcilers,
};
use reconcilers::{Health, Status, StatusKind};
use schema::cidr::Cidr;
use statedb::{Db, Txn as _, WriteTxn};
use tokio_util::sync::CancellationToken;

use crate::datapath::{Cluster, HOST_A, HOST_B, POD_A, POD_B, PORT, connect};
use crate::netns::Netns;

const EP_A: u16 = 1;
const EP_B: u16 = 2;
const ID_A: u32 = 40001;
const ID_B: u32 = 40002;
/// A NetworkPolicy `ipBlock` identity.
const ID_BLOCK: u32 = 16_777_300;
const WAIT: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn cidr(text: &str) -> Cidr {
    Cidr::parse_prefix_or_addr(text).expect("cidr")
}

fn ipcache(kind: IpcacheKind, prefix: &str, identity: u32) -> IpcacheEntry {
    IpcacheEntry {
        kind,
        prefix: cidr(prefix),
        identity: Identity(identity),
        status: Status::pending(),
    }
}

fn endpoint(cluster: &Cluster, endpoint_id: u16) -> DatapathEndpoint {
    let (ipv4, ifname, identity) = match endpoint_id {
        EP_A => (POD_A, HOST_A, ID_A),
        _ => (POD_B, HOST_B, ID_B),
    };
    DatapathEndpoint {
        endpoint_id,
        ipv4,
        ifindex: cluster.node.ifindex(ifname),
        ifname: ifname.to_owned(),
        mac: [2, 0, 0, 0, 0, endpoint_id.to_be_bytes()[1]],
        identity: Identity(identity),
        enforce: [true, true],
        status: Status::pending(),
    }
}

/// Lets `peer` reach `endpoint_id` on TCP `port` in `direction`.
fn allow(endpoint_id: u16, direction: Direction, peer: u32, port: u16) -> PolicyEntry {
    PolicyEntry {
        endpoint_id,
        key: Key::new(direction, Identity(peer), PROTO_TCP, port, 16),
        verdict: Verdict::Allow,
        cookie: 0,
        proxy_port: 0,
        status: Status::pending(),
    }
}

/// A's egress to B and B's ingress from A on the echo port, and the pods' addresses.
fn a_to_b_rows(cluster: &Cluster, w: &mut WriteTxn, tables: &DatapathTables) {
    for entry in [
        ipcache(IpcacheKind::Primary, "10.200.0.1/32", ID_A),
        ipcache(IpcacheKind::Primary, "10.200.0.2/32", ID_B),
    ] {
        w.insert(&tables.ipcache, entry)
            .expect("insert ipcache row");
    }
    for id in [EP_A, EP_B] {
        w.insert(&tables.endpoints, endpoint(cluster, id))
            .expect("insert endpoint row");
    }
    for entry in [
        allow(EP_A, Direction::Egress, ID_B, PORT),
        allow(EP_B, Direction::Ingress, ID_A, PORT),
    ] {
        w.insert(&tables.policy, entry).expect("insert policy row");
    }
}

/// The agent's half: a database with the datapath tables and the three reconcilers, which
/// attach to the host veths in the cluster's node namespace.
struct Agent {
    db: Db,
    tables: DatapathTables,
    reconcilers: DatapathReconcilers,
    shutdown: CancellationToken,
}

impl Agent {
    /// Opens the datapath on the cluster's pins; call inside the runtime's context.
    fn start(cluster: &Cluster, rows: impl FnOnce(&mut WriteTxn, &DatapathTables)) -> Agent {
        let db = Db::new();
        let tables = DatapathTables::register(&db).expect("register tables");
        // As the agent does: the tables count as initialized once their source wrote them,
        // and only then may a full pass prune.
        let mut w = db.write_txn(&[&tables.ipcache, &tables.endpoints, &tables.policy]);
        let inits = [
            w.register_initializer(&tables.ipcache, "test")
                .expect("initializer"),
            w.register_initializer(&tables.endpoints, "test")
                .expect("initializer"),
            w.register_initializer(&tables.policy, "test")
                .expect("initializer"),
        ];
        w.commit();
        let datapath = Datapath::open(&cluster.pins.0).expect("open datapath");
        let shutdown = CancellationToken::new();
        let reconcilers = spawn_datapath_reconcilers(
            &db,
            &tables,
            datapath,
            Some(&cluster.node.path()),
            &shutdown,
        )
        .expect("spawn reconcilers");
        let mut w = db.write_txn(&[&tables.ipcache, &tables.endpoints, &tables.policy]);
        rows(&mut w, &tables);
        let [ipcache, endpoints, policy] = inits;
        w.complete_initializer(&tables.ipcache, ipcache)
            .expect("complete");
        w.complete_initializer(&tables.endpoints, endpoints)
            .expect("complete");
        w.complete_initializer(&tables.policy, policy)
            .expect("complete");
        w.commit();
        Agent {
            db,
            tables,
            reconcilers,
            shutdown,
        }
    }

    /// Commits `f`'s writes and waits until all three reconcilers processed them.
    async fn write(&self, f: impl FnOnce(&mut WriteTxn, &DatapathTables)) {
        let t = &self.tables;
        let mut w = self.db.write_txn(&[&t.ipcache, &t.endpoints, &t.policy]);
        f(&mut w, t);
        let txn = w.commit();
        self.wait(&txn).await;
    }

    async fn wait(&self, txn: &statedb::ReadTxn) {
        let (t, r) = (&self.tables, &self.reconcilers);
        tokio::time::timeout(WAIT, async {
            r.ipcache.wait_reconciled(txn.revision(&t.ipcache)).await;
            r.endpoints
                .wait_reconciled(txn.revision(&t.endpoints))
                .await;
            r.policy.wait_reconciled(txn.revision(&t.policy)).await;
        })
        .await
        .expect("reconciled within 10s");
    }

    /// Waits for the first full pass (update all, then prune) of all three reconcilers.
    async fn initial_full_pass(&self) {
        self.wait(&self.db.read_txn()).await;
        self.full_pass_done(0).await;
    }

    /// Runs a full pass of all three now and waits until they pruned.
    async fn full_pass(&self) {
        let before = self.prunes();
        self.reconcilers.trigger_full_reconcile();
        self.full_pass_done(before).await;
    }

    async fn full_pass_done(&self, before: u64) {
        tokio::time::timeout(WAIT, async {
            while self.prunes() < before + 3 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("a full pass within 10s");
    }

    fn prunes(&self) -> u64 {
        let r = &self.reconcilers;
        r.ipcache.metrics().prunes + r.endpoints.metrics().prunes + r.policy.metrics().prunes
    }

    /// Map deletes the reconcilers issued for deleted rows (prunes not included).
    fn deletes(&self) -> u64 {
        let r = &self.reconcilers;
        r.ipcache.metrics().deletes + r.endpoints.metrics().deletes + r.policy.metrics().deletes
    }

    /// Every row's status; they must all be done, and the reconcilers healthy.
    fn assert_all_done(&self) {
        let txn = self.db.read_txn();
        let t = &self.tables;
        let statuses = txn
            .all(&t.ipcache)
            .map(|e| e.object.status.clone())
            .chain(txn.all(&t.endpoints).map(|e| e.object.status.clone()))
            .chain(txn.all(&t.policy).map(|e| e.object.status.clone()));
        for status in statuses {
            assert_eq!(status.kind, StatusKind::Done, "{status}");
        }
        let r = &self.reconcilers;
        for health in [r.ipcache.health(), r.endpoints.health(), r.policy.health()] {
            assert_eq!(health, Health::Ok);
        }
    }

    /// Stops the reconcilers; the datapath closes with the last of them.
    async fn stop(self) {
        self.shutdown.cancel();
        for task in self.reconcilers.tasks {
            task.await.expect("reconciler task");
        }
    }
}

/// What the maps and link pins hold, one sorted line per entry, interfaces by name.
fn maps(probe: &Datapath, cluster: &Cluster) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    for (name, map) in [
        ("ipcache", probe.ipcache().expect("ipcache")),
        ("ipblock", probe.ipblock().expect("ipblock")),
    ] {
        for (prefix, value) in map.iter().expect("iterate") {
            lines.insert(format!("{name} {prefix} {}", value.identity));
        }
    }
    // Only the host veths that still exist.
    let names: Vec<(u32, &str)> = [HOST_A, HOST_B]
        .into_iter()
        .filter_map(|name| {
            let out = cluster
                .node
                .exec(&["cat", &format!("/sys/class/net/{name}/ifindex")]);
            let index = String::from_utf8(out.stdout).ok()?.trim().parse().ok()?;
            Some((index, name))
        })
        .collect();
    for (addr, info) in probe
        .endpoints()
        .expect("endpoints")
        .iter()
        .expect("iterate")
    {
        let ifname = names
            .iter()
            .find(|(index, _)| *index == info.ifindex)
            .map_or_else(
                || format!("ifindex {}", info.ifindex),
                |(_, n)| (*n).to_owned(),
            );
        lines.insert(format!(
            "endpoint {addr} id {} on {ifname} identity {} flags {}",
            info.endpoint_id, info.identity, info.flags.0
        ));
    }
    for (key, value) in probe.policy().expect("policy").iter().expect("iterate") {
        lines.insert(format!("policy {key} {:?}", value.verdict));
    }
    for ifname in probe
        .attached_interfaces(Some(&cluster.node.path()))
        .expect("attached interfaces")
    {
        lines.insert(format!("attached {ifname}"));
    }
    lines
}

fn render(lines: &BTreeSet<String>) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Lines only `before` has (`- `) and lines only `after` has (`+ `).
fn diff(before: &BTreeSet<String>, after: &BTreeSet<String>) -> String {
    let gone = before.difference(after).map(|l| format!("- {l}\n"));
    let new = after.difference(before).map(|l| format!("+ {l}\n"));
    gone.chain(new).collect()
}

/// An echo server in a pod: every connection gets each 4 bytes it sends back reversed, until
/// it closes. Dropping it stops accepting.
struct EchoServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EchoServer {
    fn start(pod: &Netns) -> EchoServer {
        let listener = pod
            .run_in(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT)).expect("bind in the pod"));
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || accept_until(&listener, &stopped));
        EchoServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "a plain thread polling a nonblocking listener; no runtime here"
)]
fn accept_until(listener: &TcpListener, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                std::thread::spawn(move || echo(stream));
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(err) => panic!("accept: {err}"),
        }
    }
}

fn echo(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = [0u8; 4];
    while stream.read_exact(&mut buf).is_ok() {
        buf.reverse();
        if stream.write_all(&buf).is_err() {
            return;
        }
    }
}

/// One exchange on an open connection.
fn exchange(stream: &mut TcpStream, message: &[u8; 4]) -> Result<(), String> {
    stream
        .write_all(message)
        .map_err(|err| format!("write: {err}"))?;
    let mut buf = [0u8; 4];
    stream
        .read_exact(&mut buf)
        .map_err(|err| format!("read: {err}"))?;
    let mut want = *message;
    want.reverse();
    if buf == want {
        Ok(())
    } else {
        Err(format!("echo {buf:?}"))
    }
}

/// A connection from pod A to pod B's echo server.
fn open_connection(pod: &Netns) -> TcpStream {
    let stream = pod.run_in(|| {
        TcpStream::connect_timeout(&SocketAddr::from((POD_B, PORT)), Duration::from_secs(2))
            .expect("connect from pod A")
    });
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("read timeout");
    stream
}

#[test]
fn rows_make_traffic_pass_or_drop_and_deletes_remove_exactly_their_entry() {
    let rt = runtime();
    let _guard = rt.enter();
    let cluster = Cluster::new();
    let _server = EchoServer::start(&cluster.pod_b);
    let agent = Agent::start(&cluster, |w, t| a_to_b_rows(&cluster, w, t));
    rt.block_on(agent.initial_full_pass());
    agent.assert_all_done();
    let probe = Datapath::open(&cluster.pins.0).expect("open probe");
    let before = maps(&probe, &cluster);
    expect![[r#"
        attached lxca
        attached lxcb
        endpoint 10.200.0.1 id 1 on lxca identity 40001 flags 3
        endpoint 10.200.0.2 id 2 on lxcb identity 40002 flags 3
        ipcache 10.200.0.1/32 40001
        ipcache 10.200.0.2/32 40002
        policy endpoint 1 egress identity 40002 8080/tcp Allow
        policy endpoint 2 ingress identity 40001 8080/tcp Allow
    "#]]
    .assert_eq(&render(&before));
    connect(&cluster.pod_a).expect("allowed both ways");

    // B's ingress allow goes: exactly its entry leaves the map, and B drops A's connections.
    rt.block_on(agent.write(|w, t| {
        w.delete(&t.policy, &allow(EP_B, Direction::Ingress, ID_A, PORT))
            .expect("delete");
    }));
    let after = maps(&probe, &cluster);
    expect![[r#"
        - policy endpoint 2 ingress identity 40001 8080/tcp Allow
    "#]]
    .assert_eq(&diff(&before, &after));
    connect(&cluster.pod_a).expect_err("B's ingress allows nothing");

    // A pod peer allowed only through its ipBlock identity (SEMANTICS.md: ipBlock matches pod
    // addresses), while A keeps its pod identity in the ipcache.
    let before = after;
    rt.block_on(agent.write(|w, t| {
        w.insert(
            &t.ipcache,
            ipcache(IpcacheKind::IpBlock, "10.200.0.0/24", ID_BLOCK),
        )
        .expect("insert");
        w.insert(&t.policy, allow(EP_B, Direction::Ingress, ID_BLOCK, PORT))
            .expect("insert");
    }));
    agent.assert_all_done();
    let after = maps(&probe, &cluster);
    expect![[r#"
        + ipblock 10.200.0.0/24 16777300
        + policy endpoint 2 ingress identity 16777300 8080/tcp Allow
    "#]]
    .assert_eq(&diff(&before, &after));
    connect(&cluster.pod_a).expect("allowed through A's ipBlock identity");

    let before = after;
    rt.block_on(agent.write(|w, t| {
        w.delete(
            &t.ipcache,
            &ipcache(IpcacheKind::IpBlock, "10.200.0.0/24", ID_BLOCK),
        )
        .expect("delete");
    }));
    let after = maps(&probe, &cluster);
    expect![[r#"
        - ipblock 10.200.0.0/24 16777300
    "#]]
    .assert_eq(&diff(&before, &after));
    connect(&cluster.pod_a).expect_err("A is no longer in the block");

    // An L7 redirect lets the connection through (port 0 until the proxy exists), as
    // `MapState::decide` says `Redirected`.
    let before = after;
    rt.block_on(agent.write(|w, t| {
        w.insert(
            &t.policy,
            PolicyEntry {
                verdict: Verdict::Redirect(L7Parser::Http),
                ..allow(EP_B, Direction::Ingress, ID_A, PORT)
            },
        )
        .expect("insert");
    }));
    let after = maps(&probe, &cluster);
    expect![[r#"
        + policy endpoint 2 ingress identity 40001 8080/tcp Redirect { proxy_port: 0 }
    "#]]
    .assert_eq(&diff(&before, &after));
    connect(&cluster.pod_a).expect("redirected: allowed");

    // B's endpoint goes: its entry and its programs, nothing else. Nothing enforces B's
    // ingress then, and A's egress still allows B.
    let before = after;
    rt.block_on(agent.write(|w, t| {
        w.delete(&t.endpoints, &endpoint(&cluster, EP_B))
            .expect("delete");
    }));
    let after = maps(&probe, &cluster);
    expect![[r#"
        - attached lxcb
        - endpoint 10.200.0.2 id 2 on lxcb identity 40002 flags 3
    "#]]
    .assert_eq(&diff(&before, &after));
    connect(&cluster.pod_a).expect("B is no longer enforced");

    // A's veth vanishes before its row goes (the pod was torn down first): the delete
    // succeeds, the pins and the entry go, and nothing is left to retry.
    let row_a = endpoint(&cluster, EP_A);
    cluster.node.exec_ok(&["ip", "link", "del", HOST_A]);
    let before = after;
    rt.block_on(agent.write(|w, t| {
        w.delete(&t.endpoints, &row_a).expect("delete");
    }));
    let after = maps(&probe, &cluster);
    expect![[r#"
        - attached lxca
        - endpoint 10.200.0.1 id 1 on lxca identity 40001 flags 3
    "#]]
    .assert_eq(&diff(&before, &after));
    agent.assert_all_done();
    rt.block_on(agent.stop());
}

#[test]
fn entries_written_behind_the_reconcilers_back_are_pruned() {
    let rt = runtime();
    let _guard = rt.enter();
    let cluster = Cluster::new();
    cluster.node.add_link("lxcc", &[]);
    let _server = EchoServer::start(&cluster.pod_b);
    let agent = Agent::start(&cluster, |w, t| {
        a_to_b_rows(&cluster, w, t);
        w.insert(
            &t.ipcache,
            ipcache(IpcacheKind::IpBlock, "10.200.0.0/24", ID_BLOCK),
        )
        .expect("insert");
    });
    rt.block_on(agent.initial_full_pass());
    let mut probe = Datapath::open(&cluster.pins.0).expect("open probe");
    let desired = maps(&probe, &cluster);

    // Someone else writes: strays in every map, a desired entry altered, a third interface.
    let stray_key = PolicyKey {
        endpoint_id: u32::from(EP_A),
        direction: bpf::Direction::Egress,
        identity: 999,
        l4: L4::Any,
    };
    probe
        .policy()
        .unwrap()
        .insert(&stray_key, &PolicyValue::allow())
        .unwrap();
    let altered = policy_key(EP_A, &allow(EP_A, Direction::Egress, ID_B, PORT).key).unwrap();
    probe
        .policy()
        .unwrap()
        .insert(&altered, &PolicyValue::deny())
        .unwrap();
    let mut ipcache_map = probe.ipcache().unwrap();
    ipcache_map
        .insert(
            Ipv4Prefix::new(Ipv4Addr::new(192, 0, 2, 0), 24).unwrap(),
            &IpcacheValue::new(7),
        )
        .unwrap();
    probe
        .ipblock()
        .unwrap()
        .insert(
            Ipv4Prefix::new(Ipv4Addr::new(10, 200, 0, 0), 16).unwrap(),
            &IpcacheValue::new(8),
        )
        .unwrap();
    probe
        .endpoints()
        .unwrap()
        .insert(
            Ipv4Addr::new(10, 200, 0, 9),
            &EndpointInfo {
                endpoint_id: 9,
                ifindex: 999,
                identity: 9,
                mac: [0; 6],
                flags: EndpointFlags::NONE,
            },
        )
        .unwrap();
    let node = cluster.node.path();
    probe
        .attach(&Interface {
            name: "lxcc",
            netns: Some(&node),
        })
        .expect("attach to lxcc");
    expect![[r#"
        - policy endpoint 1 egress identity 40002 8080/tcp Allow
        + attached lxcc
        + endpoint 10.200.0.9 id 9 on ifindex 999 identity 9 flags 0
        + ipblock 10.200.0.0/16 8
        + ipcache 192.0.2.0/24 7
        + policy endpoint 1 egress identity 40002 8080/tcp Deny
        + policy endpoint 1 egress identity 999 any Allow
    "#]]
    .assert_eq(&diff(&desired, &maps(&probe, &cluster)));
    connect(&cluster.pod_a).expect_err("the altered entry denies");

    rt.block_on(agent.full_pass());
    assert_eq!(render(&maps(&probe, &cluster)), render(&desired));
    agent.assert_all_done();
    connect(&cluster.pod_a).expect("repaired");

    // In one write, endpoint 3 takes over B's address and veth: the round writes 3's entry
    // before it deletes 2's, and that delete must leave 3's entry and programs alone.
    rt.block_on(agent.write(|w, t| {
        w.delete(&t.endpoints, &endpoint(&cluster, EP_B))
            .expect("delete");
        w.insert(
            &t.endpoints,
            DatapathEndpoint {
                endpoint_id: 3,
                ..endpoint(&cluster, EP_B)
            },
        )
        .expect("insert");
    }));
    agent.assert_all_done();
    expect![[r#"
        - endpoint 10.200.0.2 id 2 on lxcb identity 40002 flags 3
        + endpoint 10.200.0.2 id 3 on lxcb identity 40002 flags 3
    "#]]
    .assert_eq(&diff(&desired, &maps(&probe, &cluster)));
    rt.block_on(agent.stop());
}

/// Polls the maps and link pins in a tight loop and records every moment a still-desired
/// entry is missing, for as long as it runs.
struct Watcher {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u64, Vec<String>)>,
}

impl Watcher {
    fn start(probe: &Datapath, cluster: &Cluster, desired: BTreeSet<String>) -> Watcher {
        let ipcache = probe.ipcache().expect("ipcache");
        let endpoints = probe.endpoints().expect("endpoints");
        let policy = probe.policy().expect("policy");
        let links: Vec<PathBuf> = link_pins(cluster);
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut rounds = 0;
            let mut missing = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                rounds += 1;
                let mut present: HashSet<String> = HashSet::new();
                for (prefix, value) in ipcache.iter().expect("iterate") {
                    present.insert(format!("ipcache {prefix} {}", value.identity));
                }
                for (addr, info) in endpoints.iter().expect("iterate") {
                    present.insert(format!("endpoint {addr} id {}", info.endpoint_id));
                }
                for (key, value) in policy.iter().expect("iterate") {
                    present.insert(format!("policy {key} {:?}", value.verdict));
                }
                for pin in &links {
                    if pin.exists() {
                        present.insert(format!("link {}", pin.display()));
                    }
                }
                for line in &desired {
                    if !present.contains(line) && missing.len() < 10 {
                        missing.push(format!("round {rounds}: {line}"));
                    }
                }
            }
            (rounds, missing)
        });
        Watcher { stop, thread }
    }

    fn stop(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("watcher")
    }
}

/// Both programs' link pins on both host veths.
fn link_pins(cluster: &Cluster) -> Vec<PathBuf> {
    let links = cluster.pins.0.join("v1/links");
    let inode = std::fs::metadata(cluster.node.path())
        .expect("node netns")
        .ino();
    let mut pins = Vec::new();
    for ifname in [HOST_A, HOST_B] {
        for program in ["from_container", "to_container"] {
            pins.push(links.join(format!("{inode}-{ifname}-{program}")));
        }
    }
    pins
}

fn pin_inodes(cluster: &Cluster) -> Vec<u64> {
    link_pins(cluster)
        .iter()
        .map(|pin| std::fs::metadata(pin).expect("link pin").ino())
        .collect()
}

#[test]
fn a_restart_keeps_desired_entries_in_place_and_removes_the_one_gone() {
    let rt = runtime();
    let _guard = rt.enter();
    let cluster = Cluster::new();
    let _server = EchoServer::start(&cluster.pod_b);
    let gone = allow(EP_A, Direction::Egress, ID_B, 9090);
    let rows = |w: &mut WriteTxn, t: &DatapathTables| {
        a_to_b_rows(&cluster, w, t);
        w.insert(
            &t.ipcache,
            ipcache(IpcacheKind::Primary, "198.51.100.0/24", 16_777_400),
        )
        .expect("insert");
    };
    let agent = Agent::start(&cluster, |w, t| {
        rows(w, t);
        w.insert(&t.policy, gone.clone()).expect("insert");
    });
    rt.block_on(agent.initial_full_pass());
    agent.assert_all_done();
    let probe = Datapath::open(&cluster.pins.0).expect("open probe");
    let before = maps(&probe, &cluster);
    let pins_before = pin_inodes(&cluster);

    let mut connection = open_connection(&cluster.pod_a);
    exchange(&mut connection, b"abcd").expect("exchange before the restart");
    let ct_key = {
        let local = connection.local_addr().expect("local address");
        CtKey::new(
            POD_A,
            local.port(),
            POD_B,
            PORT,
            L4::TCP,
            bpf::Direction::Egress,
        )
    };
    let created = probe
        .conntrack()
        .unwrap()
        .get(&ct_key)
        .unwrap()
        .expect("conntrack entry of the connection")
        .created_ns;

    // Everything still desired after the restart, as the watcher renders it.
    let still_desired: BTreeSet<String> = before
        .iter()
        .filter(|line| {
            line.starts_with("ipcache") || line.starts_with("policy") && !line.contains("9090")
        })
        .cloned()
        .chain(
            [(POD_A, EP_A), (POD_B, EP_B)]
                .iter()
                .map(|(addr, id)| format!("endpoint {addr} id {id}")),
        )
        .chain(
            link_pins(&cluster)
                .iter()
                .map(|pin| format!("link {}", pin.display())),
        )
        .collect();
    assert_eq!(still_desired.len(), 3 + 2 + 2 + 4, "{still_desired:?}");
    let watcher = Watcher::start(&probe, &cluster, still_desired);

    rt.block_on(agent.stop());
    exchange(&mut connection, b"efgh").expect("exchange while no agent runs");
    let agent = Agent::start(&cluster, rows);
    rt.block_on(agent.initial_full_pass());
    agent.assert_all_done();
    exchange(&mut connection, b"ijkl").expect("exchange after the restart");
    let (rounds, missing) = watcher.stop();

    assert_eq!(missing, Vec::<String>::new(), "after {rounds} rounds");
    assert!(rounds > 10, "the watcher ran {rounds} rounds only");
    assert_eq!(agent.deletes(), 0, "a restart deletes nothing but by prune");
    expect![[r#"
        - policy endpoint 1 egress identity 40002 9090/tcp Allow
    "#]]
    .assert_eq(&diff(&before, &maps(&probe, &cluster)));
    assert_eq!(
        pin_inodes(&cluster),
        pins_before,
        "links pinned once, never re-made"
    );
    let entry = probe
        .conntrack()
        .unwrap()
        .get(&ct_key)
        .unwrap()
        .expect("conntrack entry after the restart");
    assert_eq!(entry.created_ns, created);
    assert!(entry.packets_fwd >= 3, "{entry:?}");
    connect(&cluster.pod_a).expect("new connections after the restart");
    drop(connection);
    rt.block_on(agent.stop());
}

/// As Cilium regenerates an endpoint's policy before it attaches: an endpoint committed with
/// its policy entries enters the endpoints map (and gets its programs) only once all of them
/// are in the kernel, however long they take, so its first packets meet its whole policy.
#[test]
fn an_endpoint_is_written_only_after_the_policy_entries_committed_with_it() {
    const ENTRIES: u16 = 5_000;
    let rt = runtime();
    let _guard = rt.enter();
    let cluster = Cluster::new();
    let agent = Agent::start(&cluster, |_, _| {});
    rt.block_on(agent.initial_full_pass());
    let probe = Datapath::open(&cluster.pins.0).expect("open probe");
    let endpoints = probe.endpoints().expect("endpoints");
    let policy = probe.policy().expect("policy");
    let done = Arc::new(AtomicBool::new(false));
    let watcher = std::thread::spawn({
        let done = Arc::clone(&done);
        move || {
            loop {
                let finished = done.load(Ordering::SeqCst);
                // The endpoint first, then the entries: entries only grow, so a short count
                // means they were short when the endpoint was already there.
                if endpoints.get(POD_A).expect("lookup").is_some() {
                    return Some(
                        policy
                            .iter()
                            .expect("iterate")
                            .iter()
                            .filter(|(key, _)| key.endpoint_id == u32::from(EP_A))
                            .count(),
                    );
                }
                if finished {
                    return None;
                }
            }
        }
    });
    rt.block_on(agent.write(|w, t| {
        w.insert(&t.endpoints, endpoint(&cluster, EP_A))
            .expect("insert endpoint row");
        for port in 1..=ENTRIES {
            w.insert(&t.policy, allow(EP_A, Direction::Ingress, ID_B, port))
                .expect("insert policy row");
        }
    }));
    done.store(true, Ordering::SeqCst);
    let seen = watcher.join().expect("watcher");
    assert_eq!(seen, Some(usize::from(ENTRIES)));
    rt.block_on(agent.stop());
}
