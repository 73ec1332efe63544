//! Which watches wait on which parts of which table. Lives under the database's commit lock, so
//! a watch is either registered before a commit (and fired by it) or compared against it.

use std::collections::HashMap;
use std::sync::Weak;

use crate::key::Key;
use crate::watch::{Inner, Watch};

/// The result a watch stands for.
#[derive(Clone, Debug)]
pub(crate) enum Query {
    All,
    Exact(usize, Key),
    Prefix(usize, Key),
    From(usize, Key),
}

impl Query {
    pub(crate) fn index(&self) -> usize {
        match self {
            Query::All => 0,
            Query::Exact(i, _) | Query::Prefix(i, _) | Query::From(i, _) => *i,
        }
    }

    /// Whether a change to `key` of this query's index changes the query's result.
    pub(crate) fn covers(&self, key: &[u8]) -> bool {
        match self {
            Query::All => true,
            Query::Exact(_, k) => key == k.as_bytes(),
            Query::Prefix(_, k) => key.starts_with(k.as_bytes()),
            Query::From(_, k) => key >= k.as_bytes(),
        }
    }
}

#[derive(Default)]
struct IndexWatches {
    exact: HashMap<Key, Vec<Weak<Inner>>>,
    ranges: Vec<(Query, Weak<Inner>)>,
}

impl IndexWatches {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.ranges.is_empty()
    }
}

#[derive(Default)]
pub(crate) struct Registry {
    any: Vec<Weak<Inner>>,
    init: Vec<Weak<Inner>>,
    indexes: Vec<IndexWatches>,
    added_since_sweep: usize,
    live_after_sweep: usize,
}

fn fire_all(ws: &mut Vec<Weak<Inner>>) {
    for w in ws.drain(..) {
        if let Some(w) = w.upgrade() {
            w.fire();
        }
    }
}

fn live(w: &Weak<Inner>) -> bool {
    w.strong_count() > 0
}

impl Registry {
    pub(crate) fn add(&mut self, query: Query, watch: &Watch) {
        let weak = watch.downgrade();
        let index = query.index();
        if self.indexes.len() <= index {
            self.indexes.resize_with(index + 1, IndexWatches::default);
        }
        match query {
            Query::All => self.any.push(weak),
            Query::Exact(_, k) => self.indexes[index].exact.entry(k).or_default().push(weak),
            q @ (Query::Prefix(..) | Query::From(..)) => self.indexes[index].ranges.push((q, weak)),
        }
        self.added_since_sweep += 1;
        if self.added_since_sweep > 1024.max(self.live_after_sweep) {
            self.sweep();
        }
    }

    pub(crate) fn add_init(&mut self, watch: &Watch) {
        self.init.push(watch.downgrade());
    }

    /// Drops registrations whose every handle is gone, so that watches taken and forgotten on
    /// keys that never change do not pile up.
    fn sweep(&mut self) {
        self.any.retain(live);
        self.init.retain(live);
        let mut count = self.any.len() + self.init.len();
        for iw in &mut self.indexes {
            iw.exact.retain(|_, ws| {
                ws.retain(live);
                !ws.is_empty()
            });
            iw.ranges.retain(|(_, w)| live(w));
            count += iw.exact.len() + iw.ranges.len();
        }
        self.live_after_sweep = count;
        self.added_since_sweep = 0;
    }

    pub(crate) fn watches_index(&self, index: usize) -> bool {
        self.indexes.get(index).is_some_and(|iw| !iw.is_empty())
    }

    pub(crate) fn has_any(&self) -> bool {
        !self.any.is_empty()
    }

    pub(crate) fn has_init(&self) -> bool {
        !self.init.is_empty()
    }

    pub(crate) fn fire_key(&mut self, index: usize, key: &[u8]) {
        let Some(iw) = self.indexes.get_mut(index) else {
            return;
        };
        if let Some(mut ws) = iw.exact.remove(key) {
            fire_all(&mut ws);
        }
        iw.ranges.retain(|(q, w)| {
            if q.covers(key) {
                if let Some(w) = w.upgrade() {
                    w.fire();
                }
                false
            } else {
                true
            }
        });
    }

    pub(crate) fn fire_any(&mut self) {
        fire_all(&mut self.any);
    }

    pub(crate) fn fire_init(&mut self) {
        fire_all(&mut self.init);
    }
}
