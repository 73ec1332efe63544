//! Generates `schema::flow`, `schema::relay` and `schema::observer` from `proto/` with protox
//! (a protobuf compiler in Rust, so no `protoc` is needed) and tonic-prost-build.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let protos = ["proto/flow/flow.proto", "proto/observer/observer.proto"];
    for file in [
        "proto/flow/flow.proto",
        "proto/relay/relay.proto",
        "proto/observer/observer.proto",
    ] {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(protos, ["proto"]).context("compiling schema/proto")?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Callers bring their own transport (a unix socket for the agent).
        .build_transport(false)
        // A flow is large; the response is mostly moved around in streams.
        .boxed(".observer.GetFlowsResponse.response_types.flow")
        .compile_fds(fds)
        .context("generating Rust from schema/proto")?;
    Ok(())
}
