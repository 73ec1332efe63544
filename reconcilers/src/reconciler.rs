//! The generic reconciler: drives one table's objects into a target through [`Operations`],
//! incrementally from the table's change stream, with per-object status, retries with backoff
//! and periodic full passes that repair drift.

mod metrics;
mod retries;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use statedb::{Changes, Db, Key, ReadTxn, Revision, Table, Txn};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, field::Empty};

use metrics::{Counters, RoundStats};
pub use metrics::{DELAY_BUCKETS, Metrics, ROUND_BUCKETS, Reason};
use retries::Retries;

use crate::cause::{self, Causes};
use crate::operations::Operations;
use crate::status::{Reconcilable, Status, StatusKind, error_chain};

#[derive(Clone, Debug)]
pub struct Config {
    /// Names the reconciler in spans, metrics, health and `myelin status`:
    /// `[a-z][a-z0-9-]{1,30}`.
    pub name: &'static str,
    /// How often the full pass (update everything, then prune) repairs drift in the target.
    pub full_reconcile_interval: Duration,
    pub retry_min: Duration,
    pub retry_max: Duration,
    /// Objects per batch call and per status-writing transaction.
    pub batch_size: usize,
    /// Why the table's revisions were written: a change round is a child of the first cause's
    /// span and links the rest, and records the delay since each began.
    pub causes: Causes,
}

