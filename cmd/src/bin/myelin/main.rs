//! `myelin`: the command-line interface.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a CLI prints its results and errors"
)]

mod exec;
mod matrix;
mod netns;
mod policy;
mod probe;
mod sctp;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "myelin",
    version,
    about = "Kubernetes networking and security, Cilium-style"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work with network policies offline.
    Policy {
        #[command(subcommand)]
        command: policy::Command,
    },
    /// Connect from inside a namespace: allowed, denied (silence until the timeout) or
    /// refused (nothing listens).
    Probe(probe::ProbeArgs),
    /// Run a command inside a network namespace.
    Exec(exec::ExecArgs),
    /// Serve a pod's ports: HTTP on TCP and SCTP, echo on UDP (`myelin up` runs it per pod).
    #[command(hide = true)]
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Policy { command } => policy::run(command),
        Command::Probe(args) => probe::run(args),
        Command::Exec(args) => exec::run(&args),
        Command::Serve(args) => serve::run(args),
    }
}
