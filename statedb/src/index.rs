//! Declaring tables: indexes map an object to its keys; a schema names a table and its indexes.

use std::marker::PhantomData;

use crate::key::{IndexKey, Key};

/// The keys one object has in one index: exactly one for a primary index, any number
/// (including none) for a secondary one.
#[derive(Clone, Debug)]
pub enum KeySet<K> {
    One(K),
    Many(Vec<K>),
}

impl<K> KeySet<K> {
    pub fn none() -> KeySet<K> {
        KeySet::Many(Vec::new())
    }
}

impl<K> From<K> for KeySet<K> {
    fn from(k: K) -> Self {
        KeySet::One(k)
    }
}

/// An index over objects of type `T` with keys of type `K`, declared as a constant:
///
/// ```
/// # use statedb::{Index, KeySet};
/// struct Pod { name: String, node: String }
/// const POD_NAME: Index<Pod, String> = Index::new("name", true, |p| KeySet::One(p.name.clone()));
/// const POD_NODE: Index<Pod, String> = Index::new("node", false, |p| KeySet::One(p.node.clone()));
/// ```
pub struct Index<T, K> {
    pub name: &'static str,
    pub unique: bool,
    pub from_object: fn(&T) -> KeySet<K>,
    _key: PhantomData<fn() -> K>,
}

impl<T, K> Index<T, K> {
    pub const fn new(name: &'static str, unique: bool, from_object: fn(&T) -> KeySet<K>) -> Self {
        Index {
            name,
            unique,
            from_object,
            _key: PhantomData,
        }
    }
}

impl<T, K> Clone for Index<T, K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T, K> Copy for Index<T, K> {}

/// Appends an object's keys in one index to the buffer.
pub(crate) type KeysFn<T> = Box<dyn Fn(&T, &mut Vec<Key>) + Send + Sync>;

/// An index with its key type erased, as the table stores it.
pub(crate) struct IndexDef<T> {
    pub(crate) name: &'static str,
    pub(crate) unique: bool,
    pub(crate) keys: KeysFn<T>,
}

impl<T: 'static> IndexDef<T> {
    fn erase<K: IndexKey + 'static>(index: Index<T, K>) -> Self {
        IndexDef {
            name: index.name,
            unique: index.unique,
            keys: Box::new(move |obj, out| match (index.from_object)(obj) {
                KeySet::One(k) => out.push(k.to_key()),
                KeySet::Many(ks) => out.extend(ks.iter().map(IndexKey::to_key)),
            }),
        }
    }
}

/// A table's name and indexes. Index 0 is the primary index.
pub struct TableSchema<T> {
    pub(crate) name: &'static str,
    pub(crate) indexes: Vec<IndexDef<T>>,
}

impl<T: 'static> TableSchema<T> {
    /// A table whose objects are identified by the unique `primary` index.
    pub fn new<K: IndexKey + 'static>(name: &'static str, primary: Index<T, K>) -> Self {
        TableSchema {
            name,
            indexes: vec![IndexDef::erase(Index {
                unique: true,
                ..primary
            })],
        }
    }

    pub fn with_index<K: IndexKey + 'static>(mut self, index: Index<T, K>) -> Self {
        self.indexes.push(IndexDef::erase(index));
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub(crate) fn position(&self, index: &'static str) -> Option<usize> {
        self.indexes.iter().position(|d| d.name == index)
    }
}
