//! Loading the datapath object against pinned maps, and attaching it to pods' host veths.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use aya::maps::lpm_trie::LpmTrie;
use aya::maps::{Array, HashMap, PerCpuArray, RingBuf};
use aya::programs::links::{FdLink, LinkError, PinnedLink};
use aya::programs::tc::SchedClassifierLink;
use aya::programs::{SchedClassifier, TcAttachType};
use aya::{Ebpf, EbpfLoader};
use tracing::{debug, info};

use crate::Error;
use crate::events::EventReader;
use crate::maps::config::{self, TraceMode};
use crate::maps::conntrack::Conntrack;
use crate::maps::endpoints::Endpoints;
use crate::maps::epoch::Epoch;
use crate::maps::ipcache::Ipcache;
use crate::maps::policy::Policy;
use crate::maps::{self as names, map_error, open_pinned};

mod bpffs;
mod netns;
mod test_run;

pub use test_run::TestRun;

/// The version of the map layouts (`MYELIN_LAYOUT_VERSION` in myelin.h): pins live under
/// `<pin dir>/v<version>/`, so an agent with another layout never reuses them.
pub const LAYOUT_VERSION: u32 = 1;

static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/datapath.bpf.o"));

/// The datapath's two programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Program {
    /// At the host veth's tc ingress: packets leaving the pod (its egress policy).
    FromContainer,
    /// At the host veth's tc egress: packets entering the pod (its ingress policy).
    ToContainer,
}

impl Program {
    pub const ALL: [Program; 2] = [Program::FromContainer, Program::ToContainer];

    /// The function name in the object.
    pub fn name(self) -> &'static str {
        match self {
            Program::FromContainer => "from_container",
            Program::ToContainer => "to_container",
        }
    }

    fn attach_type(self) -> TcAttachType {
        match self {
            Program::FromContainer => TcAttachType::Ingress,
            Program::ToContainer => TcAttachType::Egress,
        }
    }
}

/// Map sizes; the defaults suit a node. Used only when the maps are created: reopened pins
/// keep the size they were created with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub ipcache_max_entries: u32,
    pub ipblock_max_entries: u32,
    pub endpoints_max_entries: u32,
    pub policy_max_entries: u32,
    pub conntrack_max_entries: u32,
    /// Bytes; a power of two and a multiple of the page size.
    pub ring_buffer_bytes: u32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            ipcache_max_entries: 512 * 1024,
            ipblock_max_entries: 64 * 1024,
            endpoints_max_entries: 65536,
            policy_max_entries: 1024 * 1024,
            conntrack_max_entries: 256 * 1024,
            ring_buffer_bytes: 1024 * 1024,
        }
    }
}

/// A host-side interface to attach to: its name, in the namespace at `netns` (a file such as
/// `/run/netns/NAME` or `/proc/PID/ns/net`), or in the caller's namespace when `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface<'a> {
    pub name: &'a str,
    pub netns: Option<&'a Path>,
}

/// The loaded programs and the pin directory of their maps and links.
///
/// Maps and TCX links are pinned under `<pin dir>/v<LAYOUT_VERSION>/{maps,links}`, so that they
/// outlive the agent: `open` reuses existing map pins (never wipes them) and `attach` swaps the
/// program behind an existing link atomically, so a restart does not interrupt enforcement.
#[derive(Debug)]
pub struct Datapath {
    ebpf: Ebpf,
    dir: PathBuf,
}

impl Datapath {
    /// [`Datapath::open_with`] default [`Options`].
    pub fn open(pin_dir: impl AsRef<Path>) -> Result<Datapath, Error> {
        Datapath::open_with(pin_dir, Options::default())
    }

