//! The `objects` table: the Kubernetes objects the agent knows (Namespaces, Pods, Services and
//! policies), written by a source (`myelin apply` in embedded mode, a watcher in Kubernetes
//! mode) and read by the policy derivation. Only objects that passed validation get here.

use std::sync::Arc;

use schema::object::{DEFAULT_NAMESPACE, Kind, Object};
use statedb::{Db, Index, KeySet, Table, TableSchema};

/// One object as applied. `namespace` is empty for cluster-scoped kinds.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredObject {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    pub object: Arc<Object>,
}

impl StoredObject {
    /// The object under the key `kubectl apply` would store it at: namespaced kinds without a
    /// namespace land in `default`.
    pub fn new(object: Object) -> StoredObject {
        let kind = object.kind();
        let namespace = if kind.is_namespaced() {
            object.namespace().unwrap_or(DEFAULT_NAMESPACE).to_owned()
        } else {
            String::new()
        };
        StoredObject {
            kind,
            namespace,
            name: object.name().unwrap_or_default().to_owned(),
            object: Arc::new(object),
        }
    }

    /// `kind/namespace/name` as the primary key spells it.
    pub fn key(&self) -> ObjectKey {
        (
            self.kind.as_str().to_owned(),
            self.namespace.clone(),
            self.name.clone(),
        )
    }
}

/// (kind, namespace, name); namespace empty for cluster-scoped kinds.
pub type ObjectKey = (String, String, String);

pub const OBJECT_KEY: Index<StoredObject, ObjectKey> =
    Index::new("key", true, |o| KeySet::One(o.key()));

pub const OBJECT_KIND: Index<StoredObject, String> =
    Index::new("kind", false, |o| KeySet::One(o.kind.as_str().to_owned()));

pub fn register_objects_table(db: &Db) -> Result<Table<StoredObject>, statedb::Error> {
    db.register_table(TableSchema::new("objects", OBJECT_KEY).with_index(OBJECT_KIND))
}
