use std::fmt;

use regex::Regex;

/// A `matchName` or `matchPattern` over DNS names, case-insensitive, trailing dot implied.
///
/// In a pattern `*` stands for any run of DNS characters within one label, `**.` at the start
/// for one or more whole labels, and `*` alone for every name.
#[derive(Debug, Clone)]
pub struct FqdnPattern {
    /// Lowercase, without the trailing dot; the key of the `fqdn:` label that selects the IPs
    /// learned for matching names.
    text: String,
    regex: Option<Regex>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid DNS name pattern")]
pub struct FqdnPatternError(pub String);

impl FqdnPattern {
    pub fn name(name: &str) -> Result<Self, FqdnPatternError> {
        let text = normalize(name);
        let regex = Regex::new(&format!("^{}$", regex::escape(&text)))
            .map_err(|_| FqdnPatternError(name.to_owned()))?;
        Ok(Self {
            text,
            regex: Some(regex),
        })
    }

    pub fn pattern(pattern: &str) -> Result<Self, FqdnPatternError> {
        let text = normalize(pattern);
        if text == "*" {
            return Ok(Self { text, regex: None });
        }
        let (any_depth, rest) = match text.strip_prefix("**.") {
            Some(rest) => (true, rest),
            None => (false, text.as_str()),
        };
        let body = rest
            .split('*')
            .map(regex::escape)
            .collect::<Vec<_>>()
            .join("[-a-z0-9_]*");
        let prefix = if any_depth { r"(?:[-a-z0-9_]+\.)+" } else { "" };
        let regex = Regex::new(&format!("^{prefix}{body}$"))
            .map_err(|_| FqdnPatternError(pattern.to_owned()))?;
        Ok(Self {
            text,
            regex: Some(regex),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, name: &str) -> bool {
        let name = normalize(name);
        self.regex.as_ref().is_none_or(|re| re.is_match(&name))
    }
}

impl PartialEq for FqdnPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for FqdnPattern {}

impl fmt::Display for FqdnPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}
