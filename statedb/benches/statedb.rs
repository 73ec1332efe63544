//! Throughput of the core operations; compare with cilium/statedb's published figures
//! (826k objects/s single insert, 2.6M/s batched, 24-38M lookups/s, 28M objects/s iteration).

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use statedb::{Db, Index, KeySet, Table, TableSchema, Txn};

#[derive(Clone, Debug)]
struct Obj {
    id: u64,
    tag: u32,
}

const ID: Index<Obj, u64> = Index::new("id", true, |o| KeySet::One(o.id));
const TAG: Index<Obj, u32> = Index::new("tag", false, |o| KeySet::One(o.tag));

fn table(with_secondary: bool) -> (Db, Table<Obj>) {
    let db = Db::new();
    let mut schema = TableSchema::new("objs", ID);
    if with_secondary {
        schema = schema.with_index(TAG);
    }
    let t = db.register_table(schema).expect("register");
    (db, t)
}

fn filled(n: u64) -> (Db, Table<Obj>) {
    let (db, t) = table(false);
    let mut w = db.write_txn(&[&t]);
    for id in 0..n {
        w.insert(&t, Obj { id, tag: 0 }).expect("insert");
    }
    w.commit();
    (db, t)
}

fn writes(c: &mut Criterion) {
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(1));
    g.bench_function("single-insert-txn", |b| {
        let (db, t) = table(false);
        let mut id = 0u64;
        b.iter(|| {
            let mut w = db.write_txn(&[&t]);
            w.insert(&t, Obj { id, tag: 0 }).expect("insert");
            w.commit();
            id += 1;
        });
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("batch-1000-insert-txn", |b| {
        let (db, t) = table(false);
        let mut id = 0u64;
        b.iter(|| {
            let mut w = db.write_txn(&[&t]);
            for _ in 0..1000 {
                w.insert(&t, Obj { id, tag: 0 }).expect("insert");
                id += 1;
            }
            w.commit();
        });
    });
    g.bench_function("batch-1000-insert-txn-with-secondary-index", |b| {
        let (db, t) = table(true);
        let mut id = 0u64;
        b.iter(|| {
            let mut w = db.write_txn(&[&t]);
            for _ in 0..1000 {
                let tag = u32::try_from(id % 64).expect("below 64");
                w.insert(&t, Obj { id, tag }).expect("insert");
                id += 1;
            }
            w.commit();
        });
    });
    g.finish();
}

fn reads(c: &mut Criterion) {
    let mut g = c.benchmark_group("read");
    for n in [1_000u64, 1_000_000] {
        let (db, t) = filled(n);
        let txn = db.read_txn();
        g.throughput(Throughput::Elements(1000));
        g.bench_function(format!("get-x1000/{n}-objects"), |b| {
            let mut k = 0u64;
            b.iter(|| {
                for _ in 0..1000 {
                    k = (k + 7919) % n;
                    black_box(txn.get(&t, &ID, &k));
                }
            });
        });
        g.throughput(Throughput::Elements(n));
        g.bench_function(format!("iterate-all/{n}-objects"), |b| {
            b.iter(|| black_box(txn.all(&t).map(|e| e.object.id).sum::<u64>()));
        });
    }
    g.finish();
}

fn snapshots(c: &mut Criterion) {
    let (db, _t) = filled(1_000_000);
    c.bench_function("read-txn-snapshot", |b| {
        b.iter_batched(|| (), |()| black_box(db.read_txn()), BatchSize::SmallInput);
    });
}

criterion_group!(benches, writes, reads, snapshots);
criterion_main!(benches);
