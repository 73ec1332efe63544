//! `policy matrix`, `policy trace` and `policy get`: a cluster from manifests, evaluated.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use policy::cluster::Cluster;
use policy::engine::{Config, EnforcementMode};
use policy::trace::{self, Http, Peer, Probe, Request, RuleRef, Side, Trace};
use schema::manifest;
use serde_json::{Value, json};

use super::Enforcement;
use crate::matrix::{Cell, Matrix, MatrixFormat};

#[derive(Args)]
pub(crate) struct TraceArgs {
    #[arg(long = "manifests", required = true)]
    manifests: Vec<PathBuf>,
    /// ns/pod, host, remote-node, world:IP, ip:IP, svc:ns/name or fqdn:NAME
    #[arg(long)]
    from: String,
    #[arg(long, required_unless_present = "dns")]
    to: Option<String>,
    /// PORT/PROTOCOL, e.g. 80/TCP
    #[arg(long, default_value = "80/TCP")]
    port: String,
    #[arg(long)]
    http_method: Option<String>,
    #[arg(long)]
    http_path: Option<String>,
    #[arg(long)]
    http_host: Option<String>,
    /// `Name: value`; repeat for several.
    #[arg(long)]
    http_header: Vec<String>,
    /// An ICMP type instead of a port: echo-request.
    #[arg(long)]
    icmp: Option<String>,
    /// A DNS query for NAME to the cluster DNS pod.
    #[arg(long)]
    dns: Option<String>,
    /// NAME=IP: an address the DNS proxy learned for NAME; repeat for several.
    #[arg(long = "fqdn-ip")]
    fqdn_ip: Vec<String>,
    #[arg(long, value_enum, default_value_t = Enforcement::Default)]
    enforcement: Enforcement,
    #[arg(short = 'o', long = "output", default_value = "text")]
    output: String,
}

fn load(paths: &[PathBuf], enforcement: Enforcement) -> Result<Cluster, ExitCode> {
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for result in manifest::load_paths(paths) {
        match result {
            Ok(object) => objects.push(object),
            Err(e) => errors.push(reconcilers::error_chain(&e)),
        }
    }
    let config = Config {
        enforcement: match enforcement {
            Enforcement::Default => EnforcementMode::Default,
            Enforcement::Always => EnforcementMode::Always,
            Enforcement::Never => EnforcementMode::Never,
        },
        ..Config::default()
    };
    let cluster = Cluster::from_objects(objects, config);
    errors.extend(cluster.errors.iter().cloned());
    if errors.is_empty() {
        return Ok(cluster);
    }
    // Like the agent, a bad object never stops the others; but an evaluation that silently
    // left a policy out would mislead, so say so and fail.
    for e in &errors {
        eprintln!("error: {e}");
    }
    Err(ExitCode::FAILURE)
}

