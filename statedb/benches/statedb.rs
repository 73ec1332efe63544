//! Throughput of the core operations, measured the way cilium/statedb's `benchmarks_test.go`
//! measures them so the figures compare: objects keyed by a `u64` id (8 big-endian bytes, like
//! `index.Uint64`), write batches that reuse ids `0..batch` (so after the first round every
//! insert replaces), lookups of 1000 objects, iteration over 100 000. The benchmark names are the
//! Go ones; criterion's `thrpt` is their `objects/sec`.
//!
//! Published upstream figures (objects/s): `WriteTxn_1` 826k, batched writes 2.6M,
//! lookups 24-38M, `FullIteration_All` 28M.
//!
//! After criterion's runs, a summary prints each headline figure in the bar's own unit
//! (objects/s, lookups/s) next to upstream's. It takes the best of many short rounds: on a
//! shared two-core machine the best round is the one no other process interrupted.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group};
use statedb::{Db, Index, KeySet, Table, TableSchema, Txn};

#[derive(Clone, Debug)]
struct Obj {
    id: u64,
    tag: &'static str,
}

const ID: Index<Obj, u64> = Index::new("id", true, |o| KeySet::One(o.id));
const TAG: Index<Obj, &'static str> = Index::new("tag", false, |o| KeySet::One(o.tag));

/// Upstream's `numObjectsToInsert`.
const OBJECTS: u64 = 1000;
/// Upstream's `numObjectsIteration`.
const ITERATION_OBJECTS: u64 = 100_000;

fn table(with_tags: bool) -> (Db, Table<Obj>) {
    let db = Db::new();
    let mut schema = TableSchema::new("objs", ID);
    if with_tags {
        schema = schema.with_index(TAG);
    }
    let t = db.register_table(schema).expect("register");
    (db, t)
}

fn filled(n: u64) -> (Db, Table<Obj>) {
    let (db, t) = table(false);
    let mut w = db.write_txn(&[&t]);
    for id in 0..n {
        w.insert(&t, Obj { id, tag: "" }).expect("insert");
    }
    w.commit();
    (db, t)
}

/// `0..n` in a fixed pseudo-random order (upstream uses `rand.Shuffle`).
fn shuffled(n: u64) -> Vec<u64> {
    let mut ids: Vec<u64> = (0..n).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..ids.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = usize::try_from(x % (i as u64 + 1)).expect("below len");
        ids.swap(i, j);
    }
    ids
}

fn insert_all(db: &Db, t: &Table<Obj>, ids: &[u64], tag: fn(u64) -> &'static str) {
    let mut w = db.write_txn(&[t]);
    for &id in ids {
        w.insert(t, Obj { id, tag: tag(id) }).expect("insert");
    }
    w.commit();
}

fn no_tag(_: u64) -> &'static str {
    ""
}

fn odd_even(id: u64) -> &'static str {
    if id.is_multiple_of(2) { "even" } else { "odd" }
}

fn writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(1));
    g.bench_function("WriteTxn_1", |b| {
        let (db, t) = table(false);
        b.iter(|| insert_all(&db, &t, &[123], no_tag));
    });
    for batch in [10u64, 100, 1000] {
        g.throughput(Throughput::Elements(batch));
        g.bench_function(format!("WriteTxn_{batch}"), |b| {
            let (db, t) = table(false);
            let ids: Vec<u64> = (0..batch).collect();
            b.iter(|| insert_all(&db, &t, &ids, no_tag));
        });
    }
    g.throughput(Throughput::Elements(100));
    g.bench_function("WriteTxn_100_SecondaryIndex", |b| {
        let (db, t) = table(true);
        let ids: Vec<u64> = (0..100).collect();
        b.iter(|| insert_all(&db, &t, &ids, |_| "test"));
    });
    g.throughput(Throughput::Elements(OBJECTS));
    g.bench_function("SequentialInsert", |b| {
        let (db, t) = table(false);
        let ids: Vec<u64> = (0..OBJECTS).collect();
        b.iter(|| insert_all(&db, &t, &ids, no_tag));
    });
    g.bench_function("RandomInsert", |b| {
        let (db, t) = table(false);
        let ids = shuffled(OBJECTS);
        b.iter(|| insert_all(&db, &t, &ids, no_tag));
    });
    g.bench_function("RandomReplace", |b| {
        let (db, t) = table(true);
        let ids: Vec<u64> = (0..OBJECTS).collect();
        insert_all(&db, &t, &ids, odd_even);
        let ids = shuffled(OBJECTS);
        b.iter(|| insert_all(&db, &t, &ids, odd_even));
    });
    g.bench_function("Changes", |b| {
        let (db, t) = table(false);
        let mut changes = t.changes();
        let ids: Vec<u64> = (0..OBJECTS).collect();
        b.iter(|| {
            insert_all(&db, &t, &ids, no_tag);
            let txn = db.read_txn();
            let (added, _) = changes.next(&txn);
            assert_eq!(added.filter(|c| !c.deleted).count(), ids.len());
            let mut w = db.write_txn(&[&t]);
            w.delete_all(&t).expect("delete all");
            w.commit();
            let txn = db.read_txn();
            let (deleted, _) = changes.next(&txn);
            assert_eq!(deleted.filter(|c| c.deleted).count(), ids.len());
        });
    });
    g.finish();
}

