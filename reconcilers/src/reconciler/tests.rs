//! The reconciler against a recording fake target: the operation log proves minimal deltas.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use expect_test::{Expect, expect};
use statedb::{Db, Index, KeySet, Table, TableSchema, Txn};
use tokio_util::sync::CancellationToken;

use crate::cause::{Cause, Causes};
use crate::reconciler::DELAY_BUCKETS;
use crate::{Config, Health, Operations, Reconcilable, Reconciler, Status, StatusKind};

#[derive(Clone, Debug)]
struct Item {
    name: String,
    value: u32,
    status: Status,
}

impl Reconcilable for Item {
    fn status(&self) -> &Status {
        &self.status
    }
    fn with_status(&self, status: Status) -> Self {
        Item {
            status,
            ..self.clone()
        }
    }
}

const NAME: Index<Item, String> = Index::new("name", true, |i| KeySet::One(i.name.clone()));

#[derive(Debug, thiserror::Error)]
#[error("target refused {0}")]
struct FakeError(String);

/// Records every operation; fails an object's next updates while `fail` says so.
#[derive(Clone, Default)]
struct Fake {
    log: Arc<Mutex<Vec<String>>>,
    fail: Arc<Mutex<HashMap<String, u32>>>,
    state: Arc<Mutex<BTreeMap<String, u32>>>,
}

impl Fake {
    fn take_log(&self) -> String {
        let mut log = self.log.lock().unwrap();
        let out = log.join("\n");
        log.clear();
        out
    }
    fn fail_next(&self, name: &str, times: u32) {
        self.fail.lock().unwrap().insert(name.to_string(), times);
    }
}

impl Operations<Item> for Fake {
    type Error = FakeError;

    async fn update(&self, _: &statedb::ReadTxn, _: u64, o: &Arc<Item>) -> Result<(), FakeError> {
        let mut fail = self.fail.lock().unwrap();
        if let Some(n) = fail.get_mut(&o.name).filter(|n| **n > 0) {
            *n -= 1;
            self.log
                .lock()
                .unwrap()
                .push(format!("update({}={}) fail", o.name, o.value));
            return Err(FakeError(o.name.clone()));
        }
        self.log
            .lock()
            .unwrap()
            .push(format!("update({}={})", o.name, o.value));
        self.state.lock().unwrap().insert(o.name.clone(), o.value);
        Ok(())
    }

    async fn delete(&self, _: &statedb::ReadTxn, _: u64, o: &Arc<Item>) -> Result<(), FakeError> {
        self.log.lock().unwrap().push(format!("delete({})", o.name));
        self.state.lock().unwrap().remove(&o.name);
        Ok(())
    }

    async fn prune(&self, _: &statedb::ReadTxn, desired: &[Arc<Item>]) -> Result<(), FakeError> {
        let names: Vec<&str> = desired.iter().map(|o| o.name.as_str()).collect();
        self.log
            .lock()
            .unwrap()
            .push(format!("prune({})", names.join(",")));
        self.state
            .lock()
            .unwrap()
            .retain(|k, _| names.contains(&k.as_str()));
        Ok(())
    }
}

struct Harness {
    db: Db,
    table: Table<Item>,
    fake: Fake,
    rec: Reconciler<Item>,
    causes: Causes,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn item(name: &str, value: u32) -> Item {
    Item {
        name: name.into(),
        value,
        status: Status::pending(),
    }
}

impl Harness {
    fn start(init: bool) -> (Harness, Option<statedb::Initializer>) {
        Harness::start_with(init, Config::new("test").batch_size)
    }

    fn start_with(init: bool, batch_size: usize) -> (Harness, Option<statedb::Initializer>) {
        let db = Db::new();
        let table = db.register_table(TableSchema::new("items", NAME)).unwrap();
        let initializer = init.then(|| {
            let mut w = db.write_txn(&[&table]);
            let i = w.register_initializer(&table, "test-source").unwrap();
            w.commit();
            i
        });
        let fake = Fake::default();
        let cancel = CancellationToken::new();
        let causes = Causes::default();
        let (rec, task) = Reconciler::spawn(
            db.clone(),
            table.clone(),
            fake.clone(),
            Config {
                causes: causes.clone(),
                batch_size,
                ..Config::new("test")
            },
            cancel.clone(),
        )
        .unwrap();
        (
            Harness {
                db,
                table,
                fake,
                rec,
                causes,
                cancel,
                task,
            },
            initializer,
        )
    }

    async fn write(&self, f: impl FnOnce(&mut statedb::WriteTxn)) {
        let mut w = self.db.write_txn(&[&self.table]);
        f(&mut w);
        let rev = w.commit().revision(&self.table);
        self.rec.wait_reconciled(rev).await;
    }

