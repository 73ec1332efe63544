//! Why a table changed, handed from the writer to the reader of that change: the span the write
//! happened in and when the change that led to it began. Readers parent their round's span on
//! the first cause and link the others, so a trace follows one change from the API request
//! through the derivation to the map writes; the time since the change began is the delay
//! until it was implemented.
//!
//! Causes are kept per table revision, for one reader per table. They are bounded: with no
//! reader, the oldest are dropped rather than kept forever.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use statedb::Revision;
use tokio::time::Instant;

/// Causes kept per table when nobody takes them.
const MAX_CAUSES: usize = 1024;

/// One write's cause.
#[derive(Clone, Debug)]
pub struct Cause {
    /// Disabled when nothing records spans; the cause still carries `since`.
    pub span: tracing::Span,
    /// When the change this write implements began (for the first writer, its commit).
    pub since: Instant,
}

impl Cause {
    /// The current span, starting now.
    pub fn here() -> Cause {
        Cause {
            span: tracing::Span::current(),
            since: Instant::now(),
        }
    }
}

/// The causes of one table's revisions.
#[derive(Clone, Default)]
pub struct Causes {
    by_revision: Arc<Mutex<BTreeMap<Revision, Cause>>>,
}

impl std::fmt::Debug for Causes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Causes")
            .field("pending", &self.lock().len())
            .finish()
    }
}

impl Causes {
    /// The write committed (or about to commit) as `revision` had `cause`.
    pub fn record(&self, revision: Revision, cause: Cause) {
        let mut by_revision = self.lock();
        by_revision.insert(revision, cause);
        while by_revision.len() > MAX_CAUSES {
            by_revision.pop_first();
        }
    }

    /// The causes of revisions after `after` up to `upto`, oldest first; everything up to
    /// `upto` is forgotten.
    pub fn take(&self, after: Revision, upto: Revision) -> Vec<Cause> {
        let mut by_revision = self.lock();
        let rest = by_revision.split_off(&upto.saturating_add(1));
        let taken = std::mem::replace(&mut *by_revision, rest);
        taken
            .into_iter()
            .filter(|(revision, _)| *revision > after)
            .map(|(_, cause)| cause)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Revision, Cause>> {
        self.by_revision
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The span a round caused by `causes` is a child of: the first cause's.
pub fn parent(causes: &[Cause]) -> Option<tracing::Id> {
    causes.iter().find_map(|c| c.span.id())
}

/// Links `span` to every cause but its parent (an exporter turns these into span links).
pub fn link(span: &tracing::Span, causes: &[Cause]) {
    let parent = parent(causes);
    for cause in causes {
        if let Some(id) = cause.span.id()
            && Some(&id) != parent.as_ref()
        {
            span.follows_from(id);
        }
    }
}

/// The earliest start among `causes`: what a write they lead to implements.
pub fn since(causes: &[Cause]) -> Option<Instant> {
    causes.iter().map(|c| c.since).min()
}

/// A count or revision as a span field: exporters keep i64 fields as numbers, while tracing
/// hands them u64 and usize as text.
pub fn field<N: TryInto<i64>>(n: N) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}
