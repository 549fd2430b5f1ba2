//! Fabric's message processor: every rule Broadcast admits an envelope by, in one place and
//! each checked once, answered with Fabric statuses. Pure: the node supplies the run-time facts
//! (which channels exist, whether they serve, the clock, its own signing identity).
//!
//! The order, for each envelope:
//!
//! 1. headers decode, with a channel, a nonce, a payload and a signature → BAD_REQUEST;
//! 2. timestamp within the time window of the orderer's clock → BAD_REQUEST;
//! 3. the channel exists → NOT_FOUND, and serves → SERVICE_UNAVAILABLE;
//! 4. no larger than the channel's AbsoluteMaxBytes → REQUEST_ENTITY_TOO_LARGE;
//! 5. the header type is one Broadcast takes: MESSAGE, ENDORSER_TRANSACTION (and types this
//!    version does not know), CONFIG_UPDATE; a CONFIG envelope sent directly and every other
//!    type → BAD_REQUEST;
//! 6. the creator is an identity of one of the channel's MSPs → FORBIDDEN (Fabric skips an
//!    identity it cannot deserialise, so the writers policy fails);
//! 7. the creator's certificate has not expired (Fabric's expiration filter) → BAD_REQUEST;
//! 8. the signature verifies (checked in one batch for the envelopes that arrived together)
//!    → FORBIDDEN;
//! 9. the creator satisfies /Channel/Writers (/Channel/Orderer/Writers in maintenance)
//!    → FORBIDDEN;
//! 10. a transaction's tx_id is SHA-256(nonce ‖ creator) → BAD_REQUEST; a CONFIG_UPDATE is
//!     applied to the configuration in force ([`Bundle::propose_update`]: read set, mod_policies
//!     of what it changes, the resulting configuration valid) → BAD_REQUEST, and becomes a CONFIG
//!     envelope signed by this orderer, which must itself fit AbsoluteMaxBytes and satisfy the
//!     writers policy → BAD_REQUEST.
//!
//! An admitted envelope becomes its log record. The assembler checks again, under the
//! configuration in force where the record is cut: a transaction admitted under an earlier
//! configuration ([`recheck_transaction`], Fabric's resubmission rule), and every CONFIG
//! envelope ([`recheck_config_record`]), so every node cuts the same blocks whatever it admitted.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use ordo_proto::common::{ConfigEnvelope, Envelope, HeaderType, Status};
use prost::Message;

use crate::bundle::Bundle;
use crate::entry::Entry;
use crate::envelope::{self, tx_id, Headers};
use crate::msp::{Identity, MspManager, SigningIdentity};

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

/// A request's headers, decoded; the creator is not yet read.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub headers: Headers,
    /// `len(payload) + len(signature)`: what size rules count.
    pub size: usize,
}