    fn statuses(&self) -> String {
        let r = self.db.read_txn();
        r.all(&self.table)
            .map(|e| format!("{}={} {}", e.object.name, e.object.value, e.object.status))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn check(&self, log: Expect) {
        log.assert_eq(&self.fake.take_log());
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn applies_only_what_changed() {
    let (h, _) = Harness::start(false);
    h.write(|w| {
        w.insert(&h.table, item("a", 1)).unwrap();
        w.insert(&h.table, item("b", 1)).unwrap();
    })
    .await;
    h.check(expect![[r#"
        update(a=1)
        update(b=1)
        prune(a,b)"#]]);
    expect![[r#"
        a=1 done
        b=1 done"#]]
    .assert_eq(&h.statuses());

    h.write(|w| {
        w.insert(&h.table, item("a", 2)).unwrap();
    })
    .await;
    h.check(expect!["update(a=2)"]);

    h.write(|w| {
        w.delete(&h.table, &item("b", 0)).unwrap();
        // Inserted and deleted before the reconciler saw it: the target never needs to hear.
        w.insert(&h.table, item("c", 1)).unwrap();
        w.delete(&h.table, &item("c", 0)).unwrap();
    })
    .await;
    h.check(expect!["delete(b)"]);

    // Status writes are changes too, but never trigger another operation.
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.check(expect![""]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_round_applies_every_update_before_any_delete() {
    // Batches of two: the three deletes fill a batch before the update comes along.
    let (h, _) = Harness::start_with(false, 2);
    h.write(|w| {
        for name in ["a", "b", "c"] {
            w.insert(&h.table, item(name, 1)).unwrap();
        }
    })
    .await;
    h.fake.take_log();
    h.write(|w| {
        for name in ["a", "b", "c"] {
            w.delete(&h.table, &item(name, 0)).unwrap();
        }
        w.insert(&h.table, item("z", 1)).unwrap();
    })
    .await;
    h.check(expect![[r#"
        update(z=1)
        delete(a)
        delete(b)
        delete(c)"#]]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_change_round_records_the_delay_since_its_cause() {
    let (h, _) = Harness::start(false);
    let since = tokio::time::Instant::now();
    tokio::time::advance(Duration::from_millis(30)).await;
    let mut w = h.db.write_txn(&[&h.table]);
    w.insert(&h.table, item("a", 1)).unwrap();
    let cause = Cause {
        span: tracing::Span::none(),
        since,
    };
    h.causes.record(w.revision(&h.table), cause);
    let rev = w.commit().revision(&h.table);
    h.rec.wait_reconciled(rev).await;
    // A later change without a cause adds no delay.
    h.write(|w| {
        w.insert(&h.table, item("b", 1)).unwrap();
    })
    .await;
    let m = h.rec.metrics();
    assert_eq!(m.delays, 1);
    assert_eq!(m.delay_total, Duration::from_millis(30), "time is paused");
    let bucket = DELAY_BUCKETS.iter().position(|b| *b >= 0.03).unwrap();
    assert_eq!(m.delay_buckets[bucket], 1, "{:?}", m.delay_buckets);
    assert_eq!(m.delay_buckets.iter().sum::<u64>(), 1);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_with_backoff_and_reported() {
    let (h, _) = Harness::start(false);
    h.fake.fail_next("a", 2);
    h.write(|w| {
        w.insert(&h.table, item("a", 1)).unwrap();
    })
    .await;
    expect!["a=1 error: target refused a"].assert_eq(&h.statuses());
    assert_eq!(
        h.rec.health(),
        Health::Degraded {
            failing: vec!["target refused a".into()]
        }
    );
    // 100ms, then 200ms.
    tokio::time::sleep(Duration::from_millis(99)).await;
    h.check(expect![[r#"
        update(a=1) fail
        prune(a)"#]]);
    tokio::time::sleep(Duration::from_millis(2)).await;
    h.check(expect!["update(a=1) fail"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.check(expect!["update(a=1)"]);
    expect!["a=1 done"].assert_eq(&h.statuses());
    assert_eq!(h.rec.health(), Health::Ok);
    let m = h.rec.metrics();
    assert_eq!((m.updates, m.errors), (3, 2));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_newer_change_supersedes_a_retry() {
    let (h, _) = Harness::start(false);
    h.fake.fail_next("a", 1);
    h.write(|w| {
        w.insert(&h.table, item("a", 1)).unwrap();
    })
    .await;
    h.write(|w| {
        w.insert(&h.table, item("a", 2)).unwrap();
    })
    .await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    h.check(expect![[r#"
        update(a=1) fail
        prune(a)
        update(a=2)"#]]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn prune_waits_for_initialization_and_repairs_drift() {
    let (h, init) = Harness::start(true);
    h.write(|w| {
        w.insert(&h.table, item("a", 1)).unwrap();
        w.insert(&h.table, item("b", 1)).unwrap();
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    h.check(expect![[r#"
        update(a=1)
        update(b=1)"#]]);

    h.write(|w| w.complete_initializer(&h.table, init.unwrap()).unwrap())
        .await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    h.check(expect!["prune(a,b)"]);

    // Drift: something outside removed a and added z. The next full pass repairs both.
    {
        let mut st = h.fake.state.lock().unwrap();
        st.remove("a");
        st.insert("z".into(), 9);
    }
    tokio::time::sleep(Duration::from_secs(300)).await;
    h.check(expect![[r#"
        update(a=1)
        update(b=1)
        prune(a,b)"#]]);
    let state: Vec<String> = h.fake.state.lock().unwrap().keys().cloned().collect();
    assert_eq!(state, vec!["a", "b"]);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_full_pass_can_be_triggered() {
    let (h, _) = Harness::start(false);
    h.write(|w| {
        w.insert(&h.table, item("a", 1)).unwrap();
    })
    .await;
    h.fake.take_log();
    h.rec.trigger_full_reconcile();
    tokio::time::sleep(Duration::from_millis(1)).await;
    h.check(expect![[r#"
        update(a=1)
        prune(a)"#]]);
    let r = h.db.read_txn();
    let e = r.get(&h.table, &NAME, "a").unwrap();
    assert_eq!(e.object.status.kind, StatusKind::Done);
    h.stop().await;
}

#[test]
fn names_are_checked() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let db = Db::new();
        let table = db.register_table(TableSchema::new("items", NAME)).unwrap();
        let err = Reconciler::spawn(
            db,
            table,
            Fake::default(),
            Config::new("Bad"),
            CancellationToken::new(),
        )
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "reconciler name \"Bad\" must match [a-z][a-z0-9-]{1,30}"
        );
    });
}
