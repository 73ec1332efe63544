//! Reconciling one million objects through a no-op target: time from the first insert to every
//! object reconciled (status written back), and the process's peak memory. Set up like
//! upstream's `reconciler/benchmark` (inserts committed 1000 per transaction while the
//! reconciler runs, reconciler batches of 1000). Upstream cilium/statedb: 1M objects in 1.57 s
//! using 384 MB.

use std::sync::Arc;

use reconcilers::{Config, Operations, Reconcilable, Reconciler, Status, StatusKind};
use statedb::{Db, Index, KeySet, ReadTxn, TableSchema, Txn};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
struct Obj {
    id: u64,
    status: Status,
}

impl Reconcilable for Obj {
    fn status(&self) -> &Status {
        &self.status
    }
    fn with_status(&self, status: Status) -> Self {
        Obj {
            id: self.id,
            status,
        }
    }
}

const ID: Index<Obj, u64> = Index::new("id", true, |o| KeySet::One(o.id));

struct NoOp;

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

impl Operations<Obj> for NoOp {
    type Error = Never;
    async fn update(&self, _: &ReadTxn, _: u64, _: &Arc<Obj>) -> Result<(), Never> {
        Ok(())
    }
    async fn delete(&self, _: &ReadTxn, _: u64, _: &Arc<Obj>) -> Result<(), Never> {
        Ok(())
    }
    async fn prune(&self, _: &ReadTxn, _: &[Arc<Obj>]) -> Result<(), Never> {
        Ok(())
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

const N: u64 = 1_000_000;
/// Objects per insert transaction and per reconciler batch, as upstream's benchmark defaults.
const BATCH: usize = 1000;
const BATCH_U64: u64 = BATCH as u64;

#[expect(clippy::print_stdout, reason = "a bench binary prints its figures")]
fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let db = Db::new();
        let table = db
            .register_table(TableSchema::new("objs", ID))
            .expect("register");
        let cancel = CancellationToken::new();
        let mut config = Config::new("bench");
        config.batch_size = BATCH;
        let (rec, task) =
            Reconciler::spawn(db.clone(), table.clone(), NoOp, config, cancel.clone())
                .expect("spawn");
        let start = tokio::time::Instant::now();
        let mut last = 0;
        for chunk in 0..(N / BATCH_U64) {
            let mut w = db.write_txn(&[&table]);
            for id in chunk * BATCH_U64..(chunk + 1) * BATCH_U64 {
                w.insert(
                    &table,
                    Obj {
                        id,
                        status: Status::pending(),
                    },
                )
                .expect("insert");
            }
            last = w.commit().revision(&table);
        }
        let inserted = start.elapsed();
        rec.wait_reconciled(last).await;
        let total = start.elapsed();
        let txn = db.read_txn();
        let done = txn
            .all(&table)
            .filter(|e| e.object.status.kind == StatusKind::Done)
            .count();
        assert_eq!(
            done,
            usize::try_from(N).expect("fits"),
            "every object reconciled"
        );
        println!(
            "reconcile {N} objects through a no-op target: inserts committed in {inserted:?}, \
             all reconciled (status done) after {total:?}; peak RSS {:.0} MB",
            peak_rss_mb()
        );
        cancel.cancel();
        let _ = task.await;
    });
}
