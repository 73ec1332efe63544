//! Project tasks: `cargo xtask ci` runs everything CI runs; `cargo xtask tidy` the layout checks.

#![expect(clippy::print_stderr, reason = "a task runner reports to its terminal")]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod tidy;

/// The workspace root. Read at run time: cargo sets the variable for `run` and `test`, and a
/// binary built in one checkout may be run for another that shares its target directory.
fn root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    Path::new(&manifest_dir)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(args: &[&str]) -> Result<()> {
    eprintln!("$ cargo {}", args.join(" "));
    let status = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(root())
        .status()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed with {status}", args.join(" "));
    }
    Ok(())
}

fn ci() -> Result<()> {
    run(&["fmt", "--all", "--", "--check"])?;
    run(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    // Unit, property, scenario and tidy tests of every crate, then the one integration binary
    // (real namespaces, kernel and traffic) on its own so its output stands apart.
    run(&["test", "--workspace", "--exclude", "integration"])?;
    // The integration tests run the real binaries (myelin-agent, myelin-cni) from the target
    // directory, so they must be built first.
    run(&["build", "--workspace", "--bins"])?;
    run(&["test", "-p", "integration", "--", "--test-threads=2"])?;
    Ok(())
}

fn main() -> Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    match task.as_str() {
        "ci" => ci(),
        "tidy" => run(&["test", "-p", "xtask"]),
        _ => bail!("usage: cargo xtask ci|tidy"),
    }
}
