//! The one load generator (`peer-sim run`, `peer-sim bench` and the tests' [`crate::submit`]):
//! envelopes signed ahead of time on every core, then sent over many concurrent Broadcast
//! streams spread over the endpoints, either as fast as the orderer answers (closed loop) or on
//! a fixed schedule (open loop). Answers come in sending order, so each is matched to its
//! envelope.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use ordo_core::envelope;
use ordo_core::msp::SigningIdentity;
use ordo_proto::common::{Envelope, HeaderType, Status};
use rand::RngCore;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;

use crate::client::Client;

/// How the orderer answered one envelope on its Broadcast stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// SUCCESS: the orderer promises the transaction will be ordered.
    Acked,
    /// Any other status (SERVICE_UNAVAILABLE during a failover, say): not acknowledged.
    Refused(i32),
    /// Sent, but the stream broke or the run ended before an answer came: not acknowledged.
    Unanswered,
}

/// One envelope handed to a Broadcast stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    pub at: Instant,
    pub answer: Answer,
    /// When its answer arrived (`None` if unanswered).
    pub answered_at: Option<Instant>,
}

/// Called once for every envelope answered SUCCESS, as the answer comes (a progress bar, say).
pub type OnAck = Arc<dyn Fn() + Send + Sync>;

/// An [`OnAck`] that does nothing.
pub fn no_ack() -> OnAck {
    Arc::new(|| {})
}

/// Envelopes ready to send, and their tx_ids (same order).
pub struct Prepared {
    pub envelopes: Vec<Envelope>,
    pub tx_ids: Vec<String>,
}

/// The envelopes a load sends.
pub enum Envelopes {
    /// Signed before the clock starts (`peer-sim bench`: signing is no part of the measure).
    Presigned(Vec<Envelope>),
    /// `count` envelopes of `tx_bytes` random bytes, each signed by its stream just before it is
    /// sent (`peer-sim run` and the tests: a large load that will be cut short costs nothing).
    Signed {
        signer: Arc<SigningIdentity>,
        channel_id: String,
        count: usize,
        tx_bytes: usize,
    },
}

impl Envelopes {
    fn len(&self) -> usize {
        match self {
            Envelopes::Presigned(envelopes) => envelopes.len(),
            Envelopes::Signed { count, .. } => *count,
        }
    }
}

/// One signed envelope of `tx_bytes` random bytes, and its tx_id.
fn sign_one(
    signer: &SigningIdentity,
    channel_id: &str,
    tx_bytes: usize,
    tls_cert_hash: &Bytes,
    rng: &mut impl RngCore,
) -> (Envelope, String) {
    let mut data = vec![0u8; tx_bytes];
    rng.fill_bytes(&mut data);
    envelope::build_bound(
        signer,
        channel_id,
        HeaderType::EndorserTransaction,
        Bytes::from(data),
        tls_cert_hash.clone(),
    )
}

/// One stream's envelopes, in sending order: given, or signed as they are taken.
struct Share {
    next: VecDeque<(usize, Option<Envelope>)>,
    /// Signer, channel, bytes per envelope, and the clients' TLS certificate hash.
    signer: Option<(Arc<SigningIdentity>, String, usize, Bytes)>,
}

impl Share {
    fn len(&self) -> usize {
        self.next.len()
    }

    fn peek(&self) -> Option<usize> {
        self.next.front().map(|&(i, _)| i)
    }

    /// The next envelope, its index, and its tx_id if it was signed here.
    fn take(&mut self) -> Option<(usize, Envelope, Option<String>)> {
        let (i, env) = self.next.pop_front()?;
        match (env, &self.signer) {
            (Some(env), _) => Some((i, env, None)),
            (None, Some((signer, channel_id, tx_bytes, hash))) => {
                let (env, tx_id) =
                    sign_one(signer, channel_id, *tx_bytes, hash, &mut rand::thread_rng());
                Some((i, env, Some(tx_id)))
            }
            (None, None) => None,
        }
    }
}

