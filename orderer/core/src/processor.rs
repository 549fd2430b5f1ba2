//! Fabric's message processor: every rule Broadcast admits an envelope by, in one place and
//! each checked once, answered with Fabric statuses. Pure: the node supplies the run-time facts
//! (which channels exist, whether they serve, the clock).
//!
//! The order, for each envelope:
//!
//! 1. headers decode, with a channel, a nonce, a payload, a signature, and a creator the
//!    identity layer can read → BAD_REQUEST;
//! 2. timestamp within the time window of the orderer's clock → BAD_REQUEST;
//! 3. the channel exists → NOT_FOUND, and serves → SERVICE_UNAVAILABLE;
//! 4. no larger than the channel's AbsoluteMaxBytes → REQUEST_ENTITY_TOO_LARGE;
//! 5. the signature verifies (checked in one batch for the envelopes that arrived together)
//!    → FORBIDDEN;
//! 6. by header type: MESSAGE and ENDORSER_TRANSACTION (and types this version does not know)
//!    need a writer → FORBIDDEN; CONFIG needs an admin → FORBIDDEN, and a valid next
//!    configuration → BAD_REQUEST ([`check_config_update`]); any other type → BAD_REQUEST;
//! 7. tx_id is SHA-256(nonce ‖ creator) → BAD_REQUEST.
//!
//! An admitted envelope becomes its log record. The assembler checks a config record again when
//! it cuts it ([`recheck_config_record`]), under the configuration in force at that point of the
//! log, so every node accepts the same changes whatever it admitted.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ordo_proto::common::{Envelope, HeaderType, Status};
use prost::Message;

use crate::config::ChannelConfig;
use crate::entry::Entry;
use crate::envelope::{tx_id, Headers};
use crate::identity::{CreatorCache, Identity, Msp, Signed};
use crate::policy::ChannelPolicy;

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

/// A request's headers and signer, decoded; the signature is not yet checked.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub headers: Headers,
    pub identity: Identity,
    /// `len(payload) + len(signature)`: what size rules count.
    pub size: usize,
}

/// Rule 1: decodes a request's headers and its creator (through `creators`).
pub fn parse(envelope: &Envelope, creators: &mut CreatorCache) -> Result<Parsed, Rejection> {
    let headers =
        Headers::of_request(envelope).map_err(|e| Rejection::bad_request(e.to_string()))?;
    let identity = creators
        .get(&headers.creator)
        .map_err(|e| Rejection::bad_request(e.to_string()))?;
    Ok(Parsed {
        headers,
        identity,
        size: envelope.payload.len() + envelope.signature.len(),
    })
}

