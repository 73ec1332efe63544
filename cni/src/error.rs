//! The CNI error result: a code from the spec's table (or ours, 100 and up), a short message and
//! optional details, printed on stdout with a non-zero exit code.

use serde_json::{Value, json};

/// Error codes. 1-99 are the spec's well-known codes; 100 and up are this plugin's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    IncompatibleVersion,
    UnsupportedField,
    UnknownContainer,
    InvalidEnv,
    Io,
    Decode,
    InvalidConfig,
    TryAgainLater,
    /// STATUS: the plugin cannot serve ADDs now.
    NotAvailable,
    /// The agent refused the request (its message says why).
    AgentRefused,
    /// The pod CIDR has no free address.
    AddressesExhausted,
    /// CHECK found the pod's networking different from what was set up.
    CheckFailed,
    /// CNI_IFNAME already exists in the pod's namespace.
    InterfaceExists,
}

impl Code {
    pub(crate) fn number(self) -> u32 {
        match self {
            Code::IncompatibleVersion => 1,
            Code::UnsupportedField => 2,
            Code::UnknownContainer => 3,
            Code::InvalidEnv => 4,
            Code::Io => 5,
            Code::Decode => 6,
            Code::InvalidConfig => 7,
            Code::TryAgainLater => 11,
            Code::NotAvailable => 50,
            Code::AgentRefused => 100,
            Code::AddressesExhausted => 101,
            Code::CheckFailed => 102,
            Code::InterfaceExists => 103,
        }
    }
}

/// A failed command, as the runtime will see it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{msg}")]
pub(crate) struct CniError {
    pub(crate) code: Code,
    pub(crate) msg: String,
    pub(crate) details: Option<String>,
}

impl CniError {
    pub(crate) fn new(code: Code, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: None,
        }
    }

    /// `msg` plus the rendered cause chain of `cause` as details.
    pub(crate) fn with_cause(
        code: Code,
        msg: impl Into<String>,
        cause: &(dyn std::error::Error + 'static),
    ) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: Some(error_chain(cause)),
        }
    }

    pub(crate) fn to_json(&self, cni_version: &str) -> Value {
        let mut out = json!({
            "cniVersion": cni_version,
            "code": self.code.number(),
            "msg": self.msg,
        });
        if let Some(details) = &self.details {
            out["details"] = Value::String(details.clone());
        }
        out
    }
}

/// `error: cause: cause`, skipping causes the message already ends with.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}
