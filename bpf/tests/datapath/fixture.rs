//! A datapath with pins of its own, removed on drop (also while unwinding).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use bpf::{Datapath, Event, EventReader, Options};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// Test runs need root (BPF_PROG_TEST_RUN, pinning). Without it they fail: a program test must
/// never pass by skipping the kernel part.
fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .expect("Uid: line");
    assert_eq!(euid, "0", "bpf program tests need root");
}

/// `/sys/fs/bpf/myelin-test-{pid}-{n}`, removed with everything pinned below it on drop.
#[derive(Debug)]
pub(crate) struct PinDir(pub(crate) PathBuf);

impl PinDir {
    pub(crate) fn new() -> PinDir {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        PinDir(PathBuf::from(format!(
            "/sys/fs/bpf/myelin-test-{}-{n}",
            std::process::id()
        )))
    }
}

impl Drop for PinDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.0)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("cleanup {}: {err}", self.0.display());
        }
    }
}

pub(crate) fn small() -> Options {
    Options {
        ipcache_max_entries: 1024,
        ipblock_max_entries: 1024,
        endpoints_max_entries: 64,
        policy_max_entries: 1024,
        conntrack_max_entries: 1024,
        ring_buffer_bytes: 256 * 1024,
    }
}

/// Fields drop in order: the datapath's fds close before the pins go.
pub(crate) struct Fixture {
    pub(crate) dp: Datapath,
    pub(crate) pins: PinDir,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        require_root();
        let pins = PinDir::new();
        let dp = Datapath::open_with(&pins.0, small()).expect("open datapath");
        Fixture { dp, pins }
    }
}

/// Every event already in the ring buffer.
pub(crate) fn drain(reader: &mut EventReader) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(event) = reader.try_next() {
        events.push(event.expect("decode event"));
    }
    events
}