/// Builds and signs `count` envelopes with `tx_bytes` of random data each, on `threads` threads.
pub fn presign(
    signer: &SigningIdentity,
    channel_id: &str,
    count: usize,
    tx_bytes: usize,
    threads: usize,
) -> Prepared {
    presign_bound(signer, channel_id, count, tx_bytes, threads, &Bytes::new())
}

/// [`presign`] bound to a TLS client certificate (its SHA-256, `Client::tls_cert_hash`).
pub fn presign_bound(
    signer: &SigningIdentity,
    channel_id: &str,
    count: usize,
    tx_bytes: usize,
    threads: usize,
    tls_cert_hash: &Bytes,
) -> Prepared {
    let threads = threads.clamp(1, count.max(1));
    let parts: Vec<Vec<(Envelope, String)>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let n = count / threads + usize::from(t < count % threads);
                scope.spawn(move || {
                    let mut rng = rand::thread_rng();
                    (0..n)
                        .map(|_| sign_one(signer, channel_id, tx_bytes, tls_cert_hash, &mut rng))
                        .collect()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a signing thread panicked"))
            .collect()
    });
    let (envelopes, tx_ids) = parts.into_iter().flatten().unzip();
    Prepared { envelopes, tx_ids }
}

/// How envelopes are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Each stream keeps `window` envelopes unanswered: the orderer sets the rate.
    Closed { window: usize },
    /// Envelope `i` is due `i / rate` seconds after the start, whatever the answers.
    Open { rate: f64 },
}

/// How often an open-loop stream wakes to send the envelopes that have come due.
const TICK: Duration = Duration::from_millis(1);
/// Envelopes an open-loop stream may queue ahead of its connection.
const OPEN_QUEUE: usize = 4096;

/// What the load did.
pub struct Outcome {
    /// Per envelope, in `Prepared` order: when it was sent and how it was answered.
    pub sent: Vec<Option<Sent>>,
    /// Per envelope, the tx_id of those signed by their stream ([`Envelopes::Signed`]).
    pub tx_ids: Vec<Option<String>>,
    /// The info of each refused envelope: (index in `Prepared` order, info).
    pub refusals: Vec<(usize, String)>,
    /// Streams that failed or broke.
    pub errors: Vec<String>,
    /// How far an open-loop sender fell behind its schedule at worst.
    pub max_lag: Duration,
    /// When the last stream finished.
    pub finished: Instant,
}

