//! The contract between the generic reconciler and one kind of target.

use std::future::Future;
use std::sync::Arc;

use statedb::{ReadTxn, Revision};

/// How to apply objects of type `T` to a target. Every operation must be idempotent: the
/// reconciler retries failures and repeats updates during full passes.
pub trait Operations<T: Send + Sync + 'static>: Send + Sync + 'static {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Makes the target hold `object` (insert or replace).
    fn update(
        &self,
        txn: &ReadTxn,
        revision: Revision,
        object: &Arc<T>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Removes `object` from the target; removing something absent succeeds.
    fn delete(
        &self,
        txn: &ReadTxn,
        revision: Revision,
        object: &Arc<T>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Removes from the target everything that is not in `desired` (the whole table).
    fn prune(
        &self,
        txn: &ReadTxn,
        desired: &[Arc<T>],
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Applies several updates; a target with a batch API overrides this. One result per
    /// object, in order.
    fn update_batch(
        &self,
        txn: &ReadTxn,
        batch: &[(Revision, Arc<T>)],
    ) -> impl Future<Output = Vec<Result<(), Self::Error>>> + Send {
        async move {
            let mut out = Vec::with_capacity(batch.len());
            for (rev, obj) in batch {
                out.push(self.update(txn, *rev, obj).await);
            }
            out
        }
    }

    /// Applies several deletes; one result per object, in order.
    fn delete_batch(
        &self,
        txn: &ReadTxn,
        batch: &[(Revision, Arc<T>)],
    ) -> impl Future<Output = Vec<Result<(), Self::Error>>> + Send {
        async move {
            let mut out = Vec::with_capacity(batch.len());
            for (rev, obj) in batch {
                out.push(self.delete(txn, *rev, obj).await);
            }
            out
        }
    }
}
