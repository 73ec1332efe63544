use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use crate::{Db, Error, Index, KeySet, Table, TableSchema, Txn};

#[derive(Clone, Debug, PartialEq)]
struct Obj {
    id: u32,
    tag: String,
    code: u16,
}

const ID: Index<Obj, u32> = Index::new("id", true, |o| KeySet::One(o.id));
const TAG: Index<Obj, String> = Index::new("tag", false, |o| KeySet::One(o.tag.clone()));
const CODE: Index<Obj, u16> = Index::new("code", true, |o| KeySet::One(o.code));

fn obj(id: u32, tag: &str) -> Obj {
    Obj {
        id,
        tag: tag.to_string(),
        code: u16::try_from(id).expect("small ids") + 1000,
    }
}

fn setup() -> (Db, Table<Obj>) {
    let db = Db::new();
    let t = db
        .register_table(
            TableSchema::new("objs", ID)
                .with_index(TAG)
                .with_index(CODE),
        )
        .expect("register");
    (db, t)
}

fn ids<'a>(it: impl Iterator<Item = &'a crate::Entry<Obj>>) -> Vec<u32> {
    it.map(|e| e.object.id).collect()
}

#[test]
fn queries_see_committed_writes_only() {
    let (db, t) = setup();
    let before = db.read_txn();
    let mut w = db.write_txn(&[&t]);
    for (id, tag) in [(1, "a"), (2, "b"), (3, "a"), (20, "ab")] {
        assert!(w.insert(&t, obj(id, tag)).expect("insert").is_none());
    }
    assert_eq!(
        w.get(&t, &ID, &3).map(|e| e.object.id),
        Some(3),
        "own writes"
    );
    let after = w.commit();
    assert_eq!(before.len(&t), 0);
    assert_eq!(after.len(&t), 4);
    assert_eq!(after.get(&t, &ID, &2).map(|e| e.revision), Some(2));
    assert_eq!(ids(after.list(&t, &TAG, "a")), vec![1, 3]);
    assert_eq!(ids(after.prefix(&t, &TAG, "a")), vec![1, 3, 20]);
    assert_eq!(ids(after.lower_bound(&t, &ID, &3)), vec![3, 20]);
    assert_eq!(ids(after.all(&t)), vec![1, 2, 3, 20]);
    assert_eq!(after.get(&t, &CODE, &1002).map(|e| e.object.id), Some(2));
    assert_eq!(after.revision(&t), 4);
}

#[test]
fn updates_move_secondary_keys_and_return_the_old_object() {
    let (db, t) = setup();
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(1, "a")).expect("insert");
    let old = w.insert(&t, obj(1, "b")).expect("update").expect("had old");
    assert_eq!(old.object.tag, "a");
    let r = w.commit();
    assert!(ids(r.list(&t, &TAG, "a")).is_empty());
    assert_eq!(ids(r.list(&t, &TAG, "b")), vec![1]);
}

#[test]
fn abort_and_drop_discard_writes_and_release_the_lock() {
    let (db, t) = setup();
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(1, "a")).expect("insert");
    w.abort();
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(2, "a")).expect("insert");
    drop(w);
    assert_eq!(db.read_txn().len(&t), 0);
}

#[test]
fn compare_and_swap_checks_the_revision() {
    let (db, t) = setup();
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(1, "a")).expect("insert");
    let r = w.commit();
    let rev = r.get(&t, &ID, &1).expect("present").revision;
    let mut w = db.write_txn(&[&t]);
    let err = w
        .compare_and_swap(&t, rev + 7, obj(1, "b"))
        .expect_err("stale revision");
    assert_eq!(
        err.to_string(),
        "table \"objs\": object 00000001 is at revision Some(1), the write expected 8"
    );
    w.compare_and_swap(&t, rev, obj(1, "b"))
        .expect("current revision");
    assert!(w.compare_and_delete(&t, rev, &obj(1, "b")).is_err());
    let r = w.commit();
    assert_eq!(r.get(&t, &ID, &1).map(|e| e.object.tag.as_str()), Some("b"));
}

