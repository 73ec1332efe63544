//! What the runtime passes in the environment: `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`,
//! `CNI_IFNAME`, `CNI_ARGS` and `CNI_PATH`. Missing or malformed values are error 4.

use schema::agent_api::{container_id_problem, ifname_problem};

use crate::error::{CniError, Code};

#[cfg(test)]
mod tests;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Add,
    Del,
    Check,
    Status,
    Version,
}

impl Command {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Version => "VERSION",
        }
    }
}

/// The pod the runtime named in `CNI_ARGS` (Kubernetes runtimes always do), and the address it
/// asks for, if any (`IP=`, the convention of the reference host-local IPAM plugin).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CniArgs {
    pub(crate) pod_namespace: Option<String>,
    pub(crate) pod_name: Option<String>,
    pub(crate) ip: Option<std::net::Ipv4Addr>,
}

/// One invocation of the plugin: the command and the container it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Invocation {
    pub(crate) command: Command,
    /// Empty for STATUS and VERSION, which are about no container.
    pub(crate) container_id: String,
    /// Path of the pod's network namespace; may be empty for DEL (the runtime may have
    /// removed it already).
    pub(crate) netns: String,
    pub(crate) ifname: String,
    pub(crate) args: CniArgs,
}

/// Reads the invocation through `var` (the process environment, or a map in tests).
pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Invocation, CniError> {
    let command = match var("CNI_COMMAND").as_deref() {
        Some("ADD") => Command::Add,
        Some("DEL") => Command::Del,
        Some("CHECK") => Command::Check,
        Some("STATUS") => Command::Status,
        Some("VERSION") => Command::Version,
        Some(other) => {
            return Err(invalid(format!(
                "CNI_COMMAND {other:?} is not one of ADD, DEL, CHECK, STATUS, VERSION"
            )));
        }
        None => return Err(invalid("CNI_COMMAND is not set")),
    };
    let mut invocation = Invocation {
        command,
        container_id: String::new(),
        netns: String::new(),
        ifname: String::new(),
        args: CniArgs::default(),
    };
    if matches!(command, Command::Status | Command::Version) {
        return Ok(invocation);
    }
    let required = |name: &str| match var(name) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(invalid(format!(
            "{name} is required for {}",
            command.name()
        ))),
    };
    invocation.container_id = required("CNI_CONTAINERID")?;
    validate_container_id(&invocation.container_id)?;
    invocation.ifname = required("CNI_IFNAME")?;
    validate_ifname(&invocation.ifname)?;
    invocation.netns = match command {
        Command::Del => var("CNI_NETNS").unwrap_or_default(),
        _ => required("CNI_NETNS")?,
    };
    invocation.args = parse_args(&var("CNI_ARGS").unwrap_or_default())?;
    Ok(invocation)
}

/// `K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;IgnoreUnknown=1`. Keys this plugin does not
/// use are ignored whether or not `IgnoreUnknown` is set: the runtime adds keys over time.
pub(crate) fn parse_args(text: &str) -> Result<CniArgs, CniError> {
    let mut args = CniArgs::default();
    for pair in text.split(';').filter(|pair| !pair.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(invalid(format!("CNI_ARGS: {pair:?} is not KEY=VALUE")));
        };
        if key.is_empty() {
            return Err(invalid(format!("CNI_ARGS: {pair:?} has an empty key")));
        }
        match key {
            "K8S_POD_NAMESPACE" => args.pod_namespace = Some(value.to_owned()),
            "K8S_POD_NAME" => args.pod_name = Some(value.to_owned()),
            "IP" => {
                let ip = value.parse().map_err(|_| {
                    invalid(format!("CNI_ARGS: IP={value:?} is not an IPv4 address"))
                })?;
                args.ip = Some(ip);
            }
            _ => {}
        }
    }
    Ok(args)
}

/// The spec's container id rules, which the agent applies too.
fn validate_container_id(id: &str) -> Result<(), CniError> {
    match container_id_problem(id) {
        Some(problem) => Err(invalid(format!("CNI_CONTAINERID {id:?} {problem}"))),
        None => Ok(()),
    }
}

/// Linux's rules for interface names, as the spec repeats them.
fn validate_ifname(name: &str) -> Result<(), CniError> {
    match ifname_problem(name) {
        Some(problem) => Err(invalid(format!("CNI_IFNAME {name:?} {problem}"))),
        None => Ok(()),
    }
}

fn invalid(msg: impl Into<String>) -> CniError {
    CniError::new(Code::InvalidEnv, msg)
}
