//! Embedded mode: one machine, no Kubernetes. `myelin up DIR` makes a node network namespace,
//! starts `myelin-agent` in it, applies DIR's objects and turns every Pod into a network
//! namespace through the CNI plugin (the kubelet's job), serving its ports. What it made is
//! recorded in the run directory so that `apply`, `delete`, `exec`, `probe` and `down` find it.

mod hosts;
mod pods;
mod rundir;
mod system;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cmd::logging;
use schema::agent_api::{Applied, Manifest, ObjectAction, Request, Response};
use schema::cidr::Cidr;
use schema::embedded::Instance;
use schema::k8s_openapi::api::core::v1::{Pod, Service};
use schema::manifest;
use schema::object::{DEFAULT_NAMESPACE, Object};

pub(crate) use self::rundir::RunDir;
use crate::client::Client;

/// How long `up` waits for the agent to answer.
const AGENT_START_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// A directory of manifests (and its `app/` subdirectory, if it has one), or a file.
    dir: PathBuf,
    /// Prefix of the namespaces, container ids and pins this node makes.
    #[arg(long, default_value = "myelin")]
    name: String,
    /// Where pod addresses come from.
    #[arg(long, default_value = "10.244.0.0/16")]
    pod_cidr: String,
    /// Keep flows and serve Hubble's Observer API (`myelin observe`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    hubble: bool,
    /// Where the pods' built-in DNS sends names it does not know: IP or IP:PORT, as CoreDNS
    /// forwards to the node's resolver (without it they get NXDOMAIN).
    #[arg(long, value_parser = dns_upstream)]
    dns_upstream: Option<String>,
}

fn dns_upstream(text: &str) -> Result<String, String> {
    let valid = text.parse::<std::net::SocketAddrV4>().is_ok()
        || text.parse::<std::net::Ipv4Addr>().is_ok();
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!("{text:?} is not IP or IP:PORT"))
    }
}

pub(crate) fn up(run: &RunDir, args: &UpArgs) -> Result<()> {
    if let Some(instance) = run.load()? {
        if system::is_running(instance.agent_pid) {
            bail!(
                "embedded node {:?} is already up (run dir {}); `myelin down` first",
                instance.name,
                run.path().display()
            );
        }
        if Path::new("/run/netns").join(&instance.node_netns).exists() {
            return restart(run, instance, &args.dir);
        }
        tracing::warn!(name = %instance.name, "a previous node is gone; cleaning up");
        down(run)?;
    }
    if !args
        .name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        || args.name.len() > 32
    {
        bail!(
            "--name {:?}: use up to 32 letters, digits and '-'",
            args.name
        );
    }
    let pod_cidr: Cidr = args
        .pod_cidr
        .parse()
        .with_context(|| format!("--pod-cidr {:?}", args.pod_cidr))?;
    let files = parse_all(&args.dir)?;
    run.create()?;
    let node_netns = format!("{}-node", args.name);
    system::netns_add(&node_netns)?;
    let started = (|| -> Result<Instance> {
        system::ip(&["-n", &node_netns, "link", "set", "lo", "up"])?;
        // A connection hairpinned to the ingress proxy comes in on the pod's veth from an
        // address routed elsewhere: strict reverse-path filtering (a host's default, which a
        // new namespace inherits) would drop it, as it would in Cilium, which turns it off.
        system::in_netns(
            &node_netns,
            &[
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            ],
        )?;
        add_host_address(&node_netns, &pod_cidr)?;
        let mut instance = Instance {
            name: args.name.clone(),
            pod_cidr: args.pod_cidr.clone(),
            node_netns: node_netns.clone(),
            agent_pid: 0,
            pin_dir: format!("/sys/fs/bpf/{}", args.name),
            pods: BTreeMap::new(),
            services: BTreeMap::new(),
            hubble: args.hubble,
            dns_upstream: args.dns_upstream.clone(),
        };
        instance.agent_pid = start_agent(run, &instance)?;
        run.save(&instance)?;
        Ok(instance)
    })();
    // Until the record is saved, `down` could not find the namespace: remove it here.
    let mut instance = match started {
        Ok(instance) => instance,
        Err(err) => {
            system::netns_delete(&node_netns);
            let _ = run.remove();
            return Err(err);
        }
    };
    let client = Client::new(&run.socket());
    wait_for_agent(&client, instance.agent_pid, &run.log("agent"))?;
    apply_files(run, Some(&mut instance), &client, &files, false)?;
    for (key, pod) in &instance.pods {
        println!("{key}\t{}\t{}", pod.ipv4, pod.netns);
    }
    println!(
        "\nnode {:?} is up. Try: myelin exec {} -- ip -4 addr; myelin endpoint list; myelin down",
        instance.name,
        instance.pods.keys().next().map_or("NS/POD", String::as_str)
    );
    Ok(())
}