#[test]
fn unique_secondary_conflict_leaves_the_transaction_unchanged() {
    let (db, t) = setup();
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(1, "a")).expect("insert");
    let clash = Obj {
        id: 2,
        tag: "x".into(),
        code: 1001,
    };
    assert!(matches!(
        w.insert(&t, clash),
        Err(Error::UniqueConflict { index: "code", .. })
    ));
    let r = w.commit();
    assert_eq!(ids(r.all(&t)), vec![1]);
    assert_eq!(r.revision(&t), 1);
}

#[test]
fn writing_an_unlocked_table_is_an_error() {
    let (db, t) = setup();
    let other = db
        .register_table(TableSchema::new("other", ID))
        .expect("register");
    let mut w = db.write_txn(&[&t]);
    let err = w.insert(&other, obj(1, "a")).expect_err("not locked");
    assert_eq!(
        err.to_string(),
        "table \"other\" is not locked by this write transaction"
    );
}

#[test]
fn table_names_are_checked() {
    let db = Db::new();
    assert!(db.register_table(TableSchema::new("Bad Name", ID)).is_err());
    db.register_table(TableSchema::new("objs", ID)).expect("ok");
    assert!(matches!(
        db.register_table(TableSchema::new("objs", ID)),
        Err(Error::TableExists { .. })
    ));
}

#[test]
fn watches_fire_only_for_their_result() {
    let (db, t) = setup();
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(1, "a")).expect("insert");
    w.insert(&t, obj(2, "b")).expect("insert");
    let r = w.commit();
    let (_, w1) = r.get_watch(&t, &ID, &1);
    let (_, wa) = r.list_watch(&t, &TAG, "a");
    let (_, wb) = r.list_watch(&t, &TAG, "b");
    let (_, wall) = r.all_watch(&t);
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(2, "c")).expect("update");
    w.commit();
    assert!(!w1.has_fired());
    assert!(!wa.has_fired());
    assert!(wb.has_fired(), "2 left tag b");
    assert!(wall.has_fired());
    // A watch taken on the stale snapshot fires at once if its result already changed.
    let (_, stale) = r.list_watch(&t, &TAG, "c");
    assert!(stale.has_fired());
    let (_, unchanged) = r.get_watch(&t, &ID, &1);
    assert!(!unchanged.has_fired());
}

#[test]
fn a_thread_blocked_on_a_watch_wakes_on_commit() {
    let (db, t) = setup();
    let (_, watch) = db.read_txn().get_watch(&t, &ID, &5);
    let waiter = std::thread::spawn(move || watch.wait_timeout(Duration::from_secs(10)));
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(5, "a")).expect("insert");
    w.commit();
    assert!(waiter.join().expect("waiter"));
}

#[tokio::test]
async fn a_task_awaiting_a_watch_wakes_on_commit() {
    let (db, t) = setup();
    let (_, watch) = db.read_txn().all_watch(&t);
    let waiter = tokio::spawn(async move { watch.fired().await });
    tokio::task::yield_now().await;
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(5, "a")).expect("insert");
    w.commit();
    tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("woke")
        .expect("task");
}

