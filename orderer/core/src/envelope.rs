//! Building signed Fabric envelopes (the client side: peer-sim, the genesis tool, tests).

use bytes::Bytes;
use ordo_proto::common::{ChannelHeader, Envelope, Header, HeaderType, Payload, SignatureHeader};
use ordo_proto::orderer::{seek_position, SeekInfo, SeekPosition, SeekSpecified};
use prost::Message;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::msp::SigningIdentity;

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
pub fn build(
    signer: &SigningIdentity,
    channel_id: &str,
    header_type: HeaderType,
    data: Bytes,
) -> Envelope {
    build_with_tx_id(signer, channel_id, header_type, data).0
}

/// [`build`], also returning the envelope's tx_id.
pub fn build_with_tx_id(
    signer: &SigningIdentity,
    channel_id: &str,
    header_type: HeaderType,
    data: Bytes,
) -> (Envelope, String) {
    build_bound(signer, channel_id, header_type, data, Bytes::new())
}

/// [`build_with_tx_id`] bound to a TLS client certificate: `tls_cert_hash` is SHA-256 of its
/// DER (empty: unbound), which an orderer requiring mutual TLS checks against the connection.
pub fn build_bound(
    signer: &SigningIdentity,
    channel_id: &str,
    header_type: HeaderType,
    data: Bytes,
    tls_cert_hash: Bytes,
) -> (Envelope, String) {
    let nonce = nonce();
    let tx_id = tx_id(&nonce, signer.serialized());
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
        tls_cert_hash,
        ..Default::default()
    };
    let signature_header = SignatureHeader {
        creator: signer.serialized().clone(),
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
        signature: signature.into(),
    };
    (envelope, tx_id)
}

/// The CONFIG envelope an orderer makes of an accepted config update (FABRIC-CONFIG.md §5.5):
/// channel header version 0, epoch 0, no tx_id, dated `now` to the second; signed by the orderer.
pub fn config_envelope(
    signer: &SigningIdentity,
    channel_id: &str,
    config: &ordo_proto::common::ConfigEnvelope,
    now: std::time::SystemTime,
) -> Envelope {
    let seconds = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let channel_header = ChannelHeader {
        r#type: HeaderType::Config as i32,
        channel_id: channel_id.to_string(),
        timestamp: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        ..Default::default()
    };
    let signature_header = SignatureHeader {
        creator: signer.serialized().clone(),
        nonce: nonce(),
    };
    let payload = Payload {
        header: Some(Header {
            channel_header: channel_header.encode_to_vec().into(),
            signature_header: signature_header.encode_to_vec().into(),
        }),
        data: config.encode_to_vec().into(),
    }
    .encode_to_vec();
    let signature = signer.sign(&payload);
    Envelope {
        payload: payload.into(),
        signature: signature.into(),
    }
}

/// A Deliver request for blocks `start..=stop` (`stop` = `u64::MAX` follows the chain forever).
pub fn seek(
    signer: &SigningIdentity,
    channel_id: &str,
    start: SeekPosition,
    stop: SeekPosition,
    behavior: i32,
) -> Envelope {
    seek_bound(signer, channel_id, start, stop, behavior, Bytes::new())
}

/// [`seek`] bound to a TLS client certificate (see [`build_bound`]).
pub fn seek_bound(
    signer: &SigningIdentity,
    channel_id: &str,
    start: SeekPosition,
    stop: SeekPosition,
    behavior: i32,
    tls_cert_hash: Bytes,
) -> Envelope {
    let info = SeekInfo {
        start: Some(start),
        stop: Some(stop),
        behavior,
        ..Default::default()
    };
    build_bound(
        signer,
        channel_id,
        HeaderType::DeliverSeekInfo,
        info.encode_to_vec().into(),
        tls_cert_hash,
    )
    .0
}

pub fn specified(number: u64) -> SeekPosition {
    SeekPosition {
        r#type: Some(seek_position::Type::Specified(SeekSpecified { number })),
    }
}

