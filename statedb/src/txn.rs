//! Read and write transactions, and the queries both offer.

use std::any::Any;
use std::borrow::Borrow;
use std::sync::Arc;

use crate::Revision;
use crate::db::{Db, Root};
use crate::error::Error;
use crate::index::Index;
use crate::key::{IndexKey, Key, lookup};
use crate::registry::{Query, Registry};
use crate::state::{Entry, Expect, Scratch, TableState};
use crate::table::{AnyState, Table, TableMeta};
use crate::watch::Watch;

mod sealed {
    pub trait Sealed {
        fn state_any(&self, meta: &crate::table::TableMeta) -> &dyn std::any::Any;
    }
}

pub(crate) fn state_of<'a, T: Send + Sync + 'static>(
    txn: &'a (impl sealed::Sealed + ?Sized),
    table: &Table<T>,
) -> &'a TableState<T> {
    txn.state_any(&table.meta)
        .downcast_ref::<TableState<T>>()
        .expect("invariant: a table's state has the table's type")
}

/// Queries over a consistent view of the tables: a [`ReadTxn`] snapshot, or a [`WriteTxn`]
/// including its own uncommitted writes.
pub trait Txn: sealed::Sealed {
    /// The object whose `index` key is `key` (the first one, for a non-unique index).
    fn get<'a, T, K, Q>(
        &'a self,
        table: &Table<T>,
        index: &Index<T, K>,
        key: &Q,
    ) -> Option<&'a Entry<T>>
    where
        T: Send + Sync + 'static,
        K: Borrow<Q>,
        Q: IndexKey + ?Sized,
    {
        let pos = table.position(index);
        let st = state_of(self, table);
        if table.unique(pos) {
            let index = &st.indexes[pos];
            lookup(
                key,
                |head, k| index.get_with_head(head, k),
                |head, k| index.get_with_head(head, k),
            )
        } else {
            st.list(false, pos, key.to_key()).next()
        }
    }

    /// The object with primary key `key`, as given by [`Table::primary_key`].
    fn get_by_key<'a, T: Send + Sync + 'static>(
        &'a self,
        table: &Table<T>,
        key: &Key,
    ) -> Option<&'a Entry<T>> {
        state_of(self, table).indexes[0].get(key)
    }

    /// Every object whose `index` key is `key`.
    fn list<'a, T, K, Q>(
        &'a self,
        table: &Table<T>,
        index: &Index<T, K>,
        key: &Q,
    ) -> Box<dyn Iterator<Item = &'a Entry<T>> + 'a>
    where
        T: Send + Sync + 'static,
        K: Borrow<Q>,
        Q: IndexKey + ?Sized,
    {
        let pos = table.position(index);
        state_of(self, table).list(table.unique(pos), pos, key.to_key())
    }

    /// Every object with an `index` key starting with the encoding of `prefix`.
    fn prefix<'a, T, K, Q>(
        &'a self,
        table: &Table<T>,
        index: &Index<T, K>,
        prefix: &Q,
    ) -> Box<dyn Iterator<Item = &'a Entry<T>> + 'a>
    where
        T: Send + Sync + 'static,
        K: Borrow<Q>,
        Q: IndexKey + ?Sized,
    {
        let pos = table.position(index);
        state_of(self, table).prefix(table.unique(pos), pos, prefix.to_key())
    }

    /// Every object with an `index` key at least `from`.
    fn lower_bound<'a, T, K, Q>(
        &'a self,
        table: &Table<T>,
        index: &Index<T, K>,
        from: &Q,
    ) -> Box<dyn Iterator<Item = &'a Entry<T>> + 'a>
    where
        T: Send + Sync + 'static,
        K: Borrow<Q>,
        Q: IndexKey + ?Sized,
    {
        let pos = table.position(index);
        state_of(self, table).lower_bound(table.unique(pos), pos, from.to_key())
    }

    /// Every object, in primary key order.
    fn all<'a, T: Send + Sync + 'static>(
        &'a self,
        table: &Table<T>,
    ) -> impl DoubleEndedIterator<Item = &'a Entry<T>> + ExactSizeIterator + 'a {
        state_of(self, table).indexes[0].values()
    }

    /// The revision of the table's last write.
    fn revision<T: Send + Sync + 'static>(&self, table: &Table<T>) -> Revision {
        state_of(self, table).revision
    }

    fn len<T: Send + Sync + 'static>(&self, table: &Table<T>) -> usize {
        state_of(self, table).len()
    }

    /// True once every registered initializer of the table has completed.
    fn initialized<T: Send + Sync + 'static>(&self, table: &Table<T>) -> bool {
        state_of(self, table).pending_initializers.is_empty()
    }

    fn pending_initializers<T: Send + Sync + 'static>(&self, table: &Table<T>) -> Vec<String> {
        state_of(self, table)
            .pending_initializers
            .iter()
            .map(|s| s.to_string())
            .collect()
    }
}

