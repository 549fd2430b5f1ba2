//! Protobuf messages of Ordo, and with the `grpc` feature its gRPC services.
//!
//! `common`, `msp`, `orderer`, `etcdraft` and `protos` keep Hyperledger Fabric's package names, message names and field
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

/// etcdraft's consensus metadata (Fabric's `orderer/etcdraft` package).
pub mod etcdraft {
    include!(concat!(env!("OUT_DIR"), "/etcdraft.rs"));
}

/// The peer-side values of the channel configuration (Fabric's `peer` package, proto package
/// `protos`), decoded only to check them.
pub mod protos {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

pub mod ordo {
    include!(concat!(env!("OUT_DIR"), "/ordo.rs"));
}