/// A node whose agent died (killed, crashed) while its namespaces lived on: what a DaemonSet
/// does for Cilium's agent. Only the agent starts again, on the same state directory and pins;
/// it restores its endpoints, objects and identities and prunes the maps rather than wiping
/// them, so the pods and their open connections carry on. Then DIR is applied, as `apply -f`.
fn restart(run: &RunDir, mut instance: Instance, dir: &Path) -> Result<()> {
    let files = parse_all(dir)?;
    println!(
        "node {:?}: the agent is not running; restarting it (pods keep running)",
        instance.name
    );
    instance.agent_pid = start_agent(run, &instance)?;
    run.save(&instance)?;
    let client = Client::new(&run.socket());
    wait_for_agent(&client, instance.agent_pid, &run.log("agent"))?;
    apply_files(run, Some(&mut instance), &client, &files, false)?;
    println!("node {:?} is up again", instance.name);
    Ok(())
}

/// The manifests of DIR, read and parsed; every invalid object is an error.
fn parse_all(dir: &Path) -> Result<Vec<ManifestFile>> {
    let files = read_files(&manifest_paths(dir)?)?;
    let errors: Vec<String> = files
        .iter()
        .flat_map(|file| file.objects.iter().filter_map(|o| o.as_ref().err()))
        .map(|err| reconcilers::error_chain(err))
        .collect();
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(files)
}

/// The node's own address, which Cilium puts on `cilium_host`: the first host address of the
/// pod CIDR, here on the node's loopback (the kernel may have no dummy links), so the node
/// reaches its pods from an address the agent knows as `reserved:host`.
fn add_host_address(node_netns: &str, pod_cidr: &Cidr) -> Result<()> {
    let IpAddr::V4(network) = pod_cidr.network().addr() else {
        bail!("--pod-cidr {pod_cidr}: only ipv4 is supported");
    };
    let router = Ipv4Addr::from(u32::from(network).saturating_add(1));
    system::ip(&[
        "-n",
        node_netns,
        "addr",
        "add",
        &format!("{router}/32"),
        "dev",
        "lo",
    ])
}

/// Starts `myelin-agent` in the node's namespace on the recorded state and pins; its pid.
fn start_agent(run: &RunDir, instance: &Instance) -> Result<u32> {
    system::spawn_in_netns(
        &instance.node_netns,
        &system::sibling("myelin-agent")?,
        &[
            "--socket".into(),
            run.socket().into_os_string(),
            "--state-dir".into(),
            run.state_dir().into_os_string(),
            "--pod-cidr".into(),
            instance.pod_cidr.clone().into(),
            "--bpf-pin-dir".into(),
            instance.pin_dir.clone().into(),
            "--node-name".into(),
            instance.name.clone().into(),
            format!("--enable-hubble={}", instance.hubble).into(),
        ],
        &run.log("agent"),
    )
}