/// A consistent, immutable snapshot of every table. Taking one never blocks; holding one keeps
/// what it sees alive but never blocks a writer.
#[derive(Clone)]
pub struct ReadTxn {
    pub(crate) db: Db,
    pub(crate) root: Arc<Root>,
}

impl sealed::Sealed for ReadTxn {
    fn state_any(&self, meta: &TableMeta) -> &dyn Any {
        assert_eq!(
            meta.db_id, self.db.inner.id,
            "invariant: table {} belongs to another database",
            meta.name
        );
        self.root.tables[meta.id].as_any()
    }
}
impl Txn for ReadTxn {}

fn same_state(a: &Arc<dyn AnyState>, b: &Arc<dyn AnyState>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}

impl ReadTxn {
    /// A watch that fires when the result of `query` on `meta`'s table differs from what this
    /// snapshot holds: at once if a commit since the snapshot already changed it.
    fn watch(&self, meta: &TableMeta, query: Query) -> Watch {
        let mut commit = self.db.lock_commit();
        let current = self.db.inner.root.load();
        let then = &self.root.tables[meta.id];
        let now = &current.tables[meta.id];
        if !same_state(then, now) {
            let changed = match &query {
                Query::All => meta.ops.primary_changed(then.as_any(), now.as_any()),
                q => {
                    let mut hit = false;
                    meta.ops
                        .diff(then.as_any(), now.as_any(), q.index(), &mut |k| {
                            hit = q.covers(k);
                            !hit
                        });
                    hit
                }
            };
            if changed {
                return Watch::fired_already();
            }
        }
        let watch = Watch::new();
        commit.registries[meta.id].add(query, &watch);
        watch
    }

    pub fn get_watch<'a, T, K, Q>(
        &'a self,
        table: &Table<T>,
        index: &Index<T, K>,
        key: &Q,
    ) -> (Option<&'a Entry<T>>, Watch)
    where
        T: Send + Sync + 'static,
        K: Borrow<Q>,
        Q: IndexKey + ?Sized,
    {
        let watch = self.watch(
            &table.meta,
            Query::Exact(table.position(index), key.to_key()),
        );
        (self.get(table, index, key), watch)
    }

    pub fn list_watch<'a, T, K, Q>(
        &'a self,
        table: &Table<T>,
        index: &Index<T, K>,
        key: &Q,
    ) -> (Box<dyn Iterator<Item = &'a Entry<T>> + 'a>, Watch)
    where
        T: Send + Sync + 'static,
        K: Borrow<Q>,
        Q: IndexKey + ?Sized,
    {
        let watch = self.watch(
            &table.meta,
            Query::Exact(table.position(index), key.to_key()),
        );
        (self.list(table, index, key), watch)
    }

    pub fn prefix_watch<'a, T, K, Q>(
        &'a self,
        table: &Table<T>,
        index: &Index<T, K>,
        prefix: &Q,
    ) -> (Box<dyn Iterator<Item = &'a Entry<T>> + 'a>, Watch)
    where
        T: Send + Sync + 'static,
        K: Borrow<Q>,
        Q: IndexKey + ?Sized,
    {
        let watch = self.watch(
            &table.meta,
            Query::Prefix(table.position(index), prefix.to_key()),
        );
        (self.prefix(table, index, prefix), watch)
    }

    pub fn lower_bound_watch<'a, T, K, Q>(
        &'a self,
        table: &Table<T>,
        index: &Index<T, K>,
        from: &Q,
    ) -> (Box<dyn Iterator<Item = &'a Entry<T>> + 'a>, Watch)
    where
        T: Send + Sync + 'static,
        K: Borrow<Q>,
        Q: IndexKey + ?Sized,
    {
        let watch = self.watch(
            &table.meta,
            Query::From(table.position(index), from.to_key()),
        );
        (self.lower_bound(table, index, from), watch)
    }

    pub fn all_watch<'a, T: Send + Sync + 'static>(
        &'a self,
        table: &Table<T>,
    ) -> (
        impl DoubleEndedIterator<Item = &'a Entry<T>> + ExactSizeIterator + 'a,
        Watch,
    ) {
        (self.all(table), self.table_watch(table))
    }

    /// Fires when any object of the table changes after this snapshot.
    pub fn table_watch<T: Send + Sync + 'static>(&self, table: &Table<T>) -> Watch {
        self.watch(&table.meta, Query::All)
    }

    /// Whether the table is initialized, and a watch that fires once it is.
    pub fn initialized_watch<T: Send + Sync + 'static>(&self, table: &Table<T>) -> (bool, Watch) {
        if self.initialized(table) {
            return (true, Watch::fired_already());
        }
        let mut commit = self.db.lock_commit();
        if self.db.inner.root.load().tables[table.meta.id].initialized() {
            return (false, Watch::fired_already());
        }
        let watch = Watch::new();
        commit.registries[table.meta.id].add_init(&watch);
        (false, watch)
    }
}