#[test]
fn change_streams_include_deletes_until_every_consumer_saw_them() {
    let (db, t) = setup();
    let mut fast = t.changes();
    let mut slow = t.changes();
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(1, "a")).expect("insert");
    w.insert(&t, obj(2, "a")).expect("insert");
    let r = w.commit();
    let seen: Vec<(u32, bool)> = fast.next(&r).0.map(|c| (c.object.id, c.deleted)).collect();
    assert_eq!(seen, vec![(1, false), (2, false)]);
    let _ = slow.next(&r).0.count();

    let mut w = db.write_txn(&[&t]);
    w.delete(&t, &obj(1, "a")).expect("delete");
    let r = w.commit();
    let (batch, watch) = fast.next(&r);
    let seen: Vec<(u32, bool)> = batch.map(|c| (c.object.id, c.deleted)).collect();
    assert_eq!(seen, vec![(1, true)]);
    assert!(!watch.has_fired());
    assert_eq!(db.metrics()[0].graveyard_objects, 1);

    // fast has seen the delete, slow has not: the next commit must keep it.
    let _ = fast.next(&r).0.count();
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(3, "a")).expect("insert");
    let r = w.commit();
    assert!(watch.has_fired());
    assert_eq!(db.metrics()[0].graveyard_objects, 1);
    let seen: Vec<(u32, bool)> = slow.next(&r).0.map(|c| (c.object.id, c.deleted)).collect();
    assert_eq!(seen, vec![(1, true), (3, false)]);

    // Both consumers are past the delete now; dropping them is enough for the next commit.
    drop(slow);
    let _ = fast.next(&r).0.count();
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(4, "a")).expect("insert");
    w.commit();
    assert_eq!(db.metrics()[0].graveyard_objects, 0);
}

#[test]
fn deletes_without_consumers_leave_no_graveyard() {
    let (db, t) = setup();
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, obj(1, "a")).expect("insert");
    w.delete(&t, &obj(1, "a")).expect("delete");
    w.commit();
    assert_eq!(db.metrics()[0].graveyard_objects, 0);
}

#[test]
fn initialization_waits_for_every_initializer() {
    let (db, t) = setup();
    let mut w = db.write_txn(&[&t]);
    let k8s = w.register_initializer(&t, "k8s").expect("register");
    let etcd = w.register_initializer(&t, "etcd").expect("register");
    let r = w.commit();
    let (done, watch) = r.initialized_watch(&t);
    assert!(!done);
    assert_eq!(r.pending_initializers(&t), vec!["k8s", "etcd"]);
    let mut w = db.write_txn(&[&t]);
    w.complete_initializer(&t, k8s).expect("complete");
    w.commit();
    assert!(!watch.has_fired());
    let mut w = db.write_txn(&[&t]);
    w.complete_initializer(&t, etcd).expect("complete");
    let r = w.commit();
    assert!(watch.has_fired());
    assert!(r.initialized(&t));
}

#[test]
fn concurrent_writers_serialize_per_table() {
    let (db, t) = setup();
    let threads: Vec<_> = (0..4u32)
        .map(|n| {
            let (db, t) = (db.clone(), t.clone());
            std::thread::spawn(move || {
                for i in 0..250 {
                    let mut w = db.write_txn(&[&t]);
                    w.insert(&t, obj(n * 1000 + i, "x")).expect("insert");
                    w.commit();
                }
            })
        })
        .collect();
    for th in threads {
        th.join().expect("writer");
    }
    let r = db.read_txn();
    assert_eq!(r.len(&t), 1000);
    assert_eq!(r.revision(&t), 1000);
}

#[test]
fn metrics_count_commits() {
    let (db, t) = setup();
    for i in 0..3 {
        let mut w = db.write_txn(&[&t]);
        w.insert(&t, obj(i, "x")).expect("insert");
        w.commit();
    }
    let m = &db.metrics()[0];
    assert_eq!(
        (m.table, m.objects, m.revision, m.commits),
        ("objs", 3, 3, 3)
    );
    assert_eq!(
        m.commit_duration_buckets.iter().sum::<u64>(),
        3,
        "each commit in one bucket"
    );
    assert!(m.commit_duration_total > Duration::ZERO);
}

// ---------------------------------------------------------------------------------------------
// Model-based property tests: the database against a BTreeMap.

#[derive(Clone, Debug)]
enum Op {
    Insert(u32, u8),
    Delete(u32),
}

#[derive(Clone, Debug)]
struct TxnPlan {
    ops: Vec<Op>,
    commit: bool,
}

fn tag_of(t: u8) -> String {
    ["a", "ab", "b", "ba", "c"][usize::from(t % 5)].to_string()
}