    /// Mounts bpffs on /sys/fs/bpf if the pin directory is below it and it is not mounted,
    /// creates or reopens the pinned maps and loads both programs (not attached yet).
    pub fn open_with(pin_dir: impl AsRef<Path>, options: Options) -> Result<Datapath, Error> {
        let pin_dir = pin_dir.as_ref();
        bpffs::ensure_mounted(pin_dir)?;
        let dir = pin_dir.join(format!("v{LAYOUT_VERSION}"));
        for sub in ["maps", "links"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|source| Error::CreateDir { path, source })?;
        }
        let maps_dir = dir.join("maps");
        let mut loader = EbpfLoader::new();
        for name in names::ALL {
            loader.map_pin_path(name, maps_dir.join(name));
        }
        loader
            .map_max_entries(names::IPCACHE, options.ipcache_max_entries)
            .map_max_entries(names::IPBLOCK, options.ipblock_max_entries)
            .map_max_entries(names::ENDPOINTS, options.endpoints_max_entries)
            .map_max_entries(names::POLICY, options.policy_max_entries)
            .map_max_entries(names::CONNTRACK, options.conntrack_max_entries)
            .map_max_entries(names::EVENTS, options.ring_buffer_bytes);
        let mut ebpf = loader.load(OBJECT).map_err(|source| Error::Load {
            path: dir.clone(),
            source: Box::new(source),
        })?;
        for program in Program::ALL {
            classifier(&mut ebpf, program)?
                .load()
                .map_err(|source| Error::Program {
                    program: program.name(),
                    source: Box::new(source),
                })?;
        }
        info!(pin_dir = %dir.display(), "datapath loaded");
        Ok(Datapath { ebpf, dir })
    }

    /// `<pin dir>/v<LAYOUT_VERSION>`.
    pub fn pin_dir(&self) -> &Path {
        &self.dir
    }

    fn maps_dir(&self) -> PathBuf {
        self.dir.join("maps")
    }

    pub fn ipcache(&self) -> Result<Ipcache, Error> {
        open_pinned::<LpmTrie<_, _, _>>(&self.maps_dir(), names::IPCACHE)
            .and_then(|map| Ok(Ipcache::new(map, names::IPCACHE, self.epoch()?)))
    }

    /// The NetworkPolicy `ipBlock` identities (see [`crate::maps::ipcache`]).
    pub fn ipblock(&self) -> Result<Ipcache, Error> {
        open_pinned::<LpmTrie<_, _, _>>(&self.maps_dir(), names::IPBLOCK)
            .and_then(|map| Ok(Ipcache::new(map, names::IPBLOCK, self.epoch()?)))
    }

    pub fn endpoints(&self) -> Result<Endpoints, Error> {
        let map = open_pinned::<HashMap<_, _, _>>(&self.maps_dir(), names::ENDPOINTS)?;
        Ok(Endpoints::new(map, self.epoch()?))
    }

    pub fn policy(&self) -> Result<Policy, Error> {
        let map = open_pinned::<LpmTrie<_, _, _>>(&self.maps_dir(), names::POLICY)?;
        Ok(Policy::new(map, self.epoch()?))
    }

    pub fn conntrack(&self) -> Result<Conntrack, Error> {
        open_pinned::<HashMap<_, _, _>>(&self.maps_dir(), names::CONNTRACK).map(Conntrack::new)
    }

    /// Each writing handle bumps the policy epoch through a descriptor of its own.
    fn epoch(&self) -> Result<Epoch, Error> {
        Epoch::open(&self.maps_dir())
    }

    /// The ring buffer's reader; call inside a tokio runtime. There must be one reader only.
    pub fn events(&self) -> Result<EventReader, Error> {
        EventReader::new(open_pinned::<RingBuf<_>>(&self.maps_dir(), names::EVENTS)?)
    }

    /// Events the datapath could not write because the ring buffer was full, summed over CPUs.
    pub fn lost_events(&self) -> Result<u64, Error> {
        let map: PerCpuArray<_, u64> = open_pinned(&self.maps_dir(), names::EVENTS_LOST)?;
        let values = map
            .get(&0, 0)
            .map_err(map_error(names::EVENTS_LOST, "get", 0))?;
        Ok(values.iter().sum())
    }

    pub fn set_trace_mode(&self, mode: TraceMode) -> Result<(), Error> {
        let mut map: Array<_, _> = open_pinned(&self.maps_dir(), names::CONFIG)?;
        config::set_trace_mode(&mut map, mode)
    }

    /// The link pins of both programs on `interface`, in [`Program::ALL`] order.
    fn link_pins(&self, interface: &Interface<'_>) -> Result<[(Program, PathBuf); 2], Error> {
        let inode = netns_inode(interface.netns)?;
        let links = self.dir.join("links");
        Ok(Program::ALL.map(|program| {
            let pin = links.join(format!("{inode}-{}-{}", interface.name, program.name()));
            (program, pin)
        }))
    }

    /// The interfaces in the namespace at `netns` (the caller's when `None`) with a link pin of
    /// either program, sorted: what [`Datapath::detach`] can remove there. A pin outlives its
    /// interface, so names of vanished interfaces are listed too.
    pub fn attached_interfaces(&self, netns: Option<&Path>) -> Result<Vec<String>, Error> {
        let prefix = format!("{}-", netns_inode(netns)?);
        let links = self.dir.join("links");
        let list_error = |source| Error::ListPins {
            path: links.clone(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&links).map_err(list_error)? {
            let file_name = entry.map_err(list_error)?.file_name();
            let Some(rest) = file_name.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
                continue;
            };
            let name = Program::ALL
                .iter()
                .find_map(|program| rest.strip_suffix(&format!("-{}", program.name())));
            if let Some(name) = name {
                names.push(name.to_owned());
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Attaches both programs to `interface` with pinned TCX links. Attaching again (for
    /// example after a restart or an upgrade) swaps the program behind the pinned link
    /// atomically; a stale pin whose interface is gone is replaced.
    pub fn attach(&mut self, interface: &Interface<'_>) -> Result<(), Error> {
        for (program, pin) in self.link_pins(interface)? {
            let prog = classifier(&mut self.ebpf, program)?;
            let attach_error = |source| Error::Attach {
                program: program.name(),
                interface: interface.name.to_owned(),
                source: Box::new(source),
            };
            let link_error = |source| Error::Link {
                program: program.name(),
                interface: interface.name.to_owned(),
                source: Box::new(source),
            };
            let replaced = match PinnedLink::from_pin(&pin) {
                Ok(pinned) => {
                    let link =
                        SchedClassifierLink::try_from(FdLink::from(pinned)).map_err(link_error)?;
                    match prog.attach_to_link(link) {
                        Ok(id) => Some(id),
                        Err(err) => {
                            debug!(pin = %pin.display(), %err, "stale link pin replaced");
                            remove_pin(&pin)?;
                            None
                        }
                    }
                }
                Err(LinkError::SyscallError(err))
                    if err.io_error.kind() == io::ErrorKind::NotFound =>
                {
                    None
                }
                Err(source) => return Err(link_error(source)),
            };
            let pinned = replaced.is_some();
            let id = match replaced {
                Some(id) => id,
                None => {
                    let name = interface.name;
                    let attach_type = program.attach_type();
                    netns::run_in(interface.netns, || prog.attach(name, attach_type))?
                        .map_err(attach_error)?
                }
            };
            let link = prog.take_link(id).map_err(attach_error)?;
            let link = FdLink::try_from(link).map_err(link_error)?;
            if !pinned {
                link.pin(&pin).map_err(|source| Error::PinLink {
                    program: program.name(),
                    interface: interface.name.to_owned(),
                    path: pin.clone(),
                    source: Box::new(source),
                })?;
            }
            debug!(
                interface = interface.name,
                program = program.name(),
                replaced = pinned,
                "attached"
            );
        }
        Ok(())
    }

    /// Detaches both programs from `interface` by removing their link pins; `false` if
    /// nothing was attached.
    pub fn detach(&self, interface: &Interface<'_>) -> Result<bool, Error> {
        let mut any = false;
        for (_, pin) in self.link_pins(interface)? {
            any |= remove_pin(&pin)?;
        }
        Ok(any)
    }

    /// Whether both programs have a pinned link on `interface`.
    pub fn is_attached(&self, interface: &Interface<'_>) -> Result<bool, Error> {
        Ok(self
            .link_pins(interface)?
            .iter()
            .all(|(_, pin)| pin.exists()))
    }

    /// Runs `program` once over `packet` (Ethernet first) with BPF_PROG_TEST_RUN, as if it
    /// arrived on the loopback interface (ifindex 1) of the caller's namespace.
    pub fn test_run(&mut self, program: Program, packet: &[u8]) -> Result<TestRun, Error> {
        self.test_run_repeat(program, packet, 1)
    }

    /// [`Datapath::test_run`] on a packet that carries `mark` (as the proxy's sockets set it).
    pub fn test_run_marked(
        &mut self,
        program: Program,
        packet: &[u8],
        mark: u32,
    ) -> Result<TestRun, Error> {
        let prog = classifier(&mut self.ebpf, program)?;
        test_run::run(prog, program.name(), packet, 1, mark)
    }

    /// [`Datapath::test_run`] `repeat` times in the kernel (for timing; map effects repeat too).
    pub fn test_run_repeat(
        &mut self,
        program: Program,
        packet: &[u8],
        repeat: u32,
    ) -> Result<TestRun, Error> {
        let prog = classifier(&mut self.ebpf, program)?;
        test_run::run(prog, program.name(), packet, repeat, 0)
    }
}

fn classifier(ebpf: &mut Ebpf, program: Program) -> Result<&mut SchedClassifier, Error> {
    ebpf.program_mut(program.name())
        .ok_or(Error::MissingProgram {
            program: program.name(),
        })?
        .try_into()
        .map_err(|source| Error::Program {
            program: program.name(),
            source: Box::new(source),
        })
}

/// Interface names are unique per namespace only; the namespace's inode tells them apart.
fn netns_inode(netns: Option<&Path>) -> Result<u64, Error> {
    let netns = netns.unwrap_or_else(|| Path::new("/proc/thread-self/ns/net"));
    Ok(fs::metadata(netns)
        .map_err(|source| Error::EnterNetns {
            path: netns.to_path_buf(),
            source,
        })?
        .ino())
}

fn remove_pin(path: &Path) -> Result<bool, Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(Error::Unpin {
            path: path.to_path_buf(),
            source,
        }),
    }
}
