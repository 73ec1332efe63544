//! A reconciler's counters; the agent renders them for Prometheus.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the round duration histogram buckets, in seconds.
pub const ROUND_BUCKETS: [f64; 12] = [
    1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 0.1, 0.5, 1.0, 5.0,
];

/// Upper bounds of the implementation delay histogram buckets, in seconds.
pub const DELAY_BUCKETS: [f64; 13] = [
    1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why a round ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Change,
    Retry,
    Prune,
}

impl Reason {
    pub const ALL: [Reason; 3] = [Reason::Change, Reason::Retry, Reason::Prune];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Change => "change",
            Reason::Retry => "retry",
            Reason::Prune => "prune",
        }
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    rounds: [AtomicU64; 3],
    updates: AtomicU64,
    deletes: AtomicU64,
    prunes: AtomicU64,
    errors: AtomicU64,
    duration_nanos: AtomicU64,
    buckets: [AtomicU64; ROUND_BUCKETS.len()],
    delays: AtomicU64,
    delay_nanos: AtomicU64,
    delay_buckets: [AtomicU64; DELAY_BUCKETS.len()],
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RoundStats {
    pub(crate) inserts: u64,
    pub(crate) updates: u64,
    pub(crate) deletes: u64,
    pub(crate) prunes: u64,
    pub(crate) errors: u64,
}

impl Counters {
    pub(crate) fn record(&self, reason: Reason, stats: &RoundStats, took: Duration) {
        let r = Reason::ALL.iter().position(|x| *x == reason).unwrap_or(0);
        self.rounds[r].fetch_add(1, Ordering::Relaxed);
        self.updates
            .fetch_add(stats.inserts + stats.updates, Ordering::Relaxed);
        self.deletes.fetch_add(stats.deletes, Ordering::Relaxed);
        self.prunes.fetch_add(stats.prunes, Ordering::Relaxed);
        self.errors.fetch_add(stats.errors, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.duration_nanos.fetch_add(nanos, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        if let Some(i) = ROUND_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One change implemented `delay` after it began.
    pub(crate) fn record_delay(&self, delay: Duration) {
        self.delays.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX);
        self.delay_nanos.fetch_add(nanos, Ordering::Relaxed);
        let secs = delay.as_secs_f64();
        if let Some(i) = DELAY_BUCKETS.iter().position(|b| secs <= *b) {
            self.delay_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> Metrics {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut buckets = [0; ROUND_BUCKETS.len()];
        for (o, b) in buckets.iter_mut().zip(&self.buckets) {
            *o = load(b);
        }
        Metrics {
            rounds: [
                load(&self.rounds[0]),
                load(&self.rounds[1]),
                load(&self.rounds[2]),
            ],
            updates: load(&self.updates),
            deletes: load(&self.deletes),
            prunes: load(&self.prunes),
            errors: load(&self.errors),
            duration_total: Duration::from_nanos(load(&self.duration_nanos)),
            duration_buckets: buckets,
            delays: load(&self.delays),
            delay_total: Duration::from_nanos(load(&self.delay_nanos)),
            delay_buckets: std::array::from_fn(|i| load(&self.delay_buckets[i])),
        }
    }
}

/// A reconciler's figures at one moment.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Rounds per [`Reason::ALL`] entry.
    pub rounds: [u64; 3],
    /// Update operations attempted (inserts and updates).
    pub updates: u64,
    pub deletes: u64,
    pub prunes: u64,
    pub errors: u64,
    pub duration_total: Duration,
    /// Rounds per bucket of [`ROUND_BUCKETS`] (not cumulative).
    pub duration_buckets: [u64; ROUND_BUCKETS.len()],
    /// Changes with a cause this reconciler implemented, and how long after they began.
    pub delays: u64,
    pub delay_total: Duration,
    /// Changes per bucket of [`DELAY_BUCKETS`] (not cumulative).
    pub delay_buckets: [u64; DELAY_BUCKETS.len()],
}
