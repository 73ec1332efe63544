//! `hubble observe` output: compact lines, dict blocks, a table, and JSON (protojson with proto
//! field names, as `-o json`/`-o jsonpb` print it).
//!
//! Times print in UTC with Go's `Jan _2 15:04:05.000` layout (`Jun  9 20:38:30.645`).

mod json;
mod text;

#[cfg(test)]
mod tests;

pub use json::{flow_json, response_json};
pub use text::{compact, dict, flow_type, hostnames, summary, table, verdict};

pub(crate) use text::l4_summary;

/// The output formats of `-o`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Compact,
    Dict,
    Table,
    /// `json` and `jsonpb` print the same: one `GetFlowsResponse` per line.
    Json,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(text: &str) -> Result<Format, String> {
        match text {
            "compact" => Ok(Format::Compact),
            "dict" => Ok(Format::Dict),
            "table" | "tab" => Ok(Format::Table),
            "json" | "jsonpb" => Ok(Format::Json),
            other => Err(format!(
                "unknown output format {other:?}, expected compact, dict, table, json or jsonpb"
            )),
        }
    }
}

/// Prints flows of one node in `format`.
pub fn print(format: Format, flows: &[schema::flow::Flow]) -> String {
    match format {
        Format::Compact => flows.iter().map(compact).collect(),
        Format::Dict => dict(flows),
        Format::Table => table(flows),
        Format::Json => flows
            .iter()
            .map(|flow| {
                let mut line = response_json(flow);
                line.push('\n');
                line
            })
            .collect(),
    }
}
