//! The datapath with real traffic: a "node" namespace and two "pod" namespaces joined to it by
//! veths (routed /32s with proxy ARP on the node side, as Calico and Cilium do), the programs
//! on the node-side veths, a TCP echo server in pod B and connections from pod A.

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bpf::events::DropReason;
use bpf::{
    Datapath, Direction, EndpointFlags, EndpointInfo, Event, EventKind, EventReader, Interface,
    IpcacheValue, Ipv4Prefix, L4, PolicyKey, PolicyValue,
};

use crate::netns::Netns;

pub(crate) const POD_A: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 1);
pub(crate) const POD_B: Ipv4Addr = Ipv4Addr::new(10, 200, 0, 2);
pub(crate) const PORT: u16 = 8080;
/// The pods' host-side veths, in the node namespace.
pub(crate) const HOST_A: &str = "lxca";
pub(crate) const HOST_B: &str = "lxcb";
const EP_A: u32 = 1;
const EP_B: u32 = 2;
const ID_A: u32 = 40001;
const ID_B: u32 = 40002;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A pin directory of its own, removed on drop (also while unwinding).
pub(crate) struct PinDir(pub(crate) PathBuf);

impl PinDir {
    pub(crate) fn new() -> PinDir {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        PinDir(PathBuf::from(format!(
            "/sys/fs/bpf/myelin-it-{}-{n}",
            std::process::id()
        )))
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        // Removing the link pins detaches the programs; the namespaces go after this guard.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An echo server in pod B that answers `connections` connections with what it read,
/// reversed, then ends: joining it proves exactly that many got through.
fn serve(pod: &Netns, connections: usize) -> std::thread::JoinHandle<()> {
    let listener =
        pod.run_in(|| TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT)).expect("bind in pod B"));
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let mut stream = stream.expect("accept");
            let mut buf = [0u8; 4];
            if stream.read_exact(&mut buf).is_ok() {
                buf.reverse();
                let _ = stream.write_all(&buf);
            }
        }
    })
}

/// Connects from pod A to pod B and exchanges four bytes; the error if it cannot.
pub(crate) fn connect(pod: &Netns) -> Result<(), String> {
    pod.run_in(|| {
        let addr = SocketAddr::from((POD_B, PORT));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(1500))
            .map_err(|err| format!("connect: {err}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .map_err(|err| err.to_string())?;
        stream
            .write_all(b"ping")
            .map_err(|err| format!("write: {err}"))?;
        let mut buf = [0u8; 4];
        stream
            .read_exact(&mut buf)
            .map_err(|err| format!("read: {err}"))?;
        if &buf == b"gnip" {
            Ok(())
        } else {
            Err(format!("echo {buf:?}"))
        }
    })
}

pub(crate) struct Cluster {
    // Field order is drop order: pins (and with them the links) before the namespaces.
    pub(crate) pins: PinDir,
    pub(crate) node: Netns,
    pub(crate) pod_a: Netns,
    pub(crate) pod_b: Netns,
}

impl Cluster {
    pub(crate) fn new() -> Cluster {
        let node = Netns::new();
        let pod_a = Netns::new();
        let pod_b = Netns::new();
        node.exec_ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        for (pod, host, addr) in [(&pod_a, HOST_A, POD_A), (&pod_b, HOST_B, POD_B)] {
            node.add_veth_to(pod, host, "eth0");
            node.exec_ok(&[
                "sysctl",
                "-qw",
                &format!("net.ipv4.conf.{host}.proxy_arp=1"),
            ]);
            node.exec_ok(&["ip", "route", "add", &format!("{addr}/32"), "dev", host]);
            pod.exec_ok(&["ip", "address", "add", &format!("{addr}/24"), "dev", "eth0"]);
        }
        Cluster {
            pins: PinDir::new(),
            node,
            pod_a,
            pod_b,
        }
    }

    fn attach(&self, dp: &mut Datapath) {
        let node = self.node.path();
        for iface in interfaces(&node) {
            dp.attach(&iface).expect("attach");
            assert!(dp.is_attached(&iface).expect("is_attached"));
        }
    }

    fn detach(&self, dp: &Datapath) {
        let node = self.node.path();
        for iface in interfaces(&node) {
            assert!(dp.detach(&iface).expect("detach"));
            assert!(!dp.is_attached(&iface).expect("is_attached"));
        }
    }

    fn endpoints(&self, dp: &Datapath) {
        let mut endpoints = dp.endpoints().expect("endpoints map");
        let mut ipcache = dp.ipcache().expect("ipcache map");
        let enforce = EndpointFlags::ENFORCE_INGRESS | EndpointFlags::ENFORCE_EGRESS;
        for (addr, id, identity, host) in [(POD_A, EP_A, ID_A, HOST_A), (POD_B, EP_B, ID_B, HOST_B)]
        {
            let info = EndpointInfo {
                endpoint_id: id,
                ifindex: self.node.ifindex(host),
                identity,
                mac: [0; 6],
                flags: enforce,
            };
            endpoints.insert(addr, &info).expect("insert endpoint");
            ipcache
                .insert(Ipv4Prefix::host(addr), &IpcacheValue::new(identity))
                .expect("insert ipcache entry");
        }
    }
}

/// Both host-side veths, in the node namespace at `node`.
fn interfaces(node: &Path) -> [Interface<'_>; 2] {
    [HOST_A, HOST_B].map(|name| Interface {
        name,
        netns: Some(node),
    })
}

fn a_to_b_egress() -> PolicyKey {
    PolicyKey {
        endpoint_id: EP_A,
        direction: Direction::Egress,
        identity: ID_B,
        l4: L4::port(L4::TCP, PORT),
    }
}

fn b_from_a_ingress() -> PolicyKey {
    PolicyKey {
        endpoint_id: EP_B,
        direction: Direction::Ingress,
        identity: ID_A,
        l4: L4::port(L4::TCP, PORT),
    }
}

/// The first drop event within two seconds.
async fn next_drop(reader: &mut EventReader) -> Event {
    tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            let event = reader.next().await.expect("read event");
            if matches!(event.kind, EventKind::Drop { .. }) {
                return event;
            }
        }
    })
    .await
    .expect("a drop event within 2s")
}

