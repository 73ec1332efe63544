//! Label selectors in Kubernetes' string syntax, as `--from-label` takes them:
//! `app=sleep`, `k8s:app in (a, b)`, `env!=prod`, `reserved:world`, `!tier`.

use schema::labels::{Operator, Requirement, Selector, Source};

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

/// Whether a flow endpoint's label strings satisfy `selector`. This reads the strings in
/// place rather than building a label set, as that would allocate for every label of every
/// flow the filter sees; the answer is the same as `selector.matches` on the set: the last
/// parsable label with a key is the one a requirement sees, and unparsable labels are ignored.
pub(super) fn selector_matches(selector: &Selector, strings: &[String]) -> bool {
    selector.requirements().iter().all(|req| {
        // The key is compared before the source is parsed: most labels fail on the key.
        let found = strings
            .iter()
            .rev()
            .find_map(|s| {
                let (source, key, value) = split_label(s)?;
                if key != req.key {
                    return None;
                }
                let source = match source {
                    Some(text) => text.parse::<Source>().ok()?,
                    None => Source::Unspec,
                };
                Some((source, value))
            })
            .filter(|(source, _)| req.source.selects(*source));
        match &req.operator {
            Operator::In(values) => found.is_some_and(|(_, value)| values.contains(value)),
            Operator::NotIn(values) => !found.is_some_and(|(_, value)| values.contains(value)),
            Operator::Exists => found.is_some(),
            Operator::DoesNotExist => found.is_none(),
        }
    })
}

/// `source:key=value` split as `Label::parse` reads it, borrowed; the source unparsed.
fn split_label(text: &str) -> Option<(Option<&str>, &str, &str)> {
    if text.is_empty() {
        return None;
    }
    let (source, rest) = match (text.find(':'), text.find('=')) {
        (Some(c), e) if e.is_none_or(|e| c < e) => (Some(&text[..c]), &text[c + 1..]),
        _ => (None, text),
    };
    let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
    (!key.is_empty()).then_some((source, key, value))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use schema::labels::{Label, Labels};

    use super::*;

    fn label_string() -> impl Strategy<Value = String> {
        let source = prop::sample::select(vec!["", "k8s:", "reserved:", "any:", "bogus:", ":"]);
        let key = prop::sample::select(vec!["app", "tier", "io.kubernetes.pod.namespace", ""]);
        let value = prop::sample::select(vec!["", "=web", "=db", "=a:b", "=x=y"]);
        (source, key, value).prop_map(|(s, k, v)| format!("{s}{k}{v}"))
    }

    fn selector_text() -> impl Strategy<Value = String> {
        let one = prop::sample::select(vec![
            "app=web",
            "k8s:app=db",
            "reserved:app",
            "!tier",
            "tier",
            "app!=web",
            "app in (web, db)",
            "k8s:app notin (a:b)",
            "io.kubernetes.pod.namespace=web",
        ]);
        prop::collection::vec(one, 1..3).prop_map(|parts| parts.join(","))
    }

    proptest! {
        #[test]
        fn matching_strings_in_place_equals_matching_the_label_set(
            strings in prop::collection::vec(label_string(), 0..6),
            text in selector_text(),
        ) {
            let selector = parse_selector(&text).expect("valid selector");
            let set: Labels = strings.iter().filter_map(|s| Label::parse(s).ok()).collect();
            prop_assert_eq!(selector_matches(&selector, &strings), selector.matches(&set));
        }
    }
}
