//! Counters a table keeps about itself; rendering them (Prometheus) is the binary's job.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the commit duration histogram buckets, in seconds.
pub const COMMIT_BUCKETS: [f64; 10] = [1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 1e-1];

#[derive(Debug, Default)]
pub(crate) struct Counters {
    commits: AtomicU64,
    commit_nanos: AtomicU64,
    buckets: [AtomicU64; COMMIT_BUCKETS.len()],
}

impl Counters {
    pub(crate) fn record_commit(&self, took: Duration) {
        self.commits.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.commit_nanos.fetch_add(nanos, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        if let Some(i) = COMMIT_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> (u64, Duration, [u64; COMMIT_BUCKETS.len()]) {
        let mut b = [0; COMMIT_BUCKETS.len()];
        for (out, c) in b.iter_mut().zip(&self.buckets) {
            *out = c.load(Ordering::Relaxed);
        }
        (
            self.commits.load(Ordering::Relaxed),
            Duration::from_nanos(self.commit_nanos.load(Ordering::Relaxed)),
            b,
        )
    }
}

/// A table's figures at one moment.
#[derive(Clone, Debug)]
pub struct TableMetrics {
    pub table: &'static str,
    pub objects: usize,
    pub revision: crate::Revision,
    pub graveyard_objects: usize,
    pub delete_trackers: usize,
    pub initialized: bool,
    pub commits: u64,
    pub commit_duration_total: Duration,
    /// Commits per bucket of [`COMMIT_BUCKETS`] (not cumulative); slower ones are only in the
    /// total.
    pub commit_duration_buckets: [u64; COMMIT_BUCKETS.len()],
}
