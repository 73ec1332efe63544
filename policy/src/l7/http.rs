use regex::Regex;
use schema::cilium::HttpRule;

/// One `rules.http` entry. Every field that is set must match; an empty rule matches every
/// request.
#[derive(Debug, Clone)]
pub struct HttpMatcher {
    pub rule: HttpRule,
    method: Option<Regex>,
    path: Option<Regex>,
    host: Option<Regex>,
    /// `(name, value)`: the header must be present, with exactly that value if given.
    headers: Vec<(String, Option<String>)>,
}

/// The parts of a request that HTTP rules look at.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    pub method: &'a str,
    /// The request target as sent, query string included (what Envoy calls `:path`).
    pub path: &'a str,
    pub host: &'a str,
    pub headers: &'a [(String, String)],
}

impl HttpMatcher {
    pub fn new(rule: &HttpRule) -> Result<Self, regex::Error> {
        let anchored = |re: &Option<String>| -> Result<Option<Regex>, regex::Error> {
            re.as_deref()
                .map(|re| Regex::new(&format!("^(?:{re})$")))
                .transpose()
        };
        let headers = rule
            .headers
            .iter()
            .map(|header| header_requirement(header))
            .chain(
                rule.header_matches
                    .iter()
                    .map(|m| (m.name.to_ascii_lowercase(), m.value.clone())),
            )
            .collect();
        Ok(Self {
            rule: rule.clone(),
            method: anchored(&rule.method)?,
            path: anchored(&rule.path)?,
            host: anchored(&rule.host)?,
            headers,
        })
    }

    pub fn matches(&self, request: &HttpRequest<'_>) -> bool {
        let field =
            |re: &Option<Regex>, value: &str| re.as_ref().is_none_or(|re| re.is_match(value));
        field(&self.method, request.method)
            && field(&self.path, request.path)
            && field(&self.host, request.host)
            && self.headers.iter().all(|(name, value)| {
                request.headers.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case(name) && value.as_ref().is_none_or(|value| v == value)
                })
            })
    }
}

/// `"X-My-Header: true"` is the header with that exact value; `"X-Token"` only its presence.
/// Cilium splits at the first space and trims a trailing `:` from the name.
fn header_requirement(text: &str) -> (String, Option<String>) {
    match text.split_once(' ') {
        Some((name, value)) => (
            name.trim_end_matches(':').to_ascii_lowercase(),
            Some(value.trim().to_owned()),
        ),
        None => (text.trim_end_matches(':').to_ascii_lowercase(), None),
    }
}
