//! Per-packet cost of the datapath programs in the kernel, by conntrack state, measured with
//! BPF_PROG_TEST_RUN (the kernel's own average over many repeats, no network stack around it).
//! A steadier figure than end-to-end rates on a busy machine, for comparing two builds of the
//! programs. Needs root: `cargo bench -p bpf --bench program_cost`.

#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a bench binary prints its figures; the packet builder it shares with the program \
              tests panics on impossible lengths"
)]

#[expect(
    dead_code,
    reason = "shared with the program tests, which use more of it"
)]
#[path = "../tests/datapath/packets.rs"]
mod packets;

use std::net::Ipv4Addr;
use std::path::PathBuf;

use bpf::{
    Datapath, Direction, EndpointFlags, EndpointInfo, IpcacheValue, Ipv4Prefix, L4, Options,
    PolicyKey, PolicyValue, Program, TestRun,
};
use packets::{ACK, SYN, tcp};

const POD_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const POD_B: Ipv4Addr = Ipv4Addr::new(10, 0, 1, 2);
const EP_A: u32 = 100;
const ID_A: u32 = 1000;
const ID_B: u32 = 2000;
const REPEAT: u32 = 1_000_000;
const ROUNDS: usize = 7;

/// Pins of its own, removed on drop.
struct PinDir(PathBuf);

impl Drop for PinDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() {
    let pins = PinDir(PathBuf::from(format!(
        "/sys/fs/bpf/myelin-bench-{}",
        std::process::id()
    )));
    let mut dp = Datapath::open_with(&pins.0, Options::default()).expect("open the datapath");
    setup(&dp);
    // Both connections exist before timing: A -> B:80 (A's egress) and B -> A:8080 (A's
    // ingress), so the repeated packets below are established or replies.
    let run = |dp: &mut Datapath, program, packet: &[u8]| -> TestRun {
        let run = dp
            .test_run_repeat(program, packet, REPEAT)
            .expect("BPF_PROG_TEST_RUN");
        assert_eq!(run.verdict, TestRun::TC_ACT_OK, "{program:?} must pass");
        run
    };
    run(
        &mut dp,
        Program::FromContainer,
        &tcp(POD_A, 40000, POD_B, 80, SYN),
    );
    run(
        &mut dp,
        Program::ToContainer,
        &tcp(POD_B, 40001, POD_A, 8080, SYN),
    );
    let cases: [(&str, Program, Vec<u8>); 4] = [
        (
            "established, egress",
            Program::FromContainer,
            tcp(POD_A, 40000, POD_B, 80, ACK),
        ),
        (
            "reply, ingress",
            Program::ToContainer,
            tcp(POD_B, 80, POD_A, 40000, ACK),
        ),
        (
            "established, ingress",
            Program::ToContainer,
            tcp(POD_B, 40001, POD_A, 8080, ACK),
        ),
        (
            "reply, egress",
            Program::FromContainer,
            tcp(POD_A, 8080, POD_B, 40001, ACK),
        ),
    ];
    println!("ns per packet, median of {ROUNDS} runs of {REPEAT} repeats (min..max)");
    for (name, program, packet) in &cases {
        let mut ns: Vec<u32> = (0..ROUNDS)
            .map(|_| run(&mut dp, *program, packet).duration_ns)
            .collect();
        ns.sort_unstable();
        println!(
            "{name:<22} {:>5}   ({}..{})",
            ns[ROUNDS / 2],
            ns[0],
            ns[ROUNDS - 1]
        );
    }
}

/// Endpoint A (on the loopback, where test runs arrive) enforcing both directions, 100 other
/// endpoints' worth of policy entries and 10,000 ipcache rows, so the tries are not trivial.
fn setup(dp: &Datapath) {
    let info = EndpointInfo {
        endpoint_id: EP_A,
        ifindex: 1,
        identity: ID_A,
        mac: [2, 0, 0, 0, 0, 1],
        flags: EndpointFlags::ENFORCE_INGRESS | EndpointFlags::ENFORCE_EGRESS,
    };
    dp.endpoints()
        .expect("endpoints")
        .insert(POD_A, &info)
        .expect("insert endpoint");
    let mut ipcache = dp.ipcache().expect("ipcache");
    ipcache
        .insert(Ipv4Prefix::host(POD_A), &IpcacheValue::new(ID_A))
        .expect("insert");
    ipcache
        .insert(Ipv4Prefix::host(POD_B), &IpcacheValue::new(ID_B))
        .expect("insert");
    for i in 0..10_000u32 {
        let addr = Ipv4Addr::from(0x0afa_0000 + i);
        ipcache
            .insert(Ipv4Prefix::host(addr), &IpcacheValue::new(100_000 + i))
            .expect("insert");
    }
    let mut policy = dp.policy().expect("policy");
    let allow = |policy: &mut bpf::Policy, endpoint_id, direction, identity, port| {
        let key = PolicyKey {
            endpoint_id,
            direction,
            identity,
            l4: L4::port(L4::TCP, port),
        };
        policy.insert(&key, &PolicyValue::allow()).expect("insert");
    };
    allow(&mut policy, EP_A, Direction::Egress, ID_B, 80);
    allow(&mut policy, EP_A, Direction::Ingress, ID_B, 8080);
    for endpoint in 1..=100 {
        for peer in 0..10 {
            allow(
                &mut policy,
                endpoint,
                Direction::Ingress,
                100_000 + peer,
                8000 + 1,
            );
        }
    }
}
