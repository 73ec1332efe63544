//! Typed handles on the pinned maps, one per map, each with its own file descriptor so that
//! every reconciler can own the handle it drives.
//!
//! The `#[repr(C)]` types mirror `src/bpf/myelin.h` field for field (the `layout` test checks
//! sizes and offsets against the C compiler's).

use std::fmt;
use std::net::Ipv4Addr;
use std::path::Path;

use aya::maps::{Map, MapData, MapError};

use crate::Error;

pub mod config;
pub mod conntrack;
pub mod endpoints;
pub(crate) mod epoch;
pub mod ipcache;
pub mod policy;

/// Names of the maps in the datapath object, which are also their pin file names.
pub(crate) const IPCACHE: &str = "ipcache";
pub(crate) const IPBLOCK: &str = "ipblock";
pub(crate) const ENDPOINTS: &str = "endpoints";
pub(crate) const POLICY: &str = "policy";
pub(crate) const CONNTRACK: &str = "conntrack";
pub(crate) const CONFIG: &str = "config";
pub(crate) const POLICY_EPOCH: &str = "policy_epoch";
pub(crate) const EVENTS: &str = "events";
pub(crate) const EVENTS_LOST: &str = "events_lost";
pub(crate) const ALL: [&str; 9] = [
    IPCACHE,
    IPBLOCK,
    ENDPOINTS,
    POLICY,
    CONNTRACK,
    CONFIG,
    POLICY_EPOCH,
    EVENTS,
    EVENTS_LOST,
];

/// Direction of traffic relative to an endpoint (a pod): `Egress` leaves it, `Ingress` enters it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    Ingress = 0,
    Egress = 1,
}

impl Direction {
    pub(crate) fn from_raw(raw: u8) -> Option<Direction> {
        match raw {
            0 => Some(Direction::Ingress),
            1 => Some(Direction::Egress),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        })
    }
}

/// An IPv4 prefix with its host bits cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Prefix {
    addr: Ipv4Addr,
    len: u8,
}

impl Ipv4Prefix {
    /// `addr/len`; host bits of `addr` are cleared, as the kernel's LPM trie ignores them.
    pub fn new(addr: Ipv4Addr, len: u8) -> Result<Ipv4Prefix, Error> {
        if len > 32 {
            return Err(Error::InvalidPrefix {
                addr: addr.to_string(),
                len,
                max: 32,
            });
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        Ok(Ipv4Prefix {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            len,
        })
    }

    /// A single address (`/32`).
    pub fn host(addr: Ipv4Addr) -> Ipv4Prefix {
        Ipv4Prefix { addr, len: 32 }
    }

    pub fn addr(self) -> Ipv4Addr {
        self.addr
    }

    pub fn prefix_len(self) -> u8 {
        self.len
    }
}

impl fmt::Display for Ipv4Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Opens the map pinned at `dir/name` as the aya map type `T`.
pub(crate) fn open_pinned<T>(dir: &Path, name: &'static str) -> Result<T, Error>
where
    T: TryFrom<Map, Error = MapError>,
{
    let path = dir.join(name);
    let open = || -> Result<T, MapError> {
        let data = MapData::from_pin(&path)?;
        T::try_from(Map::from_map_data(data)?)
    };
    open().map_err(|source| Error::OpenMap {
        map: name,
        path: path.clone(),
        source: Box::new(source),
    })
}

/// The `map_err` adapter of every map operation: an [`Error::Map`] naming the map, the operation
/// and the key (empty for a whole-map operation such as iteration). The key is rendered only on
/// failure.
pub(crate) fn map_error(
    map: &'static str,
    op: &'static str,
    key: impl fmt::Display,
) -> impl FnOnce(MapError) -> Error {
    move |source| Error::Map {
        map,
        op,
        key: key.to_string(),
        source: Box::new(source),
    }
}

/// Treats "no such key" as `None`, as the map types' `get` report a miss as an error.
pub(crate) fn found<V>(result: Result<V, MapError>) -> Result<Option<V>, MapError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(err) => Err(err),
    }
}

/// Treats deleting an absent key as done (`Ok(false)`): deletes are idempotent for reconcilers.
pub(crate) fn removed(result: Result<(), MapError>) -> Result<bool, MapError> {
    match result {
        Ok(()) => Ok(true),
        Err(MapError::SyscallError(aya::sys::SyscallError { io_error, .. }))
            if io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}
