//! The agent's answers to API requests: endpoints in the statedb `endpoints` table, addresses
//! from [`Ipam`], both persisted through [`Store`] before a request is answered.

use std::sync::{Mutex, PoisonError};

use reconcilers::endpoints::{
    ENDPOINT_CONTAINER, ENDPOINT_ID, Endpoint, EndpointState, HostLink, PodName,
    register_endpoints_table,
};
use schema::agent_api::{
    self, AgentStatus, ApiError, Deleted, EndpointAdd, EndpointReady, EndpointRef, ErrorCode,
    POD_GATEWAY, Request, Response, format_mac,
};
use schema::cidr::Cidr;
use statedb::{Db, Table, Txn};

use crate::ipam::{Ipam, IpamError};
use crate::store::{Store, StoreError};

#[cfg(test)]
mod tests;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AgentError {
    #[error("pod cidr")]
    Ipam(#[from] IpamError),
    #[error("state directory")]
    Store(#[from] StoreError),
    #[error("saved endpoint {container_id}")]
    Restore {
        container_id: String,
        #[source]
        source: RestoreError,
    },
    #[error("endpoints table")]
    Table(#[from] statedb::Error),
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum RestoreError {
    #[error("address")]
    Ipam(#[from] IpamError),
    #[error("{0}")]
    Invalid(ApiError),
    #[error("every endpoint id is taken")]
    NoEndpointId,
}

pub(crate) struct Agent {
    db: Db,
    endpoints: Table<Endpoint>,
    store: Store,
    /// Also serializes requests: each one reads, changes and persists the state as a whole.
    ipam: Mutex<Ipam>,
}

impl Agent {
    /// The agent for `pod_cidr`, with the endpoints saved in `store` restored.
    pub(crate) fn new(db: Db, pod_cidr: Cidr, store: Store) -> Result<Agent, AgentError> {
        let endpoints = register_endpoints_table(&db)?;
        let mut ipam = Ipam::new(pod_cidr)?;
        let saved = store.load()?;
        let mut txn = db.write_txn(&[&endpoints]);
        for wire in &saved {
            let mut restore = || -> Result<Endpoint, RestoreError> {
                let mut endpoint = from_wire(wire).map_err(RestoreError::Invalid)?;
                if endpoint.id == 0 || txn.get(&endpoints, &ENDPOINT_ID, &endpoint.id).is_some() {
                    endpoint.id = free_id(&txn, &endpoints).ok_or(RestoreError::NoEndpointId)?;
                }
                ipam.reserve(endpoint.ipv4, &endpoint.container_id)?;
                Ok(endpoint)
            };
            let endpoint = restore().map_err(|source| AgentError::Restore {
                container_id: wire.container_id.clone(),
                source,
            })?;
            txn.insert(&endpoints, endpoint)?;
        }
        txn.commit();
        tracing::info!(
            pod_cidr = %ipam.cidr(),
            endpoints = saved.len(),
            state = %store.path().display(),
            "restored endpoints"
        );
        Ok(Agent {
            db,
            endpoints,
            store,
            ipam: Mutex::new(ipam),
        })
    }

    pub(crate) fn handle(&self, request: Request) -> Response {
        let result = match request {
            Request::EndpointAdd(add) => self.add(add),
            Request::EndpointReady(ready) => self.ready(ready),
            Request::EndpointDelete(key) => self.delete(&key),
            Request::EndpointGet(key) => self.get(&key),
            Request::Status => Ok(Response::Status(self.status())),
            other => Err(ApiError::new(
                ErrorCode::Invalid,
                format!("{other:?} is not an endpoint request"),
            )),
        };
        result.unwrap_or_else(Response::Error)
    }

    pub(crate) fn endpoints_table(&self) -> &Table<Endpoint> {
        &self.endpoints
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ipam> {
        self.ipam.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn current(&self, container_id: &str) -> Option<Endpoint> {
        self.db
            .read_txn()
            .get(&self.endpoints, &ENDPOINT_CONTAINER, container_id)
            .map(|entry| (*entry.object).clone())
    }

    /// Persists the table as it will be with `upsert` written and `remove` deleted, then
    /// commits that to the table: a request changes both the state directory and the table, or
    /// neither.
    fn commit(&self, upsert: Option<&Endpoint>, remove: Option<&str>) -> Result<(), ApiError> {
        let mut txn = self.db.write_txn(&[&self.endpoints]);
        let mut next: Vec<agent_api::Endpoint> = txn
            .all(&self.endpoints)
            .filter(|entry| {
                let id = entry.object.container_id.as_str();
                Some(id) != remove && Some(id) != upsert.map(|e| e.container_id.as_str())
            })
            .map(|entry| to_wire(&entry.object))
            .collect();
        next.extend(upsert.map(to_wire));
        self.store.save(&next).map_err(|err| {
            let chain = reconcilers::error_chain(&err);
            tracing::error!(error = %chain, "cannot persist endpoints");
            ApiError::new(ErrorCode::Internal, chain)
        })?;
        let internal = |err: statedb::Error| ApiError::new(ErrorCode::Internal, err.to_string());
        if let Some(id) = remove
            && let Some(entry) = txn.get(&self.endpoints, &ENDPOINT_CONTAINER, id)
        {
            let old = std::sync::Arc::clone(&entry.object);
            txn.delete(&self.endpoints, &old).map_err(internal)?;
        }
        if let Some(endpoint) = upsert {
            txn.insert(&self.endpoints, endpoint.clone())
                .map_err(internal)?;
        }
        txn.commit();
        Ok(())
    }

    fn add(&self, add: EndpointAdd) -> Result<Response, ApiError> {
        validate_ref(&add.container_id, &add.ifname)?;
        let mut ipam = self.lock();
        if let Some(existing) = self.current(&add.container_id) {
            check_ifname(&existing, &add.ifname)?;
            if existing.netns == add.netns {
                return Ok(Response::Endpoint(to_wire(&existing)));
            }
            // The runtime recreated the sandbox under the same id: wire it up again.
            let endpoint = Endpoint {
                netns: add.netns,
                pod: add.pod.map(pod_name),
                host: None,
                state: EndpointState::WaitingForNetns,
                ..existing
            };
            self.commit(Some(&endpoint), None)?;
            return Ok(Response::Endpoint(to_wire(&endpoint)));
        }
        let Some(id) = free_id(&self.db.read_txn(), &self.endpoints) else {
            return Err(ApiError::new(
                ErrorCode::Exhausted,
                "every endpoint id (1..=65535) is taken",
            ));
        };
        let ipv4 = match add.ipv4 {
            Some(requested) => ipam
                .reserve(requested, &add.container_id)
                .map(|()| requested)
                .map_err(|err| {
                    tracing::warn!(container_id = %add.container_id, error = %err, "cannot reserve");
                    ApiError::new(ErrorCode::Conflict, err.to_string())
                })?,
            None => ipam.allocate(&add.container_id).map_err(|err| {
                tracing::warn!(container_id = %add.container_id, error = %err, "cannot allocate");
                ApiError::new(ErrorCode::Exhausted, err.to_string())
            })?,
        };
        let endpoint = Endpoint {
            container_id: add.container_id,
            id,
            pod: add.pod.map(pod_name),
            netns: add.netns,
            ifname: add.ifname,
            ipv4,
            host: None,
            state: EndpointState::WaitingForNetns,
            identity: None,
        };
        if let Err(err) = self.commit(Some(&endpoint), None) {
            ipam.release(ipv4);
            return Err(err);
        }
        tracing::info!(container_id = %endpoint.container_id, %ipv4, "endpoint added");
        Ok(Response::Endpoint(to_wire(&endpoint)))
    }

    fn ready(&self, ready: EndpointReady) -> Result<Response, ApiError> {
        validate_ref(&ready.container_id, &ready.ifname)?;
        let _ipam = self.lock();
        let existing = self.found(&ready.container_id, &ready.ifname)?;
        let host = HostLink {
            ifindex: ready.host.ifindex,
            ifname: ready.host.ifname,
            mac: parse_mac(&ready.host.mac)?,
            container_mac: parse_mac(&ready.container_mac)?,
        };
        let endpoint = Endpoint {
            host: Some(host),
            state: EndpointState::Ready,
            ..existing
        };
        self.commit(Some(&endpoint), None)?;
        tracing::info!(container_id = %endpoint.container_id, ipv4 = %endpoint.ipv4, "endpoint ready");
        Ok(Response::Endpoint(to_wire(&endpoint)))
    }

    fn delete(&self, key: &EndpointRef) -> Result<Response, ApiError> {
        let mut ipam = self.lock();
        let Some(existing) = self.current(&key.container_id) else {
            return Ok(Response::Deleted(Deleted { endpoint: None }));
        };
        if existing.ifname != key.ifname {
            // Another interface of the container: not ours to delete.
            return Ok(Response::Deleted(Deleted { endpoint: None }));
        }
        self.commit(None, Some(&existing.container_id))?;
        ipam.release(existing.ipv4);
        tracing::info!(container_id = %existing.container_id, ipv4 = %existing.ipv4, "endpoint deleted");
        Ok(Response::Deleted(Deleted {
            endpoint: Some(to_wire(&existing)),
        }))
    }

    fn get(&self, key: &EndpointRef) -> Result<Response, ApiError> {
        self.found(&key.container_id, &key.ifname)
            .map(|endpoint| Response::Endpoint(to_wire(&endpoint)))
    }

    fn found(&self, container_id: &str, ifname: &str) -> Result<Endpoint, ApiError> {
        match self.current(container_id) {
            Some(endpoint) if endpoint.ifname == ifname => Ok(endpoint),
            _ => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no endpoint for container {container_id} interface {ifname}"),
            )),
        }
    }

    /// The address pool and endpoint count; the rest of the status is the node's.
    pub(crate) fn status(&self) -> AgentStatus {
        let ipam = self.lock();
        let endpoints = self.db.read_txn().len(&self.endpoints);
        AgentStatus {
            pod_cidr: ipam.cidr().to_string(),
            addresses_total: ipam.total(),
            addresses_free: ipam.free(),
            endpoints: u32::try_from(endpoints).unwrap_or(u32::MAX),
            reconcilers: Vec::new(),
            identities: 0,
            policies: 0,
        }
    }
}

/// The lowest endpoint id no endpoint has. Cilium's ids are small numbers too, which keeps
/// `endpoint list` and `bpf policy get ID` readable.
fn free_id(txn: &impl Txn, endpoints: &Table<Endpoint>) -> Option<u16> {
    let mut next: u16 = 1;
    // The id index iterates in id order.
    for entry in txn.lower_bound(endpoints, &ENDPOINT_ID, &1u16) {
        if entry.object.id != next {
            break;
        }
        next = next.checked_add(1)?;
    }
    Some(next)
}

/// The CNI spec's container ids and Linux's interface names, as the plugin checks them too.
fn validate_ref(container_id: &str, ifname: &str) -> Result<(), ApiError> {
    if agent_api::container_id_problem(container_id).is_some() {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!("container id {container_id:?} must be [A-Za-z0-9_.-]+"),
        ));
    }
    if agent_api::ifname_problem(ifname).is_some() {
        return Err(ApiError::new(
            ErrorCode::Invalid,
            format!("interface name {ifname:?} is not a valid linux interface name"),
        ));
    }
    Ok(())
}

fn check_ifname(existing: &Endpoint, ifname: &str) -> Result<(), ApiError> {
    if existing.ifname == ifname {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::Conflict,
        format!(
            "container {} already has interface {}; one interface per container is supported, not {ifname}",
            existing.container_id, existing.ifname
        ),
    ))
}

/// [`agent_api::parse_mac`], refusing the request if it is not a MAC address.
fn parse_mac(text: &str) -> Result<[u8; 6], ApiError> {
    agent_api::parse_mac(text)
        .ok_or_else(|| ApiError::new(ErrorCode::Invalid, format!("{text:?} is not a mac address")))
}

fn pod_name(pod: agent_api::PodRef) -> PodName {
    PodName {
        namespace: pod.namespace,
        name: pod.name,
    }
}

fn to_wire(endpoint: &Endpoint) -> agent_api::Endpoint {
    agent_api::Endpoint {
        container_id: endpoint.container_id.clone(),
        id: endpoint.id,
        ifname: endpoint.ifname.clone(),
        netns: endpoint.netns.clone(),
        pod: endpoint.pod.as_ref().map(|pod| agent_api::PodRef {
            namespace: pod.namespace.clone(),
            name: pod.name.clone(),
        }),
        ipv4: endpoint.ipv4,
        gateway: POD_GATEWAY,
        host: endpoint.host.as_ref().map(|host| agent_api::HostInterface {
            ifindex: host.ifindex,
            ifname: host.ifname.clone(),
            mac: format_mac(&host.mac),
        }),
        container_mac: endpoint
            .host
            .as_ref()
            .map(|host| format_mac(&host.container_mac)),
        state: match endpoint.state {
            EndpointState::WaitingForNetns => agent_api::EndpointState::WaitingForNetns,
            EndpointState::Ready => agent_api::EndpointState::Ready,
        },
        identity: endpoint.identity,
    }
}

fn from_wire(wire: &agent_api::Endpoint) -> Result<Endpoint, ApiError> {
    validate_ref(&wire.container_id, &wire.ifname)?;
    let host = match (&wire.host, &wire.container_mac) {
        (Some(host), Some(container_mac)) => Some(HostLink {
            ifindex: host.ifindex,
            ifname: host.ifname.clone(),
            mac: parse_mac(&host.mac)?,
            container_mac: parse_mac(container_mac)?,
        }),
        _ => None,
    };
    let state = match (wire.state, &host) {
        (agent_api::EndpointState::Ready, Some(_)) => EndpointState::Ready,
        _ => EndpointState::WaitingForNetns,
    };
    Ok(Endpoint {
        container_id: wire.container_id.clone(),
        id: wire.id,
        pod: wire.pod.clone().map(pod_name),
        netns: wire.netns.clone(),
        ifname: wire.ifname.clone(),
        ipv4: wire.ipv4,
        host,
        state,
        identity: wire.identity,
    })
}
