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

/// One request as the proxy sees it.
#[derive(Debug, Clone, Copy)]
pub enum L7Request<'a> {
    Http(HttpRequest<'a>),
    /// A DNS query name.
    Dns(&'a str),
}

/// The L7 protocol a redirect hands traffic to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L7Parser {
    Http,
    Dns,
}

impl L7Rules {
    /// Whether any rule allows the request; rules of another protocol allow nothing.
    pub fn allows(&self, request: &L7Request<'_>) -> bool {
        match (self, request) {
            (L7Rules::Http(matchers), L7Request::Http(req)) => {
                matchers.iter().any(|m| m.matches(req))
            }
            (L7Rules::Dns(patterns), L7Request::Dns(name)) => {
                patterns.iter().any(|p| p.matches(name))
            }
            _ => false,
        }
    }

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
