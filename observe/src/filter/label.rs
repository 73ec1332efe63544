//! Label selectors in Kubernetes' string syntax, as `--from-label` takes them:
//! `app=sleep`, `k8s:app in (a, b)`, `env!=prod`, `reserved:world`, `!tier`.

use schema::labels::{Label, Labels, Requirement, Selector};

/// Parses a selector; keys without a source match labels of any source.
pub fn parse_selector(text: &str) -> Result<Selector, String> {
    let mut requirements = Vec::new();
    for part in split_top_level(text) {
        let part = part.trim();
        if part.is_empty() {
            return Err("empty requirement".to_owned());
        }
        requirements.push(requirement(part)?);
    }
    Ok(Selector::new(requirements))
}

fn requirement(part: &str) -> Result<Requirement, String> {
    let build = |key: &str, op: &str, values: Vec<String>| {
        Requirement::new(key.trim(), op, &values).map_err(|e| e.to_string())
    };
    if let Some(key) = part.strip_prefix('!') {
        return build(key, "DoesNotExist", Vec::new());
    }
    if let Some((key, value)) = part.split_once("!=") {
        return build(key, "NotIn", vec![value.trim().to_owned()]);
    }
    if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return build(key, "In", vec![value.trim().to_owned()]);
    }
    for (word, op) in [(" notin ", "NotIn"), (" in ", "In")] {
        if let Some((key, set)) = part.split_once(word) {
            let set = set.trim();
            let inner = set
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(|| format!("{op} needs a parenthesised set, got {set:?}"))?;
            let values = inner.split(',').map(|v| v.trim().to_owned()).collect();
            return build(key, op, values);
        }
    }
    build(part, "Exists", Vec::new())
}

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A flow endpoint's label strings as a label set; unparsable labels are left out.
pub(super) fn labels(strings: &[String]) -> Labels {
    strings
        .iter()
        .filter_map(|s| Label::parse(s).ok())
        .collect()
}
