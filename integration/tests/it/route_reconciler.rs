//! The reconciler framework driving the `routes` table into a real namespace's routing table:
//! minimal deltas, drift repair by the full pass, kernel rejections as error status + retry.

use std::time::Duration;

use expect_test::expect;
use reconcilers::routes::{DesiredRoute, ROUTE_KEY, register_routes_table};
use reconcilers::targets::routes::{RT_TABLE_MAIN, RouteOps, RouteSpec, RouteTarget};
use reconcilers::{Config, Reconciler, StatusKind};
use statedb::{Db, Table, Txn};
use tokio_util::sync::CancellationToken;

use crate::netns::Netns;
use crate::routes::owned_routes;

fn spec(dst: &str, prefix_len: u8, gateway: Option<&str>) -> RouteSpec {
    RouteSpec {
        table: RT_TABLE_MAIN,
        dst: dst.parse().expect("dst"),
        prefix_len,
        gateway: gateway.map(|g| g.parse().expect("gateway")),
        dev: Some("d0".into()),
        priority: None,
    }
}

struct Fixture {
    netns: Netns,
    db: Db,
    routes: Table<DesiredRoute>,
    rec: Reconciler<DesiredRoute>,
    cancel: CancellationToken,
}

impl Fixture {
    fn start() -> Fixture {
        let netns = Netns::new();
        netns.add_link("d0", &["10.200.0.1/24", "fd00:200::1/64"]);
        let db = Db::new();
        let routes = register_routes_table(&db).expect("routes table");
        let target = RouteTarget::open(Some(&netns.path())).expect("route target");
        let cancel = CancellationToken::new();
        let mut config = Config::new("routes");
        config.retry_min = Duration::from_millis(20);
        let (rec, _task) = Reconciler::spawn(
            db.clone(),
            routes.clone(),
            RouteOps::new(target),
            config,
            cancel.clone(),
        )
        .expect("spawn reconciler");
        Fixture {
            netns,
            db,
            routes,
            rec,
            cancel,
        }
    }

    async fn write(&self, f: impl FnOnce(&mut statedb::WriteTxn)) {
        let mut w = self.db.write_txn(&[&self.routes]);
        f(&mut w);
        let rev = w.commit().revision(&self.routes);
        self.rec.wait_reconciled(rev).await;
    }

    fn statuses(&self) -> String {
        let txn = self.db.read_txn();
        txn.all(&self.routes)
            .map(|e| format!("{}: {}", e.object.spec, e.object.status))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls (every 20 ms, for at most 10 s) until the namespace's Myelin routes read `want`.
    async fn eventually_owned(&self, want: &str) {
        for _ in 0..500 {
            if owned_routes(&self.netns) == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(owned_routes(&self.netns), want);
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn table_changes_become_minimal_kernel_changes() {
    let f = Fixture::start();
    f.write(|w| {
        for s in [
            spec("10.201.0.0", 24, None),
            spec("10.202.0.0", 24, Some("10.200.0.2")),
            spec("fd00:201::", 64, None),
        ] {
            w.insert(&f.routes, DesiredRoute::new(s)).expect("insert");
        }
    })
    .await;
    expect![[r#"
        10.201.0.0/24 dev d0 table main scope link protocol 193
        10.202.0.0/24 gateway 10.200.0.2 dev d0 table main protocol 193
        fd00:201::/64 dev d0 table main metric 1024 protocol 193"#]]
    .assert_eq(&owned_routes(&f.netns));
    expect![[r#"
        10.201.0.0/24 dev d0 table 254: done
        10.202.0.0/24 via 10.200.0.2 dev d0 table 254: done
        fd00:201::/64 dev d0 table 254: done"#]]
    .assert_eq(&f.statuses());

    // A route someone else installed, which the agent must leave alone.
    f.netns.exec_ok(&[
        "ip",
        "route",
        "add",
        "10.250.0.0/24",
        "dev",
        "d0",
        "proto",
        "boot",
    ]);

    f.write(|w| {
        w.delete(&f.routes, &DesiredRoute::new(spec("10.202.0.0", 24, None)))
            .expect("delete");
    })
    .await;
    expect![[r#"
        10.201.0.0/24 dev d0 table main scope link protocol 193
        fd00:201::/64 dev d0 table main metric 1024 protocol 193"#]]
    .assert_eq(&owned_routes(&f.netns));

    // Drift: removed behind the agent's back, restored by the full pass.
    f.netns
        .exec_ok(&["ip", "route", "del", "10.201.0.0/24", "dev", "d0"]);
    // A leftover of an earlier agent run: tagged as ours but not in the table, so pruned.
    f.netns.exec_ok(&[
        "ip",
        "route",
        "add",
        "10.209.0.0/24",
        "dev",
        "d0",
        "proto",
        "193",
    ]);
    f.rec.trigger_full_reconcile();
    f.eventually_owned(
        "10.201.0.0/24 dev d0 table main scope link protocol 193\n\
         fd00:201::/64 dev d0 table main metric 1024 protocol 193",
    )
    .await;
    let by_hand = f.netns.exec_ok(&["ip", "route", "show", "10.250.0.0/24"]);
    assert!(by_hand.contains("10.250.0.0/24 dev d0"), "{by_hand}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_rejected_route_shows_an_error_and_is_retried() {
    let f = Fixture::start();
    let unreachable = spec("10.203.0.0", 24, Some("192.0.2.1"));
    f.write(|w| {
        w.insert(&f.routes, DesiredRoute::new(unreachable.clone()))
            .expect("insert");
    })
    .await;
    expect!["10.203.0.0/24 via 192.0.2.1 dev d0 table 254: error: replace route 10.203.0.0/24 via 192.0.2.1 dev d0 table 254: Network is unreachable (os error 101)"]
        .assert_eq(&f.statuses());
    assert!(matches!(
        f.rec.health(),
        reconcilers::Health::Degraded { .. }
    ));

    // Make the gateway reachable; the next retry succeeds without anyone rewriting the object.
    f.netns
        .exec_ok(&["ip", "addr", "add", "192.0.2.2/24", "dev", "d0"]);
    f.eventually_owned("10.203.0.0/24 gateway 192.0.2.1 dev d0 table main protocol 193")
        .await;
    for _ in 0..500 {
        let txn = f.db.read_txn();
        let key = reconcilers::routes::route_key(&unreachable);
        let done = txn
            .get(&f.routes, &ROUTE_KEY, &key)
            .is_some_and(|e| e.object.status.kind == StatusKind::Done);
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    expect!["10.203.0.0/24 via 192.0.2.1 dev d0 table 254: done"].assert_eq(&f.statuses());
    assert_eq!(f.rec.health(), reconcilers::Health::Ok);
}
