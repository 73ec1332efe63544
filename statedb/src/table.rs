//! Table handles and the type-erased view the database keeps of each table.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};

use crate::Revision;
use crate::index::{Index, TableSchema};
use crate::metrics::Counters;
use crate::state::{TableState, secondary_part};

/// A handle to a registered table of `T`s. Cheap to clone; all reads and writes go through a
/// transaction.
pub struct Table<T> {
    pub(crate) meta: Arc<TableMeta>,
    pub(crate) schema: Arc<TableSchema<T>>,
}

impl<T> Clone for Table<T> {
    fn clone(&self) -> Self {
        Table {
            meta: Arc::clone(&self.meta),
            schema: Arc::clone(&self.schema),
        }
    }
}

impl<T: 'static> Table<T> {
    pub fn name(&self) -> &'static str {
        self.meta.name
    }

    /// The position of `index` in this table's schema.
    ///
    /// # Panics
    /// If the index was not declared in the schema: that is a bug in the caller, not input.
    #[inline]
    pub(crate) fn position<K>(&self, index: &Index<T, K>) -> usize {
        if same_name(self.schema.indexes[0].name, index.name) {
            return 0;
        }
        self.schema
            .position(index.name)
            .expect("invariant: queries use only indexes declared in the table schema")
    }

    /// The object's key in the primary index.
    pub fn primary_key(&self, object: &T) -> Result<crate::Key, crate::Error> {
        let mut keys = Vec::with_capacity(1);
        (self.schema.indexes[0].keys)(object, &mut keys);
        match keys.len() {
            1 => Ok(keys.swap_remove(0)),
            count => Err(crate::Error::PrimaryKeyCount {
                table: self.schema.name,
                count,
            }),
        }
    }

    pub(crate) fn unique(&self, pos: usize) -> bool {
        self.schema.indexes[pos].unique
    }
}

/// Index names are short: a byte loop the compiler inlines beats a call to `memcmp`, and
/// every query compares one. (Each use of an index constant may carry its own copy of the
/// name, so comparing pointers would not settle it.)
#[inline(always)]
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

impl<T> std::fmt::Debug for Table<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({})", self.meta.name)
    }
}

/// Anything that names a table, for locking a set of tables of different types together.
pub trait TableRef {
    #[doc(hidden)]
    fn meta(&self) -> &Arc<TableMeta>;
}

impl<T> TableRef for Table<T> {
    fn meta(&self) -> &Arc<TableMeta> {
        &self.meta
    }
}

/// What the database knows of a table apart from its contents.
#[doc(hidden)]
pub struct TableMeta {
    pub(crate) id: usize,
    pub(crate) db_id: u64,
    pub(crate) name: &'static str,
    pub(crate) indexes: usize,
    pub(crate) lock: TableLock,
    pub(crate) trackers: Mutex<Vec<Weak<AtomicU64>>>,
    pub(crate) counters: Counters,
    pub(crate) ops: Box<dyn TableOps>,
}

impl TableMeta {
    /// Whether deletes must go to the graveyard: some change stream may not have seen them.
    pub(crate) fn has_trackers(&self) -> bool {
        let mut ts = self.trackers.lock().unwrap_or_else(|e| e.into_inner());
        ts.retain(|t| t.strong_count() > 0);
        !ts.is_empty()
    }

    /// The highest revision every live change stream has seen, or None if there is none.
    pub(crate) fn low_watermark(&self) -> Option<Revision> {
        let mut ts = self.trackers.lock().unwrap_or_else(|e| e.into_inner());
        ts.retain(|t| t.strong_count() > 0);
        ts.iter()
            .filter_map(Weak::upgrade)
            .map(|t| t.load(Ordering::Acquire))
            .min()
    }

    pub(crate) fn tracker_count(&self) -> usize {
        let ts = self.trackers.lock().unwrap_or_else(|e| e.into_inner());
        ts.iter().filter(|t| t.strong_count() > 0).count()
    }
}

