//! Submitting a fixed load through [`crate::load`], closed loop: `peer-sim run` and the tests.

use std::time::Instant;

use crate::client::Client;
use crate::load::{self, Answer, Envelopes, OnAck, Pace};

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
pub async fn submit(client: &Client, load: &Load, on_ack: OnAck) -> Submitted {
    submit_through(std::slice::from_ref(client), load, on_ack).await
}

/// [`submit`] through several clients at once: `load.count` split evenly over them, each with
/// `load.streams` streams. The results, merged.
pub async fn submit_through(clients: &[Client], load: &Load, on_ack: OnAck) -> Submitted {
    let Some(first) = clients.first() else {
        return Submitted::default();
    };
    let streams = load.streams.max(1);
    // Stream s goes through client s % clients: each client gets `streams` streams.
    let lanes: Vec<Client> = (0..clients.len() * streams)
        .map(|s| clients[s % clients.len()].clone())
        .collect();
    let outcome = load::drive(
        lanes,
        Envelopes::Signed {
            signer: first.signer.clone(),
            channel_id: first.channel_id.clone(),
            count: load.count,
            tx_bytes: load.tx_bytes,
        },
        Pace::Closed {
            window: load.window.max(1),
        },
        Instant::now(),
        None,
        on_ack,
    )
    .await;
    let mut submitted = Submitted {
        errors: outcome.errors,
        ..Submitted::default()
    };
    let mut infos = outcome.refusals.into_iter().peekable();
    for (i, (sent, tx_id)) in outcome.sent.into_iter().zip(outcome.tx_ids).enumerate() {
        match sent.map(|s| (s.at, s.answer)) {
            Some((at, Answer::Acked)) => submitted.acked.push((tx_id.unwrap_or_default(), at)),
            Some((_, Answer::Refused(status))) => {
                let info = match infos.peek() {
                    Some((k, _)) if *k == i => infos.next().map(|(_, info)| info),
                    _ => None,
                };
                submitted.refused.push((status, info.unwrap_or_default()));
            }
            _ => {}
        }
    }
    submitted
}
