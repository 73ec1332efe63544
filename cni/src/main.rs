//! `myelin-cni`: the CNI plugin (spec 1.0 and 1.1). The runtime runs it once per command with
//! the environment and stdin the spec defines; the result or error goes to stdout as JSON, logs
//! go to stderr (level from `MYELIN_LOG`). Addresses come from the node's `myelin-agent` over
//! its unix socket.

mod client;
mod commands;
mod config;
mod error;
mod host_name;
mod invocation;
mod netlink;
mod result;

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use serde_json::Value;
use tracing_subscriber::EnvFilter;

use crate::error::{CniError, Code};
use crate::invocation::{Command, Invocation};

fn main() -> ExitCode {
    install_subscriber();
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let version = config::requested_version(&stdin);
    let outcome = match read {
        Ok(_) => invocation::from_env(|name| std::env::var(name).ok())
            .and_then(|invocation| dispatch(&invocation, &stdin, version)),
        Err(err) => Err(CniError::with_cause(Code::Io, "read stdin", &err)),
    };
    let (output, code) = match outcome {
        Ok(output) => (output, ExitCode::SUCCESS),
        Err(err) => {
            tracing::error!(code = err.code.number(), msg = %err.msg, details = ?err.details, "failed");
            (Some(err.to_json(version)), ExitCode::FAILURE)
        }
    };
    if let Some(output) = output {
        let mut stdout = std::io::stdout().lock();
        if writeln!(stdout, "{output}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
    }
    code
}

/// The plugin's only output is stdout's JSON, so logs go to stderr, quiet unless asked.
fn install_subscriber() {
    let directives = std::env::var("MYELIN_LOG").unwrap_or_else(|_| "warn".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(directives))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Runs the command; `version` is stdin's `cniVersion` if supported, which VERSION answers in
/// (its stdin is nothing but that field, so it is not decoded as a configuration).
fn dispatch(
    invocation: &Invocation,
    stdin: &[u8],
    version: &str,
) -> Result<Option<Value>, CniError> {
    let span = tracing::info_span!(
        "cni",
        cmd = invocation.command.name(),
        container_id = %invocation.container_id
    );
    let _enter = span.enter();
    if invocation.command == Command::Version {
        return Ok(Some(result::version_json(version)));
    }
    let conf = config::decode(stdin)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| CniError::with_cause(Code::Io, "start tokio", &err))?;
    runtime.block_on(async {
        match invocation.command {
            Command::Add => {
                let result = commands::add(invocation, &conf).await?;
                Ok(Some(result.to_json(&conf.cni_version, conf.dns.as_ref())))
            }
            Command::Del => commands::del(invocation, &conf).await.map(|()| None),
            Command::Check => commands::check(invocation, &conf).await.map(|()| None),
            Command::Status => commands::status(&conf).await.map(|()| None),
            Command::Version => unreachable!("invariant: VERSION is answered above"),
        }
    })
}