fn plans() -> impl Strategy<Value = Vec<TxnPlan>> {
    let op = prop_oneof![
        3 => (0u32..24, any::<u8>()).prop_map(|(id, t)| Op::Insert(id, t)),
        1 => (0u32..24).prop_map(Op::Delete),
    ];
    let txn = (prop::collection::vec(op, 0..6), prop::bool::weighted(0.8))
        .prop_map(|(ops, commit)| TxnPlan { ops, commit });
    prop::collection::vec(txn, 1..30)
}

/// id -> (tag, revision)
type Model = BTreeMap<u32, (String, u64)>;

/// The observable result of each watched query, as (id, revision) pairs.
fn results(r: &crate::ReadTxn, t: &Table<Obj>) -> Vec<Vec<(u32, u64)>> {
    let pairs = |it: Box<dyn Iterator<Item = &crate::Entry<Obj>> + '_>| -> Vec<(u32, u64)> {
        it.map(|e| (e.object.id, e.revision)).collect()
    };
    vec![
        r.get(t, &ID, &3)
            .map(|e| (e.object.id, e.revision))
            .into_iter()
            .collect(),
        r.get(t, &ID, &7)
            .map(|e| (e.object.id, e.revision))
            .into_iter()
            .collect(),
        pairs(r.list(t, &TAG, "a")),
        pairs(r.list(t, &TAG, "b")),
        pairs(r.prefix(t, &TAG, "a")),
        pairs(r.lower_bound(t, &ID, &12)),
        r.all(t).map(|e| (e.object.id, e.revision)).collect(),
    ]
}

fn watches(r: &crate::ReadTxn, t: &Table<Obj>) -> Vec<crate::Watch> {
    vec![
        r.get_watch(t, &ID, &3).1,
        r.get_watch(t, &ID, &7).1,
        r.list_watch(t, &TAG, "a").1,
        r.list_watch(t, &TAG, "b").1,
        r.prefix_watch(t, &TAG, "a").1,
        r.lower_bound_watch(t, &ID, &12).1,
        r.all_watch(t).1,
    ]
}