/// Rule 1: decodes a request's headers.
pub fn parse(envelope: &Envelope) -> Result<Parsed, Rejection> {
    let headers =
        Headers::of_request(envelope).map_err(|e| Rejection::bad_request(e.to_string()))?;
    Ok(Parsed {
        headers,
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
        return Err(Rejection::bad_request(format!(
            "envelope timestamp {}s (Unix) is more than {}s from the orderer's clock {}s",
            unix_seconds(at),
            window.as_secs(),
            unix_seconds(now)
        )));
    }
    Ok(())
}

fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Rule 4.
fn check_size(size: usize, absolute_max_bytes: u32) -> Result<(), Rejection> {
    if size > absolute_max_bytes as usize {
        return Err(Rejection::new(
            Status::RequestEntityTooLarge,
            format!("envelope of {size} bytes exceeds AbsoluteMaxBytes {absolute_max_bytes}"),
        ));
    }
    Ok(())
}

/// Rule 5: whether the envelope is a config update (else a transaction).
fn check_header_type(header_type: i32) -> Result<bool, Rejection> {
    match HeaderType::try_from(header_type) {
        Ok(HeaderType::ConfigUpdate) => Ok(true),
        Ok(HeaderType::Message | HeaderType::EndorserTransaction) | Err(_) => Ok(false),
        Ok(HeaderType::Config) => Err(Rejection::bad_request(
            "a CONFIG envelope cannot be broadcast: submit a CONFIG_UPDATE",
        )),
        Ok(other) => Err(Rejection::bad_request(format!(
            "header type {} cannot be broadcast",
            other.as_str_name()
        ))),
    }
}

/// Rule 6: the creator as an identity of the channel.
pub fn deserialize(bundle: &Bundle, creator: &[u8]) -> Result<Identity, Rejection> {
    bundle.msps().deserialize(creator).map_err(|e| {
        Rejection::forbidden(format!("creator is not an identity of the channel: {e}"))
    })
}

/// Rule 7, Fabric's expiration filter: a creator whose certificate has expired may not write.
pub fn check_expiry(identity: &Identity, now: SystemTime) -> Result<(), Rejection> {
    match identity.not_after() {
        Some(not_after) if not_after < now => Err(Rejection::bad_request(format!(
            "identity {} of {} expired at {}s (Unix)",
            identity.subject(),
            identity.mspid(),
            unix_seconds(not_after)
        ))),
        _ => Ok(()),
    }
}

fn bad_signature(identity: &Identity) -> Rejection {
    Rejection::forbidden(format!(
        "signature of {} ({}) does not verify",
        identity.subject(),
        identity.mspid()
    ))
}

/// Rule 9 (or Deliver's readers rule): the policy `check` under `bundle`, answered FORBIDDEN.
fn check_policy(
    bundle: &Bundle,
    identity: &Identity,
    check: fn(&Bundle, &Identity) -> Result<(), crate::policies::PolicyError>,
    what: &str,
) -> Result<(), Rejection> {
    check(bundle, identity).map_err(|e| {
        Rejection::forbidden(format!(
            "{} ({}) may not {what} channel {}: {e}",
            identity.subject(),
            identity.mspid(),
            bundle.channel_id()
        ))
    })
}

/// Deliver's rules 6, 8 and its policy: the creator of a request is an identity of the channel,
/// its signature verifies, and it satisfies /Channel/Readers. Returns the identity.
pub fn authorize_reader(
    bundle: &Bundle,
    headers: &Headers,
    envelope: &Envelope,
) -> Result<Identity, Rejection> {
    let identity = deserialize(bundle, &headers.creator)?;
    if !bundle
        .msps()
        .verify(&identity, &envelope.payload, &envelope.signature)
    {
        return Err(bad_signature(&identity));
    }
    check_reader(bundle, &identity)?;
    Ok(identity)
}

/// Whether `identity` (already verified) may read the channel under `bundle`.
pub fn check_reader(bundle: &Bundle, identity: &Identity) -> Result<(), Rejection> {
    check_policy(bundle, identity, Bundle::check_reader, "read")
}

/// Rule 10 for a transaction.
fn check_tx_id(headers: &Headers) -> Result<(), Rejection> {
    if headers.tx_id != tx_id(&headers.nonce, &headers.creator) {
        return Err(Rejection::bad_request(format!(
            "tx_id {:?} is not SHA-256(nonce ‖ creator)",
            headers.tx_id
        )));
    }
    Ok(())
}

/// A canonical envelope's creator, under `bundle`, with its signature checked.
fn verified_creator(bundle: &Bundle, canonical: &Bytes) -> Result<(Headers, Identity), Rejection> {
    let bad = |e: &dyn std::fmt::Display| Rejection::bad_request(e.to_string());
    let (envelope, headers) = Headers::of_canonical(canonical).map_err(|e| bad(&e))?;
    let identity = deserialize(bundle, &headers.creator)?;
    if !bundle
        .msps()
        .verify(&identity, &envelope.payload, &envelope.signature)
    {
        return Err(bad_signature(&identity));
    }
    Ok((headers, identity))
}

/// The assembler's check of a transaction admitted under an earlier configuration: its creator
/// still deserialises, its signature verifies and it satisfies the writers policy of `bundle`.
/// (Deterministic, so every node decides alike: the clock is not read.)
pub fn recheck_transaction(bundle: &Bundle, canonical: &Bytes) -> Result<(), Rejection> {
    let (_, identity) = verified_creator(bundle, canonical)?;
    check_policy(bundle, &identity, Bundle::check_writer, "write to")
}

/// The assembler's check of a CONFIG record under `bundle`, the configuration it applies to:
/// made by an identity that satisfies the writers policy (an orderer of the channel), signed by
/// it, and holding exactly the configuration its last_update gives ([`Bundle::apply`]). Returns
/// the configuration it installs.
pub fn recheck_config_record(bundle: &Bundle, canonical: &Bytes) -> Result<Bundle, Rejection> {
    let (headers, identity) = verified_creator(bundle, canonical)?;
    check_policy(bundle, &identity, Bundle::check_writer, "reconfigure")?;
    if headers.header_type != HeaderType::Config as i32 {
        return Err(Rejection::bad_request(
            "a config record holds a CONFIG envelope",
        ));
    }
    let config = ConfigEnvelope::decode(headers.data)
        .map_err(|e| Rejection::bad_request(format!("ConfigEnvelope does not decode: {e}")))?;
    bundle
        .apply(&config)
        .map_err(|e| Rejection::bad_request(e.to_string()))
}

/// What the node knows of a channel when an envelope names it.
pub struct ChannelView<C> {
    /// The node's handle on the channel, handed back with an admitted record.
    pub handle: C,
    /// The configuration in force.
    pub bundle: Arc<Bundle>,
    /// False once the channel stopped serving.
    pub healthy: bool,
}

/// An envelope Broadcast admitted.
#[derive(Debug)]
pub struct Admitted<C> {
    pub channel: C,
    /// The log record ([`Entry`]).
    pub record: Bytes,
    /// The envelope's header type (CONFIG_UPDATE for a config update), for metrics.
    pub header_type: i32,
}

/// An envelope past rules 1-7, waiting for its signature check.
struct Checked<C> {
    view: ChannelView<C>,
    headers: Headers,
    identity: Identity,
    config_update: bool,
}

/// Broadcast's admission for one stream.
pub struct Processor {
    /// Signs the CONFIG envelopes this node makes of config updates.
    signer: Arc<SigningIdentity>,
    time_window: Duration,
}

impl Processor {
    /// `time_window` is Fabric's `General.Authentication.TimeWindow` (zero: off).
    pub fn new(signer: Arc<SigningIdentity>, time_window: Duration) -> Self {
        Processor {
            signer,
            time_window,
        }
    }

    /// Admits a batch of envelopes that arrived together, in order, each by every rule, with
    /// their signatures verified together. The result stops at the first refusal: nothing after
    /// it is to be produced. `lookup` names a channel's state, `now` is the orderer's clock.
    pub fn admit<C>(
        &self,
        now: SystemTime,
        batch: &[Envelope],
        mut lookup: impl FnMut(&str) -> Option<ChannelView<C>>,
    ) -> Vec<Result<Admitted<C>, Rejection>> {
        // Rules 1-7, up to the first refusal.
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

        // Rules 8-10, in order.
        let mut admitted = Vec::with_capacity(checked.len());
        for ((checked, envelope), verified) in checked.into_iter().zip(batch).zip(verified) {
            let result = checked.and_then(|checked| {
                if !verified {
                    return Err(bad_signature(&checked.identity));
                }
                let record = self.authorize(now, envelope, &checked)?;
                Ok(Admitted {
                    channel: checked.view.handle,
                    record,
                    header_type: checked.headers.header_type,
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
        &self,
        now: SystemTime,
        envelope: &Envelope,
        lookup: &mut impl FnMut(&str) -> Option<ChannelView<C>>,
    ) -> Result<Checked<C>, Rejection> {
        let parsed = parse(envelope)?;
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
        check_size(parsed.size, view.bundle.absolute_max_bytes())?;
        let config_update = check_header_type(parsed.headers.header_type)?;
        let identity = deserialize(&view.bundle, &parsed.headers.creator)?;
        check_expiry(&identity, now)?;
        Ok(Checked {
            view,
            headers: parsed.headers,
            identity,
            config_update,
        })
    }

    /// Rules 9 and 10 for an envelope whose signature verified; returns its log record.
    fn authorize<C>(
        &self,
        now: SystemTime,
        envelope: &Envelope,
        checked: &Checked<C>,
    ) -> Result<Bytes, Rejection> {
        let bundle = &checked.view.bundle;
        check_policy(bundle, &checked.identity, Bundle::check_writer, "write to")?;
        if !checked.config_update {
            check_tx_id(&checked.headers)?;
            return Ok(Entry::encode_envelope(envelope, bundle.sequence()));
        }
        let config = self.config_envelope(bundle, envelope, now)?;
        Ok(Entry::encode_config(&config))
    }

    /// A config update made into the CONFIG envelope this orderer signs, checked as Fabric
    /// re-runs its filters on it.
    fn config_envelope(
        &self,
        bundle: &Bundle,
        update: &Envelope,
        now: SystemTime,
    ) -> Result<Envelope, Rejection> {
        let (proposed, _) = bundle
            .propose_update(update)
            .map_err(|e| Rejection::bad_request(format!("config update refused: {e}")))?;
        let config = envelope::config_envelope(&self.signer, bundle.channel_id(), &proposed, now);
        let size = config.payload.len() + config.signature.len();
        if size > bundle.absolute_max_bytes() as usize {
            return Err(Rejection::bad_request(format!(
                "the resulting CONFIG envelope of {size} bytes exceeds AbsoluteMaxBytes {}",
                bundle.absolute_max_bytes()
            )));
        }
        deserialize(bundle, self.signer.serialized())
            .and_then(|id| check_policy(bundle, &id, Bundle::check_writer, "write to"))
            .map_err(|e| {
                Rejection::bad_request(format!(
                    "this orderer cannot sign the channel's config: {}",
                    e.info
                ))
            })?;
        Ok(config)
    }
}

/// Rule 8 for a batch: the signatures of the envelopes that passed rules 1-7, verified together
/// by each channel's MSPs. One entry per `checked` (false where a check already failed).
fn verify_batched<C>(checked: &[Result<Checked<C>, Rejection>], batch: &[Envelope]) -> Vec<bool> {
    let mut verified = vec![false; checked.len()];
    // Envelopes by the MSPs that check them: usually a single channel's.
    let mut groups: Vec<(&Arc<MspManager>, Vec<usize>)> = Vec::new();
    for (i, checked) in checked.iter().enumerate() {
        if let Ok(checked) = checked {
            let msps = checked.view.bundle.msps();
            match groups.iter_mut().find(|(m, _)| Arc::ptr_eq(m, msps)) {
                Some((_, members)) => members.push(i),
                None => groups.push((msps, vec![i])),
            }
        }
    }
    for (msps, members) in groups {
        let items: Vec<(&Identity, &[u8], &[u8])> = members
            .iter()
            .filter_map(|&i| {
                let checked = checked[i].as_ref().ok()?;
                Some((
                    &checked.identity,
                    batch[i].payload.as_ref(),
                    batch[i].signature.as_ref(),
                ))
            })
            .collect();
        for (&i, ok) in members.iter().zip(msps.verify_batch(&items)) {
            verified[i] = ok;
        }
    }
    verified
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{TestChannel, CHANNEL};
    use ordo_proto::common::{ChannelHeader, Header, Payload, SignatureHeader};

    fn resigned(
        signer: &SigningIdentity,
        envelope: &Envelope,
        edit: impl FnOnce(&mut Headers),
    ) -> Envelope {
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
            signature: signature.into(),
        }
    }

    fn admit_on(
        ch: &TestChannel,
        bundle: &Arc<Bundle>,
        batch: &[Envelope],
        healthy: bool,
    ) -> Vec<Result<Admitted<()>, Rejection>> {
        let processor = Processor::new(Arc::new(ch.orderer.clone()), Duration::from_secs(900));
        processor.admit(SystemTime::now(), batch, |id| {
            (id == CHANNEL).then(|| ChannelView {
                handle: (),
                bundle: bundle.clone(),
                healthy,
            })
        })
    }

    fn admit(ch: &TestChannel, batch: &[Envelope]) -> Vec<Result<Admitted<()>, Rejection>> {
        admit_on(ch, &Arc::new(ch.bundle.clone()), batch, true)
    }

    fn outcome(ch: &TestChannel, envelope: Envelope) -> Result<Bytes, Rejection> {
        admit(ch, &[envelope]).pop().unwrap().map(|a| a.record)
    }

    fn status_of(ch: &TestChannel, envelope: Envelope) -> Status {
        match outcome(ch, envelope) {
            Ok(_) => Status::Success,
            Err(r) => r.status,
        }
    }

    #[test]
    fn a_writer_s_envelope_becomes_its_record() {
        let ch = TestChannel::new();
        for writer in [&ch.client, &ch.admin, &ch.orderer] {
            let env = ch.tx(writer);
            assert_eq!(
                outcome(&ch, env.clone()),
                Ok(Entry::encode_envelope(&env, 0))
            );
        }
    }

    #[test]
    fn each_failure_has_its_status() {
        let ch = TestChannel::new();
        let env = ch.tx(&ch.client);
        let garbage = Envelope {
            payload: Bytes::from_static(b"\xff\xff\xff"),
            signature: Bytes::from_static(b"s"),
        };
        assert_eq!(status_of(&ch, garbage), Status::BadRequest);
        let unsigned = Envelope {
            signature: Bytes::new(),
            ..env.clone()
        };
        assert_eq!(status_of(&ch, unsigned), Status::BadRequest);
        let undated = resigned(&ch.client, &env, |h| h.timestamp = None);
        assert_eq!(status_of(&ch, undated), Status::BadRequest);
        let elsewhere = resigned(&ch.client, &env, |h| h.channel_id = "other".into());
        assert_eq!(status_of(&ch, elsewhere), Status::NotFound);
        let bundle = Arc::new(ch.bundle.clone());
        let sick = admit_on(&ch, &bundle, std::slice::from_ref(&env), false);
        assert_eq!(
            sick[0].as_ref().unwrap_err().status,
            Status::ServiceUnavailable
        );
        let large = resigned(&ch.client, &env, |h| h.data = vec![0; 200_000].into());
        assert_eq!(status_of(&ch, large), Status::RequestEntityTooLarge);
        let seek = resigned(&ch.client, &env, |h| {
            h.header_type = HeaderType::DeliverSeekInfo as i32
        });
        assert_eq!(status_of(&ch, seek), Status::BadRequest);
        let config = resigned(&ch.orderer_admin, &env, |h| {
            h.header_type = HeaderType::Config as i32
        });
        assert_eq!(status_of(&ch, config), Status::BadRequest);
        let wrong_id = resigned(&ch.client, &env, |h| h.tx_id = "00".into());
        assert_eq!(status_of(&ch, wrong_id), Status::BadRequest);
    }

    #[test]
    fn creators_are_identities_of_the_channel_that_may_write() {
        let ch = TestChannel::new();
        let env = ch.tx(&ch.client);
        // Fabric skips an identity it cannot deserialise; the writers policy then fails.
        let not_pem = resigned(&ch.client, &env, |h| {
            h.creator = crate::msp::testing::creator("Org1MSP", b"not a certificate").into()
        });
        let refused = outcome(&ch, not_pem).unwrap_err();
        assert_eq!(refused.status, Status::Forbidden, "{}", refused.info);
        let stranger =
            crate::msp::testing::TestOrg::new("Org1MSP", crate::msp::testing::KeyKind::EcdsaP256);
        let issued = stranger.client("mallory");
        let foreign = SigningIdentity::without_msp(
            "Org1MSP",
            issued.cert_pem.as_bytes(),
            issued.key_pem.as_bytes(),
        )
        .unwrap();
        let refused = outcome(&ch, ch.tx(&foreign)).unwrap_err();
        assert_eq!(refused.status, Status::Forbidden, "{}", refused.info);
        // A peer is a member of Org1 but not one of its writers (admin or client).
        let refused = outcome(&ch, ch.tx(&ch.peer)).unwrap_err();
        assert_eq!(refused.status, Status::Forbidden);
        assert!(refused.info.contains("may not write"), "{}", refused.info);
        let mut forged = env.clone();
        let mut sig = forged.signature.to_vec();
        let last = sig.len() - 1;
        sig[last] ^= 1;
        forged.signature = sig.into();
        assert_eq!(status_of(&ch, forged), Status::Forbidden);
    }

    #[test]
    fn an_expired_creator_may_not_write() {
        let ch = TestChannel::new();
        let mut opts = crate::msp::testing::IssueOpts::new("old", &["client"]);
        opts.years = Some((2000, 2001));
        let issued = ch.org1.issue_with(&opts);
        let msp = ch.bundle.msps().msp("Org1MSP").unwrap();
        let expired =
            SigningIdentity::new(msp, issued.cert_pem.as_bytes(), issued.key_pem.as_bytes())
                .unwrap();
        let refused = outcome(&ch, ch.tx(&expired)).unwrap_err();
        assert_eq!(refused.status, Status::BadRequest);
        assert!(refused.info.contains("expired"), "{}", refused.info);
    }

    #[test]
    fn timestamps_outside_the_window_are_refused() {
        let ch = TestChannel::new();
        let mut parsed = parse(&ch.tx(&ch.client)).unwrap();
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
        let ch = TestChannel::new();
        let mut batch: Vec<Envelope> = (0..5).map(|_| ch.tx(&ch.client)).collect();
        let mut sig = batch[3].signature.to_vec();
        sig[10] ^= 1;
        batch[3].signature = sig.into();
        let admitted = admit(&ch, &batch);
        assert_eq!(admitted.len(), 4);
        assert!(admitted[..3].iter().all(|a| a.is_ok()));
        assert_eq!(admitted[3].as_ref().unwrap_err().status, Status::Forbidden);
    }

    #[test]
    fn a_config_update_becomes_a_config_envelope_signed_by_the_orderer() {
        let ch = TestChannel::new();
        let update =
            TestChannel::batch_size_update(&ch.bundle, 3, &[&ch.orderer_admin], &ch.orderer_admin);
        let record = outcome(&ch, update.clone()).unwrap();
        let Some(Entry::Config(canonical)) = Entry::decode(&record) else {
            panic!("not a config record");
        };
        let (_, headers) = Headers::of_canonical(&canonical).unwrap();
        assert_eq!(headers.header_type, HeaderType::Config as i32);
        assert_eq!(&headers.creator, ch.orderer.serialized());
        assert!(headers.tx_id.is_empty());
        let config = ConfigEnvelope::decode(headers.data).unwrap();
        assert_eq!(config.config.as_ref().unwrap().sequence, 1);
        assert_eq!(config.last_update.as_ref(), Some(&update));
        // The assembler's check of the record agrees, and yields the new configuration.
        let next = recheck_config_record(&ch.bundle, &canonical).unwrap();
        assert_eq!(next.sequence(), 1);
        assert_eq!(next.cut_rules().max_message_count, 3);
        // ... but only once: the same record again is for a sequence already passed.
        let stale = recheck_config_record(&next, &canonical).unwrap_err();
        assert_eq!(stale.status, Status::BadRequest);
        // A record altered after admission is refused.
        let (envelope, _) = Headers::of_canonical(&canonical).unwrap();
        let mut sig = envelope.signature.to_vec();
        sig[8] ^= 1;
        let tampered = Envelope {
            signature: sig.into(),
            ..envelope
        };
        let refused =
            recheck_config_record(&ch.bundle, &tampered.encode_to_vec().into()).unwrap_err();
        assert_eq!(refused.status, Status::Forbidden);
    }

    #[test]
    fn config_updates_need_the_mod_policy_and_the_current_versions() {
        let ch = TestChannel::new();
        // An Org1 admin may write, but BatchSize's mod_policy is /Channel/Orderer/Admins.
        let by_org1 = TestChannel::batch_size_update(&ch.bundle, 3, &[&ch.admin], &ch.admin);
        let refused = outcome(&ch, by_org1).unwrap_err();
        assert_eq!(refused.status, Status::BadRequest);
        assert!(refused.info.contains("BatchSize"), "{}", refused.info);
        // The outer envelope is what /Channel/Writers checks: a peer may not submit.
        let by_peer = TestChannel::batch_size_update(&ch.bundle, 3, &[&ch.orderer_admin], &ch.peer);
        assert_eq!(status_of(&ch, by_peer), Status::Forbidden);
        // Against a configuration where BatchSize already moved on, the versions are stale.
        let update =
            TestChannel::batch_size_update(&ch.bundle, 3, &[&ch.orderer_admin], &ch.orderer_admin);
        let Some(Entry::Config(canonical)) = Entry::decode(&outcome(&ch, update.clone()).unwrap())
        else {
            panic!("not a config record");
        };
        let next = Arc::new(recheck_config_record(&ch.bundle, &canonical).unwrap());
        let again = admit_on(&ch, &next, &[update], true)
            .pop()
            .unwrap()
            .unwrap_err();
        assert_eq!(again.status, Status::BadRequest);
        assert!(again.info.contains("version"), "{}", again.info);
    }

    #[test]
    fn transactions_admitted_under_an_older_config_are_checked_again() {
        let ch = TestChannel::new();
        let env = ch.tx(&ch.client);
        let canonical: Bytes = env.encode_to_vec().into();
        recheck_transaction(&ch.bundle, &canonical).unwrap();
        let peer = ch.tx(&ch.peer).encode_to_vec().into();
        assert_eq!(
            recheck_transaction(&ch.bundle, &peer).unwrap_err().status,
            Status::Forbidden
        );
    }
}
