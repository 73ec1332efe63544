//! Kubernetes name rules (apimachinery `validation.IsQualifiedName`, `IsValidLabelValue`).

/// A label value: empty, or at most 63 characters of `[A-Za-z0-9-_.]` starting and ending
/// with a letter or digit.
pub(super) fn is_label_value(value: &str) -> bool {
    value.is_empty() || (value.len() <= 63 && is_name_part(value))
}

/// A label key: `name` or `prefix/name`, where prefix is a DNS subdomain and name is at most
/// 63 characters of `[A-Za-z0-9-_.]` starting and ending with a letter or digit.
pub(super) fn is_qualified_name(key: &str) -> bool {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let prefix_ok = prefix.is_none_or(is_dns_subdomain);
    prefix_ok && !name.is_empty() && name.len() <= 63 && is_name_part(name)
}

/// A lower-case port name (Kubernetes `IsValidPortName`).
pub(super) fn is_port_name(name: &str) -> bool {
    crate::port::is_service_name(name) && !name.bytes().any(|b| b.is_ascii_uppercase())
}

fn is_name_part(text: &str) -> bool {
    let bytes = text.as_bytes();
    let edge = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    edge(bytes.first())
        && edge(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(text: &str) -> bool {
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        let edge = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        edge(bytes.first())
            && edge(bytes.last())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
    };
    !text.is_empty() && text.len() <= 253 && text.split('.').all(label_ok)
}
