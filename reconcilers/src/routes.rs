//! The `routes` table: routes the agent wants in a namespace's routing table, reconciled by
//! [`crate::targets::routes::RouteOps`].

use std::net::IpAddr;

use statedb::{Db, Index, KeySet, Table, TableSchema};

use crate::status::{Reconcilable, Status};
use crate::targets::routes::RouteSpec;

/// One desired route and how far it got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredRoute {
    pub spec: RouteSpec,
    pub status: Status,
}

impl DesiredRoute {
    /// A route waiting to be installed, in the form the kernel reports it back.
    pub fn new(spec: RouteSpec) -> DesiredRoute {
        DesiredRoute {
            spec: spec.canonical(),
            status: Status::pending(),
        }
    }
}

impl Reconcilable for DesiredRoute {
    fn status(&self) -> &Status {
        &self.status
    }
    fn with_status(&self, status: Status) -> Self {
        DesiredRoute {
            spec: self.spec.clone(),
            status,
        }
    }
}

/// The kernel tells routes apart by table, destination prefix and metric.
pub type RouteKey = (u32, IpAddr, u8, u32);

pub fn route_key(spec: &RouteSpec) -> RouteKey {
    (
        spec.table,
        spec.dst,
        spec.prefix_len,
        spec.priority.unwrap_or(0),
    )
}

pub const ROUTE_KEY: Index<DesiredRoute, RouteKey> =
    Index::new("key", true, |r| KeySet::One(route_key(&r.spec)));

pub const ROUTE_DEV: Index<DesiredRoute, String> =
    Index::new("dev", false, |r| match &r.spec.dev {
        Some(dev) => KeySet::One(dev.clone()),
        None => KeySet::none(),
    });

pub fn register_routes_table(db: &Db) -> Result<Table<DesiredRoute>, statedb::Error> {
    db.register_table(TableSchema::new("routes", ROUTE_KEY).with_index(ROUTE_DEV))
}
