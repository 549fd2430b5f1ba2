//! Generating the load: envelopes signed ahead of time on every core, then sent over many
//! concurrent Broadcast streams spread over the endpoints, either as fast as the orderer
//! answers (closed loop) or on a fixed schedule (open loop).

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use ordo_core::envelope;
use ordo_core::identity::Signer;
use ordo_proto::common::{Envelope, HeaderType, Status};
use rand::RngCore;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::MissedTickBehavior;
use tokio_stream::wrappers::ReceiverStream;

use super::account::{Answer, Sent};
use crate::client::Client;

/// Envelopes ready to send, and their tx_ids (same order).
pub struct Prepared {
    pub envelopes: Vec<Envelope>,
    pub tx_ids: Vec<String>,
}

/// Builds and signs `count` envelopes with `tx_bytes` of random data each, on `threads` threads.
pub fn presign(
    signer: &Signer,
    channel_id: &str,
    count: usize,
    tx_bytes: usize,
    threads: usize,
) -> Prepared {
    let threads = threads.clamp(1, count.max(1));
    let parts: Vec<Vec<(Envelope, String)>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let n = count / threads + usize::from(t < count % threads);
                scope.spawn(move || {
                    let mut rng = rand::thread_rng();
                    (0..n)
                        .map(|_| {
                            let mut data = vec![0u8; tx_bytes];
                            rng.fill_bytes(&mut data);
                            envelope::build_with_tx_id(
                                signer,
                                channel_id,
                                HeaderType::EndorserTransaction,
                                Bytes::from(data),
                            )
                        })
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
    /// Streams that failed or broke.
    pub errors: Vec<String>,
    /// How far an open-loop sender fell behind its schedule at worst.
    pub max_lag: Duration,
    /// When the last stream finished.
    pub finished: Instant,
}

/// Sends every envelope over `clients.len()` streams (stream `s` gets envelopes `s`,
/// `s + streams`, …), waiting for answers until `deadline` at most.
pub async fn drive(
    clients: Vec<Client>,
    envelopes: Vec<Envelope>,
    pace: Pace,
    start: Instant,
    deadline: Instant,
) -> Outcome {
    let total = envelopes.len();
    let streams = clients.len().max(1);
    let mut shares: Vec<Vec<(usize, Envelope)>> = vec![Vec::new(); streams];
    for (i, env) in envelopes.into_iter().enumerate() {
        shares[i % streams].push((i, env));
    }
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(shares)
        .map(|(client, share)| tokio::spawn(one_stream(client, share, pace, start, deadline)))
        .collect();

    let mut outcome = Outcome {
        sent: vec![None; total],
        errors: Vec::new(),
        max_lag: Duration::ZERO,
        finished: start,
    };
    for task in tasks {
        match task.await {
            Ok(stream) => {
                for (i, sent) in stream.sent {
                    outcome.sent[i] = Some(sent);
                }
                outcome.errors.extend(stream.error);
                outcome.max_lag = outcome.max_lag.max(stream.max_lag);
            }
            Err(e) => outcome.errors.push(format!("stream task failed: {e}")),
        }
    }
    outcome.finished = Instant::now();
    outcome
}

struct StreamOutcome {
    sent: Vec<(usize, Sent)>,
    error: Option<String>,
    max_lag: Duration,
}

/// What a stream's sender records: envelope index and send time, in sending order.
#[derive(Default)]
struct SendLog {
    sent: Vec<(usize, Instant)>,
    max_lag: Duration,
}

async fn one_stream(
    client: Client,
    share: Vec<(usize, Envelope)>,
    pace: Pace,
    start: Instant,
    deadline: Instant,
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
    let mut answers: Vec<i32> = Vec::with_capacity(expected);
    let mut error = None;
    match client.grpc().broadcast(ReceiverStream::new(rx)).await {
        Err(e) => error = Some(format!("{}: Broadcast: {}", client.endpoint, e.message())),
        Ok(responses) => {
            let mut responses = responses.into_inner();
            while answers.len() < expected {
                let next = tokio::time::timeout_at(deadline.into(), responses.next()).await;
                match next {
                    Ok(Some(Ok(response))) => {
                        answers.push(response.status);
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
    let sent = log
        .sent
        .into_iter()
        .enumerate()
        .map(|(k, (i, at))| {
            let answer = match answers.get(k) {
                Some(&s) if s == Status::Success as i32 => Answer::Acked,
                Some(&s) => Answer::Refused(s),
                None => Answer::Unanswered,
            };
            (i, Sent { at, answer })
        })
        .collect();
    StreamOutcome {
        sent,
        error,
        max_lag: log.max_lag,
    }
}

/// Feeds one stream's envelopes to its request queue, paced; records each send time.
async fn send(
    share: Vec<(usize, Envelope)>,
    pace: Pace,
    start: Instant,
    requests: mpsc::Sender<Envelope>,
    log: Arc<Mutex<SendLog>>,
    permits: Option<Arc<Semaphore>>,
) {
    let record = |i: usize, lag: Duration| {
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        log.sent.push((i, Instant::now()));
        log.max_lag = log.max_lag.max(lag);
    };
    match pace {
        Pace::Closed { .. } => {
            let permits = permits.expect("a closed loop has a window");
            for (i, env) in share {
                let Ok(permit) = permits.acquire().await else {
                    return;
                };
                permit.forget();
                record(i, Duration::ZERO);
                if requests.send(env).await.is_err() {
                    return;
                }
            }
        }
        Pace::Open { rate } => {
            let due = |i: usize| start + Duration::from_secs_f64(i as f64 / rate);
            let mut ticks = tokio::time::interval(TICK);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut envelopes = share.into_iter().peekable();
            while envelopes.peek().is_some() {
                ticks.tick().await;
                let now = Instant::now();
                while let Some((i, _)) = envelopes.peek() {
                    let at = due(*i);
                    if at > now {
                        break;
                    }
                    let (i, env) = envelopes.next().expect("peeked");
                    record(i, now.saturating_duration_since(at));
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
        let signer = Signer::generate("Org1MSP");
        let prepared = presign(&signer, "ordo", 10, 250, 3);
        assert_eq!(prepared.envelopes.len(), 10);
        use ordo_core::identity::Msp;
        let msp = ordo_core::identity::Ed25519Msp::default();
        let creator = msp.deserialize(signer.creator()).unwrap();
        for (env, tx_id) in prepared.envelopes.iter().zip(&prepared.tx_ids) {
            assert_eq!(
                stored_tx_id(&env.encode_to_vec()).as_deref(),
                Some(tx_id.as_str())
            );
            assert!(msp.verify(&creator, &env.payload, &env.signature));
        }
        let unique: std::collections::HashSet<_> = prepared.tx_ids.iter().collect();
        assert_eq!(unique.len(), 10);
    }
}
