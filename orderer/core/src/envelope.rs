//! Building signed Fabric envelopes (the client side: peer-sim, the genesis tool, tests).

use bytes::Bytes;
use ordo_proto::common::{ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader};
use ordo_proto::orderer::{seek_position, SeekInfo, SeekPosition, SeekSpecified};
use prost::Message;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::identity::Signer;

/// Fabric's transaction id: lowercase hex of SHA-256(nonce ‖ creator).
pub fn tx_id(nonce: &[u8], creator: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(nonce);
    hasher.update(creator);
    hex::encode(hasher.finalize())
}

/// A fresh 24-byte nonce, as Fabric's clients use.
pub fn nonce() -> Bytes {
    let mut nonce = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut nonce);
    Bytes::copy_from_slice(&nonce)
}

/// A signed envelope of `header_type` carrying `data`, with a fresh nonce and matching tx_id.
pub fn build(signer: &Signer, channel_id: &str, header_type: HeaderType, data: Bytes) -> Envelope {
    build_with_tx_id(signer, channel_id, header_type, data).0
}

/// [`build`], also returning the envelope's tx_id.
pub fn build_with_tx_id(
    signer: &Signer,
    channel_id: &str,
    header_type: HeaderType,
    data: Bytes,
) -> (Envelope, String) {
    let nonce = nonce();
    let tx_id = tx_id(&nonce, signer.creator());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let channel_header = ChannelHeader {
        r#type: header_type as i32,
        channel_id: channel_id.to_string(),
        tx_id: tx_id.clone(),
        timestamp: Some(prost_types::Timestamp {
            seconds: now.as_secs() as i64,
            nanos: now.subsec_nanos() as i32,
        }),
        ..Default::default()
    };
    let signature_header = SignatureHeader {
        creator: signer.creator().clone(),
        nonce,
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec().into(),
            signature_header: signature_header.encode_to_vec().into(),
        }),
        data,
    }
    .encode_to_vec();
    let signature = signer.sign(&payload);
    let envelope = Envelope {
        payload: payload.into(),
        signature: Bytes::copy_from_slice(&signature),
    };
    (envelope, tx_id)
}

/// A Deliver request for blocks `start..=stop` (`stop` = `u64::MAX` follows the chain forever).
pub fn seek(
    signer: &Signer,
    channel_id: &str,
    start: SeekPosition,
    stop: SeekPosition,
    behavior: i32,
) -> Envelope {
    let info = SeekInfo {
        start: Some(start),
        stop: Some(stop),
        behavior,
        ..Default::default()
    };
    build(
        signer,
        channel_id,
        HeaderType::DeliverSeekInfo,
        info.encode_to_vec().into(),
    )
}

pub fn specified(number: u64) -> SeekPosition {
    SeekPosition {
        r#type: Some(seek_position::Type::Specified(SeekSpecified { number })),
    }
}

/// The tx_id of a canonical envelope, as stored in a block; `None` if it does not parse.
pub fn stored_tx_id(envelope: &[u8]) -> Option<String> {
    let env = Envelope::decode(envelope).ok()?;
    let payload = Payload::decode(env.payload.as_ref()).ok()?;
    let header = ChannelHeader::decode(payload.header?.channel_header.as_ref()).ok()?;
    Some(header.tx_id)
}
