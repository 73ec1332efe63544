//! L7 rules as matchers: HTTP requests (Envoy `safe_regex` semantics: anchored full-string
//! matches) and DNS names (Cilium's `matchName`/`matchPattern`).

mod dns;
mod http;

pub use dns::{FqdnPattern, FqdnPatternError};
pub use http::{HttpMatcher, HttpRequest};

/// The L7 part of one port rule: a request is allowed if any matcher matches.
#[derive(Debug, Clone)]
pub enum L7Rules {
    Http(Vec<HttpMatcher>),
    Dns(Vec<FqdnPattern>),
}

/// The L7 protocol a redirect hands traffic to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L7Parser {
    Http,
    Dns,
}

impl L7Rules {
    pub fn parser(&self) -> L7Parser {
        match self {
            L7Rules::Http(_) => L7Parser::Http,
            L7Rules::Dns(_) => L7Parser::Dns,
        }
    }
}

impl L7Parser {
    pub fn as_str(self) -> &'static str {
        match self {
            L7Parser::Http => "http",
            L7Parser::Dns => "dns",
        }
    }
}

#[cfg(test)]
mod tests;
