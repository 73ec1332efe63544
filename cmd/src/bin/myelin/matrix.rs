//! Truth tables of which pod reaches which, printed the same way whether the policy engine
//! predicted them (`policy matrix`) or real traffic measured them (`probe matrix`).

use std::fmt::Write as _;

use clap::ValueEnum;
use policy::trace::Probe;
use serde_json::{Value, json};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum MatrixFormat {
    Table,
    Json,
}

/// One source/destination pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cell {
    Allowed,
    Denied,
    /// Only measured: the destination answered with a reset (or ICMP port unreachable), so the
    /// packets got through but nothing listens there. Neither allowed nor a policy drop.
    Refused,
}

impl Cell {
    fn mark(self) -> &'static str {
        match self {
            Cell::Allowed => ".",
            Cell::Denied => "X",
            Cell::Refused => "R",
        }
    }
}

impl From<bool> for Cell {
    fn from(allowed: bool) -> Self {
        if allowed { Cell::Allowed } else { Cell::Denied }
    }
}

/// Rows are sources and columns destinations, both in `names` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Matrix {
    pub(crate) names: Vec<String>,
    pub(crate) tables: Vec<(Probe, Vec<Vec<Cell>>)>,
}

impl Matrix {
    pub(crate) fn render(&self, format: MatrixFormat) -> String {
        match format {
            MatrixFormat::Table => self.table(),
            MatrixFormat::Json => self.json(),
        }
    }

    /// `.` allowed, `X` denied, `R` refused; tab-separated, one block per probe.
    fn table(&self) -> String {
        let mut out = String::new();
        for (i, (probe, table)) in self.tables.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "{probe}");
            let _ = writeln!(out, "-\t{}", self.names.join("\t"));
            for (name, row) in self.names.iter().zip(table) {
                let cells: Vec<&str> = row.iter().map(|c| c.mark()).collect();
                let _ = writeln!(out, "{name}\t{}", cells.join("\t"));
            }
        }
        out
    }

    /// `{"probes":[{"probe","from","to","allowed"}]}`, plus a `refused` table beside `allowed`
    /// only for a probe where some pair was refused, so a prediction and a measurement of the
    /// same cluster print the same text when they agree.
    fn json(&self) -> String {
        // Keys in the documented order, whatever map type serde_json was built with.
        let names = Value::from(self.names.clone()).to_string();
        let probes: Vec<String> = self
            .tables
            .iter()
            .map(|(probe, table)| {
                let allowed = json!(cells_equal(table, Cell::Allowed));
                let refused = if table.iter().flatten().any(|c| *c == Cell::Refused) {
                    format!(r#","refused":{}"#, json!(cells_equal(table, Cell::Refused)))
                } else {
                    String::new()
                };
                format!(
                    r#"{{"probe":{},"from":{names},"to":{names},"allowed":{allowed}{refused}}}"#,
                    Value::from(probe.to_string()),
                )
            })
            .collect();
        format!("{{\"probes\":[{}]}}\n", probes.join(","))
    }
}

fn cells_equal(table: &[Vec<Cell>], cell: Cell) -> Vec<Vec<bool>> {
    table
        .iter()
        .map(|row| row.iter().map(|c| *c == cell).collect())
        .collect()
}

#[cfg(test)]
mod tests;
