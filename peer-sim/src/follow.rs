//! The one follower (`peer-sim run`, `peer-sim bench` and the tests): Deliver from a height on,
//! every block verified as it arrives, and a wait until given transactions have been delivered.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use futures::StreamExt;
use ordo_proto::common::Status;
use ordo_proto::orderer::deliver_response;
use ordo_proto::orderer::seek_info::SeekBehavior;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::chain::ChainVerifier;
use crate::client::Client;

/// A verified block as it reached the client.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub number: u64,
    pub tx_ids: Vec<String>,
    pub at: Instant,
}

/// Why [`Follower::until_delivered`] stopped.
#[derive(Debug)]
pub enum End {
    /// Every awaited transaction was delivered.
    Delivered,
    /// The deadline passed first.
    TimedOut,
    /// Deliver ended first: cleanly (`Ok`), or with a broken stream or a block that failed
    /// verification (`Err`).
    Ended(anyhow::Result<()>),
}

/// What [`Follower::until_delivered`] saw.
#[derive(Debug)]
pub struct Delivery {
    /// Every block that arrived, in order.
    pub arrivals: Vec<Arrival>,
    /// Awaited transactions in none of them.
    pub missing: HashSet<String>,
    pub end: End,
}

/// Deliver followed in the background from a verifier's height.
pub struct Follower {
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    /// `None` once it has ended and been awaited.
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Follower {
    /// Opens Deliver from `verifier`'s height and follows it, verifying every block.
    pub async fn start(client: Client, verifier: ChainVerifier) -> anyhow::Result<Follower> {
        let (arrivals_tx, arrivals) = mpsc::unbounded_channel();
        let task = follow(client, verifier, arrivals_tx).await?;
        Ok(Follower {
            arrivals,
            task: Some(task),
        })
    }

    /// Collects the blocks that arrive until every transaction in `awaited` has been delivered,
    /// `deadline` passes, or Deliver ends. Blocks that have already arrived are always taken.
    pub async fn until_delivered(
        &mut self,
        awaited: impl IntoIterator<Item = String>,
        deadline: tokio::time::Instant,
    ) -> Delivery {
        let mut missing: HashSet<String> = awaited.into_iter().collect();
        let mut arrivals = Vec::new();
        let mut take = |arrival: Arrival, missing: &mut HashSet<String>| {
            for tx_id in &arrival.tx_ids {
                missing.remove(tx_id);
            }
            arrivals.push(arrival);
        };
        let end = loop {
            while let Ok(arrival) = self.arrivals.try_recv() {
                take(arrival, &mut missing);
            }
            if missing.is_empty() {
                break End::Delivered;
            }
            match tokio::time::timeout_at(deadline, self.arrivals.recv()).await {
                Ok(Some(arrival)) => take(arrival, &mut missing),
                Ok(None) => {
                    break End::Ended(match self.task.take() {
                        Some(task) => task
                            .await
                            .unwrap_or_else(|e| Err(anyhow!("Deliver task: {e}"))),
                        None => Ok(()),
                    })
                }
                Err(_) => break End::TimedOut,
            }
        };
        Delivery {
            arrivals,
            missing,
            end,
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Follows Deliver from the verifier's height, verifying each block and sending what it held.
async fn follow(
    client: Client,
    mut verifier: ChainVerifier,
    arrivals: mpsc::UnboundedSender<Arrival>,
) -> anyhow::Result<JoinHandle<anyhow::Result<()>>> {
    let mut deliver = client
        .deliver(verifier.height(), u64::MAX, SeekBehavior::BlockUntilReady)
        .await?;
    Ok(tokio::spawn(async move {
        while let Some(response) = deliver.next().await {
            let block = match response.context("Deliver stream")?.r#type {
                Some(deliver_response::Type::Block(block)) => block,
                Some(deliver_response::Type::Status(s)) => {
                    bail!("Deliver ended with status {:?}", Status::try_from(s))
                }
                None => bail!("empty Deliver response"),
            };
            let verified = verifier.verify(&block)?;
            let arrival = Arrival {
                number: verified.number,
                tx_ids: verified.tx_ids,
                at: Instant::now(),
            };
            if arrivals.send(arrival).is_err() {
                break;
            }
        }
        Ok(())
    }))
}
