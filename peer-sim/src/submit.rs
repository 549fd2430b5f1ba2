//! Submitting load: several concurrent Broadcast streams, each pipelining up to a window of
//! envelopes, every answer matched to its envelope (answers come in order).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use ordo_core::envelope;
use ordo_proto::common::{HeaderType, Status};
use rand::RngCore;
use tokio::sync::{mpsc, Semaphore};
use tokio_stream::wrappers::ReceiverStream;

use crate::client::Client;

#[derive(Clone, Debug)]
pub struct Load {
    /// Transactions in all.
    pub count: usize,
    /// Concurrent Broadcast streams.
    pub streams: usize,
    /// Bytes of transaction data in each envelope's payload.
    pub tx_bytes: usize,
    /// Envelopes a stream sends ahead of its answers.
    pub window: usize,
}

impl Default for Load {
    fn default() -> Self {
        Load {
            count: 10_000,
            streams: 8,
            tx_bytes: 1024,
            window: 256,
        }
    }
}

/// What the orderer answered.
#[derive(Debug, Default)]
pub struct Submitted {
    /// tx_id and submit time of every envelope answered SUCCESS.
    pub acked: Vec<(String, Instant)>,
    /// Envelopes answered with another status: (status, info).
    pub refused: Vec<(i32, String)>,
    /// Streams that broke (a dead orderer, say); their unanswered envelopes are not counted.
    pub errors: Vec<String>,
}

/// Sends `load.count` signed transactions over `load.streams` streams; `on_ack` is called per
/// SUCCESS. Never fails as a whole: broken streams are reported in [`Submitted::errors`].
pub async fn submit(
    client: &Client,
    load: &Load,
    on_ack: Arc<dyn Fn() + Send + Sync>,
) -> Submitted {
    let streams = load.streams.max(1);
    let mut tasks = Vec::new();
    for s in 0..streams {
        let n = load.count / streams + usize::from(s < load.count % streams);
        tasks.push(tokio::spawn(one_stream(
            client.clone(),
            n,
            load.tx_bytes,
            load.window.max(1),
            on_ack.clone(),
        )));
    }
    let mut all = Submitted::default();
    for task in tasks {
        match task.await {
            Ok(part) => {
                all.acked.extend(part.acked);
                all.refused.extend(part.refused);
                all.errors.extend(part.errors);
            }
            Err(e) => all.errors.push(format!("stream task failed: {e}")),
        }
    }
    all
}

async fn one_stream(
    client: Client,
    count: usize,
    tx_bytes: usize,
    window: usize,
    on_ack: Arc<dyn Fn() + Send + Sync>,
) -> Submitted {
    let mut out = Submitted::default();
    let (requests, rx) = mpsc::channel(window);
    let sent: Arc<Mutex<VecDeque<(String, Instant)>>> = Default::default();
    let permits = Arc::new(Semaphore::new(window));

    let sender = {
        let sent = sent.clone();
        let permits = permits.clone();
        let client = client.clone();
        tokio::spawn(async move {
            for _ in 0..count {
                let Ok(permit) = permits.acquire().await else {
                    return;
                };
                permit.forget();
                let mut data = vec![0u8; tx_bytes];
                rand::thread_rng().fill_bytes(&mut data);
                let (env, tx_id) = envelope::build_with_tx_id(
                    &client.signer,
                    &client.channel_id,
                    HeaderType::EndorserTransaction,
                    Bytes::from(data),
                );
                sent.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_back((tx_id, Instant::now()));
                if requests.send(env).await.is_err() {
                    return;
                }
            }
        })
    };

    let mut responses = match client.grpc().broadcast(ReceiverStream::new(rx)).await {
        Ok(r) => r.into_inner(),
        Err(e) => {
            sender.abort();
            out.errors.push(format!("Broadcast: {e}"));
            return out;
        }
    };
    let mut answered = 0;
    while answered < count {
        match responses.next().await {
            Some(Ok(response)) => {
                answered += 1;
                permits.add_permits(1);
                let Some((tx_id, at)) = sent.lock().unwrap_or_else(|e| e.into_inner()).pop_front()
                else {
                    out.errors
                        .push("an answer for an envelope never sent".into());
                    break;
                };
                if response.status == Status::Success as i32 {
                    on_ack();
                    out.acked.push((tx_id, at));
                } else {
                    out.refused.push((response.status, response.info));
                }
            }
            Some(Err(e)) => {
                out.errors.push(format!("Broadcast stream: {e}"));
                break;
            }
            None => {
                if answered < count {
                    out.errors.push(format!(
                        "Broadcast stream ended after {answered} of {count} answers"
                    ));
                }
                break;
            }
        }
    }
    permits.close();
    sender.abort();
    out
}
