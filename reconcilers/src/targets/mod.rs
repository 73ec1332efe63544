pub mod bpf;
pub mod routes;
