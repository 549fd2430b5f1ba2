//! The block writer: turns a cut batch into a Fabric block — data hash, header hash chain,
//! LAST_CONFIG, the consensus type's metadata, and this node's signature. Pure but for the
//! random nonce of the signature header.

use bytes::Bytes;
use ordo_proto::common::{
    Block, BlockData, BlockHeader, BlockMetadata, BlockMetadataIndex, LastConfig, Metadata,
    MetadataSignature, OrdererBlockMetadata, SignatureHeader,
};
use prost::Message;

use crate::block::{self, METADATA_SLOTS};
use crate::envelope;
use crate::msp::SigningIdentity;

/// What a block says beyond its transactions.
#[derive(Clone, Debug)]
pub struct BlockInfo {
    pub number: u64,
    /// Number of the newest config block, this one included if it is a config block.
    pub last_config: u64,
    /// What the consensus type needs to resume after this block, encoded by the type (opaque
    /// here); empty for genesis.
    pub consenter_metadata: Bytes,
}

pub struct BlockWriter {
    signer: SigningIdentity,
}

impl BlockWriter {
    pub fn new(signer: SigningIdentity) -> Self {
        BlockWriter { signer }
    }

    /// A signed block holding `data` (canonical envelope bytes, stored as they are).
    pub fn write(&self, info: BlockInfo, previous_hash: &[u8], data: Vec<Bytes>) -> Block {
        let header = BlockHeader {
            number: info.number,
            previous_hash: Bytes::copy_from_slice(previous_hash),
            data_hash: Bytes::copy_from_slice(&block::data_hash(&data)),
        };
        let value = orderer_metadata_value(&info);
        let signature_header: Bytes = SignatureHeader {
            creator: self.signer.serialized().clone(),
            nonce: envelope::nonce(),
        }
        .encode_to_vec()
        .into();
        let header_bytes = block::header_bytes(&header);
        let mut message =
            Vec::with_capacity(value.len() + signature_header.len() + header_bytes.len());
        message.extend_from_slice(&value);
        message.extend_from_slice(&signature_header);
        message.extend_from_slice(&header_bytes);
        let signature = self.signer.sign(&message);
        let signatures = Metadata {
            value,
            signatures: vec![MetadataSignature {
                signature_header,
                signature: signature.into(),
                identifier_header: Bytes::new(),
            }],
        };
        Block {
            header: Some(header),
            data: Some(BlockData { data }),
            metadata: Some(metadata(signatures, info.last_config)),
        }
    }
}

fn orderer_metadata_value(info: &BlockInfo) -> Bytes {
    let consenter = Metadata {
        value: info.consenter_metadata.clone(),
        signatures: vec![],
    };
    OrdererBlockMetadata {
        last_config: Some(LastConfig {
            index: info.last_config,
        }),
        consenter_metadata: consenter.encode_to_vec().into(),
    }
    .encode_to_vec()
    .into()
}

fn metadata(signatures: Metadata, last_config: u64) -> BlockMetadata {
    let mut slots = vec![Bytes::new(); METADATA_SLOTS];
    slots[BlockMetadataIndex::Signatures as usize] = signatures.encode_to_vec().into();
    slots[BlockMetadataIndex::LastConfig as usize] = Metadata {
        value: LastConfig { index: last_config }.encode_to_vec().into(),
        signatures: vec![],
    }
    .encode_to_vec()
    .into();
    BlockMetadata { metadata: slots }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestChannel;

    #[test]
    fn written_blocks_verify_and_chain() {
        let ch = TestChannel::new();
        let writer = BlockWriter::new(ch.orderer.clone());
        let genesis = &ch.genesis;
        let h0 = block::verify_chain(genesis, None).unwrap();

        let data = vec![Bytes::from_static(b"tx1"), Bytes::from_static(b"tx2")];
        let info = BlockInfo {
            number: 1,
            last_config: 0,
            consenter_metadata: Bytes::from_static(b"resume here"),
        };
        let b1 = writer.write(info.clone(), &h0, data.clone());
        block::verify_chain(&b1, Some(&h0)).unwrap();
        block::verify_signature(&b1, &ch.bundle).unwrap();
        assert_eq!(
            block::consenter_metadata(&b1).unwrap(),
            Bytes::from_static(b"resume here")
        );
        assert_eq!(block::last_config_index(&b1), Some(0));
        assert_eq!(b1.metadata.as_ref().unwrap().metadata.len(), 5);

        // A changed transaction breaks the data hash; a wrong previous hash breaks the chain.
        let mut tampered = b1.clone();
        tampered.data.as_mut().unwrap().data[0] = Bytes::from_static(b"tx9");
        assert!(block::verify_chain(&tampered, Some(&h0)).is_err());
        assert!(block::verify_chain(&b1, Some(&[0; 32])).is_err());
        // Signed by an application org's identity, or by another channel's orderer: refused.
        let by_client = BlockWriter::new(ch.client.clone()).write(info.clone(), &h0, data.clone());
        assert!(block::verify_signature(&by_client, &ch.bundle).is_err());
        let elsewhere = TestChannel::new();
        let by_stranger = BlockWriter::new(elsewhere.orderer.clone()).write(info, &h0, data);
        assert!(block::verify_signature(&by_stranger, &ch.bundle).is_err());
        // Header tampering invalidates the signature.
        let mut renumbered = b1.clone();
        renumbered.header.as_mut().unwrap().number = 2;
        assert!(block::verify_signature(&renumbered, &ch.bundle).is_err());
    }
}
