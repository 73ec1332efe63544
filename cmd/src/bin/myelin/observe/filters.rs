//! `hubble observe`'s filter flags as `FlowFilter` whitelists and blacklists, built the way the
//! hubble CLI builds them: every flag adds to one filter (fields AND), except the either-way
//! flags (`--pod`, `--ip`, `--label`, ...), which split it into a source-side and a
//! destination-side filter (OR); `--not` sends the next filter flag to the blacklist.
//!
//! Flags are read in the order given, from the raw arguments, because `--not` applies to the
//! flag after it.

use schema::flow::{EventTypeFilter, FlowFilter, TrafficDirection, Verdict};

/// The filter flags, with whether they take a value (`--not` does not).
pub(crate) const FILTER_FLAGS: &[&str] = &[
    "not",
    "from-ip",
    "to-ip",
    "ip",
    "from-pod",
    "to-pod",
    "pod",
    "from-namespace",
    "to-namespace",
    "namespace",
    "from-label",
    "to-label",
    "label",
    "from-identity",
    "to-identity",
    "identity",
    "from-fqdn",
    "to-fqdn",
    "fqdn",
    "from-port",
    "to-port",
    "port",
    "verdict",
    "protocol",
    "type",
    "traffic-direction",
    "http-status",
    "http-method",
    "http-path",
];

/// What a filter flag is wrong about.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FlagError {
    #[error("--{flag}: {value:?} {problem}")]
    Value {
        flag: String,
        value: String,
        problem: &'static str,
    },
    #[error("--not must be followed by a filter flag")]
    DanglingNot,
}

/// A whitelist or blacklist under construction: `left` takes source-side values of either-way
/// flags, `right` destination-side ones; both take everything else.
#[derive(Default)]
struct Tracker {
    left: Option<FlowFilter>,
    right: Option<FlowFilter>,
}

impl Tracker {
    fn left(&mut self, f: impl FnOnce(&mut FlowFilter)) {
        f(self.left.get_or_insert_with(FlowFilter::default));
    }

    fn right(&mut self, f: impl FnOnce(&mut FlowFilter)) {
        f(self.right.get_or_insert_with(FlowFilter::default));
    }

    fn both(&mut self, f: impl Fn(&mut FlowFilter)) {
        self.left(&f);
        self.right(&f);
    }

    fn filters(self) -> Vec<FlowFilter> {
        match (self.left, self.right) {
            (Some(left), Some(right)) if left == right => vec![left],
            (left, right) => left.into_iter().chain(right).collect(),
        }
    }
}

fn bad(flag: &str, value: &str, problem: &'static str) -> FlagError {
    FlagError::Value {
        flag: flag.to_owned(),
        value: value.to_owned(),
        problem,
    }
}

/// The `(flag, value)` pairs of filter flags in `args` (the arguments after `observe`), in order.
pub(crate) fn filter_flags(args: &[String]) -> Vec<(String, String)> {
    let short = |s: &str| match s {
        "-n" => Some("namespace"),
        "-l" => Some("label"),
        "-t" => Some("type"),
        _ => None,
    };
    let mut out = Vec::new();
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        let (name, inline) = if let Some(long) = arg.strip_prefix("--") {
            match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_owned())),
                None => (long, None),
            }
        } else if let Some(name) = short(arg) {
            (name, None)
        } else {
            continue;
        };
        if !FILTER_FLAGS.contains(&name) {
            continue;
        }
        if name == "not" {
            out.push(("not".to_owned(), String::new()));
            continue;
        }
        let value = inline.or_else(|| iter.next().cloned()).unwrap_or_default();
        out.push((name.to_owned(), value));
    }
    out
}

/// Whitelist and blacklist from the filter flags, in order.
pub(crate) fn build(
    flags: &[(String, String)],
) -> Result<(Vec<FlowFilter>, Vec<FlowFilter>), FlagError> {
    let mut white = Tracker::default();
    let mut black = Tracker::default();
    let mut negate = false;
    for (flag, value) in flags {
        if flag == "not" {
            negate = true;
            continue;
        }
        let tracker = if negate { &mut black } else { &mut white };
        negate = false;
        apply(tracker, flag, value)?;
    }
    if negate {
        return Err(FlagError::DanglingNot);
    }
    Ok((white.filters(), black.filters()))
}

