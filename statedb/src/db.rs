//! The database: the current root snapshot and the commit lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;

use crate::error::Error;
use crate::index::TableSchema;
use crate::metrics::TableMetrics;
use crate::registry::Registry;
use crate::state::TableState;
use crate::table::{AnyState, Table, TableLock, TableMeta, TableRef};
use crate::txn::{ReadTxn, WriteTxn};

/// Every table's contents at one moment. Immutable: a commit builds a new root.
pub(crate) struct Root {
    pub(crate) tables: Vec<Arc<dyn AnyState>>,
}

/// What the commit lock protects: swapping the root and the watch registries, together, so a
/// watch is registered either before a commit (and is fired by it) or after it (and is compared
/// with it).
pub(crate) struct CommitState {
    pub(crate) registries: Vec<Registry>,
    pub(crate) metas: Vec<Arc<TableMeta>>,
}

pub(crate) struct DbInner {
    pub(crate) id: u64,
    pub(crate) root: ArcSwap<Root>,
    pub(crate) commit: Mutex<CommitState>,
}

/// An in-memory database of typed tables. Cheap to clone: clones share the same tables.
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<DbInner>,
}

static NEXT_DB_ID: AtomicU64 = AtomicU64::new(1);

/// The naming rule for tables and for everything named after them (reconcilers, metric labels,
/// span fields): `[a-z][a-z0-9-]{1,30}`.
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    (2..=31).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

impl Default for Db {
    fn default() -> Self {
        Db::new()
    }
}

impl Db {
    pub fn new() -> Db {
        Db {
            inner: Arc::new(DbInner {
                id: NEXT_DB_ID.fetch_add(1, Ordering::Relaxed),
                root: ArcSwap::from_pointee(Root { tables: Vec::new() }),
                commit: Mutex::new(CommitState {
                    registries: Vec::new(),
                    metas: Vec::new(),
                }),
            }),
        }
    }

    pub(crate) fn lock_commit(&self) -> MutexGuard<'_, CommitState> {
        self.inner.commit.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an empty table.
    pub fn register_table<T: Send + Sync + 'static>(
        &self,
        schema: TableSchema<T>,
    ) -> Result<Table<T>, Error> {
        if !is_valid_name(schema.name) {
            return Err(Error::InvalidTableName { table: schema.name });
        }
        let mut commit = self.lock_commit();
        if commit.metas.iter().any(|m| m.name == schema.name) {
            return Err(Error::TableExists { table: schema.name });
        }
        let schema = Arc::new(schema);
        let meta = Arc::new(TableMeta {
            id: commit.metas.len(),
            db_id: self.inner.id,
            name: schema.name,
            indexes: schema.indexes.len(),
            lock: TableLock::default(),
            trackers: Mutex::default(),
            counters: Default::default(),
            ops: Box::new(Arc::clone(&schema)),
        });
        let cur = self.inner.root.load_full();
        let mut tables = cur.tables.clone();
        tables.push(Arc::new(TableState::new(&schema)));
        self.inner.root.store(Arc::new(Root { tables }));
        commit.registries.push(Registry::default());
        commit.metas.push(Arc::clone(&meta));
        Ok(Table { meta, schema })
    }

    /// A consistent snapshot of every table. Never blocks and never blocks a writer.
    pub fn read_txn(&self) -> ReadTxn {
        ReadTxn {
            db: self.clone(),
            root: self.inner.root.load_full(),
        }
    }

    /// A write transaction over `tables`, which it locks (in a fixed order, so two transactions
    /// over overlapping sets never deadlock) until it commits or is dropped.
    pub fn write_txn(&self, tables: &[&dyn TableRef]) -> WriteTxn {
        let mut metas: Vec<Arc<TableMeta>> = tables.iter().map(|t| Arc::clone(t.meta())).collect();
        for m in &metas {
            assert_eq!(
                m.db_id, self.inner.id,
                "invariant: table {} belongs to another database",
                m.name
            );
        }
        metas.sort_by_key(|m| m.id);
        metas.dedup_by_key(|m| m.id);
        for m in &metas {
            m.lock.acquire();
        }
        // Loaded after locking, so the base holds the latest commit of every locked table.
        let base = self.inner.root.load_full();
        WriteTxn::new(self.clone(), base, metas)
    }

    /// Figures for every table, from the current snapshot.
    pub fn metrics(&self) -> Vec<TableMetrics> {
        let metas = self.lock_commit().metas.clone();
        let root = self.inner.root.load_full();
        metas
            .iter()
            .map(|m| {
                let st = &root.tables[m.id];
                let (commits, total, buckets) = m.counters.snapshot();
                TableMetrics {
                    table: m.name,
                    objects: st.len(),
                    revision: st.revision(),
                    graveyard_objects: st.graveyard_len(),
                    delete_trackers: m.tracker_count(),
                    initialized: st.initialized(),
                    commits,
                    commit_duration_total: total,
                    commit_duration_buckets: buckets,
                }
            })
            .collect()
    }
}