/// One writer per table at a time. A plain flag and condition variable rather than a mutex
/// guard, because the write transaction that holds it is an owned value moved between
/// functions and tasks.
#[derive(Default)]
pub(crate) struct TableLock {
    state: Mutex<LockState>,
    cond: Condvar,
}

#[derive(Default)]
struct LockState {
    locked: bool,
    /// Counted so that releasing an uncontended lock skips the wake-up, which is a syscall.
    waiters: usize,
}

impl TableLock {
    pub(crate) fn acquire(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while state.locked {
            state.waiters += 1;
            state = self.cond.wait(state).unwrap_or_else(|e| e.into_inner());
            state.waiters -= 1;
        }
        state.locked = true;
    }

    pub(crate) fn release(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.locked = false;
        if state.waiters > 0 {
            self.cond.notify_one();
        }
    }
}

/// A table's contents, type-erased, as a snapshot holds it.
pub(crate) trait AnyState: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn revision(&self) -> Revision;
    fn len(&self) -> usize;
    fn graveyard_len(&self) -> usize;
    fn initialized(&self) -> bool;
}

impl<T: Send + Sync + 'static> AnyState for TableState<T> {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn revision(&self) -> Revision {
        self.revision
    }
    fn len(&self) -> usize {
        TableState::len(self)
    }
    fn graveyard_len(&self) -> usize {
        self.graveyard.len()
    }
    fn initialized(&self) -> bool {
        self.pending_initializers.is_empty()
    }
}

/// The generic operations the database needs on a table whose type it does not know.
pub(crate) trait TableOps: Send + Sync {
    /// Calls `f` with every key of `index` whose entries differ between the two states, until
    /// `f` returns false.
    fn diff(&self, old: &dyn Any, new: &dyn Any, index: usize, f: &mut dyn FnMut(&[u8]) -> bool);
    fn primary_changed(&self, old: &dyn Any, new: &dyn Any) -> bool;
    fn collect_garbage(&self, state: &mut dyn Any, seen: Option<Revision>);
    fn seal_state(&self, state: Box<dyn Any + Send + Sync>) -> Arc<dyn AnyState>;
}

fn typed<T: 'static>(state: &dyn Any) -> &TableState<T> {
    state
        .downcast_ref::<TableState<T>>()
        .expect("invariant: a table's state has the table's type")
}

impl<T: Send + Sync + 'static> TableOps for Arc<TableSchema<T>> {
    fn diff(&self, old: &dyn Any, new: &dyn Any, index: usize, f: &mut dyn FnMut(&[u8]) -> bool) {
        let (old, new) = (typed::<T>(old), typed::<T>(new));
        let unique = self.indexes[index].unique;
        let mut last: Option<&[u8]> = None;
        for item in old.indexes[index].diff(&new.indexes[index]) {
            let k = item.key().as_bytes();
            let k = if unique { k } else { secondary_part(k) };
            if last == Some(k) {
                continue;
            }
            last = Some(k);
            if !f(k) {
                return;
            }
        }
    }

    fn primary_changed(&self, old: &dyn Any, new: &dyn Any) -> bool {
        let (old, new) = (typed::<T>(old), typed::<T>(new));
        old.indexes[0].diff(&new.indexes[0]).next().is_some()
    }

    fn collect_garbage(&self, state: &mut dyn Any, seen: Option<Revision>) {
        if let Some(state) = state.downcast_mut::<TableState<T>>() {
            state.collect_garbage(self.as_ref(), seen);
        }
    }

    fn seal_state(&self, state: Box<dyn Any + Send + Sync>) -> Arc<dyn AnyState> {
        match state.downcast::<TableState<T>>() {
            Ok(s) => Arc::new(*s),
            Err(_) => unreachable!("invariant: a table's state has the table's type"),
        }
    }
}
