//! Change streams: every object written or deleted since a consumer last looked.

use std::iter::Peekable;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Revision;
use crate::state::Entry;
use crate::table::Table;
use crate::tree::Range;
use crate::txn::{ReadTxn, Txn};
use crate::watch::Watch;

/// One change: the object as last written, or as it was when deleted.
#[derive(Debug)]
pub struct Change<T> {
    pub object: Arc<T>,
    pub revision: Revision,
    pub deleted: bool,
}

/// An independent consumer of a table's changes. While it lives, deleted objects are kept
/// until it has seen their deletion.
pub struct Changes<T> {
    table: Table<T>,
    seen: Arc<AtomicU64>,
    position: Revision,
}

impl<T: Send + Sync + 'static> Table<T> {
    /// Starts a change stream. Its first batch holds every object in the table.
    pub fn changes(&self) -> Changes<T> {
        let seen = Arc::new(AtomicU64::new(0));
        // Under the table's write lock, so that no transaction decides whether to keep deletes
        // while the consumer is half registered.
        self.meta.lock.acquire();
        self.meta
            .trackers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&seen));
        self.meta.lock.release();
        Changes {
            table: self.clone(),
            seen,
            position: 0,
        }
    }
}

impl<T: Send + Sync + 'static> Changes<T> {
    /// The changes after the previous batch up to `txn`, in revision order, and a watch that
    /// fires when there are more. Calling `next` again declares the previous batch processed.
    pub fn next<'a>(&mut self, txn: &'a ReadTxn) -> (ChangeIter<'a, T>, Watch) {
        let watch = txn.table_watch(&self.table);
        self.seen.store(self.position, Ordering::Release);
        let from = self.position;
        let to = txn.revision(&self.table);
        let state = crate::txn::state_of(txn, &self.table);
        let (start, end) = (Bound::Excluded(&from), Bound::Included(to));
        let iter = ChangeIter {
            live: state.by_revision.range(start, end).peekable(),
            dead: state.graveyard_by_revision.range(start, end).peekable(),
        };
        self.position = self.position.max(to);
        (iter, watch)
    }

    /// The revision up to which changes have been handed out.
    pub fn position(&self) -> Revision {
        self.position
    }
}

/// Live objects and graveyard entries merged by revision.
pub struct ChangeIter<'a, T> {
    live: Peekable<Range<'a, Revision, Entry<T>>>,
    dead: Peekable<Range<'a, Revision, Entry<T>>>,
}

impl<T> Iterator for ChangeIter<'_, T> {
    type Item = Change<T>;

    fn next(&mut self) -> Option<Change<T>> {
        let take_live = match (self.live.peek(), self.dead.peek()) {
            (Some((l, _)), Some((d, _))) => l < d,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return None,
        };
        let (deleted, (_, e)) = if take_live {
            (false, self.live.next()?)
        } else {
            (true, self.dead.next()?)
        };
        Some(Change {
            object: Arc::clone(&e.object),
            revision: e.revision,
            deleted,
        })
    }
}
