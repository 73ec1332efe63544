//! `myelin probe`: connectivity measured on real traffic, from inside a pod's namespace.

mod connect;
mod matrix;
mod timeout;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use policy::trace::Probe;
use serde_json::Value;

pub(crate) use self::connect::{Outcome, ProbeError, Request, Verdict, probe_with};
pub(crate) use self::matrix::{ProbePod, probe_matrix};
use crate::embedded::{self, RunDir};
use crate::matrix::MatrixFormat;

/// Exit code when the probe itself could not run, apart from 1 (not allowed).
const ERROR: u8 = 2;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(crate) struct ProbeArgs {
    #[command(subcommand)]
    command: Option<ProbeCommand>,
    /// The source pod of the embedded node, NAMESPACE/POD (or POD, in `default`).
    #[arg(long, conflicts_with = "from_netns")]
    from: Option<String>,
    /// The source's network namespace instead: /run/netns/NAME or /proc/PID/ns/net (default:
    /// this process's own).
    #[arg(long = "from-netns")]
    from_netns: Option<PathBuf>,
    /// The destination: an address, or NAMESPACE/POD of the embedded node.
    #[arg(long, required = true)]
    to: Option<String>,
    /// PORT/PROTOCOL: TCP (an HTTP GET), UDP (a datagram that should come back) or SCTP.
    #[arg(long, default_value = "80/TCP")]
    port: Probe,
    /// How long to wait for the connection, then for the answer; silence means denied.
    #[arg(long, default_value = "1s", value_parser = timeout::parse)]
    timeout: Duration,
    /// The HTTP method a TCP probe sends.
    #[arg(long = "http-method", default_value = "GET")]
    http_method: String,
    /// The HTTP path (with any query) a TCP probe sends.
    #[arg(long = "http-path", default_value = "/", value_parser = http_path)]
    http_path: String,
    /// The HTTP Host header a TCP probe sends (default: the address probed).
    #[arg(long = "http-host")]
    http_host: Option<String>,
    /// Ask this name's A records, over UDP or TCP as the port says (the answer's addresses are
    /// the body; the DNS proxy's REFUSED is denied).
    #[arg(long)]
    dns: Option<String>,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = ProbeFormat::Text)]
    output: ProbeFormat,
}

fn http_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') && !text.contains(char::is_whitespace) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a path: it starts with / and has no spaces"
        ))
    }
}

#[derive(Subcommand)]
enum ProbeCommand {
    /// Probe every pair of pods and print the table `policy matrix` prints: `.` allowed,
    /// `X` denied, `R` refused (reached, but nothing listens).
    Matrix(MatrixArgs),
}

#[derive(Args)]
struct MatrixArgs {
    /// ns/pod,NETNS,IP; repeat for every pod, in table order (default: every pod of the
    /// embedded node).
    #[arg(long = "pod")]
    pods: Vec<ProbePod>,
    /// PORT/PROTOCOL to probe (default 80/TCP); repeat for several.
    #[arg(long = "probe")]
    probes: Vec<Probe>,
    #[arg(long, default_value = "1s", value_parser = timeout::parse)]
    timeout: Duration,
    #[arg(short = 'o', long = "output", value_enum, default_value_t = MatrixFormat::Table)]
    output: MatrixFormat,
}

#[derive(Clone, Copy, ValueEnum)]
enum ProbeFormat {
    Text,
    Json,
}

pub(crate) fn run(mut args: ProbeArgs, run: &RunDir) -> ExitCode {
    let resolved = (|| -> anyhow::Result<Option<IpAddr>> {
        if let Some(from) = &args.from {
            args.from_netns = Some(embedded::pod(run, from)?.netns);
        }
        if let Some(ProbeCommand::Matrix(matrix)) = &mut args.command
            && matrix.pods.is_empty()
        {
            matrix.pods = embedded::pods(run)?
                .into_iter()
                .map(|pod| ProbePod {
                    name: pod.key,
                    netns: pod.netns,
                    ip: IpAddr::V4(pod.ipv4),
                })
                .collect();
        }
        Ok(match &args.to {
            None => None,
            Some(to) => Some(match to.parse::<IpAddr>() {
                Ok(ip) => ip,
                Err(_) => IpAddr::V4(embedded::pod(run, to)?.ipv4),
            }),
        })
    })();
    let to = match resolved {
        Ok(to) => to,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(ERROR);
        }
    };
    let result = match (&args.command, to) {
        (Some(ProbeCommand::Matrix(matrix)), _) => run_matrix(matrix),
        (None, Some(to)) => run_one(&args, to),
        (None, None) => unreachable!("clap requires --to without a subcommand"),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", reconcilers::error_chain(&e));
        ExitCode::from(ERROR)
    })
}

fn run_one(args: &ProbeArgs, to: IpAddr) -> Result<ExitCode, ProbeError> {
    let request = Request {
        method: args.http_method.clone(),
        path: args.http_path.clone(),
        host: args.http_host.clone(),
        dns: args.dns.clone(),
    };
    let outcome = probe_with(
        args.from_netns.as_deref(),
        to,
        args.port,
        args.timeout,
        &request,
    )?;
    print!("{}", render(&outcome, args, to));
    Ok(if outcome.verdict == Verdict::Allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn render(outcome: &Outcome, args: &ProbeArgs, to: IpAddr) -> String {
    match args.output {
        ProbeFormat::Text => format!("{}\n", outcome.verdict.as_str()),
        // Keys in the documented order, whatever map type serde_json was built with.
        ProbeFormat::Json => {
            let fields = [
                ("verdict", Value::from(outcome.verdict.as_str())),
                ("probe", Value::from(args.port.to_string())),
                (
                    "from",
                    Value::from(args.from_netns.as_ref().map(|p| p.display().to_string())),
                ),
                ("to", Value::from(to.to_string())),
                ("detail", Value::from(outcome.detail.as_str())),
                ("http_status", Value::from(outcome.http_status)),
                ("body", Value::from(outcome.body.as_deref())),
            ];
            let fields: Vec<String> = fields
                .iter()
                .map(|(key, value)| format!("{}:{value}", Value::from(*key)))
                .collect();
            format!("{{{}}}\n", fields.join(","))
        }
    }
}

fn run_matrix(args: &MatrixArgs) -> Result<ExitCode, ProbeError> {
    let probes = if args.probes.is_empty() {
        vec![Probe::tcp(80)]
    } else {
        args.probes.clone()
    };
    let matrix = probe_matrix(&args.pods, &probes, args.timeout)?;
    print!("{}", matrix.render(args.output));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests;