fn reads(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(OBJECTS));
    g.bench_function("SequentialLookup", |b| {
        let (db, t) = filled(OBJECTS);
        let txn = db.read_txn();
        b.iter(|| {
            for id in 0..OBJECTS {
                assert!(txn.get(&t, &ID, &id).is_some());
            }
        });
    });
    g.bench_function("RandomLookup", |b| {
        let (db, t) = filled(OBJECTS);
        let ids = shuffled(OBJECTS);
        b.iter(|| {
            let txn = db.read_txn();
            for id in &ids {
                assert!(txn.get(&t, &ID, id).is_some());
            }
        });
    });
    g.bench_function("Prefix_SecondaryIndex", |b| {
        let (db, t) = table(true);
        let ids: Vec<u64> = (0..OBJECTS).collect();
        insert_all(&db, &t, &ids, |_| "test");
        let txn = db.read_txn();
        b.iter(|| assert_eq!(txn.prefix(&t, &TAG, "test").count(), ids.len()));
    });
    for n in [ITERATION_OBJECTS, 1_000_000] {
        let (db, t) = filled(n);
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("FullIteration_All/{n}"), |b| {
            b.iter(|| {
                let txn = db.read_txn();
                let mut want = 0;
                for e in txn.all(&t) {
                    assert_eq!(e.object.id, want);
                    want += 1;
                }
                assert_eq!(want, n);
            });
        });
        g.bench_function(format!("FullIteration_Get/{n}"), |b| {
            let txn = db.read_txn();
            b.iter(|| {
                for id in 0..n {
                    assert!(txn.get(&t, &ID, &id).is_some());
                }
            });
        });
    }
    g.finish();
}

fn snapshots(c: &mut Criterion) {
    let (db, _t) = filled(OBJECTS);
    c.bench_function("NewReadTxn", |b| b.iter(|| black_box(db.read_txn())));
}

#[expect(
    clippy::disallowed_types,
    reason = "a wall-clock benchmark outside any runtime"
)]
type Clock = std::time::Instant;

/// The best rate of `rounds` rounds of `round`, which handles `per_round` objects.
fn best_rate(rounds: u32, per_round: u64, mut round: impl FnMut()) -> f64 {
    round();
    let mut best = Duration::MAX;
    for _ in 0..rounds {
        let start = Clock::now();
        round();
        best = best.min(start.elapsed());
    }
    #[expect(clippy::cast_precision_loss, reason = "a rate to print")]
    let per_round = per_round as f64;
    per_round / best.as_secs_f64()
}

fn millions(rate: f64) -> String {
    format!("{:.2}M", rate / 1e6)
}

#[expect(clippy::print_stdout, reason = "a bench binary prints its figures")]
fn summary() {
    let single = {
        let (db, t) = table(false);
        best_rate(50, 1000, || {
            for _ in 0..1000 {
                insert_all(&db, &t, &[123], no_tag);
            }
        })
    };
    let batched = {
        let (db, t) = table(false);
        let ids: Vec<u64> = (0..OBJECTS).collect();
        best_rate(200, OBJECTS, || insert_all(&db, &t, &ids, no_tag))
    };
    let lookups = {
        let (db, t) = filled(OBJECTS);
        let ids = shuffled(OBJECTS);
        let txn = db.read_txn();
        best_rate(2000, OBJECTS, || {
            for id in &ids {
                assert!(txn.get(&t, &ID, id).is_some());
            }
        })
    };
    let iteration = {
        let (db, t) = filled(ITERATION_OBJECTS);
        let txn = db.read_txn();
        best_rate(100, ITERATION_OBJECTS, || {
            let mut want = 0;
            for e in txn.all(&t) {
                assert_eq!(e.object.id, want);
                want += 1;
            }
            assert_eq!(want, ITERATION_OBJECTS);
        })
    };
    println!("\nsummary, best of many rounds (upstream cilium/statedb in brackets):");
    println!(
        "  single-object write txns  {} objects/s  [826k]",
        millions(single)
    );
    println!(
        "  1000-object write txns    {} objects/s  [2.6M]",
        millions(batched)
    );
    println!(
        "  random point lookups      {} lookups/s  [24-38M]",
        millions(lookups)
    );
    println!(
        "  full iteration of 100k    {} objects/s  [28M]",
        millions(iteration)
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = writes, reads, snapshots
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
