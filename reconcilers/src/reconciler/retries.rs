//! Objects whose last attempt failed, ordered by when to try again.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use statedb::Key;
use tokio::time::Instant;

pub(crate) struct RetryItem<T> {
    pub(crate) due: Instant,
    seq: u64,
    pub(crate) attempts: u32,
    /// The deleted object, for a failed delete; None for a failed update.
    pub(crate) deleted: Option<Arc<T>>,
    pub(crate) error: String,
}

pub(crate) struct Retries<T> {
    by_key: HashMap<Key, RetryItem<T>>,
    queue: BTreeMap<(Instant, u64), Key>,
    seq: u64,
    min: Duration,
    max: Duration,
}

impl<T> Retries<T> {
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Retries {
            by_key: HashMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            min,
            max,
        }
    }

    /// Exponential backoff: min, 2*min, 4*min, ... capped at max.
    pub(crate) fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    pub(crate) fn schedule(
        &mut self,
        key: Key,
        deleted: Option<Arc<T>>,
        error: String,
        now: Instant,
    ) {
        let attempts = self.remove(&key).map_or(1, |old| old.attempts + 1);
        let due = now + self.backoff(attempts);
        self.seq += 1;
        self.queue.insert((due, self.seq), key.clone());
        self.by_key.insert(
            key,
            RetryItem {
                due,
                seq: self.seq,
                attempts,
                deleted,
                error,
            },
        );
    }

    /// Forgets the key: it succeeded, or a newer change superseded it.
    pub(crate) fn remove(&mut self, key: &Key) -> Option<RetryItem<T>> {
        let item = self.by_key.remove(key)?;
        self.queue.remove(&(item.due, item.seq));
        Some(item)
    }

    /// Takes every item due at `now`, keeping its attempt count for the next schedule.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(Key, u32, Option<Arc<T>>)> {
        let mut out = Vec::new();
        while let Some(entry) = self.queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let key = entry.remove();
            if let Some(item) = self.by_key.get(&key) {
                out.push((key, item.attempts, item.deleted.clone()));
            }
        }
        out
    }

    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|((due, _), _)| *due)
    }

    pub(crate) fn failing(&self) -> impl Iterator<Item = (&Key, &RetryItem<T>)> {
        self.by_key.iter()
    }
}
