//! An embedded Myelin node for a benchmark: `myelin up` on a generated directory with a name
//! and run directory of its own; `Drop` runs `myelin down`, which removes every namespace,
//! link, pin and process the node made, also when the benchmark panics.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the workspace's binaries are: `$MYELIN_BIN_DIR`, or the profile directory this
/// benchmark was built into (`target/release` for `cargo bench`).
pub(crate) fn bin_dir() -> PathBuf {
    let dir = std::env::var_os("MYELIN_BIN_DIR").map_or_else(
        || {
            let exe = std::env::current_exe().expect("benchmark executable path");
            // target/release/deps/<bench>-<hash> -> target/release
            exe.parent()
                .and_then(Path::parent)
                .expect("target directory")
                .to_owned()
        },
        PathBuf::from,
    );
    for name in ["myelin", "myelin-agent", "myelin-cni"] {
        assert!(
            dir.join(name).exists(),
            "{} is missing: run `cargo build --profile bench --bins` first (or set MYELIN_BIN_DIR)",
            dir.join(name).display()
        );
    }
    dir
}

/// A pod of the node: its address and the path of its network namespace.
#[derive(Clone, Debug)]
pub(crate) struct Pod {
    pub(crate) ipv4: Ipv4Addr,
    pub(crate) netns: PathBuf,
}

pub(crate) struct Node {
    name: String,
    run_dir: PathBuf,
    bin_dir: PathBuf,
    /// `ns/name` -> pod, as `myelin up` printed them.
    pub(crate) pods: BTreeMap<String, Pod>,
}

impl Node {
    /// `myelin up DIR --name NAME`; `name` must be unique on the machine (use the pid).
    pub(crate) fn up(dir: &Path, name: &str) -> Node {
        Node::up_with(dir, name, &[])
    }

    /// `myelin up DIR --name NAME ARGS...`.
    pub(crate) fn up_with(dir: &Path, name: &str, args: &[&str]) -> Node {
        let mut node = Node {
            name: name.to_owned(),
            run_dir: std::env::temp_dir().join(format!("myelin-bench-{name}")),
            bin_dir: bin_dir(),
            pods: BTreeMap::new(),
        };
        let dir = dir.display().to_string();
        let mut up = vec!["up", dir.as_str(), "--name", name];
        up.extend(args);
        let out = node.myelin_ok(&up);
        for line in out.lines() {
            let cells: Vec<&str> = line.split('\t').collect();
            if let [key, ipv4, netns] = cells[..] {
                let pod = Pod {
                    ipv4: ipv4.parse().expect("myelin up prints pod addresses"),
                    netns: Path::new("/run/netns").join(netns),
                };
                node.pods.insert(key.to_owned(), pod);
            }
        }
        node
    }

    pub(crate) fn pod(&self, key: &str) -> &Pod {
        self.pods
            .get(key)
            .unwrap_or_else(|| panic!("no pod {key} on node {}", self.name))
    }

    /// The run directory: the agent's socket (`agent.sock`) and its logs (`logs/`).
    pub(crate) fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// `<pin dir>` of the node's datapath, as `myelin up` chose it.
    pub(crate) fn pin_dir(&self) -> PathBuf {
        PathBuf::from(format!("/sys/fs/bpf/{}", self.name))
    }

    fn myelin(&self, args: &[&str]) -> Output {
        Command::new(self.bin_dir.join("myelin"))
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
            "myelin {args:?} failed: {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.myelin(&["down"]);
    }
}

/// A directory removed on drop.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
