//! `policy_epoch`: the number the datapath compares with a connection's recorded allow. Every
//! handle that writes a map the policy decision reads (`ipcache`, `ipblock`, `endpoints`,
//! `policy`) bumps it after each successful write, so the writers need not know the contract:
//! the next packet of every connection decides again against the new contents.

use aya::maps::{Array, MapData};

use super::{POLICY_EPOCH, map_error};
use crate::Error;

pub(crate) struct Epoch {
    map: Array<MapData, u32>,
}

impl std::fmt::Debug for Epoch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Epoch")
    }
}

impl Epoch {
    pub(crate) fn new(map: Array<MapData, u32>) -> Epoch {
        Epoch { map }
    }

    /// Moves the epoch on (skipping 0, which means "never cached"). A bump lost to a racing
    /// writer is harmless: both writes were done before either new value was stored.
    pub(crate) fn bump(&mut self) -> Result<(), Error> {
        let current = self
            .map
            .get(&0, 0)
            .map_err(map_error(POLICY_EPOCH, "get", 0))?;
        let next = match current.wrapping_add(1) {
            0 => 1,
            n => n,
        };
        self.map
            .set(0, next, 0)
            .map_err(map_error(POLICY_EPOCH, "set", 0))
    }
}
