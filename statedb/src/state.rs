//! One table's contents at one revision: persistent maps, so a snapshot is an `Arc` clone and a
//! write copies only the paths it changes.

use std::ops::Bound;
use std::sync::Arc;

use crate::Revision;
use crate::error::Error;
use crate::index::TableSchema;
use crate::key::Key;
use crate::tree::PMap;

/// A stored object and the revision it was written at. Objects are immutable: changing one means
/// writing a new `Arc<T>`.
pub struct Entry<T> {
    pub object: Arc<T>,
    pub revision: Revision,
}

impl<T> Clone for Entry<T> {
    fn clone(&self) -> Self {
        Entry {
            object: Arc::clone(&self.object),
            revision: self.revision,
        }
    }
}

/// Two entries are equal when they are the same write: this is what `diff` uses to find changes.
impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.revision == other.revision && Arc::ptr_eq(&self.object, &other.object)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Entry<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}@{}", self.object, self.revision)
    }
}

pub(crate) struct TableState<T> {
    /// Index 0 maps the primary key to the entry. A unique secondary index maps its key to the
    /// entry; a non-unique one maps `key ++ primary key ++ u16 len(key)` to it.
    pub(crate) indexes: Vec<PMap<Key, Entry<T>>>,
    pub(crate) by_revision: PMap<Revision, Entry<T>>,
    /// Deleted objects, kept while some change-stream consumer may not have seen the delete.
    pub(crate) graveyard: PMap<Key, Revision>,
    pub(crate) graveyard_by_revision: PMap<Revision, Entry<T>>,
    pub(crate) revision: Revision,
    pub(crate) pending_initializers: Arc<[Arc<str>]>,
}

impl<T> Clone for TableState<T> {
    fn clone(&self) -> Self {
        TableState {
            indexes: self.indexes.clone(),
            by_revision: self.by_revision.clone(),
            graveyard: self.graveyard.clone(),
            graveyard_by_revision: self.graveyard_by_revision.clone(),
            revision: self.revision,
            pending_initializers: Arc::clone(&self.pending_initializers),
        }
    }
}

/// Buffers for computing an object's index keys. A write transaction keeps one and lends it to
/// each of its writes, so only its first write allocates them.
#[derive(Default)]
pub(crate) struct Scratch {
    keys: Vec<Key>,
    bytes: Vec<u8>,
}

/// How a write must relate to the stored object for it to go ahead.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expect {
    Any,
    Revision(Revision),
}

pub(crate) fn composite_key(key: &[u8], primary: &[u8], scratch: &mut Vec<u8>) -> Key {
    scratch.clear();
    scratch.extend_from_slice(key);
    scratch.extend_from_slice(primary);
    #[expect(
        clippy::cast_possible_truncation,
        reason = "index keys are far below 64 KiB"
    )]
    scratch.extend_from_slice(&(key.len() as u16).to_be_bytes());
    Key::from_bytes(scratch)
}

/// The secondary key part of a non-unique index's composite key.
pub(crate) fn secondary_part(composite: &[u8]) -> &[u8] {
    let n = composite.len();
    if n < 2 {
        return &[];
    }
    let len = usize::from(u16::from_be_bytes([composite[n - 2], composite[n - 1]]));
    composite.get(..len).unwrap_or(&[])
}

