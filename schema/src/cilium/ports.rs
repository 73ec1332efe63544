use std::fmt;

use serde::{Deserialize, Serialize};

use super::L7Rules;
use crate::port::Port;
use crate::serde_util::{nullable, string_or_int};

/// A `toPorts` entry: ports and, optionally, L7 rules that apply on them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortRule {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ports: Vec<PortProtocol>,
    #[serde(
        rename = "terminatingTLS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub terminating_tls: Option<TlsContext>,
    #[serde(
        rename = "originatingTLS",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub originating_tls: Option<TlsContext>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub server_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener: Option<Listener>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<L7Rules>,
}

/// A `ports` entry. `port` is a number (`"80"`, and `80` is accepted too), `"0"` for every
/// port, or a named container port; `endPort` makes a range; `protocol` is TCP, UDP, SCTP or
/// ANY (missing means ANY).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortProtocol {
    #[serde(
        default,
        deserialize_with = "string_or_int",
        skip_serializing_if = "Option::is_none"
    )]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// The L4 protocols a port rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    Any,
}

/// `terminatingTLS`/`originatingTLS`: where the proxy finds certificates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    #[serde(rename = "trustedCA", default, skip_serializing_if = "Option::is_none")]
    pub trusted_ca: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
}

/// A reference to a Kubernetes secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
}

/// `listener`: redirect to a named Envoy listener from a CiliumEnvoyConfig.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub envoy_config: EnvoyConfig,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
}

/// `envoyConfig`: the CiliumEnvoyConfig that defines a listener.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvoyConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
}

impl PortProtocol {
    /// The parsed port; `None` when missing or invalid.
    pub fn parsed_port(&self) -> Option<Port> {
        self.port.as_deref().and_then(Port::parse)
    }

    /// The parsed protocol (missing means ANY); `None` when invalid.
    pub fn parsed_protocol(&self) -> Option<Protocol> {
        Protocol::parse(self.protocol.as_deref())
    }
}

impl Protocol {
    /// Every protocol, in order.
    pub const ALL: [Protocol; 4] = [Protocol::Tcp, Protocol::Udp, Protocol::Sctp, Protocol::Any];

    /// Parses a `protocol` field as the CRD's enum does (case-sensitive); missing or empty
    /// means ANY.
    pub fn parse(text: Option<&str>) -> Option<Protocol> {
        match text.unwrap_or("") {
            "" | "ANY" => Some(Protocol::Any),
            "TCP" => Some(Protocol::Tcp),
            "UDP" => Some(Protocol::Udp),
            "SCTP" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
            Protocol::Any => "ANY",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
