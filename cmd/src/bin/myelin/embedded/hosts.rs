//! Name resolution inside pods without a DNS server: `ip netns exec` bind-mounts
//! `/etc/netns/<netns>/hosts` over `/etc/hosts`, so `myelin exec` commands resolve pod names and
//! the tutorials' service names (`deathstar.default.svc.cluster.local`). A service resolves to
//! its first backend: there is no service load balancer yet.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use schema::embedded::Instance;

pub(crate) fn write_all(instance: &Instance) -> Result<()> {
    for (key, pod) in &instance.pods {
        let namespace = key.split_once('/').map_or("default", |(ns, _)| ns);
        let dir = Path::new("/etc/netns").join(&pod.netns);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let path = dir.join("hosts");
        std::fs::write(&path, render(instance, namespace))
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// The hosts file of a pod in `namespace`.
fn render(instance: &Instance, namespace: &str) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n");
    for (key, pod) in &instance.pods {
        let (ns, name) = key.split_once('/').unwrap_or(("default", key));
        let _ = write!(out, "{}\t{name}.{ns}", pod.ipv4);
        if ns == namespace {
            let _ = write!(out, " {name}");
        }
        out.push('\n');
    }
    for (key, selector) in &instance.services {
        let (ns, name) = key.split_once('/').unwrap_or(("default", key));
        if selector.is_empty() {
            continue;
        }
        let backend = instance.pods.iter().find(|(pod_key, pod)| {
            pod_key
                .split_once('/')
                .is_some_and(|(pod_ns, _)| pod_ns == ns)
                && selector.iter().all(|(k, v)| pod.labels.get(k) == Some(v))
        });
        if let Some((_, pod)) = backend {
            let _ = write!(
                out,
                "{}\t{name}.{ns}.svc.cluster.local {name}.{ns}.svc {name}.{ns}",
                pod.ipv4
            );
            if ns == namespace {
                let _ = write!(out, " {name}");
            }
            out.push('\n');
        }
    }
    out
}
