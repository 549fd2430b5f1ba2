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

/// `orderer.AtomicBroadcast` with Deliver answering `ordo::DeliverFrame`, the same wire as
/// `orderer::DeliverResponse` with each block as bytes: the server the node runs (it sends the
/// bytes the ledger stored), and a client for readers that need no decoded block.
#[cfg(feature = "grpc")]
pub mod stored {
    include!(concat!(env!("OUT_DIR"), "/orderer.AtomicBroadcast.rs"));
}

#[cfg(test)]
mod tests {
    use super::common::{Block, BlockData, BlockHeader, Status};
    use super::orderer::{deliver_response, DeliverResponse};
    use super::ordo::{deliver_frame, DeliverFrame};
    use prost::Message;

    /// Readers decode a `DeliverFrame` as Fabric's `DeliverResponse`: the encodings must match.
    #[test]
    fn deliver_frame_is_the_wire_of_deliver_response() {
        let block = Block {
            header: Some(BlockHeader {
                number: 7,
                previous_hash: vec![1; 32].into(),
                data_hash: vec![2; 32].into(),
            }),
            data: Some(BlockData {
                data: vec![vec![3; 100].into(), vec![4; 5].into()],
            }),
            metadata: None,
        };
        let response = DeliverResponse {
            r#type: Some(deliver_response::Type::Block(block.clone())),
        };
        let frame = DeliverFrame {
            r#type: Some(deliver_frame::Type::Block(block.encode_to_vec().into())),
        };
        assert_eq!(frame.encode_to_vec(), response.encode_to_vec());
        let status = |s: Status| {
            let response = DeliverResponse {
                r#type: Some(deliver_response::Type::Status(s as i32)),
            };
            let frame = DeliverFrame {
                r#type: Some(deliver_frame::Type::Status(s as i32)),
            };
            (frame.encode_to_vec(), response.encode_to_vec())
        };
        for s in [Status::Success, Status::NotFound, Status::Forbidden] {
            let (frame, response) = status(s);
            assert_eq!(frame, response);
        }
    }
}
