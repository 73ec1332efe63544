//! `config`: datapath-wide settings, one array slot.

use aya::maps::{Array, MapData};

use super::{CONFIG, map_error};
use crate::Error;

/// Which packets produce trace events. Drops and policy verdicts are always reported.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TraceMode {
    /// Packets of new connections and packets carrying SYN, FIN or RST (Cilium's "medium"
    /// monitor aggregation).
    #[default]
    Aggregate = 0,
    /// Every packet: for debugging; costs a ring buffer record per packet.
    All = 1,
    None = 2,
}

/// `struct datapath_config`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatapathConfig {
    pub trace_mode: u32,
    pub(crate) pad: u32,
}

#[expect(unsafe_code, reason = "aya::Pod is an unsafe marker trait")]
// SAFETY: repr(C), two u32 fields, 8 bytes (checked by the layout test).
unsafe impl aya::Pod for DatapathConfig {}

pub(crate) fn set_trace_mode(
    map: &mut Array<MapData, DatapathConfig>,
    mode: TraceMode,
) -> Result<(), Error> {
    let config = DatapathConfig {
        trace_mode: mode as u32,
        pad: 0,
    };
    map.set(0, config, 0).map_err(map_error(CONFIG, "set", 0))
}