/// Sends every envelope over `clients.len()` streams (stream `s` gets envelopes `s`,
/// `s + streams`, …), waiting for answers until `deadline` at most (`None`: until each stream
/// is answered or breaks). Never fails as a whole: broken streams are in [`Outcome::errors`].
pub async fn drive(
    clients: Vec<Client>,
    envelopes: Envelopes,
    pace: Pace,
    start: Instant,
    deadline: Option<Instant>,
    on_ack: OnAck,
) -> Outcome {
    let total = envelopes.len();
    let streams = clients.len().max(1);
    let signer = match &envelopes {
        Envelopes::Presigned(_) => None,
        Envelopes::Signed {
            signer,
            channel_id,
            tx_bytes,
            ..
        } => Some((
            signer.clone(),
            channel_id.clone(),
            *tx_bytes,
            clients
                .first()
                .map(|c| c.tls_cert_hash.clone())
                .unwrap_or_default(),
        )),
    };
    let mut shares: Vec<Share> = (0..streams)
        .map(|_| Share {
            next: VecDeque::new(),
            signer: signer.clone(),
        })
        .collect();
    match envelopes {
        Envelopes::Presigned(envelopes) => {
            for (i, env) in envelopes.into_iter().enumerate() {
                shares[i % streams].next.push_back((i, Some(env)));
            }
        }
        Envelopes::Signed { count, .. } => {
            for i in 0..count {
                shares[i % streams].next.push_back((i, None));
            }
        }
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(shares)
        .map(|(client, share)| {
            tokio::spawn(one_stream(
                client,
                share,
                pace,
                start,
                deadline,
                on_ack.clone(),
            ))
        })
        .collect();

    let mut outcome = Outcome {
        sent: vec![None; total],
        tx_ids: vec![None; total],
        refusals: Vec::new(),
        errors: Vec::new(),
        max_lag: Duration::ZERO,
        finished: start,
    };
    for task in tasks {
        match task.await {
            Ok(stream) => {
                for (i, sent, tx_id) in stream.sent {
                    outcome.sent[i] = Some(sent);
                    outcome.tx_ids[i] = tx_id;
                }
                outcome.refusals.extend(stream.refusals);
                outcome.errors.extend(stream.error);
                outcome.max_lag = outcome.max_lag.max(stream.max_lag);
            }
            Err(e) => outcome.errors.push(format!("stream task failed: {e}")),
        }
    }
    outcome.refusals.sort_unstable_by_key(|&(i, _)| i);
    outcome.finished = Instant::now();
    outcome
}

struct StreamOutcome {
    sent: Vec<(usize, Sent, Option<String>)>,
    refusals: Vec<(usize, String)>,
    error: Option<String>,
    max_lag: Duration,
}

/// What a stream's sender records: envelope index, send time and the tx_id of an envelope it
/// signed, in sending order.
#[derive(Default)]
struct SendLog {
    sent: Vec<(usize, Instant, Option<String>)>,
    max_lag: Duration,
}

async fn one_stream(
    client: Client,
    share: Share,
    pace: Pace,
    start: Instant,
    deadline: Option<Instant>,
    on_ack: OnAck,
) -> StreamOutcome {
    let expected = share.len();
    // Closed loop: a permit per unanswered envelope. Open loop: no window, only a queue.
    let (queue, permits) = match pace {
        Pace::Closed { window } => (window.max(1), Some(Arc::new(Semaphore::new(window.max(1))))),
        Pace::Open { .. } => (OPEN_QUEUE, None),
    };
    let (requests, rx) = mpsc::channel(queue);
    let log = Arc::new(Mutex::new(SendLog::default()));
    let sender = tokio::spawn(send(
        share,
        pace,
        start,
        requests,
        log.clone(),
        permits.clone(),
    ));

    // Answers come in sending order: the k-th answer is for the k-th envelope sent.
    let mut answers: Vec<(i32, String, Instant)> = Vec::with_capacity(expected);
    let mut error = None;
    match client.grpc().broadcast(ReceiverStream::new(rx)).await {
        Err(e) => error = Some(format!("{}: Broadcast: {}", client.endpoint, e.message())),
        Ok(responses) => {
            let mut responses = responses.into_inner();
            while answers.len() < expected {
                let next = match deadline {
                    Some(deadline) => {
                        tokio::time::timeout_at(deadline.into(), responses.next()).await
                    }
                    None => Ok(responses.next().await),
                };
                match next {
                    Ok(Some(Ok(response))) => {
                        let answered_at = Instant::now();
                        if response.status == Status::Success as i32 {
                            on_ack();
                        }
                        answers.push((response.status, response.info, answered_at));
                        if let Some(permits) = &permits {
                            permits.add_permits(1);
                        }
                    }
                    Ok(Some(Err(e))) => {
                        error = Some(format!(
                            "{}: Broadcast stream: {}",
                            client.endpoint,
                            e.message()
                        ));
                        break;
                    }
                    Ok(None) => {
                        error = Some(format!(
                            "{}: Broadcast stream ended after {} of {expected} answers",
                            client.endpoint,
                            answers.len()
                        ));
                        break;
                    }
                    Err(_) => {
                        error = Some(format!(
                            "{}: {} of {expected} answers by the deadline",
                            client.endpoint,
                            answers.len()
                        ));
                        break;
                    }
                }
            }
        }
    }
    if let Some(permits) = &permits {
        permits.close();
    }
    sender.abort();
    let _ = sender.await;

    let log = std::mem::take(&mut *log.lock().unwrap_or_else(|e| e.into_inner()));
    let mut answers = answers.into_iter();
    let mut refusals = Vec::new();
    let sent = log
        .sent
        .into_iter()
        .map(|(i, at, tx_id)| {
            let (answer, answered_at) = match answers.next() {
                Some((s, _, t)) if s == Status::Success as i32 => (Answer::Acked, Some(t)),
                Some((s, info, t)) => {
                    refusals.push((i, info));
                    (Answer::Refused(s), Some(t))
                }
                None => (Answer::Unanswered, None),
            };
            (
                i,
                Sent {
                    at,
                    answer,
                    answered_at,
                },
                tx_id,
            )
        })
        .collect();
    StreamOutcome {
        sent,
        refusals,
        error,
        max_lag: log.max_lag,
    }
}

/// Feeds one stream's envelopes to its request queue, paced; records each send time.
async fn send(
    mut share: Share,
    pace: Pace,
    start: Instant,
    requests: mpsc::Sender<Envelope>,
    log: Arc<Mutex<SendLog>>,
    permits: Option<Arc<Semaphore>>,
) {
    let record = |i: usize, tx_id: Option<String>, lag: Duration| {
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        log.sent.push((i, Instant::now(), tx_id));
        log.max_lag = log.max_lag.max(lag);
    };
    match pace {
        Pace::Closed { .. } => {
            let permits = permits.expect("a closed loop has a window");
            while share.peek().is_some() {
                let Ok(permit) = permits.acquire().await else {
                    return;
                };
                permit.forget();
                let Some((i, env, tx_id)) = share.take() else {
                    return;
                };
                record(i, tx_id, Duration::ZERO);
                if requests.send(env).await.is_err() {
                    return;
                }
            }
        }
        Pace::Open { rate } => {
            let due = |i: usize| start + Duration::from_secs_f64(i as f64 / rate);
            let mut ticks = tokio::time::interval(TICK);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            while share.peek().is_some() {
                ticks.tick().await;
                let now = Instant::now();
                while let Some(i) = share.peek() {
                    let at = due(i);
                    if at > now {
                        break;
                    }
                    let Some((i, env, tx_id)) = share.take() else {
                        return;
                    };
                    record(i, tx_id, now.saturating_duration_since(at));
                    if requests.send(env).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ordo_core::envelope::stored_tx_id;
    use prost::Message;

    #[test]
    fn presigned_envelopes_carry_their_tx_ids_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let made = ordo_client::cryptogen::generate(
            dir.path(),
            &[ordo_client::cryptogen::OrgSpec {
                name: "Org1".into(),
                kind: ordo_client::cryptogen::OrgKind::Peer,
                nodes: 0,
                users: 1,
                hosts: vec![],
            }],
            ordo_client::cryptogen::KeyKind::EcdsaP256,
        )
        .unwrap();
        let signer =
            ordo_client::msp_dir::signing_identity(&made[0].users[1].join("msp"), "Org1MSP")
                .unwrap();
        let prepared = presign(&signer, "ordo", 10, 250, 3);
        assert_eq!(prepared.envelopes.len(), 10);
        // Verified as the orderer does: by the channel's MSP for the creator's organisation.
        let org = ordo_client::msp_dir::load(&made[0].msp, "Org1MSP").unwrap();
        let msps = ordo_core::msp::MspManager::setup(
            &[org.msp_config()],
            ordo_core::msp::MspVersion::V3_0,
        )
        .unwrap();
        let creator = msps.deserialize(signer.serialized()).unwrap();
        for (env, tx_id) in prepared.envelopes.iter().zip(&prepared.tx_ids) {
            assert_eq!(
                stored_tx_id(&env.encode_to_vec().into()).as_deref(),
                Some(tx_id.as_str())
            );
            assert!(msps.verify(&creator, &env.payload, &env.signature));
        }
        let unique: std::collections::HashSet<_> = prepared.tx_ids.iter().collect();
        assert_eq!(unique.len(), 10);
    }
}
