//! The network configuration the runtime streams on stdin: the spec's well-known fields plus
//! our `agentSocket`. Undecodable input is error 6, a field of the wrong shape error 7 (the
//! message names the field), an unsupported `cniVersion` error 1, and a field we know but do not
//! support error 2.

use std::path::PathBuf;

use schema::agent_api::DEFAULT_SOCKET;
use serde_json::{Map, Value};

use crate::error::{CniError, Code};

#[cfg(test)]
mod tests;

/// The spec versions this plugin speaks; the result format is the same in both.
pub(crate) const SUPPORTED_VERSIONS: &[&str] = &["1.0.0", "1.1.0"];

/// What errors and VERSION answer with when the input names no version we support.
pub(crate) const LATEST_VERSION: &str = "1.1.0";

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NetConf {
    pub(crate) cni_version: String,
    pub(crate) name: String,
    pub(crate) agent_socket: PathBuf,
    /// Passed through to the result as the spec asks.
    pub(crate) dns: Option<Value>,
    /// The previous plugin's result (chained ADD), or ours (CHECK, DEL).
    pub(crate) prev_result: Option<Value>,
}

pub(crate) fn decode(input: &[u8]) -> Result<NetConf, CniError> {
    let value: Value = serde_json::from_slice(input).map_err(|err| {
        CniError::new(Code::Decode, format!("decode network configuration: {err}"))
    })?;
    let Value::Object(fields) = value else {
        return Err(invalid("network configuration must be a JSON object"));
    };
    let cni_version = required_string(&fields, "cniVersion")?;
    if !SUPPORTED_VERSIONS.contains(&cni_version.as_str()) {
        return Err(CniError::new(
            Code::IncompatibleVersion,
            format!(
                "incompatible cniVersion {cni_version:?}: myelin-cni supports {}",
                SUPPORTED_VERSIONS.join(", ")
            ),
        ));
    }
    let name = required_string(&fields, "name")?;
    let name_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !name_ok {
        return Err(invalid(format!(
            "field `name`: {name:?} must start with a letter or digit, then letters, digits, '_', '.' or '-'"
        )));
    }
    required_string(&fields, "type")?;
    if fields.contains_key("ipam") {
        return Err(CniError::new(
            Code::UnsupportedField,
            "unsupported field `ipam`: myelin-cni gets addresses from the myelin agent",
        ));
    }
    if fields.get("ipMasq") == Some(&Value::Bool(true)) {
        return Err(CniError::new(
            Code::UnsupportedField,
            "unsupported field `ipMasq`: myelin-cni does not masquerade",
        ));
    }
    let agent_socket = match fields.get("agentSocket") {
        None => PathBuf::from(DEFAULT_SOCKET),
        Some(Value::String(path)) if path.starts_with('/') => PathBuf::from(path),
        Some(Value::String(path)) => {
            return Err(invalid(format!(
                "field `agentSocket`: {path:?} is not an absolute path"
            )));
        }
        Some(_) => return Err(invalid("field `agentSocket` must be a string")),
    };
    Ok(NetConf {
        cni_version,
        name,
        agent_socket,
        dns: optional_object(&fields, "dns")?,
        prev_result: optional_object(&fields, "prevResult")?,
    })
}

/// The `cniVersion` of whatever was on stdin, if it is one we support: errors and VERSION
/// answer in it.
pub(crate) fn requested_version(input: &[u8]) -> &'static str {
    let version = serde_json::from_slice::<Value>(input)
        .ok()
        .and_then(|value| value.get("cniVersion")?.as_str().map(str::to_owned));
    SUPPORTED_VERSIONS
        .iter()
        .find(|supported| Some(**supported) == version.as_deref())
        .copied()
        .unwrap_or(LATEST_VERSION)
}

fn required_string(fields: &Map<String, Value>, field: &str) -> Result<String, CniError> {
    match fields.get(field) {
        Some(Value::String(value)) if !value.is_empty() => Ok(value.clone()),
        Some(Value::String(_)) => Err(invalid(format!("field `{field}` must not be empty"))),
        Some(_) => Err(invalid(format!("field `{field}` must be a string"))),
        None => Err(invalid(format!("missing field `{field}`"))),
    }
}

fn optional_object(fields: &Map<String, Value>, field: &str) -> Result<Option<Value>, CniError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value @ Value::Object(_)) => Ok(Some(value.clone())),
        Some(_) => Err(invalid(format!("field `{field}` must be an object"))),
    }
}

fn invalid(msg: impl Into<String>) -> CniError {
    CniError::new(Code::InvalidConfig, msg)
}
