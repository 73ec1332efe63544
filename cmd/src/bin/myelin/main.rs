//! `myelin`: the command-line interface.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a CLI prints its results and errors"
)]

mod client;
mod embedded;
mod exec;
mod inspect;
mod matrix;
mod netns;
mod observe;
mod policy;
mod probe;
mod sctp;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cmd::logging;

use crate::client::Client;
use crate::embedded::{RunDir, UpArgs};

#[derive(Parser)]
#[command(
    name = "myelin",
    version,
    about = "Kubernetes networking and security, Cilium-style"
)]
struct Cli {
    /// Holds the agent's socket and state and the record of the embedded node.
    #[arg(
        long,
        global = true,
        env = "MYELIN_RUN_DIR",
        default_value = "/run/myelin"
    )]
    run_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start an embedded node: the agent, and every Pod in DIR as a network namespace.
    Up(UpArgs),
    /// Stop the embedded node and remove every namespace, link, pin and process it made.
    Down,
    /// Create or update the objects of manifests (files or directories), as `kubectl apply -f`.
    Apply {
        #[arg(short = 'f', long = "filename", required = true)]
        paths: Vec<PathBuf>,
    },
    /// Delete the objects manifests name, as `kubectl delete -f`.
    Delete {
        #[arg(short = 'f', long = "filename", required = true)]
        paths: Vec<PathBuf>,
    },
    /// The node's endpoints.
    Endpoint {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// The security identities the node knows.
    Identity {
        #[command(subcommand)]
        command: ListCommand,
    },
    /// The agent's health.
    Status,
    /// The datapath's maps as the kernel holds them.
    Bpf {
        #[command(subcommand)]
        command: BpfCommand,
    },
    /// Work with network policies (offline with --manifests, else the agent's).
    Policy {
        #[command(subcommand)]
        command: policy::Command,
    },
    /// Connect from inside a namespace: allowed, denied (silence until the timeout) or
    /// refused (nothing listens).
    Probe(probe::ProbeArgs),
    /// Flows from the node's Hubble Observer API, with `hubble observe`'s flags and output.
    Observe(Box<observe::ObserveArgs>),
    /// Run a command inside a pod's network namespace: `myelin exec default/xwing -- curl ...`.
    Exec(exec::ExecArgs),
    /// Serve a pod's ports: HTTP on TCP and SCTP, echo on UDP (`myelin up` runs it per pod).
    #[command(hide = true)]
    Serve(serve::ServeArgs),
}

#[derive(Subcommand)]
enum ListCommand {
    List,
}

#[derive(Subcommand)]
enum BpfCommand {
    /// One map.
    Policy {
        #[command(subcommand)]
        command: BpfPolicyCommand,
    },
}

#[derive(Subcommand)]
enum BpfPolicyCommand {
    /// The policy map entries of one endpoint.
    Get { endpoint: u16 },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    let _telemetry = logging::install(level, "myelin");
    let run = RunDir::new(cli.run_dir);
    let client = Client::new(&run.socket());
    let result = match cli.command {
        Command::Policy {
            command: policy::Command::Get { manifests },
        } if manifests.is_empty() => inspect::policy_get(&client).map(|()| true),
        Command::Policy { command } => return policy::run(command),
        Command::Up(args) => embedded::up(&run, &args).map(|()| true),
        Command::Down => embedded::down(&run).map(|()| true),
        Command::Apply { paths } => embedded::change(&run, &paths, false),
        Command::Delete { paths } => embedded::change(&run, &paths, true),
        Command::Exec(args) => return exec::run(&args, &run),
        Command::Probe(args) => return probe::run(args, &run),
        Command::Serve(args) => return serve::run(args),
        Command::Endpoint {
            command: ListCommand::List,
        } => inspect::endpoint_list(&client).map(|()| true),
        Command::Identity {
            command: ListCommand::List,
        } => inspect::identity_list(&client).map(|()| true),
        Command::Status => inspect::status(&client),
        Command::Observe(args) => observe::run(&args, &run),
        Command::Bpf {
            command:
                BpfCommand::Policy {
                    command: BpfPolicyCommand::Get { endpoint },
                },
        } => inspect::bpf_policy_get(&client, endpoint).map(|()| true),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
