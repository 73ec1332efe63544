//! Histograms that components observe into as events happen.

use std::sync::{Arc, Mutex, PoisonError};

use crate::Collect;
use crate::children::Children;
use crate::text::{Encoder, Histogram as Figures, Kind};

/// Prometheus' default buckets (`prometheus.DefBuckets`), in seconds.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One histogram of a [`HistogramVec`].
#[derive(Clone, Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    state: Arc<Mutex<State>>,
}

#[derive(Clone, Debug, Default)]
struct State {
    /// Per bucket, not cumulative.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            state: Arc::new(Mutex::new(State {
                counts: vec![0; bounds.len()],
                ..State::default()
            })),
        }
    }

    pub fn observe(&self, value: f64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(bucket) = self.bounds.iter().position(|bound| value <= *bound) {
            state.counts[bucket] += 1;
        }
        state.sum += value;
        state.count += 1;
    }

    fn snapshot(&self) -> State {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A histogram family: one [`Histogram`] per combination of label values, created on first use.
#[derive(Clone)]
pub struct HistogramVec {
    inner: Arc<Inner>,
}

struct Inner {
    name: &'static str,
    help: &'static str,
    bounds: &'static [f64],
    histograms: Children<Histogram>,
}

impl HistogramVec {
    pub(crate) fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> HistogramVec {
        HistogramVec {
            inner: Arc::new(Inner {
                name,
                help,
                bounds,
                histograms: Children::new(labels),
            }),
        }
    }

    /// The histogram for these label values, one per label name, in order (missing values are
    /// empty, extra ones ignored).
    pub fn with(&self, values: &[&str]) -> Histogram {
        let bounds = self.inner.bounds;
        self.inner.histograms.get(values, || Histogram::new(bounds))
    }
}

impl Collect for HistogramVec {
    fn collect(&self, out: &mut Encoder) {
        let mut family = out.family(self.inner.name, self.inner.help, Kind::Histogram);
        self.inner.histograms.each(|labels, histogram| {
            let state = histogram.snapshot();
            family.histogram(
                labels,
                Figures {
                    bounds: self.inner.bounds,
                    counts: &state.counts,
                    sum: state.sum,
                    count: state.count,
                },
            );
        });
    }
}
