//! `myelin policy ...`: policies offline, through the same engine the agent runs.

mod eval;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use schema::manifest;

use crate::matrix::MatrixFormat;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Check manifests (files or directories of YAML) the way `kubectl apply` would read them,
    /// plus policy semantics; prints every error, one per line.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print which pods can reach which, for each probe: `.` allowed, `X` denied.
    Matrix {
        /// A directory (or file) of manifests; repeat to combine several.
        #[arg(long = "manifests", required = true)]
        manifests: Vec<PathBuf>,
        /// PORT/PROTOCOL to probe (default 80/TCP); repeat for several.
        #[arg(long = "probe")]
        probes: Vec<String>,
        #[arg(short = 'o', long = "output", value_enum, default_value_t = MatrixFormat::Table)]
        output: MatrixFormat,
        #[arg(long, value_enum, default_value_t = Enforcement::Default)]
        enforcement: Enforcement,
    },
    /// Explain the verdict for one connection, on both ends.
    Trace(Box<eval::TraceArgs>),
    /// Print the translated rules as JSON, as `cilium policy get` does: of the manifests, or
    /// without --manifests, the running agent's.
    Get {
        #[arg(long = "manifests")]
        manifests: Vec<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum Enforcement {
    Default,
    Always,
    Never,
}

pub(crate) fn run(command: Command) -> ExitCode {
    match command {
        Command::Validate { paths } => validate(&paths),
        Command::Matrix {
            manifests,
            probes,
            output,
            enforcement,
        } => eval::matrix(&manifests, &probes, output, enforcement),
        Command::Trace(args) => eval::trace(&args),
        Command::Get { manifests } => eval::get(&manifests),
    }
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    let mut objects = 0;
    let mut errors = Vec::new();
    for result in manifest::load_paths(paths) {
        match result {
            Ok(object) => {
                objects += 1;
                errors.extend(
                    schema::validate::object(&object)
                        .iter()
                        .map(ToString::to_string),
                );
            }
            Err(e) => errors.push(reconcilers::error_chain(&e)),
        }
    }
    for e in &errors {
        println!("{e}");
    }
    if errors.is_empty() {
        println!("{objects} objects valid");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