fn check_against_model(r: &crate::ReadTxn, t: &Table<Obj>, model: &Model) {
    let got: Model = r
        .all(t)
        .map(|e| (e.object.id, (e.object.tag.clone(), e.revision)))
        .collect();
    assert_eq!(&got, model);
    for tag in ["a", "ab", "b", "ba", "c"] {
        let want: Vec<u32> = model
            .iter()
            .filter(|(_, (t, _))| t == tag)
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(ids(r.list(t, &TAG, tag)), want, "list tag {tag}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn database_matches_model(plans in plans()) {
        let db = Db::new();
        let t = db.register_table(TableSchema::new("objs", ID).with_index(TAG)).expect("register");
        let mut model = Model::new();
        let mut rev = 0u64;
        let mut eager = t.changes();
        let mut lazy = t.changes();
        let mut eager_mirror: BTreeMap<u32, u64> = BTreeMap::new();
        let mut lazy_mirror: BTreeMap<u32, u64> = BTreeMap::new();
        let consume = |c: &mut crate::Changes<Obj>, mirror: &mut BTreeMap<u32, u64>, r: &crate::ReadTxn| {
            let start = c.position();
            let mut keys = std::collections::HashSet::new();
            let mut last = start;
            for ch in c.next(r).0 {
                prop_assert!(ch.revision > last, "revision order");
                last = ch.revision;
                prop_assert!(keys.insert(ch.object.id), "one change per key per batch");
                if ch.deleted { mirror.remove(&ch.object.id); } else { mirror.insert(ch.object.id, ch.revision); }
            }
            Ok(())
        };

        for (n, plan) in plans.iter().enumerate() {
            let before = db.read_txn();
            let before_results = results(&before, &t);
            let ws = watches(&before, &t);
            let snapshot_model = model.clone();

            let mut next_model = model.clone();
            let mut next_rev = rev;
            let mut w = db.write_txn(&[&t]);
            for op in &plan.ops {
                match op {
                    // What a write returns is checked against the model too: a write that
                    // did nothing and said so would otherwise agree with itself.
                    Op::Insert(id, tg) => {
                        let old = w.insert(&t, Obj { id: *id, tag: tag_of(*tg), code: 0 }).expect("insert");
                        next_rev += 1;
                        let want = next_model.insert(*id, (tag_of(*tg), next_rev));
                        prop_assert_eq!(old.map(|e| (e.object.tag.clone(), e.revision)), want, "insert {} returns the replaced object", id);
                    }
                    Op::Delete(id) => {
                        let old = w.delete(&t, &Obj { id: *id, tag: String::new(), code: 0 }).expect("delete");
                        let want = next_model.remove(id);
                        if want.is_some() {
                            next_rev += 1;
                        }
                        prop_assert_eq!(old.map(|e| (e.object.tag.clone(), e.revision)), want, "delete {} returns the deleted object", id);
                    }
                }
            }
            let after = if plan.commit {
                model = next_model;
                rev = next_rev;
                w.commit()
            } else {
                w.abort();
                db.read_txn()
            };

            // Snapshot isolation: the old snapshot is untouched.
            check_against_model(&before, &t, &snapshot_model);
            check_against_model(&after, &t, &model);
            prop_assert_eq!(after.revision(&t), rev);

            // A watch fired iff its result changed.
            let after_results = results(&after, &t);
            for (i, w) in ws.iter().enumerate() {
                prop_assert_eq!(w.has_fired(), before_results[i] != after_results[i], "watch {}", i);
            }

            consume(&mut eager, &mut eager_mirror, &after)?;
            if n % 3 == 2 {
                consume(&mut lazy, &mut lazy_mirror, &after)?;
            }
            let want: BTreeMap<u32, u64> = model.iter().map(|(id, (_, r))| (*id, *r)).collect();
            prop_assert_eq!(&eager_mirror, &want);
        }
        let r = db.read_txn();
        consume(&mut lazy, &mut lazy_mirror, &r)?;
        let want: BTreeMap<u32, u64> = model.iter().map(|(id, (_, r))| (*id, *r)).collect();
        prop_assert_eq!(&lazy_mirror, &want);
    }
}

#[test]
fn objects_are_shared_not_copied() {
    let (db, t) = setup();
    let o = Arc::new(obj(1, "a"));
    let mut w = db.write_txn(&[&t]);
    w.insert(&t, Arc::clone(&o)).expect("insert");
    let r = w.commit();
    assert!(Arc::ptr_eq(
        &r.get(&t, &ID, &1).expect("present").object,
        &o
    ));
}

#[derive(Debug)]
struct Named {
    name: String,
}

const NAME: Index<Named, String> = Index::new("name", true, |o| KeySet::One(o.name.clone()));

/// Names that share their first eight bytes (one head) and cross every length a lookup key
/// takes a different path at: inline keys (up to 22 bytes), stack-encoded bytes (up to 64),
/// and encodings that spill to the heap.
#[test]
fn lookups_by_keys_of_every_length() {
    let db = Db::new();
    let t = db
        .register_table(TableSchema::new("named", NAME))
        .expect("register");
    let lens = [1, 7, 8, 9, 21, 22, 23, 63, 64, 65, 200];
    let name = |len: usize| "kube-sys".chars().cycle().take(len).collect::<String>();
    let mut w = db.write_txn(&[&t]);
    for len in lens {
        w.insert(&t, Named { name: name(len) }).expect("insert");
    }
    let txn = w.commit();
    for len in lens {
        let want = name(len);
        let got = txn
            .get(&t, &NAME, want.as_str())
            .map(|e| e.object.name.len());
        assert_eq!(got, Some(len), "by &str, {len} bytes");
        let got = txn.get(&t, &NAME, &want).map(|e| e.object.name.len());
        assert_eq!(got, Some(len), "by &String, {len} bytes");
        let mut longer = want.clone();
        longer.push('x');
        assert!(txn.get(&t, &NAME, &longer).is_none(), "{} bytes", len + 1);
    }
    assert!(txn.get(&t, &NAME, "").is_none());
    assert!(txn.get(&t, &NAME, &name(10)).is_none());
}