/// An envelope's headers, decoded: the one decoder of `Payload → Header → ChannelHeader,
/// SignatureHeader` that Broadcast, Deliver, duplicate suppression and block readers share. The
/// creator stays bytes here; the identity layer decodes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Headers {
    pub header_type: i32,
    pub channel_id: String,
    pub tx_id: String,
    /// The channel header's timestamp, as the client's clock had it.
    pub timestamp: Option<prost_types::Timestamp>,
    /// The marshalled `msp.SerializedIdentity` of the signer.
    pub creator: Bytes,
    pub nonce: Bytes,
    /// The payload's data (a transaction, a `ChannelConfig`, a `SeekInfo`).
    pub data: Bytes,
}

/// Why an envelope's headers do not decode, or lack what every envelope must carry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("envelope does not decode: {0}")]
    Envelope(prost::DecodeError),
    #[error("envelope has an empty payload")]
    EmptyPayload,
    #[error("envelope has an empty signature")]
    EmptySignature,
    #[error("payload does not decode: {0}")]
    Payload(prost::DecodeError),
    #[error("payload has no header")]
    NoHeader,
    #[error("channel header does not decode: {0}")]
    ChannelHeader(prost::DecodeError),
    #[error("signature header does not decode: {0}")]
    SignatureHeader(prost::DecodeError),
    #[error("channel header has no channel_id")]
    NoChannelId,
    #[error("signature header has no nonce")]
    NoNonce,
}

impl Headers {
    /// Decodes the headers of a payload, as they are, without requiring any field. Decoding from
    /// `Bytes` slices the byte fields instead of copying them.
    pub fn decode(payload: Bytes) -> Result<Headers, HeaderError> {
        let payload = Payload::decode(payload).map_err(HeaderError::Payload)?;
        let header = payload.header.ok_or(HeaderError::NoHeader)?;
        let channel_header =
            ChannelHeader::decode(header.channel_header).map_err(HeaderError::ChannelHeader)?;
        let signature_header = SignatureHeader::decode(header.signature_header)
            .map_err(HeaderError::SignatureHeader)?;
        Ok(Headers {
            header_type: channel_header.r#type,
            channel_id: channel_header.channel_id,
            tx_id: channel_header.tx_id,
            timestamp: channel_header.timestamp,
            creator: signature_header.creator,
            nonce: signature_header.nonce,
            data: payload.data,
        })
    }

    /// Decodes a request's headers and requires what every request must carry: a payload, a
    /// signature, a channel and a nonce (the checks Broadcast and Deliver answer BAD_REQUEST).
    pub fn of_request(envelope: &Envelope) -> Result<Headers, HeaderError> {
        if envelope.payload.is_empty() {
            return Err(HeaderError::EmptyPayload);
        }
        if envelope.signature.is_empty() {
            return Err(HeaderError::EmptySignature);
        }
        let headers = Headers::decode(envelope.payload.clone())?;
        if headers.channel_id.is_empty() {
            return Err(HeaderError::NoChannelId);
        }
        if headers.nonce.is_empty() {
            return Err(HeaderError::NoNonce);
        }
        Ok(headers)
    }

    /// Decodes a canonical envelope (as a block or a log record holds it) and its headers.
    pub fn of_canonical(canonical: &Bytes) -> Result<(Envelope, Headers), HeaderError> {
        let envelope = Envelope::decode(canonical.clone()).map_err(HeaderError::Envelope)?;
        let headers = Headers::decode(envelope.payload.clone())?;
        Ok((envelope, headers))
    }
}

/// The tx_id of a canonical envelope, as stored in a block; `None` if it does not parse.
pub fn stored_tx_id(canonical: &Bytes) -> Option<String> {
    let (_, headers) = Headers::of_canonical(canonical).ok()?;
    Some(headers.tx_id).filter(|id| !id.is_empty())
}
