//! `myelin exec`: runs a command inside a pod's network namespace, in place of this process,
//! so its stdio, signals and exit code are the command's own.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Args;

use crate::embedded::{self, RunDir};
use crate::netns;

/// What a shell exits with when it cannot run a command.
const CANNOT_RUN: u8 = 127;

#[derive(Args)]
pub(crate) struct ExecArgs {
    /// NAMESPACE/POD of the embedded node (or POD, in `default`).
    #[arg(required_unless_present = "netns", conflicts_with = "netns")]
    pod: Option<String>,
    /// Any network namespace instead: /run/netns/NAME or /proc/PID/ns/net.
    #[arg(long)]
    netns: Option<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

/// How the command gets into the namespace.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A namespace `ip netns` manages: `ip netns exec` also gives the command that namespace's
    /// view of /sys and its /etc/netns/NAME files, as users of `ip netns` expect.
    IpNetns(OsString),
    /// Any other namespace file: enter it here, then run the command.
    Setns,
}

pub(crate) fn entry(netns: &Path) -> Entry {
    match (netns.parent(), netns.file_name()) {
        (Some(parent), Some(name)) if parent == Path::new("/run/netns") => {
            Entry::IpNetns(name.to_owned())
        }
        _ => Entry::Setns,
    }
}

pub(crate) fn run(args: &ExecArgs, run: &RunDir) -> ExitCode {
    let netns = match (&args.netns, &args.pod) {
        (Some(netns), _) => netns.clone(),
        (None, pod) => match embedded::pod(run, pod.as_deref().unwrap_or_default()) {
            Ok(pod) => pod.netns,
            Err(err) => {
                eprintln!("error: {err:#}");
                return ExitCode::from(CANNOT_RUN);
            }
        },
    };
    exec(&netns, &args.command)
}

/// Replaces this process with `command` run inside the namespace at `netns`; returns only if
/// that failed (exit code 127, as a shell's).
pub(crate) fn exec(netns: &Path, command: &[OsString]) -> ExitCode {
    let Some((program, rest)) = command.split_first() else {
        eprintln!("error: no command given");
        return ExitCode::from(CANNOT_RUN);
    };
    let mut process = match entry(netns) {
        Entry::IpNetns(name) => {
            let mut process = Command::new("ip");
            process.args(["netns", "exec"]).arg(name).arg(program);
            process
        }
        Entry::Setns => {
            // Still single-threaded, so the whole process (and what it execs) is inside.
            if let Err(e) = netns::enter(netns) {
                eprintln!("error: {}", reconcilers::error_chain(&e));
                return ExitCode::from(CANNOT_RUN);
            }
            Command::new(program)
        }
    };
    process.args(rest);
    let e = process.exec();
    eprintln!("error: run {}: {e}", program.to_string_lossy());
    ExitCode::from(CANNOT_RUN)
}

#[cfg(test)]
mod tests;
