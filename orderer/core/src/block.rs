//! Block hashing and verification, as Fabric defines them (shared/FABRIC-WIRE.md). Pure: no I/O.
//!
//! - header bytes: DER of `SEQUENCE { number INTEGER, previous_hash OCTET STRING, data_hash OCTET STRING }`
//! - block hash: SHA-256 of the header bytes
//! - data hash: SHA-256 of the concatenated `BlockData.data` entries
//! - signature: over `value ‖ signature_header ‖ header_bytes` of the SIGNATURES metadata

use bytes::Bytes;
use ordo_proto::common::{
    Block, BlockHeader, BlockMetadataIndex, LastConfig, Metadata, OrdererBlockMetadata,
    SignatureHeader,
};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::bundle::{paths, Bundle};
use crate::policies::SignedData;

/// Number of `BlockMetadata.metadata` slots: one per `BlockMetadataIndex` value.
pub const METADATA_SLOTS: usize = 5;

/// The ASN.1 DER bytes of a block header, the input of the block hash.
pub fn header_bytes(header: &BlockHeader) -> Vec<u8> {
    let mut body = Vec::with_capacity(80);
    der_unsigned_integer(&mut body, header.number);
    der_octet_string(&mut body, &header.previous_hash);
    der_octet_string(&mut body, &header.data_hash);
    let mut out = Vec::with_capacity(body.len() + 4);
    out.push(0x30); // SEQUENCE, constructed
    der_length(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

pub fn header_hash(header: &BlockHeader) -> [u8; 32] {
    Sha256::digest(header_bytes(header)).into()
}

pub fn data_hash<B: AsRef<[u8]>>(data: &[B]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for entry in data {
        hasher.update(entry.as_ref());
    }
    hasher.finalize().into()
}

fn der_length(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

fn der_unsigned_integer(out: &mut Vec<u8>, value: u64) {
    let bytes = value.to_be_bytes();
    // Minimal encoding: no leading zero bytes (but at least one byte), and a 0x00 pad where the
    // top bit would otherwise read as a sign.
    let first = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len() - 1);
    let pad = bytes[first] & 0x80 != 0;
    out.push(0x02);
    out.push((bytes.len() - first + usize::from(pad)) as u8);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(&bytes[first..]);
}

fn der_octet_string(out: &mut Vec<u8>, value: &[u8]) {
    out.push(0x04);
    der_length(out, value.len());
    out.extend_from_slice(value);
}

/// The metadata slot `index` of a block, decoded as `common.Metadata`.
pub fn metadata(block: &Block, index: BlockMetadataIndex) -> Option<Metadata> {
    let slot = block.metadata.as_ref()?.metadata.get(index as usize)?;
    Metadata::decode(slot.as_ref()).ok()
}

/// The `OrdererBlockMetadata` signed in the SIGNATURES slot.
pub fn orderer_metadata(block: &Block) -> Option<OrdererBlockMetadata> {
    let signatures = metadata(block, BlockMetadataIndex::Signatures)?;
    OrdererBlockMetadata::decode(signatures.value.as_ref()).ok()
}

/// A block's consenter metadata: what its consensus type recorded to resume after it, in the
/// type's own message (`ordo.SoloMetadata`, `ordo.RaftMetadata`), which the type decodes.
pub fn consenter_metadata(block: &Block) -> Option<Bytes> {
    let orderer = orderer_metadata(block)?;
    let inner = Metadata::decode(orderer.consenter_metadata.as_ref()).ok()?;
    Some(inner.value)
}

/// The number of the last config block, as the block says it.
pub fn last_config_index(block: &Block) -> Option<u64> {
    if let Some(index) = orderer_metadata(block).and_then(|m| m.last_config) {
        return Some(index.index);
    }
    let slot = metadata(block, BlockMetadataIndex::LastConfig)?;
    LastConfig::decode(slot.value.as_ref())
        .ok()
        .map(|l| l.index)
}

/// Why a block failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block {number}: {reason}")]
pub struct VerifyError {
    pub number: u64,
    pub reason: String,
}

/// Checks a block's data hash and, given the previous block's header hash, its place in the chain.
pub fn verify_chain(block: &Block, previous: Option<&[u8; 32]>) -> Result<[u8; 32], VerifyError> {
    let fail = |number, reason: String| VerifyError { number, reason };
    let header = block
        .header
        .as_ref()
        .ok_or_else(|| fail(0, "no header".into()))?;
    let n = header.number;
    let data = block
        .data
        .as_ref()
        .map(|d| d.data.as_slice())
        .unwrap_or(&[]);
    if header.data_hash.as_ref() != data_hash(data) {
        return Err(fail(n, "data hash does not match the data".into()));
    }
    match previous {
        Some(prev) if header.previous_hash.as_ref() != prev => {
            return Err(fail(
                n,
                "previous_hash does not match the previous block".into(),
            ))
        }
        None if n == 0 && !header.previous_hash.is_empty() => {
            return Err(fail(n, "genesis block has a previous_hash".into()))
        }
        _ => {}
    }
    Ok(header_hash(header))
}

/// Checks a block's signatures as Fabric's peers do: the signatures over its SIGNATURES value
/// (value ‖ signature header ‖ DER header) must satisfy the channel's
/// /Channel/Orderer/BlockValidation policy under `bundle`, the configuration in force for the
/// block.
pub fn verify_signature(block: &Block, bundle: &Bundle) -> Result<(), VerifyError> {
    let header = block.header.clone().unwrap_or_default();
    let fail = |reason: String| VerifyError {
        number: header.number,
        reason,
    };
    let signatures = metadata(block, BlockMetadataIndex::Signatures)
        .ok_or_else(|| fail("no SIGNATURES metadata".into()))?;
    if signatures.signatures.is_empty() {
        return Err(fail("not signed".into()));
    }
    let header_bytes = header_bytes(&header);
    let mut signed = Vec::with_capacity(signatures.signatures.len());
    for sig in &signatures.signatures {
        let sig_header = SignatureHeader::decode(sig.signature_header.as_ref())
            .map_err(|e| fail(format!("undecodable signature header: {e}")))?;
        let mut message = Vec::with_capacity(
            signatures.value.len() + sig.signature_header.len() + header_bytes.len(),
        );
        message.extend_from_slice(&signatures.value);
        message.extend_from_slice(&sig.signature_header);
        message.extend_from_slice(&header_bytes);
        signed.push(SignedData {
            data: message.into(),
            identity: sig_header.creator,
            signature: sig.signature.clone(),
        });
    }
    bundle
        .evaluate(paths::BLOCK_VALIDATION, &signed)
        .map_err(|e| {
            fail(format!(
                "signatures do not satisfy the block validation policy: {e}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn der_integers_are_minimal() {
        let enc = |n| {
            let mut v = Vec::new();
            der_unsigned_integer(&mut v, n);
            v
        };
        assert_eq!(enc(0), vec![0x02, 0x01, 0x00]);
        assert_eq!(enc(1), vec![0x02, 0x01, 0x01]);
        assert_eq!(enc(127), vec![0x02, 0x01, 0x7f]);
        assert_eq!(enc(128), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(enc(256), vec![0x02, 0x02, 0x01, 0x00]);
        assert_eq!(
            enc(u64::MAX),
            vec![0x02, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn header_bytes_of_a_known_header() {
        // number 300, previous_hash = 32 x 0xAA, data_hash = 32 x 0xBB, encoded by hand:
        // 30 48 | 02 02 01 2c | 04 20 aa.. | 04 20 bb..
        let header = BlockHeader {
            number: 300,
            previous_hash: Bytes::from(vec![0xaa; 32]),
            data_hash: Bytes::from(vec![0xbb; 32]),
        };
        let mut expected = vec![0x30, 0x48, 0x02, 0x02, 0x01, 0x2c, 0x04, 0x20];
        expected.extend([0xaa; 32]);
        expected.extend([0x04, 0x20]);
        expected.extend([0xbb; 32]);
        assert_eq!(header_bytes(&header), expected);
        assert_eq!(
            header_hash(&header).to_vec(),
            Sha256::digest(&expected).to_vec()
        );
    }

    #[test]
    fn genesis_header_with_empty_previous_hash() {
        let header = BlockHeader {
            number: 0,
            previous_hash: Bytes::new(),
            data_hash: Bytes::from(vec![0x11; 32]),
        };
        let mut expected = vec![0x30, 0x27, 0x02, 0x01, 0x00, 0x04, 0x00, 0x04, 0x20];
        expected.extend([0x11; 32]);
        assert_eq!(header_bytes(&header), expected);
    }

    #[test]
    fn long_form_lengths() {
        let header = BlockHeader {
            number: 1,
            previous_hash: Bytes::from(vec![0; 200]),
            data_hash: Bytes::new(),
        };
        let bytes = header_bytes(&header);
        // body = 3 (integer) + 3 + 200 (octet string, 0x81 0xc8 length) + 2 = 208 = 0xd0
        assert_eq!(&bytes[..2], &[0x30, 0x81]);
        assert_eq!(bytes[2], 208);
        assert_eq!(&bytes[6..9], &[0x04, 0x81, 200]);
    }

    #[test]
    fn data_hash_is_sha256_of_the_concatenation() {
        let data = [Bytes::from_static(b"abc"), Bytes::from_static(b"def")];
        assert_eq!(
            data_hash(&data).to_vec(),
            Sha256::digest(b"abcdef").to_vec()
        );
        let empty: [Bytes; 0] = [];
        assert_eq!(data_hash(&empty).to_vec(), Sha256::digest(b"").to_vec());
    }
}
