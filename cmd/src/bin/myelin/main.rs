//! `myelin`: the command-line interface.

#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a CLI prints its results and errors"
)]

mod policy;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Policy { command } => policy::run(command),
    }
}
