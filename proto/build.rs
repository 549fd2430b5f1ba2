//! Compiles the .proto sources with protox (a pure-Rust compiler), so a fresh machine needs no protoc.
//! The gRPC services are generated only with the `grpc` feature: the pure core uses the messages
//! and must not pull in tonic and tokio.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/common/common.proto",
        "proto/common/configtx.proto",
        "proto/common/configuration.proto",
        "proto/common/policies.proto",
        "proto/msp/identities.proto",
        "proto/msp/msp_config.proto",
        "proto/msp/msp_principal.proto",
        "proto/orderer/ab.proto",
        "proto/orderer/configuration.proto",
        "proto/orderer/etcdraft/configuration.proto",
        "proto/orderer/etcdraft/metadata.proto",
        "proto/peer/configuration.proto",
        "proto/ordo/options.proto",
        "proto/ordo/ordo.proto",
    ];
    for file in &files {
        println!("cargo:rerun-if-changed={file}");
    }
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(grpc)
        .build_server(grpc)
        // Envelope and block payloads are passed along as received; `Bytes` makes that zero-copy.
        .bytes(".")
        // Maps as BTreeMap: encoded in key order, so a config (and a genesis block) encodes the
        // same way every time.
        .btree_map(".")
        .compile_fds(fds)?;
    if grpc {
        stored_deliver_server();
    }
    Ok(())
}

/// `orderer.AtomicBroadcast` once more, with Deliver answering `ordo.DeliverFrame` (the wire of
/// `DeliverResponse`, its block as bytes): the node serves this one, so it never decodes a block
/// to send it; a client that only passes blocks on or counts them reads with its client.
fn stored_deliver_server() {
    use tonic_prost_build::manual::{Builder, Method, Service};
    let method = |name: &str, route: &str, output: &str| {
        Method::builder()
            .name(name)
            .route_name(route)
            .input_type("crate::common::Envelope")
            .output_type(output)
            .codec_path("tonic_prost::ProstCodec")
            .client_streaming()
            .server_streaming()
            .build()
    };
    let service = Service::builder()
        .name("AtomicBroadcast")
        .package("orderer")
        .method(method(
            "broadcast",
            "Broadcast",
            "crate::orderer::BroadcastResponse",
        ))
        .method(method("deliver", "Deliver", "crate::ordo::DeliverFrame"))
        .build();
    Builder::new()
        .build_client(true)
        .build_server(true)
        .compile(&[service]);
}
