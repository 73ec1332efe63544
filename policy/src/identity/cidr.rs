use schema::cidr::Cidr;
use schema::labels::{Label, Labels, Source};

/// The key of the label that stands for the pod-address scope of a prefix (see
/// [`ipblock_labels`]).
pub const IPBLOCK_KEY: &str = "ipblock";

/// Labels of the identity of a prefix outside the cluster: `cidr:<p>` for the prefix and every
/// prefix containing it, so that a selector for `cidr:10.0.0.0/8` selects the identity of
/// `10.1.0.0/16`, plus `reserved:world`.
pub fn world_prefix_labels(prefix: Cidr) -> Labels {
    let mut labels = superset_labels(prefix);
    labels.insert(Label::new(Source::Reserved, "world", ""));
    labels
}

/// Labels of the identity a pod address gets for Kubernetes NetworkPolicy `ipBlock` peers: the
/// same `cidr:` labels without `reserved:world` (so Cilium-style CIDR selectors, which require
/// it, never select pods) and with `reserved:ipblock`.
pub fn ipblock_labels(prefix: Cidr) -> Labels {
    let mut labels = superset_labels(prefix);
    labels.insert(Label::new(Source::Reserved, IPBLOCK_KEY, ""));
    labels
}

fn superset_labels(prefix: Cidr) -> Labels {
    let max = prefix.prefix_len();
    (0..=max)
        .filter_map(|len| Cidr::new(prefix.addr(), len).ok())
        .map(|p| Label::new(Source::Cidr, p.network().to_string(), ""))
        .collect()
}