impl<T: 'static> TableState<T> {
    pub(crate) fn new(schema: &TableSchema<T>) -> Self {
        TableState {
            indexes: schema.indexes.iter().map(|_| PMap::new()).collect(),
            by_revision: PMap::new(),
            graveyard: PMap::new(),
            graveyard_by_revision: PMap::new(),
            revision: 0,
            pending_initializers: Arc::from(Vec::new()),
        }
    }

    fn primary_key(schema: &TableSchema<T>, obj: &T, keys: &mut Vec<Key>) -> Result<Key, Error> {
        keys.clear();
        (schema.indexes[0].keys)(obj, keys);
        match keys.len() {
            1 => Ok(keys.swap_remove(0)),
            n => Err(Error::PrimaryKeyCount {
                table: schema.name,
                count: n,
            }),
        }
    }

    /// Fails unless the object stored under `pk` is as `expect` requires.
    fn check(&self, schema: &TableSchema<T>, pk: &Key, expect: Expect) -> Result<(), Error> {
        let Expect::Revision(rev) = expect else {
            return Ok(());
        };
        let found = self.indexes[0].get(pk).map(|o| o.revision);
        if found == Some(rev) {
            return Ok(());
        }
        Err(Error::RevisionMismatch {
            table: schema.name,
            key: pk.clone(),
            expected: rev,
            found,
        })
    }

    pub(crate) fn insert(
        &mut self,
        schema: &TableSchema<T>,
        object: Arc<T>,
        expect: Expect,
        scratch: &mut Scratch,
    ) -> Result<Option<Entry<T>>, Error> {
        let keys = &mut scratch.keys;
        let pk = Self::primary_key(schema, &object, keys)?;
        self.check(schema, &pk, expect)?;
        // Check unique secondary indexes before touching anything so a failed insert leaves
        // the transaction as it was. An index entry is a copy of its object's primary entry, so
        // the key belongs to this object exactly when the two entries are the same write.
        for (pos, def) in schema.indexes.iter().enumerate().skip(1) {
            if !def.unique {
                continue;
            }
            keys.clear();
            (def.keys)(&object, keys);
            for k in keys.iter() {
                // Looked up only on a hit, so writes to tables without a unique secondary
                // index pay nothing for this check.
                if let Some(existing) = self.indexes[pos].get(k)
                    && self.indexes[0].get(&pk) != Some(existing)
                {
                    return Err(Error::UniqueConflict {
                        table: schema.name,
                        index: def.name,
                        key: k.clone(),
                    });
                }
            }
        }

        let revision = self.revision + 1;
        self.revision = revision;
        let entry = Entry { object, revision };
        // The primary index hands back the entry it replaces, which saves looking it up first.
        let old = self.indexes[0].insert(pk.clone(), entry.clone());
        if let Some(old) = &old {
            self.by_revision.remove(&old.revision);
            self.remove_secondary(schema, &pk, &old.object, scratch);
        }
        self.by_revision.insert(revision, entry.clone());
        self.insert_secondary(schema, &pk, &entry, scratch);
        if let Some(deleted_at) = self.graveyard.remove(&pk) {
            self.graveyard_by_revision.remove(&deleted_at);
        }
        Ok(old)
    }

    pub(crate) fn delete(
        &mut self,
        schema: &TableSchema<T>,
        object: &T,
        expect: Expect,
        track_deletes: bool,
        scratch: &mut Scratch,
    ) -> Result<Option<Entry<T>>, Error> {
        let pk = Self::primary_key(schema, object, &mut scratch.keys)?;
        self.delete_key(schema, pk, expect, track_deletes, scratch)
    }

    pub(crate) fn delete_key(
        &mut self,
        schema: &TableSchema<T>,
        pk: Key,
        expect: Expect,
        track_deletes: bool,
        scratch: &mut Scratch,
    ) -> Result<Option<Entry<T>>, Error> {
        self.check(schema, &pk, expect)?;
        let Some(old) = self.indexes[0].remove(&pk) else {
            return Ok(None);
        };
        let revision = self.revision + 1;
        self.revision = revision;
        self.by_revision.remove(&old.revision);
        self.remove_secondary(schema, &pk, &old.object, scratch);
        if track_deletes {
            self.graveyard.insert(pk, revision);
            self.graveyard_by_revision.insert(
                revision,
                Entry {
                    object: Arc::clone(&old.object),
                    revision,
                },
            );
        }
        Ok(Some(old))
    }

    fn insert_secondary(
        &mut self,
        schema: &TableSchema<T>,
        pk: &Key,
        entry: &Entry<T>,
        scratch: &mut Scratch,
    ) {
        let Scratch { keys, bytes } = scratch;
        for (pos, def) in schema.indexes.iter().enumerate().skip(1) {
            keys.clear();
            (def.keys)(&entry.object, keys);
            for k in keys.drain(..) {
                let k = if def.unique {
                    k
                } else {
                    composite_key(k.as_bytes(), pk.as_bytes(), bytes)
                };
                self.indexes[pos].insert(k, entry.clone());
            }
        }
    }

    fn remove_secondary(
        &mut self,
        schema: &TableSchema<T>,
        pk: &Key,
        object: &T,
        scratch: &mut Scratch,
    ) {
        let Scratch { keys, bytes } = scratch;
        for (pos, def) in schema.indexes.iter().enumerate().skip(1) {
            keys.clear();
            (def.keys)(object, keys);
            for k in keys.drain(..) {
                if def.unique {
                    self.indexes[pos].remove(&k);
                } else {
                    let ck = composite_key(k.as_bytes(), pk.as_bytes(), bytes);
                    self.indexes[pos].remove(&ck);
                }
            }
        }
    }

    /// Forgets deletes that every change-stream consumer has seen (revision <= `seen`), or all of
    /// them when there is no consumer left.
    pub(crate) fn collect_garbage(&mut self, schema: &TableSchema<T>, seen: Option<Revision>) {
        let Some(seen) = seen else {
            if !self.graveyard.is_empty() {
                self.graveyard = PMap::new();
                self.graveyard_by_revision = PMap::new();
            }
            return;
        };
        let mut keys = Vec::new();
        while let Some((&rev, _)) = self.graveyard_by_revision.first() {
            if rev > seen {
                break;
            }
            if let Some(entry) = self.graveyard_by_revision.remove(&rev)
                && let Ok(pk) = Self::primary_key(schema, &entry.object, &mut keys)
            {
                self.graveyard.remove(&pk);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.indexes[0].len()
    }

    /// Entries of index `pos` whose key is exactly `key`.
    pub(crate) fn list(
        &self,
        unique: bool,
        pos: usize,
        key: Key,
    ) -> Box<dyn Iterator<Item = &Entry<T>> + '_> {
        if unique {
            return Box::new(self.indexes[pos].get(key.as_bytes()).into_iter());
        }
        Box::new(
            self.indexes[pos]
                .range(Bound::Included(key.as_bytes()), Bound::Unbounded)
                .take_while({
                    let key = key.clone();
                    move |(k, _)| k.as_bytes().starts_with(key.as_bytes())
                })
                .filter(move |(k, _)| secondary_part(k.as_bytes()) == key.as_bytes())
                .map(|(_, e)| e),
        )
    }

    /// Entries of index `pos` whose key starts with `prefix`.
    pub(crate) fn prefix(
        &self,
        unique: bool,
        pos: usize,
        prefix: Key,
    ) -> Box<dyn Iterator<Item = &Entry<T>> + '_> {
        let iter = self.indexes[pos]
            .range(Bound::Included(prefix.as_bytes()), Bound::Unbounded)
            .take_while({
                let prefix = prefix.clone();
                move |(k, _)| k.as_bytes().starts_with(prefix.as_bytes())
            });
        if unique {
            Box::new(iter.map(|(_, e)| e))
        } else {
            Box::new(
                iter.filter(move |(k, _)| {
                    secondary_part(k.as_bytes()).starts_with(prefix.as_bytes())
                })
                .map(|(_, e)| e),
            )
        }
    }

    /// Entries of index `pos` whose key is at least `from`: in key order for a unique index, in
    /// key-then-primary-key byte order for a non-unique one.
    pub(crate) fn lower_bound(
        &self,
        unique: bool,
        pos: usize,
        from: Key,
    ) -> Box<dyn Iterator<Item = &Entry<T>> + '_> {
        let iter = self.indexes[pos].range(Bound::Included(from.as_bytes()), Bound::Unbounded);
        if unique {
            Box::new(iter.map(|(_, e)| e))
        } else {
            Box::new(
                iter.filter(move |(k, _)| secondary_part(k.as_bytes()) >= from.as_bytes())
                    .map(|(_, e)| e),
            )
        }
    }
}
