//! Checks on incoming envelopes, answered with Fabric statuses. Pure: no I/O.
//!
//! The order, for Broadcast: malformed → BAD_REQUEST; (unknown channel → NOT_FOUND, by the
//! caller); larger than AbsoluteMaxBytes → REQUEST_ENTITY_TOO_LARGE; bad signature or creator not
//! allowed → FORBIDDEN; tx_id not SHA-256(nonce ‖ creator) → BAD_REQUEST.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ordo_proto::common::{ChannelHeader, Envelope, Header, Payload, SignatureHeader, Status};
use prost::Message;

use crate::envelope::tx_id;
use crate::identity::Creator;

/// A refusal: the status for the client and a readable reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{status:?}: {info}")]
pub struct Rejection {
    pub status: Status,
    pub info: String,
}

impl Rejection {
    pub fn new(status: Status, info: impl Into<String>) -> Self {
        Rejection {
            status,
            info: info.into(),
        }
    }
    pub fn bad_request(info: impl Into<String>) -> Self {
        Self::new(Status::BadRequest, info)
    }
    pub fn forbidden(info: impl Into<String>) -> Self {
        Self::new(Status::Forbidden, info)
    }
}

/// The headers of an envelope, decoded; the signature is not yet checked.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub header_type: i32,
    pub channel_id: String,
    pub tx_id: String,
    pub creator: Creator,
    pub creator_bytes: Bytes,
    pub nonce: Bytes,
    pub data: Bytes,
    /// The channel header's timestamp, as the client's clock had it.
    pub timestamp: Option<prost_types::Timestamp>,
    /// `len(payload) + len(signature)`: what size rules count.
    pub size: usize,
}

/// Creators already decoded, by their bytes: decompressing an Ed25519 key costs about as much as
/// a signature check, and a client sends many envelopes under one identity.
#[derive(Default)]
pub struct CreatorCache {
    creators: std::collections::HashMap<Bytes, Creator>,
}

impl CreatorCache {
    /// Identities remembered, at most; past it the cache starts over.
    const CAPACITY: usize = 1024;

    fn get(&mut self, bytes: &Bytes) -> Result<Creator, String> {
        if let Some(creator) = self.creators.get(bytes) {
            return Ok(creator.clone());
        }
        let creator = Creator::parse(bytes)?;
        if self.creators.len() >= Self::CAPACITY {
            self.creators.clear();
        }
        self.creators.insert(bytes.clone(), creator.clone());
        Ok(creator)
    }
}

/// Decodes the payload, header, channel header and signature header of an envelope.
pub fn parse(envelope: &Envelope) -> Result<Parsed, Rejection> {
    parse_cached(envelope, &mut CreatorCache::default())
}

/// [`parse`], decoding the creator through `cache`.
pub fn parse_cached(envelope: &Envelope, cache: &mut CreatorCache) -> Result<Parsed, Rejection> {
    let bad = |info: String| Rejection::bad_request(info);
    if envelope.payload.is_empty() {
        return Err(bad("envelope has an empty payload".into()));
    }
    if envelope.signature.is_empty() {
        return Err(bad("envelope has an empty signature".into()));
    }
    let payload = Payload::decode(envelope.payload.as_ref())
        .map_err(|e| bad(format!("payload does not decode: {e}")))?;
    let header: Header = payload
        .header
        .ok_or_else(|| bad("payload has no header".into()))?;
    let channel_header = ChannelHeader::decode(header.channel_header.as_ref())
        .map_err(|e| bad(format!("channel header does not decode: {e}")))?;
    let signature_header = SignatureHeader::decode(header.signature_header.as_ref())
        .map_err(|e| bad(format!("signature header does not decode: {e}")))?;
    if channel_header.channel_id.is_empty() {
        return Err(bad("channel header has no channel_id".into()));
    }
    if signature_header.nonce.is_empty() {
        return Err(bad("signature header has no nonce".into()));
    }
    let creator = cache.get(&signature_header.creator).map_err(bad)?;
    Ok(Parsed {
        header_type: channel_header.r#type,
        channel_id: channel_header.channel_id,
        tx_id: channel_header.tx_id,
        creator,
        creator_bytes: signature_header.creator,
        nonce: signature_header.nonce,
        data: payload.data,
        timestamp: channel_header.timestamp,
        size: envelope.payload.len() + envelope.signature.len(),
    })
}

/// Size, signature and tx_id checks, in the order Broadcast applies them around the policy check.
pub fn check_size(parsed: &Parsed, absolute_max_bytes: u32) -> Result<(), Rejection> {
    if parsed.size > absolute_max_bytes as usize {
        return Err(Rejection::new(
            Status::RequestEntityTooLarge,
            format!(
                "envelope of {} bytes exceeds AbsoluteMaxBytes {absolute_max_bytes}",
                parsed.size
            ),
        ));
    }
    Ok(())
}

pub fn check_signature(parsed: &Parsed, envelope: &Envelope) -> Result<(), Rejection> {
    if !parsed
        .creator
        .verify(&envelope.payload, &envelope.signature)
    {
        return Err(Rejection::forbidden(format!(
            "signature of {} does not verify",
            parsed.creator.mspid
        )));
    }
    Ok(())
}

