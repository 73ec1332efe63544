//! The crate's error type: every variant names the map, program, interface or path involved.

use std::path::PathBuf;

use aya::maps::MapError;
use aya::programs::ProgramError;

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("mount bpffs at {path}")]
    MountBpffs {
        path: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("create pin directory {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("load the datapath object with pins in {path}")]
    Load {
        path: PathBuf,
        #[source]
        source: Box<aya::EbpfError>,
    },
    #[error("program {program} is missing from the datapath object")]
    MissingProgram { program: &'static str },
    #[error("program {program}")]
    Program {
        program: &'static str,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("open pinned map {map} at {path}")]
    OpenMap {
        map: &'static str,
        path: PathBuf,
        #[source]
        source: Box<MapError>,
    },
    #[error("map {map} at {path}: mmap its value")]
    MmapMap {
        map: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("map {map}: {op} {key}")]
    Map {
        map: &'static str,
        op: &'static str,
        key: String,
        #[source]
        source: Box<MapError>,
    },
    #[error("map {map}: entry {key} holds an invalid value: {problem}")]
    InvalidEntry {
        map: &'static str,
        key: String,
        problem: String,
    },
    #[error("enter network namespace {path}")]
    EnterNetns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("attach {program} to {interface}")]
    Attach {
        program: &'static str,
        interface: String,
        #[source]
        source: Box<ProgramError>,
    },
    #[error("link of {program} on {interface}")]
    Link {
        program: &'static str,
        interface: String,
        #[source]
        source: Box<aya::programs::links::LinkError>,
    },
    #[error("pin link of {program} on {interface} at {path}")]
    PinLink {
        program: &'static str,
        interface: String,
        path: PathBuf,
        #[source]
        source: Box<aya::pin::PinError>,
    },
    #[error("list pinned links in {path}")]
    ListPins {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("remove pinned link {path}")]
    Unpin {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid prefix {addr}/{len}: the length must be at most {max}")]
    InvalidPrefix { addr: String, len: u8, max: u8 },
    #[error("invalid port range {lo}-{hi}: the low end is above the high end")]
    InvalidPortRange { lo: u16, hi: u16 },
    #[error("invalid port prefix {port}/{len}: {problem}")]
    InvalidPortPrefix {
        port: u16,
        len: u8,
        problem: &'static str,
    },
    #[error("event ring buffer")]
    Events(#[source] std::io::Error),
    #[error("malformed event of {len} bytes: {problem}")]
    MalformedEvent { len: usize, problem: String },
    #[error("BPF_PROG_TEST_RUN of {program}")]
    TestRun {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
}
