//! The routes table's target: one namespace's routing table.

use std::collections::HashSet;
use std::sync::Arc;

use statedb::{ReadTxn, Revision};

use super::{RouteError, RouteTarget};
use crate::operations::Operations;
use crate::routes::{DesiredRoute, route_key};

/// Applies [`DesiredRoute`]s with rtnetlink. Prune only ever sees routes tagged with Myelin's
/// routing protocol, so routes installed by anyone else are never touched.
#[derive(Debug)]
pub struct RouteOps {
    target: RouteTarget,
}

impl RouteOps {
    pub fn new(target: RouteTarget) -> RouteOps {
        RouteOps { target }
    }
}

impl Operations<DesiredRoute> for RouteOps {
    type Error = RouteError;

    async fn update(
        &self,
        _: &ReadTxn,
        _: Revision,
        route: &Arc<DesiredRoute>,
    ) -> Result<(), RouteError> {
        self.target.replace(&route.spec).await
    }

    async fn delete(
        &self,
        _: &ReadTxn,
        _: Revision,
        route: &Arc<DesiredRoute>,
    ) -> Result<(), RouteError> {
        self.target.delete(&route.spec).await
    }

    async fn prune(&self, _: &ReadTxn, desired: &[Arc<DesiredRoute>]) -> Result<(), RouteError> {
        let wanted: HashSet<_> = desired.iter().map(|r| route_key(&r.spec)).collect();
        let mut first_error = None;
        for owned in self.target.list_owned().await? {
            if wanted.contains(&route_key(&owned)) {
                continue;
            }
            tracing::info!(route = %owned, "pruning route not in the routes table");
            if let Err(e) = self.target.delete(&owned).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
