//! Watch wake-up latency: from the start of a commit to a thread blocked on the watch running
//! again, and to a tokio task awaiting it. Prints p50/p99 over many commits.

use std::sync::mpsc;
use std::time::Duration;

use statedb::{Db, Index, KeySet, TableSchema};

#[derive(Debug)]
struct Obj {
    id: u64,
}

const ID: Index<Obj, u64> = Index::new("id", true, |o| KeySet::One(o.id));
const ROUNDS: u64 = 20_000;

#[expect(
    clippy::disallowed_types,
    reason = "a wall-clock benchmark outside any runtime"
)]
type Clock = std::time::Instant;

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "index into a small vec"
    )]
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

#[expect(clippy::print_stdout, reason = "a bench binary prints its figures")]
fn main() {
    let db = Db::new();
    let t = db
        .register_table(TableSchema::new("objs", ID))
        .expect("register");

    // A thread blocked in Watch::wait.
    let (to_waiter, watches) = mpsc::channel::<statedb::Watch>();
    let (woke_tx, woke) = mpsc::channel::<Clock>();
    let waiter = std::thread::spawn(move || {
        for w in watches {
            w.wait();
            let _ = woke_tx.send(Clock::now());
        }
    });
    let mut thread_lat = Vec::new();
    for id in 0..ROUNDS {
        let (_, watch) = db.read_txn().get_watch(&t, &ID, &id);
        to_waiter.send(watch).expect("send");
        std::thread::yield_now();
        let start = Clock::now();
        let mut w = db.write_txn(&[&t]);
        w.insert(&t, Obj { id }).expect("insert");
        w.commit();
        let at = woke.recv().expect("woke");
        thread_lat.push(at.saturating_duration_since(start));
    }
    drop(to_waiter);
    waiter.join().expect("waiter");

    // A task on a multi-thread runtime awaiting Watch::fired.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .expect("runtime");
    let mut task_lat = Vec::new();
    for id in ROUNDS..2 * ROUNDS {
        let (_, watch) = db.read_txn().get_watch(&t, &ID, &id);
        let (tx, rx) = std::sync::mpsc::channel();
        rt.spawn(async move {
            watch.fired().await;
            let _ = tx.send(Clock::now());
        });
        // Let the task reach its await, so the figure is wake-up and not spawn latency.
        #[expect(clippy::disallowed_methods, reason = "no runtime on this thread")]
        std::thread::sleep(Duration::from_micros(20));
        let start = Clock::now();
        let mut w = db.write_txn(&[&t]);
        w.insert(&t, Obj { id }).expect("insert");
        w.commit();
        let at = rx.recv().expect("woke");
        task_lat.push(at.saturating_duration_since(start));
    }
    println!(
        "watch wake-up latency, thread (Watch::wait): p50 {:?} p99 {:?} over {ROUNDS} commits",
        percentile(&mut thread_lat, 0.5),
        percentile(&mut thread_lat, 0.99)
    );
    println!(
        "watch wake-up latency, tokio task (Watch::fired): p50 {:?} p99 {:?} over {ROUNDS} commits",
        percentile(&mut task_lat, 0.5),
        percentile(&mut task_lat, 0.99)
    );
}