/// Rule 2, Fabric's clock-skew rule (`General.Authentication.TimeWindow`): an envelope without a
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
    let Some(timestamp) = parsed.headers.timestamp else {
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

/// Rule 4.
fn check_size(parsed: &Parsed, absolute_max_bytes: u32) -> Result<(), Rejection> {
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

fn bad_signature(identity: &Identity) -> Rejection {
    Rejection::forbidden(format!("signature of {} does not verify", identity.mspid()))
}

/// Rule 5 for one request (Deliver's; Broadcast batches it).
pub fn check_signature(
    policy: &ChannelPolicy,
    parsed: &Parsed,
    envelope: &Envelope,
) -> Result<(), Rejection> {
    verify_signature(policy, &parsed.identity, envelope)
}

fn verify_signature(
    policy: &ChannelPolicy,
    identity: &Identity,
    envelope: &Envelope,
) -> Result<(), Rejection> {
    if !policy
        .msp()
        .verify(identity, &envelope.payload, &envelope.signature)
    {
        return Err(bad_signature(identity));
    }
    Ok(())
}

/// Rule 7.
fn check_tx_id(parsed: &Parsed) -> Result<(), Rejection> {
    if parsed.headers.tx_id != tx_id(&parsed.headers.nonce, &parsed.headers.creator) {
        return Err(Rejection::bad_request(format!(
            "tx_id {:?} is not SHA-256(nonce ‖ creator)",
            parsed.headers.tx_id
        )));
    }
    Ok(())
}

/// The CONFIG rule: signed (the caller has verified the signature) by an admin of the channel,
/// carrying a valid configuration for this channel with the next sequence number. Returns the
/// configuration it installs. Broadcast and the assembler both decide by it.
pub fn check_config_update(
    policy: &ChannelPolicy,
    identity: &Identity,
    headers: &Headers,
) -> Result<ChannelPolicy, Rejection> {
    if !policy.is_admin(identity) {
        return Err(Rejection::forbidden(format!(
            "{} may not reconfigure channel {}",
            identity.mspid(),
            policy.channel_id()
        )));
    }
    let bad = |e: &dyn std::fmt::Display| Rejection::bad_request(e.to_string());
    let next = ChannelConfig::decode(&headers.data).map_err(|e| bad(&e))?;
    let current = policy.config();
    if next.channel_id != current.channel_id {
        return Err(Rejection::bad_request(format!(
            "config is for channel {:?}, not {:?}",
            next.channel_id, current.channel_id
        )));
    }
    if next.sequence != current.sequence + 1 {
        return Err(Rejection::bad_request(format!(
            "config sequence {} is not the next one ({})",
            next.sequence,
            current.sequence + 1
        )));
    }
    ChannelPolicy::new(next).map_err(|e| bad(&e))
}

/// The assembler's check of a config record's envelope (canonical bytes) under `policy`: the
/// creator, its signature, then [`check_config_update`].
pub fn recheck_config_record(
    policy: &ChannelPolicy,
    canonical: &Bytes,
) -> Result<ChannelPolicy, Rejection> {
    let bad = |e: &dyn std::fmt::Display| Rejection::bad_request(e.to_string());
    let envelope = Envelope::decode(canonical.clone()).map_err(|e| bad(&e))?;
    // Required as Broadcast requires them, so a record is judged the same on every path.
    let headers = Headers::of_request(&envelope).map_err(|e| bad(&e))?;
    let identity = policy
        .msp()
        .deserialize(&headers.creator)
        .map_err(|e| bad(&e))?;
    verify_signature(policy, &identity, &envelope)?;
    check_config_update(policy, &identity, &headers)
}

/// What the node knows of a channel when an envelope names it.
pub struct ChannelView<C> {
    /// The node's handle on the channel, handed back with an admitted record.
    pub handle: C,
    /// The configuration in force.
    pub policy: Arc<ChannelPolicy>,
    /// False once the channel stopped serving.
    pub healthy: bool,
}

/// An envelope Broadcast admitted.
#[derive(Debug)]
pub struct Admitted<C> {
    pub channel: C,
    /// The log record ([`Entry::encode_envelope`]).
    pub record: Bytes,
    /// The sequence of the configuration it was checked against.
    pub config_sequence: u64,
}

/// Broadcast's admission for one stream: it remembers the stream's creators.
pub struct Processor {
    creators: CreatorCache,
    time_window: Duration,
}

impl Processor {
    /// `time_window` is Fabric's `General.Authentication.TimeWindow` (zero: off).
    pub fn new(time_window: Duration) -> Self {
        Self::with_creators(time_window, CreatorCache::default())
    }

    /// [`Processor::new`], decoding creators through `creators` (another MSP's decoder).
    pub fn with_creators(time_window: Duration, creators: CreatorCache) -> Self {
        Processor {
            creators,
            time_window,
        }
    }

    /// Admits a batch of envelopes that arrived together, in order, each by every rule, with
    /// their signatures verified together. The result stops at the first refusal: nothing after
    /// it is to be produced. `lookup` names a channel's state, `now` is the orderer's clock.
    pub fn admit<C>(
        &mut self,
        now: SystemTime,
        batch: &[Envelope],
        mut lookup: impl FnMut(&str) -> Option<ChannelView<C>>,
    ) -> Vec<Result<Admitted<C>, Rejection>> {
        // Rules 1-4, up to the first refusal.
        let mut checked = Vec::with_capacity(batch.len());
        for envelope in batch {
            let result = self.check_unsigned(now, envelope, &mut lookup);
            let refused = result.is_err();
            checked.push(result);
            if refused {
                break;
            }
        }
        let verified = verify_batched(&checked, batch);

        // Rules 5-7, in order.
        let mut admitted = Vec::with_capacity(checked.len());
        for ((checked, envelope), verified) in checked.into_iter().zip(batch).zip(verified) {
            let result = checked.and_then(|(view, parsed)| {
                if !verified {
                    return Err(bad_signature(&parsed.identity));
                }
                let record = authorize(&view.policy, envelope, &parsed)?;
                Ok(Admitted {
                    config_sequence: view.policy.config().sequence,
                    channel: view.handle,
                    record,
                })
            });
            let refused = result.is_err();
            admitted.push(result);
            if refused {
                break;
            }
        }
        admitted
    }

    fn check_unsigned<C>(
        &mut self,
        now: SystemTime,
        envelope: &Envelope,
        lookup: &mut impl FnMut(&str) -> Option<ChannelView<C>>,
    ) -> Result<(ChannelView<C>, Parsed), Rejection> {
        let parsed = parse(envelope, &mut self.creators)?;
        check_timestamp(&parsed, now, self.time_window)?;
        let channel_id = &parsed.headers.channel_id;
        let view = lookup(channel_id).ok_or_else(|| {
            Rejection::new(
                Status::NotFound,
                format!("channel {channel_id} does not exist"),
            )
        })?;
        if !view.healthy {
            return Err(Rejection::new(
                Status::ServiceUnavailable,
                format!("channel {channel_id} is not serving"),
            ));
        }
        check_size(&parsed, view.policy.absolute_max_bytes())?;
        Ok((view, parsed))
    }
}

/// Rule 5 for a batch: the signatures of the envelopes that passed rules 1-4, verified together
/// by each channel's MSP. One entry per `checked` (false where a check already failed).
fn verify_batched<C>(
    checked: &[Result<(ChannelView<C>, Parsed), Rejection>],
    batch: &[Envelope],
) -> Vec<bool> {
    let mut verified = vec![false; checked.len()];
    // Envelopes by the MSP that checks them: usually a single channel's.
    let mut groups: Vec<(&Arc<dyn Msp>, Vec<usize>)> = Vec::new();
    for (i, checked) in checked.iter().enumerate() {
        if let Ok((view, _)) = checked {
            let msp = view.policy.msp();
            match groups.iter_mut().find(|(m, _)| Arc::ptr_eq(m, msp)) {
                Some((_, members)) => members.push(i),
                None => groups.push((msp, vec![i])),
            }
        }
    }
    for (msp, members) in groups {
        let items: Vec<Signed> = members
            .iter()
            .filter_map(|&i| {
                let (_, parsed) = checked[i].as_ref().ok()?;
                Some(Signed {
                    identity: &parsed.identity,
                    message: &batch[i].payload,
                    signature: &batch[i].signature,
                })
            })
            .collect();
        for (&i, ok) in members.iter().zip(msp.verify_batch(&items)) {
            verified[i] = ok;
        }
    }
    verified
}

/// Rules 6 and 7 for an envelope whose signature verified; returns its log record.
fn authorize(
    policy: &ChannelPolicy,
    envelope: &Envelope,
    parsed: &Parsed,
) -> Result<Bytes, Rejection> {
    let header_type = parsed.headers.header_type;
    let config = header_type == HeaderType::Config as i32;
    if config {
        check_config_update(policy, &parsed.identity, &parsed.headers)?;
    } else if !matches!(
        HeaderType::try_from(header_type),
        Ok(HeaderType::Message | HeaderType::EndorserTransaction) | Err(_)
    ) {
        return Err(Rejection::bad_request(format!(
            "header type {header_type} cannot be broadcast"
        )));
    } else if !policy.can_write(&parsed.identity) {
        return Err(Rejection::forbidden(format!(
            "{} may not write to channel {}",
            parsed.identity.mspid(),
            policy.channel_id()
        )));
    }
    check_tx_id(parsed)?;
    Ok(Entry::encode_envelope(envelope, config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::build;
    use crate::identity::Signer;
    use crate::policy::tests::config;

    struct Fixture {
        admin: Signer,
        writer: Signer,
        policy: Arc<ChannelPolicy>,
    }

    fn fixture() -> Fixture {
        let admin = Signer::generate("Org1MSP");
        let writer = Signer::generate("Org1MSP");
        let orderer = Signer::generate("OrdererMSP");
        let policy = Arc::new(ChannelPolicy::new(config(&admin, &writer, &orderer)).unwrap());
        Fixture {
            admin,
            writer,
            policy,
        }
    }

    fn tx(signer: &Signer) -> Envelope {
        build(
            signer,
            "ch",
            HeaderType::EndorserTransaction,
            Bytes::from_static(b"tx"),
        )
    }

    fn resigned(signer: &Signer, envelope: &Envelope, edit: impl FnOnce(&mut Headers)) -> Envelope {
        use ordo_proto::common::{ChannelHeader, Header, Payload, SignatureHeader};
        use prost::Message;
        let mut headers = Headers::decode(envelope.payload.clone()).unwrap();
        edit(&mut headers);
        let payload = Payload {
            header: Some(Header {
                channel_header: ChannelHeader {
                    r#type: headers.header_type,
                    channel_id: headers.channel_id,
                    tx_id: headers.tx_id,
                    timestamp: headers.timestamp,
                    ..Default::default()
                }
                .encode_to_vec()
                .into(),
                signature_header: SignatureHeader {
                    creator: headers.creator,
                    nonce: headers.nonce,
                }
                .encode_to_vec()
                .into(),
            }),
            data: headers.data,
        }
        .encode_to_vec();
        let signature = signer.sign(&payload);
        Envelope {
            payload: payload.into(),
            signature: Bytes::copy_from_slice(&signature),
        }
    }

    /// Admits `batch` on a node that serves channel "ch" under `f.policy`.
    fn admit(f: &Fixture, batch: &[Envelope]) -> Vec<Result<Admitted<()>, Rejection>> {
        admit_on(f, batch, true)
    }

    fn admit_on(
        f: &Fixture,
        batch: &[Envelope],
        healthy: bool,
    ) -> Vec<Result<Admitted<()>, Rejection>> {
        let mut processor = Processor::new(Duration::from_secs(15 * 60));
        processor.admit(SystemTime::now(), batch, |id| {
            (id == "ch").then(|| ChannelView {
                handle: (),
                policy: f.policy.clone(),
                healthy,
            })
        })
    }

    fn status_of(f: &Fixture, envelope: Envelope) -> Status {
        match admit(f, &[envelope]).pop().unwrap() {
            Ok(_) => Status::Success,
            Err(r) => r.status,
        }
    }

    #[test]
    fn a_good_envelope_becomes_its_record() {
        let f = fixture();
        let env = tx(&f.writer);
        let admitted = admit(&f, std::slice::from_ref(&env))
            .pop()
            .unwrap()
            .unwrap();
        assert_eq!(admitted.record, Entry::encode_envelope(&env, false));
        assert_eq!(admitted.config_sequence, 0);
    }

    #[test]
    fn each_failure_has_its_status() {
        let f = fixture();
        let env = tx(&f.writer);
        let garbage = Envelope {
            payload: Bytes::from_static(b"\xff\xff\xff"),
            signature: Bytes::from_static(b"s"),
        };
        assert_eq!(status_of(&f, garbage), Status::BadRequest);
        let unsigned = Envelope {
            signature: Bytes::new(),
            ..env.clone()
        };
        assert_eq!(status_of(&f, unsigned), Status::BadRequest);
        let bad_creator = resigned(&f.writer, &env, |h| h.creator = Bytes::from_static(b"\xff"));
        assert_eq!(status_of(&f, bad_creator), Status::BadRequest);
        let undated = resigned(&f.writer, &env, |h| h.timestamp = None);
        assert_eq!(status_of(&f, undated), Status::BadRequest);
        let elsewhere = resigned(&f.writer, &env, |h| h.channel_id = "other".into());
        assert_eq!(status_of(&f, elsewhere), Status::NotFound);
        assert_eq!(
            admit_on(&f, std::slice::from_ref(&env), false)[0]
                .as_ref()
                .unwrap_err()
                .status,
            Status::ServiceUnavailable
        );
        let large = resigned(&f.writer, &env, |h| h.data = vec![0; 2000].into());
        assert_eq!(status_of(&f, large), Status::RequestEntityTooLarge);
        let mut forged = env.clone();
        let mut sig = forged.signature.to_vec();
        sig[0] ^= 1;
        forged.signature = sig.into();
        assert_eq!(status_of(&f, forged), Status::Forbidden);
        assert_eq!(status_of(&f, tx(&f.admin)), Status::Forbidden);
        let seek = resigned(&f.writer, &env, |h| {
            h.header_type = HeaderType::DeliverSeekInfo as i32
        });
        assert_eq!(status_of(&f, seek), Status::BadRequest);
        let wrong_id = resigned(&f.writer, &env, |h| h.tx_id = "00".into());
        assert_eq!(status_of(&f, wrong_id), Status::BadRequest);
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        let f = fixture();
        let env = tx(&f.writer);
        let mut parsed = parse(&env, &mut CreatorCache::default()).unwrap();
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
        parsed.headers.timestamp = None;
        assert_eq!(
            check_timestamp(&parsed, now, window).unwrap_err().status,
            Status::BadRequest
        );
    }

    #[test]
    fn a_batch_stops_at_its_first_refusal_and_singles_out_bad_signatures() {
        let f = fixture();
        let mut batch: Vec<Envelope> = (0..5).map(|_| tx(&f.writer)).collect();
        let mut sig = batch[3].signature.to_vec();
        sig[10] ^= 1;
        batch[3].signature = sig.into();
        let admitted = admit(&f, &batch);
        assert_eq!(admitted.len(), 4);
        assert!(admitted[..3].iter().all(|a| a.is_ok()));
        assert_eq!(admitted[3].as_ref().unwrap_err().status, Status::Forbidden);
    }

    #[test]
    fn config_updates_need_an_admin_and_the_next_sequence() {
        let f = fixture();
        let mut next = f.policy.config().clone();
        next.sequence = 1;
        next.batch_timeout = Duration::from_millis(50);
        let update = |signer: &Signer, cfg: &ChannelConfig| {
            build(signer, "ch", HeaderType::Config, cfg.encode())
        };
        let good = update(&f.admin, &next);
        let admitted = admit(&f, std::slice::from_ref(&good))
            .pop()
            .unwrap()
            .unwrap();
        assert_eq!(admitted.record, Entry::encode_envelope(&good, true));
        // The assembler's check of the same record agrees, and yields the new configuration.
        let canonical = Entry::decode(&admitted.record);
        let Some(Entry::Config(canonical)) = canonical else {
            panic!("not a config record: {canonical:?}");
        };
        let installed = recheck_config_record(&f.policy, &canonical).unwrap();
        assert_eq!(installed.batch_timeout(), Duration::from_millis(50));

        let by_writer = admit(&f, &[update(&f.writer, &next)]).pop().unwrap();
        let refused = by_writer.unwrap_err();
        assert_eq!(refused.status, Status::Forbidden);
        assert!(
            refused.info.contains("may not reconfigure"),
            "{}",
            refused.info
        );
        let mut stale = next.clone();
        stale.sequence = 0;
        let refused = admit(&f, &[update(&f.admin, &stale)])
            .pop()
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.status, Status::BadRequest);
        assert!(refused.info.contains("sequence"), "{}", refused.info);
        let mut broken = next.clone();
        broken.consenters.clear();
        assert_eq!(status_of(&f, update(&f.admin, &broken)), Status::BadRequest);

        // A record whose signature was tampered with after admission is refused by the assembler.
        let (envelope, _) = Headers::of_canonical(&canonical).unwrap();
        let mut sig = envelope.signature.to_vec();
        sig[0] ^= 1;
        let tampered = Envelope {
            signature: sig.into(),
            ..envelope
        };
        use prost::Message;
        let refused =
            recheck_config_record(&f.policy, &tampered.encode_to_vec().into()).unwrap_err();
        assert_eq!(refused.status, Status::Forbidden);
    }
}
