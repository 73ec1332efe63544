//! The node-side veth name of a pod: `lxc` and 12 hex digits of a hash of the container id,
//! 15 bytes (the kernel's limit). Derived, not stored, so DEL finds the link even if the agent
//! lost its record, and a second ADD finds what the first one left.

#[cfg(test)]
mod tests;

/// FNV-1a, 64 bits: stable across Rust releases and platforms (unlike `DefaultHasher`), which
/// matters because a link named by one build of the plugin is deleted by the next.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// MurmurHash3's finalizer: FNV-1a barely mixes the last bytes, and ids often differ only there.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

pub(crate) fn host_ifname(container_id: &str) -> String {
    let hash = format!("{:016x}", fmix64(fnv1a64(container_id.as_bytes())));
    format!("lxc{}", &hash[..12])
}
