//! Prometheus metrics in the text exposition format 0.0.4, which every Prometheus scrapes.
//!
//! The agent owns one [`Registry`] and serves [`Registry::render`] on `/metrics`. Two kinds of
//! metrics meet there: figures other components already keep (table sizes, reconciler rounds)
//! are read at scrape time by a [`Collect`] implementation, and events a component counts as
//! they happen (flows, drops) go to [`CounterVec`]s and [`HistogramVec`]s it asked the registry for at startup, so
//! that component needs to know nothing about HTTP or the format.

mod children;
mod counter;
mod histogram;
#[cfg(test)]
mod tests;
mod text;

use std::sync::{Arc, Mutex, PoisonError};

pub use counter::{Counter, CounterVec};
pub use histogram::{DEFAULT_BUCKETS, HistogramVec};
pub use text::{Encoder, Family, Histogram, Kind};

/// The `Content-Type` of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Writes metric families at scrape time.
pub trait Collect: Send + Sync {
    /// Each family once, all its samples together (the format requires it).
    fn collect(&self, out: &mut Encoder);
}

/// Everything `/metrics` shows, in registration order.
#[derive(Default)]
pub struct Registry {
    collectors: Mutex<Vec<Arc<dyn Collect>>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn register(&self, collector: Arc<dyn Collect>) {
        self.collectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(collector);
    }

    /// A counter family (`name` ends in `_total`) with these label names, registered here.
    pub fn counter_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
    ) -> CounterVec {
        let counters = CounterVec::new(name, help, labels);
        self.register(Arc::new(counters.clone()));
        counters
    }

    /// A histogram family with these label names and bucket bounds, registered here.
    pub fn histogram_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        bounds: &'static [f64],
    ) -> HistogramVec {
        let histograms = HistogramVec::new(name, help, labels, bounds);
        self.register(Arc::new(histograms.clone()));
        histograms
    }

    /// The exposition of every registered collector.
    pub fn render(&self) -> String {
        let collectors = self
            .collectors
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut out = Encoder::default();
        for collector in collectors {
            collector.collect(&mut out);
        }
        out.finish()
    }
}
