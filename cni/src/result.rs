//! What a successful command prints: the ADD result (spec 1.x shape) and the VERSION answer.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

use crate::config::SUPPORTED_VERSIONS;

#[cfg(test)]
mod tests;

/// A pod wired up: both veth ends and the address configured on the pod's end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AddResult {
    pub(crate) host_ifname: String,
    pub(crate) host_mac: String,
    pub(crate) ifname: String,
    pub(crate) container_mac: String,
    /// The pod's network namespace path.
    pub(crate) sandbox: String,
    pub(crate) ipv4: Ipv4Addr,
    pub(crate) gateway: Ipv4Addr,
}

impl AddResult {
    /// The result JSON; `dns` is the configuration's, passed through.
    pub(crate) fn to_json(&self, cni_version: &str, dns: Option<&Value>) -> Value {
        json!({
            "cniVersion": cni_version,
            "interfaces": [
                { "name": self.host_ifname, "mac": self.host_mac },
                { "name": self.ifname, "mac": self.container_mac, "sandbox": self.sandbox },
            ],
            // Index 1: the pod's interface. A /32 so the pod sends everything to its gateway,
            // which is how traffic reaches the node (and later its datapath) between pods.
            "ips": [
                { "address": format!("{}/32", self.ipv4), "gateway": self.gateway, "interface": 1 },
            ],
            "routes": [ { "dst": "0.0.0.0/0", "gw": self.gateway } ],
            "dns": dns.cloned().unwrap_or_else(|| json!({})),
        })
    }
}

pub(crate) fn version_json(cni_version: &str) -> Value {
    json!({ "cniVersion": cni_version, "supportedVersions": SUPPORTED_VERSIONS })
}
