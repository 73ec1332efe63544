//! One log setup for every binary of this crate: tracing to stderr, filtered by `MYELIN_LOG`,
//! else `RUST_LOG`, else the binary's default level.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// `default_level`: `info` for daemons (the agent, `myelin serve`, whose `serving` line tells
/// its starter it is ready), `warn` for CLI commands.
pub(crate) fn install(default_level: &str) {
    let directives = std::env::var("MYELIN_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default_level.to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(directives))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
