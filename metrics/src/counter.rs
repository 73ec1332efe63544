//! Counters that components increment as events happen.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Collect;
use crate::children::Children;
use crate::text::{Encoder, Kind};

/// One counter of a [`CounterVec`]: keep it where the events happen, so counting is one atomic
/// add without a label lookup.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A counter family: one [`Counter`] per combination of label values, created on first use.
#[derive(Clone)]
pub struct CounterVec {
    inner: Arc<Inner>,
}

struct Inner {
    name: &'static str,
    help: &'static str,
    counters: Children<Counter>,
}

impl CounterVec {
    pub(crate) fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> CounterVec {
        CounterVec {
            inner: Arc::new(Inner {
                name,
                help,
                counters: Children::new(labels),
            }),
        }
    }

    /// The counter for these label values, one per label name, in order (missing values are
    /// empty, extra ones ignored).
    pub fn with(&self, values: &[&str]) -> Counter {
        self.inner.counters.get(values, Counter::default)
    }
}

impl Collect for CounterVec {
    fn collect(&self, out: &mut Encoder) {
        let mut family = out.family(self.inner.name, self.inner.help, Kind::Counter);
        self.inner.counters.each(|labels, counter| {
            #[expect(
                clippy::cast_precision_loss,
                reason = "the format's values are floats; counts below 2^53 are exact"
            )]
            family.sample(labels, counter.get() as f64);
        });
    }
}
