//! A pod's life in embedded mode, as the kubelet would drive it: a network namespace, the CNI
//! plugin's ADD (in the node's namespace, with the spec's environment), and a process serving
//! the pod's ports; DEL and removal in reverse.

use std::ffi::OsString;
use std::io::Write as _;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use schema::embedded::{Instance, PodRecord};
use schema::k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use super::RunDir;
use super::system;

pub(crate) fn start(run: &RunDir, instance: &mut Instance, key: &str, pod: &Pod) -> Result<()> {
    if instance.pods.contains_key(key) {
        return Ok(());
    }
    let (namespace, name) = key.split_once('/').context("pod key is ns/name")?;
    let netns = format!("{}-{namespace}-{name}", instance.name);
    system::netns_add(&netns)?;
    let started = (|| -> Result<PodRecord> {
        system::ip(&["-n", &netns, "link", "set", "lo", "up"])?;
        let requested = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
        let result = cni(run, instance, "ADD", &netns, namespace, name, requested)?;
        let address = result["ips"][0]["address"]
            .as_str()
            .and_then(|a| a.split('/').next())
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("the CNI result has no address: {result}"))?;
        let mut record = PodRecord {
            netns: netns.clone(),
            container_id: netns.clone(),
            ipv4: address,
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            processes: Vec::new(),
        };
        record.processes = serve(run, &netns, key, pod, instance.dns_upstream.as_deref())?;
        Ok(record)
    })();
    match started {
        Ok(record) => {
            instance.pods.insert(key.to_owned(), record);
            Ok(())
        }
        Err(err) => {
            let _ = cni(run, instance, "DEL", &netns, namespace, name, None);
            system::netns_delete(&netns);
            Err(err.context(format!("start pod {key}")))
        }
    }
}

pub(crate) fn stop(run: &RunDir, instance: &mut Instance, key: &str) -> Result<()> {
    let Some(record) = instance.pods.remove(key) else {
        return Ok(());
    };
    for pid in &record.processes {
        system::terminate(*pid);
    }
    let (namespace, name) = key.split_once('/').unwrap_or(("", key));
    let deleted = cni(run, instance, "DEL", &record.netns, namespace, name, None);
    system::netns_delete(&record.netns);
    deleted.map(|_| ())
}

/// Each container's own command where this machine can run it (the manifests name programs in
/// images that are not here: agnhost, httpbin), and the built-in server for the ports of the
/// other containers.
fn serve(
    run: &RunDir,
    netns: &str,
    key: &str,
    pod: &Pod,
    dns_upstream: Option<&str>,
) -> Result<Vec<u32>> {
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    let log = |what: &str| run.log(&format!("pod-{}-{what}", key.replace('/', "-")));
    let mut processes = Vec::new();
    let mut args: Vec<OsString> = vec!["serve".into(), "--pod".into(), key.into()];
    if let Some(upstream) = dns_upstream {
        args.extend(["--dns-upstream".into(), upstream.into()]);
    }
    let mut ports = 0;
    for container in containers {
        let mut argv: Vec<String> = container.command.clone().unwrap_or_default();
        argv.extend(container.args.clone().unwrap_or_default());
        if let Some((program, rest)) = argv.split_first()
            && runnable(program)
        {
            let rest: Vec<OsString> = rest.iter().map(OsString::from).collect();
            processes.push(system::spawn_in_netns(
                netns,
                program.as_ref(),
                &rest,
                &log(&container.name),
            )?);
            continue;
        }
        for port in container.ports.iter().flatten() {
            let flag = match port.protocol.as_deref().unwrap_or("TCP") {
                "UDP" => "--udp",
                "SCTP" => "--sctp",
                _ => "--tcp",
            };
            args.push(flag.into());
            args.push(port.container_port.to_string().into());
            ports += 1;
        }
    }
    if ports > 0 {
        processes.push(system::spawn_in_netns(
            netns,
            &system::sibling("myelin")?,
            &args,
            &log("serve"),
        )?);
    }
    Ok(processes)
}

/// An absolute path that exists, or a name found in `PATH`.
fn runnable(program: &str) -> bool {
    let path = std::path::Path::new(program);
    if path.is_absolute() || program.contains('/') {
        return path.is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Runs `myelin-cni` as a runtime does, in the node's namespace; the parsed result on success.
/// A pod whose manifest has `status.podIP` asks for that address (`IP=` in `CNI_ARGS`), so
/// `ipBlock` rules mean in the kernel what they mean to `myelin policy matrix`.
fn cni(
    run: &RunDir,
    instance: &Instance,
    command: &str,
    netns: &str,
    namespace: &str,
    name: &str,
    ip: Option<&str>,
) -> Result<Value> {
    let mut args = format!("K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name}");
    if let Some(ip) = ip {
        args.push_str(&format!(";IP={ip}"));
    }
    let plugin = system::sibling("myelin-cni")?;
    let config = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": "myelin",
        "type": "myelin-cni",
        "agentSocket": run.socket(),
    });
    let mut child = system::nsenter(&instance.node_netns, &plugin)
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", netns)
        .env("CNI_NETNS", format!("/run/netns/{netns}"))
        .env("CNI_IFNAME", "eth0")
        .env("CNI_ARGS", args)
        .env(
            "CNI_PATH",
            plugin
                .parent()
                .map(|p| p.as_os_str().to_owned())
                .unwrap_or_default(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", plugin.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(config.to_string().as_bytes())
            .context("write the network configuration")?;
    }
    let output = child.wait_with_output().context("wait for myelin-cni")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "myelin-cni {command} failed: {} {}",
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&stdout).with_context(|| format!("myelin-cni {command} printed {stdout}"))
}