#[test]
fn policy_allows_and_drops_real_tcp_and_survives_a_restart() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cluster = Cluster::new();
    // Three connections get through: before attaching, once allowed, and after detaching.
    let server = serve(&cluster.pod_b, 3);
    // Plain routing works before anything is attached. The fresh veths may still be
    // settling (neighbour resolution) on a loaded machine, so the wiring gets a few tries;
    // every later connection is one attempt.
    if (0..4).all(|_| connect(&cluster.pod_a).is_err()) {
        connect(&cluster.pod_a).expect("connect without the datapath");
    }

    let mut dp = Datapath::open(&cluster.pins.0).unwrap();
    cluster.endpoints(&dp);
    cluster.attach(&mut dp);
    let mut policy = dp.policy().unwrap();
    let err = connect(&cluster.pod_a).expect_err("no policy: dropped");
    assert!(err.contains("connect"), "{err}");

    policy
        .insert(&a_to_b_egress(), &PolicyValue::allow())
        .unwrap();
    policy
        .insert(&b_from_a_ingress(), &PolicyValue::allow())
        .unwrap();
    // Replies cross B's egress and A's ingress, which allow nothing: conntrack lets them by.
    connect(&cluster.pod_a).expect("allowed both ways");
    let ct = dp.conntrack().unwrap().iter().unwrap();
    assert!(
        ct.iter().any(|(k, e)| k.dport == PORT
            && k.scope() == Some(Direction::Egress)
            && e.reply_seen()),
        "{ct:?}"
    );

    // The agent goes away: the pinned links keep enforcing what the pinned maps say.
    drop(dp);
    policy.remove(&a_to_b_egress()).unwrap();
    connect(&cluster.pod_a).expect_err("egress allow removed while the agent was down");

    // A new agent reopens the pins and re-attaches, swapping the programs in place.
    let mut dp = Datapath::open(&cluster.pins.0).unwrap();
    cluster.attach(&mut dp);
    let _guard = rt.enter();
    let mut events = dp.events().unwrap();
    while events.try_next().is_some() {}
    connect(&cluster.pod_a).expect_err("still no egress allow");
    let drop_a = rt.block_on(next_drop(&mut events));
    assert_eq!(
        drop_a.kind,
        EventKind::Drop {
            reason: DropReason::POLICY_DENIED
        }
    );
    assert_eq!(
        (drop_a.flow.endpoint_id, drop_a.flow.direction),
        (EP_A, Direction::Egress)
    );
    assert_eq!((drop_a.flow.saddr, drop_a.flow.daddr), (POD_A, POD_B));
    assert_eq!(
        (drop_a.flow.src_identity, drop_a.flow.dst_identity),
        (ID_A, ID_B)
    );
    assert_eq!(drop_a.flow.dport, PORT);

    policy
        .insert(&a_to_b_egress(), &PolicyValue::allow())
        .unwrap();
    policy.remove(&b_from_a_ingress()).unwrap();
    while events.try_next().is_some() {}
    connect(&cluster.pod_a).expect_err("B's ingress allow removed");
    let drop_b = rt.block_on(next_drop(&mut events));
    assert_eq!(
        (drop_b.flow.endpoint_id, drop_b.flow.direction),
        (EP_B, Direction::Ingress)
    );

    cluster.detach(&dp);
    connect(&cluster.pod_a).expect("detached: plain routing again");
    server.join().expect("server");
}
