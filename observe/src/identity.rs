//! Reserved security identities as flows name them (Cilium's numbers).

/// `(ID:n)` or the reserved name `hubble observe` prints for 1..=255.
pub(crate) fn reserved_name(identity: u32) -> Option<&'static str> {
    Some(match identity {
        1 => "host",
        2 => "world",
        3 => "unmanaged",
        4 => "health",
        5 => "init",
        6 => "remote-node",
        7 => "kube-apiserver",
        8 => "ingress",
        9 => "world-ipv4",
        10 => "world-ipv6",
        _ => return None,
    })
}

/// The labels of a reserved identity: `reserved:<name>`, plus `reserved:remote-node` for the
/// API server's nodes, as Cilium labels them.
pub(crate) fn reserved_labels(identity: u32) -> Option<Vec<String>> {
    let name = reserved_name(identity)?;
    let mut labels = vec![format!("reserved:{name}")];
    if identity == 7 {
        labels.push("reserved:remote-node".to_owned());
    }
    Some(labels)
}
