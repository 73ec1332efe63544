//! Hubble's flow filters: a flow passes if it matches any whitelist filter (or the whitelist is
//! empty) and no blacklist filter. Inside one `FlowFilter` every field that is set must match
//! (AND); the values of one field are alternatives (OR).
//!
//! Filters are compiled once per request into a list of checks, so matching a flow parses
//! nothing: label selectors read the flow's label strings in place.

mod compile;
mod label;

#[cfg(test)]
mod tests;

use schema::flow::{Flow, FlowFilter};

pub use label::parse_selector;

/// Why a filter cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("{field}: {value:?}: {problem}")]
    Invalid {
        field: &'static str,
        value: String,
        problem: String,
    },
}

/// A request's whitelist and blacklist, compiled.
#[derive(Debug, Clone, Default)]
pub struct FlowFilters {
    whitelist: Vec<compile::Compiled>,
    blacklist: Vec<compile::Compiled>,
}

impl FlowFilters {
    pub fn new(whitelist: &[FlowFilter], blacklist: &[FlowFilter]) -> Result<Self, FilterError> {
        Ok(FlowFilters {
            whitelist: whitelist
                .iter()
                .map(compile::Compiled::new)
                .collect::<Result<_, _>>()?,
            blacklist: blacklist
                .iter()
                .map(compile::Compiled::new)
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn matches(&self, flow: &Flow) -> bool {
        (self.whitelist.is_empty() || self.whitelist.iter().any(|f| f.matches(flow)))
            && !self.blacklist.iter().any(|f| f.matches(flow))
    }
}
