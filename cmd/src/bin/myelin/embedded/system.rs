//! The few system tools embedded mode drives: `ip` for namespaces, `nsenter` to start processes
//! in one, signals to stop them.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// A binary of this workspace installed next to `myelin`.
pub(crate) fn sibling(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locate the myelin binary")?;
    let path = exe
        .parent()
        .map(|dir| dir.join(name))
        .context("the myelin binary has no directory")?;
    if !path.exists() {
        bail!(
            "{} is missing: build the workspace's binaries (`cargo build --bins`)",
            path.display()
        );
    }
    Ok(path)
}

/// Runs `ip ARGS`, failing with its stderr.
pub(crate) fn ip(args: &[&str]) -> Result<()> {
    run(Command::new("ip").args(args))
}

pub(crate) fn netns_add(name: &str) -> Result<()> {
    ip(&["netns", "add", name])
}

/// Deletes a namespace and its `/etc/netns` files; one that is gone already is fine.
pub(crate) fn netns_delete(name: &str) {
    if Path::new("/run/netns").join(name).exists()
        && let Err(err) = ip(&["netns", "delete", name])
    {
        tracing::warn!(netns = name, error = %format!("{err:#}"), "cannot delete namespace");
    }
    remove_tree(&Path::new("/etc/netns").join(name));
}

/// `program` to be run in a named namespace. `nsenter` switches only the network namespace
/// and then execs, so the child's pid is the program's and it shares the machine's mounts
/// (bpffs pins included), unlike `ip netns exec`.
pub(crate) fn nsenter(netns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new("nsenter");
    command
        .arg(format!("--net=/run/netns/{netns}"))
        .arg("--")
        .arg(program);
    command
}

/// Runs a command inside a named namespace and waits for it.
pub(crate) fn in_netns(netns: &str, argv: &[&str]) -> Result<()> {
    let (program, args) = argv.split_first().context("no command")?;
    run(nsenter(netns, program).args(args))
}

/// Starts `program ARGS` in a named namespace, detached (own process group, output appended to
/// `log`, so a restarted agent's log follows the one that died), and returns its pid.
pub(crate) fn spawn_in_netns(
    netns: &str,
    program: &Path,
    args: &[OsString],
    log: &Path,
) -> Result<u32> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    let err = out.try_clone().context("log file")?;
    let child = nsenter(netns, program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {} in {netns}", program.display()))?;
    Ok(child.id())
}

pub(crate) fn is_running(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // A zombie child still "exists"; /proc/PID/stat tells them apart.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => kill(Pid::from_raw(pid), None).is_ok(),
    }
}

/// SIGTERM, then SIGKILL if it is still there after a few seconds.
pub(crate) fn terminate(pid: u32) {
    let Ok(raw) = i32::try_from(pid) else {
        return;
    };
    if kill(Pid::from_raw(raw), Signal::SIGTERM).is_err() {
        return;
    }
    if !poll(Duration::from_secs(5), || !is_running(pid)) {
        let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
        poll(Duration::from_secs(2), || !is_running(pid));
    }
}

/// Polls `done` every 20 ms until it holds (true) or `timeout` passes (false).
#[expect(
    clippy::disallowed_methods,
    reason = "a CLI waiting on other processes, no runtime here"
)]
pub(crate) fn poll(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let step = Duration::from_millis(20);
    let mut waited = Duration::ZERO;
    while waited < timeout {
        if done() {
            return true;
        }
        std::thread::sleep(step);
        waited += step;
    }
    done()
}

pub(crate) fn remove_tree(path: &Path) {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => tracing::warn!(path = %path.display(), error = %err, "cannot remove"),
    }
}

fn run(command: &mut Command) -> Result<()> {
    let output = command
        .output()
        .with_context(|| format!("run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
