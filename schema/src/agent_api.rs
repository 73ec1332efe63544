//! The agent's local API: what `myelin-cni` (and later the `myelin` CLI) send to `myelin-agent`
//! over its unix socket.
//!
//! Framing is newline-delimited JSON: a client connects, writes one [`Request`] as one line,
//! reads one [`Response`] line and closes. Both enums are internally tagged (`"request":
//! "endpoint-add"`, `"response": "endpoint"`), so new requests (`endpoint-list`, `identity-list`,
//! `policy-get`) are new variants and never change the framing. Unknown fields are ignored, so an
//! older agent still understands a newer client's requests where they overlap.
//!
//! The agent also persists [`Endpoint`]s in this form, one per line, in its state directory.

use std::net::Ipv4Addr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

mod cli;
#[cfg(test)]
mod tests;

pub use cli::{
    Applied, BpfPolicy, BpfPolicyEntry, BpfPolicyGet, EndpointList, EndpointRow, IdentityList,
    IdentityRow, Manifest, ObjectAction, ObjectResult, PolicyRules, ReconcilerHealth,
};

/// Where the agent listens unless told otherwise (the CNI config's `agentSocket`).
pub const DEFAULT_SOCKET: &str = "/run/myelin/agent.sock";

/// Longest line either side accepts; a longer one is a protocol error, not a reason to buffer
/// without bound.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// The link-local gateway every pod routes through (Calico-style): the host end of the pod's
/// veth answers for it, so no address of the node's networks is spent on gateways.
pub const POD_GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// One request; one per connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "kebab-case")]
pub enum Request {
    /// Allocate an address and record the endpoint (waiting for its interface). Idempotent: the
    /// same container gets its existing endpoint back.
    EndpointAdd(EndpointAdd),
    /// The plugin wired the pod up; the endpoint becomes ready.
    EndpointReady(EndpointReady),
    /// Forget the endpoint and release its address. Unknown containers are not an error.
    EndpointDelete(EndpointRef),
    /// The endpoint as recorded, for CNI CHECK.
    EndpointGet(EndpointRef),
    /// Whether the agent can serve ADDs, its address pool and its reconcilers' health.
    Status,
    /// Store the objects of a manifest, as `kubectl apply -f`.
    Apply(Manifest),
    /// Remove the objects a manifest names, as `kubectl delete -f`.
    Delete(Manifest),
    /// The node's endpoints, as `cilium endpoint list`.
    EndpointList,
    /// The identities the node knows, as `cilium identity list`.
    IdentityList,
    /// The policies in force, translated into Cilium's rule model, as `cilium policy get`.
    PolicyGet,
    /// What one endpoint's policy map holds in the kernel, as `cilium bpf policy get`.
    BpfPolicyGet(BpfPolicyGet),
}

/// The answer to one [`Request`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "kebab-case")]
pub enum Response {
    Endpoint(Endpoint),
    /// The endpoint that was deleted, if there was one.
    Deleted(Deleted),
    Status(AgentStatus),
    Applied(Applied),
    Endpoints(EndpointList),
    Identities(IdentityList),
    Policy(PolicyRules),
    BpfPolicy(BpfPolicy),
    Error(ApiError),
}

/// Which pod interface a request is about. The agent keys endpoints by container id and keeps
/// the interface name to refuse a second interface it would not know how to address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRef {
    pub container_id: String,
    pub ifname: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointAdd {
    pub container_id: String,
    pub ifname: String,
    /// Path of the pod's network namespace (`CNI_NETNS`).
    pub netns: String,
    /// From `CNI_ARGS` (`K8S_POD_NAMESPACE`, `K8S_POD_NAME`); absent outside Kubernetes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    /// The address asked for (`CNI_ARGS` `IP=`); the agent refuses it if it is outside its pod
    /// CIDR or taken, rather than handing out another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Ipv4Addr>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointReady {
    pub container_id: String,
    pub ifname: String,
    pub host: HostInterface,
    /// MAC address of the pod's interface, `aa:bb:cc:dd:ee:ff`.
    pub container_mac: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
}

/// The node-side end of a pod's veth pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInterface {
    pub ifindex: u32,
    pub ifname: String,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
}

/// How far an endpoint got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointState {
    /// Address allocated; the plugin has not reported the pod's interface yet.
    WaitingForNetns,
    Ready,
}

/// An endpoint as the agent records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub container_id: String,
    /// The node-local endpoint id, as `myelin endpoint list` shows it. 0 in state saved by an
    /// agent that had no ids; it is assigned on restore.
    #[serde(default)]
    pub id: u16,
    pub ifname: String,
    pub netns: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<PodRef>,
    /// The pod's address; it is configured as a /32.
    pub ipv4: Ipv4Addr,
    /// Next hop of the pod's default route, [`POD_GATEWAY`].
    pub gateway: Ipv4Addr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<HostInterface>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_mac: Option<String>,
    pub state: EndpointState,
    /// Security identity, once identities exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    /// The pod CIDR addresses come from, e.g. `10.244.1.0/24`.
    pub pod_cidr: String,
    /// Addresses the pool hands out (the CIDR minus network, broadcast and router addresses).
    pub addresses_total: u32,
    pub addresses_free: u32,
    pub endpoints: u32,
    /// Absent from agents without a datapath.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reconcilers: Vec<ReconcilerHealth>,
    #[serde(default)]
    pub identities: u32,
    #[serde(default)]
    pub policies: u32,
}

/// A request the agent could not serve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    /// No endpoint for that container (and interface).
    NotFound,
    /// The pod CIDR has no free address.
    Exhausted,
    /// The container already has an endpoint on another interface.
    Conflict,
    /// The request is malformed.
    Invalid,
    /// The agent failed (e.g. could not persist its state); retrying may help.
    Internal,
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ErrorCode::NotFound => "not found",
            ErrorCode::Exhausted => "addresses exhausted",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Invalid => "invalid request",
            ErrorCode::Internal => "internal error",
        })
    }
}

/// Why `id` is not a container id as the CNI spec allows them (letters, digits, `_`, `.` and
/// `-`, at least one), if it is not. Such ids are also safe in file names and log lines.
pub fn container_id_problem(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("is empty")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    {
        Some("may contain only letters, digits, '_', '.' and '-'")
    } else {
        None
    }
}

/// Why `name` is not a Linux interface name (as the CNI spec repeats the rules), if it is not.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("is empty")
    } else if name.len() > 15 {
        Some("is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("is reserved")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("contains '/', ':' or whitespace")
    } else {
        None
    }
}

/// A MAC address as the API writes it: `aa:bb:cc:dd:ee:ff`, lowercase.
pub fn format_mac(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `aa:bb:cc:dd:ee:ff` as bytes; `None` if it is not a MAC address.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// A line that is not the message expected.
#[derive(Debug, thiserror::Error)]
#[error("decode {what}: {message}")]
pub struct DecodeError {
    pub what: &'static str,
    /// serde_json's message, which ends with the line and column.
    pub message: String,
}

/// One message as one line, `\n` included.
pub fn encode_line<T: Serialize>(message: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(message)
        .expect("invariant: API types have string keys and no fallible serializers");
    line.push(b'\n');
    line
}

/// Decodes one line (with or without its `\n`); `what` names the message in the error.
pub fn decode_line<T: DeserializeOwned>(what: &'static str, line: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(line.trim_ascii_end()).map_err(|err| DecodeError {
        what,
        message: err.to_string(),
    })
}
