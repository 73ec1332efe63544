//! The policy engine at scale: 10,000 pods in 100 namespaces (1,000 identities) and 1,000
//! policies (half NetworkPolicy, half CiliumNetworkPolicy). Prints the full computation time,
//! peak memory, and p50/p99 latency plus entries touched and selector matches evaluated for each
//! kind of incremental update. Checksums of the map states and of every delta let two builds be
//! compared for identical results.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use policy::compile::{self, Context, NoServices};
use policy::engine::{Config, Delta, Engine, NamedPorts};
use policy::identity::{Identity, PodContext, pod_identity_labels};
use policy::rule::Rule;
use policy::translate::Origin;
use schema::labels::Labels;
use schema::manifest;

#[expect(
    clippy::disallowed_types,
    reason = "a wall-clock benchmark outside any runtime"
)]
type Clock = std::time::Instant;

const NAMESPACES: usize = 100;
const APPS: usize = 10;
const PODS_PER_IDENTITY: usize = 10;
const ROUNDS: usize = 300;

fn labels(ns: usize, app: &str) -> Labels {
    let pod = BTreeMap::from([("app".to_owned(), app.to_owned())]);
    let ns_name = format!("ns-{ns}");
    let ns_labels = BTreeMap::from([
        ("kubernetes.io/metadata.name".to_owned(), ns_name.clone()),
        ("team".to_owned(), format!("team-{}", ns % 10)),
    ]);
    pod_identity_labels(
        &pod,
        PodContext {
            namespace: &ns_name,
            namespace_labels: &ns_labels,
            service_account: "default",
            cluster: "default",
        },
    )
}

fn ports() -> NamedPorts {
    BTreeMap::from([("http".to_owned(), [(6u8, 8080u16)].into())])
}

