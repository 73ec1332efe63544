use crate::Revision;
use crate::key::Key;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("table {table:?} is already registered")]
    TableExists { table: &'static str },
    #[error("table name {table:?} must match [a-z][a-z0-9-]{{1,30}}")]
    InvalidTableName { table: &'static str },
    #[error("table {table:?} has no index {index:?}")]
    NoSuchIndex {
        table: &'static str,
        index: &'static str,
    },
    #[error("table {table:?} is not locked by this write transaction")]
    TableNotLocked { table: &'static str },
    #[error("table {table:?}: the primary index must give exactly one key, it gave {count}")]
    PrimaryKeyCount { table: &'static str, count: usize },
    #[error("table {table:?}: unique index {index:?} already has key {key:?} for another object")]
    UniqueConflict {
        table: &'static str,
        index: &'static str,
        key: Key,
    },
    #[error(
        "table {table:?}: object {key:?} is at revision {found:?}, the write expected {expected}"
    )]
    RevisionMismatch {
        table: &'static str,
        key: Key,
        expected: Revision,
        found: Option<Revision>,
    },
    #[error("table {table:?}: initializer {name:?} is not registered")]
    UnknownInitializer { table: &'static str, name: String },
}