pub(super) fn matrix(
    manifests: &[PathBuf],
    probes: &[String],
    output: MatrixFormat,
    enforcement: Enforcement,
) -> ExitCode {
    let cluster = match load(manifests, enforcement) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let probes: Vec<Probe> = if probes.is_empty() {
        vec![Probe::tcp(80)]
    } else {
        match probes.iter().map(|p| p.parse()).collect::<Result<_, _>>() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    let matrix = Matrix {
        names: cluster
            .pods()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect(),
        tables: probes
            .iter()
            .map(|probe| {
                let table = trace::matrix(&cluster, *probe)
                    .into_iter()
                    .map(|row| row.into_iter().map(Cell::from).collect())
                    .collect();
                (*probe, table)
            })
            .collect(),
    };
    print!("{}", matrix.render(output));
    ExitCode::SUCCESS
}

pub(super) fn trace(args: &TraceArgs) -> ExitCode {
    match run_trace(args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_trace(args: &TraceArgs) -> Result<ExitCode, String> {
    let mut cluster = match load(&args.manifests, args.enforcement) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let mut fqdn_ips = Vec::new();
    for text in &args.fqdn_ip {
        let (name, ip) = text
            .split_once('=')
            .ok_or_else(|| format!("--fqdn-ip {text:?}: expected NAME=IP"))?;
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("--fqdn-ip {text:?}: {ip:?} is not an IP address"))?;
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        cluster.engine.learn_fqdn(&name, ip);
        fqdn_ips.push((name, ip));
    }
    let from: Peer = args.from.parse().map_err(|e| format!("--from: {e}"))?;
    let to: Peer = match &args.to {
        Some(to) => to.parse().map_err(|e| format!("--to: {e}"))?,
        None => Peer::Host,
    };
    let probe = match args.icmp.as_deref() {
        Some("echo-request" | "EchoRequest" | "8") => trace::icmp_echo_request(),
        Some(other) => {
            return Err(format!(
                "--icmp: {other:?} is not supported; use echo-request"
            ));
        }
        None => args.port.parse().map_err(|e| format!("--port: {e}"))?,
    };
    let http_given = args.http_method.is_some()
        || args.http_path.is_some()
        || args.http_host.is_some()
        || !args.http_header.is_empty();
    let headers = args
        .http_header
        .iter()
        .map(|h| {
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let request = Request {
        http: http_given.then(|| Http {
            method: args.http_method.clone(),
            path: args.http_path.clone(),
            host: args.http_host.clone(),
            headers,
        }),
        dns: args.dns.clone(),
    };
    let result = trace::trace(&cluster, &from, &to, probe, &request, &fqdn_ips)
        .map_err(|e| e.to_string())?;
    match args.output.as_str() {
        "json" => println!("{}", trace_json(&result)),
        "text" => print!("{}", trace_text(&result)),
        other => return Err(format!("-o {other:?}: use text or json")),
    }
    Ok(ExitCode::SUCCESS)
}

fn rule_json(rule: &RuleRef) -> Value {
    match &rule.origin {
        Some(origin) => json!({
            "kind": origin.kind.as_str(),
            "namespace": origin.namespace,
            "name": origin.name,
            "rule": rule.path,
            "effect": rule.effect,
        }),
        None => json!({ "rule": rule.path, "effect": rule.effect }),
    }
}

fn side_json(side: &Side) -> Value {
    json!({
        "verdict": side.verdict.as_str(),
        "endpoint": side.endpoint,
        "enforced": !matches!(side.decision, policy::mapstate::Decision::NotEnforced),
        "identity": side.identity.map(|i| i.0),
        "peer_identity": side.peer_identity.0,
        "rules": side.rules.iter().map(rule_json).collect::<Vec<_>>(),
    })
}

fn trace_json(t: &Trace) -> Value {
    json!({
        "verdict": t.verdict.as_str(),
        "http_status": t.http_status,
        "probe": t.probe.to_string(),
        "egress": side_json(&t.egress),
        "ingress": side_json(&t.ingress),
        "l7": t.l7.iter().map(rule_json).collect::<Vec<_>>(),
    })
}

fn rule_text(rule: &RuleRef) -> String {
    match &rule.origin {
        Some(origin) => format!("{} {} ({})", origin, rule.path, rule.effect),
        None => format!("{} ({})", rule.path, rule.effect),
    }
}

fn side_text(out: &mut String, side: &Side) {
    use policy::mapstate::Decision;
    let dir = side.direction.as_str();
    let who = match (&side.endpoint, side.identity) {
        (Some(ep), Some(id)) => format!("{ep} (identity {id})"),
        _ => "not a local endpoint".to_owned(),
    };
    let _ = write!(
        out,
        "{dir}: {who}, peer identity {}: {}",
        side.peer_identity,
        side.verdict.as_str()
    );
    match side.decision {
        Decision::NotEnforced if side.endpoint.is_some() => {
            let _ = writeln!(out, ", not enforced (no policy selects it for {dir})");
        }
        Decision::NotEnforced => {
            let _ = writeln!(out, ", nothing enforced there");
        }
        Decision::NoMatch => {
            let _ = writeln!(out, ", no rule allows it (default deny)");
            for r in &side.selected_by {
                let _ = writeln!(out, "  selected by {r}");
            }
        }
        Decision::Allowed { key } | Decision::Redirected { key, .. } | Decision::Denied { key } => {
            let _ = writeln!(out, " by entry {key}");
            for r in &side.rules {
                let _ = writeln!(out, "  {}", rule_text(r));
            }
        }
    }
}

fn trace_text(t: &Trace) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "probe: {}", t.probe);
    side_text(&mut out, &t.egress);
    side_text(&mut out, &t.ingress);
    if !t.l7.is_empty() {
        let _ = writeln!(out, "l7:");
        for r in &t.l7 {
            let _ = writeln!(out, "  {}", rule_text(r));
        }
    }
    if let Some(status) = t.http_status {
        let _ = writeln!(out, "http: {status}");
    }
    let _ = writeln!(out, "verdict: {}", t.verdict.as_str());
    out
}

pub(super) fn get(manifests: &[PathBuf]) -> ExitCode {
    let cluster = match load(manifests, Enforcement::Default) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rules: Vec<&schema::cilium::Rule> =
        cluster.translated_rules().iter().map(|t| &t.rule).collect();
    match serde_json::to_string_pretty(&rules) {
        Ok(text) => println!("{text}"),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    println!("Revision: {}", cluster.engine.policies().count() + 1);
    ExitCode::SUCCESS
}