/// Stops and removes everything the recorded node made; what is already gone is skipped.
pub(crate) fn down(run: &RunDir) -> Result<()> {
    let Some(mut instance) = run.load()? else {
        println!("nothing is up (run dir {})", run.path().display());
        return Ok(());
    };
    let keys: Vec<String> = instance.pods.keys().cloned().collect();
    for key in keys {
        if let Err(err) = pods::stop(run, &mut instance, &key) {
            tracing::warn!(pod = %key, error = %format!("{err:#}"), "cleanup");
        }
    }
    system::terminate(instance.agent_pid);
    system::netns_delete(&instance.node_netns);
    system::remove_tree(Path::new(&instance.pin_dir));
    run.remove()?;
    println!("node {:?} is down", instance.name);
    Ok(())
}

/// `myelin apply -f` / `myelin delete -f` against the agent, then starting or stopping the pods
/// that were created or deleted, when an embedded node is up. False if any object was invalid.
pub(crate) fn change(run: &RunDir, paths: &[PathBuf], delete: bool) -> Result<bool> {
    let client = Client::new(&run.socket());
    let mut instance = run.load()?;
    apply_files(run, instance.as_mut(), &client, &read_files(paths)?, delete)
}

/// One manifest file: its text as sent to the agent, and its documents as parsed here, in the
/// order the agent answers for them (one result per document).
struct ManifestFile {
    source: String,
    text: String,
    objects: Vec<Result<Object, manifest::ManifestError>>,
}

/// Sends every file to the agent (each answered once the change is enforced), prints what
/// happened, then makes the node's pods follow. False if any object was invalid.
fn apply_files(
    run: &RunDir,
    instance: Option<&mut Instance>,
    client: &Client,
    files: &[ManifestFile],
    delete: bool,
) -> Result<bool> {
    let mut answers = Vec::new();
    // One trace for the whole command, continued by the agent's derivation and reconcilers.
    let span = tracing::info_span!(
        "apply",
        otel.kind = "client",
        files = reconcilers::cause::field(files.len()),
        delete
    );
    let _entered = span.enter();
    let traceparent = logging::traceparent(&span);
    for file in files {
        let manifest = Manifest {
            source: file.source.clone(),
            text: file.text.clone(),
            wait: true,
            traceparent: traceparent.clone(),
        };
        let response = client.request(&if delete {
            Request::Delete(manifest)
        } else {
            Request::Apply(manifest)
        })?;
        let Response::Applied(applied) = response else {
            bail!("unexpected answer from the agent: {response:?}");
        };
        print_applied(&applied);
        answers.push(applied);
    }
    // Pods start once every file is in, so they start with their policies in place.
    if let Some(instance) = instance {
        let before = instance.clone();
        for (file, applied) in files.iter().zip(&answers) {
            follow_pods(run, instance, file, applied, delete)?;
        }
        // A policy-only change leaves pods and services, and so every hosts file, as they were.
        if *instance != before {
            hosts::write_all(instance)?;
            run.save(instance)?;
        }
    }
    Ok(answers
        .iter()
        .flat_map(|applied| &applied.results)
        .all(|r| r.action != ObjectAction::Invalid))
}

/// Starts pods that were created, stops pods that were deleted, keeps labels and service
/// selectors for the hosts files. The record is saved after each pod, so `down` finds every
/// pod that was started even if a later one fails.
fn follow_pods(
    run: &RunDir,
    instance: &mut Instance,
    file: &ManifestFile,
    applied: &Applied,
    delete: bool,
) -> Result<()> {
    for (object, result) in file.objects.iter().zip(&applied.results) {
        let Ok(object) = object else {
            continue;
        };
        let key = format!(
            "{}/{}",
            object.namespace().unwrap_or(DEFAULT_NAMESPACE),
            object.name().unwrap_or_default()
        );
        match (object, result.action) {
            (Object::Pod(_), ObjectAction::Deleted) => {
                pods::stop(run, instance, &key)?;
                run.save(instance)?;
            }
            (Object::Pod(pod), ObjectAction::Created) => {
                pods::start(run, instance, &key, pod)?;
                run.save(instance)?;
            }
            (Object::Pod(pod), ObjectAction::Configured) => {
                if let Some(record) = instance.pods.get_mut(&key) {
                    record.labels = labels(pod);
                }
            }
            (Object::Service(_), ObjectAction::Deleted) => {
                instance.services.remove(&key);
            }
            (Object::Service(svc), action) if !delete && action != ObjectAction::Invalid => {
                instance.services.insert(key, selector(svc));
            }
            _ => {}
        }
    }
    Ok(())
}

