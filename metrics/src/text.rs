//! The text exposition format 0.0.4: `# HELP`, `# TYPE`, then `name{label="value"} value`
//! lines, a family's samples together.

use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One histogram's figures as its owner keeps them.
#[derive(Clone, Copy, Debug)]
pub struct Histogram<'a> {
    /// Upper bounds of the buckets, ascending.
    pub bounds: &'a [f64],
    /// Observations per bucket, not cumulative; those above the last bound are only in `count`.
    pub counts: &'a [u64],
    pub sum: f64,
    pub count: u64,
}

/// Accumulates the exposition.
#[derive(Default)]
pub struct Encoder {
    out: String,
}

impl Encoder {
    /// Starts a family; its samples follow through the returned [`Family`].
    pub fn family<'a>(&'a mut self, name: &'a str, help: &str, kind: Kind) -> Family<'a> {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.as_str());
        Family { enc: self, name }
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// The samples of one family.
pub struct Family<'a> {
    enc: &'a mut Encoder,
    name: &'a str,
}

impl Family<'_> {
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.line("", labels, None, value);
        self
    }

    /// `_bucket` lines (cumulative, `+Inf` last), `_sum` and `_count`.
    pub fn histogram(&mut self, labels: &[(&str, &str)], h: Histogram<'_>) -> &mut Self {
        let mut cumulative = 0u64;
        for (bound, count) in h.bounds.iter().zip(h.counts) {
            cumulative += count;
            self.line("_bucket", labels, Some(*bound), as_value(cumulative));
        }
        self.line("_bucket", labels, Some(f64::INFINITY), as_value(h.count));
        self.line("_sum", labels, None, h.sum);
        self.line("_count", labels, None, as_value(h.count));
        self
    }

    fn line(&mut self, suffix: &str, labels: &[(&str, &str)], le: Option<f64>, value: f64) {
        let out = &mut self.enc.out;
        out.push_str(self.name);
        out.push_str(suffix);
        if !labels.is_empty() || le.is_some() {
            out.push('{');
            let mut first = true;
            for (name, value) in labels {
                if !first {
                    out.push(',');
                }
                first = false;
                let _ = write!(out, "{name}=\"{}\"", escape_label(value));
            }
            if let Some(le) = le {
                if !first {
                    out.push(',');
                }
                let _ = write!(out, "le=\"{}\"", number(le));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {}", number(value));
    }
}

/// Counts stay exact in an f64 up to 2^53, beyond any counter here.
#[expect(
    clippy::cast_precision_loss,
    reason = "the format's values are floats; counts below 2^53 are exact"
)]
fn as_value(n: u64) -> f64 {
    n as f64
}

/// Go's spelling of the special values, which the format uses.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        v.to_string()
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', r"\\").replace('\n', r"\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}
