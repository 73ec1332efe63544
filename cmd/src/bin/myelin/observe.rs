//! `myelin observe`: flows from the agent's Hubble Observer API, with `hubble observe`'s flags
//! and output; `myelin observe status` as `hubble status`.

mod filters;
#[cfg(test)]
mod tests;
mod time;

use std::io::Write as _;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use observe::print::{self, Format};
use schema::observer::get_flows_response::ResponseTypes;
use schema::observer::observer_client::ObserverClient;
use schema::observer::{GetFlowsRequest, ServerStatusRequest};
use tonic::transport::Channel;

use crate::embedded::RunDir;

/// Hubble's default `--last`.
const DEFAULT_LAST: u64 = 20;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct ObserveArgs {
    #[command(subcommand)]
    command: Option<ObserveCommand>,
    /// The Observer API: `unix:///path`, `host:port`; the embedded node's Hubble socket by default.
    #[arg(long, global = true)]
    server: Option<String>,
    /// The last N flows stored (default 20).
    #[arg(long)]
    last: Option<u64>,
    /// The first N flows stored.
    #[arg(long)]
    first: Option<u64>,
    /// Every flow stored.
    #[arg(long, conflicts_with_all = ["last", "first"])]
    all: bool,
    /// Keep printing new flows.
    #[arg(short = 'f', long)]
    follow: bool,
    /// Flows since this time: RFC3339 or a duration ago (5m, 1h30m).
    #[arg(long)]
    since: Option<String>,
    /// Flows until this time: RFC3339 or a duration ago.
    #[arg(long)]
    until: Option<String>,
    /// compact, dict, table, json or jsonpb.
    #[arg(short = 'o', long, default_value = "compact")]
    output: Format,
    /// The next filter flag excludes instead of selects.
    #[arg(long, action = clap::ArgAction::Count)]
    not: u8,
    /// Flows from this IP.
    #[arg(long = "from-ip")]
    from_ip: Vec<String>,
    #[arg(long = "to-ip")]
    to_ip: Vec<String>,
    /// Flows from or to this IP.
    #[arg(long)]
    ip: Vec<String>,
    /// `[namespace/]pod-name-prefix`; the namespace is `default` when not given.
    #[arg(long = "from-pod")]
    from_pod: Vec<String>,
    #[arg(long = "to-pod")]
    to_pod: Vec<String>,
    #[arg(long)]
    pod: Vec<String>,
    #[arg(long = "from-namespace")]
    from_namespace: Vec<String>,
    #[arg(long = "to-namespace")]
    to_namespace: Vec<String>,
    #[arg(short = 'n', long)]
    namespace: Vec<String>,
    /// A label selector (`app=sleep`, `k8s:app in (a, b)`).
    #[arg(long = "from-label")]
    from_label: Vec<String>,
    #[arg(long = "to-label")]
    to_label: Vec<String>,
    #[arg(short = 'l', long)]
    label: Vec<String>,
    #[arg(long = "from-identity")]
    from_identity: Vec<String>,
    #[arg(long = "to-identity")]
    to_identity: Vec<String>,
    #[arg(long)]
    identity: Vec<String>,
    #[arg(long = "from-fqdn")]
    from_fqdn: Vec<String>,
    #[arg(long = "to-fqdn")]
    to_fqdn: Vec<String>,
    #[arg(long)]
    fqdn: Vec<String>,
    #[arg(long = "from-port")]
    from_port: Vec<String>,
    #[arg(long = "to-port")]
    to_port: Vec<String>,
    #[arg(long)]
    port: Vec<String>,
    /// FORWARDED, DROPPED, ...
    #[arg(long)]
    verdict: Vec<String>,
    /// tcp, udp, icmp, ...
    #[arg(long)]
    protocol: Vec<String>,
    /// drop, trace[:to-endpoint], policy-verdict, l7, ...
    #[arg(short = 't', long = "type")]
    r#type: Vec<String>,
    /// ingress or egress.
    #[arg(long = "traffic-direction")]
    traffic_direction: Vec<String>,
    #[arg(long = "http-status")]
    http_status: Vec<String>,
    #[arg(long = "http-method")]
    http_method: Vec<String>,
    #[arg(long = "http-path")]
    http_path: Vec<String>,
}

#[derive(Subcommand)]
enum ObserveCommand {
    /// The Observer API's health and flow counts, as `hubble status`.
    Status,
}

