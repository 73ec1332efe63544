//! The `objects` table as `myelin apply` and `myelin delete` change it, persisted in the state
//! directory (`objects.jsonl`, one object per line as JSON with `apiVersion` and `kind`) so a
//! restarted agent rebuilds the same table before its reconcilers prune anything.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use reconcilers::cause::{Cause, Causes};
use reconcilers::objects::{OBJECT_KEY, StoredObject, register_objects_table};
use schema::agent_api::{Applied, Manifest, ObjectAction, ObjectResult};
use schema::manifest;
use statedb::{Db, Revision, Table, Txn, WriteTxn};

use crate::store::{StoreError, replace_file};

#[cfg(test)]
mod tests;

const FILE: &str = "objects.jsonl";

#[derive(Debug, thiserror::Error)]
pub(crate) enum ObjectsError {
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {problem}", path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    #[error("objects table")]
    Table(#[from] statedb::Error),
    #[error("persist objects")]
    Store(#[from] StoreError),
}

pub(crate) struct Objects {
    db: Db,
    table: Table<StoredObject>,
    dir: PathBuf,
    /// One change at a time: each persists the table as a whole.
    lock: Mutex<()>,
    /// The span and time of each change, for the derivation that follows it.
    causes: Causes,
}

impl Objects {
    /// Registers the table and fills it from `dir`'s saved objects.
    pub(crate) fn open(db: &Db, dir: &Path) -> Result<Objects, ObjectsError> {
        let table = register_objects_table(db)?;
        let path = dir.join(FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(ObjectsError::Read { path, source }),
        };
        let mut txn = db.write_txn(&[&table]);
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let invalid = |problem: String| ObjectsError::Invalid {
                path: path.clone(),
                line: n + 1,
                problem,
            };
            let mut parsed = manifest::parse_str(&path.display().to_string(), line);
            let object = match (parsed.pop(), parsed.is_empty()) {
                (Some(Ok(object)), true) => object,
                (Some(Err(err)), _) => return Err(invalid(reconcilers::error_chain(&err))),
                _ => return Err(invalid("expected exactly one object".to_owned())),
            };
            txn.insert(&table, StoredObject::new(object))?;
        }
        txn.commit();
        Ok(Objects {
            db: db.clone(),
            table,
            dir: dir.to_owned(),
            causes: Causes::default(),
            lock: Mutex::new(()),
        })
    }

    pub(crate) fn table(&self) -> &Table<StoredObject> {
        &self.table
    }

    /// Stores every valid object of the manifest in one transaction; invalid ones are
    /// reported and change nothing. Returns the table revision the change is at.
    pub(crate) fn apply(&self, manifest: &Manifest) -> Result<(Applied, Revision), ObjectsError> {
        self.change(manifest, |txn, table, stored| {
            let problems = schema::validate::object(&stored.object);
            let action = if !problems.is_empty() {
                ObjectAction::Invalid
            } else {
                match txn.get(table, &OBJECT_KEY, &stored.key()) {
                    Some(old) if old.object.object == stored.object => ObjectAction::Unchanged,
                    Some(_) => ObjectAction::Configured,
                    None => ObjectAction::Created,
                }
            };
            let mut result = result(&stored, action);
            result.errors = problems.iter().map(ToString::to_string).collect();
            if matches!(action, ObjectAction::Created | ObjectAction::Configured) {
                txn.insert(table, stored)?;
            }
            Ok(result)
        })
    }

    /// Removes the objects the manifest names (valid or not, as `kubectl delete -f`).
    pub(crate) fn delete(&self, manifest: &Manifest) -> Result<(Applied, Revision), ObjectsError> {
        self.change(manifest, |txn, table, stored| {
            let existing = txn
                .get(table, &OBJECT_KEY, &stored.key())
                .map(|entry| Arc::clone(&entry.object));
            let action = match existing {
                Some(old) => {
                    txn.delete(table, &old)?;
                    ObjectAction::Deleted
                }
                None => ObjectAction::NotFound,
            };
            Ok(result(&stored, action))
        })
    }

    /// Runs `each` on every object of the manifest in one transaction (a document that does
    /// not parse is reported and skipped), persists the table if anything changed, commits.
    fn change(
        &self,
        manifest: &Manifest,
        mut each: impl FnMut(
            &mut WriteTxn,
            &Table<StoredObject>,
            StoredObject,
        ) -> Result<ObjectResult, statedb::Error>,
    ) -> Result<(Applied, Revision), ObjectsError> {
        let _lock = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut txn = self.db.write_txn(&[&self.table]);
        let mut results = Vec::new();
        for parsed in manifest::parse_str(&manifest.source, &manifest.text) {
            results.push(match parsed {
                Ok(object) => each(&mut txn, &self.table, StoredObject::new(object))?,
                Err(err) => unreadable(&err),
            });
        }
        let changed = results.iter().any(|r| {
            matches!(
                r.action,
                ObjectAction::Created | ObjectAction::Configured | ObjectAction::Deleted
            )
        });
        if changed {
            self.persist(&txn)?;
            // Before the commit, so the derivation cannot see the change without its cause.
            self.causes.record(txn.revision(&self.table), Cause::here());
        }
        let revision = txn.commit().revision(&self.table);
        Ok((Applied { results }, revision))
    }

    pub(crate) fn causes(&self) -> &Causes {
        &self.causes
    }

    /// Every stored object, in key order.
    #[cfg(test)]
    pub(crate) fn all(&self) -> Vec<Arc<StoredObject>> {
        let txn = self.db.read_txn();
        txn.all(&self.table)
            .map(|entry| Arc::clone(&entry.object))
            .collect()
    }

    fn persist(&self, txn: &impl Txn) -> Result<(), StoreError> {
        let mut text = String::new();
        for entry in txn.all(&self.table) {
            text.push_str(&entry.object.object.to_json());
            text.push('\n');
        }
        replace_file(&self.dir, FILE, text.as_bytes())
    }
}

fn result(stored: &StoredObject, action: ObjectAction) -> ObjectResult {
    ObjectResult {
        resource: stored.kind.resource().to_owned(),
        namespace: (!stored.namespace.is_empty()).then(|| stored.namespace.clone()),
        name: stored.name.clone(),
        action,
        errors: Vec::new(),
    }
}

fn unreadable(err: &manifest::ManifestError) -> ObjectResult {
    ObjectResult {
        resource: String::new(),
        namespace: None,
        name: String::new(),
        action: ObjectAction::Invalid,
        errors: vec![reconcilers::error_chain(err)],
    }
}
