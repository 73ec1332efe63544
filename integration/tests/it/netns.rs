//! A network namespace per test, removed with everything created through it when the guard drops.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use nix::sched::{CloneFlags, setns};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fresh network namespace `myelin-it-{pid}-{n}` with `lo` up.
///
/// `Drop` deletes the namespace (and with it every link inside) and the host ends of veth pairs
/// created through the guard, even while unwinding from a failed assertion; it never panics.
#[derive(Debug)]
pub(crate) struct Netns {
    name: String,
    /// Links created in the host namespace through this guard.
    host_links: Mutex<Vec<String>>,
}

impl Netns {
    pub(crate) fn new() -> Netns {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let netns = Netns {
            name: format!("myelin-it-{}-{n}", std::process::id()),
            host_links: Mutex::new(Vec::new()),
        };
        // Left over by an earlier run whose pid was the same and that was killed.
        if netns.path().exists() {
            run(&["ip", "netns", "del", &netns.name]);
        }
        run(&["ip", "netns", "add", &netns.name]);
        netns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        netns
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The bind mount `ip netns` made, for `setns`.
    pub(crate) fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs `ip netns exec NAME args..`.
    pub(crate) fn exec(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .output()
            .expect("spawn ip netns exec")
    }

    /// Runs `ip netns exec NAME args..` and panics with its stderr unless it succeeds; returns
    /// its stdout.
    pub(crate) fn exec_ok(&self, args: &[&str]) -> String {
        check(
            &format!("ip netns exec {} {}", self.name, args.join(" ")),
            self.exec(args),
        )
    }

    /// Creates link `name` inside the namespace, sets it up and gives it `addresses` (CIDR
    /// notation; IPv6 ones without duplicate address detection).
    ///
    /// The link is one end of a veth pair whose other end, `{name}p`, is also inside the
    /// namespace and up, so `name` has carrier: the kernel here has no `dummy` driver.
    pub(crate) fn add_link(&self, name: &str, addresses: &[&str]) {
        let peer = format!("{name}p");
        self.exec_ok(&[
            "ip", "link", "add", name, "type", "veth", "peer", "name", &peer,
        ]);
        for address in addresses {
            let mut args = vec!["ip", "address", "add", address, "dev", name];
            if address.contains(':') {
                args.push("nodad");
            }
            self.exec_ok(&args);
        }
        self.exec_ok(&["ip", "link", "set", &peer, "up"]);
        self.exec_ok(&["ip", "link", "set", name, "up"]);
    }

    /// Creates a veth pair, `host_end` in the current namespace and `inner_end` inside this one,
    /// both up. The host end is deleted on drop.
    pub(crate) fn add_veth(&self, host_end: &str, inner_end: &str) {
        run(&[
            "ip", "link", "add", host_end, "type", "veth", "peer", "name", inner_end, "netns",
            &self.name,
        ]);
        self.host_links
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(host_end.to_owned());
        run(&["ip", "link", "set", host_end, "up"]);
        self.exec_ok(&["ip", "link", "set", inner_end, "up"]);
    }

    /// Creates a veth pair with `local_end` in this namespace and `peer_end` in `peer`, both
    /// up. Both ends go away with either namespace, so nothing touches the caller's namespace.
    pub(crate) fn add_veth_to(&self, peer: &Netns, local_end: &str, peer_end: &str) {
        self.exec_ok(&[
            "ip", "link", "add", local_end, "type", "veth", "peer", "name", peer_end, "netns",
            &peer.name,
        ]);
        self.exec_ok(&["ip", "link", "set", local_end, "up"]);
        peer.exec_ok(&["ip", "link", "set", peer_end, "up"]);
    }

    /// Runs `f` on a thread that entered this namespace, so sockets it opens belong to it.
    pub(crate) fn run_in<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = std::fs::File::open(self.path()).expect("open netns");
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
                    f()
                })
                .join()
                .expect("thread in netns")
        })
    }

    /// The interface index of `link` inside this namespace.
    pub(crate) fn ifindex(&self, link: &str) -> u32 {
        self.exec_ok(&["cat", &format!("/sys/class/net/{link}/ifindex")])
            .trim()
            .parse()
            .expect("ifindex is a number")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let host_links = self
            .host_links
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        for link in host_links.drain(..) {
            cleanup(&["ip", "link", "del", &link]);
        }
        cleanup(&["ip", "netns", "del", &self.name]);
    }
}

fn run(args: &[&str]) -> String {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .expect("spawn ip");
    check(&args.join(" "), output)
}

fn check(command: &str, output: Output) -> String {
    assert!(
        output.status.success(),
        "{command}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Runs a cleanup command, reporting instead of panicking when it fails.
#[expect(
    clippy::print_stderr,
    reason = "test harness: the libtest output capture is the report"
)]
fn cleanup(args: &[&str]) {
    match Command::new(args[0]).args(&args[1..]).output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => eprintln!(
            "cleanup `{}`: {}: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        ),
        Err(err) => eprintln!("cleanup `{}`: {err}", args.join(" ")),
    }
}

/// Every namespace `ip netns list` shows.
pub(crate) fn list() -> Vec<String> {
    run(&["ip", "netns", "list"])
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .expect("spawn ip")
        .status
        .success()
}

#[test]
fn drop_removes_the_namespace_and_its_links() {
    let netns = Netns::new();
    let name = netns.name().to_owned();
    assert!(name.starts_with(&format!("myelin-it-{}-", std::process::id())));
    assert!(netns.path().exists());
    assert!(list().contains(&name));
    let lo = netns.exec_ok(&["ip", "-brief", "link", "show", "lo"]);
    assert!(lo.contains("UNKNOWN") || lo.contains("UP"), "{lo}");

    let host_end = format!("mit{}h", std::process::id() % 100_000);
    netns.add_veth(&host_end, "v0");
    netns.add_link("d0", &["10.200.0.1/24", "fd00:200::1/64"]);
    assert!(link_exists(&host_end));
    netns.exec_ok(&["ip", "link", "show", "v0"]);

    drop(netns);
    assert!(!list().contains(&name));
    assert!(!PathBuf::from("/run/netns").join(&name).exists());
    assert!(!link_exists(&host_end));
}

#[test]
fn drop_cleans_up_while_unwinding() {
    let mut name = String::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let netns = Netns::new();
        name = netns.name().to_owned();
        netns.exec_ok(&["false"]);
    }));
    assert!(result.is_err(), "the failing command should have panicked");
    assert!(!name.is_empty());
    assert!(!list().contains(&name));
}