pub(crate) fn run(args: &ObserveArgs, run: &RunDir) -> Result<bool> {
    let server = args
        .server
        .clone()
        .unwrap_or_else(|| format!("unix://{}", run.hubble_socket().display()));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start tokio")?;
    runtime.block_on(async {
        let mut client = connect(&server)?;
        match args.command {
            Some(ObserveCommand::Status) => status(&mut client, &server).await,
            None => flows(&mut client, args).await,
        }
    })
}

/// A client of `server`; the first call says whether it answers.
fn connect(server: &str) -> Result<ObserverClient<Channel>> {
    Ok(cmd::observer_client::client(server)?)
}

/// The request the flags ask for.
fn request(
    args: &ObserveArgs,
    raw: &[String],
    now: std::time::SystemTime,
) -> Result<GetFlowsRequest> {
    let (whitelist, blacklist) = filters::build(&filters::filter_flags(raw))?;
    let since = args
        .since
        .as_deref()
        .map(|t| time::parse(t, now))
        .transpose()
        .context("--since")?;
    let until = args
        .until
        .as_deref()
        .map(|t| time::parse(t, now))
        .transpose()
        .context("--until")?;
    let (number, first) = match (args.all, args.first, args.last) {
        (true, _, _) => (0, false),
        (false, Some(n), _) => (n, true),
        (false, None, Some(n)) => (n, false),
        // A window asks for all of it; otherwise hubble's last 20.
        (false, None, None) if since.is_some() => (0, false),
        (false, None, None) => (DEFAULT_LAST, false),
    };
    Ok(GetFlowsRequest {
        number,
        first,
        follow: args.follow,
        whitelist,
        blacklist,
        since,
        until,
        ..GetFlowsRequest::default()
    })
}

async fn flows(client: &mut ObserverClient<Channel>, args: &ObserveArgs) -> Result<bool> {
    // The arguments after `observe`: `--not` applies to the filter flag that follows it.
    let raw: Vec<String> = std::env::args()
        .skip_while(|arg| arg != "observe")
        .skip(1)
        .collect();
    let request = request(args, &raw, std::time::SystemTime::now())?;
    let mut stream = client
        .get_flows(request)
        .await
        .context("GetFlows (is the node up?)")?
        .into_inner();
    let mut table = Vec::new();
    let mut out = std::io::stdout();
    while let Some(response) = stream.message().await.context("GetFlows stream")? {
        match response.response_types {
            Some(ResponseTypes::Flow(flow)) => {
                if args.output == Format::Table && !args.follow {
                    table.push(*flow);
                } else {
                    out.write_all(
                        print::print(args.output, std::slice::from_ref(&*flow)).as_bytes(),
                    )?;
                    out.flush()?;
                }
            }
            Some(ResponseTypes::LostEvents(lost)) => {
                let source = schema::flow::LostEventSource::try_from(lost.source)
                    .map_or("UNKNOWN_LOST_EVENT_SOURCE", |s| s.as_str_name());
                writeln!(out, "EVENTS LOST: {source} CPU(0) {}", lost.num_events_lost)?;
            }
            Some(ResponseTypes::NodeStatus(_)) | None => {}
        }
    }
    if !table.is_empty() {
        out.write_all(print::print(Format::Table, &table).as_bytes())?;
    }
    Ok(true)
}

async fn status(client: &mut ObserverClient<Channel>, server: &str) -> Result<bool> {
    let status = client
        .server_status(ServerStatusRequest {})
        .await
        .with_context(|| format!("ServerStatus of {server} (is the node up?)"))?
        .into_inner();
    print!("{}", status_text(&status, server));
    Ok(true)
}

/// `hubble status`'s lines.
fn status_text(status: &schema::observer::ServerStatusResponse, server: &str) -> String {
    let percent = if status.max_flows == 0 {
        0.0
    } else {
        #[expect(clippy::cast_precision_loss, reason = "a percentage to two decimals")]
        let ratio = status.num_flows as f64 / status.max_flows as f64;
        ratio * 100.0
    };
    let connected = status.num_connected_nodes.unwrap_or(0);
    let unavailable = status.num_unavailable_nodes.unwrap_or(0);
    let mut text = format!(
        "Healthcheck (via {server}): Ok\nCurrent/Max Flows: {}/{} ({percent:.2}%)\nFlows/s: {:.2}\n",
        thousands(status.num_flows),
        thousands(status.max_flows),
        status.flows_rate
    );
    if status.num_connected_nodes.is_some() {
        text.push_str(&format!(
            "Connected Nodes: {connected}/{}\n",
            connected + unavailable
        ));
    }
    if !status.unavailable_nodes.is_empty() {
        text.push_str("Unavailable Nodes:\n");
        for node in &status.unavailable_nodes {
            text.push_str(&format!("  - {node}\n"));
        }
    }
    text
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