impl Config {
    pub fn new(name: &'static str) -> Config {
        Config {
            name,
            full_reconcile_interval: Duration::from_secs(300),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(60),
            batch_size: 1000,
            causes: Causes::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reconciler name {0:?} must match [a-z][a-z0-9-]{{1,30}}")]
    Name(&'static str),
    #[error("reconciler {0}: batch_size must be at least 1")]
    BatchSize(&'static str),
}

/// Whether the target matches the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Ok,
    /// Some objects (or the last prune) failed; each entry is one failure's message.
    Degraded {
        failing: Vec<String>,
    },
}

struct Shared {
    name: &'static str,
    reconciled: tokio::sync::watch::Sender<Revision>,
    health: Mutex<Health>,
    counters: Counters,
    full_now: tokio::sync::Notify,
}

/// A handle to a running reconciler.
pub struct Reconciler<T> {
    shared: Arc<Shared>,
    _object: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for Reconciler<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl<T> Clone for Reconciler<T> {
    fn clone(&self) -> Self {
        Reconciler {
            shared: Arc::clone(&self.shared),
            _object: PhantomData,
        }
    }
}

impl<T: Reconcilable> Reconciler<T> {
    /// Starts reconciling `table` into the target `ops` on the current tokio runtime until
    /// `cancel` fires. The returned task ends then.
    pub fn spawn<O: Operations<T>>(
        db: Db,
        table: Table<T>,
        ops: O,
        config: Config,
        cancel: CancellationToken,
    ) -> Result<(Reconciler<T>, JoinHandle<()>), ConfigError> {
        if !statedb::is_valid_name(config.name) {
            return Err(ConfigError::Name(config.name));
        }
        if config.batch_size == 0 {
            return Err(ConfigError::BatchSize(config.name));
        }
        let shared = Arc::new(Shared {
            name: config.name,
            reconciled: tokio::sync::watch::Sender::new(0),
            health: Mutex::new(Health::Ok),
            counters: Counters::default(),
            full_now: tokio::sync::Notify::new(),
        });
        let runner = Runner {
            changes: table.changes(),
            retries: Retries::new(config.retry_min, config.retry_max),
            applied: HashSet::new(),
            prune_error: None,
            full_pass_done: false,
            db,
            table,
            ops,
            config,
            shared: Arc::clone(&shared),
        };
        let task = tokio::spawn(runner.run(cancel));
        Ok((
            Reconciler {
                shared,
                _object: PhantomData,
            },
            task,
        ))
    }

    pub fn name(&self) -> &'static str {
        self.shared.name
    }

    /// Waits until every change up to `revision` of the table has been processed (applied, or
    /// failed with an error status and a scheduled retry).
    pub async fn wait_reconciled(&self, revision: Revision) {
        let mut rx = self.shared.reconciled.subscribe();
        // Err means the reconciler stopped: nothing more will be reconciled.
        let _ = rx.wait_for(|r| *r >= revision).await;
    }

    /// The highest table revision whose changes have all been processed.
    pub fn reconciled_revision(&self) -> Revision {
        *self.shared.reconciled.borrow()
    }

    pub fn health(&self) -> Health {
        self.shared
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn metrics(&self) -> Metrics {
        self.shared.counters.snapshot()
    }

    /// Asks for a full pass now (once the table is initialized).
    pub fn trigger_full_reconcile(&self) {
        self.shared.full_now.notify_one();
    }
}

struct Runner<T, O> {
    db: Db,
    table: Table<T>,
    ops: O,
    config: Config,
    shared: Arc<Shared>,
    changes: Changes<T>,
    retries: Retries<T>,
    /// Keys the target may hold because an update was attempted: deletes of anything else are
    /// no-ops and are not sent.
    applied: HashSet<Key>,
    /// The last full pass's prune error, until a prune succeeds.
    prune_error: Option<String>,
    /// Whether a full pass has run: the first one follows the initial change round, which has
    /// just applied everything, so it only applies what that round did not.
    full_pass_done: bool,
}

/// A status to write back, if the object is still at the revision it was read at.
struct StatusWrite<T> {
    revision: Revision,
    object: Arc<T>,
    status: Status,
}

fn round_span(
    name: &'static str,
    table: &'static str,
    reason: Reason,
    from: Revision,
    to: Revision,
    parent: Option<tracing::Id>,
) -> tracing::Span {
    tracing::info_span!(
        parent: parent,
        "reconcile",
        reconciler = name,
        table,
        rev.from = cause::field(from),
        rev.to = cause::field(to),
        reason = reason.as_str(),
        deltas.insert = Empty,
        deltas.update = Empty,
        deltas.delete = Empty,
        prunes = Empty,
        errors = Empty,
    )
}

impl<T: Reconcilable, O: Operations<T>> Runner<T, O> {
    async fn run(mut self, cancel: CancellationToken) {
        let mut full_due = Instant::now();
        loop {
            let txn = self.db.read_txn();
            let from = self.changes.position();
            let (changes, watch) = self.changes.next(&txn);
            let batch: Vec<statedb::Change<T>> = changes.collect();
            if !batch.is_empty() {
                let to = txn.revision(&self.table);
                let causes = self.config.causes.take(from, to);
                let span = round_span(
                    self.config.name,
                    self.table.name(),
                    Reason::Change,
                    from,
                    to,
                    cause::parent(&causes),
                );
                cause::link(&span, &causes);
                timed(
                    &Arc::clone(&self.shared),
                    Reason::Change,
                    span.clone(),
                    self.change_round(&txn, batch),
                )
                .instrument(span)
                .await;
                let now = Instant::now();
                for c in &causes {
                    self.shared.counters.record_delay(now - c.since);
                }
            }
            // Health first, so whoever waits on the revision sees the health that goes with it.
            self.publish_health();
            self.shared.reconciled.send_replace(self.changes.position());

            let now = Instant::now();
            if self.retries.next_due().is_some_and(|d| d <= now) {
                let span = round_span(
                    self.config.name,
                    self.table.name(),
                    Reason::Retry,
                    from,
                    txn.revision(&self.table),
                    None,
                );
                timed(
                    &Arc::clone(&self.shared),
                    Reason::Retry,
                    span.clone(),
                    self.retry_round(now),
                )
                .instrument(span)
                .await;
            }

            let (initialized, init_watch) = txn.initialized_watch(&self.table);
            if initialized && full_due <= Instant::now() {
                let rev = txn.revision(&self.table);
                let span = round_span(
                    self.config.name,
                    self.table.name(),
                    Reason::Prune,
                    rev,
                    rev,
                    None,
                );
                let ok = timed(
                    &Arc::clone(&self.shared),
                    Reason::Prune,
                    span.clone(),
                    self.full_round(&txn),
                )
                .instrument(span)
                .await;
                full_due = Instant::now()
                    + if ok {
                        self.config.full_reconcile_interval
                    } else {
                        self.config.retry_min
                    };
            }
            self.publish_health();

            let mut wake = self.retries.next_due();
            if initialized {
                wake = Some(wake.map_or(full_due, |w| w.min(full_due)));
            }
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = watch.fired() => {}
                () = init_watch.fired(), if !initialized => {}
                () = sleep => {}
                () = self.shared.full_now.notified() => full_due = Instant::now(),
            }
        }
    }
}

/// Runs one round, recording its figures in the span and the metrics.
async fn timed<R>(
    shared: &Shared,
    reason: Reason,
    span: tracing::Span,
    round: impl std::future::Future<Output = (RoundStats, R)>,
) -> R {
    let started = Instant::now();
    let (stats, out) = round.await;
    span.record("deltas.insert", cause::field(stats.inserts));
    span.record("deltas.update", cause::field(stats.updates));
    span.record("deltas.delete", cause::field(stats.deletes));
    span.record("prunes", cause::field(stats.prunes));
    span.record("errors", cause::field(stats.errors));
    shared.counters.record(reason, &stats, started.elapsed());
    out
}

impl<T: Reconcilable, O: Operations<T>> Runner<T, O> {
    async fn change_round(
        &mut self,
        txn: &ReadTxn,
        batch: Vec<statedb::Change<T>>,
    ) -> (RoundStats, ()) {
        let mut stats = RoundStats::default();
        let mut updates: Vec<(Revision, Arc<T>, Key)> = Vec::new();
        let mut deletes: Vec<(Revision, Arc<T>, Key)> = Vec::new();
        for change in batch {
            // Done and Error are this reconciler's own status writes: nothing to do, and no key
            // to compute (half of a busy stream is these).
            if !change.deleted && change.object.status().kind != StatusKind::Pending {
                continue;
            }
            let key = match self.table.primary_key(&change.object) {
                Ok(k) => k,
                Err(e) => {
                    tracing::error!(error = %e, "object without a primary key");
                    continue;
                }
            };
            // A newer write or a delete supersedes whatever retry was scheduled for the object.
            self.retries.remove(&key);
            if !change.deleted {
                updates.push((change.revision, change.object, key));
            } else if self.applied.contains(&key) {
                deletes.push((change.revision, change.object, key));
            }
            if updates.len() >= self.config.batch_size {
                self.apply_updates(txn, std::mem::take(&mut updates), &mut stats)
                    .await;
            }
        }
        self.apply_updates(txn, updates, &mut stats).await;
        // Every update of the round lands before any delete: a writer replacing entries (an
        // allow-all for the ones it removes) never leaves a gap between them in the target.
        for batch in deletes.chunks(self.config.batch_size.max(1)) {
            self.apply_deletes(txn, batch.to_vec(), &mut stats).await;
        }
        (stats, ())
    }

    async fn apply_updates(
        &mut self,
        txn: &ReadTxn,
        batch: Vec<(Revision, Arc<T>, Key)>,
        stats: &mut RoundStats,
    ) {
        if batch.is_empty() {
            return;
        }
        let pairs: Vec<(Revision, Arc<T>)> =
            batch.iter().map(|(r, o, _)| (*r, Arc::clone(o))).collect();
        let results = self.ops.update_batch(txn, &pairs).await;
        let now = Instant::now();
        let mut writes = Vec::with_capacity(batch.len());
        for ((revision, object, key), result) in batch.into_iter().zip(results) {
            if self.applied.insert(key.clone()) {
                stats.inserts += 1;
            } else {
                stats.updates += 1;
            }
            let status = match result {
                Ok(()) => Status::done(),
                Err(e) => {
                    stats.errors += 1;
                    let msg = error_chain(&e);
                    tracing::warn!(reconciler = self.config.name, error = %msg, "update failed, will retry");
                    self.retries.schedule(key, None, msg.clone(), now);
                    Status::error(msg)
                }
            };
            writes.push(StatusWrite {
                revision,
                object,
                status,
            });
        }
        self.write_statuses(writes);
    }

    async fn apply_deletes(
        &mut self,
        txn: &ReadTxn,
        batch: Vec<(Revision, Arc<T>, Key)>,
        stats: &mut RoundStats,
    ) {
        if batch.is_empty() {
            return;
        }
        let pairs: Vec<(Revision, Arc<T>)> =
            batch.iter().map(|(r, o, _)| (*r, Arc::clone(o))).collect();
        let results = self.ops.delete_batch(txn, &pairs).await;
        let now = Instant::now();
        for ((_, object, key), result) in batch.into_iter().zip(results) {
            stats.deletes += 1;
            match result {
                Ok(()) => {
                    self.applied.remove(&key);
                }
                Err(e) => {
                    stats.errors += 1;
                    let msg = error_chain(&e);
                    tracing::warn!(reconciler = self.config.name, error = %msg, "delete failed, will retry");
                    self.retries.schedule(key, Some(object), msg, now);
                }
            }
        }
    }

    /// Writes statuses back with compare-and-swap: an object rewritten meanwhile keeps the
    /// newer write, whose own change is still to come.
    fn write_statuses(&self, writes: Vec<StatusWrite<T>>) {
        for chunk in writes.chunks(self.config.batch_size) {
            let mut w = self.db.write_txn(&[&self.table]);
            for sw in chunk {
                if sw.object.status() == &sw.status {
                    continue;
                }
                let new = sw.object.with_status(sw.status.clone());
                match w.compare_and_swap(&self.table, sw.revision, new) {
                    Ok(_) | Err(statedb::Error::RevisionMismatch { .. }) => {}
                    Err(e) => {
                        tracing::error!(reconciler = self.config.name, error = %e, "writing status failed")
                    }
                }
            }
            w.commit();
        }
    }

    async fn retry_round(&mut self, now: Instant) -> (RoundStats, ()) {
        let mut stats = RoundStats::default();
        let txn = self.db.read_txn();
        for (key, attempts, deleted) in self.retries.due(now) {
            let entry = self.lookup(&txn, &key);
            match (deleted, entry) {
                // A failed delete whose object is back in the table: the update path owns it.
                (Some(_), Some(_)) => {
                    self.retries.remove(&key);
                }
                (Some(object), None) => {
                    stats.deletes += 1;
                    match self
                        .ops
                        .delete(&txn, txn.revision(&self.table), &object)
                        .await
                    {
                        Ok(()) => {
                            self.retries.remove(&key);
                            self.applied.remove(&key);
                        }
                        Err(e) => {
                            stats.errors += 1;
                            self.retries.schedule(
                                key,
                                Some(object),
                                error_chain(&e),
                                Instant::now(),
                            );
                        }
                    }
                }
                (None, Some((revision, object))) if object.status().kind == StatusKind::Error => {
                    stats.updates += 1;
                    let status = match self.ops.update(&txn, revision, &object).await {
                        Ok(()) => {
                            self.retries.remove(&key);
                            Status::done()
                        }
                        Err(e) => {
                            stats.errors += 1;
                            let msg = error_chain(&e);
                            tracing::warn!(reconciler = self.config.name, attempts, error = %msg, "retry failed");
                            self.retries
                                .schedule(key, None, msg.clone(), Instant::now());
                            Status::error(msg)
                        }
                    };
                    self.write_statuses(vec![StatusWrite {
                        revision,
                        object,
                        status,
                    }]);
                }
                // Gone, or rewritten by a source (pending) or already done: nothing to retry.
                (None, _) => {
                    self.retries.remove(&key);
                }
            }
        }
        (stats, ())
    }

    fn lookup(&self, txn: &ReadTxn, key: &Key) -> Option<(Revision, Arc<T>)> {
        txn.get_by_key(&self.table, key)
            .map(|e| (e.revision, Arc::clone(&e.object)))
    }

    /// Updates every object (repairing what was changed behind our back), then prunes what
    /// the table does not hold. Returns whether it all succeeded.
    async fn full_round(&mut self, txn: &ReadTxn) -> (RoundStats, bool) {
        let mut stats = RoundStats::default();
        let entries: Vec<(Revision, Arc<T>)> = txn
            .all(&self.table)
            .map(|e| (e.revision, Arc::clone(&e.object)))
            .collect();
        // Later passes repair drift in everything; the first only applies what the initial
        // change round did not.
        let to_update: Cow<'_, [(Revision, Arc<T>)]> = if self.full_pass_done {
            Cow::Borrowed(&entries)
        } else {
            Cow::Owned(
                entries
                    .iter()
                    .filter(|(_, o)| {
                        self.table
                            .primary_key(o)
                            .is_ok_and(|k| !self.applied.contains(&k))
                    })
                    .cloned()
                    .collect(),
            )
        };
        self.full_pass_done = true;
        let mut ok = true;
        let now = Instant::now();
        for chunk in to_update.chunks(self.config.batch_size) {
            let results = self.ops.update_batch(txn, chunk).await;
            let mut writes = Vec::new();
            for ((revision, object), result) in chunk.iter().zip(results) {
                let Ok(key) = self.table.primary_key(object) else {
                    continue;
                };
                stats.updates += 1;
                self.applied.insert(key.clone());
                let status = match result {
                    Ok(()) => {
                        self.retries.remove(&key);
                        Status::done()
                    }
                    Err(e) => {
                        ok = false;
                        stats.errors += 1;
                        let msg = error_chain(&e);
                        self.retries.schedule(key, None, msg.clone(), now);
                        Status::error(msg)
                    }
                };
                writes.push(StatusWrite {
                    revision: *revision,
                    object: Arc::clone(object),
                    status,
                });
            }
            self.write_statuses(writes);
        }
        let desired: Vec<Arc<T>> = entries.into_iter().map(|(_, o)| o).collect();
        stats.prunes += 1;
        if let Err(e) = self.ops.prune(txn, &desired).await {
            ok = false;
            stats.errors += 1;
            let msg = error_chain(&e);
            tracing::warn!(reconciler = self.config.name, error = %msg, "prune failed, will retry");
            self.prune_error = Some(msg);
        } else {
            self.prune_error = None;
        }
        (stats, ok)
    }

    fn publish_health(&self) {
        let mut failing: Vec<String> = self
            .retries
            .failing()
            .map(|(_, item)| item.error.clone())
            .chain(self.prune_error.iter().map(|e| format!("prune: {e}")))
            .collect();
        failing.sort();
        let health = if failing.is_empty() {
            Health::Ok
        } else {
            Health::Degraded { failing }
        };
        *self.shared.health.lock().unwrap_or_else(|e| e.into_inner()) = health;
    }
}
