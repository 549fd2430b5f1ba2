//! Protobuf messages of Ordo, and with the `grpc` feature its gRPC services.
//!
//! `common`, `msp` and `orderer` keep Hyperledger Fabric's package names, message names and field
//! numbers (see shared/FABRIC-WIRE.md), so Fabric's own bindings read and write them. `ordo` holds
//! Ordo's own messages: channel configuration and consenter metadata.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.rs"));
}

pub mod msp {
    include!(concat!(env!("OUT_DIR"), "/msp.rs"));
}

pub mod orderer {
    include!(concat!(env!("OUT_DIR"), "/orderer.rs"));
}

pub mod ordo {
    include!(concat!(env!("OUT_DIR"), "/ordo.rs"));
}
