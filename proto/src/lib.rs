//! Protobuf messages and gRPC services of Ordo.
//!
//! `common`, `msp` and `orderer` keep Hyperledger Fabric's package names, message names and field
//! numbers (see shared/FABRIC-WIRE.md), so Fabric's own bindings read and write them. `ordo` holds
//! Ordo's own messages: channel configuration and consenter metadata.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod common {
    tonic::include_proto!("common");
}

pub mod msp {
    tonic::include_proto!("msp");
}

pub mod orderer {
    tonic::include_proto!("orderer");
}

pub mod ordo {
    tonic::include_proto!("ordo");
}
