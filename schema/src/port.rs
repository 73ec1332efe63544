//! Ports as policies write them: a number or an IANA service name (a named container port).

use std::fmt;

/// A parsed `port` field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Port {
    /// A port number; 0 means every port.
    Number(u16),
    /// A named port, resolved against the selected pod's container ports. Lowercased, as Cilium
    /// compares names case-insensitively.
    Name(String),
}

impl Port {
    /// Parses a CiliumNetworkPolicy port: decimal `0`..=`65535` or an IANA service name
    /// (see [`is_service_name`]). `None` when it is neither.
    pub fn parse(text: &str) -> Option<Port> {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            if text.len() > 1 && text.starts_with('0') {
                return None;
            }
            return text.parse().ok().map(Port::Number);
        }
        is_service_name(text).then(|| Port::Name(text.to_ascii_lowercase()))
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Port::Number(n) => write!(f, "{n}"),
            Port::Name(name) => f.write_str(name),
        }
    }
}

/// An IANA service name (RFC 6335 §5.1): 1 to 15 ASCII letters, digits and hyphens, at least
/// one letter, no hyphen at either end and no two hyphens in a row. Upper case is accepted,
/// as Cilium does; Kubernetes port names additionally must be lower case.
pub fn is_service_name(text: &str) -> bool {
    let bytes = text.as_bytes();
    (1..=15).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.iter().any(u8::is_ascii_alphabetic)
        && !text.starts_with('-')
        && !text.ends_with('-')
        && !text.contains("--")
}

#[cfg(test)]
mod tests;
