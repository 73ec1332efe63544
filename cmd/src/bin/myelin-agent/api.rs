//! Every API request, dispatched: endpoint requests to [`Agent`], manifests to [`Objects`],
//! reads to the views of the node's tables and datapath.

use schema::agent_api::{ApiError, BpfPolicyGet, ErrorCode, Manifest, Request, Response};

use crate::agent::Agent;
use crate::node::Node;
use crate::objects::Objects;

pub(crate) struct Api {
    pub(crate) agent: Agent,
    pub(crate) objects: Objects,
    pub(crate) node: Node,
}

impl Api {
    pub(crate) async fn handle(&self, request: Request) -> Response {
        match request {
            Request::EndpointAdd(_)
            | Request::EndpointReady(_)
            | Request::EndpointDelete(_)
            | Request::EndpointGet(_) => self.agent.handle(request),
            Request::Status => self.status(),
            Request::Apply(manifest) => self.change(&manifest, false).await,
            Request::Delete(manifest) => self.change(&manifest, true).await,
            Request::EndpointList => {
                Response::Endpoints(self.node.tables.endpoint_list(&self.node.read_txn()))
            }
            Request::IdentityList => {
                Response::Identities(self.node.tables.identity_list(&self.node.read_txn()))
            }
            Request::PolicyGet => {
                Response::Policy(self.node.tables.policy_rules(&self.node.read_txn()))
            }
            Request::BpfPolicyGet(BpfPolicyGet { endpoint }) => self.bpf_policy(endpoint),
        }
    }

    fn status(&self) -> Response {
        let mut status = self.agent.status();
        status.reconcilers = self.node.health();
        let (identities, policies) = self.node.counts();
        status.identities = identities;
        status.policies = policies;
        Response::Status(status)
    }

    async fn change(&self, manifest: &Manifest, delete: bool) -> Response {
        let result = if delete {
            self.objects.delete(manifest)
        } else {
            self.objects.apply(manifest)
        };
        match result {
            Ok((applied, revision)) => {
                tracing::Span::current().record("rev.objects", reconcilers::cause::field(revision));
                if manifest.wait {
                    self.node.wait_enforced().await;
                }
                Response::Applied(applied)
            }
            Err(err) => {
                let chain = reconcilers::error_chain(&err);
                tracing::error!(error = %chain, "cannot store objects");
                Response::Error(ApiError::new(ErrorCode::Internal, chain))
            }
        }
    }

    fn bpf_policy(&self, endpoint: u16) -> Response {
        let txn = self.node.read_txn();
        if !self.node.tables.has_endpoint(&txn, endpoint) {
            return Response::Error(ApiError::new(
                ErrorCode::NotFound,
                format!("no endpoint {endpoint}"),
            ));
        }
        match self.node.kernel_policy() {
            Ok(entries) => {
                Response::BpfPolicy(self.node.tables.bpf_policy(&txn, endpoint, entries))
            }
            Err(err) => Response::Error(ApiError::new(
                ErrorCode::Internal,
                reconcilers::error_chain(&err),
            )),
        }
    }
}
