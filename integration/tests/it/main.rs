//! The integration-test binary: tests that need root, network namespaces and the real kernel.

mod agent_restart;
mod bpf_reconciler;
mod cni;
mod datapath;
mod embedded;
mod l7_proxy;
mod netns;
mod netpol_probe;
mod observe;
mod relay;
mod route_reconciler;
mod routes;
mod telemetry;
mod tutorials;
mod workload;