fn labels(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata.labels.clone().unwrap_or_default()
}

fn selector(svc: &Service) -> BTreeMap<String, String> {
    svc.spec
        .as_ref()
        .and_then(|spec| spec.selector.clone())
        .unwrap_or_default()
}

/// kubectl's lines: `pod/xwing created`, then the problems of rejected objects.
pub(crate) fn print_applied(applied: &Applied) {
    for result in &applied.results {
        if result.resource.is_empty() {
            for error in &result.errors {
                eprintln!("error: {error}");
            }
            continue;
        }
        println!(
            "{}/{} {}",
            result.resource,
            result.name,
            result.action.as_str()
        );
        for error in &result.errors {
            eprintln!("error: {error}");
        }
    }
}

fn wait_for_agent(client: &Client, pid: u32, log: &Path) -> Result<()> {
    let waited = system::poll(AGENT_START_TIMEOUT, || {
        client.is_up() || !system::is_running(pid)
    });
    if !system::is_running(pid) {
        bail!(
            "myelin-agent exited; its log {}:\n{}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
    if !waited {
        bail!(
            "myelin-agent did not answer within {AGENT_START_TIMEOUT:?}; see {}",
            log.display()
        );
    }
    Ok(())
}

/// `DIR/*.yaml` and `DIR/app/*.yaml` (the examples keep later tutorial steps in other
/// subdirectories, applied with `myelin apply -f`), or the file itself.
fn manifest_paths(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(vec![dir.to_owned()]);
    }
    let mut paths = vec![dir.to_owned()];
    let app = dir.join("app");
    if app.is_dir() {
        paths.push(app);
    }
    Ok(paths)
}

/// Files of the given paths (directories: their `.yaml`, `.yml` and `.json` files, sorted).
fn manifest_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("read {}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && p.extension()
                            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
                })
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

/// The manifest files below `paths`, read and parsed.
fn read_files(paths: &[PathBuf]) -> Result<Vec<ManifestFile>> {
    manifest_files(paths)?
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            let source = path.display().to_string();
            let objects = manifest::parse_str(&source, &text);
            Ok(ManifestFile {
                source,
                text,
                objects,
            })
        })
        .collect()
}

/// A pod of the node that is up: `ns/pod` (or `pod`, in `default`).
pub(crate) struct PodEnd {
    pub(crate) key: String,
    pub(crate) netns: PathBuf,
    pub(crate) ipv4: std::net::Ipv4Addr,
}

/// Every pod of the node that is up, in `ns/pod` order.
pub(crate) fn pods(run: &RunDir) -> Result<Vec<PodEnd>> {
    let instance = run
        .load()?
        .context("no embedded node is up (`myelin up DIR` starts one)")?;
    Ok(instance
        .pods
        .into_iter()
        .map(|(key, pod)| PodEnd {
            key,
            netns: Path::new("/run/netns").join(pod.netns),
            ipv4: pod.ipv4,
        })
        .collect())
}

pub(crate) fn pod(run: &RunDir, name: &str) -> Result<PodEnd> {
    let key = if name.contains('/') {
        name.to_owned()
    } else {
        format!("{DEFAULT_NAMESPACE}/{name}")
    };
    pods(run)?
        .into_iter()
        .find(|p| p.key == key)
        .with_context(|| format!("no pod {key} on the node that is up"))
}