/// Marks one source's first full sync of a table. The table is initialized once every
/// initializer registered for it has been completed.
#[derive(Debug)]
#[must_use = "an initializer that is never completed keeps its table uninitialized"]
pub struct Initializer {
    table_id: usize,
    name: Arc<str>,
}

struct Touched {
    meta: Arc<TableMeta>,
    state: Box<dyn Any + Send + Sync>,
    track_deletes: bool,
}

/// A write transaction over the tables it locked. Its writes become visible together at
/// [`WriteTxn::commit`]; dropping it (or [`WriteTxn::abort`]) discards them.
pub struct WriteTxn {
    db: Db,
    base: Arc<Root>,
    locked: Vec<Arc<TableMeta>>,
    touched: Vec<Touched>,
    scratch: Scratch,
}

impl sealed::Sealed for WriteTxn {
    fn state_any(&self, meta: &TableMeta) -> &dyn Any {
        assert_eq!(
            meta.db_id, self.db.inner.id,
            "invariant: table {} belongs to another database",
            meta.name
        );
        match self.touched.iter().find(|t| t.meta.id == meta.id) {
            Some(t) => t.state.as_ref(),
            None => self.base.tables[meta.id].as_any(),
        }
    }
}
impl Txn for WriteTxn {}

impl WriteTxn {
    pub(crate) fn new(db: Db, base: Arc<Root>, locked: Vec<Arc<TableMeta>>) -> WriteTxn {
        WriteTxn {
            db,
            base,
            locked,
            touched: Vec::new(),
            scratch: Scratch::default(),
        }
    }

