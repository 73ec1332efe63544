//! A typed in-memory state database: tables of immutable objects with a unique primary index
//! and any number of secondary indexes, consistent lock-free snapshots across all tables (MVCC
//! over persistent trees), atomic write transactions, per-table revisions, watches that fire
//! when a query's result changes, and change streams that include deletions.
//!
//! It knows nothing of networking and nothing of serialization.

mod changes;
mod db;
mod error;
mod index;
mod key;
mod metrics;
mod registry;
mod state;
mod table;
mod tree;
mod txn;
mod watch;

pub use changes::{Change, ChangeIter, Changes};
pub use db::{Db, is_valid_name};
pub use error::Error;
pub use index::{Index, KeySet, TableSchema};
pub use key::{IndexKey, Key, KeyBuf, TupleComponent};
pub use metrics::{COMMIT_BUCKETS, TableMetrics};
pub use state::Entry;
pub use table::{Table, TableRef};
pub use txn::{Initializer, ReadTxn, Txn, WriteTxn};
pub use watch::Watch;

/// A table's write counter. Every write of an object gets the next revision of its table.
pub type Revision = u64;

#[cfg(test)]
mod tests;