fn apply(t: &mut Tracker, flag: &str, value: &str) -> Result<(), FlagError> {
    let v = value.to_owned();
    let identity = || {
        value
            .parse::<u32>()
            .map_err(|_| bad(flag, value, "is not an identity number"))
    };
    let namespace = || format!("{value}/");
    match flag {
        "from-ip" => t.both(|f| f.source_ip.push(v.clone())),
        "to-ip" => t.both(|f| f.destination_ip.push(v.clone())),
        "ip" => {
            t.left(|f| f.source_ip.push(v.clone()));
            t.right(|f| f.destination_ip.push(v.clone()));
        }
        "from-pod" => t.both(|f| f.source_pod.push(v.clone())),
        "to-pod" => t.both(|f| f.destination_pod.push(v.clone())),
        "pod" => {
            t.left(|f| f.source_pod.push(v.clone()));
            t.right(|f| f.destination_pod.push(v.clone()));
        }
        "from-namespace" => t.both(|f| f.source_pod.push(namespace())),
        "to-namespace" => t.both(|f| f.destination_pod.push(namespace())),
        "namespace" => {
            t.left(|f| f.source_pod.push(namespace()));
            t.right(|f| f.destination_pod.push(namespace()));
        }
        "from-label" => t.both(|f| f.source_label.push(v.clone())),
        "to-label" => t.both(|f| f.destination_label.push(v.clone())),
        "label" => {
            t.left(|f| f.source_label.push(v.clone()));
            t.right(|f| f.destination_label.push(v.clone()));
        }
        "from-identity" => {
            let id = identity()?;
            t.both(|f| f.source_identity.push(id));
        }
        "to-identity" => {
            let id = identity()?;
            t.both(|f| f.destination_identity.push(id));
        }
        "identity" => {
            let id = identity()?;
            t.left(|f| f.source_identity.push(id));
            t.right(|f| f.destination_identity.push(id));
        }
        "from-fqdn" => t.both(|f| f.source_fqdn.push(v.clone())),
        "to-fqdn" => t.both(|f| f.destination_fqdn.push(v.clone())),
        "fqdn" => {
            t.left(|f| f.source_fqdn.push(v.clone()));
            t.right(|f| f.destination_fqdn.push(v.clone()));
        }
        "from-port" | "to-port" | "port" => {
            value
                .parse::<u16>()
                .map_err(|_| bad(flag, value, "is not a port number"))?;
            match flag {
                "from-port" => t.both(|f| f.source_port.push(v.clone())),
                "to-port" => t.both(|f| f.destination_port.push(v.clone())),
                _ => {
                    t.left(|f| f.source_port.push(v.clone()));
                    t.right(|f| f.destination_port.push(v.clone()));
                }
            }
        }
        "verdict" => {
            let verdict = Verdict::from_str_name(&value.to_ascii_uppercase())
                .filter(|v| *v != Verdict::Unknown)
                .ok_or_else(|| bad(flag, value, "is not a verdict (FORWARDED, DROPPED, AUDIT, REDIRECTED, ERROR, TRACED, TRANSLATED)"))?;
            t.both(|f| f.verdict.push(verdict.into()));
        }
        "protocol" => t.both(|f| f.protocol.push(value.to_ascii_lowercase())),
        "type" => {
            let filter = event_type(value).ok_or_else(|| {
                bad(
                    flag,
                    value,
                    "is not an event type (drop, debug, capture, trace[:point], policy-verdict, l7, trace-sock)",
                )
            })?;
            t.both(|f| f.event_type.push(filter));
        }
        "traffic-direction" => {
            let direction = match value.to_ascii_lowercase().as_str() {
                "ingress" => TrafficDirection::Ingress,
                "egress" => TrafficDirection::Egress,
                _ => return Err(bad(flag, value, "is not ingress or egress")),
            };
            t.both(|f| f.traffic_direction.push(direction.into()));
        }
        "http-status" => t.both(|f| f.http_status_code.push(v.clone())),
        "http-method" => t.both(|f| f.http_method.push(value.to_ascii_uppercase())),
        "http-path" => t.both(|f| f.http_path.push(v.clone())),
        _ => {}
    }
    Ok(())
}

/// `--type` as hubble takes it: a monitor type name, for traces optionally `:observation-point`.
fn event_type(value: &str) -> Option<EventTypeFilter> {
    use observe::decode::monitor;
    let (name, sub) = match value.split_once(':') {
        Some((name, sub)) => (name, Some(sub)),
        None => (value, None),
    };
    let r#type = match name {
        "drop" => monitor::DROP,
        "debug" => monitor::DEBUG,
        "capture" => monitor::CAPTURE,
        "trace" => monitor::TRACE,
        "policy-verdict" => monitor::POLICY_VERDICT,
        "l7" => monitor::ACCESS_LOG,
        "trace-sock" => monitor::TRACE_SOCK,
        _ => return None,
    };
    let sub_type = match (name, sub) {
        (_, None) => None,
        ("trace", Some(point)) => Some(match point {
            "to-endpoint" => 0,
            "to-proxy" => 1,
            "to-host" => 2,
            "to-stack" => 3,
            "to-overlay" => 4,
            "from-endpoint" => 5,
            "from-proxy" => 6,
            "from-host" => 7,
            "from-stack" => 8,
            "from-overlay" => 9,
            "from-network" => 10,
            "to-network" => 11,
            _ => return None,
        }),
        (_, Some(_)) => return None,
    };
    Some(EventTypeFilter {
        r#type,
        match_sub_type: sub_type.is_some(),
        sub_type: sub_type.unwrap_or(0),
    })
}