    fn state_mut<T: Send + Sync + 'static>(
        &mut self,
        table: &Table<T>,
    ) -> Result<(&mut TableState<T>, bool, &mut Scratch), Error> {
        let id = table.meta.id;
        let i = match self.touched.iter().position(|t| t.meta.id == id) {
            Some(i) => i,
            None => {
                if !self.locked.iter().any(|m| m.id == id) {
                    return Err(Error::TableNotLocked {
                        table: table.meta.name,
                    });
                }
                let base = self.base.tables[id]
                    .as_any()
                    .downcast_ref::<TableState<T>>()
                    .expect("invariant: a table's state has the table's type")
                    .clone();
                self.touched.push(Touched {
                    meta: Arc::clone(&table.meta),
                    state: Box::new(base),
                    track_deletes: table.meta.has_trackers(),
                });
                self.touched.len() - 1
            }
        };
        let t = &mut self.touched[i];
        let st = t
            .state
            .downcast_mut::<TableState<T>>()
            .expect("invariant: a table's state has the table's type");
        Ok((st, t.track_deletes, &mut self.scratch))
    }

    /// Inserts or replaces the object with the same primary key; returns the replaced one.
    pub fn insert<T: Send + Sync + 'static>(
        &mut self,
        table: &Table<T>,
        object: impl Into<Arc<T>>,
    ) -> Result<Option<Entry<T>>, Error> {
        let schema = Arc::clone(&table.schema);
        let (st, _, scratch) = self.state_mut(table)?;
        st.insert(&schema, object.into(), Expect::Any, scratch)
    }

    /// Replaces the stored object only if it is still at `revision`.
    pub fn compare_and_swap<T: Send + Sync + 'static>(
        &mut self,
        table: &Table<T>,
        revision: Revision,
        object: impl Into<Arc<T>>,
    ) -> Result<Option<Entry<T>>, Error> {
        let schema = Arc::clone(&table.schema);
        let (st, _, scratch) = self.state_mut(table)?;
        st.insert(&schema, object.into(), Expect::Revision(revision), scratch)
    }

    /// Deletes the object with the same primary key as `object`; returns it if it existed.
    pub fn delete<T: Send + Sync + 'static>(
        &mut self,
        table: &Table<T>,
        object: &T,
    ) -> Result<Option<Entry<T>>, Error> {
        let schema = Arc::clone(&table.schema);
        let (st, track, scratch) = self.state_mut(table)?;
        st.delete(&schema, object, Expect::Any, track, scratch)
    }

    /// Deletes the object only if it is still at `revision`.
    pub fn compare_and_delete<T: Send + Sync + 'static>(
        &mut self,
        table: &Table<T>,
        revision: Revision,
        object: &T,
    ) -> Result<Option<Entry<T>>, Error> {
        let schema = Arc::clone(&table.schema);
        let (st, track, scratch) = self.state_mut(table)?;
        st.delete(&schema, object, Expect::Revision(revision), track, scratch)
    }

    /// Deletes every object of the table; returns how many there were.
    pub fn delete_all<T: Send + Sync + 'static>(
        &mut self,
        table: &Table<T>,
    ) -> Result<usize, Error> {
        let schema = Arc::clone(&table.schema);
        let (st, track, scratch) = self.state_mut(table)?;
        let keys: Vec<Key> = st.indexes[0].keys().cloned().collect();
        for k in &keys {
            st.delete_key(&schema, k.clone(), Expect::Any, track, scratch)?;
        }
        Ok(keys.len())
    }

    /// Registers a source that has yet to finish its first full sync of the table.
    pub fn register_initializer<T: Send + Sync + 'static>(
        &mut self,
        table: &Table<T>,
        name: &str,
    ) -> Result<Initializer, Error> {
        let (st, ..) = self.state_mut(table)?;
        let name: Arc<str> = Arc::from(name);
        let mut pending: Vec<Arc<str>> = st.pending_initializers.to_vec();
        pending.push(Arc::clone(&name));
        st.pending_initializers = Arc::from(pending);
        Ok(Initializer {
            table_id: table.meta.id,
            name,
        })
    }

    /// Marks the initializer's first full sync as done.
    pub fn complete_initializer<T: Send + Sync + 'static>(
        &mut self,
        table: &Table<T>,
        init: Initializer,
    ) -> Result<(), Error> {
        let unknown = || Error::UnknownInitializer {
            table: table.meta.name,
            name: init.name.to_string(),
        };
        if init.table_id != table.meta.id {
            return Err(unknown());
        }
        let (st, ..) = self.state_mut(table)?;
        let mut pending: Vec<Arc<str>> = st.pending_initializers.to_vec();
        let Some(i) = pending.iter().position(|p| Arc::ptr_eq(p, &init.name)) else {
            return Err(unknown());
        };
        pending.remove(i);
        st.pending_initializers = Arc::from(pending);
        Ok(())
    }

    /// Discards every write.
    pub fn abort(self) {}

    /// Makes every write visible at once and returns a snapshot that includes them.
    pub fn commit(mut self) -> ReadTxn {
        let started = tokio::time::Instant::now();
        let touched = std::mem::take(&mut self.touched);
        let span = tracing::trace_span!("statedb.commit", tables = touched.len());
        let _enter = span.enter();
        let mut finished: Vec<(Arc<TableMeta>, Arc<dyn AnyState>)> =
            Vec::with_capacity(touched.len());
        for mut t in touched {
            t.meta
                .ops
                .collect_garbage(t.state.as_mut(), t.meta.low_watermark());
            let state = t.meta.ops.seal_state(t.state);
            finished.push((t.meta, state));
        }
        let root = {
            let mut commit = self.db.lock_commit();
            let current = self.db.inner.root.load_full();
            let mut tables = current.tables.clone();
            for (meta, state) in &finished {
                tables[meta.id] = Arc::clone(state);
            }
            let root = Arc::new(Root { tables });
            self.db.inner.root.store(Arc::clone(&root));
            for (meta, state) in &finished {
                fire(
                    &mut commit.registries[meta.id],
                    meta,
                    current.tables[meta.id].as_ref(),
                    state.as_ref(),
                );
            }
            root
        };
        self.release_locks();
        let took = started.elapsed();
        for (meta, _) in &finished {
            meta.counters.record_commit(took);
        }
        ReadTxn {
            db: self.db.clone(),
            root,
        }
    }

    fn release_locks(&mut self) {
        for m in self.locked.drain(..) {
            m.lock.release();
        }
    }
}

impl Drop for WriteTxn {
    fn drop(&mut self) {
        self.release_locks();
    }
}

/// Fires the watches whose results a commit changed, comparing the table before and after.
fn fire(registry: &mut Registry, meta: &TableMeta, old: &dyn AnyState, new: &dyn AnyState) {
    if registry.has_any() && meta.ops.primary_changed(old.as_any(), new.as_any()) {
        registry.fire_any();
    }
    if registry.has_init() && !old.initialized() && new.initialized() {
        registry.fire_init();
    }
    for index in 0..meta.indexes {
        if !registry.watches_index(index) {
            continue;
        }
        let mut changed: Vec<Vec<u8>> = Vec::new();
        meta.ops.diff(old.as_any(), new.as_any(), index, &mut |k| {
            changed.push(k.to_vec());
            true
        });
        for k in &changed {
            registry.fire_key(index, k);
        }
    }
}
