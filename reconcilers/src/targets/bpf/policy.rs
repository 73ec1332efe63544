//! `policy-entries` rows into the `policy` map.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use bpf::{Datapath, L4, Policy, PolicyKey, PolicyValue, PortPrefix};
use policy::mapstate::{Key, PROTO_ANY, Verdict};
use policy::rule::Direction;
use statedb::{ReadTxn, Revision};

use super::{DatapathError, lock};
use crate::datapath::PolicyEntry;
use crate::operations::Operations;

/// The map key of one endpoint's policy entry.
pub fn policy_key(endpoint_id: u16, key: &Key) -> Result<PolicyKey, DatapathError> {
    let l4 = match (key.proto, key.port_prefix) {
        (PROTO_ANY, _) => L4::Any,
        (proto, 0) => L4::Proto(proto),
        (proto, len) => L4::Ports {
            proto,
            ports: PortPrefix::new(key.port, len).map_err(|source| DatapathError::PolicyKey {
                endpoint_id,
                key: *key,
                source,
            })?,
        },
    };
    Ok(PolicyKey {
        endpoint_id: u32::from(endpoint_id),
        direction: match key.direction {
            Direction::Ingress => bpf::Direction::Ingress,
            Direction::Egress => bpf::Direction::Egress,
        },
        identity: key.identity.0,
        l4,
    })
}

/// The map value of a verdict. A redirect without a listener (port 0) is an allow to the
/// datapath, which leaves the packet unmarked, as `MapState::decide`'s `Redirected` lets the
/// connection through.
pub fn policy_value(verdict: Verdict, proxy_port: u16, cookie: u32) -> PolicyValue {
    PolicyValue {
        verdict: match verdict {
            Verdict::Allow => bpf::Verdict::Allow,
            Verdict::Deny => bpf::Verdict::Deny,
            Verdict::Redirect(_) => bpf::Verdict::Redirect { proxy_port },
        },
        cookie,
    }
}

/// Applies [`PolicyEntry`] rows to the `policy` map.
#[derive(Debug)]
pub struct PolicyOps {
    policy: Mutex<Policy>,
}

impl PolicyOps {
    /// Opens the `policy` map's handle.
    pub fn new(datapath: &Datapath) -> Result<PolicyOps, bpf::Error> {
        Ok(PolicyOps {
            policy: Mutex::new(datapath.policy()?),
        })
    }
}

impl Operations<PolicyEntry> for PolicyOps {
    type Error = DatapathError;

    async fn update(
        &self,
        _: &ReadTxn,
        _: Revision,
        entry: &Arc<PolicyEntry>,
    ) -> Result<(), DatapathError> {
        let key = policy_key(entry.endpoint_id, &entry.key)?;
        lock(&self.policy).insert(
            &key,
            &policy_value(entry.verdict, entry.proxy_port, entry.cookie),
        )?;
        Ok(())
    }

    async fn delete(
        &self,
        _: &ReadTxn,
        _: Revision,
        entry: &Arc<PolicyEntry>,
    ) -> Result<(), DatapathError> {
        // A key with no map form was never written: nothing to delete.
        let Ok(key) = policy_key(entry.endpoint_id, &entry.key) else {
            return Ok(());
        };
        lock(&self.policy).remove(&key)?;
        Ok(())
    }

    async fn prune(&self, _: &ReadTxn, desired: &[Arc<PolicyEntry>]) -> Result<(), DatapathError> {
        let desired: HashSet<PolicyKey> = desired
            .iter()
            .filter_map(|e| policy_key(e.endpoint_id, &e.key).ok())
            .collect();
        let prune = |source| DatapathError::Prune {
            map: "policy",
            source,
        };
        let mut policy = lock(&self.policy);
        let mut first_error = None;
        for (key, value) in policy.iter().map_err(prune)? {
            if desired.contains(&key) {
                continue;
            }
            tracing::info!(%key, verdict = ?value.verdict, "pruning entry not in the policy-entries table");
            if let Err(err) = policy.remove(&key) {
                first_error.get_or_insert(prune(err));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
