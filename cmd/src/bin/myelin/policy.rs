//! `myelin policy ...`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use schema::manifest;

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Check manifests (files or directories of YAML) the way `kubectl apply` would read them,
    /// plus policy semantics; prints every error, one per line.
    Validate {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

pub(crate) fn run(command: Command) -> ExitCode {
    match command {
        Command::Validate { paths } => validate(&paths),
    }
}

/// An error and its causes on one line: `a: b: c`.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
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
            Err(e) => errors.push(chain(&e)),
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