fn policy_yaml(ns: usize, i: usize) -> String {
    let (a, b) = (i % APPS, (i + 1) % APPS);
    match i % 10 {
        0..=4 => format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np-{i}, namespace: ns-{ns}}}\nspec:\n  podSelector: {{matchLabels: {{app: app-{a}}}}}\n  ingress:\n  - from:\n    - podSelector: {{matchLabels: {{app: app-{b}}}}}\n    - namespaceSelector: {{matchLabels: {{team: team-{t}}}}}\n    ports: [{{port: 80}}, {{port: http}}]\n",
            t = i % 10
        ),
        5 | 6 => format!(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: cnp-{i}, namespace: ns-{ns}}}\nspec:\n  endpointSelector: {{matchLabels: {{app: app-{a}}}}}\n  ingress:\n  - fromEndpoints: [{{matchLabels: {{app: app-{b}}}}}]\n    toPorts: [{{ports: [{{port: \"8000\", endPort: 8100, protocol: TCP}}]}}]\n  egress:\n  - toEntities: [world]\n    toPorts: [{{ports: [{{port: \"443\"}}]}}]\n"
        ),
        7 => format!(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: cnp-{i}, namespace: ns-{ns}}}\nspec:\n  endpointSelector: {{}}\n  ingressDeny:\n  - fromEndpoints: [{{matchLabels: {{app: app-{b}}}}}]\n    toPorts: [{{ports: [{{port: \"22\", protocol: TCP}}]}}]\n"
        ),
        _ => format!(
            "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: cnp-{i}, namespace: ns-{ns}}}\nspec:\n  endpointSelector: {{matchLabels: {{app: app-{a}}}}}\n  egress:\n  - toEndpoints: [{{matchLabels: {{app: app-{b}}}}}]\n  - toCIDRSet: [{{cidr: 10.{ns}.0.0/16, except: [10.{ns}.1.0/24]}}]\n"
        ),
    }
}

/// A policy unlike the loaded ones, so that adding it changes entries.
fn added_policy(ns: usize, round: usize) -> String {
    let (a, b) = (round % APPS, (round + 5) % APPS);
    format!(
        "apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {{name: added, namespace: ns-{ns}}}\nspec:\n  endpointSelector: {{matchLabels: {{app: app-{a}}}}}\n  ingress:\n  - fromEndpoints: [{{matchLabels: {{app: app-{b}}}}}]\n    toPorts: [{{ports: [{{port: \"9000\", protocol: TCP}}]}}]\n"
    )
}

fn compile(yaml: &str) -> (Origin, Vec<Rule>) {
    let object = manifest::parse_str("bench", yaml)
        .into_iter()
        .next()
        .and_then(Result::ok)
        .expect("valid policy");
    let ctx = Context {
        cluster: "default",
        services: &NoServices,
    };
    let compiled = compile::object(&object, &ctx)
        .expect("a policy")
        .expect("compiles");
    (compiled.origin, compiled.rules)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Every resolved entry and every delta, in order: equal between builds iff results are.
#[derive(Default)]
struct Checksum(DefaultHasher);

impl Checksum {
    fn delta(&mut self, delta: &Delta) {
        for (subject, change) in &delta.entries {
            (subject, change.key, change.old, change.new).hash(&mut self.0);
        }
    }
}

struct Series {
    name: &'static str,
    times: Vec<Duration>,
    entries: Vec<usize>,
    matches: usize,
}

impl Series {
    fn new(name: &'static str) -> Self {
        Self {
            name,
            times: Vec::new(),
            entries: Vec::new(),
            matches: 0,
        }
    }

    fn record(&mut self, took: Duration, delta: &Delta, matches: usize) {
        self.times.push(took);
        self.entries.push(delta.entries.len());
        self.matches += matches;
    }

    fn report(&mut self) {
        self.times.sort();
        self.entries.sort_unstable();
        let at = |p: usize| (self.times.len() * p / 100).min(self.times.len() - 1);
        let rounds = self.entries.len().max(1);
        let mean_entries = self.entries.iter().sum::<usize>() / rounds;
        println!(
            "{:<28} p50 {:>9.1?}  p99 {:>9.1?}  max {:>9.1?}  entries touched: mean {mean_entries}, max {}; selector matches: mean {}",
            self.name,
            self.times[at(50)],
            self.times[at(99)],
            self.times[self.times.len() - 1],
            self.entries.last().copied().unwrap_or(0),
            self.matches / rounds,
        );
    }
}

fn main() {
    let policies: Vec<(Origin, Vec<Rule>)> = (0..NAMESPACES)
        .flat_map(|ns| (0..10).map(move |i| (ns, i)))
        .map(|(ns, i)| compile(&policy_yaml(ns, i)))
        .collect();
    let mut engine = Engine::new(Config::default());
    let start = Clock::now();
    let mut next = 256u32;
    for ns in 0..NAMESPACES {
        for app in 0..APPS {
            // Ten pods share each identity; the engine sees the identity once.
            let _ = PODS_PER_IDENTITY;
            engine.upsert_identity(
                Identity(next),
                labels(ns, &format!("app-{app}")),
                ports(),
                true,
            );
            next += 1;
        }
    }
    let identities_done = start.elapsed();
    for (origin, rules) in policies.iter().cloned() {
        engine.upsert_policy(origin, rules);
    }
    let full = start.elapsed();
    let entries: usize = (256..next)
        .filter_map(|id| engine.map_state(Identity(id)))
        .map(|m| m.len())
        .sum();
    let mut states = Checksum::default();
    for id in 256..next {
        for (key, verdict) in engine
            .map_state(Identity(id))
            .into_iter()
            .flat_map(|m| m.entries())
        {
            (id, key, verdict).hash(&mut states.0);
        }
    }
    println!(
        "full computation: {} pods, {} identities, {} policies, {} selectors: {full:.2?} ({identities_done:.2?} identities, then policies); {entries} map entries (checksum {:016x}), {} selector matches; peak RSS {:.0} MiB",
        NAMESPACES * APPS * PODS_PER_IDENTITY,
        next - 256,
        policies.len(),
        engine.selector_count(),
        states.0.finish(),
        engine.stats().selector_matches,
        peak_rss_mib()
    );

    let mut new_pod = Series::new("new pod, new labels");
    let mut label_change = Series::new("label change (last pod)");
    let mut policy_add = Series::new("policy added");
    let mut policy_remove = Series::new("policy removed");
    let mut deltas = Checksum::default();
    for round in 0..ROUNDS {
        let ns = round % NAMESPACES;
        let id = Identity(60_000);
        let matches = |engine: &Engine| engine.stats().selector_matches;
        let (t, m) = (Clock::now(), matches(&engine));
        let d = engine.upsert_identity(id, labels(ns, "fresh"), ports(), true);
        new_pod.record(t.elapsed(), &d, matches(&engine) - m);
        deltas.delta(&d);
        // The pod is relabelled: its identity goes, a new one comes.
        let (t, m) = (Clock::now(), matches(&engine));
        let mut d = engine.remove_identity(id);
        let d2 = engine.upsert_identity(Identity(60_001), labels(ns, "app-3"), ports(), true);
        d.entries.extend(d2.entries);
        label_change.record(t.elapsed(), &d, matches(&engine) - m);
        deltas.delta(&d);
        deltas.delta(&engine.remove_identity(Identity(60_001)));

        let (origin, rules) = compile(&added_policy(ns, round));
        let (t, m) = (Clock::now(), matches(&engine));
        let d = engine.upsert_policy(origin.clone(), rules);
        policy_add.record(t.elapsed(), &d, matches(&engine) - m);
        deltas.delta(&d);
        let (t, m) = (Clock::now(), matches(&engine));
        let d = engine.remove_policy(&origin);
        policy_remove.record(t.elapsed(), &d, matches(&engine) - m);
        deltas.delta(&d);
    }
    for series in [
        &mut new_pod,
        &mut label_change,
        &mut policy_add,
        &mut policy_remove,
    ] {
        series.report();
    }
    println!("deltas checksum {:016x}", deltas.0.finish());
}