/// Fabric's clock-skew rule (`General.Authentication.TimeWindow`): an envelope without a
/// timestamp, or dated more than `window` away from the orderer's clock `now`, is refused, so an
/// old signed request cannot be replayed long after it was made. A zero window turns it off.
pub fn check_timestamp(
    parsed: &Parsed,
    now: SystemTime,
    window: Duration,
) -> Result<(), Rejection> {
    if window.is_zero() {
        return Ok(());
    }
    let Some(timestamp) = parsed.timestamp else {
        return Err(Rejection::bad_request("channel header has no timestamp"));
    };
    let at = SystemTime::try_from(timestamp)
        .map_err(|e| Rejection::bad_request(format!("channel header timestamp: {e}")))?;
    let skew = at.duration_since(now).unwrap_or_else(|e| e.duration());
    if skew > window {
        let seconds = |t: SystemTime| match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as i64,
            Err(e) => -(e.duration().as_secs() as i64),
        };
        return Err(Rejection::bad_request(format!(
            "envelope timestamp {}s (Unix) is more than {}s from the orderer's clock {}s",
            seconds(at),
            window.as_secs(),
            seconds(now)
        )));
    }
    Ok(())
}

pub fn check_tx_id(parsed: &Parsed) -> Result<(), Rejection> {
    if parsed.tx_id != tx_id(&parsed.nonce, &parsed.creator_bytes) {
        return Err(Rejection::bad_request(format!(
            "tx_id {:?} is not SHA-256(nonce ‖ creator)",
            parsed.tx_id
        )));
    }
    Ok(())
}

/// Verifies many envelopes' signatures at once: one batch verification (about twice as fast per
/// signature), and only if it fails, one by one, so exactly the bad ones are refused.
pub fn verify_signatures(items: &[(&Parsed, &Envelope)]) -> Vec<bool> {
    if items.len() > 1 {
        let parts: Option<Vec<_>> = items
            .iter()
            .map(|(parsed, envelope)| {
                let signature = ed25519_dalek::Signature::from_slice(&envelope.signature).ok()?;
                Some((envelope.payload.as_ref(), signature, parsed.creator.key))
            })
            .collect();
        if let Some(parts) = parts {
            let messages: Vec<&[u8]> = parts.iter().map(|p| p.0).collect();
            let signatures: Vec<_> = parts.iter().map(|p| p.1).collect();
            let keys: Vec<_> = parts.iter().map(|p| p.2).collect();
            if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_ok() {
                return vec![true; items.len()];
            }
        }
    }
    items
        .iter()
        .map(|(parsed, envelope)| check_signature(parsed, envelope).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::build;
    use crate::identity::Signer;
    use ordo_proto::common::HeaderType;

    fn envelope() -> (Signer, Envelope) {
        let signer = Signer::generate("Org1MSP");
        let env = build(
            &signer,
            "ch",
            HeaderType::EndorserTransaction,
            Bytes::from_static(b"tx"),
        );
        (signer, env)
    }

    #[test]
    fn a_good_envelope_passes_every_check() {
        let (_, env) = envelope();
        let parsed = parse(&env).unwrap();
        assert_eq!(parsed.channel_id, "ch");
        assert_eq!(parsed.size, env.payload.len() + env.signature.len());
        check_size(&parsed, 1 << 20).unwrap();
        check_signature(&parsed, &env).unwrap();
        check_tx_id(&parsed).unwrap();
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        let (_, env) = envelope();
        let mut parsed = parse(&env).unwrap();
        let window = Duration::from_secs(15 * 60);
        let now = SystemTime::now();
        check_timestamp(&parsed, now, window).unwrap();
        let minutes = |m: u64| Duration::from_secs(m * 60);
        check_timestamp(&parsed, now + minutes(14), window).unwrap();
        check_timestamp(&parsed, now - minutes(14), window).unwrap();
        for skewed in [now + minutes(16), now - minutes(16)] {
            let refused = check_timestamp(&parsed, skewed, window).unwrap_err();
            assert_eq!(refused.status, Status::BadRequest, "{}", refused.info);
        }
        check_timestamp(&parsed, now + minutes(60), Duration::ZERO).unwrap();
        parsed.timestamp = None;
        assert_eq!(
            check_timestamp(&parsed, now, window).unwrap_err().status,
            Status::BadRequest
        );
    }

    #[test]
    fn batch_verification_singles_out_the_bad_signatures() {
        let envelopes: Vec<Envelope> = (0..5).map(|_| envelope().1).collect();
        let mut envelopes = envelopes;
        let mut sig = envelopes[3].signature.to_vec();
        sig[10] ^= 1;
        envelopes[3].signature = sig.into();
        let parsed: Vec<Parsed> = envelopes.iter().map(|e| parse(e).unwrap()).collect();
        let items: Vec<_> = parsed.iter().zip(&envelopes).collect();
        assert_eq!(
            verify_signatures(&items),
            vec![true, true, true, false, true]
        );
        assert_eq!(verify_signatures(&items[..3]), vec![true; 3]);
        assert_eq!(verify_signatures(&items[3..4]), vec![false]);
    }

    #[test]
    fn each_failure_has_its_status() {
        let (_, env) = envelope();
        let garbage = Envelope {
            payload: Bytes::from_static(b"\xff\xff\xff"),
            signature: Bytes::from_static(b"s"),
        };
        assert_eq!(parse(&garbage).unwrap_err().status, Status::BadRequest);
        let unsigned = Envelope {
            signature: Bytes::new(),
            ..env.clone()
        };
        assert_eq!(parse(&unsigned).unwrap_err().status, Status::BadRequest);

        let parsed = parse(&env).unwrap();
        assert_eq!(
            check_size(&parsed, 10).unwrap_err().status,
            Status::RequestEntityTooLarge
        );
        let mut forged = env.clone();
        let mut sig = forged.signature.to_vec();
        sig[0] ^= 1;
        forged.signature = sig.into();
        assert_eq!(
            check_signature(&parse(&forged).unwrap(), &forged)
                .unwrap_err()
                .status,
            Status::Forbidden
        );
        let mut wrong_id = parsed.clone();
        wrong_id.tx_id = "00".into();
        assert_eq!(
            check_tx_id(&wrong_id).unwrap_err().status,
            Status::BadRequest
        );
    }
}
