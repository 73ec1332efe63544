//! The agent's figures on `/metrics`, under Cilium's names where Cilium has them, read from the
//! tables, the derivation and the reconcilers at scrape time. Flow counters (`hubble_*`) join
//! the same [`metrics::Registry`] through [`metrics::Registry::counter_vec`] when the flow
//! pipeline registers them.

use std::sync::Arc;

use metrics::{Collect, Encoder, Histogram, Kind};
use reconcilers::datapath::IpcacheKind;
use reconcilers::endpoints::EndpointState;
use reconcilers::reconciler::{DELAY_BUCKETS, Metrics, ROUND_BUCKETS, Reason};
use statedb::Txn;

use crate::api::Api;

/// The agent's own figures, read from its node at scrape time.
pub(crate) struct NodeMetrics(pub(crate) Arc<Api>);

impl Collect for NodeMetrics {
    fn collect(&self, out: &mut Encoder) {
        let node = &self.0.node;
        let txn = node.db.read_txn();
        let (mut ready, mut waiting) = (0u64, 0u64);
        for entry in txn.all(&node.tables.endpoints) {
            match entry.object.state {
                EndpointState::Ready => ready += 1,
                EndpointState::WaitingForNetns => waiting += 1,
            }
        }
        out.family(
            "cilium_endpoint",
            "Number of endpoints managed by this agent",
            Kind::Gauge,
        )
        .sample(&[], float(ready + waiting));
        out.family(
            "cilium_endpoint_state",
            "Count of all endpoints, tagged by their state",
            Kind::Gauge,
        )
        .sample(&[("endpoint_state", "ready")], float(ready))
        .sample(&[("endpoint_state", "waiting-for-netns")], float(waiting));

        let (identities, policies) = node.counts();
        out.family(
            "cilium_identity",
            "Number of identities currently allocated",
            Kind::Gauge,
        )
        .sample(&[], f64::from(identities));
        out.family(
            "cilium_policy",
            "Number of policies currently loaded",
            Kind::Gauge,
        )
        .sample(&[], f64::from(policies));
        out.family(
            "cilium_policy_max_revision",
            "Highest objects table revision the derived policy reflects",
            Kind::Gauge,
        )
        .sample(&[], float(node.derivation.derived().objects));

        let mut pressure = out.family(
            "cilium_bpf_map_pressure",
            "Fill percentage of a BPF map, as a ratio of its capacity",
            Kind::Gauge,
        );
        let tables = &node.datapath_tables;
        // The sizes `Datapath::open` creates the maps with.
        let sizes = bpf::Options::default();
        let ipcache = |kind| {
            txn.all(&tables.ipcache)
                .filter(|e| e.object.kind == kind)
                .count()
        };
        let maps = [
            (
                "ipcache",
                ipcache(IpcacheKind::Primary),
                sizes.ipcache_max_entries,
            ),
            (
                "ipblock",
                ipcache(IpcacheKind::IpBlock),
                sizes.ipblock_max_entries,
            ),
            (
                "endpoints",
                txn.len(&tables.endpoints),
                sizes.endpoints_max_entries,
            ),
            ("policy", txn.len(&tables.policy), sizes.policy_max_entries),
        ];
        for (name, rows, capacity) in maps {
            let rows = float(u64::try_from(rows).unwrap_or(u64::MAX));
            pressure.sample(&[("map_name", name)], rows / f64::from(capacity));
        }

        self.reconciler_families(out);
        self.statedb_families(out);
    }
}

impl NodeMetrics {
    fn reconciler_families(&self, out: &mut Encoder) {
        let reconcilers = &self.0.node.reconcilers;
        let figures: [(&str, Metrics); 3] = [
            (reconcilers.ipcache.name(), reconcilers.ipcache.metrics()),
            (
                reconcilers.endpoints.name(),
                reconcilers.endpoints.metrics(),
            ),
            (reconcilers.policy.name(), reconcilers.policy.metrics()),
        ];
        {
            let m = &figures[2].1;
            out.family(
                "cilium_policy_implementation_delay",
                "Time between a policy change and it being fully deployed into the datapath",
                Kind::Histogram,
            )
            .histogram(
                &[("source", "api")],
                Histogram {
                    bounds: &DELAY_BUCKETS,
                    counts: &m.delay_buckets,
                    sum: m.delay_total.as_secs_f64(),
                    count: m.delays,
                },
            );
        }
        let mut rounds = out.family(
            "myelin_reconciler_rounds_total",
            "Reconciliation rounds, by reconciler and reason",
            Kind::Counter,
        );
        for (name, m) in &figures {
            for (reason, n) in Reason::ALL.iter().zip(m.rounds) {
                rounds.sample(
                    &[("reconciler", name), ("reason", reason.as_str())],
                    float(n),
                );
            }
        }
        let mut ops = out.family(
            "myelin_reconciler_operations_total",
            "Target operations, by reconciler and operation",
            Kind::Counter,
        );
        for (name, m) in &figures {
            ops.sample(&[("reconciler", name), ("op", "update")], float(m.updates))
                .sample(&[("reconciler", name), ("op", "delete")], float(m.deletes))
                .sample(&[("reconciler", name), ("op", "prune")], float(m.prunes));
        }
        let mut errors = out.family(
            "myelin_reconciler_errors_total",
            "Failed target operations, by reconciler",
            Kind::Counter,
        );
        for (name, m) in &figures {
            errors.sample(&[("reconciler", name)], float(m.errors));
        }
        let mut duration = out.family(
            "myelin_reconciler_duration_seconds",
            "Duration of reconciliation rounds, by reconciler",
            Kind::Histogram,
        );
        for (name, m) in &figures {
            duration.histogram(
                &[("reconciler", name)],
                Histogram {
                    bounds: &ROUND_BUCKETS,
                    counts: &m.duration_buckets,
                    sum: m.duration_total.as_secs_f64(),
                    count: m.rounds.iter().sum(),
                },
            );
        }
    }

    fn statedb_families(&self, out: &mut Encoder) {
        let tables = self.0.node.db.metrics();
        let gauges: [(&str, &str, TableGauge); 3] = [
            ("cilium_statedb_table_objects", "Objects in a table", |t| {
                u64::try_from(t.objects).unwrap_or(u64::MAX)
            }),
            (
                "cilium_statedb_table_revision",
                "A table's current revision",
                |t| t.revision,
            ),
            (
                "cilium_statedb_table_graveyard_objects",
                "Deleted objects a table keeps until every change stream has seen them",
                |t| u64::try_from(t.graveyard_objects).unwrap_or(u64::MAX),
            ),
        ];
        for (name, help, value) in gauges {
            let mut family = out.family(name, help, Kind::Gauge);
            for t in &tables {
                family.sample(&[("table", t.table)], float(value(t)));
            }
        }
        let mut commits = out.family(
            "cilium_statedb_write_txn_duration_seconds",
            "Duration of write transaction commits, by table written",
            Kind::Histogram,
        );
        for t in &tables {
            commits.histogram(
                &[("table", t.table)],
                Histogram {
                    bounds: &statedb::COMMIT_BUCKETS,
                    counts: &t.commit_duration_buckets,
                    sum: t.commit_duration_total.as_secs_f64(),
                    count: t.commits,
                },
            );
        }
    }
}

/// One figure of a table.
type TableGauge = fn(&statedb::TableMetrics) -> u64;

#[expect(
    clippy::cast_precision_loss,
    reason = "the format's values are floats; counts below 2^53 are exact"
)]
fn float(n: u64) -> f64 {
    n as f64
}
